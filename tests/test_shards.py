"""The exactly-once commit protocol, on local and memory:// roots."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from kurate.storage.catalog import Catalog
from kurate.storage.shards import ShardStore, UnitKey, config_hash


def _rows(n, start=0):
    return [{"id": str(i), "url": f"https://e.test/{i}", "text": f"text {i}"} for i in range(start, start + n)]


@pytest.fixture(params=["local", "memory"])
def root(request, tmp_path):
    if request.param == "local":
        yield str(tmp_path / "root")
        return
    name = f"memory://shards-{tmp_path.name}"
    yield name
    ShardStore(name).fs.rm(ShardStore(name).path, recursive=True)


def test_commit_makes_both_datasets_visible_together(root):
    store = ShardStore(root)
    key = UnitKey("curate", "s3://cc/seg/a.warc.gz", config_hash({"x": 1}))
    with store.open_unit(key, ["curated", "rejects"]) as unit:
        unit.write("curated", _rows(3))
        assert Catalog(root).query("select count(*) as n from curated").column("n").to_pylist() == [0]
        unit.counts = {"records": 3}
    manifest = store.manifest(key)
    assert manifest is not None and manifest.counts == {"records": 3}
    assert {o.dataset: o.rows for o in manifest.outputs} == {"curated": 3, "rejects": 0}
    assert Catalog(root).query("select count(*) as n from curated").column("n").to_pylist() == [3]
    assert store.pending_tmp() == []


def test_failed_unit_leaves_nothing_visible_and_no_temp_files(root):
    store = ShardStore(root)
    key = UnitKey("curate", "a.warc.gz", "h1")
    with pytest.raises(RuntimeError):
        with store.open_unit(key, ["curated", "rejects"]) as unit:
            unit.write("curated", _rows(5))
            raise RuntimeError("boom")
    assert not store.is_committed(key)
    assert store.pending_tmp() == []
    assert Catalog(root).query("select count(*) as n from curated").column("n").to_pylist() == [0]


def test_orphaned_final_file_is_invisible_until_a_rerun_commits(root):
    """A writer killed after moving its files but before the commit record leaves invisible files."""
    store = ShardStore(root)
    key = UnitKey("curate", "a.warc.gz", "h1")
    orphan = f"{store.path}/curated/{key.name}.parquet"
    store.fs.makedirs(f"{store.path}/curated", exist_ok=True)
    with store.fs.open(orphan, "wb") as f:
        import pyarrow as pa
        from kurate.storage.schemas import CURATED

        pq.write_table(pa.Table.from_pylist(_rows(7), schema=CURATED), f)
    assert Catalog(root).query("select count(*) as n from curated").column("n").to_pylist() == [0]
    with store.open_unit(key, ["curated", "rejects"]) as unit:
        unit.write("curated", _rows(2))
    assert Catalog(root).query("select count(*) as n from curated").column("n").to_pylist() == [2]


def test_unit_names_are_deterministic_and_distinct():
    a = UnitKey("curate", "s3://b/x/CC-MAIN-1.warc.gz", "abcdef0123456789")
    assert a.name == UnitKey("curate", "s3://b/x/CC-MAIN-1.warc.gz", "abcdef0123456789").name
    assert a.name.startswith("CC-MAIN-1-curate-")
    assert a.name != UnitKey("curate", "s3://b/y/CC-MAIN-1.warc.gz", "abcdef0123456789").name
    assert a.name != UnitKey("curate", "s3://b/x/CC-MAIN-1.warc.gz", "fffdef0123456789").name
    assert config_hash({"a": 1, "b": 2}) == config_hash({"b": 2, "a": 1})


def test_parquet_carries_provenance_metadata(tmp_path):
    store = ShardStore(str(tmp_path))
    key = UnitKey("curate", "a.warc.gz", "cafe")
    with store.open_unit(key, ["curated", "rejects"]) as unit:
        unit.write("curated", _rows(1))
    path = store.url(store.manifest(key).outputs[0].path)
    meta = pq.read_schema(path).metadata
    assert meta[b"config_hash"] == b"cafe" and meta[b"stage"] == b"curate"
    assert meta[b"kurate_version"]
    assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "ZSTD"


def test_run_unit_runs_once_and_clears_what_a_killed_attempt_left(root):
    store = ShardStore(root)
    key = UnitKey("curate", "a.warc.gz", "h1")
    store.open_unit(key, ["curated", "rejects"]).write("curated", _rows(4))  # a writer killed mid-unit
    assert len(store.pending_tmp()) == 1
    calls = []

    def write(unit):
        calls.append(1)
        unit.write("curated", _rows(3))
        return {"records": 3}

    first = store.run_unit(key, ["curated", "rejects"], write)
    assert not first.skipped and first.counts == {"records": 3}
    assert store.pending_tmp() == []
    again = store.run_unit(key, ["curated", "rejects"], write)
    assert again.skipped and again.counts == {"records": 3} and again.manifest == first.manifest
    assert calls == [1]
    assert Catalog(root).query("select count(*) as n from curated").column("n").to_pylist() == [3]


def test_run_unit_that_raises_commits_nothing(root):
    store = ShardStore(root)
    key = UnitKey("curate", "a.warc.gz", "h1")

    def write(unit):
        unit.write("curated", _rows(2))
        raise ValueError("bad shard")

    with pytest.raises(ValueError, match="bad shard"):
        store.run_unit(key, ["curated", "rejects"], write)
    assert not store.is_committed(key) and store.pending_tmp() == []
