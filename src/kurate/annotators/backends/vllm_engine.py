"""The ``vllm`` backend: vLLM's engine in this process (optional extra ``kurate[vllm]``, GPU only).

``vllm`` is imported when the backend is built, never when this module is imported, so the registry,
the config and the conformance test work where vLLM is not installed.
"""

from __future__ import annotations

import math
from typing import ClassVar, Sequence

from kurate.annotators.backends.rendering import PromptRenderer
from kurate.annotators.contracts import (
    BackendConfig, BackendFailure, BackendUnavailable, FailureKind, GenerationResult, Generations, ScoreDistribution,
    ScoreResult,
)


class VllmBackend:
    """Continuous batching and paged attention by vLLM; logits mode reads the top log-probabilities
    of one generated token (as the openai backend does)."""

    wants_gpu: ClassVar[bool] = True
    renderer: PromptRenderer

    def __init__(self, model: str, dtype: str = "auto", max_model_len: int | None = None, top_logprobs: int = 20):
        try:
            from vllm import LLM, SamplingParams
        except ImportError as exc:
            raise BackendUnavailable("backend 'vllm' needs the vllm package: pip install 'kurate[vllm]' (GPU only)") from exc
        self._sampling = SamplingParams
        dtypes = {"auto": "auto", "bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
        self.llm = LLM(model=model, dtype=dtypes[dtype], max_model_len=max_model_len)
        self.renderer = PromptRenderer(self.llm.get_tokenizer())
        self.top_logprobs = top_logprobs

    @classmethod
    def from_config(cls, config: BackendConfig) -> "VllmBackend":
        from kurate.annotators.models import resolve_model

        return cls(resolve_model(config.model), config.dtype)

    @property
    def context_tokens(self) -> int | None:
        return self.llm.llm_engine.model_config.max_model_len

    def score_distributions(self, prompts: Sequence[str], scale: Sequence[int]) -> list[ScoreResult]:
        params = self._sampling(max_tokens=1, temperature=0, logprobs=self.top_logprobs)
        results: list[ScoreResult] = []
        for out in self.llm.generate(list(prompts), params):
            top = out.outputs[0].logprobs[0]
            per_score = [sum(math.exp(lp.logprob) for lp in top.values() if (lp.decoded_token or "").strip() == str(v)) for v in scale]
            mass = sum(per_score)
            if mass > 0:
                results.append(ScoreDistribution(tuple(p / mass for p in per_score), mass))
            else:
                results.append(BackendFailure(FailureKind.NO_SCORE_TOKEN, f"none of {list(scale)} among the top {len(top)} logprobs"))
        return results

    def generate(self, prompts: Sequence[str], n: int, max_new_tokens: int, temperature: float, seed: int,
                 top_p: float | None = None, repetition_penalty: float | None = None,
                 stop: Sequence[str] = ()) -> list[GenerationResult]:
        params = self._sampling(n=n, max_tokens=max_new_tokens, temperature=temperature, seed=seed, top_p=top_p or 1.0,
                                repetition_penalty=repetition_penalty or 1.0, stop=list(stop) or None)
        return [Generations(tuple(o.text for o in out.outputs)) for out in self.llm.generate(list(prompts), params)]
