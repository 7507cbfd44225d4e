"""`kurate submit` against a real Ray head with the Jobs API (conftest's ``ray_head``): the curate stage as a
Ray Job from a client in another directory with a relative root, its log streamed, a re-submit that attaches,
Ctrl-C that stops the job, and a re-submit after it that starts ``…-retry1`` and finishes the run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from kurate.flows.config import load_config
from kurate.flows.submit import CONFIG_VARIABLE, runtime_env, submission_id
from kurate.storage.catalog import Catalog

KURATE = str(Path(sys.executable).with_name("kurate"))


def test_submission_id_is_stable_and_names_the_stage(tmp_path):
    config = load_config(given={"root": str(tmp_path / "r")})
    same = load_config(given={"root": str(tmp_path / "r"), "ray": {"submit": True, "job_address": "http://h:8265"}})
    assert submission_id(config, "curate") == submission_id(same, "curate")  # where to submit is not what runs
    assert submission_id(config, "curate").startswith("kurate-curate-")
    assert submission_id(config, None) != submission_id(config, "curate")
    other = load_config(given={"root": str(tmp_path / "other")})
    assert submission_id(other, "curate") != submission_id(config, "curate")


def test_runtime_env_carries_the_config_and_settings_not_the_callers_path(tmp_path, monkeypatch):
    monkeypatch.setenv("KURATE_CACHE", "/shared/cache")
    monkeypatch.setenv("PYTHONPATH", "/home/me/project")
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    config = load_config(given={"root": str(tmp_path / "r")})
    env = runtime_env(config, "http://10.0.0.5:8265", "ship")
    assert env["env_vars"][CONFIG_VARIABLE] == config.model_dump_json() and "working_dir" not in env
    assert env["env_vars"]["KURATE_CACHE"] == "/shared/cache" and "PYTHONPATH" not in env["env_vars"]
    assert "PREFECT_API_URL" not in env["env_vars"]  # a loopback Prefect API is unreachable from a remote cluster
    assert Path(env["py_modules"][0]).name == "kurate"
    assert runtime_env(config, "http://127.0.0.1:8265", "installed")["env_vars"]["PREFECT_API_URL"].endswith("/api")


def test_unknown_stage_is_a_config_error(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"root": str(tmp_path / "r")}))
    run = subprocess.run([KURATE, "submit", str(config), "--address", "http://127.0.0.1:9", "--stage", "nope"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "unknown --stage 'nope'" in run.stderr


def _status(address: str, job_id: str) -> str:
    from ray.job_submission import JobSubmissionClient

    return str(JobSubmissionClient(address).get_job_status(job_id))


@pytest.mark.e2e
@pytest.mark.timeout(1500)  # the sum of the bounded waits below (and the ray_head fixture's 120 s start)
def test_submit_curate_stage_attach_stop_and_retry(ray_head, prefect_server, demo_warc, tmp_path, monkeypatch):
    client = tmp_path / "client"
    (client / "data").mkdir(parents=True)
    shutil.copy(demo_warc[0], client / "data" / "demo.warc.gz")
    (client / "run.yaml").write_text(yaml.safe_dump({"root": "runs/sub", "curate": {"inputs": ["data/*.warc.gz"]}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "PREFECT_API"))}
    env.update(RAY_AUTH_MODE="disabled", PREFECT_API_URL=prefect_server)
    submit = [KURATE, "submit", "run.yaml", "--address", ray_head, "--stage", "curate", "--wait"]

    first = subprocess.run(submit, cwd=client, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    monkeypatch.chdir(client)  # relative paths resolve against the directory the config is loaded in
    job_id = submission_id(load_config("run.yaml"), "curate")
    assert f"submitted Ray Job {job_id}" in first.stdout
    assert "[job] " in first.stdout and "[curate]" in first.stdout  # the job's log, streamed
    root = client / "runs" / "sub"  # the client's relative root, though the job's driver ran on the head
    assert Catalog(str(root)).query("select count(*) as n from curated").to_pylist()[0]["n"] > 0

    again = subprocess.run(submit, cwd=client, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and f"attaching to Ray Job {job_id}" in again.stdout, again.stdout + again.stderr

    # another config (another id): Ctrl-C while the job runs stops it
    changed = [*submit, "--set", "curate.dedup.threshold=0.7"]
    proc = subprocess.Popen(changed, cwd=client, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 300
        lines = []
        while not any("submitted Ray Job" in line for line in lines):
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "".join(lines) + proc.stderr.read()
            lines.append(line)
            assert time.time() < deadline
        stopped_id = lines[-1].split("submitted Ray Job ")[1].split()[0]
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and f"stopped Ray Job {stopped_id}" in out, out[-2000:] + err[-2000:]
    deadline = time.time() + 120
    while _status(ray_head, stopped_id) not in ("STOPPED", "FAILED") and time.time() < deadline:
        time.sleep(1)
    assert _status(ray_head, stopped_id) == "STOPPED"

    retried = subprocess.run(changed, cwd=client, env=env, capture_output=True, text=True, timeout=300)
    assert retried.returncode == 0, retried.stdout[-3000:] + retried.stderr[-3000:]
    assert f"submitted Ray Job {stopped_id}-retry1" in retried.stdout
