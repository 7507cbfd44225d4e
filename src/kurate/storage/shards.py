"""The exactly-once shard protocol (docs/ARCHITECTURE.md, "Exactly once").

A *unit* is the work one stage does on one input shard. Its name derives from
(input shard, stage, config hash), so re-running the same work targets the same name. A unit writes
one Parquet file per output dataset (``curated`` and ``rejects`` for ingest), and commits them
together:

1. every dataset is streamed to ``<root>/_tmp/<unit>.<token>/<dataset>.parquet``;
2. each file is moved to its final name ``<root>/<dataset>/<unit>.<token>.parquet`` (the token is
   the attempt's, so two writers of one unit never overwrite each other's files);
3. the commit record ``<root>/_manifests/<stage>/<unit>.json`` is written last, *put-if-absent*
   (a hard link on a local disk, ``If-None-Match: *`` on S3): the first writer to commit wins, a
   later one removes its own files and returns the winner's record as "skipped".

Readers and the catalog only see files named by a commit record, so a writer killed at any point
leaves nothing visible. A unit whose record exists is skipped. Because both datasets of a unit
commit with one record, the lineage invariant (every input document in exactly one of
curated/rejects) holds at every instant.

A temp directory names its owner (host, pid); it is removed only by that owner, or by a later
attempt when the owner is provably gone (same host, process no longer alive, or this process's
writer was dropped). Each commit record carries a ``generation``: one more than the highest
generation committed for the same (stage, input) before it, so the *current* generation of an input
is chosen by commit order, never by wall clock. ``RunLock`` gives one writer per root and stage
(``kurate curate`` holds one for the whole run).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import time
import uuid
import weakref
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable

import fsspec
from fsspec.implementations.local import LocalFileSystem
import pyarrow as pa
import pyarrow.parquet as pq

from kurate.errors import KurateError
from kurate.storage import KURATE_VERSION
from kurate.storage.fs import StorageOptions, filesystem, join, unstrip
from kurate.storage.schemas import schema_of

MANIFESTS = "_manifests"
TMP = "_tmp"
PLANS = "_plans"
LOCKS = "_locks"
OWNER_FILE = "_owner.json"
ORPHAN_TMP_AGE_S = 600.0  # a temp directory without an owner record older than this was left by a writer that died creating it
HOST = socket.gethostname()


def config_hash(payload: object) -> str:
    """A short, stable hash of a JSON-serialisable config (key order does not matter)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class UnitKey:
    """Identifies one stage's work on one input shard under one config.

    ``version`` is the input's identity (``input_version``: size + ETag or mtime) where the stage
    reads a file that can be replaced at the same path: a replaced input is a new unit."""

    stage: str
    input: str
    config_hash: str
    version: str = ""

    @property
    def input_hash(self) -> str:
        """Hash of the input path only: every generation of one input shares it."""
        return hashlib.sha256(self.input.encode()).hexdigest()[:10]

    @property
    def name(self) -> str:
        stem = os.path.basename(self.input.rstrip("/")) or "input"
        stem = re.sub(r"\.(warc|wet|wat|parquet|jsonl?)(\.(gz|zst|lz4))?$", "", stem)
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem)[:80]
        work = self.config_hash if not self.version else hashlib.sha256(f"{self.config_hash}\x1f{self.version}".encode()).hexdigest()
        return f"{stem}-{self.stage}-{self.input_hash}-{work[:10]}"


def input_version(url: str, storage_options: StorageOptions | None = None) -> str:
    """An input's identity for ``UnitKey.version``: its size plus its ETag (object stores) or mtime.

    Replacing a file at the same path (a finished download over a half-written one) changes it.
    A path that cannot be read gives ``""``: the unit then fails when it reads the input."""
    fs, path = filesystem(url, storage_options)
    try:
        info = fs.info(path)
    except (OSError, ValueError):
        return ""
    tag = info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified") or info.get("created") or ""
    return f"{info.get('size')}:{str(tag).strip(chr(34))}"


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
    generation: int = 0  # commit order among the units of the same (stage, input); 0 in older records
    input_version: str = ""

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
        """All commit records (of one stage, or all), sorted by unit name for deterministic views.

        Read through the catalog snapshot (storage/snapshot.py): the records' names are listed, and
        only records committed since the snapshot was written are opened."""
        from kurate.storage.snapshot import records, to_manifests

        self.fs.invalidate_cache()
        return sorted(to_manifests(records(self, stage)), key=lambda m: (m.stage, m.unit))

    def current_manifests(self, stage: str | None = None) -> list[Manifest]:
        """The latest commit per (stage, input): a run with a new config (or a replaced input)
        supersedes older generations. "Latest" is commit order (``generation``); the wall clock only
        orders records written before generations existed. The snapshot computes it once per fold
        (``snapshot.CURRENT_ORDER``)."""
        from kurate.storage.snapshot import current, records, to_manifests

        self.fs.invalidate_cache()
        return sorted(to_manifests(current(records(self, stage))), key=lambda m: (m.stage, m.unit))

    def next_generation(self, key: UnitKey) -> int:
        """One more than the highest generation committed for ``key``'s (stage, input)."""
        self.fs.invalidate_cache()
        directory = join(self.path, MANIFESTS, key.stage)
        if not self.fs.exists(directory):
            return 1
        # Every generation of one input shares the name's head (stem, stage, input hash). s3fs lists
        # that prefix server-side, so a commit costs the same at 100k units as at 1k; other
        # filesystems ignore ``prefix`` and the names are filtered here.
        head = key.name[: key.name.rindex("-") + 1]
        if isinstance(self.fs, LocalFileSystem):  # names only: fsspec's find would stat every record of the stage
            paths = [join(directory, n) for n in os.listdir(directory) if n.startswith(head) and n.endswith(".json")]
        else:
            paths = [p for p in self.fs.find(directory, prefix=head) if os.path.basename(p).startswith(head) and p.endswith(".json")]
        if not paths:
            return 1
        blobs = self.fs.cat(paths)
        found = [Manifest.from_json(b.decode()) for b in blobs.values()]
        return 1 + max((m.generation for m in found if m.input == key.input), default=0)

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
        # another writer may have committed the same unit first: its record stands, ours was dropped
        return UnitRun(unit.manifest, skipped=unit.lost)

    def clear_tmp(self, key: UnitKey) -> None:
        """Remove temporary files that killed earlier attempts of this unit left behind.

        Only provably stale ones: a live writer's directory (another run, another Ray worker) is
        left alone, since its files are named by its own token and never collide with ours."""
        tmp = join(self.path, TMP)
        self.fs.invalidate_cache()
        if not self.fs.exists(tmp):
            return
        for p in self.fs.ls(tmp, detail=False):
            if os.path.basename(p.rstrip("/")).startswith(key.name + ".") and self._is_stale(p):
                _remove_tree(self.fs, p)

    def _is_stale(self, tmp_dir: str) -> bool:
        try:
            owner = json.loads(self.fs.cat_file(join(tmp_dir, OWNER_FILE)))
        except (FileNotFoundError, ValueError):
            # A writer creates its directory, then its owner record: a directory without one is a
            # writer in that instant, or one that died in it. Only the second grows old.
            return self._age_s(tmp_dir) > ORPHAN_TMP_AGE_S
        return _owner_is_gone(owner)

    def _age_s(self, path: str) -> float:
        try:
            info = self.fs.info(path)
        except FileNotFoundError:
            return float("inf")
        mtime = info.get("mtime") or info.get("LastModified") or info.get("created")
        if mtime is None:
            return float("inf")  # an object-store "directory" without files: nothing to keep
        if hasattr(mtime, "timestamp"):
            mtime = mtime.timestamp()
        return time.time() - float(mtime)

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


# Writers (and run locks) open in this process, by token: a temp directory or lock whose owner is this
# process but whose holder is gone (dropped without commit or abort) is stale.
_LIVE_WRITERS: "weakref.WeakValueDictionary[str, UnitWriter]" = weakref.WeakValueDictionary()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _owner_is_gone(owner: dict) -> bool:
    """Provably gone: on this host, and its process is dead (or it is this process and the writer
    or lock holder it names no longer exists). An owner on another host is never presumed dead."""
    if owner.get("host") != HOST:
        return False
    pid = int(owner.get("pid", -1))
    if pid == os.getpid():
        return owner.get("token") not in _LIVE_WRITERS
    return not _pid_alive(pid)


def put_if_absent(fs: fsspec.AbstractFileSystem, path: str, data: bytes) -> bool:
    """Write ``data`` at ``path`` unless a file is there; True when this call created it.

    Atomic on a local disk (the bytes go to a private file, then a hard link, which refuses an
    existing name) and on S3 (``If-None-Match: *``, also honoured by the loopback test server)."""
    if isinstance(fs, LocalFileSystem):
        private = f"{path}.{uuid.uuid4().hex[:12]}.part"
        with open(private, "wb") as handle:
            handle.write(data)
        try:
            os.link(private, path)
            return True
        except FileExistsError:
            return False
        finally:
            os.unlink(private)
    try:
        fs.pipe_file(path, data, mode="create")
    except FileExistsError:
        return False
    fs.invalidate_cache()
    return True


def _remove_file(fs: fsspec.AbstractFileSystem, path: str) -> None:
    try:
        fs.rm_file(path)
    except FileNotFoundError:
        pass


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
        self.token = uuid.uuid4().hex[:12]
        self.tmp_dir = join(store.path, TMP, f"{key.name}.{self.token}")
        self.counts: dict = {}
        self.lost = False  # another writer committed this unit first (see commit)
        self._rows = {d: 0 for d in datasets}
        self._files: dict[str, fsspec.core.OpenFile] = {}
        self._writers: dict[str, pq.ParquetWriter] = {}
        store.fs.makedirs(self.tmp_dir, exist_ok=True)
        owner = {"host": HOST, "pid": os.getpid(), "token": self.token, "started_at": time.time()}
        store.fs.pipe_file(join(self.tmp_dir, OWNER_FILE), json.dumps(owner).encode())
        _LIVE_WRITERS[self.token] = self

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
            name = f"{self.key.name}.{self.token}.parquet"
            final = join(final_dir, name)
            fs.mv(join(self.tmp_dir, f"{dataset}.parquet"), final)
            outputs.append(OutputFile(dataset, f"{dataset}/{name}", self._rows[dataset], fs.size(final)))
        manifest = Manifest(
            unit=self.key.name,
            stage=self.key.stage,
            input=self.key.input,
            config_hash=self.key.config_hash,
            kurate_version=KURATE_VERSION,
            committed_at=time.time(),
            outputs=tuple(outputs),
            counts=dict(self.counts),
            generation=self.store.next_generation(self.key),
            input_version=self.key.version,
        )
        # The commit point: put-if-absent, so a reader never sees a half-written record and of two
        # writers of one unit exactly one commits; the other drops its files and adopts the record.
        final_manifest = self.store._manifest_path(self.key)
        fs.makedirs(os.path.dirname(final_manifest), exist_ok=True)
        if not put_if_absent(fs, final_manifest, manifest.to_json().encode()):
            stored = self.store.manifest(self.key)
            # A retried S3 PUT whose first attempt did land answers "exists" for our own record:
            # the files are ours (their names carry this attempt's token), so keep them.
            if stored is None or {o.path for o in stored.outputs} != {o.path for o in outputs}:
                self.lost = True
                for out in outputs:
                    _remove_file(fs, join(self.store.path, out.path))
            manifest = stored
        _remove_tree(fs, self.tmp_dir)
        _LIVE_WRITERS.pop(self.token, None)
        return manifest

    def abort(self) -> None:
        for dataset, writer in self._writers.items():
            try:
                writer.close()
                self._files[dataset].close()
            except Exception:  # noqa: BLE001 - best effort; the directory goes next
                pass
        _remove_tree(self.store.fs, self.tmp_dir)
        _LIVE_WRITERS.pop(self.token, None)

    def __enter__(self) -> "UnitWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.manifest = self.commit()
        else:
            self.abort()


class RootLocked(KurateError):
    """Another live run holds the root's lock for this stage."""


class RunLock:
    """One writer per (root, stage): ``<root>/_locks/<stage>.json``, created put-if-absent.

    A second run waits up to ``wait_s`` seconds, then fails with one line naming the holder. A lock
    whose holder is provably gone (same host, process dead) is taken over; one held from another host
    is never presumed dead (the message says which file to remove if that run is known to be gone).
    Use as a context manager; only the holder (matching token) removes the file."""

    def __init__(self, store: ShardStore, stage: str, wait_s: float = 0.0, poll_s: float = 0.5):
        self.store, self.stage, self.wait_s, self.poll_s = store, stage, wait_s, poll_s
        self.path = join(store.path, LOCKS, f"{stage}.json")
        self.token = uuid.uuid4().hex[:12]

    def _holder(self) -> dict | None:
        self.store.fs.invalidate_cache()
        try:
            return json.loads(self.store.fs.cat_file(self.path))
        except FileNotFoundError:
            return None
        except ValueError:
            return {}  # being written: treat as held

    def acquire(self) -> "RunLock":
        fs = self.store.fs
        fs.makedirs(join(self.store.path, LOCKS), exist_ok=True)
        body = json.dumps({"host": HOST, "pid": os.getpid(), "token": self.token, "since": time.time()}).encode()
        deadline = time.monotonic() + self.wait_s
        while True:
            if put_if_absent(fs, self.path, body):
                _LIVE_WRITERS[self.token] = self
                return self
            holder = self._holder()
            if holder and _owner_is_gone(holder) and self._take_over(holder, body):
                continue
            if holder is None:
                continue  # released between our attempt and the read
            if time.monotonic() >= deadline:
                since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(holder.get("since", 0)))
                raise RootLocked(
                    f"{self.store.url()} is being written by another `{self.stage}` run "
                    f"(pid {holder.get('pid')} on {holder.get('host')}, since {since})",
                    f"wait for it to finish and run again (or set a lock wait); if that run is gone, remove {self.store.url(LOCKS, self.stage + '.json')}")
            time.sleep(self.poll_s)

    def _take_over(self, dead: dict, body: bytes) -> bool:
        """Remove a dead holder's lock — exactly one waiter does: the one that creates the takeover
        marker for that holder's token (put-if-absent), so two waiters never both remove a lock and
        the second never removes the first's fresh one."""
        fs = self.store.fs
        marker = f"{self.path}.takeover-{dead.get('token', 'unknown')}"
        if not put_if_absent(fs, marker, body):
            try:
                claimant = json.loads(fs.cat_file(marker))
            except (FileNotFoundError, ValueError):
                return True  # the other waiter just finished: try again at once
            if _owner_is_gone(claimant):  # the waiter that claimed it died mid-takeover
                _remove_file(fs, marker)
                return True
            return False  # a live waiter is taking it over: wait like for any holder
        try:
            if self._holder() == dead:
                _remove_file(fs, self.path)
        finally:
            _remove_file(fs, marker)
        return True

    def release(self) -> None:
        holder = self._holder()
        if holder and holder.get("token") == self.token:
            _remove_file(self.store.fs, self.path)
        _LIVE_WRITERS.pop(self.token, None)

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
