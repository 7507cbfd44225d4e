"""How the filters see a document: words, lines, paragraphs — one definition shared by every filter.

Words are runs of Unicode letters, digits and combining marks, joined across an inner apostrophe or
hyphen ("l'homme", "E-Mail-Adresse") and across a separator between digits ("3,5", "14:30",
"1.000.000"). A German compound is therefore one word, as it is on the page. Scripts written without
spaces (Han, kana, Thai, Lao, Khmer, Myanmar) have no word boundaries a regex can find, so each of
their characters (with its combining marks) counts as one word; word counts then stay comparable to
spaced scripts, at the price of a mean word length of ~1 (see the zh/ja/th overrides in
filter_params.yaml).

Only stdlib ``re`` is used: it has no ``\\p{M}`` class, so the character classes are built once from
``unicodedata`` (planes 0–1, ~30 ms on first use) and cached. Combining marks above U+FFFF (historic
scripts) split a word in texts without spaceless-script characters; see ``word_patterns``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

# Filters judge a document by its first ANALYSED_CHARS characters (~45k words of prose). Nearly
# every web document is shorter; a longer one is judged by its beginning, and its word count is
# extrapolated to its full length. This bounds the work on a 10 MB page to a fixed cost.
ANALYSED_CHARS = 300_000

# Scripts written without spaces between words (code point ranges, inclusive).
SPACELESS_RANGES: tuple[tuple[int, int], ...] = (
    (0x0E00, 0x0E7F),  # Thai
    (0x0E80, 0x0EFF),  # Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x19E0, 0x19FF),  # Khmer symbols
    (0x3005, 0x3007),  # 々 〆 〇 (ideographic iteration mark, closing mark, zero)
    (0x3040, 0x309F),  # Hiragana
    (0x30A0, 0x30FF),  # Katakana
    (0x3100, 0x312F),  # Bopomofo
    (0x31A0, 0x31BF),  # Bopomofo extended
    (0x31F0, 0x31FF),  # Katakana phonetic extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xA9E0, 0xA9FF),  # Myanmar extended-B
    (0xAA60, 0xAA7F),  # Myanmar extended-A
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF66, 0xFF9F),  # half-width katakana
    (0x20000, 0x3FFFF),  # CJK extensions B and later (planes 2 and 3, all Han)
)

# Characters that join two word parts into one word ("l'homme", "E-Mail", "Rhein‐Main").
WORD_JOINERS = "'’\\-\u2010\u2011"
# Characters that join two digit runs into one number ("3,5", "14:30", "1.000.000", "1/2").
NUMBER_JOINERS = ".,:/"

# Marks that end a line as a sentence: Latin, quotes that close a quoted sentence, CJK, Arabic,
# Urdu, Devanagari danda, Khmer and Myanmar full stops. Shared by the C4 and FineWeb filters.
SENTENCE_END_MARKS = ".!?…。！？؟۔।॥។။"
TERMINAL_PUNCTUATION: tuple[str, ...] = (*SENTENCE_END_MARKS, '"', "'", "»", "«", "“", "”", "’")

# A sentence ends at a run of end marks followed by whitespace, a closing quote/bracket or the end
# ("z. B." over-counts, "3.5" does not count); CJK full-width marks end a sentence wherever they are.
SENTENCE_END = re.compile(rf"[。！？]+|[{re.escape(SENTENCE_END_MARKS)}]+(?=[\s\"'»«“”’)\]]|$)")

PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n")


def _class_of(ranges: list[tuple[int, int]]) -> str:
    """A regex character class body for code point ranges."""
    return "".join(
        re.escape(chr(lo)) if lo == hi else f"{re.escape(chr(lo))}-{re.escape(chr(hi))}" for lo, hi in ranges
    )


def _ranges(code_points: list[int]) -> list[tuple[int, int]]:
    """Merge sorted code points into inclusive ranges."""
    out: list[tuple[int, int]] = []
    for cp in code_points:
        if out and out[-1][1] == cp - 1:
            out[-1] = (out[-1][0], cp)
        else:
            out.append((cp, cp))
    return out


@dataclass(frozen=True)
class WordPatterns:
    spaceless_char: re.Pattern[str]  # finds a character of a script written without spaces
    spaced: re.Pattern[str]  # words of a text without such characters (nearly all): fast
    mixed: re.Pattern[str]  # words of a text with them: explicit classes, ~6× slower


@lru_cache(maxsize=1)
def word_patterns() -> WordPatterns:
    """The word regexes, built on first use from the Unicode tables of this Python.

    The fast pattern leans on ``\\w`` (letters and digits, checked in C) plus the combining marks of
    the Basic Multilingual Plane; big explicit classes would be ~6× slower, because ``re`` scans
    ranges above U+FFFF one by one for every non-word character. ``\\w`` also matches "_", which
    ``alnum_words`` splits on afterwards.
    """
    word_chars: list[int] = []  # letters, digits, marks outside spaceless scripts
    spaceless_bases: list[int] = []  # letters and digits of spaceless scripts
    marks: list[int] = []
    spaceless_cps = {cp for lo, hi in SPACELESS_RANGES if hi < 0x20000 for cp in range(lo, hi + 1)}
    for cp in range(0x20000):  # planes 0–1; planes 2–3 are added as Han below
        category = unicodedata.category(chr(cp))
        if category[0] not in "LNM":
            continue
        if category[0] == "M":
            marks.append(cp)
        if cp in spaceless_cps:
            if category[0] != "M":
                spaceless_bases.append(cp)
        else:
            word_chars.append(cp)
    joiner = rf"(?:[{WORD_JOINERS}]|(?<=\d)[{re.escape(NUMBER_JOINERS)}](?=\d))"
    spaced_char = rf"[\w{_class_of(_ranges([m for m in marks if m <= 0xFFFF]))}]"
    spaceless = _class_of(_ranges(spaceless_bases) + [(0x20000, 0x3FFFF)])
    word = _class_of(_ranges(word_chars))
    mark = _class_of(_ranges(marks))
    return WordPatterns(
        spaceless_char=re.compile(f"[{_class_of(list(SPACELESS_RANGES))}]"),
        spaced=re.compile(rf"{spaced_char}+(?:{joiner}{spaced_char}+)*"),
        mixed=re.compile(rf"[{spaceless}][{mark}]*|[{word}]+(?:{joiner}[{word}]+)*"),
    )


def alnum_words(text: str) -> list[str]:
    """The letter-and-digit words of a text, punctuation and spaces dropped (see the module
    docstring); never raises, O(len(text))."""
    patterns = word_patterns()
    if patterns.spaceless_char.search(text):
        return patterns.mixed.findall(text)
    words = patterns.spaced.findall(text)
    if "_" in text:  # "\w" counts "_" as a word character; it is a separator here
        words = [part for word in words for part in word.split("_") if part]
    return words


def split_lines(text: str) -> list[str]:
    """Non-blank lines, stripped: blank lines separate content, they are not content."""
    return [line for line in (raw.strip() for raw in text.splitlines()) if line]


def split_paragraphs(text: str) -> list[str]:
    """Non-blank paragraphs (separated by a blank line), stripped."""
    return [p for p in (raw.strip() for raw in PARAGRAPH_BREAK.split(text)) if p]


def ends_with_terminal_punctuation(line: str) -> bool:
    return line.endswith(TERMINAL_PUNCTUATION)


@dataclass(frozen=True)
class Analysed:
    """The part of a document that filters look at, split once and shared by all filters."""

    text: str  # the first ANALYSED_CHARS characters
    full_length: int  # length of the whole document in characters
    words: tuple[str, ...]
    lines: tuple[str, ...]

    @property
    def truncated(self) -> bool:
        return self.full_length > len(self.text)

    @property
    def estimated_word_count(self) -> int:
        """Words in the whole document, extrapolated linearly when only its beginning was analysed."""
        if not self.truncated or not self.text:
            return len(self.words)
        return round(len(self.words) * self.full_length / len(self.text))


@lru_cache(maxsize=4)  # small: a key keeps its (possibly 10 MB) text alive
def analyse(text: str) -> Analysed:
    """Split a document once; cached because every filter in a chain asks for the same document
    (the key is cheap: a str caches its hash, and the same object compares by identity)."""
    head = text[:ANALYSED_CHARS]
    return Analysed(
        text=head, full_length=len(text), words=tuple(alnum_words(head)), lines=tuple(split_lines(head))
    )
