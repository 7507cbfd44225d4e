"""How the filters see a document: tokens, words, lines — one definition shared by every filter.

Two word splits, because the thresholds were tuned on two different ones:

- ``word_tokens`` (what the filters use): the words datatrove's word tokenizers give for spaced
  scripts (spaCy's blank tokenizer for German, English, French), which FineWeb and FineWeb 2 tuned
  their thresholds on: whitespace-separated chunks with leading and trailing punctuation and
  symbols split off as tokens of their own ("Welt!" → "Welt", "!"; "(gut)." → "(", "gut", ")",
  "."; a run of dots stays one token, "..."), inner punctuation kept ("z.B.", "E-Mail-Adresse",
  "3,5", "14:30"), and French-style elisions split after the apostrophe ("l'homme" → "l'",
  "homme"), with a few of spaCy's per-language rules (German keeps inner hyphens and a number's
  period, "3. Mai"; abbreviations keep their period, "usw.", "z."; "/" splits "GNU/Linux"; a
  URL stays whole). Punctuation tokens count as words, as they did when the thresholds were tuned
  (docs/ARCHITECTURE.md, "heuristic filters"). An approximation of spaCy's rules, not a copy:
  bench/filters_vs_datatrove.py measures per-document agreement with datatrove itself.
- ``alnum_words``: runs of Unicode letters, digits and combining marks, joined across an inner apostrophe or
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


# Elided articles and pronouns that spaCy's French tokenizer splits off ("l'", "d'", "qu'").
ELISION = re.compile(r"^(?:[cdjlmnstCDJLMNST]|[Qq]u)['’](?=\w)")
ELIDING_LANGUAGES = frozenset({"fr", "it", "ca"})
# Languages whose tokenizer keeps a word's inner hyphens ("E-Mail-Adresse"); elsewhere a hyphen
# between two letters is a token of its own ("well", "-", "known"), as in spaCy's default rules.
HYPHEN_KEEPING_LANGUAGES = frozenset({"de"})
# Languages where a number keeps its period ("3. Mai", "im Jahr 2021.").
NUMBER_PERIOD_LANGUAGES = frozenset({"de"})
# Common abbreviations that keep their period (a single letter always does: "z.", "B.", "M.").
ABBREVIATIONS = frozenset(
    "usw bzw ca vgl ggf evtl inkl bzgl Nr Dr Prof Hr Fr Str Mio Mrd Jh Abb Bsp Tel Jan Feb Apr Aug Sep Sept "
    "Okt Nov Dez Mr Mrs Ms St Jr Sr vs Inc Ltd Co Mme Mlle Mgr etc".split()
)
URL_START = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|www\.)", re.IGNORECASE)
# A "/" or "=" between two characters splits a chunk ("GNU/Linux", "/etc/apt" → "/etc", "/", "apt").
INFIX_SLASH = re.compile(r"(?<=[^\s/~-])(/)(?=[^\s/-])")
# Characters spaCy does not split off the start ("/etc", "~/.ssh", "^A", "-Adresse") or the end
# ("username@") of a chunk.
KEPT_PREFIXES = frozenset("/-~^\\@_|")
KEPT_SUFFIXES = frozenset("@_")
INFIX_EQUALS = re.compile(r"(?<=[^\W\d_])(=)(?=[^\W\d_])")
INFIX_HYPHEN = re.compile(r"(?<=[^\W\d_])(-)(?=[^\W\d_])|(?<=\d)(-)(?=\d)")  # "well-known", "2014-02-11"
INFIX_DIGIT_HYPHEN = re.compile(r"(?<=\d)(-)(?=\d)")  # split in every language


@lru_cache(maxsize=4096)
def is_punctuation(char: str) -> bool:
    """Punctuation or symbol (Unicode categories P* and S*): split off a token's ends, and a token
    made only of these is a "symbol word" (datatrove's PUNCTUATION_SET, by Unicode category)."""
    return unicodedata.category(char)[0] in "PS"


def _keeps_period(core: str, language: str) -> bool:
    """Whether a final single "." belongs to the word before it (abbreviation, ordinal)."""
    if "." in core or core in ABBREVIATIONS or (len(core) == 1 and core.isalpha()):
        return True  # "z.B.", "U.S.", "usw.", "z."
    return language in NUMBER_PERIOD_LANGUAGES and core.isdigit()


def _split_chunk(chunk: str, language: str, out: list[str]) -> None:
    """Append the tokens of one whitespace-free chunk: prefix punctuation, core, suffix punctuation."""
    start, end = 0, len(chunk)
    while start < end and is_punctuation(chunk[start]) and chunk[start] not in KEPT_PREFIXES:
        stop = start + 1
        if chunk[start] == ".":
            while stop < end and chunk[stop] == ".":
                stop += 1
        out.append(chunk[start:stop])
        start = stop
    suffix: list[str] = []
    while end > start and is_punctuation(chunk[end - 1]) and chunk[end - 1] not in KEPT_SUFFIXES:
        first = end - 1
        if chunk[first] == "-" and first > start and chunk[first - 1].isalpha():
            break  # "Apfel-" in "Apfel- und Birnbäume" keeps its hyphen
        if chunk[first] == ".":
            while first > start and chunk[first - 1] == ".":
                first -= 1
            if end - first == 1 and _keeps_period(chunk[start:first], language):
                break
        suffix.append(chunk[first:end])
        end = first
    if start < end:
        core = chunk[start:end]
        elided = ELISION.match(core) if language in ELIDING_LANGUAGES else None
        if elided:
            out.append(core[: elided.end()])
            core = core[elided.end() :]
        if URL_START.match(core):
            out.append(core)
        else:
            parts = INFIX_SLASH.split(core) if "/" in core else [core]
            for part in parts:
                if "=" in part:
                    out.extend(p for p in INFIX_EQUALS.split(part) if p)
                elif "-" in part:
                    infix = INFIX_DIGIT_HYPHEN if language in HYPHEN_KEEPING_LANGUAGES else INFIX_HYPHEN
                    out.extend(p for p in infix.split(part) if p)
                elif part:
                    out.append(part)
    out.extend(reversed(suffix))


def word_tokens(text: str, language: str = "") -> list[str]:
    """The tokens of a text as datatrove's word tokenizer for ``language`` gives them, punctuation
    included (see the module docstring); never raises, O(len(text)).

    In scripts written without spaces, each character is a token (as in ``alnum_words``), and each
    punctuation character between them too, in text order.
    """
    patterns = word_patterns()
    if patterns.spaceless_char.search(text):
        return spaceless_token_pattern().findall(text)
    out: list[str] = []
    for chunk in text.split():
        if chunk.isalnum():  # most chunks of prose: nothing to split, decided in C
            out.append(chunk)
        else:
            _split_chunk(chunk, language, out)
    return out


@lru_cache(maxsize=1)
def spaceless_token_pattern() -> re.Pattern[str]:
    """A word of ``alnum_words``' mixed pattern, or any other single non-space character."""
    return re.compile(rf"{word_patterns().mixed.pattern}|[^\s]")


@dataclass(frozen=True)
class Analysed:
    """The part of a document that filters look at, split once and shared by all filters."""

    text: str  # the first ANALYSED_CHARS characters
    full_length: int  # length of the whole document in characters
    words: tuple[str, ...]  # alnum_words: letter/digit runs only
    lines: tuple[str, ...]  # non-blank lines, stripped
    tokens: tuple[str, ...]  # word_tokens: datatrove's words, punctuation included

    @property
    def truncated(self) -> bool:
        return self.full_length > len(self.text)

    @property
    def estimated_word_count(self) -> int:
        """Words in the whole document, extrapolated linearly when only its beginning was analysed."""
        return self.extrapolated(len(self.words))

    def extrapolated(self, count: int) -> int:
        """A count over the analysed beginning, scaled to the whole document."""
        if not self.truncated or not self.text:
            return count
        return round(count * self.full_length / len(self.text))


@lru_cache(maxsize=4)  # small: a key keeps its (possibly 10 MB) text alive
def analyse(text: str, language: str = "") -> Analysed:
    """Split a document once; cached because every filter in a chain asks for the same document
    (the key is cheap: a str caches its hash, and the same object compares by identity).
    ``language`` (normalised, "de") picks the tokenizer rules of ``word_tokens``."""
    head = text[:ANALYSED_CHARS]
    return Analysed(
        text=head,
        full_length=len(text),
        words=tuple(alnum_words(head)),
        lines=tuple(split_lines(head)),
        tokens=tuple(word_tokens(head, language)),
    )
