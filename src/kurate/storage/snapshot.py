"""A compacted snapshot of the commit records, per stage, so a reader opens one file per stage
instead of every commit record (docs/ARCHITECTURE.md, "Catalog snapshot").

The commit records ``_manifests/<stage>/<unit>.json`` stay the truth (shards.py); a snapshot only
spares a reader from opening each of them. ``_catalog/<stage>/<seq>.parquet`` holds one row per
commit record (every column of ``Manifest``; ``outputs`` as a list of structs; ``current``: the
latest generation of its (stage, input), what the views show), and the highest ``seq`` is the
current snapshot. A reader:

1. lists the stage's commit records (one directory listing: names and identities — mtime + size
   locally, the ETag on S3 — so a record removed by hand and committed again is read again; no
   record is opened);
2. reads the current snapshot;
3. keeps the snapshot's rows whose record is listed and reads only the listed records the snapshot
   lacks (committed since it was written);
4. with ``fold=True``, publishes the result as snapshot ``seq + 1``, so the next reader reads no record.

What a reader shows is therefore exactly the records of its listing: a unit committed while a
query runs is either in the listing (all of its files, every dataset, since its record names them
all and is written after them) or not at all, and a snapshot can never hide a committed unit or
show an uncommitted one, whatever it holds.

Publishing: the new snapshot is written whole to a private
``.<seq>.<token>.part`` file and then made visible under its final name put-if-absent (a hard
link on a local disk, ``If-None-Match: *`` on S3), so a reader never sees a half-written snapshot
and ``kill -9`` at any point leaves the previous snapshot current (and at most a ``.part`` file that
``kurate vacuum`` removes). Two readers folding at once both try ``seq + 1``; one publishes, the
other's result is only used in memory. A reader that may not write (a read-only bucket) still reads
correctly: publishing is best effort.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
import warnings

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from kurate.storage.fs import join
from kurate.storage.shards import MANIFESTS, Manifest, OutputFile, ShardStore

SNAPSHOTS = "_catalog"
SNAPSHOT_NAME = re.compile(r"^(\d{10})\.parquet$")
PAUSE_ENV = "KURATE_SNAPSHOT_PAUSE"  # tests: path of a file to create after the new snapshot is written, before it is published

OUTPUT = pa.struct([("dataset", pa.string()), ("path", pa.string()), ("rows", pa.int64()), ("bytes", pa.int64())])
RECORDS = pa.schema([
    ("record", pa.string()),  # the commit record's file name under _manifests/<stage>/
    ("record_id", pa.string()),  # its identity in the listing (mtime + size, or the ETag): a record removed
                                 # by hand and committed again under the same name is read again
    ("unit", pa.string()),
    ("stage", pa.string()),
    ("input", pa.string()),
    ("config_hash", pa.string()),
    ("kurate_version", pa.string()),
    ("committed_at", pa.float64()),
    ("generation", pa.int64()),
    ("input_version", pa.string()),
    ("counts", pa.string()),  # JSON: stage-specific counters
    ("outputs", pa.list_(OUTPUT)),
    ("current", pa.bool_()),  # the latest generation of its (stage, input): what the views show
])


def _is_local(store: ShardStore) -> bool:
    return isinstance(store.fs, LocalFileSystem)


def _names(store: ShardStore, directory: str) -> list[str]:
    """Entry names of a directory (one listing; on a local disk without a stat per entry)."""
    if _is_local(store):
        try:
            return os.listdir(directory)
        except FileNotFoundError:
            return []
    store.fs.invalidate_cache(directory)
    try:
        return [os.path.basename(p.rstrip("/")) for p in store.fs.ls(directory, detail=False)]
    except FileNotFoundError:
        return []


def stages(store: ShardStore) -> list[str]:
    """Stages with a commit-record directory."""
    return sorted(n for n in _names(store, join(store.path, MANIFESTS)) if not n.startswith("."))


def listed_records(store: ShardStore, stage: str) -> tuple[list[str], list[str]]:
    """(names, identities) of the stage's commit records, from one listing. The identity tells a
    record apart from an earlier one of the same name (removed by hand, committed again): locally
    inode, mtime and size (one stat per entry), elsewhere the listing's ETag / modification time + size."""
    directory = join(store.path, MANIFESTS, stage)
    names, ids = [], []
    if _is_local(store):
        try:
            entries = list(os.scandir(directory))
        except FileNotFoundError:
            return [], []
        for entry in entries:
            if entry.name.endswith(".json"):
                try:
                    st = entry.stat()
                except FileNotFoundError:
                    continue  # removed since the listing
                names.append(entry.name)
                ids.append(f"{st.st_ino}-{st.st_mtime_ns}-{st.st_size}")
        return names, ids
    store.fs.invalidate_cache(directory)
    try:
        infos = store.fs.ls(directory, detail=True)
    except FileNotFoundError:
        return [], []
    for info in infos:
        name = os.path.basename(info["name"].rstrip("/"))
        if name.endswith(".json"):
            stamp = info.get("ETag") or info.get("LastModified") or info.get("mtime") or info.get("created") or ""
            names.append(name)
            ids.append(f"{stamp}-{info.get('size', '')}")
    return names, ids


def _row(record: str, record_id: str, m: Manifest) -> dict:
    return {"record": record, "record_id": record_id, "unit": m.unit, "stage": m.stage, "input": m.input, "config_hash": m.config_hash,
            "kurate_version": m.kurate_version, "committed_at": float(m.committed_at), "generation": int(m.generation),
            "input_version": m.input_version, "counts": json.dumps(m.counts, sort_keys=True),
            "outputs": [{"dataset": o.dataset, "path": o.path, "rows": int(o.rows), "bytes": int(o.bytes)} for o in m.outputs]}


def to_manifests(table: pa.Table) -> list[Manifest]:
    """The commit records of a snapshot table, as ``Manifest`` objects (in the table's order)."""
    return [Manifest(unit=r["unit"], stage=r["stage"], input=r["input"], config_hash=r["config_hash"],
                     kurate_version=r["kurate_version"], committed_at=r["committed_at"],
                     outputs=tuple(OutputFile(**o) for o in r["outputs"]), counts=json.loads(r["counts"]),
                     generation=r["generation"], input_version=r["input_version"])
            for r in table.to_pylist()]


def _read_records(store: ShardStore, stage: str, names: list[str], ids: list[str]) -> pa.Table:
    directory = join(store.path, MANIFESTS, stage)
    paths = [join(directory, n) for n in names]
    if _is_local(store):
        blobs = {}
        for p in paths:
            with open(p, "rb") as handle:
                blobs[p] = handle.read()
    else:
        blobs = store.fs.cat(paths) if paths else {}
    rows = [_row(n, i, Manifest.from_json(blobs[p].decode())) for n, i, p in zip(names, ids, paths)]
    return pa.Table.from_pylist(rows, schema=RECORDS)


def _latest(store: ShardStore, stage: str, columns: list[str] | None = None) -> tuple[int, pa.Table | None]:
    """The current snapshot of ``stage`` (its seq and table, only ``columns`` if given), or (0, None)."""
    directory = join(store.path, SNAPSHOTS, stage)
    for _ in range(3):  # vacuum may remove a snapshot between the listing and the read: list again
        seqs = sorted((int(m.group(1)) for m in map(SNAPSHOT_NAME.match, _names(store, directory)) if m), reverse=True)
        if not seqs:
            return 0, None
        try:
            data = store.fs.cat_file(join(directory, f"{seqs[0]:010d}.parquet"))
        except FileNotFoundError:
            continue
        handle = pq.ParquetFile(pa.BufferReader(data))  # not read_table: no pyarrow.dataset import
        if set(handle.schema_arrow.names) != set(RECORDS.names):
            return seqs[0], None  # another layout: rebuilt from the records, published as the next seq
        wanted = columns or RECORDS.names
        return seqs[0], handle.read(columns=wanted).cast(pa.schema([RECORDS.field(n) for n in wanted]))
    return 0, None


def _pause_for_tests(private: str) -> None:
    marker = os.environ.get(PAUSE_ENV)
    if marker:
        with open(marker, "w") as handle:
            handle.write(private)
        time.sleep(3600)  # the test kills this process here


def publish(store: ShardStore, stage: str, seq: int, table: pa.Table) -> bool:
    """Make ``table`` snapshot ``seq`` of ``stage`` unless one is there; True when this call published it."""
    fs = store.fs
    directory = join(store.path, SNAPSHOTS, stage)
    final = join(directory, f"{seq:010d}.parquet")
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    data = sink.getvalue().to_pybytes()
    if _is_local(store):
        os.makedirs(directory, exist_ok=True)
        private = join(directory, f".{seq:010d}.{uuid.uuid4().hex[:12]}.part")
        with open(private, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            _pause_for_tests(private)
            os.link(private, final)
            return True
        except FileExistsError:
            return False
        finally:
            os.unlink(private)
    _pause_for_tests(final)
    try:
        fs.pipe_file(final, data, mode="create")
    except FileExistsError:
        return False
    fs.invalidate_cache(directory)
    return True


def _with_current(table: pa.Table) -> pa.Table:
    """``table`` with its ``current`` column computed (ShardStore.current_manifests' rule)."""
    import duckdb

    narrow = table.select(["record", "stage", "input", "generation", "committed_at", "unit"])
    with duckdb.connect() as con:
        con.register("_kurate_records", narrow)
        chosen = con.execute(f"SELECT record FROM _kurate_records QUALIFY row_number() OVER ({CURRENT_ORDER}) = 1").fetch_arrow_table()
    mask = pc.is_in(table["record"], value_set=chosen["record"].combine_chunks())
    return table.set_column(table.schema.get_field_index("current"), RECORDS.field("current"), mask)


def stage_records(store: ShardStore, stage: str, fold: bool = False, columns: list[str] | None = None) -> pa.Table:
    """Every commit record of ``stage`` at the moment of its listing, as a ``RECORDS`` table sorted by
    unit (only ``columns``, plus ``record``, when given: a snapshot that is up to date is read no further).

    ``fold=True`` publishes a new snapshot when records were committed since the current one."""
    names, ids = listed_records(store, stage)  # first: everything committed before this instant is shown
    listed = _keys(pa.array(names, pa.string()), pa.array(ids, pa.string()))
    wanted = None if columns is None else [n for n in RECORDS.names if n in {*columns, "record", "record_id"}]
    seq, table = _latest(store, stage, wanted)
    if (table is not None and table.num_rows == len(listed)
            and pc.all(pc.is_in(listed, value_set=_keys(table["record"], table["record_id"]))).as_py() is not False):
        return table  # the snapshot holds exactly the listed records (name + identity are unique)
    if wanted is not None and table is not None:
        seq, table = _latest(store, stage)  # the whole snapshot, to fold the new records into
    new = list(range(len(names)))
    if table is not None:
        keep = pc.is_in(_keys(table["record"], table["record_id"]), value_set=listed)
        if pc.all(keep).as_py() is False:
            table = table.filter(keep)  # a record no longer listed (removed, or replaced by hand) is no longer shown
        held = pc.is_in(listed, value_set=_keys(table["record"], table["record_id"])).to_pylist()
        new = [i for i, h in enumerate(held) if not h]
    if new:
        order = sorted(new, key=lambda i: names[i])
        fresh = _read_records(store, stage, [names[i] for i in order], [ids[i] for i in order])
        table = fresh if table is None else pa.concat_tables([table, fresh])
    if table is None:
        table = RECORDS.empty_table()
    table = _with_current(table.sort_by([("unit", "ascending"), ("record", "ascending")]))
    if fold and table.num_rows:
        try:
            publish(store, stage, seq + 1, table)
        except (OSError, PermissionError) as exc:  # a root this reader may not write: the result stands
            warnings.warn(f"catalog snapshot of {store.url(SNAPSHOTS, stage)} not written: {exc}", stacklevel=2)
    return table if wanted is None else table.select(wanted)


def _keys(record, record_id) -> pa.Array:
    """name + identity of each record, as one string (what the snapshot is matched on)."""
    joined = pc.binary_join_element_wise(record, record_id, "\x1f")
    return joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined


def records(store: ShardStore, stage: str | None = None, fold: bool = False, columns: list[str] | None = None) -> pa.Table:
    """Commit records of one stage, or of every stage, sorted by (stage, unit)."""
    tables = [stage_records(store, s, fold, columns) for s in ([stage] if stage else stages(store))]
    if tables:
        return pa.concat_tables(tables)
    empty = RECORDS.empty_table()
    return empty if columns is None else empty.select([n for n in RECORDS.names if n in {*columns, "record", "record_id"}])


# ShardStore.current_manifests' rule: per (stage, input) the highest generation; the wall clock only
# orders records written before generations existed.
CURRENT_ORDER = ("PARTITION BY stage, input ORDER BY generation DESC, "
                 "CASE WHEN generation = 0 THEN committed_at ELSE 0 END DESC, unit DESC")


def current(table: pa.Table) -> pa.Table:
    """The current commit record per (stage, input) of a ``records()`` table, in its (stage, unit) order."""
    return table.filter(table["current"])


def current_files(table: pa.Table) -> pa.Table:
    """One row per file of the current commit records, in (stage, unit, output) order: ``dataset``,
    ``path`` (relative to the root), ``kurate_version`` (of the record) and ``i`` (the order)."""
    cur = current(table)
    outputs = cur["outputs"].combine_chunks()
    flat = pc.list_flatten(outputs)
    owner = pc.list_parent_indices(outputs)
    return pa.table({"dataset": flat.field("dataset"), "path": flat.field("path"),
                     "kurate_version": pc.take(cur["kurate_version"], owner),
                     "i": pa.array(range(len(flat)), pa.int64())})
