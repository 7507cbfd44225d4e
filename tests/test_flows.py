"""Real Prefect runs (test server) with shard work on a real local Ray, and roots on memory:// and S3."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import fsspec
import pytest
import yaml
from prefect.client.orchestration import get_client
from typer.testing import CliRunner

from kurate.flows.artifacts import artifact_key
from kurate.flows.cli import app
from kurate.flows.config import load_config
from kurate.flows.curate import curate
from kurate.flows.pipeline import pipeline
from kurate.storage.catalog import Catalog

runner = CliRunner()


def _artifacts(flow_run_id) -> dict:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts()
    return {a.key: a for a in found if a.flow_run_id == flow_run_id}


@pytest.mark.e2e
def test_curate_flow_on_ray_commits_publishes_and_skips_on_rerun(prefect_server, ray_local, demo_warc, tmp_path):
    path, manifest = demo_warc
    config = load_config(None, ["curate.ingest.extractor=resiliparse"], {"root": str(tmp_path / "root"), "curate": {"inputs": [str(path)]}})
    state = curate(config, return_state=True)
    summary = state.result()
    assert summary["committed"] == 1 and summary["records"] == manifest.responses + manifest.malformed
    artifacts = _artifacts(state.state_details.flow_run_id)
    key = functools.partial(artifact_key, config.root)  # every key carries the root (tests/test_artifacts.py)
    assert {key("curate-shards"), key("curate-summary")} <= set(artifacts)
    table = json.loads(artifacts[key("curate-shards")].data)
    assert table[0]["status"] == "committed" and table[0]["kept"] == summary["curated"]
    assert {key("curate-funnel"), key("curate-funnel-stages"), key("curate-funnel-languages")} <= set(artifacts)
    assert "data:image/png;base64," in artifacts[key("curate-funnel")].data
    assert (tmp_path / "root" / "reports" / "curate-funnel.png").stat().st_size > 10_000
    assert "malformed_record" in artifacts[key("curate-summary")].data

    again = curate(config)
    assert again["committed"] == 0 and again["skipped"] == 1
    catalog = Catalog(config.root)
    assert catalog.query("select count(*) n from curated").to_pylist() == [{"n": summary["curated"]}]
    assert (tmp_path / "root" / "catalog.duckdb").exists()


@pytest.mark.e2e
def test_kurate_run_pipeline_from_a_yaml_config(prefect_server, ray_local, demo_warc, tmp_path):
    path, manifest = demo_warc
    cfg = tmp_path / "p.yaml"
    root = tmp_path / "root"
    cfg.write_text(yaml.safe_dump({"root": str(root), "stages": ["curate"], "curate": {"inputs": [str(path)]}}))
    out = runner.invoke(app, ["run", str(cfg)])
    assert out.exit_code == 0, out.output
    total = runner.invoke(app, ["query", "select (select count(*) from curated) + (select count(*) from rejects) as n", "--root", str(root), "-f", "json"])
    assert json.loads(total.output) == [{"n": manifest.responses + manifest.malformed}]
    status = runner.invoke(app, ["status", "--root", str(root)])
    assert [line.split() for line in status.output.splitlines() if line.startswith("curate ")] == [["curate", "1", "1", "0", "0"]]


@pytest.mark.e2e
def test_memory_root(prefect_server, demo_warc):
    path, manifest = demo_warc
    config = load_config(None, [], {"root": "memory://kurate-test", "curate": {"inputs": [str(path)]}})
    summary = pipeline(config)["curate"]
    assert summary["records"] == manifest.responses + manifest.malformed
    rows = Catalog("memory://kurate-test").query("select count(*) n from rejects").to_pylist()
    assert rows == [{"n": summary["rejected"]}]
    fsspec.filesystem("memory").rm("/kurate-test", recursive=True)


@pytest.mark.e2e
def test_s3_input_and_root_on_a_loopback_s3_server(prefect_server, ray_local, s3_server, demo_warc, tmp_path):
    path, manifest = demo_warc
    fs = fsspec.filesystem("s3", **s3_server["s3"])
    fs.put_file(str(path), "kurate/crawl/segment-1/demo.warc.gz")
    cfg = {
        "root": "s3://kurate/curated-run",
        "storage_options": s3_server,
        "curate": {"inputs": ["s3://kurate/crawl/*/*.warc.gz"], "ingest": {"extractor": "resiliparse"}},
    }
    config_file = tmp_path / "s3.yaml"
    config_file.write_text(yaml.safe_dump(cfg))
    out = runner.invoke(app, ["run", str(config_file)])
    assert out.exit_code == 0, out.output
    assert fs.glob("kurate/curated-run/curated/*.parquet") and fs.glob("kurate/curated-run/_manifests/curate/*.json")
    total = runner.invoke(app, ["query", "select (select count(*) from curated) + (select count(*) from rejects) as n",
                                "--root", "s3://kurate/curated-run", "--config", str(config_file), "-f", "json"])
    assert total.exit_code == 0, total.output
    assert json.loads(total.output) == [{"n": manifest.responses + manifest.malformed}]
    refused = runner.invoke(app, ["query", "select * from read_csv('/etc/passwd')", "--root", "s3://kurate/curated-run", "--config", str(config_file)])
    assert refused.exit_code == 2


def test_status_reports_pending_and_temporary_work(tmp_path, demo_warc):
    from kurate.storage.shards import ShardStore, UnitKey
    from kurate.tasks.curate import run_local

    root = str(tmp_path / "root")
    path = str(demo_warc[0])
    done = run_local([path], root)["final"][0]
    store = ShardStore(root)
    missing = "s3://crawl/CC-MAIN-2026-40/segment-7.warc.gz"
    store.write_plan("curate", "f" * 16, {done.unit: path, UnitKey("curate", missing, "f" * 16).name: missing})
    store.open_unit(UnitKey("curate-filter", missing, "h"), ["staged"])  # a writer that never finished
    out = runner.invoke(app, ["status", "--root", root])
    assert "pending in stage curate (1 of 2 planned units" in out.output
    assert f"  {missing}" in out.output
    assert "temporary units of stage curate-filter" in out.output


def test_deployments_for_serve(prefect_server):
    from kurate.flows.deployments import build_deployments

    config = load_config(Path(__file__).resolve().parents[1] / "configs" / "demo.yaml")
    deployments = build_deployments(config, cron="0 3 * * *")
    assert [d.name for d in deployments] == ["served-pipeline", "served-curate", "served-annotate", "served-distill",
                                             "served-score", "served-synthesize", "served-release", "served-train",
                                             "served-continual"]
    # a published release of the demo root starts the train deployment (tests/test_release_flows.py runs it)
    (trigger,) = deployments[7].triggers
    assert trigger.expect == {"kurate.release.published"} and trigger.match["prefect.resource.id"] == ["kurate.release.default"]
    # each published version trains its own run, on that version (deployments.py: release_trigger)
    assert trigger.parameters["config"]["train"]["data"] == {"release": "default", "version": "{{ event.payload.version }}"}
    assert trigger.parameters["config"]["train"]["name"] == "demo-v{{ event.payload.version }}"
    # README's list of them: tests/test_infra.py
    assert deployments[0].schedules[0].schedule.cron == "0 3 * * *"
    assert deployments[1].parameters["config"]["root"] == os.path.abspath("runs/demo")  # load_config resolves local roots


def test_workers_run_in_process_or_as_a_ray_actor_pool(ray_local):
    import functools
    import os

    from kurate.flows.config import RayConfig
    from kurate.flows.runner import WorkerResources, map_on_workers

    class Scaler:  # stands for a model: built once per worker, then called item after item
        def __init__(self, factor: int):
            self.factor, self.pid = factor, os.getpid()

        def scale(self, item: int) -> tuple[int, int]:
            return self.pid, item * self.factor

    def call(worker: Scaler, item: int) -> tuple[int, int]:
        return worker.scale(item)

    arrived = []
    # The local Ray has no GPU: a worker that wants one is placed without it instead of waiting forever.
    on_ray = map_on_workers(functools.partial(Scaler, 3), list(range(6)), call, WorkerResources(cpus=1, gpus=1),
                            RayConfig(), workers=2, on_result=arrived.append)
    assert sorted(value for _, value in on_ray) == [0, 3, 6, 9, 12, 15] and arrived == on_ray
    actors = {pid for pid, _ in on_ray}
    assert 1 <= len(actors) <= 2 and os.getpid() not in actors

    here = map_on_workers(functools.partial(Scaler, 3), list(range(6)), call, WorkerResources(), RayConfig(executor="local"), workers=2)
    assert here == [(os.getpid(), 3 * i) for i in range(6)]
    assert map_on_workers(functools.partial(Scaler, 3), [], call, WorkerResources(), RayConfig()) == []


def test_a_worker_holding_an_http_client_reserves_no_gpu():
    from kurate.flows.runner import WorkerResources

    assert WorkerResources.for_backend("openai", 0.5) == WorkerResources(cpus=0.5, gpus=0.0)
    assert WorkerResources.for_backend("transformers", 2).gpus == 1.0
    assert WorkerResources.for_backend("vllm", 1).gpus == 1.0


def test_a_failed_map_frees_its_actors(ray_local):
    """A failing call's traceback keeps the map's frame alive; its actors must still be released,
    or the next pool waits forever for their CPUs (seen as a hung test run)."""
    import time

    from kurate.flows.config import RayConfig
    from kurate.flows.runner import WorkerResources, map_on_workers

    def fail(worker, item):
        raise ValueError(f"item {item} failed")

    with pytest.raises(Exception, match="item"):
        map_on_workers(dict, [1, 2, 3], fail, WorkerResources(cpus=1), RayConfig(), workers=2)
    total = ray_local.cluster_resources()["CPU"]
    deadline = time.time() + 60
    while ray_local.available_resources().get("CPU", 0) < total and time.time() < deadline:
        time.sleep(0.5)
    assert ray_local.available_resources().get("CPU", 0) == total
