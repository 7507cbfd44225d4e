"""LLM backends for judges: transformers (in-process / Ray actor), any OpenAI-compatible server, vLLM.

Every backend answers two questions for a batch of rendered prompts:

* ``score_distributions``: after one forward pass (prefill only), the probability of each score
  token ("0".."5") at the answer position, renormalised over the score tokens, plus the mass the
  score tokens had before renormalising (how sure the model was that a number comes next);
* ``generate``: n sampled completions per prompt.

Errors are returned per prompt (a string), never raised for the whole batch, so one bad document
or one failed request does not stop a run.
"""

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np


@dataclass
class ScoreDistribution:
    probs: list[float]  # over the judge's scale, sums to 1
    mass: float  # probability of the score tokens among all tokens before renormalising


Result = Any  # ScoreDistribution | list[str] | str (an error)


def plain_chat(messages: list[dict]) -> str:
    """A neutral chat rendering for models/servers without a chat template."""
    parts = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n\n".join(parts) + "\n\nAssistant:"


class PromptRenderer:
    """Chat template + document truncation by tokens (by ~4 chars/token without a tokenizer)."""

    def __init__(self, tokenizer=None):
        self.tokenizer = tokenizer

    def truncate(self, document: str, max_tokens: int) -> tuple[str, int, bool]:
        if self.tokenizer is None:
            approx = max(1, len(document) // 4)
            if approx <= max_tokens:
                return document, approx, False
            return document[: max_tokens * 4], approx, True
        ids = self.tokenizer.encode(document, add_special_tokens=False)
        if len(ids) <= max_tokens:
            return document, len(ids), False
        return self.tokenizer.decode(ids[:max_tokens], skip_special_tokens=True), len(ids), True

    def render(self, messages: list[dict], answer_prefix: str | None) -> str:
        tok = self.tokenizer
        if tok is not None and getattr(tok, "chat_template", None):
            try:
                text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            except Exception:  # noqa: BLE001 - some templates reject a system turn: fold it into the user turn
                merged = [{"role": "user", "content": "\n\n".join(m["content"] for m in messages)}]
                text = tok.apply_chat_template(merged, tokenize=False, add_generation_prompt=True)
        else:
            text = plain_chat(messages)
        return text + (answer_prefix if answer_prefix else "")


class TransformersBackend:
    """A Hugging Face causal LM in this process (one per Ray actor): bf16 + SDPA on GPU,
    length-sorted batches, left padding, and a batch that halves itself on CUDA OOM."""

    def __init__(self, model: str, dtype: str = "auto", batch_size: int = 8, device: str | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch_dtype = {"auto": torch.bfloat16 if device == "cuda" else torch.float32, "bf16": torch.bfloat16,
                       "fp16": torch.float16, "fp32": torch.float32}[dtype]
        tokenizer = AutoTokenizer.from_pretrained(model)
        loaded = AutoModelForCausalLM.from_pretrained(model, dtype=torch_dtype, attn_implementation="sdpa").to(device)
        self._setup(loaded, tokenizer, batch_size, device)

    @classmethod
    def from_loaded(cls, model, tokenizer, batch_size: int = 8) -> "TransformersBackend":
        """Wrap a model already in memory (benchmarks with random weights, notebooks)."""
        backend = cls.__new__(cls)
        backend._setup(model, tokenizer, batch_size, str(next(model.parameters()).device))
        return backend

    def _setup(self, model, tokenizer, batch_size: int, device: str) -> None:
        import torch

        self.torch = torch
        self.device = device
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        # Prompts are tokenized without special tokens (chat templates write their own), but a model
        # whose tokenizer starts every text with BOS was trained that way: Gemma without <bos> writes
        # near-gibberish. Such prompts get the BOS text prepended unless they start with it.
        first = tokenizer("a", add_special_tokens=True)["input_ids"][:1]
        bos = tokenizer.bos_token
        self.bos_prefix = bos if bos and first == [tokenizer.bos_token_id] else ""
        self.model = model
        self.model.eval()
        self.batch_size = batch_size
        self.renderer = PromptRenderer(self.tokenizer)
        self._score_ids: dict[tuple[int, ...], list[list[int]]] = {}

    def score_ids(self, scale: Sequence[int]) -> tuple[list[list[int]], bool]:
        """Token ids that spell each score as the next token, and whether a space must be appended
        to the prompt first (tokenizers such as SmolLM2's split " 3" into " " + "3")."""
        key = tuple(scale)
        if key not in self._score_ids:
            def single(text: str) -> int | None:
                ids = self.tokenizer.encode(text, add_special_tokens=False)
                return ids[0] if len(ids) == 1 else None

            spaced = [single(f" {v}") for v in scale]
            bare = [single(f"{v}") for v in scale]
            if all(t is not None for t in spaced):
                self._score_ids[key] = ([[t] for t in spaced], False)
            elif all(t is not None for t in bare):
                self._score_ids[key] = ([[t] for t in bare], True)
            else:
                raise ValueError(f"tokenizer has no single-token spelling of the scores {list(scale)}")
        return self._score_ids[key]

    def _tokenize(self, prompts: Sequence[str]):
        if self.bos_prefix:
            prompts = [p if p.startswith(self.bos_prefix) else self.bos_prefix + p for p in prompts]
        return self.tokenizer(list(prompts), return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)

    def next_token_logprobs(self, prompts: list[str]):
        batch = self._tokenize(prompts)
        with self.torch.inference_mode():
            logits = self.model(**batch, logits_to_keep=1).logits[:, -1, :]
        return self.torch.log_softmax(logits.float(), dim=-1)

    def score_distributions(self, prompts: Sequence[str], scale: Sequence[int]) -> list[Result]:
        ids, needs_space = self.score_ids(scale)
        if needs_space:
            prompts = [p + " " for p in prompts]
        results: list[Result] = [None] * len(prompts)
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        start, size = 0, self.batch_size
        while start < len(order):
            chunk = order[start : start + size]
            try:
                logprobs = self.next_token_logprobs([prompts[i] for i in chunk])
            except self.torch.cuda.OutOfMemoryError:
                if size == 1:
                    raise
                size = max(1, size // 2)  # halve and retry the same documents
                self.torch.cuda.empty_cache()
                continue
            probs = logprobs.exp().cpu().numpy()
            for row, index in enumerate(chunk):
                per_score = np.array([probs[row, variant].sum() for variant in ids])
                mass = float(per_score.sum())
                results[index] = ScoreDistribution((per_score / mass).tolist() if mass > 0 else [1 / len(ids)] * len(ids), mass)
            start += len(chunk)
        return results

    def generate(self, prompts: Sequence[str], n: int, max_new_tokens: int, temperature: float, seed: int,
                 top_p: float | None = None, repetition_penalty: float | None = None, stop: Sequence[str] = ()) -> list[Result]:
        """n samples per prompt. ``stop`` ends a sequence early (the stop string stays in the text:
        callers cut at it); batches are formed by prompt length so little padding is decoded."""
        results: list[Result] = [None] * len(prompts)
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        start, size = 0, max(1, self.batch_size // max(n, 1))
        sampling = {"do_sample": temperature > 0, "temperature": temperature if temperature > 0 else None,
                    "top_p": top_p if temperature > 0 else None, "top_k": None, "repetition_penalty": repetition_penalty}

        while start < len(order):
            chunk = order[start : start + size]
            batch = self._tokenize([prompts[i] for i in chunk])
            self.torch.manual_seed(seed + start)
            if stop:
                sampling["stopping_criteria"] = [_StopStrings(self.tokenizer, stop, batch["input_ids"].shape[1])]
            try:
                with self.torch.inference_mode():
                    out = self.model.generate(
                        **batch, **sampling, max_new_tokens=max_new_tokens, num_return_sequences=n,
                        pad_token_id=self.tokenizer.pad_token_id,
                    )
            except self.torch.cuda.OutOfMemoryError:
                if size == 1:
                    raise
                size = max(1, size // 2)
                self.torch.cuda.empty_cache()
                continue
            texts = self.tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
            for row, index in enumerate(chunk):
                results[index] = texts[row * n : (row + 1) * n]
            start += len(chunk)
        return results


class _StopStrings:
    """Stopping criterion: a row is done once a stop string appears in its last few generated tokens.

    transformers' own ``stop_strings`` needs a tokenizer whose tokens map back to byte strings, which
    word-level tokenizers do not; decoding a short tail works with any tokenizer."""

    TAIL = 16  # tokens; longer than any stop string we use

    def __init__(self, tokenizer, stops: Sequence[str], prompt_tokens: int):
        self.tokenizer, self.stops, self.prompt_tokens = tokenizer, [s for s in stops if s], prompt_tokens

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        generated = input_ids[:, self.prompt_tokens:]  # the prompt itself may hold a stop string
        tails = self.tokenizer.batch_decode(generated[:, -self.TAIL:], skip_special_tokens=True)
        return torch.tensor([any(s in t for s in self.stops) for t in tails], device=input_ids.device)


class OpenAIBackend:
    """Any OpenAI-compatible completions server (vLLM, TGI, llama.cpp server, …).

    Prompts are rendered here (with ``tokenizer``'s chat template when given) and sent to
    ``/v1/completions``; ``logits`` mode asks for the top log-probabilities of one token. Requests
    run concurrently (bounded) and are retried with exponential backoff on errors and timeouts.
    """

    def __init__(self, base_url: str, model: str, api_key: str | None = None, tokenizer: str | None = None,
                 concurrency: int = 16, retries: int = 3, timeout: float = 60.0, top_logprobs: int = 20):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.concurrency, self.retries, self.timeout, self.top_logprobs = concurrency, retries, timeout, top_logprobs
        tok = None
        if tokenizer:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(tokenizer)
        self.renderer = PromptRenderer(tok)

    async def _post(self, client, payload: dict) -> dict | str:
        delay = 0.5
        for attempt in range(self.retries + 1):
            try:
                response = await client.post(f"{self.base_url}/v1/completions", json=payload)
                if response.status_code < 500 and response.status_code != 429:
                    if response.status_code >= 400:
                        return f"http_{response.status_code}: {response.text[:200]}"
                    return response.json()
                error = f"http_{response.status_code}"
            except Exception as exc:  # noqa: BLE001 - network errors and timeouts are retried
                error = f"{type(exc).__name__}: {exc}"[:200]
            if attempt < self.retries:
                await asyncio.sleep(delay * (1 + random.random()))
                delay *= 2
        return f"failed after {self.retries + 1} attempts: {error}"

    def _run(self, payloads: list[dict]) -> list[dict | str]:
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

    def score_distributions(self, prompts: Sequence[str], scale: Sequence[int]) -> list[Result]:
        payloads = [{"model": self.model, "prompt": p, "max_tokens": 1, "temperature": 0, "logprobs": self.top_logprobs}
                    for p in prompts]
        results: list[Result] = []
        for reply in self._run(payloads):
            if isinstance(reply, str):
                results.append(reply)
                continue
            try:
                top = reply["choices"][0]["logprobs"]["top_logprobs"][0]
            except (KeyError, IndexError, TypeError):
                results.append("server returned no logprobs (use scoring mode 'generate' with this server)")
                continue
            per_score = [sum(math.exp(lp) for tok, lp in top.items() if tok.strip() == str(v)) for v in scale]
            mass = sum(per_score)
            if mass <= 0:
                results.append("no score token among the top logprobs")
                continue
            results.append(ScoreDistribution([p / mass for p in per_score], mass))
        return results

    def generate(self, prompts: Sequence[str], n: int, max_new_tokens: int, temperature: float, seed: int,
                 top_p: float | None = None, repetition_penalty: float | None = None, stop: Sequence[str] = ()) -> list[Result]:
        extra: dict = {}
        if top_p is not None:
            extra["top_p"] = top_p
        if repetition_penalty is not None:
            extra["repetition_penalty"] = repetition_penalty  # vLLM/TGI extension of the completions API
        if stop:
            extra["stop"] = list(stop)[:4]  # the OpenAI API takes at most 4; callers cut at all of them anyway
        payloads = [{"model": self.model, "prompt": p, "max_tokens": max_new_tokens, "temperature": temperature,
                     "n": n, "seed": seed, **extra} for p in prompts]
        results: list[Result] = []
        for reply in self._run(payloads):
            if isinstance(reply, str):
                results.append(reply)
            else:
                results.append([c.get("text", "") for c in sorted(reply.get("choices", []), key=lambda c: c.get("index", 0))])
        return results


class VllmBackend:
    """vLLM in this process (optional extra ``kurate[vllm]``; imported only when used)."""

    def __init__(self, model: str, dtype: str = "auto", max_model_len: int | None = None, top_logprobs: int = 20):
        try:
            from vllm import LLM, SamplingParams
        except ImportError as exc:
            raise RuntimeError("judge backend 'vllm' needs the vllm package: pip install 'kurate[vllm]' (GPU only)") from exc
        self._sampling = SamplingParams
        self.llm = LLM(model=model, dtype=dtype if dtype != "fp32" else "float32", max_model_len=max_model_len)
        self.renderer = PromptRenderer(self.llm.get_tokenizer())
        self.top_logprobs = top_logprobs

    def score_distributions(self, prompts: Sequence[str], scale: Sequence[int]) -> list[Result]:
        params = self._sampling(max_tokens=1, temperature=0, logprobs=self.top_logprobs)
        results: list[Result] = []
        for out in self.llm.generate(list(prompts), params):
            top = out.outputs[0].logprobs[0]
            per_score = [sum(math.exp(lp.logprob) for lp in top.values() if (lp.decoded_token or "").strip() == str(v)) for v in scale]
            mass = sum(per_score)
            results.append(ScoreDistribution([p / mass for p in per_score], mass) if mass > 0 else "no score token among the top logprobs")
        return results

    def generate(self, prompts: Sequence[str], n: int, max_new_tokens: int, temperature: float, seed: int,
                 top_p: float | None = None, repetition_penalty: float | None = None, stop: Sequence[str] = ()) -> list[Result]:
        params = self._sampling(n=n, max_tokens=max_new_tokens, temperature=temperature, seed=seed, top_p=top_p or 1.0,
                                repetition_penalty=repetition_penalty or 1.0, stop=list(stop) or None)
        return [[o.text for o in out.outputs] for out in self.llm.generate(list(prompts), params)]
