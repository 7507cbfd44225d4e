"""Releases in Prefect (real test server): publishing a release triggers the served train deployment,
the pipeline chains its stages (release → train), and the CLI's release, export and query --format jsonl."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId, FlowRunFilter, FlowRunFilterId
from typer.testing import CliRunner

from kurate.flows.cli import app
from kurate.flows.config import load_config
from test_release import scored_root

runner = CliRunner()
TINY = {"max_steps": 4, "checkpoint_every": 2, "log_every": 0, "batch_size": 2, "seq_len": 16,
        "model_options": {"vocab_size": 300, "d_model": 32, "n_layer": 1, "n_head": 2}}


def _config(root: str, stages: list[str]):
    return load_config(None, [], {"root": root, "stages": stages, "ray": {"executor": "local"},
                                  "train": {"model": "bpe", "overrides": TINY, "data": {"release": "default"}}})


def _train_runs(deployment_id, root: str | None = None) -> list:
    """The deployment's flow runs (on ``root``: the session's server keeps other tests' runs of the same deployment)."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))
    return sorted((r for r in runs if root is None or r.parameters["config"]["root"] == root), key=lambda r: r.created)


def _poll(found, timeout_s: float = 120.0, poll_s: float = 1.0):
    """``found()`` once it is truthy, else its last value after ``timeout_s`` (a bound, not a timing assertion)."""
    deadline = time.monotonic() + timeout_s
    while not (value := found()) and time.monotonic() < deadline:
        time.sleep(poll_s)
    return value


def _published_versions(root: str) -> list[int]:
    """The versions of the `kurate.release.published` events the server stored for this root."""
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
    from prefect.events.schemas.events import ResourceSpecification

    from kurate.flows.release import root_label

    only_this_root = EventResourceFilter(labels=ResourceSpecification({"kurate.root": root_label(root)}))
    with get_client(sync_client=True) as client:
        page = client.read_events(EventFilter(event=EventNameFilter(name=["kurate.release.published"]),
                                              resource=only_this_root), limit=50)
    return sorted(e.payload["version"] for e in page.events)


def test_publishing_a_release_starts_a_train_run(prefect_server, tmp_path):
    from kurate.flows.config import PipelineConfig
    from kurate.flows.deployments import build_deployments
    from kurate.flows.release import release
    from test_release import commit_curated

    root = scored_root(tmp_path / "root")
    config = _config(root, ["release", "train"])
    (train,) = [d for d in build_deployments(config) if d.name == "served-train"]
    deployment_id = train.apply()
    with get_client(sync_client=True) as client:
        automations = client.read_automations_by_name(train.triggers[0].name)
        assert automations and automations[0].trigger.expect == {"kurate.release.published"}

    # the server loads a new automation as it commits it; the bounded poll covers a slow event path
    published = release(config)
    assert published["created"] and published["version"] == 1
    runs = _poll(lambda: _train_runs(deployment_id, root))
    assert len(runs) == 1, "publishing the release made no train flow run"
    first = runs[0].parameters["config"]
    assert first["train"]["data"] == {"release": "default", "version": 1} and first["train"]["name"] == "demo-v1"
    assert first["root"] == root

    # the same config and inputs: no new version, no event, no second run
    assert release(config)["created"] is False
    assert not _poll(lambda: len(_train_runs(deployment_id, root)) > 1, timeout_s=10), "re-publishing made a second run"

    # a new version trains its own run on that version (not v1's finished checkpoint, not "latest")
    commit_curated(root, "b", [{"id": "new-doc", "text": "Ein ganz neuer Text über den Markt in Köln.", "language": "de"}])
    assert release(config)["version"] == 2
    _poll(lambda: len(_train_runs(deployment_id, root)) >= 2)
    runs = _train_runs(deployment_id, root)
    assert len(runs) == 2, f"publishing v2 made {len(runs) - 1} more train flow runs, expected one"
    second = runs[1].parameters["config"]
    assert second["train"]["data"] == {"release": "default", "version": 2} and second["train"]["name"] == "demo-v2"
    assert PipelineConfig.model_validate(second).train.run_dir(root).endswith("checkpoints/demo-v2-bpe")
    # the server stored one event per new version: the unchanged re-publish emitted none
    _poll(lambda: len(_published_versions(root)) >= 2, timeout_s=60)
    assert _published_versions(root) == [1, 2]


@pytest.mark.e2e
def test_the_pipeline_chains_release_then_train(prefect_server, tmp_path, one_torch_thread):
    from kurate.flows.pipeline import pipeline
    from kurate.storage.catalog import Catalog

    root = scored_root(tmp_path / "root")
    state = pipeline(_config(root, ["release", "train"]), return_state=True)
    results = state.result()
    assert results["release"]["version"] == 1 and results["train"]["release"] == "default"
    with get_client(sync_client=True) as client:
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
    by_name = {t.name.rsplit("-", 1)[0]: t for t in tasks}  # the sub-flow runs' tracking task runs
    waits = [i.id for i in by_name["train-stage"].task_inputs.get("wait_for", [])]
    assert waits == [by_name["release"].id]  # train waits on release: the UI draws release → train
    assert "wait_for" not in by_name["release"].task_inputs
    assert Catalog(root).query("select count(*) n from trained_on t where t.id not in (select id from release_documents)"
                               ).to_pylist() == [{"n": 0}]


def test_cli_release_export_and_jsonl_query(prefect_server, tmp_path):
    root = scored_root(tmp_path / "root")
    done = runner.invoke(app, ["release", "--root", root, "--set", "ray.executor=local"])
    assert done.exit_code == 0, done.output
    assert "default@v1 (new version): 26 documents" in done.output
    again = runner.invoke(app, ["release", "--root", root])
    assert "default@v1 (unchanged)" in again.output
    other = runner.invoke(app, ["release", "--root", root, "--name", "german", "--set", "release.sources=[{dataset: curated, languages: [de]}]"])
    assert "german@v1 (new version): 20 documents" in other.output, other.output

    out = tmp_path / "export"
    exported = runner.invoke(app, ["export", "--release", "default@v1", "--root", root, "--format", "jsonl", "--to", str(out)])
    assert exported.exit_code == 0, exported.output
    lines = [json.loads(line) for f in sorted((out / "data").glob("*.jsonl")) for line in f.read_text().splitlines()]
    assert len(lines) == 26 and {"id", "text", "language", "source"} <= set(lines[0])
    assert (out / "README.md").read_text().startswith("---\n")
    parquet = runner.invoke(app, ["export", "--release", "default", "--root", root, "--to", f"file://{tmp_path / 'pq'}"])
    assert parquet.exit_code == 0 and sorted(p.name for p in (tmp_path / "pq" / "data").iterdir()) == sorted(
        p.name for p in (Path(root) / "releases/default/v1/data").iterdir())
    missing = runner.invoke(app, ["export", "--release", "default@v9", "--root", root, "--to", str(tmp_path / "x")])
    assert missing.exit_code == 1 and "has no version 9" in missing.output
    bad = runner.invoke(app, ["export", "--release", "default@vx", "--root", root, "--to", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "expected NAME or NAME@vK" in bad.output and "Traceback" not in bad.output, bad.output
    again = runner.invoke(app, ["export", "--release", "default", "--root", root, "--to", str(out)])
    assert again.exit_code == 1 and f"export target {out} is not empty" in again.output, again.output

    rows = runner.invoke(app, ["query", "select name, version, documents from releases order by name", "--root", root, "-f", "jsonl"])
    assert [json.loads(line) for line in rows.output.splitlines()] == [
        {"name": "default", "version": 1, "documents": 26}, {"name": "german", "version": 1, "documents": 20}]


def test_a_second_release_version_starts_one_continual_run(prefect_server, tmp_path):
    """v1 starts a train run and no continual run; an unchanged re-publish starts neither; v2 starts
    exactly one continual run: old = v1 (the v1 train run's checkpoint), new = v2."""
    from kurate.flows.config import PipelineConfig
    from kurate.flows.deployments import build_deployments
    from kurate.flows.release import release
    from test_release import commit_curated

    root = scored_root(tmp_path / "root")
    config = _config(root, ["release", "train", "continual"])
    served = {d.name: d for d in build_deployments(config)}
    train_id, continual_id = served["served-train"].apply(), served["served-continual"].apply()

    assert release(config)["version"] == 1
    # the train run shows the event went through the triggers; the continual trigger did not answer v1
    assert len(_poll(lambda: _train_runs(train_id, root))) == 1
    assert _train_runs(continual_id, root) == [], "publishing v1 started a continual run"
    assert release(config)["created"] is False
    assert not _poll(lambda: _train_runs(continual_id, root), timeout_s=10), "re-publishing v1 started a continual run"

    commit_curated(root, "b", [{"id": "new-doc", "text": "Ein ganz neuer Text über den Markt in Köln.", "language": "de"}])
    assert release(config)["version"] == 2
    _poll(lambda: _train_runs(continual_id, root))
    _poll(lambda: len(_train_runs(train_id, root)) >= 2)  # v2's own train run: the event was answered by both triggers
    assert not _poll(lambda: len(_train_runs(continual_id, root)) > 1, timeout_s=5)
    runs = _train_runs(continual_id, root)
    assert len(runs) == 1, f"publishing v2 started {len(runs)} continual runs, expected one"
    triggered = runs[0].parameters["config"]
    assert triggered["continual"]["data"] == {"release": "default", "old_version": 1, "new_version": 2, "new_only": True}
    assert triggered["continual"]["name"] == "continual-v2" and triggered["train"]["name"] == "demo-v1"
    parsed = PipelineConfig.model_validate(triggered)
    from kurate.flows.continual import checkpoint_of

    # it continues the checkpoint of v1's train run (the one the v1 event started)
    v1_train = _train_runs(train_id, root)[0].parameters["config"]
    assert checkpoint_of(parsed) == str(Path(PipelineConfig.model_validate(v1_train).train.run_dir(root)) / "checkpoint")
