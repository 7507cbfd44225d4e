"""`kurate status`: datasets, committed units, rows and bytes, every stage's pending and temporary
units, read-only, an unknown root is an error (exit code 3); and the catalog of a moved or copied
root reads that root's files, through `kurate query` and through a plain DuckDB connection."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from kurate.flows.cli import app
from kurate.storage.catalog import CATALOG_FILE, Catalog
from kurate.storage.shards import ShardStore, UnitKey
from kurate.storage.status import NoRoot, record_plan, root_status
from toy_roots import german_root

runner = CliRunner()
DOCS = 12
MISSING = "s3://crawl/CC-MAIN-2026-40/segment-7.warc.gz"  # a planned input that never committed


def _status(root: str):
    return runner.invoke(app, ["status", "--root", root])


def _table(output: str, header: str) -> dict[str, list[str]]:
    """The rows of the table whose header line starts with ``header``, keyed by their first column."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:1] == [header]) + 1
    rows = {}
    for line in lines[start:]:
        if not line.strip() or line.startswith("("):
            break
        first, *rest = line.split()
        rows[first] = rest
    return rows


def _listing(top: Path) -> dict[str, tuple]:
    """Every file and directory under ``top`` with its size and mtime (and the directory's own)."""
    found = {".": ("dir", top.stat().st_mtime_ns)}
    for path in sorted(top.rglob("*")):
        st = path.stat()
        found[str(path.relative_to(top))] = ("dir", st.st_mtime_ns) if path.is_dir() else (st.st_size, st.st_mtime_ns, path.read_bytes())
    return found


@pytest.fixture()
def root(tmp_path) -> str:
    root = german_root(tmp_path / "root", DOCS, seed=0)
    Catalog(root).refresh_file()  # what a stage writes after it commits
    return root


def test_status_lists_datasets_units_rows_and_bytes(root):
    out = _status(root)
    assert out.exit_code == 0, out.output
    datasets = _table(out.output, "dataset")
    curated_bytes = os.path.getsize(os.path.join(root, "curated", os.listdir(os.path.join(root, "curated"))[0]))
    assert datasets["curated"] == ["1", str(DOCS), str(curated_bytes)]
    assert datasets["rejects"][:2] == ["1", "0"]  # the unit's (schema-only) rejects file
    assert "staged" not in datasets and "no committed units yet: staged" in out.output
    assert _table(out.output, "stage") == {"curate": ["1", "-", "-", "0"]}  # committed, no plan recorded, no temporary units


def test_status_shows_pending_planned_units_and_temporary_units_of_every_stage(root):
    store = ShardStore(root)
    (done,) = store.manifests("curate")
    record_plan(store, "curate", [UnitKey("curate", done.input, done.config_hash), UnitKey("curate", MISSING, done.config_hash)])
    store.open_unit(UnitKey("curate-filter", MISSING, "0123456789abcdef"), ["staged"])  # a writer killed half-way
    chunks = [f"sample-x#{i:05d}" for i in range(3)]  # an annotate run that committed one of three chunks
    record_plan(store, "annotate-judge", [UnitKey("annotate-judge", c, "j" * 16) for c in chunks])
    with store.open_unit(UnitKey("annotate-judge", chunks[0], "j" * 16), ["labels"]):
        pass
    store.open_unit(UnitKey("annotate-judge", chunks[1], "j" * 16), ["labels"])  # in flight
    store.open_unit(UnitKey("nowhere", "no-input", "n" * 16), ["staged"])  # a stage neither a plan nor a record names

    out = _status(root)
    assert out.exit_code == 0, out.output
    assert _table(out.output, "stage") == {
        "annotate-judge": ["1", "3", "2", "1"],
        "curate": ["1", "2", "1", "0"],
        "curate-filter": ["0", "-", "-", "1"],  # its stage read from the input the curate plan names
    }
    lines = out.output.splitlines()
    assert lines[lines.index("pending in stage curate (1 of 2 planned units; a re-run does them):") + 1] == f"  {MISSING}"
    pending_chunks = lines.index("pending in stage annotate-judge (2 of 3 planned units; a re-run does them):")
    assert lines[pending_chunks + 1:pending_chunks + 3] == [f"  {c}" for c in chunks[1:]]
    tmp = store.pending_tmp()
    filter_tmp = next(n for n in tmp if "-curate-filter-" in n)
    assert lines[lines.index(next(x for x in lines if x.startswith("temporary units of stage curate-filter"))) + 1] == f"  _tmp/{filter_tmp}"
    unknown = lines.index(next(x for x in lines if x.startswith("temporary units of an unknown stage")))
    assert lines[unknown + 1].startswith("  _tmp/no-input-nowhere-")


def test_status_is_read_only(root):
    store = ShardStore(root)
    record_plan(store, "curate", [UnitKey("curate", MISSING, "t")])
    store.open_unit(UnitKey("curate-filter", MISSING, "t"), ["staged"])
    before = _listing(Path(root))
    assert CATALOG_FILE in before
    for _ in range(2):
        out = _status(root)
        assert out.exit_code == 0 and "pending in stage curate" in out.output
    assert _listing(Path(root)) == before  # no file created, changed or touched; catalog.duckdb not rewritten


def test_an_unknown_root_is_an_error_and_is_not_created(root, tmp_path):
    for wrong in [str(tmp_path / "rot"), str(tmp_path / "rot" / "deeper"), str(tmp_path)]:  # mistyped; a parent of a root
        before = sorted(os.listdir(tmp_path))
        out = _status(wrong)
        assert out.exit_code == 3, out.output
        assert out.output.splitlines() == [f"kurate status: no kurate root at {wrong} (none of _manifests, _plans, _tmp, catalog.duckdb "
                                           "there) — check --root (a root an earlier stage wrote, e.g. `kurate curate`)"]
        assert sorted(os.listdir(tmp_path)) == before
    with pytest.raises(NoRoot):
        root_status("memory://kurate-status-nothing-here")


def test_synthesize_plans_the_units_its_workers_commit(tmp_path):
    """The synthesize flow's plan names exactly the units SynthWorker commits (the same keys):
    one committed unit of three leaves two pending."""
    from kurate.annotators.synthesis import SynthWorker, stage_of
    from kurate.flows.config import PipelineConfig
    from kurate.flows.synthesize import plan
    from tiny_models import free_port

    root = german_root(tmp_path / "root", DOCS, seed=1)
    config = PipelineConfig.model_validate({"root": root, "synthesize": {
        "name": "plan", "docs_per_unit": 4, "max_docs": DOCS, "chunking": {"min_chars": 20},
        # an unreachable server: every generation is a typed reject and the unit still commits, in milliseconds
        "generator": {"backend": "openai", "base_url": f"http://127.0.0.1:{free_port()}", "model": "tiny", "retries": 0,
                      "timeout_s": 2, "context_tokens": 2048},
        "sampling": {"max_new_tokens": 8}}})
    units = plan.fn(config)
    assert len(units) == 3
    stage = stage_of("plan")
    assert _table(_status(root).output, "stage")[stage] == ["0", "3", "3", "0"]
    SynthWorker(config.synthesize).synthesize_unit(root, units[0])
    out = _status(root)
    assert _table(out.output, "stage")[stage] == ["1", "3", "2", "0"]
    assert sorted(line.strip() for line in out.output.split(f"pending in stage {stage}")[1].splitlines()[1:3]) == sorted(u.input for u in units[1:])


def test_a_copied_root_reads_its_own_files(root, tmp_path, monkeypatch):
    copy = str(tmp_path / "elsewhere" / "copy")
    shutil.copytree(root, copy)
    os.rename(root, root + "-gone")  # the original's files are no longer where its catalog was written
    expected = [{"n": DOCS}]

    out = runner.invoke(app, ["query", "select count(*) as n from curated", "--root", copy, "-f", "json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == expected

    # a plain DuckDB client on the copied catalog.duckdb, from another directory: the views name files
    # relative to the root, found through file_search_path (the README's recipe)
    other = tmp_path / "cwd"
    other.mkdir()
    monkeypatch.chdir(other)
    path = os.path.join(copy, CATALOG_FILE)
    with duckdb.connect(path, read_only=True) as con:
        with pytest.raises(duckdb.IOException, match="No files found"):  # relative paths never reach the old root's files
            con.execute("select count(*) from curated").fetchall()
        con.execute("SET file_search_path = ?", [copy])
        assert con.execute("select count(*) as n from curated").fetchall() == [(DOCS,)]
        assert con.execute("select count(*) from rejects").fetchall() == [(0,)]
    # ... or opened from the root itself (`cd runs/demo && duckdb catalog.duckdb`)
    monkeypatch.chdir(copy)
    with duckdb.connect(CATALOG_FILE, read_only=True) as con:
        assert con.execute("select count(distinct id) from curated").fetchall() == [(DOCS,)]


@pytest.mark.e2e
def test_annotate_plans_the_chunks_its_judges_commit(prefect_server, tmp_path):
    """`kurate annotate` records a plan per judge naming exactly the chunks its workers commit: after
    the run nothing is pending; without one chunk's commit record, that chunk is."""
    from tiny_models import build_tiny_judge

    root = german_root(tmp_path / "root", DOCS, seed=2)
    model = build_tiny_judge(tmp_path / "judge", forced_score=3)
    cfg = tmp_path / "a.yaml"
    cfg.write_text(json.dumps({"annotate": {"judges": [{"name": "one", "model": model}], "sample": {"per_language": 5},
                                            "docs_per_unit": 2}, "ray": {"executor": "local"}}))
    out = runner.invoke(app, ["annotate", "--root", root, "--config", str(cfg)])
    assert out.exit_code == 0, out.output
    assert _table(_status(root).output, "stage")["annotate-one"] == ["3", "3", "0", "0"]
    store = ShardStore(root)
    last = store.manifests("annotate-one")[-1]
    os.remove(os.path.join(root, "_manifests", "annotate-one", f"{last.unit}.json"))
    out = _status(root)
    assert _table(out.output, "stage")["annotate-one"] == ["2", "3", "1", "0"]
    assert f"  {last.input}" in out.output.split("pending in stage annotate-one")[1].splitlines()


def test_status_names_the_run_that_holds_the_root(root):
    from kurate.storage.shards import RunLock

    with RunLock(ShardStore(root), "curate"):
        out = _status(root)
        assert out.exit_code == 0, out.output
        assert f"a curate run holds this root: pid {os.getpid()} on " in out.output
    assert "holds this root" not in _status(root).output
