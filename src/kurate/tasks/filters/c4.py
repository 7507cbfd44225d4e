"""C4 filter (Raffel et al. 2020, "Exploring the Limits of Transfer Learning", §2.2), as a document filter.

C4 cleans pages line by line and then decides on the page. We keep documents whole, so each C4
rule becomes either a rejection or a threshold:

- "lorem ipsum" anywhere → reject (C4 does the same).
- a curly bracket "{" anywhere → reject (C4 does the same: it signals code).
- lines mentioning "javascript" → reject when they are more than ``max_javascript_line_frac``
  (0.3) of the lines: the page is an "enable JavaScript" notice, not content.
- policy/cookie lines (C4's English phrases plus German and French ones) → reject when they are
  more than ``max_policy_line_frac`` (0.3) of the lines: the page is a cookie banner or a policy.
  Bare "Cookies" is not a phrase: in German it is also the pastry.
  C4 itself drops such lines, never the page. Rejecting a page for any one such line, as a
  first version did, dropped 5 good articles from the 142-page web sample (two on privacy law
  quoting "Nutzungsbedingungen"/"Datenschutzrichtlinie", a Python tutorial and a developer
  profile mentioning JavaScript, a news story with a "Privacy Policy." footer) to catch one
  cookie banner; so a few such lines are tolerated, and they never count as sentences below.
- fraction of lines ending in terminal punctuation → threshold ``min_terminal_punct_line_frac``,
  off by default (0.0): C4 drops such lines rather than pages, and FineWeb's tuned version of
  this statistic (``fineweb.min_line_punct_frac`` = 0.12) is the one we apply.
- fewer than ``min_sentences`` (3) sentences in the lines C4 would keep (ending in terminal
  punctuation, at least ``min_words_per_line`` (5) words, no javascript/policy) → reject; this is
  C4's page-level rule. Sentences are counted by end marks, so "z. B." over-counts slightly.
"""

from __future__ import annotations

import re
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kurate.tasks.filters.base import KEEP, LanguageFilter, Verdict, reject
from kurate.tasks.filters.text import SENTENCE_END, Analysed, alnum_words, ends_with_terminal_punctuation

# C4's English policy phrases, with German and French equivalents (boilerplate is often in
# another language than the page, so every language checks all of them). Lower case.
POLICY_PHRASES: tuple[str, ...] = (
    "terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies",
    "datenschutzerklärung", "datenschutzrichtlinie", "nutzungsbedingungen", "cookie-richtlinie",
    "cookie-einstellungen", "verwendet cookies", "verwenden cookies", "nutzt cookies", "nutzen cookies",
    "setzt cookies", "setzen cookies", "einsatz von cookies", "verwendung von cookies",
    "politique de confidentialité", "conditions d'utilisation", "politique de cookies",
    "politique relative aux cookies", "utilise des cookies", "utilisons des cookies", "utilisation des cookies",
)  # fmt: skip


def _normalised(line: str) -> str:
    return line.casefold().replace("’", "'")


@lru_cache(maxsize=8)
def policy_pattern(phrases: tuple[str, ...]) -> re.Pattern[str]:
    """One regex for all phrases (an alternation is searched in C; a loop over phrases is not)."""
    return re.compile("|".join(map(re.escape, phrases)) or r"(?!)")  # no phrases: never matches


LOREM_IPSUM = re.compile(r"lorem\s+ipsum", re.IGNORECASE)


class C4Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reject_lorem_ipsum: bool = Field(True, description="reject documents containing 'lorem ipsum'")
    reject_curly_bracket: bool = Field(True, description="reject documents containing '{'")
    max_javascript_line_frac: float = Field(0.3, ge=0, le=1, description="most lines mentioning javascript")
    max_policy_line_frac: float = Field(0.3, ge=0, le=1, description="most privacy/cookie/terms lines")
    policy_phrases: tuple[str, ...] = Field(POLICY_PHRASES, description="lower-case phrases marking a policy line")
    min_terminal_punct_line_frac: float = Field(0.0, ge=0, le=1, description="fewest lines ending a sentence")
    min_sentences: int = Field(3, ge=0, description="fewest sentences in the lines C4 keeps")
    min_words_per_line: int = Field(5, ge=0, description="fewest words for C4 to keep a line")

    @field_validator("policy_phrases")
    @classmethod
    def _normalise_phrases(cls, phrases: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_normalised(p) for p in phrases)


def evaluate_c4(doc: Analysed, s: C4Settings, language: str) -> Verdict:
    if s.reject_lorem_ipsum and LOREM_IPSUM.search(doc.text):
        return reject("c4:lorem_ipsum", None, "contains 'lorem ipsum'")
    if s.reject_curly_bracket and "{" in doc.text:
        return reject("c4:curly_bracket", None, "contains '{' (likely code)")

    javascript_lines = policy_lines = terminal_lines = sentences = 0
    first_policy_phrase = ""
    policy = policy_pattern(s.policy_phrases)
    # Most documents mention neither: one search over the whole text spares a search per line.
    folded = _normalised(doc.text)
    may_mention = "javascript" in folded or policy.search(folded) is not None
    for line in doc.lines:
        if may_mention:
            lowered = _normalised(line)
            if "javascript" in lowered:
                javascript_lines += 1
                continue
            found = policy.search(lowered)
            if found is not None:
                policy_lines += 1
                first_policy_phrase = first_policy_phrase or found.group()
                continue
        if not ends_with_terminal_punctuation(line):
            continue
        terminal_lines += 1
        if sentences < s.min_sentences and len(alnum_words(line)) >= s.min_words_per_line:
            sentences += max(1, len(SENTENCE_END.findall(line)))

    n_lines = len(doc.lines)
    if n_lines and javascript_lines / n_lines > s.max_javascript_line_frac:
        return reject(
            "c4:javascript",
            javascript_lines / n_lines,
            f"{javascript_lines} of {n_lines} lines mention javascript > {s.max_javascript_line_frac:.0%}",
        )
    if n_lines and policy_lines / n_lines > s.max_policy_line_frac:
        return reject(
            "c4:policy",
            policy_lines / n_lines,
            f"{policy_lines} of {n_lines} lines are privacy/cookie/terms notices > {s.max_policy_line_frac:.0%} "
            f"(first: {first_policy_phrase!r})",
        )
    if n_lines:
        frac = terminal_lines / n_lines
        if frac < s.min_terminal_punct_line_frac:
            return reject(
                "c4:terminal_punct",
                frac,
                f"{frac:.0%} of lines end in terminal punctuation < {s.min_terminal_punct_line_frac:.0%}",
            )
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
    statistics = ("lorem_ipsum", "curly_bracket", "javascript", "policy", "terminal_punct", "too_few_sentences")

    def evaluate(self, doc: Analysed, settings: C4Settings, language: str) -> Verdict:
        return evaluate_c4(doc, settings, language)
