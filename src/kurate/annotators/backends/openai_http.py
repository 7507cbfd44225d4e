"""The ``openai`` backend: any OpenAI-compatible completions server (vLLM, TGI, llama.cpp server, …)."""

from __future__ import annotations

import asyncio
import math
import os
import random
from typing import ClassVar, Sequence

from kurate.annotators.backends.rendering import PromptRenderer
from kurate.annotators.contracts import (
    BackendConfig, BackendFailure, BackendMisconfigured, FailureKind, GenerationResult, Generations, ScoreDistribution,
    ScoreResult,
)


class OpenAIBackend:
    """Prompts are rendered here (with ``tokenizer``'s chat template when given) and sent to
    ``/v1/completions``; logits mode asks for the top log-probabilities of one token. Requests run
    concurrently (bounded) and are retried with exponential backoff on 5xx, 429, timeouts and
    connection errors; a request that still fails is that prompt's ``BackendFailure``."""

    wants_gpu: ClassVar[bool] = False  # an HTTP client: the server holds the model
    renderer: PromptRenderer

    def __init__(self, base_url: str, model: str, api_key: str | None = None, tokenizer: str | None = None,
                 concurrency: int = 16, retries: int = 3, timeout: float = 120.0, top_logprobs: int = 20):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.concurrency, self.retries, self.timeout, self.top_logprobs = concurrency, retries, timeout, top_logprobs
        tok = None
        if tokenizer:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(tokenizer)
        self.renderer = PromptRenderer(tok)

    @classmethod
    def from_config(cls, config: BackendConfig) -> "OpenAIBackend":
        if not config.base_url:
            raise BackendMisconfigured("backend openai needs base_url (the server's URL, e.g. http://127.0.0.1:8000)")
        key = None
        if config.api_key_env:
            key = os.environ.get(config.api_key_env)
            if key is None:
                raise BackendMisconfigured(f"backend openai: api_key_env names {config.api_key_env!r}, which is not set")
        return cls(config.base_url, config.model, key, config.tokenizer, config.concurrency, config.retries, config.timeout_s)

    @property
    def context_tokens(self) -> int | None:
        return None  # the completions API does not say; configure it (GeneratorConfig.context_tokens)

    async def _post(self, client, payload: dict) -> dict | BackendFailure:
        delay = 0.5
        attempts = self.retries + 1
        for attempt in range(attempts):
            try:
                response = await client.post(f"{self.base_url}/v1/completions", json=payload)
                status = response.status_code
                if status < 400:
                    return response.json()
                if status < 500 and status != 429:  # the request itself is wrong: a retry gets the same answer
                    return BackendFailure(FailureKind.HTTP_ERROR, response.text[:200], attempt + 1, status)
                failure = BackendFailure(FailureKind.SERVER_ERROR, response.text[:200], attempts, status)
            except Exception as exc:  # noqa: BLE001 - network errors and timeouts are retried
                failure = BackendFailure(FailureKind.UNREACHABLE, f"{type(exc).__name__}: {exc}"[:200], attempts)
            if attempt < self.retries:
                await asyncio.sleep(delay * (1 + random.random()))
                delay *= 2
        return failure

    def _run(self, payloads: list[dict]) -> list[dict | BackendFailure]:
        import httpx

        async def main():
            limit = asyncio.Semaphore(self.concurrency)
            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            async with httpx.AsyncClient(timeout=self.timeout, headers=headers) as client:
                async def one(payload):
                    async with limit:
                        return await self._post(client, payload)

                return await asyncio.gather(*(one(p) for p in payloads))

        return asyncio.run(main())

    def score_distributions(self, prompts: Sequence[str], scale: Sequence[int]) -> list[ScoreResult]:
        payloads = [{"model": self.model, "prompt": p, "max_tokens": 1, "temperature": 0, "logprobs": self.top_logprobs}
                    for p in prompts]
        results: list[ScoreResult] = []
        for reply in self._run(payloads):
            if isinstance(reply, BackendFailure):
                results.append(reply)
                continue
            try:
                top = reply["choices"][0]["logprobs"]["top_logprobs"][0]
            except (KeyError, IndexError, TypeError):
                results.append(BackendFailure(FailureKind.MALFORMED_REPLY,
                                              "server returned no logprobs (use scoring mode 'generate' with this server)"))
                continue
            per_score = [sum(math.exp(lp) for tok, lp in top.items() if tok.strip() == str(v)) for v in scale]
            mass = sum(per_score)
            if mass <= 0:
                results.append(BackendFailure(FailureKind.NO_SCORE_TOKEN, f"none of {list(scale)} among the top "
                                              f"{len(top)} logprobs"))
                continue
            results.append(ScoreDistribution(tuple(p / mass for p in per_score), mass))
        return results

    def generate(self, prompts: Sequence[str], n: int, max_new_tokens: int, temperature: float, seed: int,
                 top_p: float | None = None, repetition_penalty: float | None = None,
                 stop: Sequence[str] = ()) -> list[GenerationResult]:
        extra: dict = {}
        if top_p is not None:
            extra["top_p"] = top_p
        if repetition_penalty is not None:
            extra["repetition_penalty"] = repetition_penalty  # vLLM/TGI extension of the completions API
        if stop:
            extra["stop"] = list(stop)[:4]  # the OpenAI API takes at most 4; callers cut at all of them anyway
        payloads = [{"model": self.model, "prompt": p, "max_tokens": max_new_tokens, "temperature": temperature,
                     "n": n, "seed": seed, **extra} for p in prompts]
        results: list[GenerationResult] = []
        for reply in self._run(payloads):
            if isinstance(reply, BackendFailure):
                results.append(reply)
                continue
            choices = reply.get("choices") if isinstance(reply, dict) else None
            if not isinstance(choices, list) or len(choices) != n:
                results.append(BackendFailure(FailureKind.MALFORMED_REPLY, f"asked for {n} choices, got "
                                              f"{len(choices) if isinstance(choices, list) else 'none'}"))
                continue
            ordered = sorted(choices, key=lambda c: c.get("index", 0))
            results.append(Generations(tuple(c.get("text") or "" for c in ordered)))
        return results
