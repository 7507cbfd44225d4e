"""The ``transformers`` backend: a Hugging Face causal LM in this process (one per Ray actor)."""

from __future__ import annotations

from typing import ClassVar, Sequence

import numpy as np

from kurate.annotators.backends.rendering import PromptRenderer
from kurate.annotators.contracts import (
    BackendConfig, BackendMisconfigured, BackendUnavailable, GenerationResult, Generations, ScoreDistribution, ScoreResult,
)


class TransformersBackend:
    """bf16 + SDPA on GPU, length-sorted batches, left padding, and a batch that halves itself on CUDA OOM."""

    wants_gpu: ClassVar[bool] = True
    renderer: PromptRenderer

    def __init__(self, model: str, dtype: str = "auto", batch_size: int = 8, device: str | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch_dtype = {"auto": torch.bfloat16 if device == "cuda" else torch.float32, "bf16": torch.bfloat16,
                       "fp16": torch.float16, "fp32": torch.float32}[dtype]
        try:
            tokenizer = AutoTokenizer.from_pretrained(model)
            loaded = AutoModelForCausalLM.from_pretrained(model, dtype=torch_dtype, attn_implementation="sdpa").to(device)
        except OSError as exc:  # not a local folder and not on the Hub (or offline)
            raise BackendUnavailable(f"transformers backend: cannot load model {model!r}: {exc}") from exc
        self._setup(loaded, tokenizer, batch_size, device)

    @classmethod
    def from_config(cls, config: BackendConfig) -> "TransformersBackend":
        from kurate.annotators.models import resolve_model

        return cls(resolve_model(config.model), config.dtype, config.batch_size)

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
        self._score_ids: dict[tuple[int, ...], tuple[list[list[int]], bool]] = {}

    @property
    def context_tokens(self) -> int | None:
        return getattr(self.model.config, "max_position_embeddings", None)

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
                raise BackendMisconfigured(f"tokenizer has no single-token spelling of the scores {list(scale)}: "
                                           "use scoring mode 'generate' with this model")
        return self._score_ids[key]

    def _tokenize(self, prompts: Sequence[str]):
        if self.bos_prefix:
            prompts = [p if p.startswith(self.bos_prefix) else self.bos_prefix + p for p in prompts]
        return self.tokenizer(list(prompts), return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)

    def next_token_logprobs(self, prompts: list[str]):
        """Log-probabilities of the next token after each prompt (a [prompts, vocab] tensor)."""
        batch = self._tokenize(prompts)
        with self.torch.inference_mode():
            logits = self.model(**batch, logits_to_keep=1).logits[:, -1, :]
        return self.torch.log_softmax(logits.float(), dim=-1)

    def score_distributions(self, prompts: Sequence[str], scale: Sequence[int]) -> list[ScoreResult]:
        ids, needs_space = self.score_ids(scale)
        if needs_space:
            prompts = [p + " " for p in prompts]
        results: list[ScoreResult | None] = [None] * len(prompts)
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
            probs = logprobs.exp().cpu().numpy()  # one device sync per batch
            for row, index in enumerate(chunk):
                per_score = np.array([probs[row, variant].sum() for variant in ids])
                mass = float(per_score.sum())
                normalised = per_score / mass if mass > 0 else np.full(len(ids), 1 / len(ids))
                results[index] = ScoreDistribution(tuple(float(p) for p in normalised), mass)
            start += len(chunk)
        return results  # type: ignore[return-value]  # every index was filled

    def generate(self, prompts: Sequence[str], n: int, max_new_tokens: int, temperature: float, seed: int,
                 top_p: float | None = None, repetition_penalty: float | None = None,
                 stop: Sequence[str] = ()) -> list[GenerationResult]:
        """n samples per prompt. ``stop`` ends a sequence early (the stop string stays in the text:
        callers cut at it); batches are formed by prompt length so little padding is decoded."""
        results: list[GenerationResult | None] = [None] * len(prompts)
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
                results[index] = Generations(tuple(texts[row * n : (row + 1) * n]))
            start += len(chunk)
        return results  # type: ignore[return-value]  # every index was filled


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
