"""The synthesize stage: LLM rewrites of high-quality German documents (Aleph-Alpha-GermanWeb §synthetic).

    sources   curated German documents (``language = 'de'``), only those ``kept`` when a ``scores``
              dataset exists; seeded order, optional ``max_docs``; grouped into units of
              ``docs_per_unit`` documents (the resume granularity)
    chunks    each document is split into paragraph-aligned chunks that fit the model's context
              (counted with the backend's tokenizer), with optional paragraph overlap; every chunk
              has a stable id and a prompt type drawn from the configured mix, seeded per chunk (or
              every active type, ``every_type``)
    generate  the judges' backends (transformers / openai / vllm); chat template (``style: chat``)
              or a few-shot prompt for base models (``style: fewshot``, the default: the embedded
              generator is gemma-3-270m base); top_p, repetition penalty, stop strings (the backend
              stops early; the text is cut at the first stop string afterwards)
    gates     every generation: length (absolute and relative to its source), refusal / meta text /
              prompt echo (instruction lines, or copying a worked example), language ID, the curate
              stage's repetition and quality filters, and a MinHash similarity band against its
              source plus n-gram containment in it (a copied paragraph of a long source is a near
              copy too); the first failing gate decides
    commit    accepted rows → ``synthetic``; rejected ones → ``rejects`` (stage ``synthesize``), both
              in one unit of stage ``synthesize-<name>``: committed units are skipped on re-runs

``SynthWorker`` holds one loaded model and works unit after unit (one per Ray actor in the flow).
The gates are plain functions (``check_*``) so they can be used and tested on their own.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal, Sequence

import pyarrow as pa
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kurate.annotators.judge import JudgeConfig, make_backend
from kurate.storage.catalog import Catalog
from kurate.storage.fs import StorageOptions
from kurate.storage.schemas import REJECTS, SYNTHETIC
from kurate.storage.shards import ShardStore, UnitKey, config_hash

PROMPT_TYPES: tuple[str, ...] = ("wikipedia", "summary", "qa", "list", "simple")
DEFAULT_MIX = {"wikipedia": 0.3, "summary": 0.2, "qa": 0.2, "list": 0.15, "simple": 0.15}
REJECT_STAGE = "synthesize"
PROMPTS_DIR = Path(__file__).with_name("prompts")
UNBOUNDED = 10**9
# gemma-3-270m base (Gemma Terms of Use): writes fluent German continuations, so with few-shot prompts
# it is the embedded generator; SmolLM2-135M-Instruct follows a chat template but writes English.
EMBEDDED_GENERATOR_MODEL = "embedded:gemma-3-270m"


def stage_of(name: str) -> str:
    return f"synthesize-{name}"


def _sha(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()


# --- configuration --------------------------------------------------------------------------------


class GeneratorConfig(BaseModel):
    """The generating model: the same backends (and fields) as a judge's."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["transformers", "openai", "vllm"] = "transformers"
    model: str = Field(EMBEDDED_GENERATOR_MODEL, description="HF id, local path, the server's model name, or an embedded model "
                       "(embedded:gemma-3-270m, embedded:smollm2-135m-instruct).")
    dtype: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    batch_size: int = Field(8, ge=1, description="Prompts per generate batch (transformers; halves on CUDA OOM).")
    base_url: str | None = Field(None, description="openai backend: server URL, e.g. http://127.0.0.1:8000")
    api_key_env: str | None = Field(None, description="openai backend: name of the env var holding the API key.")
    tokenizer: str | None = Field(None, description="openai backend: HF tokenizer for the chat template and chunking.")
    concurrency: int = Field(16, ge=1)
    retries: int = Field(3, ge=0)
    timeout_s: float = Field(120.0, gt=0)
    context_tokens: int | None = Field(None, ge=128, description="Model context; empty: the model config's max_position_embeddings (else 4096).")

    def judge_config(self) -> JudgeConfig:
        """The judge config ``make_backend`` builds the same backend from."""
        return JudgeConfig(name="synthesize", backend=self.backend, model=self.model, dtype=self.dtype, batch_size=self.batch_size,
                           base_url=self.base_url, api_key_env=self.api_key_env, tokenizer=self.tokenizer,
                           concurrency=self.concurrency, retries=self.retries, timeout_s=self.timeout_s)


class SamplingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(0.7, ge=0)
    top_p: float | None = Field(0.9, gt=0, le=1, description="Nucleus sampling; empty: off.")
    repetition_penalty: float | None = Field(None, gt=0, description="> 1 discourages repeating tokens (transformers, vLLM, vLLM's "
                                             "OpenAI server); small base models loop without it.")
    max_new_tokens: int = Field(512, ge=1)
    stop: list[str] = Field(default_factory=list, description="Generations are cut at the first stop string (after generation).")
    samples: int = Field(1, ge=1, description="Generations per chunk.")
    seed: int = 0


class ChunkingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_tokens: int = Field(768, ge=32, description="Tokens per source chunk (lowered to what fits the context).")
    overlap_paragraphs: int = Field(0, ge=0, description="Paragraphs of the previous chunk repeated at the start of the next.")
    min_chars: int = Field(300, ge=1, description="Chunks shorter than this are not rewritten (counted as skipped).")
    max_chunks_per_doc: int | None = Field(None, ge=1, description="Seeded choice of at most this many chunks per document.")


class GateConfig(BaseModel):
    """Quality gates on every generation; the first failing gate's reason goes to ``rejects``."""

    model_config = ConfigDict(extra="forbid")

    language: str = Field("de", pattern=r"^[a-z]{2,3}$")
    min_language_score: float = Field(0.65, ge=0, le=1)
    min_chars: int = Field(150, ge=0)
    max_chars: int = Field(20_000, ge=1)
    length_ratio: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: {"wikipedia": (0.3, 2.5), "summary": (0.05, 1.2), "qa": (0.1, 2.5), "list": (0.1, 2.0), "simple": (0.3, 3.0)},
        description="Per prompt type: (min, max) of generated chars ÷ source chunk chars.",
    )
    filters: list[str] = Field(default_factory=lambda: ["gopher_repetition", "gopher_quality"],
                               description="Curate filters applied to generations (tasks/filters).")
    filter_params: str | None = Field(None, description="Filter thresholds YAML (default tasks/filter_params.yaml).")
    max_jaccard: float = Field(0.8, gt=0, le=1, description="Estimated Jaccard with the source at or above this: near copy.")
    max_containment: float = Field(0.8, gt=0, le=1, description="Share of the generation's word n-grams found in its source at or "
                                   "above this: near copy (a copied part of a long source has a low Jaccard).")
    min_source_words: float = Field(0.3, ge=0, le=1, description="Share of the generation's distinct content words (6+ letters) "
                                    "that occur in its source below this: off_topic (a rewrite that forgot its source); 0 turns it off.")
    max_example_overlap: float = Field(0.5, gt=0, le=1, description="Share of the generation's word n-grams found in one of the "
                                       "prompt's worked examples at or above this: prompt_echo.")
    min_jaccard: float = Field(0.0, ge=0, le=1, description="Below this (for min_jaccard_types): too dissimilar; 0 turns it off.")
    min_jaccard_types: list[str] = Field(default_factory=lambda: ["wikipedia", "simple"])
    ngram: int = Field(5, ge=1, description="MinHash word n-gram size.")
    refusal_phrases: list[str] = Field(default_factory=list, description="Extra refusal phrases (case-insensitive).")
    meta_phrases: list[str] = Field(default_factory=list, description="Extra meta-text phrases (case-insensitive).")


class SynthesizeConfig(BaseModel):
    """The synthesize stage: LLM rewrites (5 prompt types) of kept German documents → ``synthetic``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("gemma", pattern=r"^[A-Za-z0-9_.-]+$", description="Unit stage name part: synthesize-<name>.")
    generator: GeneratorConfig = Field(default_factory=GeneratorConfig)
    style: Literal["chat", "fewshot"] = Field("fewshot", description="chat: the model's chat template (instruct models); fewshot: an "
                                              "example-led prompt (base models such as the embedded gemma-3-270m).")
    every_type: bool = Field(False, description="Rewrite every chunk in each active prompt type (default: one type per chunk, drawn from the mix).")
    mix: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_MIX), description="Prompt type → share of chunks.")
    types: list[str] = Field(default_factory=list, description="Only these prompt types (mix renormalised over them); empty: all in mix.")
    prompts: dict[str, str] = Field(default_factory=dict, description="Prompt type → YAML path replacing the built-in prompt.")
    language: str = Field("de", pattern=r"^[a-z]{2,3}$", description="Source documents' language.")
    use_scores: bool = Field(True, description="When a scores dataset exists, only documents with kept = true.")
    max_docs: int | None = Field(None, ge=1, description="At most this many source documents (seeded choice).")
    docs_per_unit: int = Field(8, ge=1, description="Source documents per committed unit (the resume granularity).")
    chunking: ChunkingConfig = Field(default_factory=ChunkingConfig)
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    gates: GateConfig = Field(default_factory=GateConfig)
    actors: int = Field(1, ge=1, description="Ray actors (model copies).")
    cpus_per_actor: float = Field(1.0, gt=0)
    seed: int = 0

    @field_validator("mix")
    @classmethod
    def _mix_types(cls, mix: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(mix) - set(PROMPT_TYPES))
        if unknown:
            raise ValueError(f"unknown prompt type(s) {unknown}; choose from {list(PROMPT_TYPES)}")
        if any(v < 0 for v in mix.values()) or sum(mix.values()) <= 0:
            raise ValueError("mix shares must be ≥ 0 and sum to more than 0")
        return mix

    @field_validator("types", "prompts")
    @classmethod
    def _known_types(cls, value):
        unknown = sorted(set(value) - set(PROMPT_TYPES))
        if unknown:
            raise ValueError(f"unknown prompt type(s) {unknown}; choose from {list(PROMPT_TYPES)}")
        return value

    @model_validator(mode="after")
    def _some_share(self) -> "SynthesizeConfig":
        self.active_mix()
        return self

    def active_mix(self) -> dict[str, float]:
        """Normalised shares of the prompt types in use, in PROMPT_TYPES order (``types`` picks a subset
        of the mix; picked types that all have no share split evenly)."""
        wanted = [t for t in PROMPT_TYPES if (t in self.types if self.types else t in self.mix)]
        shares = {t: self.mix.get(t, 0.0) for t in wanted}
        if self.types and sum(shares.values()) <= 0:
            shares = {t: 1.0 for t in wanted}
        shares = {t: s for t, s in shares.items() if s > 0}
        total = sum(shares.values())
        if total <= 0:
            raise ValueError(f"no prompt type has a share > 0 (types={self.types}, mix={self.mix})")
        return {t: s / total for t, s in shares.items()}


# --- prompts --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SynthPrompt:
    type: str
    name: str
    version: str
    system: str
    user: str  # contains {document}
    answer_prefix: str
    fewshot_label: str
    examples: tuple[tuple[str, str], ...]  # (document, output)
    digest: str  # sha256 of the file: part of the unit config hash

    def messages(self, document: str) -> list[dict]:
        messages = [{"role": "system", "content": self.system.strip()}] if self.system.strip() else []
        return messages + [{"role": "user", "content": self.user.replace("{document}", document).strip()}]

    def fewshot(self, document: str) -> str:
        """A prompt a base model continues: task description, worked examples, then the document."""
        parts = [self.system.strip()] if self.system.strip() else []
        for doc, out in self.examples:
            parts.append(f"Text:\n{doc.strip()}\n\n{self.fewshot_label}:\n{out.strip()}")
        parts.append(f"Text:\n{document.strip()}\n\n{self.fewshot_label}:\n")
        return "\n\n".join(parts)

    def instruction_lines(self, min_chars: int = 25) -> list[str]:
        """Normalised instruction sentences (system and user turn, not the document) for echo detection."""
        lines = []
        for raw in (self.system + "\n" + self.user.replace("{document}", "")).splitlines():
            for sentence in re.split(r"(?<=[.!?])\s+", raw):
                norm = _normalise(sentence)
                if len(norm) >= min_chars:
                    lines.append(norm)
        return lines


def load_synth_prompt(prompt_type: str, path: str | None = None) -> SynthPrompt:
    """The built-in ``annotators/prompts/synth_<type>.yaml`` or a replacement YAML file."""
    if prompt_type not in PROMPT_TYPES:
        raise ValueError(f"unknown prompt type {prompt_type!r}; choose from {list(PROMPT_TYPES)}")
    file = Path(path) if path else PROMPTS_DIR / f"synth_{prompt_type}.yaml"
    if not file.exists():
        raise FileNotFoundError(f"synthesis prompt {file} not found")
    body = file.read_text(encoding="utf-8")
    raw = yaml.safe_load(body) or {}
    allowed = {"name", "type", "version", "system", "user", "answer_prefix", "fewshot_label", "examples"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ValueError(f"prompt {file}: unknown keys {unknown}")
    if "{document}" not in raw.get("user", ""):
        raise ValueError(f"prompt {file}: user must contain {{document}}")
    if raw.get("type", prompt_type) != prompt_type:
        raise ValueError(f"prompt {file} is for type {raw['type']!r}, configured as {prompt_type!r}")
    examples = tuple((e["document"], e["output"]) for e in raw.get("examples") or [])
    return SynthPrompt(prompt_type, raw.get("name", f"synth_{prompt_type}"), str(raw.get("version", "1")), raw.get("system", ""),
                       raw["user"], raw.get("answer_prefix") or "", raw.get("fewshot_label", "Antwort"), examples,
                       hashlib.sha256(body.encode()).hexdigest()[:16])


# --- chunking and prompt-type assignment -----------------------------------------------------------

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")


def _pieces(text: str, count: Callable[[str], int], max_tokens: int) -> list[tuple[str, int]]:
    """Paragraphs (blank-line separated, else lines) with token counts; oversize ones split by sentence,
    then cut by characters."""
    paragraphs = [p.strip() for p in _PARAGRAPH_BREAK.split(text) if p.strip()]
    if len(paragraphs) <= 1:
        paragraphs = [p.strip() for p in text.splitlines() if p.strip()]
    out: list[tuple[str, int]] = []
    for paragraph in paragraphs:
        n = count(paragraph)
        if n <= max_tokens:
            out.append((paragraph, n))
            continue
        group, group_n = [], 0
        for sentence in _SENTENCE_END.split(paragraph):
            s_n = count(sentence)
            while s_n > max_tokens:  # one sentence longer than a chunk: cut it by characters
                cut = max(1, int(len(sentence) * max_tokens / s_n * 0.9))
                space = sentence.rfind(" ", 0, cut)
                cut = space if space > 0 else cut  # at a word boundary where there is one
                head = sentence[:cut].strip()
                out.append((head, count(head)))
                sentence = sentence[cut:].strip()
                s_n = count(sentence)
            if group and group_n + s_n > max_tokens:
                out.append((" ".join(group), group_n))
                group, group_n = [], 0
            if sentence.strip():
                group.append(sentence)
                group_n += s_n
        if group:
            out.append((" ".join(group), group_n))
    return out


def chunk_document(text: str, count: Callable[[str], int], max_tokens: int, overlap_paragraphs: int = 0) -> list[str]:
    """Paragraph-aligned chunks of at most ``max_tokens`` tokens (by ``count``); the last
    ``overlap_paragraphs`` paragraphs of a chunk open the next when they fit."""
    pieces = _pieces(text, count, max_tokens)
    chunks: list[str] = []
    current: list[tuple[str, int]] = []
    fresh = 0  # pieces in `current` that no earlier chunk holds
    for piece in pieces:
        if current and sum(n for _, n in current) + piece[1] > max_tokens:
            if fresh:
                chunks.append("\n\n".join(p for p, _ in current))
            carried = current[-overlap_paragraphs:] if overlap_paragraphs else []
            while carried and sum(n for _, n in carried) + piece[1] > max_tokens:
                carried = carried[1:]
            current, fresh = list(carried), 0
        current.append(piece)
        fresh += 1
    if current and fresh:
        chunks.append("\n\n".join(p for p, _ in current))
    return chunks


def chunk_id(source_id: str, chunking_key: str, index: int) -> str:
    return _sha("chunk", source_id, chunking_key, index)[:24]


def assign_type(chunk: str, mix: dict[str, float], seed: int) -> str:
    """The prompt type of one chunk: a seeded, deterministic draw from the mix."""
    u = int(_sha("type", seed, chunk)[:16], 16) / 2**64
    total = 0.0
    for prompt_type, share in mix.items():
        total += share
        if u < total:
            return prompt_type
    return list(mix)[-1]


def cut_at_stop(text: str, stops: Sequence[str]) -> str:
    """The text before the first stop string (the whole text when none occurs)."""
    positions = [text.find(s) for s in stops if s and s in text]
    return text[: min(positions)] if positions else text


# --- gates ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rejection:
    reason: str
    value: float | None = None
    detail: str | None = None


def _normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def word_ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    """Normalised word n-grams (the whole text as one gram when it is shorter than n words)."""
    words = _normalise(text).split()
    if len(words) < n:
        return {tuple(words)} if words else set()
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def source_word_share(text: str, source: str, min_letters: int = 6) -> float:
    """Share of ``text``'s distinct content words (≥ min_letters letters: mostly nouns, verbs and
    adjectives, few function words) that occur in ``source``; 1.0 when it has none."""
    words = {w for w in _normalise(text).split() if len(w) >= min_letters and not w.isdigit()}
    return len(words & set(_normalise(source).split())) / len(words) if words else 1.0


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
        normalised = _normalise(text)
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


# --- sources and units ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceUnit:
    input: str  # "docs-<hash of the ids>": the unit's input name
    ids: tuple[str, ...]


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def select_sources(root: str, config: SynthesizeConfig, storage_options: StorageOptions | None = None) -> tuple[list[str], bool]:
    """Ids of the source documents in their seeded order (at most max_docs), and whether scores filtered them."""
    catalog = Catalog(root, storage_options)
    use_scores = config.use_scores and catalog.query("select count(*) as n from scores").to_pylist()[0]["n"] > 0
    sql = (f"select distinct id from curated where language = {_quote(config.language)} "
           f"and text is not null and length(trim(text)) >= {config.chunking.min_chars}")
    if use_scores:
        sql += " and id in (select id from scores where kept)"
    ids = [r["id"] for r in catalog.query(sql).to_pylist()]
    ids.sort(key=lambda i: _sha("source", config.seed, i))
    if config.max_docs is not None:
        ids = ids[: config.max_docs]
    return ids, use_scores


def plan_units(root: str, config: SynthesizeConfig, storage_options: StorageOptions | None = None) -> list[SourceUnit]:
    """Units of ``docs_per_unit`` source documents. Groups are consecutive in the seeded order, so a
    larger max_docs keeps the earlier (committed) groups."""
    ids, _ = select_sources(root, config, storage_options)
    units = []
    for start in range(0, len(ids), config.docs_per_unit):
        group = tuple(ids[start : start + config.docs_per_unit])
        units.append(SourceUnit(f"docs-{_sha(*group)[:20]}", group))
    return units


def read_sources(root: str, ids: Sequence[str], storage_options: StorageOptions | None = None) -> list[dict]:
    if not ids:
        return []
    listed = ", ".join(_quote(i) for i in ids)
    rows = Catalog(root, storage_options).query(
        f"select id, any_value(url) as url, any_value(text) as text from curated where id in ({listed}) group by id").to_pylist()
    by_id = {r["id"]: r for r in rows}
    return [by_id[i] for i in ids if i in by_id]


def synth_hash(config: SynthesizeConfig, prompts: dict[str, SynthPrompt] | None = None) -> str:
    """What decides the generations: everything but throughput settings, max_docs and the unit size
    (which change which units exist, not what a unit holds), plus the prompt files' contents."""
    prompts = prompts or {t: load_synth_prompt(t, config.prompts.get(t)) for t in config.active_mix()}
    body = config.model_dump(mode="json", exclude={"actors": True, "cpus_per_actor": True, "max_docs": True, "docs_per_unit": True,
                                                   "generator": {"batch_size", "concurrency", "timeout_s", "retries"}})
    body["prompt_digests"] = {t: p.digest for t, p in sorted(prompts.items())}
    return config_hash(body)


# --- the worker -----------------------------------------------------------------------------------


class SynthWorker:
    """One loaded generator (plus the gates) that rewrites unit after unit; one per Ray actor."""

    def __init__(self, config: SynthesizeConfig, backend=None):
        self.config = config
        self.mix = config.active_mix()
        self.prompts = {t: load_synth_prompt(t, config.prompts.get(t)) for t in self.mix}
        self.backend = backend if backend is not None else make_backend(config.generator.judge_config())
        self.renderer = self.backend.renderer
        self.gates = Gates(config.gates)
        # a base model that finished its answer goes on with the next worked example: "Text:" or the answer label
        fewshot_stops = ["\nText:"] + sorted({f"\n{p.fewshot_label}:" for p in self.prompts.values()})
        self.stops = list(config.sampling.stop) + (fewshot_stops if config.style == "fewshot" else [])
        self.chunk_tokens = self._chunk_budget()
        self.config_hash = synth_hash(config, self.prompts)
        self.chunking_key = config_hash({"tokens": self.chunk_tokens, "overlap": config.chunking.overlap_paragraphs,
                                         "model": config.generator.model})
        s = config.sampling
        self.params_json = json.dumps({
            "backend": config.generator.backend, "style": config.style, "temperature": s.temperature, "top_p": s.top_p,
            "repetition_penalty": s.repetition_penalty, "max_new_tokens": s.max_new_tokens, "stop": self.stops, "samples": s.samples,
            "seed": s.seed, "chunk_tokens": self.chunk_tokens, "overlap_paragraphs": config.chunking.overlap_paragraphs,
        }, sort_keys=True, ensure_ascii=False)

    def count_tokens(self, text: str) -> int:
        return self.renderer.truncate(text, UNBOUNDED)[1]

    def render(self, prompt: SynthPrompt, document: str) -> str:
        if self.config.style == "fewshot":
            return prompt.fewshot(document)
        return self.renderer.render(prompt.messages(document), prompt.answer_prefix or None)

    def _chunk_budget(self) -> int:
        """Source tokens per chunk: the configured size, lowered so prompt + chunk + answer fit the context."""
        context = self.config.generator.context_tokens
        if context is None:
            model = getattr(self.backend, "model", None)
            context = getattr(getattr(model, "config", None), "max_position_embeddings", None) or 4096
        overhead = max(self.count_tokens(self.render(p, "")) for p in self.prompts.values())
        budget = context - self.config.sampling.max_new_tokens - overhead - 16
        if budget < 32:
            raise ValueError(f"context of {context} tokens leaves {budget} for the source chunk after the prompt "
                             f"({overhead}) and max_new_tokens ({self.config.sampling.max_new_tokens}): lower max_new_tokens")
        return min(self.config.chunking.max_tokens, budget)

    def chunks(self, doc: dict) -> list[dict]:
        """The document's chunks that get rewritten, each with its stable id and prompt type (one entry per
        type and chunk with ``every_type``)."""
        c = self.config.chunking
        texts = chunk_document(doc.get("text") or "", self.count_tokens, self.chunk_tokens, c.overlap_paragraphs)
        indexed = [(i, t) for i, t in enumerate(texts) if len(t) >= c.min_chars]
        if c.max_chunks_per_doc is not None and len(indexed) > c.max_chunks_per_doc:
            rng = random.Random(_sha("chunks", self.config.seed, doc["id"]))
            indexed = sorted(rng.sample(indexed, c.max_chunks_per_doc))
        out = []
        for index, text in indexed:
            cid = chunk_id(doc["id"], self.chunking_key, index)
            types = list(self.mix) if self.config.every_type else [assign_type(cid, self.mix, self.config.seed)]
            out += [{"source_id": doc["id"], "url": doc.get("url"), "chunk_index": index, "chunk_id": cid, "text": text,
                     "prompt_type": t} for t in types]
        return out

    def synthesize(self, docs: list[dict]) -> tuple[list[dict], list[dict], dict]:
        """Rewrite the documents' chunks; returns (synthetic rows, reject rows, counts)."""
        s = self.config.sampling
        chunks = [c for d in docs for c in self.chunks(d)]
        prompts = [self.render(self.prompts[c["prompt_type"]], c["text"]) for c in chunks]
        results = self.backend.generate(prompts, s.samples, s.max_new_tokens, s.temperature, s.seed, top_p=s.top_p,
                                        repetition_penalty=s.repetition_penalty, stop=self.stops) if prompts else []
        rows, rejects = [], []
        per_type = {t: {"generated": 0, "accepted": 0} for t in self.mix}
        reasons: Counter = Counter()
        for chunk, prompt_text, result in zip(chunks, prompts, results):
            spec = self.prompts[chunk["prompt_type"]]
            answers = [result] * s.samples if isinstance(result, str) else list(result)
            prompt_tokens = self.count_tokens(prompt_text)
            for sample, answer in enumerate(answers):
                gid = _sha("gen", chunk["chunk_id"], spec.type, spec.version, self.config.generator.model, sample, self.config_hash)[:24]
                per_type[spec.type]["generated"] += 1
                if isinstance(result, str):  # the backend's error for this prompt
                    gate = GateResult(Rejection("generation_error", None, result[:500]))
                    text = ""
                else:
                    text = cut_at_stop(answer, self.stops).strip()
                    gate = self.gates.check(text, chunk["text"], spec.type, spec)
                if gate.accepted:
                    per_type[spec.type]["accepted"] += 1
                    rows.append({
                        "id": gid, "source_id": chunk["source_id"], "chunk_index": chunk["chunk_index"], "chunk_id": chunk["chunk_id"],
                        "prompt_type": spec.type, "prompt_version": spec.version, "model": self.config.generator.model,
                        "generation_params": self.params_json, "text": text, "prompt_tokens": prompt_tokens,
                        "completion_tokens": self.count_tokens(answer), "language": gate.language,
                        "language_score": gate.language_score,
                    })
                    continue
                r = gate.rejection
                reasons[r.reason] += 1
                rejects.append({
                    "id": gid, "url": chunk["url"], "warc_record_id": None, "source": chunk["source_id"], "language": gate.language,
                    "stage": REJECT_STAGE, "reason": r.reason, "value": r.value,
                    "detail": json.dumps({"source_id": chunk["source_id"], "chunk_id": chunk["chunk_id"], "chunk_index": chunk["chunk_index"],
                                          "prompt_type": spec.type, "why": r.detail, "text": text[:300]}, ensure_ascii=False),
                })
        counts = {"docs": len(docs), "chunks": len({c["chunk_id"] for c in chunks}), "generated": sum(v["generated"] for v in per_type.values()),
                  "accepted": len(rows), "rejected": len(rejects), "per_type": per_type, "reasons": dict(reasons)}
        return rows, rejects, counts

    def synthesize_unit(self, root: str, unit: SourceUnit, storage_options: StorageOptions | None = None) -> dict:
        """Rewrite one unit of source documents and commit ``synthetic`` + ``rejects`` together
        (skipped when already committed)."""
        store = ShardStore(root, storage_options)
        key = UnitKey(stage_of(self.config.name), unit.input, self.config_hash)
        manifest = store.begin(key)
        if manifest is not None:
            return {"unit": unit.input, "skipped": True, **manifest.counts}
        docs = read_sources(root, unit.ids, storage_options)
        started = time.perf_counter()
        rows, rejects, counts = self.synthesize(docs)
        counts["seconds"] = time.perf_counter() - started
        with store.open_unit(key, ["synthetic", "rejects"]) as writer:
            writer.write("synthetic", pa.Table.from_pylist(rows, schema=SYNTHETIC))
            writer.write("rejects", pa.Table.from_pylist(rejects, schema=REJECTS))
            writer.counts = counts
        return {"unit": unit.input, "skipped": False, **counts}


# --- reporting ------------------------------------------------------------------------------------


def summarise(results: list[dict]) -> list[dict]:
    """Generated / accepted counts and acceptance rate per prompt type over unit results."""
    totals: dict[str, dict[str, int]] = {}
    for result in results:
        for prompt_type, c in (result.get("per_type") or {}).items():
            t = totals.setdefault(prompt_type, {"generated": 0, "accepted": 0})
            t["generated"] += c["generated"]
            t["accepted"] += c["accepted"]
    return [{"prompt_type": t, "generated": c["generated"], "accepted": c["accepted"],
             "acceptance_rate": round(c["accepted"] / c["generated"], 3) if c["generated"] else 0.0}
            for t, c in sorted(totals.items(), key=lambda kv: PROMPT_TYPES.index(kv[0]))]


def examples_per_type(root: str, storage_options: StorageOptions | None = None) -> list[dict]:
    """One accepted generation per prompt type (the smallest id), with its source document's URL."""
    return Catalog(root, storage_options).query("""
        select s.prompt_type, s.id, s.source_id, c.url, s.text
        from synthetic s left join (select id, any_value(url) as url from curated group by id) c on c.id = s.source_id
        qualify row_number() over (partition by s.prompt_type order by s.id) = 1
        order by s.prompt_type""").to_pylist()
