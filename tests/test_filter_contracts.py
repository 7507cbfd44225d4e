"""Every registered heuristic filter meets the ``DocumentFilter`` contract (docs/ARCHITECTURE.md,
"Contracts"). Parametrized over ``FILTERS``, so a new filter is checked here without editing this file.

The texts are the demo pages (kurate.demo) as the curate stage sees them: the main text an
extractor finds in each HTML page, in the page's language — articles, near-duplicates, navigation
pages, spam, charset edge cases, an empty page and a 404.
"""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from kurate.demo.pages import demo_pages
from kurate.tasks.extract import extract_text
from kurate.tasks.filters import FILTERS, DocumentFilter, Verdict, load_filter_params
from kurate.tasks.filters.text import analyse

NAMES = sorted(FILTERS)


def _page_texts() -> list[tuple[str, str, str]]:
    """(label, language, text) for every HTML demo page."""
    texts = []
    for page in demo_pages():
        if not page.content_type or "html" not in page.content_type or not page.body:
            continue
        charset = "cp1252" if page.kind == "latin1" else "utf-8"
        text = extract_text(page.body.decode(charset), "resiliparse", page.url)
        texts.append((f"{page.kind} {page.url}", page.lang or "de", text))
    return texts


@pytest.fixture(scope="module")
def texts() -> list[tuple[str, str, str]]:
    return _page_texts()


@pytest.fixture(scope="module")
def params():
    return load_filter_params()


def _assert_well_formed(document_filter: DocumentFilter, verdict: Verdict, language: str, label: str) -> None:
    assert isinstance(verdict, Verdict), f"{document_filter.name} on {label}: {verdict!r} is not a Verdict"
    assert isinstance(verdict.keep, bool)
    if verdict.keep:
        assert verdict.reason is None, f"{document_filter.name} keeps {label} but gives reason {verdict.reason!r}"
        return
    declared = document_filter.reasons(language)
    assert verdict.reason in declared, (
        f"{document_filter.name} rejects {label} with {verdict.reason!r}, not among its declared {sorted(declared)}"
    )
    assert isinstance(verdict.detail, str) and verdict.detail, f"{document_filter.name}: a rejection explains itself"
    assert verdict.value is None or isinstance(verdict.value, float)


@pytest.mark.parametrize("name", NAMES)
def test_registry_entry_is_named_and_configurable(name):
    cls = FILTERS[name]
    assert cls.name == name, f"FILTERS[{name!r}] is named {cls.name!r}"
    assert issubclass(cls.settings_type, BaseModel)
    assert cls.settings_type.model_config.get("extra") == "forbid", f"{name}: a typo in filter_params.yaml must fail"
    cls.settings_type()  # the defaults (the papers' values) are valid on their own


@pytest.mark.parametrize("name", NAMES)
def test_implements_the_protocol_and_declares_its_reasons(name, params):
    for document_filter in (FILTERS[name](params), FILTERS[name]()):
        assert isinstance(document_filter, DocumentFilter)
        for language in [*params.languages, "xx"]:
            declared = document_filter.reasons(language)
            assert declared, f"{name} declares no rejection reasons for {language}"
            assert all(reason.startswith(f"{name}:") for reason in declared), sorted(declared)


@pytest.mark.parametrize("name", NAMES)
def test_decides_every_demo_page_with_a_declared_reason(name, params, texts):
    document_filter = FILTERS[name](params)
    decisions = []
    for label, language, text in texts:
        verdict = document_filter.check(text, language)
        _assert_well_formed(document_filter, verdict, language, label)
        decisions.append(verdict.keep)
    # The demo pages hold both good articles and pages no filter should want: a filter that keeps
    # or drops all of them decides nothing.
    assert any(decisions) and not all(decisions), f"{name} kept {sum(decisions)} of {len(decisions)} demo pages"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("text", ["", " \n\t\n ", "\x00\x01\ufffd", "."], ids=["empty", "blank", "control", "dot"])
def test_handles_empty_text(name, params, text):
    document_filter = FILTERS[name](params)
    for language in [*params.languages, "xx"]:
        _assert_well_formed(document_filter, document_filter.check(text, language), language, repr(text))


@pytest.mark.parametrize("name", NAMES)
def test_is_deterministic(name, params, texts):
    first = [FILTERS[name](params).check(text, language) for _, language, text in texts]
    analyse.cache_clear()  # the second pass must not just reuse the first one's analysis
    fresh = FILTERS[name](params)
    second = [fresh.check(text, language) for _, language, text in texts]
    again = [fresh.check(text, language) for _, language, text in texts]
    assert first == second == again
