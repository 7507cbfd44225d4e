"""The synthesize stage: LLM rewrites of high-quality German documents (Aleph-Alpha-GermanWeb §synthetic).

Following the data (one module each):

    sources     curated German documents (``language = 'de'``), only those ``kept`` when a ``scores``
                dataset exists; seeded order, optional ``max_docs``; grouped into units of
                ``docs_per_unit`` documents (the resume granularity)
    chunking    each document is split into paragraph-aligned chunks that fit the model's context
                (counted with the backend's tokenizer), with optional paragraph overlap
    ids         every chunk has a stable id and a prompt type drawn from the configured mix, seeded per
                chunk (or every active type, ``every_type``)
    prompts     the five prompt types' YAML files, rendered with the chat template (``style: chat``) or
                as a few-shot prompt for base models (``style: fewshot``, the default: the embedded
                generator is gemma-3-270m base)
    generation  the judges' backends (kurate.annotators.contracts); top_p, repetition penalty, stop
                strings (the backend stops early; the text is cut at the first stop string afterwards)
    gates       every generation: length (absolute and relative to its source), refusal / meta text /
                prompt echo, language ID, the curate stage's repetition and quality filters, and a
                MinHash similarity band plus n-gram containment against its source; the first failing
                gate decides
    units       accepted rows → ``synthetic``; rejected ones → ``rejects`` (stage ``synthesize``), both
                in one unit of stage ``synthesize-<name>``: committed units are skipped on re-runs
    report      acceptance per prompt type, one example per type
    config      the stage's pydantic config (the generator is a ``BackendConfig``)
"""

from kurate.annotators.synthesis.chunking import chunk_document
from kurate.annotators.synthesis.config import (
    DEFAULT_MIX, EMBEDDED_GENERATOR_MODEL, PROMPT_TYPES, ChunkingConfig, GateConfig, GeneratorConfig, SamplingConfig,
    SynthesizeConfig,
)
from kurate.annotators.synthesis.gates import (
    GateResult, Gates, Rejection, check_filters, check_language, check_length, check_meta, check_similarity, containment,
    source_word_share, word_ngrams,
)
from kurate.annotators.synthesis.generation import REJECT_STAGE, Rewriter, cut_at_stop, synth_hash
from kurate.annotators.synthesis.ids import assign_type, chunk_id
from kurate.annotators.synthesis.prompts import SynthPrompt, load_synth_prompt
from kurate.annotators.synthesis.report import examples_per_type, summarise
from kurate.annotators.synthesis.sources import SourceUnit, plan_units, read_sources, select_sources
from kurate.annotators.synthesis.units import SynthWorker, stage_of

__all__ = [
    "DEFAULT_MIX", "EMBEDDED_GENERATOR_MODEL", "PROMPT_TYPES", "REJECT_STAGE", "ChunkingConfig", "GateConfig", "GateResult", "Gates",
    "GeneratorConfig", "Rejection", "Rewriter", "SamplingConfig", "SourceUnit", "SynthPrompt", "SynthWorker", "SynthesizeConfig",
    "assign_type", "check_filters", "check_language", "check_length", "check_meta", "check_similarity", "chunk_document",
    "chunk_id", "containment", "cut_at_stop", "examples_per_type", "load_synth_prompt", "plan_units", "read_sources",
    "select_sources", "source_word_share", "stage_of", "summarise", "synth_hash", "word_ngrams",
]
