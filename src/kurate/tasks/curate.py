"""The curate stage as three kinds of units, each committed with the storage protocol.

1. ``filter_shard`` (per input shard, stage ``curate-filter``): ingest → URL filter → language ID →
   heuristic filters; writes the survivors to ``staged``, their MinHash signatures to
   ``signatures`` and every dropped record to ``rejects``.
2. ``dedup_run`` (once per run, stage ``curate-dedup``): exact + MinHash LSH dedup over the
   signatures of every shard of the run, against reference documents that are already curated
   (finalized shards of this root with the same config, and ``dedup.reference_roots``); writes
   ``duplicates``. It runs as DuckDB tasks over hash ranges of the signature files
   (``tasks/dedup_partitioned``), so memory stays bounded per task.
3. ``finalize_shard`` (per input shard, stage ``curate``): ``staged`` minus ``duplicates`` →
   ``curated``; duplicates → ``rejects`` with stage ``dedup``.

Decisions are data (issue 16): when a dedup unit commits, each filter unit it decided gets a
decision record ``_decisions/<final hash>/<filter unit>.json`` (put-if-absent: a filter unit is
decided once). A re-run finalizes such shards with their committed decisions, never re-decides
them, and only then deduplicates the shards no run has decided yet (``curate_units``). References
are *finalized curated* documents only: a finalized shard's signatures minus the documents its own
dedup run dropped. Already-curated documents always win a duplicate pair, so committed ``curated``
shards never change when later runs add shards; among new documents the first in input order wins.

Units are keyed by the input's identity too (``input_version``: size + ETag or mtime), so a
replaced input is curated again and supersedes its earlier generation.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Callable, ClassVar, Iterator, Sequence

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem
from pydantic import BaseModel, ConfigDict, Field

from kurate.errors import KurateError, PreconditionError
from kurate.storage.fs import StorageOptions, join
from kurate.storage.schemas import CURATED, DUPLICATES
from kurate.storage.shards import Manifest, RunLock, ShardStore, UnitKey, UnitRun, config_hash, input_version, put_if_absent
from kurate.tasks.dedup import signature_table
from kurate.tasks.dedup_partitioned import TaskMap, find_duplicates_partitioned, run_here
from kurate.tasks.ingest import IngestConfig, ingest_records
from kurate.tasks.minhash import MinHashConfig, MinHasher
from kurate.tasks.quality import QualityConfig, quality_for

STAGE_FILTER = "curate-filter"
STAGE_DEDUP = "curate-dedup"
STAGE_FINAL = "curate"
DECISIONS = "_decisions"


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
    partitions: int = Field(0, ge=0, description="Tasks per dedup step (exact hash ranges, LSH band-key ranges, "
                            "verification); 0: one per `docs_per_task` documents. The decisions do not depend on it.")
    docs_per_task: int = Field(4_000_000, ge=1, description="Documents per dedup task when `partitions` is 0.")
    task_memory_mb: int = Field(2048, ge=64, description="DuckDB memory limit of each dedup task (MB); beyond it the task "
                                "spills to its temp directory.")

    # Fields that change how the work is split, never the decisions: left out of the unit hash.
    SCALING: ClassVar[tuple[str, ...]] = ("partitions", "docs_per_task", "task_memory_mb")

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
        # Only what changes output: buffering knobs (IngestConfig.BUFFERING) are left out, so a
        # different batch size re-uses every committed unit (tests/test_reliability_curate.py lists the fields).
        minhash = dedup.model_dump(mode="json", include={"ngram", "bands", "rows", "seed"})
        filter_hash = config_hash({"ingest": ingest.model_dump(mode="json", exclude=set(IngestConfig.BUFFERING)),
                                   "quality": quality.model_dump(mode="json"), "minhash": minhash})
        final_hash = config_hash({"filter": filter_hash, "dedup": dedup.model_dump(mode="json", exclude=set(DedupConfig.SCALING))})
        return cls(filter_hash, final_hash)


def filter_key(source: str, filter_hash: str, storage_options: StorageOptions | None = None, version: str | None = None) -> UnitKey:
    """The filter unit of one input in its current content (``version`` defaults to the input's identity now)."""
    return UnitKey(STAGE_FILTER, source, filter_hash, input_version(source, storage_options) if version is None else version)


def final_key(source: str, final_hash: str, storage_options: StorageOptions | None = None, version: str | None = None) -> UnitKey:
    return UnitKey(STAGE_FINAL, source, final_hash, input_version(source, storage_options) if version is None else version)


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
    key = filter_key(source, work_hash, storage_options)
    started = time.perf_counter()

    def write(unit) -> dict:
        quality_chain = quality_for(quality, storage_options)
        hasher = _hasher(dedup)
        reasons: Counter[str] = Counter()
        pending: list[dict] = []
        unread: list[dict] = []  # ingest rejects, written a batch at a time (one row group each, not one per record)

        def flush_unread() -> None:
            unit.write("rejects", unread)
            unread.clear()

        def flush() -> None:
            flush_unread()  # first, so the rows land in the order they were decided
            kept, rejects = quality_chain.assess(pending)
            reasons.update(r["reason"] for r in rejects)
            unit.write("rejects", rejects)
            if kept:
                unit.write("staged", pa.Table.from_pylist(kept, schema=CURATED))
                # the rank names the record's position, not its id: a record repeated in the input
                # (same WARC-Record-ID) has one id but two ranks, and exactly one copy must win
                ranks = [f"{source}\x1f{doc['_position']:012d}" for doc in kept]
                unit.write("signatures", signature_table([d["id"] for d in kept], ranks, [d["text"] for d in kept], hasher))
            pending.clear()

        for position, outcome in enumerate(ingest_records(source, ingest, storage_options)):
            if outcome.curated is None:
                reasons[outcome.reject["reason"]] += 1
                unread.append({**outcome.reject, "language": None})
                if len(unread) >= ingest.batch_rows:
                    flush_unread()
                continue
            pending.append({**outcome.curated, "_position": position})  # not a column: Arrow keeps the schema's fields only
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


def reference_signatures(root: str, final_hash: str | None, exclude_inputs: set[str],
                         storage_options: StorageOptions | None) -> tuple[list[str], list[str]]:
    """Documents already curated under ``root`` (this config generation, or any), as (signature
    files, duplicates files): a finalized shard's signatures minus the ranks its dedup run dropped
    are exactly its curated documents."""
    store = ShardStore(root, storage_options)
    files, dropped = [], set()
    for manifest in store.current_manifests(STAGE_FINAL):
        if manifest.input in exclude_inputs or (final_hash is not None and manifest.config_hash != final_hash):
            continue
        signatures = manifest.counts.get("signatures")
        if signatures:
            files.append(store.url(signatures))
            if manifest.counts.get("duplicates"):
                dropped.add(store.url(manifest.counts["duplicates"]))
    return files, sorted(dropped)


def _decision_path(store: ShardStore, unit: UnitKey, final_hash: str) -> str:
    return join(store.path, DECISIONS, final_hash[:16], f"{unit.name}.json")


def decision_for(store: ShardStore, unit: UnitKey, final_hash: str) -> UnitKey | None:
    """The committed dedup unit that decided filter unit ``unit`` under ``final_hash``, if any."""
    try:
        raw = json.loads(store.fs.cat_file(_decision_path(store, unit, final_hash)))
    except FileNotFoundError:
        return None
    return UnitKey(STAGE_DEDUP, raw["dedup_input"], raw["config_hash"])


def _record_decisions(store: ShardStore, units: list[UnitKey], dedup_key: UnitKey) -> None:
    """Point every filter unit the dedup unit decided at it; put-if-absent, so an earlier decision stands."""
    body = json.dumps({"dedup_unit": dedup_key.name, "dedup_input": dedup_key.input, "config_hash": dedup_key.config_hash}).encode()
    if units:
        store.fs.makedirs(os.path.dirname(_decision_path(store, units[0], dedup_key.config_hash)), exist_ok=True)
    for unit in units:
        put_if_absent(store.fs, _decision_path(store, unit, dedup_key.config_hash), body)


def dedup_run(
    root: str,
    new_units: list[UnitKey],
    dedup: DedupConfig,
    final_hash: str,
    storage_options: StorageOptions | None = None,
    map_tasks: TaskMap = run_here,
) -> dict:
    """Unit 2: find duplicates among the new shards' documents and against curated references, as
    dedup tasks of bounded memory (``tasks/dedup_partitioned``) that ``map_tasks`` runs (Ray tasks
    from the flow, else this process); their files live in the unit's temp folder."""
    store = ShardStore(root, storage_options)
    new_manifests = [store.manifest(k) for k in new_units]
    missing = [k.input for k, m in zip(new_units, new_manifests) if m is None]
    if missing:
        raise PreconditionError(f"dedup needs the filter units of these shards committed first: {missing}",
                                "re-run `kurate curate` with the same inputs: it redoes the filter units that did not commit")
    new_inputs = {m.input for m in new_manifests}
    reference, dropped = reference_signatures(root, final_hash, new_inputs, storage_options)
    for other in dedup.reference_roots:
        other_files, other_dropped = reference_signatures(other, None, set(), storage_options)
        reference, dropped = reference + other_files, dropped + other_dropped
    new_files = [_output(store, m, "signatures") for m in new_manifests]
    run_id = hashlib.sha256("\n".join(sorted(k.name for k in new_units) + ["--"] + sorted(reference)).encode()).hexdigest()[:16]
    key = UnitKey(STAGE_DEDUP, f"run-{run_id}", final_hash)

    def write(unit) -> dict:
        started = time.perf_counter()
        connect = functools.partial(_dedup_connection, root, storage_options, tuple(dedup.reference_roots))
        duplicates = find_duplicates_partitioned(
            new_files, reference, reference_exclude=dropped, threshold=dedup.threshold, exact=dedup.exact, fuzzy=dedup.fuzzy,
            partitions=dedup.partitions, docs_per_task=dedup.docs_per_task, memory_mb=dedup.task_memory_mb, connect=connect,
            scratch=join(unit.tmp_dir, "dedup-tasks"), fs=store.fs, map_tasks=map_tasks)
        unit.write("duplicates", duplicates)
        kinds = Counter(duplicates.column("kind").to_pylist())
        return {"new_shards": len(new_units), "reference_files": len(reference), "exact": kinds["exact"],
                "near": kinds["near"], "seconds": time.perf_counter() - started}

    run = store.run_unit(key, ["duplicates"], write)
    _record_decisions(store, list(new_units), key)
    return {"unit": key.name, "key": key, **run.counts}


def _dedup_connection(root: str, storage_options: StorageOptions | None, reference_roots: tuple[str, ...]) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that reads the signature files of ``root`` and of ``reference_roots`` (built
    from plain values, so that dedup tasks on Ray workers open their own)."""
    store = ShardStore(root, storage_options)
    con = _connection(store)
    for other in reference_roots:
        other_fs = ShardStore(other, storage_options).fs
        if not isinstance(other_fs, LocalFileSystem) and other_fs.protocol != store.fs.protocol:
            con.register_filesystem(other_fs)
    return con


def finalize_shard(
    source: str,
    root: str,
    filter_hash: str,
    final_hash: str,
    storage_options: StorageOptions | None = None,
    batch_rows: int = IngestConfig().batch_rows,
) -> ShardResult:
    """Unit 3: ``staged`` minus the committed decisions about it → ``curated``; duplicates → ``rejects``.

    Streams: ``staged`` and its signatures' ranks are read ``batch_rows`` rows at a time and each
    batch is written before the next is read, so memory is bounded by the batch (plus this shard's
    rows of the run's ``duplicates``), not by the shard."""
    store = ShardStore(root, storage_options)
    version = input_version(source, storage_options)
    key = final_key(source, final_hash, version=version)
    started = time.perf_counter()

    def write(unit) -> dict:
        staged_key = filter_key(source, filter_hash, version=version)
        dedup_key = decision_for(store, staged_key, final_hash)
        staged_manifest, dedup_manifest = store.manifest(staged_key), dedup_key and store.manifest(dedup_key)
        if staged_manifest is None or dedup_manifest is None:
            raise PreconditionError(f"{source}: filter and dedup units must be committed before the final unit",
                                    "re-run `kurate curate` with the same inputs")
        mine = _duplicates_of(store, _output(store, dedup_manifest, "duplicates"), source, batch_rows)
        # the last decision per rank wins (as a dict built over the rows would): look ranks up in reverse
        mine = mine.take(pa.array(range(mine.num_rows - 1, -1, -1), pa.int64()))
        decided = mine.column("rank")
        # signatures were written row for row with staged: their rank identifies each staged record
        ranks = _Rows(_batches(store, _output(store, staged_manifest, "signatures"), batch_rows, ["rank"]))
        reasons: Counter[str] = Counter()
        for batch in _batches(store, _output(store, staged_manifest, "staged"), batch_rows):
            if not batch.num_rows:
                continue
            batch_ranks = ranks.take(batch.num_rows, source).column("rank")
            is_duplicate = pc.is_in(batch_ranks, value_set=decided)
            unit.write("curated", batch.filter(pc.invert(is_duplicate)))
            if not pc.any(is_duplicate).as_py():
                continue
            dropped = batch.filter(is_duplicate).select(["id", "url", "warc_record_id", "source", "language"])
            decisions = mine.take(pc.index_in(batch_ranks.filter(is_duplicate), value_set=decided)).to_pylist()
            rejects = []
            for doc, decision in zip(dropped.to_pylist(), decisions):
                same = " (the same record, repeated in the input)" if decision["duplicate_of"] == doc["id"] else ""
                rejects.append({**doc, "stage": "dedup", "reason": f"{decision['kind']}_duplicate",
                                "value": decision["similarity"], "detail": f"duplicate of {decision['duplicate_of']}{same}"})
            reasons.update(r["reason"] for r in rejects)
            unit.write("rejects", rejects)
        ranks.done(source)
        prior = staged_manifest.counts
        return {
            # the whole shard's story, so `status` and reports need only the final units
            "records": prior.get("records", 0),
            "curated": unit.rows_written("curated"),
            "rejected": prior.get("rejected", 0) + unit.rows_written("rejects"),
            "reasons": dict(Counter(prior.get("reasons", {})) + reasons),
            "signatures": next(o.path for o in staged_manifest.outputs if o.dataset == "signatures"),
            "duplicates": next(o.path for o in dedup_manifest.outputs if o.dataset == "duplicates"),
            "dedup_unit": dedup_key.name,
        }

    return ShardResult.from_run(source, store.run_unit(key, ["curated", "rejects"], write), started)


def _batches(store: ShardStore, url: str, batch_rows: int, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
    """A Parquet file ``batch_rows`` rows at a time, read one row group at a time: ``iter_batches``
    over all row groups at once read the whole file up front (a 54 MB staged file: 52 MB held)."""
    with store.fs.open(url, "rb") as handle:
        parquet = pq.ParquetFile(handle)
        for group in range(parquet.num_row_groups):
            yield from parquet.iter_batches(batch_size=batch_rows, row_groups=[group], columns=columns)


def _duplicates_of(store: ShardStore, url: str, source: str, batch_rows: int) -> pa.Table:
    """The rows of a run's ``duplicates`` about one input's documents (their ranks start with it), read in batches."""
    prefix = f"{source}\x1f"  # filter_shard's rank: input + separator + position
    parts = [batch.filter(pc.starts_with(batch.column("rank"), prefix)) for batch in _batches(store, url, max(batch_rows, 4096))]
    return pa.Table.from_batches(parts) if parts else DUPLICATES.empty_table()


class _Rows:
    """Rows of a batch iterator handed out ``n`` at a time, whatever its batch boundaries."""

    def __init__(self, batches: Iterator[pa.RecordBatch]):
        self._batches, self._held = batches, []

    def take(self, n: int, source: str) -> pa.Table:
        held, count = self._held, sum(b.num_rows for b in self._held)
        while count < n:
            batch = next(self._batches, None)
            if batch is None:
                raise KurateError(f"{source}: the staged documents outnumber their signatures",
                                  "the filter unit's outputs are inconsistent: remove its commit record and re-run")
            held.append(batch)
            count += batch.num_rows
        table = pa.Table.from_batches(held)
        self._held = table.slice(n).to_batches()
        return table.slice(0, n)

    def done(self, source: str) -> None:
        if any(b.num_rows for b in self._held) or any(b.num_rows for b in self._batches):
            raise KurateError(f"{source}: the signatures outnumber the staged documents",
                              "the filter unit's outputs are inconsistent: remove its commit record and re-run")


@dataclass
class ShardFailure:
    """A shard whose unit raised (after its retries): reported, not committed; a re-run retries it."""

    input: str
    error: str
    unit: str = ""

    def as_dict(self) -> dict:
        return {"input": self.input, "status": "failed", "error": self.error.splitlines()[0] if self.error else ""}


ShardMap = Callable[[str, Callable, list[str], tuple], list["ShardResult | ShardFailure"]]
DedupStep = Callable[[list[UnitKey]], dict]


def curate_units(
    inputs: Sequence[str],
    root: str,
    hashes: CurateHashes,
    filter_args: tuple,
    map_shards: ShardMap,
    dedup_step: DedupStep,
    storage_options: StorageOptions | None = None,
) -> dict:
    """The curate run's order of units, shared by ``run_local`` and the curate flow.

    ``map_shards(label, fn, items, args)`` runs ``fn(item, *args)`` per shard (in this process or on
    Ray, with retries) and returns a ``ShardResult`` or ``ShardFailure`` each; ``dedup_step(units)``
    runs ``dedup_run`` for filter units no run has decided yet.

    1. filter every unfinished shard; a shard that fails is that input's failure, the rest go on;
    2. finalize the shards an earlier run already decided, with those decisions (never re-decided);
    3. only when all of those are finalized (they are references for the rest): dedup the undecided
       shards against the finalized curated documents, and finalize them.
    """
    store = ShardStore(root, storage_options)
    versions = {s: input_version(s, storage_options) for s in inputs}
    todo = [s for s in inputs if not store.is_committed(final_key(s, hashes.final, version=versions[s]))]
    filtered = map_shards("filter", filter_shard, todo, (root, *filter_args, hashes.filter, storage_options)) if todo else []
    failed = [r for r in filtered if isinstance(r, ShardFailure)]
    ok = [r.input for r in filtered if not isinstance(r, ShardFailure)]
    units = {s: filter_key(s, hashes.filter, version=versions[s]) for s in ok}
    decided = [s for s in ok if decision_for(store, units[s], hashes.final) is not None]
    undecided = [s for s in ok if s not in set(decided)]
    # the finalize units stream in the ingest config's batches too (filter_args is (ingest, quality, dedup))
    batch_rows = next((a.batch_rows for a in filter_args if isinstance(a, IngestConfig)), IngestConfig().batch_rows)
    final_args = (root, hashes.filter, hashes.final, storage_options, batch_rows)
    final = map_shards("finalize", finalize_shard, decided, final_args) if decided else []
    found = None
    if undecided and not any(isinstance(r, ShardFailure) for r in final):
        found = dedup_step([units[s] for s in undecided])
        final += map_shards("finalize", finalize_shard, undecided, final_args)
    elif undecided:
        waiting = sorted(r.input for r in final if isinstance(r, ShardFailure))
        failed += [ShardFailure(s, f"not deduplicated yet: it needs the earlier decided shards finalized first ({waiting})")
                   for s in undecided]
    failed += [r for r in final if isinstance(r, ShardFailure)]
    return {"filtered": [r for r in filtered if not isinstance(r, ShardFailure)], "dedup": found,
            "final": [r for r in final if not isinstance(r, ShardFailure)], "failed": failed,
            "skipped": len(inputs) - len(todo), "skipped_inputs": [s for s in inputs if s not in set(todo)]}


def map_in_process(retries: int = 1) -> ShardMap:
    """A ``ShardMap`` that runs shard after shard here, retrying a failed unit ``retries`` times."""

    def run(label: str, fn: Callable, items: list[str], args: tuple) -> list:
        results = []
        for item in items:
            for attempt in range(retries + 1):
                try:
                    results.append(fn(item, *args))
                    break
                except Exception as exc:  # noqa: BLE001 - one shard's failure, reported with the others
                    if attempt == retries:
                        results.append(ShardFailure(item, f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}"))
        return results

    return run


def run_local(
    inputs: list[str],
    root: str,
    ingest: IngestConfig | None = None,
    quality: QualityConfig | None = None,
    dedup: DedupConfig | None = None,
    storage_options: StorageOptions | None = None,
    retries: int = 1,
    lock_wait_s: float = 0.0,
) -> dict:
    """All three units in this process, shard after shard — for tests, benchmarks and notebooks.

    The curate flow runs the same units (``curate_units``) with Ray and Prefect around them. Holds
    the root's curate lock; raises ``KurateError`` naming the failed shards after the others finished.
    """
    ingest, quality, dedup = ingest or IngestConfig(), quality or QualityConfig(), dedup or DedupConfig()
    hashes = CurateHashes.of(ingest, quality, dedup)
    with RunLock(ShardStore(root, storage_options), STAGE_FINAL, wait_s=lock_wait_s):
        result = curate_units(inputs, root, hashes, (ingest, quality, dedup), map_in_process(retries),
                              lambda units: dedup_run(root, units, dedup, hashes.final, storage_options), storage_options)
    if result["failed"]:
        lines = "; ".join(f"{f.input}: {f.error.splitlines()[0]}" for f in result["failed"])
        raise KurateError(f"curate: {len(result['failed'])} shard(s) failed, the other shards are committed: {lines}",
                          "fix those inputs and run again: only what did not commit is redone")
    return result
