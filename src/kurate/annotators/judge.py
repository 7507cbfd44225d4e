"""An LLM judge: a prompt, a backend and a scoring mode, turning documents into label rows.

``logits`` mode: one forward pass per criterion; the answer prefix ("Educational score:") is written
into the assistant turn at once, so the judge gives no justification first (the FineWeb-Edu rubric
asks for one); the next-token distribution over the score tokens at the answer position gives the
distribution, its expectation and its argmax (no sampling).
``generate`` mode: n sampled answers per criterion, parsed; majority vote, else the mean; invalid
answers are counted and their raw text kept.
"""

from __future__ import annotations

import json
from typing import Literal

import numpy as np
from pydantic import Field

from kurate.annotators.contracts import (
    BackendConfig, BackendFailure, GenerationResult, LLMBackend, ScoreDistribution, ScoreResult, make_backend,
)
from kurate.annotators.prompts import PromptSpec, aggregate, load_prompt, parse_answer

EMBEDDED_JUDGE_MODEL = "embedded:smollm2-135m-instruct"


class JudgeConfig(BackendConfig):
    """One judge: which model answers which prompt, how, and in what batches (the backend fields are
    ``BackendConfig``'s, shared with the synthesis generator)."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9_.-]+$", description="Label column value and unit name part.")
    model: str = Field(EMBEDDED_JUDGE_MODEL, description="HF id, local path, the server's model name, or embedded:smollm2-135m-instruct.")
    prompt: str = Field("fineweb_edu", description="Built-in prompt name (fineweb_edu, germanweb_quality) or a YAML path.")
    mode: Literal["logits", "generate"] = Field("logits", description="logits: score-token distribution after one forward "
                                                "pass, the answer prefix written at once (skips the justification the "
                                                "FineWeb-Edu rubric asks for); generate: sampled answers with their "
                                                "justification, parsed (how FineWeb-Edu and JQL labelled).")
    samples: int = Field(3, ge=1, description="Sampled answers per document in generate mode (JQL used 3).")
    temperature: float = Field(0.7, ge=0, description="generate mode: sampling temperature.")
    max_new_tokens: int = Field(160, ge=1, description="generate mode: tokens per sampled answer.")
    max_doc_tokens: int = Field(1024, ge=16, description="Documents are truncated to this many tokens (recorded).")
    seed: int = Field(0, description="generate mode: sampling seed.")


class Judge:
    """Labels documents with one judge; build once per process/actor (the model loads here)."""

    def __init__(self, config: JudgeConfig, backend: LLMBackend | None = None):
        self.config = config
        self.prompt: PromptSpec = load_prompt(config.prompt)
        self.backend: LLMBackend = backend if backend is not None else make_backend(config)

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
            for row, result in zip(rows, results, strict=True):
                self._record(row, criterion.name, criterion.answer_prefix, result)
        return [self._finish(row, cut, n) for row, cut, n in zip(rows, truncated, doc_tokens)]

    def _record(self, row: dict, criterion: str, prefix: str, result: ScoreResult | GenerationResult) -> None:
        scale = self.prompt.scale
        if isinstance(result, BackendFailure):  # this document's request failed; the others go on
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
        for text in result.texts:
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
