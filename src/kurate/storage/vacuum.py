"""``kurate vacuum``: remove what no catalog shows any more, so a reader that globs a dataset folder
(``read_parquet('curated/*.parquet')``) sees what the catalog sees.

It removes, under one root:

- **superseded** data files: named by a commit record that a later generation of the same
  (stage, input) replaced, once that later generation committed more than N days ago (a query that
  opened the catalog before it may still be reading them until then);
- **orphaned** per-attempt files ``<dataset>/<unit>.<token>.parquet`` that no commit record names
  (an attempt killed between moving its files into place and writing its record, or the loser of a
  race that was killed before it removed its files), older than N days and than
  ``ORPHAN_TMP_AGE_S``; none while a live run holds a lock on the root;
- temporary unit directories under ``_tmp/`` whose owner is provably gone, older than N days;
- catalog snapshots ``_catalog/<stage>/`` other than the newest, and private ``.part`` files left
  by a writer killed mid put-if-absent, older than ``ORPHAN_TMP_AGE_S``.

It never removes a commit record, nor a file that a current commit record names or needs: the
``signatures`` and ``duplicates`` a finalized curate record points at (references of later runs
and of other roots), and the outputs of every dedup unit a ``_decisions/`` record points at (a
decided shard is finalized from them, even after a dedup of another config superseded them). The
data files are listed *before* the commit records are read, so a unit that commits meanwhile is in
the records and kept, and its files cannot be orphans; an attempt file whose writer's temp
directory still exists is kept too (the writer removes it only after writing its record). A file
superseded less than ``SUPERSEDED_MIN_AGE_S`` (10 minutes) ago is kept whatever N is (a reader that opened the
catalog before may be reading it). Release folders and anything else not directly in a dataset
folder are left alone.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field

import pyarrow.compute as pc

from kurate.storage.fs import StorageOptions, join
from kurate.storage.schemas import DATASETS
from kurate.storage.shards import LOCKS, MANIFESTS, ORPHAN_TMP_AGE_S, TMP, ShardStore, _owner_is_gone, _remove_file, _remove_tree
from kurate.storage.snapshot import SNAPSHOT_NAME, SNAPSHOTS, current, records, stages
from kurate.storage.status import check_root

ATTEMPT_FILE = re.compile(r"^.+\.[0-9a-f]{12}\.parquet$")  # <unit>.<token>.parquet (UnitWriter.commit)
PART_FILE = re.compile(r"\.[0-9a-f]{12}\.part$")  # put_if_absent's and snapshot.publish's private files
DAY_S = 86400.0
SUPERSEDED_MIN_AGE_S = ORPHAN_TMP_AGE_S  # a superseded file stays this long whatever N (readers that opened before)
DECISIONS = "_decisions"  # tasks/curate.py's decision records (a storage module does not import tasks)


@dataclass
class VacuumReport:
    root: str
    removed: dict[str, list[str]] = field(default_factory=dict)  # kind -> paths relative to the root
    bytes: dict[str, int] = field(default_factory=dict)
    kept: int = 0  # data files a current commit record names
    notes: list[str] = field(default_factory=list)

    def add(self, kind: str, path: str, size: int) -> None:
        self.removed.setdefault(kind, []).append(path)
        self.bytes[kind] = self.bytes.get(kind, 0) + int(size or 0)

    def lines(self, dry_run: bool = False) -> list[str]:
        verb = "would remove" if dry_run else "removed"
        out = [f"root: {self.root}", f"kept {self.kept} data files the catalog shows"]
        for kind in ("superseded", "orphaned", "temporary", "snapshots", "partial"):
            paths = self.removed.get(kind, [])
            out.append(f"{verb} {len(paths):>6} {kind:<11} files {self.bytes.get(kind, 0):>14} bytes")
        return out + self.notes


def _age_s(info: dict, now: float) -> float:
    mtime = info.get("mtime") or info.get("LastModified") or info.get("created")
    if mtime is None:
        return 0.0  # unknown: treat as new, never remove
    if hasattr(mtime, "timestamp"):
        mtime = mtime.timestamp()
    return now - float(mtime)


def _ls(store: ShardStore, directory: str) -> list[dict]:
    store.fs.invalidate_cache(directory)
    try:
        return store.fs.ls(directory, detail=True)
    except FileNotFoundError:
        return []


def _name(info: dict) -> str:
    return info["name"].rstrip("/").rsplit("/", 1)[-1]


def _live_locks(store: ShardStore) -> list[str]:
    held = []
    for info in _ls(store, join(store.path, LOCKS)):
        if not _name(info).endswith(".json"):
            continue
        try:
            holder = json.loads(store.fs.cat_file(info["name"]))
        except (FileNotFoundError, ValueError):
            continue
        if not _owner_is_gone(holder):
            held.append(_name(info)[: -len(".json")])
    return held


def _needed(store: ShardStore, table, cur) -> set[str]:
    """Files that current records need beyond their outputs: a finalized curate record's
    ``signatures`` / ``duplicates`` (counts), and every output of a dedup unit named by a decision."""
    needed: set[str] = set()
    for r in cur.select(["counts"]).to_pylist():
        counts = json.loads(r["counts"] or "{}")
        needed.update(v for k in ("signatures", "duplicates") if isinstance(v := counts.get(k), str))
    decided: set[str] = set()
    try:
        paths = store.fs.find(join(store.path, DECISIONS))
    except FileNotFoundError:
        paths = []
    for path in paths:
        if path.endswith(".json"):
            try:
                decided.add(json.loads(store.fs.cat_file(path))["dedup_unit"])
            except (FileNotFoundError, ValueError, KeyError):
                continue
    if decided:
        for r in table.select(["unit", "outputs"]).to_pylist():
            if r["unit"] in decided:
                needed.update(o["path"] for o in r["outputs"])
    return needed


def vacuum(root: str, older_than_days: float, storage_options: StorageOptions | None = None,
           dry_run: bool = False) -> VacuumReport:
    """Remove superseded generations, orphaned attempt files, dead temp dirs and old snapshots of ``root``."""
    if older_than_days < 0:
        raise ValueError("older_than_days must be >= 0")
    store = ShardStore(root, storage_options)
    check_root(store)
    report = VacuumReport(store.url())
    now = time.time()
    horizon = older_than_days * DAY_S

    def remove(kind: str, rel: str, size: int, tree: bool = False) -> None:
        report.add(kind, rel, size)
        if not dry_run:
            (_remove_tree if tree else _remove_file)(store.fs, join(store.path, rel))

    # 1. the data files as they are now — before the records, so a unit committing meanwhile is kept
    listed = {d: [i for i in _ls(store, join(store.path, d)) if i.get("type") == "file"] for d in DATASETS}
    # 2. the commit records (through the snapshot), current and superseded
    table = records(store, fold=not dry_run)
    cur = current(table)
    shown = set(pc.list_flatten(cur["outputs"].combine_chunks()).field("path").to_pylist()) if cur.num_rows else set()
    shown |= _needed(store, table, cur)
    current_since = {(r["stage"], r["input"]): r["committed_at"] for r in cur.select(["stage", "input", "committed_at"]).to_pylist()}
    superseded_since: dict[str, float] = {}
    for r in table.select(["stage", "input", "outputs"]).to_pylist():
        for o in r["outputs"]:
            if o["path"] not in shown:
                superseded_since[o["path"]] = current_since[(r["stage"], r["input"])]
    # an attempt still writing: its temp dir `_tmp/<unit>.<token>/` goes only after its record is written
    writing = {_name(i) for i in _ls(store, join(store.path, TMP))}
    locks = _live_locks(store)
    if locks:
        report.notes.append(f"orphaned files kept: a run holds this root ({', '.join(sorted(locks))}; {LOCKS}/)")
    for dataset, infos in listed.items():
        for info in infos:
            rel = f"{dataset}/{_name(info)}"
            if rel in shown:
                report.kept += 1
            elif rel in superseded_since:
                if now - superseded_since[rel] > max(horizon, SUPERSEDED_MIN_AGE_S) and _age_s(info, now) > ORPHAN_TMP_AGE_S:
                    remove("superseded", rel, info.get("size", 0))
            elif (ATTEMPT_FILE.match(_name(info)) and not locks and _name(info)[: -len(".parquet")] not in writing
                  and _age_s(info, now) > max(horizon, ORPHAN_TMP_AGE_S)):
                remove("orphaned", rel, info.get("size", 0))
    # 3. temporary unit directories whose writer is provably gone
    for info in _ls(store, join(store.path, TMP)):
        path = info["name"].rstrip("/")
        if store._is_stale(path) and store._age_s(path) > max(horizon, ORPHAN_TMP_AGE_S):
            remove("temporary", f"{TMP}/{_name(info)}", info.get("size", 0), tree=True)
    # 4. snapshots but the newest (a reader that loses the one it listed lists again) and dead .part files
    for stage in stages(store):
        snaps = [i for i in _ls(store, join(store.path, SNAPSHOTS, stage)) if SNAPSHOT_NAME.match(_name(i))]
        newest = max((_name(i) for i in snaps), default=None)
        for info in snaps:
            if _name(info) != newest and _age_s(info, now) > ORPHAN_TMP_AGE_S:
                remove("snapshots", f"{SNAPSHOTS}/{stage}/{_name(info)}", info.get("size", 0))
        for top in (SNAPSHOTS, MANIFESTS):
            for info in _ls(store, join(store.path, top, stage)):
                if PART_FILE.search(_name(info)) and _age_s(info, now) > ORPHAN_TMP_AGE_S:
                    remove("partial", f"{top}/{stage}/{_name(info)}", info.get("size", 0))
    return report
