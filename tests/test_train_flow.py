"""Training from committed shards: `kurate train` in-process, `kurate generate`, the metrics
dataset, and the `train` flow submitting a Ray Job to a local Ray head (conftest `ray_head`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from kurate.flows.config import load_config
from kurate.storage.catalog import Catalog
from toy_roots import german_root

@pytest.fixture(scope="module")
def text_root(tmp_path_factory):
    return german_root(tmp_path_factory.mktemp("train") / "root", 400, seed=3)


def _metrics(root: str, run: str) -> list[dict]:
    return Catalog(root).query(f"select step, loss from metrics where run = '{run}' order by step").to_pylist()


@pytest.mark.e2e
@pytest.mark.parametrize("model", ["hat", "tfree", "bpe"])
def test_kurate_train_then_generate(prefect_server, text_root, model):
    # the real command line in its own process, against the session's Prefect server
    kurate = str(Path(sys.executable).with_name("kurate"))
    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    done = subprocess.run([kurate, "train", "--root", text_root, "--model", model, "--preset", "tiny",
                           "--set", "train.overrides.max_steps=12", "--set", "train.overrides.log_every=4",
                           "--set", "ray.executor=local"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = _metrics(text_root, f"demo-{model}")
    assert rows and rows[-1]["step"] == 12 and rows[-1]["loss"] < rows[0]["loss"] + 1.0
    checkpoint = Path(text_root) / "checkpoints" / f"demo-{model}" / "checkpoint"
    assert (checkpoint / "model.safetensors").exists()
    done = subprocess.run([kurate, "generate", "Die Stadt", "--checkpoint", str(checkpoint), "--max-new", "5"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.startswith("Die Stadt"), done.stderr[-2000:]


@pytest.mark.e2e
def test_train_flow_submits_a_ray_job_once(prefect_server, text_root, ray_head):
    from kurate.flows.train import submission_id, train_flow

    config = load_config(None, [], {"root": text_root, "train": {
        "name": "job", "model": "bpe", "overrides": {"max_steps": 8, "log_every": 4}, "job_address": ray_head}})
    result = train_flow(config)
    assert result["job"] == submission_id(text_root, config.train) and "SUCCEEDED" in result["status"]
    assert _metrics(text_root, "job-bpe")[-1]["step"] == 8
    assert (Path(result["checkpoint"]) / "model.safetensors").exists()
    # a retried flow run attaches to the finished job instead of training again
    again = train_flow(config)
    assert again["job"] == result["job"]
    from ray.job_submission import JobSubmissionClient

    assert [j.submission_id for j in JobSubmissionClient(ray_head).list_jobs()] == [result["job"]]


def _train_cli(root: str, prefect_server: str, extra: list[str]) -> subprocess.Popen:
    kurate = str(Path(sys.executable).with_name("kurate"))
    env = {**os.environ, "PREFECT_API_URL": prefect_server, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([kurate, "--quiet", "train", "--root", root, "--release", "default@v1", "--model", "hat",
                             "--set", "train.overrides.max_steps=20", "--set", "train.overrides.checkpoint_every=5",
                             "--set", "train.overrides.log_every=5", "--set", "ray.executor=local", *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.e2e
def test_a_killed_and_resumed_run_has_every_metrics_row_and_the_same_lineage(prefect_server, tmp_path):
    """Issue 16 case 10: the run is SIGKILLed after its first segment committed; the re-run resumes from
    the checkpoint, and metrics and trained_on end up as an uninterrupted run's (steps 1..20 once each)."""
    import signal
    import time

    from kurate.release.config import ReleaseConfig
    from kurate.release.publish import build_release

    roots = {}
    for name in ("killed", "whole"):
        roots[name] = german_root(tmp_path / name, 120, seed=5)
        build_release(roots[name], ReleaseConfig())
    proc = _train_cli(roots["killed"], prefect_server, [])
    manifests = Path(roots["killed"]) / "_manifests" / "train-demo-hat"
    deadline = time.time() + 300
    # the kill lands within ~10 ms of the first segment's commit; the 10 steps and the checkpoint after
    # it take seconds on a CPU machine of the CI kind
    while not (manifests.exists() and any(manifests.iterdir())) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    steps_before = [r["step"] for r in _metrics(roots["killed"], "demo-hat")]
    assert steps_before and steps_before[-1] < 20
    for name in ("killed", "whole"):
        done = _train_cli(roots[name], prefect_server, [])
        output = done.communicate(timeout=600)[0]
        assert done.returncode == 0, output[-3000:]
    assert [r["step"] for r in _metrics(roots["killed"], "demo-hat")] == list(range(1, 21))
    lineage = {name: Catalog(root).query("select id, first_step, checkpoint_step, release, version from trained_on "
                                         "order by first_step, id").to_pylist() for name, root in roots.items()}
    assert lineage["killed"] == lineage["whole"] and lineage["whole"]
    assert len({r["id"] for r in lineage["whole"]}) == len(lineage["whole"])
    assert {(r["release"], r["version"]) for r in lineage["whole"]} == {("default", 1)}
