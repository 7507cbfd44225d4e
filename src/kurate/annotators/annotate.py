"""The annotate stage as committed units.

1. ``commit_sample``: a seeded, language-balanced sample of ``curated`` → dataset ``samples``.
   The sample is a committed decision (DESIGN.md §3): it is a series of *increments*, one unit
   each; a run with more curated shards commits one more increment holding only the places still
   free (``tasks/sampling.py``), so adding shards never redraws or re-asks a sampled document.
2. ``label_unit``: one judge × one chunk of an increment → dataset ``labels``. Chunks are small, so
   a run interrupted half-way resumes without re-asking documents whose chunk was committed, and a
   document this judge (same prompt, model and settings: ``judge_hash``) already labelled in any
   committed chunk is not asked again: labels are unique per (id, judge, judge config).
   ``JudgeWorker`` holds one loaded model and labels chunk after chunk (a Ray actor in the flow).
"""

from __future__ import annotations

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
from kurate.storage.shards import Manifest, ShardStore, UnitKey, UnitWriter, config_hash
from kurate.tasks.sampling import balanced_sample

STAGE_SAMPLE = "sample"


def stage_of(judge: str) -> str:
    return f"annotate-{judge}"


class SampleConfig(BaseModel):
    """Which curated documents the judges see."""

    model_config = ConfigDict(extra="forbid")

    per_language: int = Field(50, ge=1, description="Documents per language (raising it tops the committed sample up).")
    languages: list[str] = Field(default_factory=list, description="Languages to sample (empty: every curated language).")
    length_strata: int = Field(1, ge=1, description="Spread each language's sample evenly over this many length quantiles.")
    seed: int = 0

    def lineage_hash(self) -> str:
        """What identifies a sample: the draw (seed, languages, strata). ``per_language`` is a target
        the committed sample is topped up to, so raising it extends the sample rather than redrawing it."""
        return config_hash(self.model_dump(mode="json", exclude={"per_language"}))


@dataclass(frozen=True)
class SamplePart:
    unit: str  # the increment's unit name; its chunks are "<unit>#00003"
    path: str  # URL of the increment's samples file
    rows: int


@dataclass(frozen=True)
class SampleRef:
    unit: str  # the sample's lineage, e.g. "sample-3f2a…"
    parts: tuple[SamplePart, ...]  # committed increments, oldest first
    rows: int
    chunks: tuple[str, ...]  # chunk names of every increment, e.g. "<increment unit>#00003"

    def part_of(self, chunk: str) -> SamplePart:
        unit = chunk.rsplit("#", 1)[0]
        return next(p for p in self.parts if p.unit == unit)


def _increment_key(lineage: str, index: int) -> UnitKey:
    # the lineage is in the input too: current_manifests keeps one record per (stage, input), so another
    # sample's increment 0 must never hide this one's
    return UnitKey(STAGE_SAMPLE, f"sample-{lineage[:16]}/increment-{index:05d}", lineage)


def _read(store: ShardStore, path: str, columns: list[str] | None = None) -> pa.Table:
    with store.fs.open(path, "rb") as handle:
        return pq.read_table(handle, columns=columns)


def commit_sample(root: str, config: SampleConfig, docs_per_unit: int, storage_options: StorageOptions | None = None) -> SampleRef:
    """The committed sample for ``config``, topped up with the places the current curated documents
    can still fill (one new increment, or none when nothing changed); split into chunks."""
    catalog = Catalog(root, storage_options)
    store = catalog.store
    if not any(o.dataset == "curated" for m in store.current_manifests() for o in m.outputs):
        raise PreconditionError(f"{root} has no committed curated shards: run `kurate curate` first")
    lineage = config.lineage_hash()
    increments = sorted((m for m in store.current_manifests(STAGE_SAMPLE) if m.config_hash == lineage), key=lambda m: m.input)
    taken = pa.concat_tables([_read(store, store.url(m.outputs[0].path), ["id"]) for m in increments]) if increments else None
    con = catalog.connect()
    try:
        top_up = balanced_sample(con, config.per_language, config.languages or None, config.length_strata, config.seed, taken)
    finally:
        con.close()
    # Nothing new to place: no unit at all, so re-runs over the same curated shards add nothing.
    # Otherwise one increment; a killed run draws the same top-up again and redoes it.
    if top_up.num_rows:
        key = _increment_key(lineage, len(increments))

        def write(unit: UnitWriter) -> dict:
            unit.write("samples", top_up)
            return {"rows": top_up.num_rows, "languages": dict(Counter(top_up.column("language").to_pylist()))}

        store.run_unit(key, ["samples"], write)
        increments.append(store.manifest(key))  # ours, or a concurrent run's that committed the same increment first
    return _ref(store, lineage, increments, docs_per_unit)


def _ref(store: ShardStore, lineage: str, increments: list[Manifest], docs_per_unit: int) -> SampleRef:
    parts = tuple(SamplePart(m.unit, store.url(m.outputs[0].path), m.counts["rows"]) for m in increments)
    chunks = tuple(f"{p.unit}#{i:05d}" for p in parts for i in range(-(-p.rows // docs_per_unit)))
    return SampleRef(f"sample-{lineage[:16]}", parts, sum(p.rows for p in parts), chunks)


def chunk_ids(part: pa.Table, chunk: str, docs_per_unit: int) -> pa.Table:
    """The documents of one chunk (``part``: the chunk's increment)."""
    index = int(chunk.rsplit("#", 1)[1])
    return part.slice(index * docs_per_unit, docs_per_unit)


def judge_hash(judge: JudgeConfig) -> str:
    # concurrency/timeouts/batch size change how, not what, is asked; name, prompt (and its
    # version), model, mode and sampling settings are all in it
    return config_hash(judge.model_dump(mode="json", exclude=set(JudgeConfig.THROUGHPUT_FIELDS)))


def labelled_ids(store: ShardStore, judge: JudgeConfig) -> set[str]:
    """Documents that visible labels of this judge, under this exact judge config, already cover."""
    stage, wanted = stage_of(judge.name), judge_hash(judge)
    ids: set[str] = set()
    for manifest in store.current_manifests(stage):
        if manifest.config_hash == wanted:
            for out in manifest.outputs:
                if out.dataset == "labels" and out.rows:
                    ids.update(_read(store, store.url(out.path), ["id"]).column("id").to_pylist())
    return ids


class JudgeWorker:
    """One loaded judge that labels chunks; the flow runs one per Ray actor (GPU when present)."""

    def __init__(self, judge: JudgeConfig, loaded: Judge | None = None):
        self.config = judge
        self.judge = loaded if loaded is not None else Judge(judge)
        self._parts: dict[str, pa.Table] = {}
        self._labelled: dict[str, set[str]] = {}  # per root: ids this judge config labelled before this worker started

    def label_unit(self, root: str, ref: SampleRef, chunk: str, docs_per_unit: int,
                   storage_options: StorageOptions | None = None) -> dict:
        store = ShardStore(root, storage_options)
        key = UnitKey(stage_of(self.config.name), chunk, judge_hash(self.config))

        def write(unit: UnitWriter) -> dict:
            part = ref.part_of(chunk)
            if part.path not in self._parts:
                self._parts[part.path] = _read(store, part.path)
            if root not in self._labelled:
                # Increments never share a document, so only another sample (another seed) can hold
                # one this judge already answered: it is not asked twice (labels stay unique per
                # (id, judge, judge config) and distill never sees the same label twice).
                self._labelled[root] = labelled_ids(store, self.config)
            docs = [d for d in chunk_ids(self._parts[part.path], chunk, docs_per_unit).to_pylist()
                    if d["id"] not in self._labelled[root]]
            started = time.perf_counter()
            rows = self.judge.label(docs) if docs else []
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

