"""Language ID with the bundled fastText lid.176 model on hand-written paragraphs and odd input."""

from __future__ import annotations

import time

import pytest

from kurate.tasks.langid import MAX_CHARS, LanguageIdentifier, bundled_model_path, default_identifier, prepare

GERMAN = (
    "Am Samstagmorgen öffnet der Wochenmarkt auf dem Kirchplatz schon um sieben Uhr. Die Bauern aus "
    "dem Umland bringen Kartoffeln, Eier und frisches Gemüse mit, und wer früh kommt, bekommt noch "
    "das beste Brot vom Holzofenbäcker."
)
ENGLISH = (
    "The museum reopened last spring after a long renovation. Visitors can now walk through the old "
    "engine hall, where guides explain how the steam pumps once kept the mines from flooding."
)
FRENCH = (
    "Chaque été, le petit village accueille un festival de musique qui attire des visiteurs de toute "
    "la région. Les concerts ont lieu dans la cour du château, et les habitants préparent des repas "
    "pour les artistes."
)


@pytest.fixture(scope="module")
def lid() -> LanguageIdentifier:
    return default_identifier()


def test_bundled_model_ships_in_the_wheel():
    path = bundled_model_path()
    assert path.name == "lid.176.ftz" and path.stat().st_size > 500_000


def test_german_english_french_identified_confidently(lid):
    results = lid.predict([GERMAN, ENGLISH, FRENCH])
    assert [label for label, _ in results] == ["de", "en", "fr"]
    assert all(score > 0.8 for _, score in results), results


def test_batch_order_is_preserved(lid):
    texts = [FRENCH, GERMAN, "", ENGLISH, GERMAN, "   \n\t "]
    labels = [label for label, _ in lid.predict(texts)]
    assert labels == ["fr", "de", "und", "en", "de", "und"]
    assert lid.predict([]) == []


def test_empty_and_blank_text_is_undetermined(lid):
    assert lid.predict(["", " ", "\n\n", "\x00\x01"]) == [("und", 0.0)] * 4


def test_newlines_do_not_matter(lid):
    multi_line = GERMAN.replace(". ", ".\n")
    assert lid.predict([multi_line])[0][0] == "de"
    assert "\n" not in prepare(multi_line)


@pytest.mark.parametrize(
    "odd",
    [
        "abc \ud800\udfff\udcff def",  # lone surrogates, as from surrogateescape decoding
        "\x00" + GERMAN,  # fastText strings are C strings: a NUL must not hide the rest
        bytes(range(256)).decode("latin-1"),
        "😀🎉👍🏽" * 50,
        "东京是日本的首都。" * 10,
        "اللغة العربية جميلة جداً",
    ],
)
def test_odd_input_never_raises(lid, odd):
    [(label, score)] = lid.predict([odd])
    assert isinstance(label, str) and label and 0.0 <= score <= 1.0


def test_nul_prefix_does_not_hide_the_text(lid):
    assert lid.predict(["\x00" + GERMAN])[0][0] == "de"


def test_only_the_beginning_of_a_huge_page_is_read(lid):
    page = GERMAN + " " + ENGLISH * 60_000  # ~10 MB; German only in the first characters
    assert len(prepare(page)) <= MAX_CHARS
    start = time.perf_counter()
    [(label, _)] = lid.predict([page])
    assert time.perf_counter() - start < 0.5
    assert label in {"de", "en"}


def test_default_identifier_is_cached():
    assert default_identifier() is default_identifier()


def test_explicit_model_path():
    lid = LanguageIdentifier(str(bundled_model_path()))
    assert lid.predict([ENGLISH])[0][0] == "en"
