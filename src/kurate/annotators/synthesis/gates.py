"""Quality gates on every generation: plain ``check_*`` functions (usable and testable on their own) and
``Gates``, which loads the models they need once. The first failing gate's ``Rejection`` goes to ``rejects``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from kurate.annotators.synthesis.config import GateConfig
from kurate.annotators.synthesis.prompts import SynthPrompt, normalise

@dataclass(frozen=True)
class Rejection:
    reason: str
    value: float | None = None
    detail: str | None = None


def word_ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    """Normalised word n-grams (the whole text as one gram when it is shorter than n words)."""
    words = normalise(text).split()
    if len(words) < n:
        return {tuple(words)} if words else set()
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def source_word_share(text: str, source: str, min_letters: int = 6) -> float:
    """Share of ``text``'s distinct content words (≥ min_letters letters: mostly nouns, verbs and
    adjectives, few function words) that occur in ``source``; 1.0 when it has none."""
    words = {w for w in normalise(text).split() if len(w) >= min_letters and not w.isdigit()}
    return len(words & set(normalise(source).split())) / len(words) if words else 1.0


def containment(text: str, reference: str, n: int) -> float:
    """Share of ``text``'s word n-grams that also occur in ``reference`` (exact, not estimated)."""
    grams = word_ngrams(text, n)
    return len(grams & word_ngrams(reference, n)) / len(grams) if grams else 0.0


REFUSAL_PATTERNS = [
    r"\bals (eine )?(ki|künstliche intelligenz)\b", r"\bals (ein )?(sprachmodell|ki-modell|ki-assistent)\b",
    r"\bich kann (dir |ihnen )?(dabei )?(leider )?(nicht|keine[nm]?)\b", r"\bich bin (leider )?nicht in der lage\b",
    r"\bes tut mir leid\b", r"\bleider kann ich\b", r"\bi (cannot|can't|can not|am unable|'m unable)\b",
    r"\bas an ai\b", r"\bas a language model\b", r"\bi'?m sorry\b", r"\bi am sorry\b",
]
META_OPENERS = [
    r"^(hier (ist|sind|folgt|folgen|kommt|finden sie|findest du)|im folgenden|nachfolgend|gerne|gern|natürlich|selbstverständlich|klar|okay|ok)\b",
    r"^(sure|certainly|of course|here (is|are)|below is)\b",
    r"^(ich habe|ich werde|ich möchte) (den|die|das|ihnen|dir)\b",
]
META_ANYWHERE = [
    r"\bich hoffe,? (das|dies) hilft\b", r"\blass(t)? mich wissen\b", r"\bi hope this helps\b", r"\blet me know\b",
    r"\b(der|die|den|dem) (obige[nm]?|gegebene[nm]?|vorliegende[nm]?|ursprüngliche[nm]?|originale[nm]?) text\b",
    r"\bumformulierte[rns]? (text|version|fassung)\b",
]


def check_length(text: str, source: str, prompt_type: str, gates: GateConfig) -> Rejection | None:
    n = len(text)
    if n == 0 or not text.strip():
        return Rejection("empty", 0.0, "no text after stop strings")
    if n < gates.min_chars:
        return Rejection("too_short", float(n), f"{n} chars < {gates.min_chars}")
    if n > gates.max_chars:
        return Rejection("too_long", float(n), f"{n} chars > {gates.max_chars}")
    bounds = gates.length_ratio.get(prompt_type)
    if bounds and source:
        ratio = n / max(len(source), 1)
        if ratio < bounds[0]:
            return Rejection("length_ratio_low", ratio, f"{n} chars = {ratio:.2f} × source < {bounds[0]} ({prompt_type})")
        if ratio > bounds[1]:
            return Rejection("length_ratio_high", ratio, f"{n} chars = {ratio:.2f} × source > {bounds[1]} ({prompt_type})")
    return None


def check_meta(text: str, prompt: SynthPrompt | None, gates: GateConfig) -> Rejection | None:
    """Refusals, meta text about the task ("Hier ist eine Zusammenfassung", "Als KI …") and echoed
    instruction lines of the prompt."""
    lowered = text.lower()
    head = lowered[:400]
    for pattern in REFUSAL_PATTERNS + [re.escape(p.lower()) for p in gates.refusal_phrases]:
        found = re.search(pattern, head)
        if found:
            return Rejection("refusal", None, f"refusal phrase {found.group(0)!r}")
    first_line = next((line.strip() for line in lowered.splitlines() if line.strip()), "")
    for pattern in META_OPENERS:
        found = re.search(pattern, first_line)
        if found:
            return Rejection("meta_text", None, f"opens with {first_line[:80]!r}")
    if first_line.endswith(":") and len(first_line) < 80 and not first_line.startswith(("frage", "antwort")):
        return Rejection("meta_text", None, f"opens with a heading about the task {first_line!r}")
    for pattern in META_ANYWHERE + [re.escape(p.lower()) for p in gates.meta_phrases]:
        found = re.search(pattern, lowered)
        if found:
            return Rejection("meta_text", None, f"meta phrase {found.group(0)!r}")
    if prompt is not None:
        normalised = normalise(text)
        for line in prompt.instruction_lines():
            if line in normalised:
                return Rejection("prompt_echo", None, f"repeats the instruction {line[:80]!r}")
        for index, (_, example) in enumerate(prompt.examples):  # base models like to copy a worked example
            overlap = containment(text, example, gates.ngram)
            if overlap >= gates.max_example_overlap:
                return Rejection("prompt_echo", overlap, f"{overlap:.0%} of its {gates.ngram}-grams come from worked example {index + 1}")
    return None


def check_language(text: str, identifier, gates: GateConfig) -> tuple[Rejection | None, str, float]:
    language, score = identifier.predict([text])[0]
    if language != gates.language or score < gates.min_language_score:
        return (Rejection(f"language:{language}", score, f"{language} {score:.2f} (need {gates.language} ≥ {gates.min_language_score})"),
                language, score)
    return None, language, score


def check_filters(text: str, filters, language: str) -> Rejection | None:
    from kurate.tasks.filters import first_rejection

    found = first_rejection(filters, text, language)
    if found is None:
        return None
    _, verdict = found
    return Rejection(verdict.reason or "filter", verdict.value, verdict.detail)


def check_similarity(text: str, source: str, prompt_type: str, hasher, gates: GateConfig) -> tuple[Rejection | None, float]:
    from kurate.tasks.minhash import jaccard_estimate

    signatures = hasher.signatures([text, source])
    similarity = float(jaccard_estimate(signatures[0], signatures[1]))
    if similarity >= gates.max_jaccard:
        return Rejection("near_copy", similarity, f"estimated Jaccard {similarity:.2f} ≥ {gates.max_jaccard} with the source"), similarity
    copied = containment(text, source, gates.ngram)
    if copied >= gates.max_containment:
        return Rejection("near_copy", copied, f"{copied:.0%} of its {gates.ngram}-grams are in the source (≥ {gates.max_containment:.0%})"), similarity
    if gates.min_jaccard > 0 and prompt_type in gates.min_jaccard_types and similarity < gates.min_jaccard:
        return Rejection("too_dissimilar", similarity, f"estimated Jaccard {similarity:.2f} < {gates.min_jaccard} ({prompt_type})"), similarity
    shared = source_word_share(text, source)
    if shared < gates.min_source_words:
        return Rejection("off_topic", shared, f"{shared:.0%} of its content words occur in the source (< {gates.min_source_words:.0%})"), similarity
    return None, similarity


@dataclass
class GateResult:
    rejection: Rejection | None
    language: str | None = None
    language_score: float | None = None
    similarity: float | None = None

    @property
    def accepted(self) -> bool:
        return self.rejection is None


class Gates:
    """All gates with their models loaded once (language ID, filters, MinHash)."""

    def __init__(self, config: GateConfig):
        from kurate.tasks.filters import build_filters, load_filter_params
        from kurate.tasks.langid import default_identifier
        from kurate.tasks.minhash import MinHashConfig, MinHasher

        self.config = config
        self.identifier = default_identifier()
        self.filters = build_filters(config.filters, load_filter_params(config.filter_params))
        self.hasher = MinHasher(MinHashConfig(ngram=config.ngram))

    def check(self, text: str, source: str, prompt_type: str, prompt: SynthPrompt | None = None) -> GateResult:
        g = self.config
        rejection = check_length(text, source, prompt_type, g) or check_meta(text, prompt, g)
        if rejection:
            return GateResult(rejection)
        rejection, language, score = check_language(text, self.identifier, g)
        result = GateResult(rejection, language, score)
        if rejection:
            return result
        result.rejection = check_filters(text, self.filters, g.language)
        if result.rejection:
            return result
        result.rejection, result.similarity = check_similarity(text, source, prompt_type, self.hasher, g)
        return result

