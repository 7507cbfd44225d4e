"""Issue 16's curate-side cases, each reproduced on real WARC files written here (the "Why" list):

1. a shard failing in its final step, then a re-run, keeps every curated document;
2. a buffering knob (``curate.ingest.batch_rows``) is not in the unit hash: nothing is committed twice;
3. one writer per unit and per root: conditional commit, live temp directories left alone, a run
   lock with one clear line, current generation by commit order;
5. the same WARC twice in one file: every distinct record is curated once;
6. inputs by content: an empty input is recorded damage, a replaced input is curated again;
7. a partial record is one ``truncated_record`` reject, never a document;
8. one unreadable input is that input's failure, the others finish; per-document extraction timeout.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import kurate.storage.shards as shards
import kurate.tasks.curate as curate_tasks
from kurate.demo.pages import demo_pages
from kurate.demo.records import page_records, write_warc
from kurate.errors import KurateError
from kurate.flows.config import CurateConfig, RayConfig
from kurate.flows.runner import run_per_shard
from kurate.storage.catalog import Catalog
from kurate.storage.shards import RootLocked, RunLock, ShardStore, UnitKey, put_if_absent
from kurate.tasks.curate import STAGE_FINAL, CurateHashes, DedupConfig, run_local
from kurate.tasks.ingest import IngestConfig
from kurate.tasks.quality import LanguageConfig, QualityConfig

QUALITY = QualityConfig(language=LanguageConfig(keep=["de", "en", "fr"]))
INGEST = IngestConfig(extractor="resiliparse")
REPO = Path(__file__).resolve().parents[1]
KURATE = str(Path(sys.executable).with_name("kurate"))


def _curate(inputs, root, **kw):
    return run_local([str(p) for p in inputs], str(root), kw.pop("ingest", INGEST), QUALITY, kw.pop("dedup", None), **kw)


def _n(root, sql="select count(*) n from curated"):
    return Catalog(str(root)).query(sql).to_pylist()[0]["n"]


def _ids(root, dataset="curated"):
    return sorted(r["id"] for r in Catalog(str(root)).query(f"select id from {dataset}").to_pylist())


def _copies(path, directory, n):
    directory.mkdir(exist_ok=True)
    data = Path(path).read_bytes()
    out = []
    for i in range(n):
        copy = directory / f"copy-{i}.warc.gz"
        copy.write_bytes(data)
        out.append(copy)
    return out


class FailingFinal:
    """The real ``finalize_shard``, raising for one input the first ``times`` calls (a crash in the final step)."""

    def __init__(self, source, times):
        self.source, self.times, self.calls = str(source), times, 0
        self.real = curate_tasks.finalize_shard

    def __call__(self, source, *args):
        if source == self.source and self.calls < self.times:
            self.calls += 1
            raise RuntimeError("worker lost in the final step")
        return self.real(source, *args)


# --- case 1 -----------------------------------------------------------------------------------

def test_case1_failed_final_step_then_rerun_keeps_every_curated_document(tmp_path, demo_warc, monkeypatch):
    copies = _copies(demo_warc[0], tmp_path / "in", 8)
    _curate(copies, tmp_path / "clean")
    expected = _ids(tmp_path / "clean")
    assert expected

    # copy-0 holds the winners (first in input order); its final step fails beyond its retries
    root = tmp_path / "root"
    monkeypatch.setattr(curate_tasks, "finalize_shard", FailingFinal(copies[0], times=1))
    with pytest.raises(KurateError, match="1 shard\\(s\\) failed.*copy-0"):
        _curate(copies, root, retries=0)
    assert _n(root) == 0  # the losers' finals are committed: every copy is a duplicate of copy-0's
    # "re-run to retry": copy-0 is finalized with the committed decisions, not re-decided
    again = _curate(copies, root, retries=0)
    assert again["dedup"] is None and again["skipped"] == 7 and len(again["final"]) == 1
    assert _ids(root) == expected
    # a third run changes nothing
    assert _curate(copies, root)["skipped"] == 8 and _ids(root) == expected


def test_case1_a_failure_in_the_final_step_is_retried_within_the_run(tmp_path, demo_warc, monkeypatch):
    copies = _copies(demo_warc[0], tmp_path / "in", 3)
    _curate(copies, tmp_path / "clean")
    failing = FailingFinal(copies[0], times=1)
    monkeypatch.setattr(curate_tasks, "finalize_shard", failing)
    _curate(copies, tmp_path / "root", retries=1)
    assert failing.calls == 1 and _ids(tmp_path / "root") == _ids(tmp_path / "clean")


def test_case1_references_are_finalized_curated_documents_only(tmp_path, demo_warc):
    """A later run deduplicates against curated documents, never against the documents an earlier
    run dropped as duplicates (they are in that shard's filter signatures, but were not curated)."""
    copies = _copies(demo_warc[0], tmp_path / "in", 2)
    root = tmp_path / "root"
    _curate(copies, root)
    first = _ids(root)
    third = _copies(demo_warc[0], tmp_path / "later", 1)[0]
    result = _curate([*copies, third], root)
    assert result["skipped"] == 2 and _ids(root) == first  # the new copy adds nothing, removes nothing
    reasons = Catalog(str(root)).query(
        "select detail from rejects where source = ? and stage = 'dedup'", [str(third)]).to_pylist()
    assert reasons and all("duplicate of" in r["detail"] for r in reasons)


def test_case1_run_per_shard_retries_a_raising_item(tmp_path):
    marker = tmp_path / "failed-once"

    outcomes = run_per_shard(_fail_first_time, ["a", "b"], (str(marker),), RayConfig(executor="local"), retries=1)
    assert [o.error for o in outcomes] == [None, None] and [o.result for o in outcomes] == ["a", "b"]
    marker.unlink()
    outcomes = run_per_shard(_fail_first_time, ["a"], (str(marker),), RayConfig(executor="local"), retries=0)
    assert outcomes[0].error.startswith("RuntimeError: first attempt")


def _fail_first_time(item: str, marker: str) -> str:
    if item == "a" and not os.path.exists(marker):
        Path(marker).touch()
        raise RuntimeError("first attempt")
    return item


# --- case 2 -----------------------------------------------------------------------------------

def test_case2_unit_hash_covers_what_changes_output_and_nothing_else():
    base = CurateConfig().hashes()
    # In the filter hash (they change which documents come out, or their text):
    changes_output = {
        "ingest.extractor": {"ingest": {"extractor": "resiliparse"}},
        "ingest.max_payload_bytes": {"ingest": {"max_payload_bytes": 1000}},
        "ingest.min_text_chars": {"ingest": {"min_text_chars": 50}},
        "ingest.extract_timeout_s": {"ingest": {"extract_timeout_s": 5.0}},  # a limit decides rejects
        "language.keep": {"language": {"keep": ["en"]}},
        "filters.enabled": {"filters": {"enabled": ["c4"]}},
        "url.enabled": {"url": {"enabled": False}},
        "dedup.ngram": {"dedup": {"ngram": 3}},  # the signatures the filter unit writes
    }
    for name, change in changes_output.items():
        assert CurateConfig(**change).hashes().filter != base.filter, name
    # In the final hash only (dedup decisions): threshold, exact/fuzzy, reference roots
    for change in ({"dedup": {"threshold": 0.5}}, {"dedup": {"exact": False}}, {"dedup": {"reference_roots": ["/r"]}}):
        hashes = CurateConfig(**change).hashes()
        assert hashes.filter == base.filter and hashes.final != base.final, change
    # Not in any hash (buffering, retries, locking, reporting):
    assert IngestConfig.BUFFERING == ("batch_rows",)
    for change in ({"ingest": {"batch_rows": 128}}, {"shard_retries": 5}, {"lock_wait_s": 30}, {"report": False},
                   {"inputs": ["x.warc.gz"]}):
        assert CurateConfig(**change).hashes() == base, change
    hashed = set(IngestConfig.model_fields) - set(IngestConfig.BUFFERING)
    assert hashed == {"extractor", "max_payload_bytes", "min_text_chars", "extract_timeout_s"}
    assert CurateHashes.of(IngestConfig(batch_rows=1), QualityConfig(), DedupConfig()) == \
        CurateHashes.of(IngestConfig(), QualityConfig(), DedupConfig())


def _kurate(*args: str, prefect_api: str) -> subprocess.CompletedProcess:
    """The installed ``kurate`` executable against the session's Prefect server."""
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "COLUMNS": "200"}
    return subprocess.run([KURATE, *args], capture_output=True, text=True, timeout=300, env=env, cwd=REPO)


@pytest.mark.e2e
def test_case2_cli_rerun_with_other_batch_rows_commits_nothing_twice(prefect_server, tmp_path, demo_warc):
    path = str(demo_warc[0])
    root = str(tmp_path / "root")
    base = ["curate", "--input", path, "--root", root, "--set", "ray.executor=local", "--set", "curate.ingest.extractor=resiliparse",
            "--set", "curate.report=false"]
    first = _kurate(*base, prefect_api=prefect_server)
    assert first.returncode == 0, first.stderr[-3000:]
    ids = _ids(root)
    second = _kurate(*base, "--set", "curate.ingest.batch_rows=128", prefect_api=prefect_server)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "1 already curated, 0 to do" in second.stdout + second.stderr
    assert _ids(root) == ids and len(ids) == len(set(ids))  # before: 118 rows, 59 ids
    assert len(ShardStore(root).manifests(STAGE_FINAL)) == 1


# --- case 3 -----------------------------------------------------------------------------------

def _rows(n):
    return [{"id": f"d{i}", "url": f"https://x/{i}", "warc_record_id": f"r{i}", "source": "a.warc.gz", "text": "t" * 10}
            for i in range(n)]


def test_case3_two_writers_of_one_unit_exactly_one_commits(tmp_path):
    store = ShardStore(str(tmp_path))
    key = UnitKey("curate", "a.warc.gz", "h1")
    first, second = store.open_unit(key, ["curated"]), store.open_unit(key, ["curated"])
    first.write("curated", _rows(2))
    second.write("curated", _rows(5))
    # a third attempt clears only provably stale temp directories: both writers are live
    store.clear_tmp(key)
    assert len(store.pending_tmp()) == 2
    with first:
        pass
    with second:
        pass
    assert not first.lost and second.lost and second.manifest == first.manifest
    assert _n(tmp_path) == 2 and store.pending_tmp() == []
    assert sorted(os.listdir(tmp_path / "curated")) == [os.path.basename(first.manifest.outputs[0].path)]


def test_case3_put_if_absent_on_the_loopback_s3_server(s3_server):
    store = ShardStore("s3://kurate/put-if-absent", s3_server)
    path = f"{store.path}/_locks/x.json"
    assert put_if_absent(store.fs, path, b"one") and not put_if_absent(store.fs, path, b"two")
    assert store.fs.cat_file(path) == b"one"
    # the commit protocol on S3: of two writers of one unit exactly one commits; generations by commit order
    key = UnitKey("curate", "a.warc.gz", "h1")
    first, second = store.open_unit(key, ["curated"]), store.open_unit(key, ["curated"])
    first.write("curated", _rows(2))
    second.write("curated", _rows(5))
    with first:
        pass
    with second:
        pass
    assert second.lost and second.manifest == first.manifest
    with store.open_unit(UnitKey("curate", "a.warc.gz", "h2"), ["curated"]) as newer:
        newer.write("curated", _rows(3))
    (current,) = store.current_manifests("curate")
    assert current.config_hash == "h2" and current.generation == 2
    assert Catalog(store.url(), s3_server).query("select count(*) n from curated").to_pylist() == [{"n": 3}]
    assert store.pending_tmp() == []


def test_case3_current_generation_is_commit_order_not_wall_clock(tmp_path, monkeypatch):
    store = ShardStore(str(tmp_path))
    clock = iter([2000.0, 1000.0])  # the second commit's clock runs behind (another host, a skewed clock)
    real = time.time
    for config in ("old", "new"):
        with store.open_unit(UnitKey("curate", "a.warc.gz", config), ["curated"]) as unit:
            unit.write("curated", _rows(1 if config == "old" else 3))
            monkeypatch.setattr(shards.time, "time", lambda: next(clock))
        monkeypatch.setattr(shards.time, "time", real)
    (current,) = store.current_manifests("curate")
    assert current.config_hash == "new" and current.generation == 2 and _n(tmp_path) == 3


def test_case3_run_lock_second_writer_fails_with_one_line_and_stale_lock_is_taken_over(tmp_path):
    store = ShardStore(str(tmp_path))
    with RunLock(store, "curate"):
        with pytest.raises(RootLocked) as raised:
            RunLock(store, "curate").acquire()
        line = raised.value.line()
        assert "being written by another `curate` run" in line and f"pid {os.getpid()}" in line and "\n" not in line
    # a holder that died (SIGKILL) leaves its lock: a later run takes it over
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock = tmp_path / "_locks" / "curate.json"
    lock.write_text(json.dumps({"host": shards.HOST, "pid": int(dead.stdout), "token": "dead", "since": 0}))
    with RunLock(store, "curate") as taken:
        assert json.loads(lock.read_text())["token"] == taken.token
    assert not lock.exists()


def test_case3_a_temp_directory_without_its_owner_record_is_kept_until_it_is_old(tmp_path):
    """A writer creates its directory, then its owner record: in that instant a concurrent
    clear_tmp must not take the directory for a dead writer's."""
    store = ShardStore(str(tmp_path))
    key = UnitKey("curate", "a.warc.gz", "h1")
    orphan = tmp_path / "_tmp" / f"{key.name}.0123456789ab"
    orphan.mkdir(parents=True)
    store.clear_tmp(key)
    assert orphan.exists()
    old = time.time() - shards.ORPHAN_TMP_AGE_S - 60
    os.utime(orphan, (old, old))
    store.clear_tmp(key)
    assert not orphan.exists()


def test_case3_only_one_waiter_takes_over_a_dead_holders_lock(tmp_path):
    """Two waiters that both see the same dead holder: the one holding the takeover marker removes
    the lock; the other waits (and never removes a lock the first has just taken)."""
    store = ShardStore(str(tmp_path))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock = tmp_path / "_locks" / "curate.json"
    lock.parent.mkdir(parents=True)
    lock.write_text(json.dumps({"host": shards.HOST, "pid": int(dead.stdout), "token": "dead", "since": 0}))
    # another waiter, alive, is in the middle of taking it over
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        marker = tmp_path / "_locks" / "curate.json.takeover-dead"
        marker.write_text(json.dumps({"host": shards.HOST, "pid": other.pid, "token": "other", "since": 0}))
        with pytest.raises(RootLocked):
            RunLock(store, "curate", wait_s=1.0, poll_s=0.1).acquire()
        assert json.loads(lock.read_text())["token"] == "dead" and marker.exists()
    finally:
        other.kill()
        other.wait()
    # that waiter died mid-takeover: its marker is cleared and the lock taken over
    with RunLock(store, "curate", wait_s=5.0, poll_s=0.1) as taken:
        assert json.loads(lock.read_text())["token"] == taken.token
    assert not lock.exists() and not marker.exists()


@pytest.mark.e2e
def test_case3_two_concurrent_kurate_curate_runs_on_one_root(prefect_server, tmp_path, demo_warc):
    copies = [str(p) for p in _copies(demo_warc[0], tmp_path / "in", 3)]
    _curate(copies, tmp_path / "clean")
    root = str(tmp_path / "root")
    args = [KURATE, "curate", "--input", *copies, "--root", root, "--set", "ray.executor=local",
            "--set", "curate.ingest.extractor=resiliparse", "--set", "curate.report=false",
            "--set", 'curate.language.keep=["de","en","fr"]']
    env = {**os.environ, "PREFECT_API_URL": prefect_server, "COLUMNS": "200"}
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO) for _ in range(2)]
    done = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    # one curates; the other fails with one line naming the holder (before: FileNotFoundError on
    # the other run's temp files), or, if it started after the first finished, skips everything
    assert any(code == 0 for code, _ in done), done
    for code, err in done:
        if code:
            assert code == 1 and [line for line in err.splitlines() if "is being written by another `curate` run" in line], err[-3000:]
    assert _ids(root) == _ids(tmp_path / "clean")
    assert ShardStore(root).pending_tmp() == [] and not os.path.exists(os.path.join(root, "_locks", "curate.json"))


# --- case 5 -----------------------------------------------------------------------------------

def test_case5_the_same_warc_twice_in_one_file_curates_every_record_once(tmp_path, demo_warc):
    path, manifest = demo_warc
    _curate([path], tmp_path / "single")
    doubled = tmp_path / "doubled.warc.gz"
    doubled.write_bytes(path.read_bytes() * 2)  # a valid multi-member gzip
    result = _curate([doubled], tmp_path / "root")["final"][0]
    records = manifest.responses + manifest.malformed
    assert result.records == 2 * records
    assert _ids(tmp_path / "root") == _ids(tmp_path / "single")  # before: 1 curated
    assert _n(tmp_path / "root", "select count(*) n from (select id from curated union all select id from rejects)") == 2 * records
    dedup = "select count(*) n from rejects where stage = 'dedup'"
    # every staged record of the second copy is a duplicate, on top of the first copy's own duplicates
    assert _n(tmp_path / "root", dedup) == 2 * _n(tmp_path / "single", dedup) + _n(tmp_path / "single")
    repeated = _n(tmp_path / "root", "select count(*) n from rejects where detail like '%the same record, repeated%'")
    assert repeated >= _n(tmp_path / "single")


# --- case 6 -----------------------------------------------------------------------------------

def test_case6_empty_input_is_damage_and_a_replaced_input_is_curated_again(tmp_path, demo_warc):
    path = tmp_path / "in" / "late.warc.gz"
    path.parent.mkdir()
    path.write_bytes(b"")  # the download has not finished
    root = tmp_path / "root"
    first = _curate([path], root)["final"][0]
    assert first.records == 1 and first.kept == 0
    assert Catalog(str(root)).query("select reason from rejects").to_pylist() == [{"reason": "empty_input"}]

    path.write_bytes(demo_warc[0].read_bytes())  # the real file arrives at the same path
    again = _curate([path], root)
    assert again["skipped"] == 0 and again["final"][0].records == demo_warc[1].responses + demo_warc[1].malformed
    _curate([demo_warc[0]], tmp_path / "clean")
    assert _n(root) == _n(tmp_path / "clean") > 0
    assert _n(root, "select count(*) n from rejects where reason = 'empty_input'") == 0  # superseded
    (current,) = ShardStore(str(root)).current_manifests(STAGE_FINAL)
    assert current.generation == 2 and current.input_version.startswith(f"{path.stat().st_size}:")
    assert _curate([path], root)["skipped"] == 1  # unchanged content: nothing redone


# --- case 7 -----------------------------------------------------------------------------------

def _request_response_warc(path, n_pages, gzip_per_record=True):
    """``n_pages`` articles as request + response records, so the file ends with a response."""
    pages = [p for p in demo_pages() if p.kind.startswith("article-")][:n_pages]
    records = [r for i, page in enumerate(pages) for r in page_records(page, i)[:2]]
    write_warc(str(path), records, gzip_per_record=gzip_per_record)
    return len(pages)


@pytest.mark.parametrize("damage", ["cut inside the last gzip member", "content-length beyond the data"])
def test_case7_a_partial_record_is_a_truncated_record_reject_not_a_document(tmp_path, damage):
    whole = tmp_path / "whole.warc.gz"
    n = _request_response_warc(whole, 6)
    data = whole.read_bytes()
    cut = tmp_path / ("cut.warc.gz" if damage.startswith("cut") else "cut.warc")
    cut.write_bytes(data[:-150] if damage.startswith("cut") else gzip.decompress(data)[:-150])
    _curate([whole], tmp_path / "clean")
    root = tmp_path / "root"
    result = _curate([cut], root)["final"][0]
    assert result.records == n  # before: 8 rows for 6 records
    assert _n(root, "select count(*) n from (select id from curated union all select id from rejects)") == n
    truncated = Catalog(str(root)).query("select id, url, reason from rejects where stage = 'ingest'").to_pylist()
    assert [r["reason"] for r in truncated] == ["truncated_record"] and truncated[0]["url"]
    assert truncated[0]["id"] in _ids(tmp_path / "clean")  # the record's own id: lineage stays per record
    assert truncated[0]["id"] not in _ids(root)


# --- case 8 -----------------------------------------------------------------------------------

def test_case8_an_unreadable_input_fails_alone_and_the_others_finish(tmp_path, demo_warc):
    copies = _copies(demo_warc[0], tmp_path / "in", 2)
    _curate(copies, tmp_path / "clean")
    broken = tmp_path / "in" / "not-a-file.warc.gz"
    broken.mkdir()
    root = tmp_path / "root"
    with pytest.raises(KurateError, match="1 shard\\(s\\) failed.*not-a-file") as raised:
        _curate([copies[0], broken, copies[1]], root)
    assert "\n" not in raised.value.line()
    assert _ids(root) == _ids(tmp_path / "clean")  # dedup ran on the rest (copy-1 all duplicates)
    assert _n(root, "select count(*) n from rejects where stage = 'dedup'") > 0
    broken.rmdir()
    _copies(demo_warc[0], tmp_path / "fix", 1)[0].rename(broken)  # the input becomes readable
    result = _curate([copies[0], broken, copies[1]], root)
    assert result["skipped"] == 2 and _ids(root) == _ids(tmp_path / "clean")


def test_case8_per_document_extraction_timeout(tmp_path, demo_warc):
    path, manifest = demo_warc
    root = tmp_path / "root"
    result = _curate([path], root, ingest=IngestConfig(extractor="trafilatura", extract_timeout_s=1e-6))["final"][0]
    timeouts = _n(root, "select count(*) n from rejects where reason = 'extract_timeout'")
    assert timeouts > 0 and _n(root) == 0  # no page extracts in a microsecond
    assert result.records == manifest.responses + manifest.malformed
    # datatrove's extractors default to 1 s; 10 s keeps output independent of machine load (extract.py)
    assert IngestConfig().extract_timeout_s == 10.0


def test_extraction_time_limit_keeps_an_outer_timer():
    """The per-page limit must not switch off an outer SIGALRM timer (pytest-timeout, Prefect)."""
    import signal
    import time

    from kurate.tasks.extract import ExtractionTimeout, time_limit

    fired = []
    previous = signal.signal(signal.SIGALRM, lambda *_: fired.append(True))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        with time_limit(0.1):
            pass
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 0 < left <= 0.5  # re-armed with what was left
        deadline = time.monotonic() + 5
        while not fired and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fired  # and it still fires
        with pytest.raises(ExtractionTimeout):
            with time_limit(0.05):
                time.sleep(1)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
