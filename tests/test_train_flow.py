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
