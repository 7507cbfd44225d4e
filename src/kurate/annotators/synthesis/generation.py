"""Rewriting documents: chunk, render each chunk's prompt, generate through a backend, gate every answer.

``Rewriter`` holds one loaded generator (any registered backend, kurate.annotators.contracts) and the
gates; ``rewrite(docs)`` returns the accepted ``synthetic`` rows, the ``rejects`` rows and counts. It
knows nothing of units or storage (``units.SynthWorker`` commits what it returns).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import Sequence

from kurate.annotators.contracts import BackendFailure, LLMBackend, make_backend
from kurate.annotators.synthesis.chunking import chunk_document
from kurate.annotators.synthesis.config import SynthesizeConfig
from kurate.annotators.synthesis.gates import GateResult, Gates, Rejection
from kurate.annotators.synthesis.ids import assign_type, chunk_id, generation_id, stable_hash
from kurate.annotators.synthesis.prompts import SynthPrompt, load_synth_prompt
from kurate.storage.shards import config_hash

REJECT_STAGE = "synthesize"
DEFAULT_CONTEXT_TOKENS = 4096  # when neither the config nor the backend knows the model's context


def cut_at_stop(text: str, stops: Sequence[str]) -> str:
    """The text before the first stop string (the whole text when none occurs)."""
    positions = [text.find(s) for s in stops if s and s in text]
    return text[: min(positions)] if positions else text


def synth_hash(config: SynthesizeConfig, prompts: dict[str, SynthPrompt] | None = None) -> str:
    """What decides the generations: everything but throughput settings, max_docs and the unit size
    (which change which units exist, not what a unit holds), plus the prompt files' contents."""
    prompts = prompts or {t: load_synth_prompt(t, config.prompts.get(t)) for t in config.active_mix()}
    body = config.model_dump(mode="json", exclude={"actors": True, "cpus_per_actor": True, "max_docs": True, "docs_per_unit": True,
                                                   "generator": set(config.generator.THROUGHPUT_FIELDS)})
    body["prompt_digests"] = {t: p.digest for t, p in sorted(prompts.items())}
    return config_hash(body)


class Rewriter:
    """One loaded generator plus the gates; build once per process or Ray actor (the model loads here)."""

    def __init__(self, config: SynthesizeConfig, backend: LLMBackend | None = None):
        self.config = config
        self.mix = config.active_mix()
        self.prompts = {t: load_synth_prompt(t, config.prompts.get(t)) for t in self.mix}
        self.backend: LLMBackend = backend if backend is not None else make_backend(config.generator)
        self.renderer = self.backend.renderer
        self.gates = Gates(config.gates)
        # a base model that finished its answer goes on with the next worked example: "Text:" or the answer label
        fewshot_stops = ["\nText:"] + sorted({f"\n{p.fewshot_label}:" for p in self.prompts.values()})
        self.stops = list(config.sampling.stop) + (fewshot_stops if config.style == "fewshot" else [])
        self.chunk_tokens = self._chunk_budget()
        self.config_hash = synth_hash(config, self.prompts)
        self.chunking_key = config_hash({"tokens": self.chunk_tokens, "overlap": config.chunking.overlap_paragraphs,
                                         "model": config.generator.model})
        s = config.sampling
        self.params_json = json.dumps({
            "backend": config.generator.backend, "style": config.style, "temperature": s.temperature, "top_p": s.top_p,
            "repetition_penalty": s.repetition_penalty, "max_new_tokens": s.max_new_tokens, "stop": self.stops, "samples": s.samples,
            "seed": s.seed, "chunk_tokens": self.chunk_tokens, "overlap_paragraphs": config.chunking.overlap_paragraphs,
        }, sort_keys=True, ensure_ascii=False)

    def count_tokens(self, text: str) -> int:
        return self.renderer.count_tokens(text)

    def render(self, prompt: SynthPrompt, document: str) -> str:
        if self.config.style == "fewshot":
            return prompt.fewshot(document)
        return self.renderer.render(prompt.messages(document), prompt.answer_prefix or None)

    def _chunk_budget(self) -> int:
        """Source tokens per chunk: the configured size, lowered so prompt + chunk + answer fit the context."""
        context = self.config.generator.context_tokens or self.backend.context_tokens or DEFAULT_CONTEXT_TOKENS
        overhead = max(self.count_tokens(self.render(p, "")) for p in self.prompts.values())
        budget = context - self.config.sampling.max_new_tokens - overhead - 16
        if budget < 32:
            raise ValueError(f"context of {context} tokens leaves {budget} for the source chunk after the prompt "
                             f"({overhead}) and max_new_tokens ({self.config.sampling.max_new_tokens}): lower max_new_tokens")
        return min(self.config.chunking.max_tokens, budget)

    def chunks(self, doc: dict) -> list[dict]:
        """The document's chunks that get rewritten, each with its stable id and prompt type (one entry per
        type and chunk with ``every_type``)."""
        c = self.config.chunking
        texts = chunk_document(doc.get("text") or "", self.count_tokens, self.chunk_tokens, c.overlap_paragraphs)
        indexed = [(i, t) for i, t in enumerate(texts) if len(t) >= c.min_chars]
        if c.max_chunks_per_doc is not None and len(indexed) > c.max_chunks_per_doc:
            rng = random.Random(stable_hash("chunks", self.config.seed, doc["id"]))
            indexed = sorted(rng.sample(indexed, c.max_chunks_per_doc))
        out = []
        for index, text in indexed:
            cid = chunk_id(doc["id"], self.chunking_key, index)
            types = list(self.mix) if self.config.every_type else [assign_type(cid, self.mix, self.config.seed)]
            out += [{"source_id": doc["id"], "url": doc.get("url"), "chunk_index": index, "chunk_id": cid, "text": text,
                     "prompt_type": t} for t in types]
        return out

    def rewrite(self, docs: list[dict]) -> tuple[list[dict], list[dict], dict]:
        """Rewrite the documents' chunks; returns (synthetic rows, reject rows, counts)."""
        s = self.config.sampling
        chunks = [c for d in docs for c in self.chunks(d)]
        prompts = [self.render(self.prompts[c["prompt_type"]], c["text"]) for c in chunks]
        results = self.backend.generate(prompts, s.samples, s.max_new_tokens, s.temperature, s.seed, top_p=s.top_p,
                                        repetition_penalty=s.repetition_penalty, stop=self.stops) if prompts else []
        rows, rejects = [], []
        per_type = {t: {"generated": 0, "accepted": 0} for t in self.mix}
        reasons: Counter = Counter()
        for chunk, prompt_text, result in zip(chunks, prompts, results, strict=True):
            spec = self.prompts[chunk["prompt_type"]]
            failed = isinstance(result, BackendFailure)  # this prompt's request failed: every sample is a reject
            answers = [""] * s.samples if failed else list(result.texts)
            prompt_tokens = self.count_tokens(prompt_text)
            for sample, answer in enumerate(answers):
                gid = generation_id(chunk["chunk_id"], spec.type, spec.version, self.config.generator.model, sample, self.config_hash)
                per_type[spec.type]["generated"] += 1
                if failed:
                    gate = GateResult(Rejection(f"generation_error:{result.kind.value}", None, str(result)[:500]))
                    text = ""
                else:
                    text = cut_at_stop(answer, self.stops).strip()
                    gate = self.gates.check(text, chunk["text"], spec.type, spec)
                if gate.accepted:
                    per_type[spec.type]["accepted"] += 1
                    rows.append({
                        "id": gid, "source_id": chunk["source_id"], "chunk_index": chunk["chunk_index"], "chunk_id": chunk["chunk_id"],
                        "prompt_type": spec.type, "prompt_version": spec.version, "model": self.config.generator.model,
                        "generation_params": self.params_json, "text": text, "prompt_tokens": prompt_tokens,
                        "completion_tokens": self.count_tokens(answer), "language": gate.language,
                        "language_score": gate.language_score,
                    })
                    continue
                r = gate.rejection
                reasons[r.reason] += 1
                rejects.append({
                    "id": gid, "url": chunk["url"], "warc_record_id": None, "source": chunk["source_id"], "language": gate.language,
                    "stage": REJECT_STAGE, "reason": r.reason, "value": r.value,
                    "detail": json.dumps({"source_id": chunk["source_id"], "chunk_id": chunk["chunk_id"], "chunk_index": chunk["chunk_index"],
                                          "prompt_type": spec.type, "why": r.detail, "text": text[:300]}, ensure_ascii=False),
                })
        counts = {"docs": len(docs), "chunks": len({c["chunk_id"] for c in chunks}), "generated": sum(v["generated"] for v in per_type.values()),
                  "accepted": len(rows), "rejected": len(rejects), "per_type": per_type, "reasons": dict(reasons)}
        return rows, rejects, counts
