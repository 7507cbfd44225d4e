"""The exactly-once shard protocol (docs/ARCHITECTURE.md, "Exactly once").

A *unit* is the work one stage does on one input shard. Its name derives from
(input shard, stage, config hash), so re-running the same work targets the same name. A unit writes
one Parquet file per output dataset (``curated`` and ``rejects`` for ingest), and commits them
together:

1. every dataset is streamed to ``<root>/_tmp/<unit>.<token>/<dataset>.parquet``;
2. each file is moved to its final name ``<root>/<dataset>/<unit>.parquet``;
3. the commit record ``<root>/_manifests/<stage>/<unit>.json`` is written last.

Readers and the catalog only see files named by a commit record, so a writer killed at any point
leaves nothing visible: a re-run overwrites the orphaned final files and writes the record. A unit
whose record exists is skipped. Because both datasets of a unit commit with one record, the lineage
invariant (every input document in exactly one of curated/rejects) holds at every instant.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable

import fsspec
from fsspec.implementations.local import LocalFileSystem
import pyarrow as pa
import pyarrow.parquet as pq

from kurate.storage import KURATE_VERSION
from kurate.storage.fs import StorageOptions, filesystem, join, unstrip
from kurate.storage.schemas import schema_of

MANIFESTS = "_manifests"
TMP = "_tmp"
PLANS = "_plans"


def config_hash(payload: object) -> str:
    """A short, stable hash of a JSON-serialisable config (key order does not matter)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class UnitKey:
    """Identifies one stage's work on one input shard under one config."""

    stage: str
    input: str
    config_hash: str

    @property
    def name(self) -> str:
        stem = os.path.basename(self.input.rstrip("/")) or "input"
        stem = re.sub(r"\.(warc|wet|wat|parquet|jsonl?)(\.(gz|zst|lz4))?$", "", stem)
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem)[:80]
        input_hash = hashlib.sha256(self.input.encode()).hexdigest()[:10]
        return f"{stem}-{self.stage}-{input_hash}-{self.config_hash[:10]}"


@dataclass(frozen=True)
class OutputFile:
    dataset: str
    path: str  # relative to the root, so a root can be moved or copied (ShardStore.url resolves it)
    rows: int
    bytes: int


@dataclass(frozen=True)
class Manifest:
    """The commit record of one unit: written last, it is what makes the unit's files visible."""

    unit: str
    stage: str
    input: str
    config_hash: str
    kurate_version: str
    committed_at: float
    outputs: tuple[OutputFile, ...]
    counts: dict = field(default_factory=dict)  # stage-specific counters (responses, kept, rejected…)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Manifest":
        raw = json.loads(text)
        raw["outputs"] = tuple(OutputFile(**o) for o in raw["outputs"])
        return cls(**raw)


@dataclass(frozen=True)
class UnitRun:
    """What ``ShardStore.run_unit`` did: the unit's commit record, and whether an earlier run made it."""

    manifest: Manifest
    skipped: bool

    @property
    def counts(self) -> dict:
        return self.manifest.counts


class ShardStore:
    """Committed shards under one root (a local directory, ``s3://bucket/prefix`` or ``memory://…``)."""

    def __init__(self, root: str, storage_options: StorageOptions | None = None):
        self.root = root.rstrip("/")
        self.storage_options = storage_options or {}
        self.fs, self.path = filesystem(self.root, self.storage_options)

    def url(self, *parts: str) -> str:
        """Full URL of a path under the root (absolute for a local root)."""
        path = join(self.path, *parts)
        return os.path.abspath(path) if isinstance(self.fs, LocalFileSystem) else unstrip(self.fs, path)

    def _manifest_path(self, key: UnitKey) -> str:
        return join(self.path, MANIFESTS, key.stage, f"{key.name}.json")

    def manifest(self, key: UnitKey) -> Manifest | None:
        path = self._manifest_path(key)
        try:
            return Manifest.from_json(self.fs.cat_file(path).decode())
        except FileNotFoundError:
            return None

    def is_committed(self, key: UnitKey) -> bool:
        return self.fs.exists(self._manifest_path(key))

    def manifests(self, stage: str | None = None) -> list[Manifest]:
        """All commit records (of one stage, or all), sorted by unit name for deterministic views."""
        pattern = join(self.path, MANIFESTS, stage or "*", "*.json")
        self.fs.invalidate_cache()
        paths = sorted(self.fs.glob(pattern))
        if not paths:
            return []
        blobs = self.fs.cat(paths)
        found = [Manifest.from_json(blobs[p].decode()) for p in paths]
        return sorted(found, key=lambda m: (m.stage, m.unit))

    def current_manifests(self, stage: str | None = None) -> list[Manifest]:
        """The latest commit per (stage, input): a run with a new config supersedes older generations."""
        latest: dict[tuple[str, str], Manifest] = {}
        for manifest in self.manifests(stage):
            key = (manifest.stage, manifest.input)
            if key not in latest or manifest.committed_at > latest[key].committed_at:
                latest[key] = manifest
        return sorted(latest.values(), key=lambda m: (m.stage, m.unit))

    def pending_tmp(self) -> list[str]:
        """Temporary unit directories: work in flight, or left behind by a killed writer."""
        self.fs.invalidate_cache()
        tmp = join(self.path, TMP)
        if not self.fs.exists(tmp):
            return []
        return sorted(os.path.basename(p.rstrip("/")) for p in self.fs.ls(tmp, detail=False))

    def run_unit(self, key: UnitKey, datasets: Iterable[str], write: Callable[["UnitWriter"], dict | None],
                 schemas: dict[str, pa.Schema] | None = None) -> "UnitRun":
        """Run one unit exactly once: skip it when committed, else clear what a killed earlier
        attempt left in the temp area, call ``write(writer)`` and commit its datasets together.

        ``write`` streams the unit's rows into the writer and returns its counts (stored in the
        commit record). When it raises, nothing is committed and the temp files are removed."""
        committed = self.manifest(key)
        if committed is not None:
            return UnitRun(committed, skipped=True)
        self.clear_tmp(key)
        with self.open_unit(key, datasets, schemas) as unit:
            counts = write(unit)
            if counts is not None:
                unit.counts = dict(counts)
        return UnitRun(unit.manifest, skipped=False)

    def clear_tmp(self, key: UnitKey) -> None:
        """Remove temporary files a killed earlier attempt of this unit left behind."""
        tmp = join(self.path, TMP)
        if not self.fs.exists(tmp):
            return
        for p in self.fs.ls(tmp, detail=False):
            if os.path.basename(p.rstrip("/")).startswith(key.name + "."):
                _remove_tree(self.fs, p)

    def open_unit(self, key: UnitKey, datasets: Iterable[str], schemas: dict[str, pa.Schema] | None = None) -> "UnitWriter":
        """A writer for one unit; ``schemas`` overrides a dataset's registered schema (e.g. wide
        ``scores`` with one column per annotator)."""
        return UnitWriter(self, key, tuple(datasets), schemas or {})

    # Plans record what a run set out to do, so `kurate status` can report pending work.
    def write_plan(self, stage: str, config_hash: str, units: dict[str, str]) -> None:
        path = join(self.path, PLANS, f"{stage}.json")
        self.fs.makedirs(join(self.path, PLANS), exist_ok=True)
        body = {"stage": stage, "config_hash": config_hash, "written_at": time.time(), "units": units}
        self.fs.pipe_file(path, json.dumps(body, indent=1, sort_keys=True).encode())

    def plans(self) -> list[dict]:
        self.fs.invalidate_cache()
        paths = sorted(self.fs.glob(join(self.path, PLANS, "*.json")))
        return [json.loads(self.fs.cat_file(p)) for p in paths]


def _remove_tree(fs: fsspec.AbstractFileSystem, path: str) -> None:
    """Remove a directory tree if it exists (object stores drop empty "directories" by themselves)."""
    try:
        fs.rm(path, recursive=True)
    except FileNotFoundError:
        pass


class UnitWriter:
    """Streams one unit's datasets to temporary Parquet files and commits them together.

    Use as a context manager: it commits when the block finishes and aborts (removing its temporary
    files) when the block raises. ``counts`` set on the writer are stored in the commit record.
    """

    def __init__(self, store: ShardStore, key: UnitKey, datasets: tuple[str, ...], schemas: dict[str, pa.Schema] | None = None):
        self.store, self.key, self.datasets = store, key, datasets
        self.schemas = {d: (schemas or {}).get(d) or schema_of(d) for d in datasets}
        self.tmp_dir = join(store.path, TMP, f"{key.name}.{uuid.uuid4().hex[:12]}")
        self.counts: dict = {}
        self._rows = {d: 0 for d in datasets}
        self._files: dict[str, fsspec.core.OpenFile] = {}
        self._writers: dict[str, pq.ParquetWriter] = {}
        store.fs.makedirs(self.tmp_dir, exist_ok=True)

    def _writer(self, dataset: str) -> pq.ParquetWriter:
        if dataset not in self._writers:
            if dataset not in self.datasets:
                raise KeyError(f"unit {self.key.name} was not opened for dataset {dataset!r}")
            schema = self.schemas[dataset].with_metadata(
                {
                    "kurate_version": KURATE_VERSION,
                    "config_hash": self.key.config_hash,
                    "stage": self.key.stage,
                    "input": self.key.input,
                    "unit": self.key.name,
                    "dataset": dataset,
                }
            )
            handle = self.store.fs.open(join(self.tmp_dir, f"{dataset}.parquet"), "wb")
            self._files[dataset] = handle
            self._writers[dataset] = pq.ParquetWriter(handle, schema, compression="zstd")
        return self._writers[dataset]

    def write(self, dataset: str, data: pa.Table | pa.RecordBatch | list[dict]) -> None:
        if isinstance(data, list):
            data = pa.Table.from_pylist(data, schema=self.schemas[dataset])
        if data.num_rows == 0:
            return
        writer = self._writer(dataset)
        table = data if isinstance(data, pa.Table) else pa.Table.from_batches([data])
        writer.write_table(table.cast(writer.schema))
        self._rows[dataset] += table.num_rows

    def rows_written(self, dataset: str) -> int:
        return self._rows[dataset]

    def commit(self) -> Manifest:
        fs = self.store.fs
        for dataset in self.datasets:
            self._writer(dataset)  # a dataset with no rows still gets a (schema-only) file
        for dataset in self.datasets:
            self._writers[dataset].close()
            self._files[dataset].close()
        outputs = []
        for dataset in self.datasets:
            final_dir = join(self.store.path, dataset)
            fs.makedirs(final_dir, exist_ok=True)
            final = join(final_dir, f"{self.key.name}.parquet")
            fs.mv(join(self.tmp_dir, f"{dataset}.parquet"), final)
            outputs.append(OutputFile(dataset, f"{dataset}/{self.key.name}.parquet", self._rows[dataset], fs.size(final)))
        manifest = Manifest(
            unit=self.key.name,
            stage=self.key.stage,
            input=self.key.input,
            config_hash=self.key.config_hash,
            kurate_version=KURATE_VERSION,
            committed_at=time.time(),
            outputs=tuple(outputs),
            counts=dict(self.counts),
        )
        # The commit point: write the record under a temporary name and move it into place, so a
        # reader never sees a half-written record (on object stores a single put is already atomic).
        final_manifest = self.store._manifest_path(self.key)
        fs.makedirs(os.path.dirname(final_manifest), exist_ok=True)
        staged = join(self.tmp_dir, "manifest.json")
        fs.pipe_file(staged, manifest.to_json().encode())
        fs.mv(staged, final_manifest)
        _remove_tree(fs, self.tmp_dir)
        return manifest

    def abort(self) -> None:
        for dataset, writer in self._writers.items():
            try:
                writer.close()
                self._files[dataset].close()
            except Exception:  # noqa: BLE001 - best effort; the directory goes next
                pass
        _remove_tree(self.store.fs, self.tmp_dir)

    def __enter__(self) -> "UnitWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.manifest = self.commit()
        else:
            self.abort()
