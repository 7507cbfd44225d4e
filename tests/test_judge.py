"""LLM judges on tiny models built in code: answer parsing, logits vs generate, prompts, truncation,
and the `openai` backend over real HTTP against a local OpenAI-compatible server."""

from __future__ import annotations

import time

import pytest

from kurate.annotators.backends.openai_http import OpenAIBackend
from kurate.annotators.contracts import BackendMisconfigured
from kurate.annotators.judge import Judge, JudgeConfig
from kurate.annotators.prompts import aggregate, load_prompt, parse_answer
from tiny_models import build_tiny_judge, free_port, running_openai_server

DOCS = [
    {"id": "a", "language": "de", "text": "Die Photosynthese wandelt Licht in chemische Energie um. " * 4},
    {"id": "b", "language": "en", "text": "the web page is educational"},
    {"id": "c", "language": "fr", "text": ""},
]


@pytest.fixture(scope="module")
def forced(tmp_path_factory):
    return build_tiny_judge(tmp_path_factory.mktemp("forced") / "m", forced_score=3)


@pytest.fixture(scope="module")
def random_model(tmp_path_factory):
    return build_tiny_judge(tmp_path_factory.mktemp("random") / "m", seed=1)


@pytest.mark.parametrize("text,expected", [
    ("The extract is a tutorial. Educational score: 4", (4.0, None)),
    ("Educational score: **5**", (5.0, None)),
    ("educational score:2 ... Educational score: 3", (3.0, None)),
    ("I would say 4/5.", (4.0, None)),
    ("3", (3.0, None)),
    ("Educational score: 7", (None, "out_of_range")),
    ("no idea", (None, "no_number")),
    ("I'm sorry, I cannot rate this.", (None, "refusal")),
    ("", (None, "empty_answer")),
])
def test_parse_answer(text, expected):
    assert parse_answer(text, "Educational score:", (0, 1, 2, 3, 4, 5)) == expected


def test_aggregate_majority_else_mean():
    assert aggregate([3, 3, 1]) == 3
    assert aggregate([1, 2, 3]) == 2.0
    assert aggregate([4, 5]) == 4.5


def test_builtin_prompts_load():
    edu, quality = load_prompt("fineweb_edu"), load_prompt("germanweb_quality")
    assert edu.scale == (0, 1, 2, 3, 4, 5) and edu.criteria[0].answer_prefix == "Educational score:"
    assert [c.name for c in quality.criteria] == ["content", "language", "orthography"] and quality.combine == "min"
    with pytest.raises(FileNotFoundError, match="built-in"):
        load_prompt("nope")


@pytest.mark.parametrize("prompt", ["fineweb_edu", "germanweb_quality"])
def test_logits_and_generate_agree_on_a_forced_model(forced, prompt):
    logits = Judge(JudgeConfig(name="l", model=forced, prompt=prompt, mode="logits")).label(DOCS)
    generated = Judge(JudgeConfig(name="g", model=forced, prompt=prompt, mode="generate", samples=3, max_new_tokens=4)).label(DOCS)
    for a, b in zip(logits, generated):
        assert a["valid"] and b["valid"]
        assert a["score"] == b["score"] == 3.0
        assert a["expected"] == pytest.approx(3.0, abs=1e-3)
        assert b["raw_output"].split("\n---\n") == ["3"] * 3 * len(load_prompt(prompt).criteria)


def test_random_model_gives_a_proper_distribution_and_records_truncation(random_model):
    rows = Judge(JudgeConfig(name="r", model=random_model, max_doc_tokens=16)).label(DOCS)
    for row in rows:
        assert row["valid"] and sum(row["distribution"]) == pytest.approx(1.0, abs=1e-5)
        assert 0 <= row["expected"] <= 5 and row["score"] in {0.0, 1.0, 2.0, 3.0, 4.0, 5.0}
    assert rows[0]["truncated"] and "truncated" in rows[0]["reason"] and not rows[1]["truncated"]


def test_generate_mode_counts_invalid_answers_and_keeps_raw_text(random_model):
    rows = Judge(JudgeConfig(name="r", model=random_model, mode="generate", samples=3, max_new_tokens=3, seed=5)).label(DOCS)
    for row in rows:
        assert row["raw_output"] is not None and len(row["raw_output"].split("\n---\n")) == 3
        assert row["valid"] or "no valid answer" in row["reason"]


@pytest.fixture(scope="module")
def server(forced):
    with running_openai_server(forced, "tiny") as url:
        yield url


def test_openai_backend_over_http_matches_in_process(server, forced):
    config = dict(backend="openai", base_url=server, model="tiny", tokenizer=forced)
    logits = Judge(JudgeConfig(name="h", mode="logits", **config)).label(DOCS)
    generated = Judge(JudgeConfig(name="h", mode="generate", samples=2, max_new_tokens=4, **config)).label(DOCS)
    assert [r["score"] for r in logits] == [r["score"] for r in generated] == [3.0, 3.0, 3.0]
    assert all(r["valid"] for r in logits + generated)


def test_server_errors_and_timeouts_are_recorded_per_document(server, forced):
    wrong_model = Judge(JudgeConfig(name="w", backend="openai", base_url=server, model="other", tokenizer=forced, retries=0)).label(DOCS[:1])
    assert not wrong_model[0]["valid"] and wrong_model[0]["reason"].startswith("educational: http_error 404: ")
    assert "not served" in wrong_model[0]["reason"]
    dead = f"http://127.0.0.1:{free_port()}"
    started = time.time()
    unreachable = Judge(JudgeConfig(name="d", backend="openai", base_url=dead, model="tiny", retries=1, timeout_s=2)).label(DOCS[:2])
    assert all(not r["valid"] and "unreachable after 2 attempts: ConnectError" in r["reason"] for r in unreachable)
    assert time.time() - started < 30


def test_openai_judge_without_a_url_is_a_typed_config_error():
    with pytest.raises(BackendMisconfigured, match="needs base_url"):
        Judge(JudgeConfig(name="n", backend="openai", model="tiny"))


def test_openai_backend_renders_without_a_tokenizer():
    backend = OpenAIBackend("http://127.0.0.1:9", "m")
    text, tokens, cut = backend.renderer.truncate("x" * 100, 10)
    assert cut and len(text) == 40 and tokens == 25
    assert backend.renderer.render([{"role": "user", "content": "hi"}], "Score:").endswith("Assistant:Score:")


# FineWeb-Edu's annotation prompt as published (FineWeb paper appendix; the fineweb-edu-classifier
# model card), with kurate's {document} where FineWeb-Edu has <EXAMPLE>.
FINEWEB_EDU_PROMPT = """Below is an extract from a web page. Evaluate whether the page has a high educational value and could be useful in an educational setting for teaching from primary school to grade school levels using the additive 5-point scoring system described below. Points are accumulated based on the satisfaction of each criterion:

- Add 1 point if the extract provides some basic information relevant to educational topics, even if it includes some irrelevant or non-academic content like advertisements and promotional material.
- Add another point if the extract addresses certain elements pertinent to education but does not align closely with educational standards. It might mix educational content with non-educational material, offering a superficial overview of potentially useful topics, or presenting information in a disorganized manner and incoherent writing style.
- Award a third point if the extract is appropriate for educational use and introduces key concepts relevant to school curricula. It is coherent though it may not be comprehensive or could include some extraneous information. It may resemble an introductory section of a textbook or a basic tutorial that is suitable for learning but has notable limitations like treating concepts that are too complex for grade school students.
- Grant a fourth point if the extract highly relevant and beneficial for educational purposes for a level not higher than grade school, exhibiting a clear and consistent writing style. It could be similar to a chapter from a textbook or a tutorial, offering substantial educational content, including exercises and solutions, with minimal irrelevant information, and the concepts aren't too advanced for grade school students. The content is coherent, focused, and valuable for structured learning.
- Bestow a fifth point if the extract is outstanding in its educational value, perfectly suited for teaching either at primary school or grade school. It follows detailed reasoning, the writing style is easy to follow and offers profound and thorough insights into the subject matter, devoid of any non-educational or complex content.

The extract:
{document}.

After examining the extract:
- Briefly justify your total score, up to 100 words.
- Conclude with the score using the format: "Educational score: <total points>\""""


def test_fineweb_edu_prompt_is_the_published_text():
    criterion = load_prompt("fineweb_edu").criteria[0]
    assert criterion.user.strip() == FINEWEB_EDU_PROMPT
    # the user turn alone, as FineWeb-Edu sent it; the document goes where <EXAMPLE> was
    assert criterion.messages("Die Erde dreht sich.") == [
        {"role": "user", "content": FINEWEB_EDU_PROMPT.replace("{document}", "Die Erde dreht sich.")}
    ]
    assert criterion.answer_prefix == "Educational score:"
    assert load_prompt("germanweb_quality").criteria[0].messages("x")[0]["role"] == "system"
