"""C4 filter (Raffel et al. 2020, "Exploring the Limits of Transfer Learning", §2.2), as a document filter.

C4 cleans a page line by line and then decides on the page. This filter gives the page's verdict
the way datatrove's ``C4QualityFilter`` does (its defaults are this filter's defaults); it keeps
the document whole (a filter here decides, it does not rewrite), so the lines C4 would remove are
only left out of the sentence count:

1. each line is stripped; a line with a whitespace-separated word longer than
   ``max_word_length`` (1000) is dropped; Wikipedia citation marks ("[1]", "[edit]",
   "[citation needed]") are removed;
2. a line that does not end in terminal punctuation (``end_punctuation``: . ? ! " ' and, for
   scripts C4 never covered, their full stops), or ends in "...", is dropped
   (``require_terminal_punct``; FineWeb switched this off);
3. a line with fewer than ``min_words_per_line`` (3) whitespace-separated words is dropped;
4. among the lines left: "lorem ipsum" rejects the page; a line mentioning "javascript" is
   dropped; a "{" rejects the page (code); a line with a policy/cookie phrase is dropped;
5. the page is rejected when the remaining lines hold fewer than ``min_sentences`` (5) sentences.

Sentences are counted per line over ``word_tokens`` the way spaCy's sentencizer (datatrove's)
splits them: a new sentence starts at the first word after a ".", "!", "?" token. Deviation: ``policy_phrases`` adds German and
French phrases to C4's English ones (boilerplate is often in another language than the page);
they only drop lines.
"""

from __future__ import annotations

import re
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kurate.tasks.filters.base import KEEP, LanguageFilter, Verdict, reject
from kurate.tasks.filters.params import normalise_language
from kurate.tasks.filters.text import Analysed, is_punctuation, word_tokens

# C4's English policy phrases, with German and French equivalents. Lower case.
POLICY_PHRASES: tuple[str, ...] = (
    "terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies",
    "datenschutzerklärung", "datenschutzrichtlinie", "nutzungsbedingungen", "cookie-richtlinie",
    "cookie-einstellungen", "verwendet cookies", "verwenden cookies", "nutzt cookies", "nutzen cookies",
    "setzt cookies", "setzen cookies", "einsatz von cookies", "verwendung von cookies",
    "politique de confidentialité", "conditions d'utilisation", "politique de cookies",
    "politique relative aux cookies", "utilise des cookies", "utilisons des cookies", "utilisation des cookies",
)  # fmt: skip

# C4's terminal punctuation, plus the full stops of scripts C4 (English only) never saw.
END_PUNCTUATION: tuple[str, ...] = (".", "?", "!", '"', "'", "。", "！", "？", "؟", "۔", "।", "॥", "។", "။")
CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
# Tokens that end a sentence for spaCy's sentencizer (its default punct_chars, the common ones).
SENTENCE_PUNCT = frozenset({".", "!", "?", "。", "！", "？", "؟", "۔", "।", "॥", "።", "፧", "။", "។", "‼", "‽", "⁇", "⁈", "⁉", "｡"})


def _normalised(line: str) -> str:
    return line.lower().replace("’", "'")


@lru_cache(maxsize=8)
def policy_pattern(phrases: tuple[str, ...]) -> re.Pattern[str]:
    """One regex for all phrases (an alternation is searched in C; a loop over phrases is not)."""
    return re.compile("|".join(map(re.escape, phrases)) or r"(?!)")  # no phrases: never matches


class C4Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reject_lorem_ipsum: bool = Field(True, description="reject pages whose kept lines contain 'lorem ipsum'")
    reject_curly_bracket: bool = Field(True, description="reject pages whose kept lines contain '{'")
    drop_javascript_lines: bool = Field(True, description="leave lines mentioning javascript out of the count")
    drop_policy_lines: bool = Field(True, description="leave privacy/cookie/terms lines out of the count")
    policy_phrases: tuple[str, ...] = Field(POLICY_PHRASES, description="lower-case phrases marking a policy line")
    require_terminal_punct: bool = Field(True, description="keep only lines ending in terminal punctuation")
    end_punctuation: tuple[str, ...] = Field(END_PUNCTUATION, description="what a kept line may end with")
    remove_citations: bool = Field(True, description="remove [1], [edit], [citation needed] before the checks")
    max_word_length: int = Field(1000, ge=1, description="drop lines with a longer whitespace-separated word")
    min_sentences: int = Field(5, ge=0, description="fewest sentences in the lines C4 keeps")
    min_words_per_line: int = Field(3, ge=0, description="fewest whitespace-separated words for C4 to keep a line")

    @field_validator("policy_phrases")
    @classmethod
    def _normalise_phrases(cls, phrases: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_normalised(p) for p in phrases)


def count_sentences(line: str, language: str = "") -> int:
    """Sentences in one line the way spaCy's sentencizer splits it: a new sentence starts at the
    first word after a sentence-ending token ("." "!" "?" …; "z." and "usw." are words, not ends)."""
    tokens = word_tokens(line, language)
    sentences, after_end = (1 if tokens else 0), False
    for token in tokens:
        if token in SENTENCE_PUNCT:
            after_end = True
        elif after_end and not all(map(is_punctuation, token)):
            sentences += 1
            after_end = False
    return sentences


def evaluate_c4(doc: Analysed, s: C4Settings, language: str) -> Verdict:
    policy = policy_pattern(s.policy_phrases)
    lang = normalise_language(language)
    sentences = 0
    for raw in doc.text.splitlines():
        line = raw.strip()
        words = line.split()
        if any(len(word) > s.max_word_length for word in words):
            continue
        if s.remove_citations and "[" in line:
            line = CITATION.sub("", line)
        if s.require_terminal_punct and (not line.endswith(s.end_punctuation) or line.endswith("...")):
            continue
        if len(words) < s.min_words_per_line:
            continue
        lowered = _normalised(line)
        if s.reject_lorem_ipsum and "lorem ipsum" in lowered:
            return reject("c4:lorem_ipsum", None, "a kept line contains 'lorem ipsum'")
        if s.drop_javascript_lines and "javascript" in lowered:
            continue
        if s.reject_curly_bracket and "{" in line:
            return reject("c4:curly_bracket", None, "a kept line contains '{' (likely code)")
        if s.drop_policy_lines and policy.search(lowered):
            continue
        sentences += count_sentences(line, lang)
    if sentences < s.min_sentences:
        return reject(
            "c4:too_few_sentences",
            sentences,
            f"{sentences} sentences in lines C4 keeps < {s.min_sentences} required ({language})",
        )
    return KEEP


class C4Filter(LanguageFilter[C4Settings]):
    name = "c4"
    settings_type = C4Settings
    statistics = ("lorem_ipsum", "curly_bracket", "too_few_sentences")

    def evaluate(self, doc: Analysed, settings: C4Settings, language: str) -> Verdict:
        return evaluate_c4(doc, settings, language)
