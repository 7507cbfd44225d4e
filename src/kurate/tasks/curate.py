"""The curate stage as three kinds of units, each committed with the storage protocol.

1. ``filter_shard`` (per input shard, stage ``curate-filter``): ingest → URL filter → language ID →
   heuristic filters; writes the survivors to ``staged``, their MinHash signatures to
   ``signatures`` and every dropped record to ``rejects``.
2. ``dedup_run`` (once per run, stage ``curate-dedup``): exact + MinHash LSH dedup over the
   signatures of every shard of the run, against reference documents that are already curated
   (earlier runs into this root with the same config, and ``dedup.reference_roots``); writes
   ``duplicates``. The join runs in DuckDB over Parquet, so memory stays bounded.
3. ``finalize_shard`` (per input shard, stage ``curate``): ``staged`` minus ``duplicates`` →
   ``curated``; duplicates → ``rejects`` with stage ``dedup``.

Already-curated documents always win a duplicate pair, so committed ``curated`` shards never
change when later runs add shards; among new documents the first in input order wins.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem
from pydantic import BaseModel, ConfigDict, Field

from kurate.errors import PreconditionError
from kurate.storage.fs import StorageOptions
from kurate.storage.schemas import CURATED
from kurate.storage.shards import Manifest, ShardStore, UnitKey, UnitRun, config_hash
from kurate.tasks.dedup import find_duplicates, signature_table
from kurate.tasks.ingest import IngestConfig, ingest_records
from kurate.tasks.minhash import MinHashConfig, MinHasher
from kurate.tasks.quality import QualityConfig, quality_for

STAGE_FILTER = "curate-filter"
STAGE_DEDUP = "curate-dedup"
STAGE_FINAL = "curate"


class DedupConfig(BaseModel):
    """Exact and fuzzy (MinHash LSH) dedup across all shards of a run and against curated data."""

    model_config = ConfigDict(extra="forbid")

    exact: bool = Field(True, description="Drop documents whose normalised text equals a kept one.")
    fuzzy: bool = Field(True, description="Drop near-duplicates found by MinHash LSH.")
    threshold: float = Field(0.8, gt=0, le=1, description="Estimated Jaccard at or above which two docs are near-duplicates.")
    ngram: int = Field(5, ge=1, description="Word n-gram size of the shingles.")
    bands: int = Field(14, ge=1, description="LSH bands.")
    rows: int = Field(8, ge=1, description="Rows per band (num_perm = bands × rows).")
    seed: int = Field(1, description="Seed of the hash permutations.")
    reference_roots: list[str] = Field(
        default_factory=list, description="kurate roots whose curated documents new documents are deduplicated against."
    )

    def minhash(self) -> MinHashConfig:
        return MinHashConfig(num_perm=self.bands * self.rows, ngram=self.ngram, bands=self.bands, rows=self.rows, seed=self.seed)


@dataclass
class ShardResult:
    """What one unit did: small enough to travel back from a Ray task to the flow."""

    input: str
    unit: str
    skipped: bool  # committed by an earlier run: nothing was redone
    records: int = 0
    kept: int = 0  # staged (filter unit) or curated (final unit)
    rejected: int = 0
    reasons: dict = field(default_factory=dict)
    seconds: float = 0.0

    @classmethod
    def from_run(cls, source: str, run: UnitRun, started: float) -> "ShardResult":
        """From a unit's commit record; ``seconds`` only for work done now (a skipped unit took none)."""
        counts = run.counts
        kept = counts.get("curated", counts.get("staged", 0))
        seconds = 0.0 if run.skipped else time.perf_counter() - started
        return cls(source, run.manifest.unit, run.skipped, counts.get("records", 0), kept, counts.get("rejected", 0),
                   counts.get("reasons", {}), seconds)

    def as_dict(self) -> dict:
        return asdict(self)


def _hasher(config: DedupConfig) -> MinHasher:
    return MinHasher(config.minhash())


@dataclass(frozen=True)
class CurateHashes:
    """Config hashes of the filter and final units (each covers everything that changes its output);
    the dedup unit is keyed by ``final``, the config of the run it belongs to."""

    filter: str
    final: str

    @classmethod
    def of(cls, ingest: IngestConfig, quality: QualityConfig, dedup: DedupConfig) -> "CurateHashes":
        minhash = dedup.model_dump(mode="json", include={"ngram", "bands", "rows", "seed"})
        filter_hash = config_hash({"ingest": ingest.model_dump(mode="json"), "quality": quality.model_dump(mode="json"), "minhash": minhash})
        final_hash = config_hash({"filter": filter_hash, "dedup": dedup.model_dump(mode="json")})
        return cls(filter_hash, final_hash)


def filter_shard(
    source: str,
    root: str,
    ingest: IngestConfig,
    quality: QualityConfig,
    dedup: DedupConfig,
    work_hash: str,
    storage_options: StorageOptions | None = None,
) -> ShardResult:
    """Unit 1: one shard → ``staged`` + ``signatures`` + ``rejects`` (exactly once)."""
    store = ShardStore(root, storage_options)
    key = UnitKey(STAGE_FILTER, source, work_hash)
    started = time.perf_counter()

    def write(unit) -> dict:
        quality_chain = quality_for(quality, storage_options)
        hasher = _hasher(dedup)
        reasons: Counter[str] = Counter()
        pending: list[dict] = []
        positions: list[int] = []

        def flush() -> None:
            kept, rejects = quality_chain.assess(pending)
            reasons.update(r["reason"] for r in rejects)
            unit.write("rejects", rejects)
            if kept:
                unit.write("staged", pa.Table.from_pylist(kept, schema=CURATED))
                position_of = {doc["id"]: pos for doc, pos in zip(pending, positions)}
                ranks = [f"{source}\x1f{position_of[doc['id']]:012d}" for doc in kept]
                unit.write("signatures", signature_table([d["id"] for d in kept], ranks, [d["text"] for d in kept], hasher))
            pending.clear()
            positions.clear()

        for position, outcome in enumerate(ingest_records(source, ingest, storage_options)):
            if outcome.curated is None:
                reasons[outcome.reject["reason"]] += 1
                unit.write("rejects", [{**outcome.reject, "language": None}])
                continue
            pending.append(outcome.curated)
            positions.append(position)
            if len(pending) >= ingest.batch_rows:
                flush()
        flush()
        staged, rejected = unit.rows_written("staged"), unit.rows_written("rejects")
        return {"records": staged + rejected, "staged": staged, "rejected": rejected, "reasons": dict(reasons)}

    return ShardResult.from_run(source, store.run_unit(key, ["staged", "signatures", "rejects"], write), started)


def _output(store: ShardStore, manifest: Manifest, dataset: str) -> str:
    return store.url(next(o.path for o in manifest.outputs if o.dataset == dataset))


def _connection(store: ShardStore) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    # Large joins spill; keep the spill files out of the working directory.
    con.execute("SET temp_directory = ?", [os.path.join(tempfile.gettempdir(), "kurate-duckdb")])
    if not isinstance(store.fs, LocalFileSystem):
        con.register_filesystem(store.fs)
    return con


def reference_signatures(root: str, final_hash: str | None, exclude_inputs: set[str], storage_options: StorageOptions | None) -> list[str]:
    """Signature files of documents already curated under ``root`` (this config generation, or any)."""
    store = ShardStore(root, storage_options)
    files = []
    for manifest in store.current_manifests(STAGE_FINAL):
        if manifest.input in exclude_inputs or (final_hash is not None and manifest.config_hash != final_hash):
            continue
        signatures = manifest.counts.get("signatures")
        if signatures:
            files.append(store.url(signatures))
    return files


def dedup_run(
    root: str,
    new_units: list[UnitKey],
    dedup: DedupConfig,
    final_hash: str,
    storage_options: StorageOptions | None = None,
) -> dict:
    """Unit 2: find duplicates among the new shards' documents and against curated references."""
    store = ShardStore(root, storage_options)
    new_manifests = [store.manifest(k) for k in new_units]
    missing = [k.input for k, m in zip(new_units, new_manifests) if m is None]
    if missing:
        raise PreconditionError(f"dedup needs the filter units of these shards committed first: {missing}",
                                "re-run `kurate curate` with the same inputs: it redoes the filter units that did not commit")
    new_inputs = {m.input for m in new_manifests}
    reference = reference_signatures(root, final_hash, new_inputs, storage_options)
    for other in dedup.reference_roots:
        reference += reference_signatures(other, None, set(), storage_options)
    new_files = [_output(store, m, "signatures") for m in new_manifests]
    run_id = hashlib.sha256("\n".join(sorted(k.name for k in new_units) + ["--"] + sorted(reference)).encode()).hexdigest()[:16]
    key = UnitKey(STAGE_DEDUP, f"run-{run_id}", final_hash)

    def write(unit) -> dict:
        started = time.perf_counter()
        con = _connection(store)
        for other in dedup.reference_roots:
            other_fs = ShardStore(other, storage_options).fs
            if not isinstance(other_fs, LocalFileSystem) and other_fs.protocol != store.fs.protocol:
                con.register_filesystem(other_fs)
        duplicates = find_duplicates(new_files, reference, threshold=dedup.threshold, con=con,
                                     exact=dedup.exact, fuzzy=dedup.fuzzy)
        unit.write("duplicates", duplicates)
        kinds = Counter(duplicates.column("kind").to_pylist())
        return {"new_shards": len(new_units), "reference_files": len(reference), "exact": kinds["exact"],
                "near": kinds["near"], "seconds": time.perf_counter() - started}

    run = store.run_unit(key, ["duplicates"], write)
    return {"unit": key.name, "key": key, **run.counts}


def finalize_shard(
    source: str,
    root: str,
    filter_hash: str,
    dedup_key: UnitKey,
    final_hash: str,
    storage_options: StorageOptions | None = None,
) -> ShardResult:
    """Unit 3: ``staged`` minus this run's duplicates → ``curated``; duplicates → ``rejects``."""
    store = ShardStore(root, storage_options)
    key = UnitKey(STAGE_FINAL, source, final_hash)
    started = time.perf_counter()

    def write(unit) -> dict:
        staged_manifest, dedup_manifest = store.manifest(UnitKey(STAGE_FILTER, source, filter_hash)), store.manifest(dedup_key)
        if staged_manifest is None or dedup_manifest is None:
            raise PreconditionError(f"{source}: filter and dedup units must be committed before the final unit",
                                    "re-run `kurate curate` with the same inputs")
        staged = _read(store, _output(store, staged_manifest, "staged"))
        # signatures were written row for row with staged: their rank identifies each staged record
        ranks = _read(store, _output(store, staged_manifest, "signatures")).column("rank")
        duplicates = _read(store, _output(store, dedup_manifest, "duplicates"))
        mine = duplicates.filter(pc.is_in(duplicates.column("rank"), value_set=ranks))
        is_duplicate = pc.is_in(ranks, value_set=mine.column("rank"))
        curated = staged.filter(pc.invert(is_duplicate))
        dropped = staged.filter(is_duplicate).select(["id", "url", "warc_record_id", "source", "language"])
        dropped_ranks = ranks.filter(is_duplicate).to_pylist()
        decisions = {row["rank"]: row for row in mine.to_pylist()}
        rejects = []
        for doc, rank in zip(dropped.to_pylist(), dropped_ranks):
            decision = decisions[rank]
            same = " (the same record, repeated in the input)" if decision["duplicate_of"] == doc["id"] else ""
            rejects.append({**doc, "stage": "dedup", "reason": f"{decision['kind']}_duplicate",
                            "value": decision["similarity"], "detail": f"duplicate of {decision['duplicate_of']}{same}"})
        reasons = Counter(r["reason"] for r in rejects)
        unit.write("curated", curated)
        unit.write("rejects", rejects)
        prior = staged_manifest.counts
        return {
            # the whole shard's story, so `status` and reports need only the final units
            "records": prior.get("records", 0),
            "curated": curated.num_rows,
            "rejected": prior.get("rejected", 0) + len(rejects),
            "reasons": dict(Counter(prior.get("reasons", {})) + reasons),
            "signatures": next(o.path for o in staged_manifest.outputs if o.dataset == "signatures"),
            "dedup_unit": dedup_key.name,
        }

    return ShardResult.from_run(source, store.run_unit(key, ["curated", "rejects"], write), started)


def _read(store: ShardStore, url: str) -> pa.Table:
    with store.fs.open(url, "rb") as handle:
        return pq.read_table(handle)


def run_local(
    inputs: list[str],
    root: str,
    ingest: IngestConfig | None = None,
    quality: QualityConfig | None = None,
    dedup: DedupConfig | None = None,
    storage_options: StorageOptions | None = None,
) -> dict:
    """All three units in this process, shard after shard — for tests, benchmarks and notebooks.

    The curate flow runs the same units with Ray and Prefect around them.
    """
    ingest, quality, dedup = ingest or IngestConfig(), quality or QualityConfig(), dedup or DedupConfig()
    hashes = CurateHashes.of(ingest, quality, dedup)
    store = ShardStore(root, storage_options)
    todo = [s for s in inputs if not store.is_committed(UnitKey(STAGE_FINAL, s, hashes.final))]
    filtered = [filter_shard(s, root, ingest, quality, dedup, hashes.filter, storage_options) for s in todo]
    found = dedup_run(root, [UnitKey(STAGE_FILTER, s, hashes.filter) for s in todo], dedup, hashes.final, storage_options) if todo else None
    final = [finalize_shard(s, root, hashes.filter, found["key"], hashes.final, storage_options) for s in todo]
    return {"filtered": filtered, "dedup": found, "final": final, "skipped": len(inputs) - len(todo)}
