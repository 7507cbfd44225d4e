"""The registry of model kinds and size presets: the one place their names are written.

The pydantic config (`flows/config.py`, `models/train_config.py`), the `kurate train` options and
the trainer read their choices from here; `tests/test_model_contracts.py` checks every kind listed
here against `models/contracts.py` (docs/ARCHITECTURE.md, "Contracts"). Adding a model kind: write
its module (codec, model, config dataclass and an `ARCHITECTURE` record with its per-preset fields),
add one line to MODEL_KINDS, and its own test.

This module imports no torch: the CLI builds its choices from it at start-up. A kind's module
(and with it torch) is imported when `architecture(kind)` is first asked for it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from kurate.models.contracts import Architecture


@dataclass(frozen=True)
class ModelKind:
    module: str  # the module whose ARCHITECTURE (models/contracts.py) defines the kind
    summary: str  # one line for the CLI help and the config form


MODEL_KINDS: dict[str, ModelKind] = {
    "hat": ModelKind("kurate.models.hat", "hierarchical: words pooled from their bytes, a word backbone, a byte decoder"),
    "tfree": ModelKind("kurate.models.tfree", "tokenizer-free sparse word patterns (hashed trigrams)"),
    "bpe": ModelKind("kurate.models.bpe", "the byte-level BPE token baseline"),
}


@dataclass(frozen=True)
class Preset:
    """A model size: the backbone every kind shares and the trainer's defaults at that size."""

    summary: str
    d_model: int
    n_layer: int
    n_head: int
    seq_len: int  # units per training sequence
    batch_size: int  # sequences per micro-batch
    lr: float
    warmup_steps: int
    max_steps: int


PRESETS: dict[str, Preset] = {
    "tiny": Preset("CPU tests and smoke runs", 128, 2, 4, seq_len=64, batch_size=8, lr=3e-3, warmup_steps=10, max_steps=60),
    "125m": Preset("about 125M parameters (one GPU)", 768, 12, 12, 1024, 32, 6e-4, 1000, 20000),
    "350m": Preset("about 350M parameters", 1024, 24, 16, 1024, 32, 3e-4, 2000, 40000),
    "1b": Preset("about 1B parameters", 2048, 16, 16, 1024, 32, 2e-4, 2000, 60000),
}


# the registry's names as pydantic choices (a Literal of a tuple is the Literal of its items)
ModelKindName = Literal[tuple(MODEL_KINDS)]  # type: ignore[valid-type]
PresetName = Literal[tuple(PRESETS)]  # type: ignore[valid-type]


def architecture(kind: str) -> Architecture:
    """The ARCHITECTURE record of a registered kind (imports its module)."""
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; choose one of {tuple(MODEL_KINDS)}")
    return importlib.import_module(MODEL_KINDS[kind].module).ARCHITECTURE


def preset_of(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {tuple(PRESETS)}")
    return PRESETS[name]
