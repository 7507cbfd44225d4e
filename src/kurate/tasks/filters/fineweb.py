"""FineWeb quality filter (Penedo et al. 2024, "The FineWeb Datasets", §3.3 custom filters).

Line statistics FineWeb found to separate good from bad pages; each rejects the page:

- fewer than ``min_line_punct_frac`` (12%) of lines end in punctuation;
- more than ``max_short_line_frac`` (67%) of lines are short (at most 30 characters);
- more than ``max_dup_line_char_frac`` of the characters are in duplicated lines: 0.1 here, the
  value FineWeb 2 runs for every language ("we changed this from 0.01 in fineweb english",
  fineweb-2-pipeline.py); English FineWeb and datatrove's default use 0.01, which the ``en``
  section of filter_params.yaml sets;
- list-like: more than 0.3 newlines per word (``new_line_ratio`` in datatrove).

The statistics are datatrove's, on which FineWeb 2 tuned its per-language thresholds: lines are the
non-blank lines of the text split at "\\n", as written (not stripped: a line ending in ". " does
not end in punctuation); punctuation is the sentence-ending marks (. ! ? and other scripts' full
stops, no quotes, no ellipsis character); duplicate lines count from their second occurrence,
over the text's characters without newlines; words are ``word_tokens`` (punctuation included).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from kurate.tasks.filters.base import KEEP, LanguageFilter, Verdict, reject
from kurate.tasks.filters.gopher_repetition import duplicates
from kurate.tasks.filters.text import Analysed

# Sentence-ending marks: Latin, Arabic, Urdu, Devanagari, Ethiopic, Khmer, Myanmar, CJK, and the
# doubled question/exclamation marks (datatrove's TERMINAL_PUNCTUATION holds these and rarer ones).
STOP_CHARS: tuple[str, ...] = (
    ".", "!", "?", "؟", "۔", "।", "॥", "።", "፧", "។", "៕", "။", "‼", "‽", "⁇", "⁈", "⁉", "。", "！", "？", "｡", "．",
)  # fmt: skip


class FineWebSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_line_punct_frac: float = Field(0.12, ge=0, le=1, description="fewest lines ending in punctuation")
    stop_chars: tuple[str, ...] = Field(STOP_CHARS, description="what a line ending in punctuation ends with")
    short_line_length: int = Field(30, ge=0, description="a line of at most this many characters is short")
    max_short_line_frac: float = Field(0.67, ge=0, le=1, description="most short lines (1 switches the check off)")
    max_dup_line_char_frac: float = Field(0.1, ge=0, le=1, description="most characters in duplicated lines")
    max_new_line_ratio: float = Field(0.3, ge=0, description="most newlines per word (list-like pages)")


def evaluate_fineweb(doc: Analysed, s: FineWebSettings, language: str) -> Verdict:
    text = doc.text
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        return reject("fineweb:empty", 0, "no non-blank lines")

    punct_frac = sum(line.endswith(s.stop_chars) for line in lines) / len(lines)
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
    dup_chars = duplicates(lines)[3]
    dup_frac = dup_chars / max(1, len(text) - text.count("\n"))
    if dup_frac > s.max_dup_line_char_frac:
        return reject(
            "fineweb:char_dup_ratio",
            dup_frac,
            f"{dup_frac:.1%} of characters are in duplicated lines > {s.max_dup_line_char_frac:.1%}",
        )
    newline_ratio = text.count("\n") / max(1, len(doc.tokens))
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
