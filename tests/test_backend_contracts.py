"""Every registered LLM backend against the declared contract (kurate.annotators.contracts.LLMBackend).

The tests read the registry (kurate.annotators.backends.BACKENDS), so a new backend is checked
without editing this file. Structure is checked for every entry; behaviour runs for real on a tiny
forced judge (tests/tiny_models.py): transformers in this process, openai over HTTP against
``python -m kurate.annotators.openai_server``. A backend whose optional package is not installed
(vllm: GPU only) is skipped with the reason its ``BackendUnavailable`` gives.
"""

from __future__ import annotations

import inspect
import time

import pytest
from pydantic import ValidationError

from kurate.annotators.backends import BACKENDS
from kurate.annotators.backends.openai_http import OpenAIBackend
from kurate.annotators.backends.rendering import PromptRenderer
from kurate.annotators.contracts import (
    BackendConfig, BackendFailure, BackendMisconfigured, BackendUnavailable, FailureKind, Generations, LLMBackend,
    ScoreDistribution, backend_class, make_backend,
)
from kurate.annotators.judge import JudgeConfig
from kurate.annotators.prompts import load_prompt
from kurate.annotators.synthesis import GeneratorConfig
from tiny_models import build_tiny_judge, free_port, running_openai_server

NAMES = sorted(BACKENDS)
FORCED_SCORE = 3
DOCUMENTS = ["the web page is educational", "der text ist eine seite für die schule", ""]


def protocol_members() -> dict[str, object]:
    """The protocol's declared members: methods, properties and annotated attributes."""
    members = {n: v for n, v in vars(LLMBackend).items() if not n.startswith("_")}
    members.update({n: None for n in LLMBackend.__annotations__ if n not in members})
    return members


# --- structure: every registry entry, installed or not ---------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_registered_backend_declares_every_protocol_member(name):
    cls = backend_class(name)  # importing the module must not need the backend's optional package
    for member, declared in protocol_members().items():
        if declared is None:  # an attribute: declared on the class (instances set it)
            assert member in getattr(cls, "__annotations__", {}) or hasattr(cls, member), f"{name}: no {member}"
            continue
        assert hasattr(cls, member), f"{name}: no {member}"
        implemented = inspect.getattr_static(cls, member)
        if isinstance(declared, property):
            assert isinstance(implemented, property), f"{name}.{member} must be a property"
            continue
        if isinstance(declared, classmethod):
            assert isinstance(implemented, classmethod), f"{name}.{member} must be a classmethod"
        wanted = list(inspect.signature(getattr(LLMBackend, member)).parameters)
        have = list(inspect.signature(getattr(cls, member)).parameters)
        assert have == wanted, f"{name}.{member}{have} does not match the protocol's {wanted}"
    assert isinstance(cls.wants_gpu, bool)


def test_backend_choices_come_from_the_registry():
    for config in (BackendConfig, JudgeConfig, GeneratorConfig):  # one schema: judges and the generator extend it
        assert issubclass(config, BackendConfig)
        assert config.model_json_schema()["properties"]["backend"]["enum"] == list(BACKENDS)
    for name in NAMES:
        assert BackendConfig(backend=name, model="m").backend == name
    with pytest.raises(ValidationError, match="'transformers', 'openai' or 'vllm'|transformers"):
        BackendConfig(backend="tgi", model="m")
    with pytest.raises(ValidationError, match="extra"):
        JudgeConfig(name="j", base_ur="http://typo")
    with pytest.raises(BackendMisconfigured, match="unknown backend 'tgi'"):
        backend_class("tgi")


def test_http_client_backends_reserve_no_gpu():
    assert backend_class("openai").wants_gpu is False
    assert backend_class("transformers").wants_gpu is True


# --- behaviour: every backend that can run here ----------------------------------------------------


@pytest.fixture(scope="module")
def judge_model(tmp_path_factory):
    return build_tiny_judge(tmp_path_factory.mktemp("contract") / "forced", forced_score=FORCED_SCORE)


@pytest.fixture(scope="module")
def server(judge_model):
    # served under its path, so one config (model = the path) names the same model for every backend
    with running_openai_server(judge_model, judge_model) as url:
        yield url


@pytest.fixture(scope="module", params=NAMES)
def live(request, judge_model, server) -> tuple[str, LLMBackend]:
    """Each registered backend built from one config through the registry (fields a backend does not use are ignored)."""
    config = BackendConfig(backend=request.param, model=judge_model, dtype="fp32", batch_size=2, base_url=server,
                           tokenizer=judge_model, retries=0, timeout_s=60)
    try:
        return request.param, make_backend(config)
    except BackendUnavailable as exc:
        if isinstance(exc.__cause__, ImportError):  # an optional package (vllm) that is not installed here
            pytest.skip(f"backend {request.param!r} cannot run here: {exc}")
        raise


def _prompts(backend: LLMBackend, logits: bool) -> list[str]:
    criterion = load_prompt("fineweb_edu").criteria[0]
    prefix = criterion.answer_prefix if logits else None
    return [backend.renderer.render(criterion.messages(d), prefix) for d in DOCUMENTS]


def test_backend_is_an_llm_backend(live):
    name, backend = live
    assert isinstance(backend, LLMBackend) and isinstance(backend.renderer, PromptRenderer)
    assert backend.context_tokens is None or backend.context_tokens > 0
    text, tokens, cut = backend.renderer.truncate("the web page " * 50, 16)
    assert cut and tokens == 150 and backend.renderer.count_tokens(text) <= 16


def test_scores_are_distributions_over_the_scale(live):
    name, backend = live
    scale = load_prompt("fineweb_edu").scale
    results = backend.score_distributions(_prompts(backend, logits=True), scale)
    assert len(results) == len(DOCUMENTS)
    for result in results:
        assert isinstance(result, ScoreDistribution), f"{name}: {result!r}"
        assert len(result.probs) == len(scale) and sum(result.probs) == pytest.approx(1.0, abs=1e-5)
        assert all(0 <= p <= 1 for p in result.probs) and 0 < result.mass <= 1 + 1e-6
        assert scale[max(range(len(scale)), key=lambda i: result.probs[i])] == FORCED_SCORE


def test_generate_returns_n_texts_per_prompt(live):
    name, backend = live
    results = backend.generate(_prompts(backend, logits=False), 2, 4, 0.7, 0, top_p=0.9, repetition_penalty=1.0, stop=["###"])
    assert len(results) == len(DOCUMENTS)
    for result in results:
        assert isinstance(result, Generations), f"{name}: {result!r}"
        assert len(result.texts) == 2 and all(isinstance(t, str) for t in result.texts)
        assert [t.strip() for t in result.texts] == [str(FORCED_SCORE)] * 2


def test_a_scale_the_model_cannot_spell_is_a_typed_error(live):
    """Scores 10 and 11 are two digit tokens each: no backend can read them off one next token. The
    answer is a typed error — raised for the batch, or one BackendFailure per prompt — never a string."""
    name, backend = live
    try:
        results = backend.score_distributions(_prompts(backend, logits=True), (10, 11))
    except BackendMisconfigured as exc:
        assert "10, 11" in str(exc)
        return
    assert len(results) == len(DOCUMENTS)
    assert all(isinstance(r, BackendFailure) and r.kind is FailureKind.NO_SCORE_TOKEN for r in results), f"{name}: {results!r}"


# --- typed errors of the HTTP client ----------------------------------------------------------------


def test_unreachable_server_gives_typed_failures_per_prompt():
    backend = OpenAIBackend(f"http://127.0.0.1:{free_port()}", "tiny", retries=1, timeout=2)
    started = time.time()
    scores = backend.score_distributions(["a:", "b:"], (0, 1))
    generated = backend.generate(["a:"], 1, 4, 0.0, 0)
    assert time.time() - started < 30
    for failure in scores + generated:
        assert isinstance(failure, BackendFailure) and failure.kind is FailureKind.UNREACHABLE
        assert failure.attempts == 2 and failure.status is None and "ConnectError" in failure.detail
        assert str(failure).startswith("unreachable after 2 attempts: ")


def test_a_refused_request_is_a_typed_failure_and_not_retried(server, judge_model):
    backend = OpenAIBackend(server, "not-served", retries=3, timeout=30)
    started = time.time()
    (scored,) = backend.score_distributions(["Educational score:"], (0, 1, 2, 3, 4, 5))
    (generated,) = backend.generate(["x:"], 1, 2, 0.0, 0)
    assert time.time() - started < 10  # 4xx is not retried (with backoff it would take seconds)
    for failure in (scored, generated):
        assert isinstance(failure, BackendFailure) and failure.kind is FailureKind.HTTP_ERROR
        assert failure.status == 404 and failure.attempts == 1 and "not served" in failure.detail


def test_incomplete_openai_config_is_a_typed_error(monkeypatch):
    with pytest.raises(BackendMisconfigured, match="needs base_url"):
        make_backend(BackendConfig(backend="openai", model="m"))
    monkeypatch.delenv("KURATE_TEST_UNSET_KEY", raising=False)
    with pytest.raises(BackendMisconfigured, match="KURATE_TEST_UNSET_KEY"):
        make_backend(BackendConfig(backend="openai", model="m", base_url="http://127.0.0.1:9", api_key_env="KURATE_TEST_UNSET_KEY"))
