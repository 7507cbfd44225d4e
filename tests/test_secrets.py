"""Issue 16, case 9: storage credentials never reach Prefect, deployments or Ray Job specs.

Before: ``storage_options.s3.key``/``secret`` were stored in plain text in every flow run's
parameters (Prefect database and UI), in served deployments' defaults and in the Ray Job spec file.
Here real runs go against the loopback S3 server with credentials given three ways (a literal in
the config, Prefect ``Secret`` blocks referenced by name, ``AWS_*`` variables), then the Prefect
API, its database file, the root's files and the Ray Job's spec are searched for every secret.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import fsspec
import pytest
import yaml
from typer.testing import CliRunner

from kurate.flows.cli import app
from kurate.flows.config import load_config

runner = CliRunner()

LITERAL = ("AKIAKURATELITERAL0001", "literal-Secret-9f3b-never-stored")
BLOCK = ("AKIAKURATEBLOCK00002", "block-Secret-77aa-never-stored")
ENV = ("AKIAKURATEENV0000003", "env-Secret-c0ffee-never-stored")
SECRETS = [*LITERAL, *BLOCK, *ENV]


@pytest.fixture()
def no_ambient_aws(monkeypatch, tmp_path):
    """No credentials from this machine: a run succeeds only with the ones it was given."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def _s3(endpoint: str, **credentials) -> dict:
    return {"s3": {"endpoint_url": endpoint, "client_kwargs": {"region_name": "us-east-1"}, **credentials}}


def _save_blocks() -> None:
    from prefect.blocks.system import Secret

    Secret(value=BLOCK[0]).save("kurate-s3-key", overwrite=True)
    Secret(value=BLOCK[1]).save("kurate-s3-secret", overwrite=True)


def _prefect_text() -> str:
    """Everything the Prefect API holds about runs: flow runs (parameters), task runs, deployments,
    artifacts, logs and variables, as one JSON text."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        records = [*client.read_flow_runs(limit=200), *client.read_task_runs(limit=200), *client.read_deployments(),
                   *client.read_artifacts(limit=200), *client.read_logs(limit=200), *client.read_variables()]
        return json.dumps([r.model_dump(mode="json") for r in records])


def _database_bytes() -> bytes:
    """The Prefect server's sqlite files, read raw (the database and its write-ahead log)."""
    from prefect.settings import PREFECT_SERVER_DATABASE_CONNECTION_URL

    path = Path(PREFECT_SERVER_DATABASE_CONNECTION_URL.value().split(":///", 1)[1])
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def _leaks(text: str | bytes) -> list[str]:
    blob = text if isinstance(text, bytes) else text.encode()
    return [s for s in SECRETS if s.encode() in blob]


@pytest.mark.e2e
def test_s3_runs_leave_no_credential_in_prefect_deployments_or_the_root(prefect_server, ray_local, s3_server, demo_warc,
                                                                       tmp_path, monkeypatch, no_ambient_aws):
    from kurate.flows.deployments import build_deployments
    from kurate.flows.pipeline import pipeline

    endpoint = s3_server["s3"]["endpoint_url"]
    fsspec.filesystem("s3", **s3_server["s3"]).put_file(str(demo_warc[0]), "kurate/secret-crawl/demo.warc.gz")
    curate = {"inputs": ["s3://kurate/secret-crawl/*.warc.gz"], "ingest": {"extractor": "resiliparse"}}

    # 0. no credentials at all: refused before any flow starts (so the runs below used the given ones)
    bare = tmp_path / "bare.yaml"
    bare.write_text(yaml.safe_dump({"root": "s3://kurate/secret-none", "storage_options": _s3(endpoint), "curate": curate}))
    refused = runner.invoke(app, ["run", str(bare)])
    assert refused.exit_code == 1 and "credentials" in refused.output, refused.output

    # 1. literal key and secret in a config file, through the CLI, per-shard work on Ray workers
    literal = tmp_path / "literal.yaml"
    literal.write_text(yaml.safe_dump({"root": "s3://kurate/secret-literal", "curate": curate,
                                       "storage_options": _s3(endpoint, key=LITERAL[0], secret=LITERAL[1])}))
    out = runner.invoke(app, ["run", str(literal)])
    assert out.exit_code == 0, out.output
    assert _leaks(out.output) == []

    # 2. Prefect Secret blocks referenced by name, through the flow API, on Ray workers
    _save_blocks()
    by_block = load_config(None, [], {"root": "s3://kurate/secret-block", "curate": curate, "storage_options": _s3(
        endpoint, key={"prefect_secret": "kurate-s3-key"}, secret={"prefect_secret": "kurate-s3-secret"})})
    assert pipeline(by_block)["curate"]["curated"] > 0

    # 3. AWS_* variables, read by s3fs itself (in this process: the session's Ray workers started earlier)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ENV[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", ENV[1])
    by_env = load_config(None, [], {"root": "s3://kurate/secret-env", "curate": curate, "ray": {"executor": "local"},
                                    "storage_options": _s3(endpoint)})
    assert pipeline(by_env)["curate"]["curated"] > 0

    # served deployments, registered on the server with each config as their defaults
    for config in (load_config(literal), by_block):
        for deployment in build_deployments(config)[:2]:
            deployment.apply()

    text = _prefect_text()
    assert '"prefect_secret": "kurate-s3-secret"' in text  # the block run's parameters hold the reference …
    assert "secret-literal" in text and "served-curate" in text  # … and the literal run and deployments are there
    assert _leaks(text) == []
    assert _leaks(_database_bytes()) == []
    fs = fsspec.filesystem("s3", **s3_server["s3"])
    files = [p for p in fs.find("kurate") if "/secret-" in p]
    assert files and _leaks(b"".join(fs.cat_file(p) for p in files)) == []


@pytest.mark.e2e
def test_ray_job_spec_holds_references_only(prefect_server, ray_head, tmp_path):
    from ray.job_submission import JobSubmissionClient
    from toy_roots import german_root

    from kurate.flows.train import train_flow

    _save_blocks()
    root = german_root(tmp_path / "root", 120, seed=5)
    config = load_config(None, [], {
        "root": root,
        "storage_options": _s3("http://127.0.0.1:9", key={"prefect_secret": "kurate-s3-key"}, secret=LITERAL[1]),
        "train": {"name": "secrets", "model": "bpe", "overrides": {"max_steps": 2, "log_every": 1}, "job_address": ray_head}})
    result = train_flow(config)
    assert "SUCCEEDED" in result["status"], result
    spec = Path(config.train.run_dir(root) + ".job.json").read_text()
    assert json.loads(spec)["storage_options"]["s3"]["key"] == {"prefect_secret": "kurate-s3-key"}
    jobs = JobSubmissionClient(ray_head).list_jobs()
    assert jobs and _leaks(spec) == [] and _leaks(json.dumps([j.dict() for j in jobs], default=str)) == []
    assert _leaks(_prefect_text()) == [] and _leaks(_database_bytes()) == []


def test_credentials_are_placeholders_in_memory_and_references_on_the_wire(monkeypatch, tmp_path):
    """Unit view of the same rule: str(), json.dumps and repr see placeholders, fsspec the value."""
    import pickle

    from kurate.storage.fs import filesystem

    (tmp_path / "secret.txt").write_text(ENV[1] + "\n")
    monkeypatch.setenv("KURATE_TEST_KEY", ENV[0])
    config = load_config(None, [], {"root": "memory://x", "storage_options": {"s3": {
        "key": {"env": "KURATE_TEST_KEY"}, "secret": {"file": str(tmp_path / "secret.txt")},
        "client_kwargs": {"aws_session_token": LITERAL[1]}, "endpoint_url": "http://127.0.0.1:9"}}})
    options = config.storage_options
    assert _leaks(json.dumps(options)) == [] and _leaks(repr(options)) == [] and _leaks(str(options)) == []
    assert _leaks(config.model_dump_json()) == []
    wire = config.model_dump(mode="json")["storage_options"]["s3"]
    assert wire == {"key": {"env": "KURATE_TEST_KEY"}, "secret": {"file": str(tmp_path / "secret.txt")},
                    "client_kwargs": {}, "endpoint_url": "http://127.0.0.1:9"}
    assert load_config(None, [], {"root": "memory://x", "storage_options": {"s3": wire}}).model_dump(mode="json") == \
        config.model_dump(mode="json")  # a job re-reads what it was sent
    fs, _ = filesystem("s3://bucket/x", options)
    assert (fs.key, fs.secret, fs.client_kwargs["aws_session_token"]) == (ENV[0], ENV[1], LITERAL[1])
    shipped = pickle.loads(pickle.dumps(options))  # what a Ray worker of this run receives
    assert shipped["s3"]["client_kwargs"]["aws_session_token"].get_secret_value() == LITERAL[1]
    monkeypatch.delenv("KURATE_TEST_KEY")
    with pytest.raises(Exception, match="KURATE_TEST_KEY"):
        load_config(None, [], {"root": "memory://x", "storage_options": {"s3": wire}}).storage_options["s3"]["key"].get_secret_value()
    assert os.environ.get("KURATE_TEST_KEY") is None
