"""A writer killed with SIGKILL mid-shard leaves nothing visible; the re-run equals an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kurate.storage.catalog import Catalog
from kurate.storage.shards import ShardStore
from kurate.tasks.curate import DedupConfig, filter_shard
from kurate.tasks.ingest import IngestConfig
from kurate.tasks.quality import LanguageConfig, QualityConfig

REPO = Path(__file__).resolve().parents[1]
CONFIG = IngestConfig(extractor="resiliparse", batch_rows=25)
QUALITY = QualityConfig(language=LanguageConfig(keep=["de", "en"]))
WRITER = """
import sys
from kurate.tasks.curate import DedupConfig, filter_shard
from kurate.tasks.ingest import IngestConfig
from kurate.tasks.quality import QualityConfig
filter_shard(sys.argv[1], sys.argv[2], IngestConfig.model_validate_json(sys.argv[3]),
             QualityConfig.model_validate_json(sys.argv[4]), DedupConfig(), "killtest")
"""


def run_unit(source: str, root: str):
    """The per-shard unit of the curate stage (filter → staged, signatures, rejects)."""
    return filter_shard(source, root, CONFIG, QUALITY, DedupConfig(), "killtest")


def _snapshot(root: str) -> dict:
    catalog = Catalog(root)
    return {dataset: catalog.query(f"select * from {dataset} order by id").to_pylist() for dataset in ("staged", "signatures", "rejects")}


@pytest.fixture(scope="module")
def bulk_warc(tmp_path_factory):
    from kurate.demo.warc import make_bulk_warc

    path = tmp_path_factory.mktemp("bulk") / "bulk.warc.gz"
    make_bulk_warc(str(path), 3000, seed=7)
    return str(path)


def _wait_for_partial_output(root: Path, proc: subprocess.Popen, min_bytes: int = 64 << 10, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, "writer finished before it could be killed mid-shard"
        written = sum(f.stat().st_size for f in (root / "_tmp").glob("*/*.parquet"))
        if written >= min_bytes:
            return
        time.sleep(0.02)
    raise AssertionError("writer produced no partial output in time")


@pytest.mark.e2e
def test_sigkill_mid_shard_then_rerun_matches_uninterrupted_run(tmp_path, bulk_warc):
    killed_root = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, bulk_warc, str(killed_root), CONFIG.model_dump_json(), QUALITY.model_dump_json()], env=env, cwd=REPO)
    try:
        _wait_for_partial_output(killed_root, proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    # Killed: partial temp files exist, but nothing is committed or visible.
    store = ShardStore(str(killed_root))
    assert store.pending_tmp(), "the kill should have left a temporary unit behind"
    assert store.manifests() == []
    assert _snapshot(str(killed_root)) == {"staged": [], "signatures": [], "rejects": []}

    rerun = run_unit(bulk_warc, str(killed_root))
    assert not rerun.skipped and rerun.records == 3000
    assert store.pending_tmp() == [], "the re-run must clear the killed attempt's temp files"

    clean_root = tmp_path / "clean"
    run_unit(bulk_warc, str(clean_root))
    killed, clean = _snapshot(str(killed_root)), _snapshot(str(clean_root))
    assert killed == clean
    ids = [r["id"] for r in killed["staged"]] + [r["id"] for r in killed["rejects"]]
    assert len(ids) == len(set(ids)) == 3000
    assert [r["id"] for r in killed["signatures"]] == [r["id"] for r in killed["staged"]]

    # A third run adds nothing.
    assert run_unit(bulk_warc, str(killed_root)).skipped
    assert _snapshot(str(killed_root)) == clean
