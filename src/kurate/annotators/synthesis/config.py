"""The synthesize stage's config: the generator (a ``BackendConfig``), sampling, chunking, gates, the type mix."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kurate.annotators.contracts import BackendConfig

PROMPT_TYPES: tuple[str, ...] = ("wikipedia", "summary", "qa", "list", "simple")
DEFAULT_MIX = {"wikipedia": 0.3, "summary": 0.2, "qa": 0.2, "list": 0.15, "simple": 0.15}
# gemma-3-270m base (Gemma Terms of Use): writes fluent German continuations, so with few-shot prompts
# it is the embedded generator; SmolLM2-135M-Instruct follows a chat template but writes English.
EMBEDDED_GENERATOR_MODEL = "embedded:gemma-3-270m"


class GeneratorConfig(BackendConfig):
    """The generating model: the judges' backends and fields (``BackendConfig``), plus its context."""

    model: str = Field(EMBEDDED_GENERATOR_MODEL, description="HF id, local path, the server's model name, or an embedded model "
                       "(embedded:gemma-3-270m, embedded:smollm2-135m-instruct).")
    context_tokens: int | None = Field(None, ge=128, description="Model context; empty: what the backend reports "
                                       "(transformers: max_position_embeddings), else 4096.")


class SamplingConfig(BaseModel):
    """How each chunk is sampled."""

    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(0.7, ge=0, description="0: greedy.")
    top_p: float | None = Field(0.9, gt=0, le=1, description="Nucleus sampling; empty: off.")
    repetition_penalty: float | None = Field(None, gt=0, description="> 1 discourages repeating tokens (transformers, vLLM, vLLM's "
                                             "OpenAI server); small base models loop without it.")
    max_new_tokens: int = Field(512, ge=1)
    stop: list[str] = Field(default_factory=list, description="Generations are cut at the first stop string (after generation).")
    samples: int = Field(1, ge=1, description="Generations per chunk.")
    seed: int = Field(0, description="Sampling seed.")


class ChunkingConfig(BaseModel):
    """How source documents are cut into the chunks that get rewritten."""

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
