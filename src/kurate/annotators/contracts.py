"""The declared contract of an LLM backend (judges and the synthesis generator share it).

A backend answers two questions for a batch of rendered prompts (docs/ARCHITECTURE.md, annotators):

* ``score_distributions``: after one forward pass (prefill only), the probability of each score
  token at the answer position, renormalised over the score tokens, plus the mass the score tokens
  had before renormalising (how sure the model was that a number comes next);
* ``generate``: n sampled completions per prompt.

Results are typed per prompt: a ``ScoreDistribution`` or ``Generations``, or a ``BackendFailure``
that says what went wrong (its ``kind``) for that prompt alone, so one failed request does not stop
a batch. What makes a whole backend unusable (a missing package, a config it cannot work with) is
raised as a ``BackendError``.

``BackendConfig`` is the one config both ``JudgeConfig`` and the generator config extend; its
``backend`` choices are the names in the registry ``kurate.annotators.backends.BACKENDS``, so a new
backend is one module, one registry line and the conformance test (tests/test_backend_contracts.py)
picks it up.
"""

from __future__ import annotations

import enum
import importlib
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol, Sequence, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from kurate.annotators.backends import BACKENDS
from kurate.annotators.backends.rendering import PromptRenderer

# --- results --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreDistribution:
    """The next-token distribution over a judge's scale at the answer position."""

    probs: tuple[float, ...]  # over the scale, sums to 1
    mass: float  # probability of the score tokens among all tokens before renormalising


@dataclass(frozen=True)
class Generations:
    """The n sampled completions of one prompt, in sample order (stop strings not yet cut)."""

    texts: tuple[str, ...]


class FailureKind(enum.Enum):
    """Why one prompt got no result."""

    HTTP_ERROR = "http_error"  # the server refused the request (4xx other than 429): not retried
    SERVER_ERROR = "server_error"  # 5xx or 429 on every attempt
    UNREACHABLE = "unreachable"  # connection refused, reset or timed out on every attempt
    MALFORMED_REPLY = "malformed_reply"  # the reply lacks what was asked for (choices, logprobs)
    NO_SCORE_TOKEN = "no_score_token"  # none of the scale's tokens among the top log-probabilities


@dataclass(frozen=True)
class BackendFailure:
    """One prompt's failure; ``str()`` is the text recorded in a label's or reject's reason."""

    kind: FailureKind
    detail: str
    attempts: int = 1
    status: int | None = None  # the HTTP status, when a server answered

    def __str__(self) -> str:
        head = self.kind.value + (f" {self.status}" if self.status is not None else "")
        if self.attempts > 1:
            head += f" after {self.attempts} attempts"
        return f"{head}: {self.detail}"


ScoreResult = ScoreDistribution | BackendFailure
GenerationResult = Generations | BackendFailure


class BackendError(Exception):
    """A backend cannot be built or cannot answer at all (not one prompt's failure)."""


class BackendUnavailable(BackendError):
    """What the backend needs is not installed or cannot be loaded (package, model)."""


class BackendMisconfigured(BackendError, ValueError):
    """The config asks for something this backend cannot do (a missing URL, an unspellable scale)."""


# --- the config every backend is built from ---------------------------------------------------------

BackendName = Literal[tuple(BACKENDS)]  # type: ignore[valid-type]  # the registry's names, so validation follows it


class BackendConfig(BaseModel):
    """Which backend runs which model, and how (fields a backend does not use are ignored by it)."""

    model_config = ConfigDict(extra="forbid")

    # Fields that change how fast, not what, is asked: left out of the config hashes of committed units.
    THROUGHPUT_FIELDS: ClassVar[frozenset[str]] = frozenset({"batch_size", "concurrency", "timeout_s", "retries"})

    backend: BackendName = Field("transformers", description=f"One of {sorted(BACKENDS)} (kurate.annotators.backends.BACKENDS).")
    model: str = Field(..., description="HF id, local path, the server's model name, or an embedded model "
                       "(embedded:smollm2-135m-instruct, embedded:gemma-3-270m).")
    dtype: Literal["auto", "bf16", "fp16", "fp32"] = Field("auto", description="transformers, vllm: weight dtype "
                                                            "(auto: bf16 on GPU, fp32 on CPU).")
    batch_size: int = Field(8, ge=1, description="transformers: prompts per forward/generate batch (halves on CUDA OOM).")
    base_url: str | None = Field(None, description="openai: server URL, e.g. http://127.0.0.1:8000")
    api_key_env: str | None = Field(None, description="openai: name of the env var holding the API key.")
    tokenizer: str | None = Field(None, description="openai: HF tokenizer for the chat template, truncation and chunking.")
    concurrency: int = Field(16, ge=1, description="openai: requests in flight.")
    retries: int = Field(3, ge=0, description="openai: retries of a request after a 5xx, 429, timeout or connection error.")
    timeout_s: float = Field(120.0, gt=0, description="openai: seconds per request.")


# --- the protocol ---------------------------------------------------------------------------------


@runtime_checkable
class LLMBackend(Protocol):
    """What a judge or the generator needs from a backend; every entry of BACKENDS implements it."""

    wants_gpu: ClassVar[bool]  # a worker holding it reserves a GPU when the cluster has them (an HTTP client does not)
    renderer: PromptRenderer  # chat template and token-based truncation for this model

    @classmethod
    def from_config(cls, config: BackendConfig) -> "LLMBackend":
        """Build (load) the backend; raises BackendUnavailable / BackendMisconfigured."""
        ...

    @property
    def context_tokens(self) -> int | None:
        """The model's context length when the backend knows it (None: unknown)."""
        ...

    def score_distributions(self, prompts: Sequence[str], scale: Sequence[int]) -> list[ScoreResult]:
        """One result per prompt: the distribution over ``scale`` at the end of the prompt."""
        ...

    def generate(self, prompts: Sequence[str], n: int, max_new_tokens: int, temperature: float, seed: int,
                 top_p: float | None = None, repetition_penalty: float | None = None,
                 stop: Sequence[str] = ()) -> list[GenerationResult]:
        """One result per prompt: n samples; ``stop`` may end a sample early (callers cut at it)."""
        ...


def backend_class(name: str) -> type[LLMBackend]:
    """The registered class of a backend name (imported on first use)."""
    if name not in BACKENDS:
        raise BackendMisconfigured(f"unknown backend {name!r}; registered: {sorted(BACKENDS)}")
    module, _, attribute = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module), attribute)


def make_backend(config: BackendConfig) -> LLMBackend:
    """The backend ``config`` names, built from it."""
    return backend_class(config.backend).from_config(config)
