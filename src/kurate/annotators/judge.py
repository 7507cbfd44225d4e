"""An LLM judge: a prompt, a backend and a scoring mode, turning documents into label rows.

``logits`` mode: one forward pass per criterion; the next-token distribution over the score tokens
at the answer position gives the distribution, its expectation and its argmax (no sampling).
``generate`` mode: n sampled answers per criterion, parsed; majority vote, else the mean; invalid
answers are counted and their raw text kept.
"""

from __future__ import annotations

import json
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from kurate.annotators.backends import OpenAIBackend, ScoreDistribution, TransformersBackend, VllmBackend
from kurate.annotators.prompts import PromptSpec, aggregate, load_prompt, parse_answer

EMBEDDED_JUDGE_MODEL = "embedded:smollm2-135m-instruct"


class JudgeConfig(BaseModel):
    """One judge: which model answers which prompt, how, and in what batches."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., pattern=r"^[A-Za-z0-9_.-]+$", description="Label column value and unit name part.")
    backend: Literal["transformers", "openai", "vllm"] = "transformers"
    model: str = Field(EMBEDDED_JUDGE_MODEL, description="HF id, local path, the server's model name, or embedded:smollm2-135m-instruct.")
    prompt: str = Field("fineweb_edu", description="Built-in prompt name (fineweb_edu, germanweb_quality) or a YAML path.")
    mode: Literal["logits", "generate"] = "logits"
    samples: int = Field(3, ge=1, description="Sampled answers per document in generate mode (JQL used 3).")
    temperature: float = Field(0.7, ge=0)
    max_new_tokens: int = Field(160, ge=1)
    max_doc_tokens: int = Field(1024, ge=16, description="Documents are truncated to this many tokens (recorded).")
    dtype: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    batch_size: int = Field(8, ge=1)
    base_url: str | None = Field(None, description="openai backend: server URL, e.g. http://127.0.0.1:8000")
    api_key_env: str | None = Field(None, description="openai backend: name of the env var holding the API key.")
    tokenizer: str | None = Field(None, description="openai backend: HF tokenizer for the chat template and truncation.")
    concurrency: int = Field(16, ge=1, description="openai backend: requests in flight.")
    retries: int = Field(3, ge=0)
    timeout_s: float = Field(60.0, gt=0)
    seed: int = 0


def make_backend(config: JudgeConfig):
    if config.backend == "transformers":
        from kurate.annotators.models import resolve_model

        return TransformersBackend(resolve_model(config.model), config.dtype, config.batch_size)
    if config.backend == "openai":
        import os

        if not config.base_url:
            raise ValueError(f"judge {config.name}: backend openai needs base_url")
        key = os.environ.get(config.api_key_env) if config.api_key_env else None
        return OpenAIBackend(config.base_url, config.model, key, config.tokenizer, config.concurrency, config.retries, config.timeout_s)
    return VllmBackend(config.model, config.dtype)


class Judge:
    """Labels documents with one judge; build once per process/actor (the model loads here)."""

    def __init__(self, config: JudgeConfig, backend=None):
        self.config = config
        self.prompt: PromptSpec = load_prompt(config.prompt)
        self.backend = backend if backend is not None else make_backend(config)

    def label(self, docs: list[dict]) -> list[dict]:
        """One label row per document (``id``, ``language``, ``text`` in each doc)."""
        spec, cfg, renderer = self.prompt, self.config, self.backend.renderer
        rows = [{"id": d["id"], "language": d.get("language"), "judge": cfg.name, "mode": cfg.mode,
                 "prompt_version": spec.version, "criteria": {}, "raw": [], "invalid": 0, "errors": []} for d in docs]
        truncated, doc_tokens = [], []
        documents = []
        for d in docs:
            text, n_tokens, cut = renderer.truncate(d.get("text") or "", cfg.max_doc_tokens)
            documents.append(text)
            truncated.append(cut)
            doc_tokens.append(n_tokens)
        for criterion in spec.criteria:
            prefix = criterion.answer_prefix if cfg.mode == "logits" else None
            prompts = [renderer.render(criterion.messages(text), prefix) for text in documents]
            if cfg.mode == "logits":
                results = self.backend.score_distributions(prompts, spec.scale)
            else:
                results = self.backend.generate(prompts, cfg.samples, cfg.max_new_tokens, cfg.temperature, cfg.seed)
            for row, result in zip(rows, results):
                self._record(row, criterion.name, criterion.answer_prefix, result)
        return [self._finish(row, cut, n) for row, cut, n in zip(rows, truncated, doc_tokens)]

    def _record(self, row: dict, criterion: str, prefix: str, result) -> None:
        scale = self.prompt.scale
        if isinstance(result, str):  # backend error for this document
            row["errors"].append(f"{criterion}: {result}")
            return
        if isinstance(result, ScoreDistribution):
            probs = np.asarray(result.probs)
            row["criteria"][criterion] = {
                "expected": float(np.dot(probs, scale)),
                "argmax": float(scale[int(probs.argmax())]),
                "distribution": [float(p) for p in probs],
                "mass": result.mass,
            }
            return
        values, reasons = [], []
        for text in result:
            value, reason = parse_answer(text, prefix, scale)
            row["raw"].append(text)
            if value is None:
                row["invalid"] += 1
                reasons.append(reason)
            else:
                values.append(value)
        if values:
            counts = np.array([sum(1 for v in values if round(v) == s) for s in scale], dtype=float)
            row["criteria"][criterion] = {"expected": float(np.mean(values)), "argmax": aggregate(values),
                                          "distribution": (counts / counts.sum()).tolist(), "invalid": len(reasons)}
        else:
            row["errors"].append(f"{criterion}: no valid answer ({', '.join(sorted(set(reasons)))})")

    def _finish(self, row: dict, truncated: bool, doc_tokens: int) -> dict:
        criteria = row.pop("criteria")
        errors = row.pop("errors")
        raw = row.pop("raw")
        invalid = row.pop("invalid")
        complete = len(criteria) == len(self.prompt.criteria)
        reason = "; ".join(errors) if errors else None
        if complete:
            scores = [c["argmax"] for c in criteria.values()]
            expected = [c["expected"] for c in criteria.values()]
            deciding = min(criteria, key=lambda k: criteria[k]["expected"])
            score, exp = self.prompt.combine_scores(scores), self.prompt.combine_scores(expected)
            distribution = criteria[deciding]["distribution"]
        else:
            score = exp = None
            distribution = None
        if invalid and reason is None:
            reason = f"{invalid} invalid sampled answer(s)"
        if truncated:
            reason = f"{reason}; " if reason else ""
            reason += f"document truncated from {doc_tokens} to {self.config.max_doc_tokens} tokens"
        return {
            **row,
            "score": score,
            "expected": exp,
            "distribution": distribution,
            "raw_output": "\n---\n".join(raw) if raw else None,
            "valid": complete,
            "reason": reason,
            "truncated": truncated,
            "doc_tokens": doc_tokens,
            "criteria": json.dumps(criteria, sort_keys=True),
        }
