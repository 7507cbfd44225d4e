"""The annotate stage as committed units.

1. ``commit_sample``: a seeded, language-balanced sample of ``curated`` → dataset ``samples``
   (one unit per distinct sample config and curated generation).
2. ``label_unit``: one judge × one chunk of the sample → dataset ``labels``. Chunks are small, so a
   run interrupted half-way resumes without re-asking documents whose chunk was committed.
   ``JudgeWorker`` holds one loaded model and labels chunk after chunk (a Ray actor in the flow).
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from kurate.errors import PreconditionError
from kurate.annotators.judge import Judge, JudgeConfig
from kurate.storage.catalog import Catalog
from kurate.storage.fs import StorageOptions
from kurate.storage.schemas import LABELS
from kurate.storage.shards import ShardStore, UnitKey, UnitWriter, config_hash
from kurate.tasks.sampling import balanced_sample

STAGE_SAMPLE = "sample"


def stage_of(judge: str) -> str:
    return f"annotate-{judge}"


class SampleConfig(BaseModel):
    """Which curated documents the judges see."""

    model_config = ConfigDict(extra="forbid")

    per_language: int = Field(50, ge=1, description="Documents per language.")
    languages: list[str] = Field(default_factory=list, description="Languages to sample (empty: every curated language).")
    length_strata: int = Field(1, ge=1, description="Spread each language's sample evenly over this many length quantiles.")
    seed: int = 0


@dataclass(frozen=True)
class SampleRef:
    unit: str
    path: str  # URL of the committed samples file
    rows: int
    chunks: tuple[str, ...]  # chunk names, e.g. "<unit>#00003"


def commit_sample(root: str, config: SampleConfig, docs_per_unit: int, storage_options: StorageOptions | None = None) -> SampleRef:
    """Draw (or reuse) the sample for the current curated generation and split it into chunks."""
    catalog = Catalog(root, storage_options)
    store = catalog.store
    curated_units = sorted(m.unit for m in store.current_manifests() if any(o.dataset == "curated" for o in m.outputs))
    if not curated_units:
        raise PreconditionError(f"{root} has no committed curated shards: run `kurate curate` first")
    source = "curated-" + hashlib.sha256("\n".join(curated_units).encode()).hexdigest()[:16]
    key = UnitKey(STAGE_SAMPLE, source, config_hash(config.model_dump(mode="json")))

    def write(unit: UnitWriter) -> dict:
        con = catalog.connect()
        try:
            sample = balanced_sample(con, config.per_language, config.languages or None, config.length_strata, config.seed)
        finally:
            con.close()
        unit.write("samples", sample)
        return {"rows": sample.num_rows, "languages": dict(Counter(sample.column("language").to_pylist()))}

    manifest = store.run_unit(key, ["samples"], write).manifest
    rows = manifest.counts["rows"]
    chunks = tuple(f"{key.name}#{i:05d}" for i in range(-(-rows // docs_per_unit)))
    return SampleRef(key.name, store.url(manifest.outputs[0].path), rows, chunks)


def chunk_ids(sample: pa.Table, chunk: str, docs_per_unit: int) -> pa.Table:
    index = int(chunk.rsplit("#", 1)[1])
    return sample.slice(index * docs_per_unit, docs_per_unit)


def judge_hash(judge: JudgeConfig) -> str:
    # concurrency/timeouts/batch size change how, not what, is asked
    return config_hash(judge.model_dump(mode="json", exclude=set(JudgeConfig.THROUGHPUT_FIELDS)))


def read_sample(store: ShardStore, ref: SampleRef) -> pa.Table:
    with store.fs.open(ref.path, "rb") as handle:
        return pq.read_table(handle)


class JudgeWorker:
    """One loaded judge that labels chunks; the flow runs one per Ray actor (GPU when present)."""

    def __init__(self, judge: JudgeConfig, loaded: Judge | None = None):
        self.config = judge
        self.judge = loaded if loaded is not None else Judge(judge)
        self._samples: dict[str, pa.Table] = {}

    def label_unit(self, root: str, ref: SampleRef, chunk: str, docs_per_unit: int,
                   storage_options: StorageOptions | None = None) -> dict:
        store = ShardStore(root, storage_options)
        key = UnitKey(stage_of(self.config.name), chunk, judge_hash(self.config))

        def write(unit: UnitWriter) -> dict:
            if ref.path not in self._samples:
                self._samples[ref.path] = read_sample(store, ref)
            docs = chunk_ids(self._samples[ref.path], chunk, docs_per_unit).to_pylist()
            started = time.perf_counter()
            rows = self.judge.label(docs)
            seconds = time.perf_counter() - started
            unit.write("labels", pa.Table.from_pylist(rows, schema=LABELS))
            valid = sum(1 for r in rows if r["valid"])
            return {"docs": len(rows), "valid": valid, "invalid": len(rows) - valid, "seconds": seconds}

        run = store.run_unit(key, ["labels"], write)
        return {"chunk": chunk, "skipped": run.skipped, **run.counts}


def label_report(root: str, storage_options: StorageOptions | None = None) -> dict:
    """Counts, invalid rate per judge and language, and score histograms, from the catalog."""
    catalog = Catalog(root, storage_options)
    per_language = catalog.query("""
        select judge, language, cast(count(*) as integer) as docs,
               cast(count(*) filter (where not valid) as integer) as invalid,
               cast(round(avg(expected), 3) as double) as mean_expected
        from labels group by all order by judge, language""").to_pylist()
    histogram = catalog.query("""
        select judge, cast(round(score) as integer) as score, cast(count(*) as integer) as docs
        from labels where valid group by all order by judge, score""").to_pylist()
    for row in per_language:
        row["invalid_rate"] = round(row["invalid"] / row["docs"], 3) if row["docs"] else 0.0
    return {"per_language": per_language, "histogram": histogram}

