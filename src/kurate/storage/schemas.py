"""Arrow schemas of the datasets kurate commits. One entry per dataset; the catalog makes one view each."""

from __future__ import annotations

import pyarrow as pa

CURATED = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),  # stable: hash of WARC-Record-ID (or URL + payload digest)
        pa.field("url", pa.string()),
        pa.field("warc_record_id", pa.string()),
        pa.field("warc_date", pa.timestamp("s", tz="UTC")),
        pa.field("source", pa.string()),  # the input shard URL
        pa.field("content_type", pa.string()),
        pa.field("charset", pa.string()),  # the encoding the payload was decoded with
        pa.field("text", pa.string()),
        pa.field("language", pa.string()),  # ISO code from fastText lid.176 ("und" before language ID ran)
        pa.field("language_score", pa.float32()),
    ]
)

# Documents that passed every per-shard stage, waiting for the run-wide dedup; same columns as curated.
STAGED = CURATED

# MinHash signatures of staged documents: the input of the cross-shard dedup join.
SIGNATURES = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("rank", pa.string(), nullable=False),  # lower wins among duplicates: input shard + position
        pa.field("exact_hash", pa.uint64(), nullable=False),
        pa.field("minhash", pa.list_(pa.uint32())),
        pa.field("bands", pa.list_(pa.uint64())),
    ]
)

# Run-wide dedup decisions: every staged document that is a duplicate of a kept one.
DUPLICATES = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        # the losing copy's rank: a record repeated in the input (same WARC-Record-ID, hence same
        # id) is told apart from the copy that is kept by its rank (input shard + position)
        pa.field("rank", pa.string(), nullable=False),
        pa.field("duplicate_of", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),  # exact | near
        pa.field("similarity", pa.float64()),
    ]
)

# One row per document that did not reach `curated`: the first stage that dropped it and why.
REJECTS = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("url", pa.string()),
        pa.field("warc_record_id", pa.string()),
        pa.field("source", pa.string()),
        pa.field("language", pa.string()),  # null when the stage ran before language ID
        pa.field("stage", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("value", pa.float64()),  # the measured value behind the decision (status code, byte size, …)
        pa.field("detail", pa.string()),  # free text: header snippet, byte offset, exception message
    ]
)

# A seeded, language-balanced sample of curated documents: what the LLM judges label.
SAMPLES = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("language", pa.string()),
        pa.field("stratum", pa.int32()),  # length stratum (0 when not stratified)
        pa.field("chars", pa.int64()),
        pa.field("text", pa.string()),
    ]
)

# One row per (document, judge): the judge's score with everything needed to audit it.
LABELS = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("language", pa.string()),
        pa.field("judge", pa.string(), nullable=False),
        pa.field("mode", pa.string()),  # logits | generate
        pa.field("score", pa.float64()),  # argmax (logits) or majority/mean (generate); combined over criteria
        pa.field("expected", pa.float64()),  # expectation under the score distribution
        pa.field("distribution", pa.list_(pa.float32())),  # over the prompt's scale (deciding criterion)
        pa.field("raw_output", pa.string()),  # generated answers, kept verbatim
        pa.field("valid", pa.bool_()),
        pa.field("reason", pa.string()),  # why invalid, invalid samples, truncation
        pa.field("prompt_version", pa.string()),
        pa.field("truncated", pa.bool_()),
        pa.field("doc_tokens", pa.int64()),
        pa.field("criteria", pa.string()),  # JSON: per-criterion expected/argmax/distribution
    ]
)

# Document embeddings, once per (document, embedder): distill and score both reuse them.
EMBEDDINGS = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("embedder", pa.string(), nullable=False),
        pa.field("vector", pa.list_(pa.float16())),
    ]
)

# Raw JQL head outputs, long format: one row per (document, annotator).
HEAD_SCORES = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("language", pa.string()),
        pa.field("annotator", pa.string(), nullable=False),
        pa.field("score", pa.float32()),
    ]
)

# Per-annotator keep thresholds (a quantile of the scored corpus, globally or per language).
THRESHOLDS = pa.schema(
    [
        pa.field("annotator", pa.string(), nullable=False),
        pa.field("language", pa.string(), nullable=False),  # "*" for a corpus-wide threshold
        pa.field("quantile", pa.float64()),
        pa.field("value", pa.float64()),
        pa.field("version", pa.string(), nullable=False),
    ]
)

# Final scores: these columns plus one float32 column per annotator (named after it).
SCORES = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("language", pa.string()),
        pa.field("kept", pa.bool_()),
        pa.field("thresholds_version", pa.string()),
    ]
)

# Training metrics, one row per logged step (the full metrics dict as JSON too).
METRICS = pa.schema(
    [
        pa.field("run", pa.string(), nullable=False),
        pa.field("model", pa.string()),
        pa.field("step", pa.int64()),
        pa.field("loss", pa.float64()),
        pa.field("bits_per_byte", pa.float64()),
        pa.field("eval_loss", pa.float64()),
        pa.field("eval_bits_per_byte", pa.float64()),
        pa.field("units_per_s", pa.float64()),
        pa.field("mfu", pa.float64()),
        pa.field("metrics", pa.string()),
    ]
)

# LLM rewrites of curated German chunks (synthesize stage): one row per accepted generation.
SYNTHETIC = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),  # hash of (chunk id, prompt type + version, model, sample, seed)
        pa.field("source_id", pa.string(), nullable=False),  # the curated document's id
        pa.field("chunk_index", pa.int32()),  # position of the chunk within its source document
        pa.field("chunk_id", pa.string()),  # stable id of the source chunk (source id + chunking config + index)
        pa.field("prompt_type", pa.string(), nullable=False),  # wikipedia | summary | qa | list | simple
        pa.field("prompt_version", pa.string()),
        pa.field("model", pa.string()),
        pa.field("generation_params", pa.string()),  # JSON: backend, style, temperature, top_p, max_new_tokens, stop, seed …
        pa.field("text", pa.string()),
        pa.field("prompt_tokens", pa.int64()),
        pa.field("completion_tokens", pa.int64()),
        pa.field("language", pa.string()),
        pa.field("language_score", pa.float32()),
    ]
)

# Core-tokenset replay buffer (continual stage): one row per kept old document, with the spans of
# units (words for HAT/T-FREE, tokens for BPE) that replay trains on and where each span's masked
# context starts (a span whose context starts at the previous span's end shares its segment);
# replay "kept": `text` is only the kept spans' text (byte offsets index it); "context": `text`
# ends with the last kept unit. See models/coretokens.py (kept_rows, span_rows, replay_segments).
CORETOKENS = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),  # the old document's id
        pa.field("source", pa.string()),  # dataset it came from (curated, synthetic)
        pa.field("model", pa.string()),  # hat | tfree | bpe
        pa.field("checkpoint", pa.string()),  # the checkpoint that scored and attributed it
        pa.field("selection", pa.string()),  # loss | gradnorm | craig | random
        pa.field("method", pa.string()),  # atman | gradxinput | full
        pa.field("budget", pa.float64()),  # share of the candidates' units the buffer trains on
        pa.field("token_fraction", pa.float64()),  # share of this document's units kept
        pa.field("rank", pa.int32()),  # selection order
        pa.field("score", pa.float64()),  # selection score (mean loss or gradient norm; null for craig/random)
        pa.field("doc_units", pa.int32()),
        pa.field("kept_units", pa.int32()),
        pa.field("replay", pa.string()),  # kept (only the kept units are stored) | context (also masked context)
        pa.field("context_units", pa.int32()),  # context bound per span (null: the whole prefix, or replay kept)
        pa.field("stored_bytes", pa.int64()),  # UTF-8 bytes of `text`: what the buffer stores for this document
        pa.field("spans", pa.list_(pa.struct([
            pa.field("start", pa.int32()), pa.field("end", pa.int32()),  # [start, end) unit indices
            pa.field("byte_start", pa.int64()), pa.field("byte_end", pa.int64()),  # UTF-8 offsets in text
            pa.field("context_start", pa.int32()),  # unit index where the span's masked context starts
            pa.field("context_byte_start", pa.int64()),  # its UTF-8 offset in text
        ]))),
        pa.field("text", pa.string()),
    ]
)

# Lineage: what a release holds and what a training run consumed (release/publish.py, flows/train.py).
RELEASES = pa.schema([
    pa.field("name", pa.string(), nullable=False),
    pa.field("version", pa.int32(), nullable=False),
    pa.field("created", pa.timestamp("s", tz="UTC")),
    pa.field("content_hash", pa.string()),  # the version key: release config + the inputs' commit records
    pa.field("documents", pa.int64()),
    pa.field("words", pa.int64()),
    pa.field("train_documents", pa.int64()),
    pa.field("validation_documents", pa.int64()),
    pa.field("path", pa.string()),  # releases/<name>/v<k>, relative to the root
    pa.field("config", pa.string()),  # the release config as JSON
])
RELEASE_DOCUMENTS = pa.schema([
    pa.field("name", pa.string(), nullable=False),
    pa.field("version", pa.int32(), nullable=False),
    pa.field("id", pa.string(), nullable=False),
    pa.field("source", pa.string()),  # the dataset the document came from (curated, synthetic, …)
    pa.field("split", pa.string()),  # train | validation
    pa.field("url", pa.string()),
    pa.field("file", pa.string()),  # the release file holding it, relative to the root
])
TRAINED_ON = pa.schema([
    pa.field("run", pa.string(), nullable=False),  # <train.name>-<model>
    pa.field("checkpoint_step", pa.int64(), nullable=False),  # the first checkpoint that includes the document
    pa.field("release", pa.string()),  # null: trained on a raw mix of datasets
    pa.field("version", pa.int32()),
    pa.field("id", pa.string(), nullable=False),
    pa.field("first_step", pa.int64(), nullable=False),  # the optimizer step that first consumed one of its units
])


DATASETS: dict[str, pa.Schema] = {
    "curated": CURATED,
    "rejects": REJECTS,
    "staged": STAGED,
    "signatures": SIGNATURES,
    "duplicates": DUPLICATES,
    "samples": SAMPLES,
    "labels": LABELS,
    "embeddings": EMBEDDINGS,
    "head_scores": HEAD_SCORES,
    "thresholds": THRESHOLDS,
    "scores": SCORES,
    "metrics": METRICS,
    "synthetic": SYNTHETIC,
    "coretokens": CORETOKENS,
    "releases": RELEASES,
    "release_documents": RELEASE_DOCUMENTS,
    "trained_on": TRAINED_ON,
}


def schema_of(dataset: str) -> pa.Schema:
    try:
        return DATASETS[dataset]
    except KeyError:
        raise KeyError(f"unknown dataset {dataset!r}; known: {', '.join(sorted(DATASETS))}") from None
