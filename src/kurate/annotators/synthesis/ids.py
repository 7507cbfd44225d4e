"""Stable names and seeded draws: a re-run names every chunk and generation the same and gives a chunk
the same prompt type, whatever the order or the worker."""

from __future__ import annotations

import hashlib


def stable_hash(*parts: object) -> str:
    """sha256 hex of the parts joined by a unit separator (so ("ab", "c") and ("a", "bc") differ)."""
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()


def chunk_id(source_id: str, chunking_key: str, index: int) -> str:
    return stable_hash("chunk", source_id, chunking_key, index)[:24]


def generation_id(chunk: str, prompt_type: str, prompt_version: str, model: str, sample: int, config_hash: str) -> str:
    return stable_hash("gen", chunk, prompt_type, prompt_version, model, sample, config_hash)[:24]


def assign_type(chunk: str, mix: dict[str, float], seed: int) -> str:
    """The prompt type of one chunk: a seeded, deterministic draw from the mix."""
    u = int(stable_hash("type", seed, chunk)[:16], 16) / 2**64
    total = 0.0
    for prompt_type, share in mix.items():
        total += share
        if u < total:
            return prompt_type
    return list(mix)[-1]
