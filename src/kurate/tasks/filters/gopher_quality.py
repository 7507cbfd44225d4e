"""Gopher quality filter (Rae et al. 2021, "Scaling Language Models", appendix A.1.1).

Does the document look like prose in its language? Defaults are the paper's values: 50–100,000
words, mean word length 3–10, at most 0.1 hash symbols and 0.1 ellipses per word, at most 90% of
lines starting with a bullet and 30% ending with an ellipsis, at least 80% of words containing a
letter, and at least 2 of the language's stop words. Checks run in that order; the first failure
decides.

The statistics are computed the way datatrove computes them, because FineWeb 2's per-language
thresholds (filter_params.yaml) were tuned on datatrove's numbers:

- words are ``word_tokens`` (punctuation tokens included); the word count and the mean word
  length use only the tokens that are not punctuation alone; the hash, ellipsis and alpha ratios
  divide by all tokens, so a page heavy in punctuation has a lower alpha ratio;
- lines are every line of the text, blank ones included; a bullet line starts (after leading
  spaces) with "•" or "-";
- stop words are *distinct* stop words among the tokens, matched as written (case-sensitive).

A language without a stop-word list skips the stop-word check.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from kurate.tasks.filters.base import KEEP, LanguageFilter, Verdict, reject
from kurate.tasks.filters.text import Analysed, is_punctuation

ELLIPSES: tuple[str, ...] = ("...", "…")


class GopherQualitySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_words: int = Field(50, ge=0, description="fewest words (tokens that are not only punctuation)")
    max_words: int = Field(100_000, ge=0, description="most words (tokens that are not only punctuation)")
    min_mean_word_length: float = Field(3, ge=0, description="shortest mean word length in characters")
    max_mean_word_length: float = Field(10, ge=0, description="longest mean word length in characters")
    max_hash_word_ratio: float = Field(0.1, ge=0, description="most '#' per token")
    max_ellipsis_word_ratio: float = Field(0.1, ge=0, description="most '...'/'…' per token")
    bullets: tuple[str, ...] = Field(("•", "-"), description="characters that open a bullet line")
    max_bullet_line_frac: float = Field(0.9, ge=0, le=1, description="most lines starting with a bullet")
    max_ellipsis_line_frac: float = Field(0.3, ge=0, le=1, description="most lines ending with an ellipsis")
    min_alpha_word_frac: float = Field(0.8, ge=0, le=1, description="fewest tokens containing a letter")
    min_stop_words: int = Field(2, ge=0, description="fewest distinct stop words present")
    stop_words: frozenset[str] = Field(
        frozenset(), description="the language's stop words, matched as written; empty skips the check"
    )


def symbol_free(tokens: tuple[str, ...]) -> list[str]:
    """The tokens with at least one character that is not punctuation or a symbol."""
    return [token for token in tokens if not all(map(is_punctuation, token))]


def distinct_stop_words(tokens: tuple[str, ...], stop_words: frozenset[str]) -> int:
    """How many different stop words occur among the tokens (datatrove: set intersection)."""
    return len(stop_words.intersection(tokens))


def alpha_token_frac(tokens: tuple[str, ...]) -> float:
    """Fraction of tokens with at least one letter (punctuation tokens count in the denominator)."""
    return sum(any(ch.isalpha() for ch in token) for token in tokens) / len(tokens)


def evaluate_gopher_quality(doc: Analysed, s: GopherQualitySettings, language: str) -> Verdict:
    tokens = doc.tokens
    words = symbol_free(tokens)
    n_words = doc.extrapolated(len(words))
    if n_words < s.min_words:
        return reject("gopher_quality:too_few_words", n_words, f"{n_words} words < {s.min_words} required ({language})")
    if n_words > s.max_words:
        return reject("gopher_quality:too_many_words", n_words, f"{n_words} words > {s.max_words} allowed ({language})")
    if not words:  # only reachable with min_words = 0: nothing left to measure
        return KEEP

    mean_length = sum(map(len, words)) / len(words)
    if mean_length < s.min_mean_word_length:
        return reject(
            "gopher_quality:mean_word_length",
            mean_length,
            f"mean word length {mean_length:.2f} < {s.min_mean_word_length} ({language})",
        )
    if mean_length > s.max_mean_word_length:
        return reject(
            "gopher_quality:mean_word_length",
            mean_length,
            f"mean word length {mean_length:.2f} > {s.max_mean_word_length} ({language})",
        )

    hash_ratio = doc.text.count("#") / len(tokens)
    if hash_ratio > s.max_hash_word_ratio:
        return reject(
            "gopher_quality:hash_ratio", hash_ratio, f"{hash_ratio:.3f} '#' per word > {s.max_hash_word_ratio}"
        )
    ellipsis_ratio = sum(doc.text.count(e) for e in ELLIPSES) / len(tokens)
    if ellipsis_ratio > s.max_ellipsis_word_ratio:
        return reject(
            "gopher_quality:ellipsis_ratio",
            ellipsis_ratio,
            f"{ellipsis_ratio:.3f} ellipses per word > {s.max_ellipsis_word_ratio}",
        )

    lines = doc.text.splitlines()  # blank lines included, as datatrove counts them
    if lines:
        bullet_frac = sum(line.lstrip().startswith(s.bullets) for line in lines) / len(lines)
        if bullet_frac > s.max_bullet_line_frac:
            return reject(
                "gopher_quality:bullet_lines",
                bullet_frac,
                f"{bullet_frac:.0%} of lines start with a bullet > {s.max_bullet_line_frac:.0%}",
            )
        ellipsis_line_frac = sum(line.rstrip().endswith(ELLIPSES) for line in lines) / len(lines)
        if ellipsis_line_frac > s.max_ellipsis_line_frac:
            return reject(
                "gopher_quality:ellipsis_lines",
                ellipsis_line_frac,
                f"{ellipsis_line_frac:.0%} of lines end with an ellipsis > {s.max_ellipsis_line_frac:.0%}",
            )

    alpha_frac = alpha_token_frac(tokens)
    if alpha_frac < s.min_alpha_word_frac:
        return reject(
            "gopher_quality:alpha_words",
            alpha_frac,
            f"{alpha_frac:.0%} of words contain a letter < {s.min_alpha_word_frac:.0%}",
        )

    if s.stop_words:
        n_stop = distinct_stop_words(tokens, s.stop_words)
        if n_stop < s.min_stop_words:
            return reject(
                "gopher_quality:stop_words",
                n_stop,
                f"{n_stop} distinct stop words < {s.min_stop_words} required ({language})",
            )
    return KEEP


class GopherQualityFilter(LanguageFilter[GopherQualitySettings]):
    name = "gopher_quality"
    settings_type = GopherQualitySettings
    statistics = (
        "too_few_words", "too_many_words", "mean_word_length", "hash_ratio", "ellipsis_ratio",
        "bullet_lines", "ellipsis_lines", "alpha_words", "stop_words",
    )  # fmt: skip

    def evaluate(self, doc: Analysed, settings: GopherQualitySettings, language: str) -> Verdict:
        return evaluate_gopher_quality(doc, settings, language)
