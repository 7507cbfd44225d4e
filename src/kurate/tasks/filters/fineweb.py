"""FineWeb quality filter (Penedo et al. 2024, "The FineWeb Datasets", §3.3 custom filters).

Line statistics FineWeb found to separate good from bad pages, with the paper's thresholds:

- at most 12% of lines end in punctuation → reject (``min_line_punct_frac`` = 0.12);
- more than 67% of lines are short (≤ 30 characters) → reject;
- more than 10% of characters are in duplicated lines → reject (the paper's 0.1; datatrove's
  code default is 0.01);
- list-like: more than 0.3 newlines per word → reject (``new_line_ratio`` in datatrove).

Lines are non-blank and stripped; punctuation is ``TERMINAL_PUNCTUATION`` (FineWeb's . ' " ! ?
plus other scripts' end marks); duplicate lines count from their second occurrence.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from kurate.tasks.filters.base import KEEP, LanguageFilter, Verdict, reject
from kurate.tasks.filters.gopher_repetition import duplicates
from kurate.tasks.filters.text import Analysed, ends_with_terminal_punctuation


class FineWebSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_line_punct_frac: float = Field(0.12, ge=0, le=1, description="fewest lines ending in punctuation")
    short_line_length: int = Field(30, ge=0, description="a line of at most this many characters is short")
    max_short_line_frac: float = Field(0.67, ge=0, le=1, description="most short lines")
    max_dup_line_char_frac: float = Field(0.1, ge=0, le=1, description="most characters in duplicated lines")
    max_new_line_ratio: float = Field(0.3, ge=0, description="most newlines per word (list-like pages)")


def evaluate_fineweb(doc: Analysed, s: FineWebSettings, language: str) -> Verdict:
    lines = doc.lines
    if not lines:
        return reject("fineweb:empty", 0, "no non-blank lines")

    punct_frac = sum(map(ends_with_terminal_punctuation, lines)) / len(lines)
    if punct_frac < s.min_line_punct_frac:
        return reject(
            "fineweb:line_punct_ratio",
            punct_frac,
            f"{punct_frac:.0%} of lines end in punctuation < {s.min_line_punct_frac:.0%} ({language})",
        )
    short_frac = sum(len(line) <= s.short_line_length for line in lines) / len(lines)
    if short_frac > s.max_short_line_frac:
        return reject(
            "fineweb:short_line_ratio",
            short_frac,
            f"{short_frac:.0%} of lines have <= {s.short_line_length} characters > {s.max_short_line_frac:.0%}",
        )
    _, _, n_chars, dup_chars = duplicates(lines)
    dup_frac = dup_chars / n_chars
    if dup_frac > s.max_dup_line_char_frac:
        return reject(
            "fineweb:char_dup_ratio",
            dup_frac,
            f"{dup_frac:.0%} of characters are in duplicated lines > {s.max_dup_line_char_frac:.0%}",
        )
    newline_ratio = doc.text.count("\n") / max(1, len(doc.words))
    if newline_ratio > s.max_new_line_ratio:
        return reject(
            "fineweb:list_ratio",
            newline_ratio,
            f"{newline_ratio:.2f} newlines per word > {s.max_new_line_ratio} ({language})",
        )
    return KEEP


class FineWebFilter(LanguageFilter[FineWebSettings]):
    name = "fineweb"
    settings_type = FineWebSettings
    statistics = ("empty", "line_punct_ratio", "short_line_ratio", "char_dup_ratio", "list_ratio")

    def evaluate(self, doc: Analysed, settings: FineWebSettings, language: str) -> Verdict:
        return evaluate_fineweb(doc, settings, language)
