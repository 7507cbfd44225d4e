"""The catalog snapshot (storage/snapshot.py) and `kurate vacuum` (storage/vacuum.py): a reader reads
the snapshot plus only the records committed since; a unit committed during a query is wholly visible
or not at all; kill -9 while a snapshot is published loses nothing; vacuum keeps every file the catalog
shows and removes superseded and orphaned ones; the same on the loopback S3."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
from typer.testing import CliRunner

import kurate.storage.shards as shards
from kurate.flows.cli import app
from kurate.storage.catalog import Catalog
from kurate.storage.shards import MANIFESTS, RunLock, ShardStore, UnitKey
from kurate.storage.snapshot import PAUSE_ENV, SNAPSHOTS, records
from kurate.storage.status import root_status
from kurate.storage.vacuum import vacuum

runner = CliRunner()
CURATED_ROWS, REJECT_ROWS = 3, 2  # per unit: a whole unit adds both, a partial one would not
DAY = 86400


def _commit(store: ShardStore, i: int, config: str = "h1", source: str | None = None) -> UnitKey:
    key = UnitKey("curate", source or f"s3://cc/seg/{i:04d}.warc.gz", config)
    with store.open_unit(key, ["curated", "rejects"]) as unit:
        unit.write("curated", [{"id": f"{i}-{j}", "url": f"https://e.test/{i}/{j}", "text": f"text {i} {j}"} for j in range(CURATED_ROWS)])
        unit.write("rejects", [{"id": f"{i}-r{j}", "stage": "filter", "reason": "short"} for j in range(REJECT_ROWS)])
    return key


def _counts(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    return con.execute("select (select count(*) from curated), (select count(*) from rejects)").fetchone()


def _snapshots(root: str, stage: str = "curate") -> list[str]:
    directory = Path(root, SNAPSHOTS, stage)
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def _catalog_paths(root: str) -> set[str]:
    """Paths (relative to the root) of every file a fresh catalog shows."""
    catalog = Catalog(root)
    with duckdb.connect() as con:
        return {f for files, _ in catalog.current_files(con, relative=True).values() for f in files}


def test_a_reader_opens_only_the_records_committed_since_the_snapshot(tmp_path):
    root = str(tmp_path / "root")
    store = ShardStore(root)
    first = [_commit(store, i) for i in range(4)]
    assert Catalog(root).query("select count(*) as n from curated").column("n").to_pylist() == [4 * CURATED_ROWS]
    assert _snapshots(root) == ["0000000001.parquet"]
    # the folded records are not opened again: unreadable ones would fail any reader that did
    for key in first:  # same size and mtime: the listing cannot tell, so only opening it would notice
        record = Path(root, MANIFESTS, "curate", f"{key.name}.json")
        st = record.stat()
        with open(record, "r+b") as handle:  # in place: the same inode
            handle.write(b"not json".ljust(st.st_size, b" "))
        os.utime(record, ns=(st.st_atime_ns, st.st_mtime_ns))
    _commit(store, 4)
    assert Catalog(root).query("select count(*) as n from curated").column("n").to_pylist() == [5 * CURATED_ROWS]
    assert _snapshots(root) == ["0000000001.parquet", "0000000002.parquet"]
    assert records(store, "curate").num_rows == 5
    status = root_status(root)
    assert {d.dataset: (d.units, d.rows) for d in status.datasets if d.units} == {"curated": (5, 15), "rejects": (5, 10)}
    assert [(s.stage, s.committed) for s in status.stages] == [("curate", 5)]
    assert sorted(m.unit for m in store.manifests()) == sorted([k.name for k in first] + [UnitKey("curate", "s3://cc/seg/0004.warc.gz", "h1").name])


def test_a_new_generation_replaces_the_old_in_views_status_and_snapshot(tmp_path):
    root = str(tmp_path / "root")
    store = ShardStore(root)
    _commit(store, 0, config="h1")
    Catalog(root).query("select 1")  # folds generation 1 into the snapshot
    _commit(store, 0, config="h2")  # same input, new config: generation 2
    files = _catalog_paths(root)
    manifests = store.current_manifests()
    assert len(manifests) == 1 and manifests[0].generation == 2 and manifests[0].config_hash == "h2"
    assert files == {o.path for o in manifests[0].outputs}
    assert root_status(root).stages[0].committed == 1


def test_a_unit_committing_during_a_query_is_wholly_visible_or_not_at_all(tmp_path, monkeypatch):
    """The writer stops at its commit point (files moved into place, record not yet written) while
    readers open the catalog and fold a snapshot; then it commits."""
    root = str(tmp_path / "root")
    store = ShardStore(root)
    for i in range(3):
        _commit(store, i)
    at_commit_point, go_on = threading.Event(), threading.Event()
    real = shards.put_if_absent

    def put_after_readers(fs, path, data):
        if "/_manifests/" in path:
            at_commit_point.set()
            assert go_on.wait(60)
        return real(fs, path, data)

    monkeypatch.setattr(shards, "put_if_absent", put_after_readers)
    writer = threading.Thread(target=_commit, args=(store, 3))
    writer.start()
    assert at_commit_point.wait(60)
    assert len(list(Path(root, "curated").glob("*.parquet"))) == 4  # the new unit's files are in place
    during = Catalog(root).connect()  # opened (and folded a snapshot) before the record exists
    assert _counts(during) == (3 * CURATED_ROWS, 3 * REJECT_ROWS)
    go_on.set()
    writer.join(60)
    assert _counts(during) == (3 * CURATED_ROWS, 3 * REJECT_ROWS)  # a connection's views never change under it
    during.close()
    # the snapshot folded during the commit lacks the unit; the next reader still finds it
    assert records(store, "curate").num_rows == 4
    assert _counts(Catalog(root).connect()) == (4 * CURATED_ROWS, 4 * REJECT_ROWS)


def test_concurrent_commits_and_queries_only_ever_see_whole_units(tmp_path):
    root = str(tmp_path / "root")
    store = ShardStore(root)
    units = 12
    writer = threading.Thread(target=lambda: [_commit(store, i) for i in range(units)])
    writer.start()
    seen = []
    while writer.is_alive() or not seen or seen[-1] < units:
        with Catalog(root).connect() as con:
            curated, rejects = _counts(con)
        assert curated % CURATED_ROWS == 0 and curated // CURATED_ROWS == rejects // REJECT_ROWS
        assert rejects % REJECT_ROWS == 0
        seen.append(curated // CURATED_ROWS)
    writer.join()
    assert seen == sorted(seen) and seen[-1] == units  # never a unit lost once seen


def test_kill_9_while_publishing_a_snapshot_loses_nothing(tmp_path):
    root = str(tmp_path / "root")
    store = ShardStore(root)
    for i in range(3):
        _commit(store, i)
    Catalog(root).query("select 1")
    for i in range(3, 6):
        _commit(store, i)
    marker = tmp_path / "written"
    env = {**os.environ, PAUSE_ENV: str(marker)}
    code = f"from kurate.storage.catalog import Catalog; Catalog({root!r}).query('select count(*) from curated')"
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():  # the new snapshot is written in full, not yet published
            assert proc.poll() is None and time.monotonic() < deadline, "the reader ended before publishing"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    private = Path(marker.read_text())
    assert private.exists() and private.name.endswith(".part")
    assert [n for n in _snapshots(root) if not n.startswith(".")] == ["0000000001.parquet"]  # nothing half-published
    with Catalog(root).connect() as con:
        assert _counts(con) == (6 * CURATED_ROWS, 6 * REJECT_ROWS)
    assert "0000000002.parquet" in _snapshots(root)
    # the dead writer's private file goes once it is old
    old = time.time() - 2 * shards.ORPHAN_TMP_AGE_S
    os.utime(private, (old, old))
    report = vacuum(root, 0)
    assert report.removed["partial"] == [f"{SNAPSHOTS}/curate/{private.name}"] and not private.exists()


def _age(path: Path, seconds: float) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old))


def test_vacuum_keeps_what_the_catalog_shows_and_removes_superseded_and_orphaned_files(tmp_path, monkeypatch):
    monkeypatch.setattr("kurate.storage.vacuum.SUPERSEDED_MIN_AGE_S", 0.0)  # the successor commits just below
    root = str(tmp_path / "root")
    store = ShardStore(root)
    _commit(store, 0, config="h1")
    old_gen = {o.path for o in store.current_manifests()[0].outputs}
    _commit(store, 0, config="h2")  # supersedes generation 1
    _commit(store, 1)
    # an attempt killed after moving its files into place, before its record; and a young one in flight
    orphan = Path(root, "curated", UnitKey("curate", "dead.warc.gz", "h1").name + ".0123456789ab.parquet")
    orphan.write_bytes(Path(root, sorted(old_gen)[0]).read_bytes())
    young = Path(root, "curated", UnitKey("curate", "live.warc.gz", "h1").name + ".ba9876543210.parquet")
    young.write_bytes(orphan.read_bytes())
    for path in [orphan, *(Path(root, p) for p in old_gen)]:
        _age(path, 3 * DAY)
    shown = _catalog_paths(root)
    assert len(shown) == 4 and not shown & old_gen

    # the successor committed just now: with a horizon of 1 day nothing superseded goes yet, the old orphan does
    report = vacuum(root, 1)
    assert report.removed.get("superseded") is None and report.removed["orphaned"] == [f"curated/{orphan.name}"]
    assert report.kept == 4 and all(Path(root, p).exists() for p in shown)

    dry = runner.invoke(app, ["vacuum", "--root", root, "--older-than-days", "0", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would remove      2 superseded" in dry.output and all(Path(root, p).exists() for p in old_gen)

    # a live run holding the root keeps orphans (its files may be between their move and their record)
    orphan.write_bytes(young.read_bytes())
    _age(orphan, 3 * DAY)
    with RunLock(store, "curate"):
        held = vacuum(root, 0)
    assert held.removed.get("orphaned") is None and orphan.exists() and any("holds this root" in n for n in held.notes)
    assert sorted(held.removed["superseded"]) == sorted(old_gen)  # superseded files go all the same

    out = runner.invoke(app, ["vacuum", "--root", root, "--older-than-days", "0"])
    assert out.exit_code == 0, out.output
    assert "removed      0 superseded" in out.output and "removed      1 orphaned" in out.output
    assert not any(Path(root, p).exists() for p in old_gen) and not orphan.exists() and young.exists()
    # a reader that globs the folder now sees what the catalog sees (and the young attempt in flight)
    on_disk = {f"{p.parent.name}/{p.name}" for d in ("curated", "rejects") for p in Path(root, d).glob("*.parquet")}
    assert on_disk == _catalog_paths(root) | {f"curated/{young.name}"}
    assert len(list(Path(root, MANIFESTS, "curate").glob("*.json"))) == 3  # commit records are never removed
    with Catalog(root).connect() as con:
        assert _counts(con) == (2 * CURATED_ROWS, 2 * REJECT_ROWS)


def test_snapshot_and_vacuum_on_s3(s3_server, tmp_path):
    root = f"s3://kurate/snapshot-{tmp_path.name}"
    store = ShardStore(root, s3_server)
    for i in range(3):
        _commit(store, i)
    with Catalog(root, s3_server).connect() as con:
        assert _counts(con) == (3 * CURATED_ROWS, 3 * REJECT_ROWS)
    listed = sorted(os.path.basename(p) for p in store.fs.ls(f"{store.path}/{SNAPSHOTS}/curate", detail=False))
    assert listed == ["0000000001.parquet"]
    _commit(store, 3)
    _commit(store, 0, config="h2")  # a new generation of input 0
    with Catalog(root, s3_server).connect() as con:
        assert _counts(con) == (4 * CURATED_ROWS, 4 * REJECT_ROWS)
    store.fs.invalidate_cache()
    assert sorted(os.path.basename(p) for p in store.fs.ls(f"{store.path}/{SNAPSHOTS}/curate", detail=False)) == [
        "0000000001.parquet", "0000000002.parquet"]
    status = root_status(root, s3_server)
    assert [(s.stage, s.committed) for s in status.stages] == [("curate", 4)]
    shown = {o.path for m in store.current_manifests() for o in m.outputs}
    report = vacuum(root, 0, s3_server)  # the superseded files are younger than ORPHAN_TMP_AGE_S: kept
    assert report.kept == len(shown) == 8 and report.removed.get("superseded") is None
    store.fs.invalidate_cache()
    assert all(store.fs.exists(f"{store.path}/{p}") for p in shown)


def test_a_record_committed_again_under_its_name_is_read_again_and_vacuum_keeps_its_files(tmp_path):
    """kurate's own advice for a bad unit is "remove its commit record and re-run": the new record has
    the old name. A snapshot that still holds the old row must not show the old files nor hide the new
    ones, and vacuum must not take the new files for orphans."""
    root = str(tmp_path / "root")
    store = ShardStore(root)
    key = _commit(store, 0)
    _commit(store, 1)
    old_files = _catalog_paths(root)  # folds a snapshot with both records
    record = Path(root, MANIFESTS, "curate", f"{key.name}.json")
    record.unlink()
    time.sleep(0.01)
    _commit(store, 0)  # no reader in between: the snapshot still has the removed record's row
    new_files = _catalog_paths(root)
    unit_files = {p for p in new_files if key.name in p}
    assert len(new_files) == 4 and len(unit_files) == 2 and not unit_files & old_files
    with Catalog(root).connect() as con:
        assert _counts(con) == (2 * CURATED_ROWS, 2 * REJECT_ROWS)
    for path in Path(root).glob("*/*.parquet"):
        _age(path, 3 * DAY)
    report = vacuum(root, 0)
    assert all(Path(root, p).exists() for p in new_files)
    assert sorted(report.removed["orphaned"]) == sorted(p for p in old_files if key.name in p)  # the first attempt's


def test_vacuum_keeps_files_that_current_records_and_decisions_still_need(tmp_path, monkeypatch):
    """A finalized curate record points at its shard's signatures and duplicates (references of later
    runs and other roots), and a decision record at the dedup unit that decided a shard; a later
    generation superseding those files must not let vacuum remove them. An attempt file whose writer's
    temp directory still exists is kept whatever its age."""
    import json

    from kurate.storage.shards import TMP
    from kurate.tasks.curate import DECISIONS, STAGE_DEDUP, STAGE_FILTER, STAGE_FINAL

    monkeypatch.setattr("kurate.storage.vacuum.SUPERSEDED_MIN_AGE_S", 0.0)
    root = str(tmp_path / "root")
    store = ShardStore(root)

    def commit(stage, source, config, dataset, counts=None):
        key = UnitKey(stage, source, config)
        with store.open_unit(key, [dataset]) as unit:
            rows = {"curated": [{"id": f"{stage}-{config}", "text": "x"}], "duplicates": [],
                    "rejects": [{"id": f"{stage}-{config}", "stage": "filter", "reason": "short"}]}[dataset]
            unit.write(dataset, rows)
            unit.counts = counts or {}
        return next(o.path for o in store.manifest(key).outputs)

    # (the filter unit's file stands in as `rejects`: vacuum reads counts as paths, whatever the dataset)
    signatures_1 = commit(STAGE_FILTER, "in0", "a", "rejects")
    duplicates_1 = commit(STAGE_DEDUP, "run-1", "a", "duplicates")
    commit(STAGE_FINAL, "in0", "a", "curated", {"signatures": signatures_1, "duplicates": duplicates_1})
    # a second config's filter and dedup of the same inputs supersede both files; its shard is not finalized
    commit(STAGE_FILTER, "in0", "b", "rejects")
    commit(STAGE_DEDUP, "run-1", "b", "duplicates")
    # a third dedup run decided shard in1 under config a, then was superseded before in1 was finalized
    decided = commit(STAGE_DEDUP, "run-2", "a", "duplicates")
    commit(STAGE_DEDUP, "run-2", "c", "duplicates")
    decision = Path(root, DECISIONS, "a" * 16, "filter-unit.json")
    decision.parent.mkdir(parents=True)
    decision.write_text(json.dumps({"dedup_unit": UnitKey(STAGE_DEDUP, "run-2", "a").name, "dedup_input": "run-2", "config_hash": "a"}))
    # an attempt between moving its files into place and writing its record, stalled for days
    stalled = UnitKey("curate", "slow.warc.gz", "a").name + ".0123456789ab"
    Path(root, TMP, stalled).mkdir(parents=True)
    Path(root, "curated", stalled + ".parquet").write_bytes(Path(root, signatures_1).read_bytes())
    for path in Path(root).glob("*/*.parquet"):
        _age(path, 3 * DAY)
    report = vacuum(root, 0)
    needed = [signatures_1, duplicates_1, decided, f"curated/{stalled}.parquet"]
    assert all(Path(root, p).exists() for p in needed), report.removed
    assert not {*needed} & {*report.removed.get("superseded", []), *report.removed.get("orphaned", [])}
