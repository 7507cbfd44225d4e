"""kurate on a real multi-node Ray cluster (issue: run on a Ray cluster) and what a driver leaves after a
SIGKILL: a head and two worker nodes started with `ray start` on this machine, the kurate driver run from
another directory with a relative root; the task → node mapping read from Ray's state API; a worker's
raylet killed mid-run; the private Ray and the temporary Prefect server of a killed driver."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from conftest import free_port, stop_session
from kurate.annotators.embedder import EmbedderConfig
from kurate.annotators.synthesis.config import EMBEDDED_GENERATOR_MODEL
from kurate.errors import KurateError
from kurate.flows.config import PipelineConfig, load_config
from kurate.storage.catalog import Catalog

KURATE = str(Path(sys.executable).with_name("kurate"))
SHARDS = 4


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "PREFECT_API"))}
    env.update(extra)
    return env


def _output(root: Path) -> dict:
    """What a curate run produced, independent of timing: documents and reject counts."""
    catalog = Catalog(str(root))
    return {
        "curated": catalog.query("select id, url, language, text from curated order by id").to_pylist(),
        "rejects": catalog.query("select stage, reason, count(*) as n from rejects group by all order by all").to_pylist(),
    }


@pytest.fixture(scope="module")
def work(tmp_path_factory, demo_warc):
    """Input shards (copies of the demo WARC) and the client's own working directory beside them."""
    base = tmp_path_factory.mktemp("cluster")
    (base / "inputs").mkdir()
    for i in range(SHARDS):
        shutil.copy(demo_warc[0], base / "inputs" / f"shard-{i}.warc.gz")
    (base / "client").mkdir()
    return base


# The per-document extraction time limit turns a slow page into a reject: on a loaded machine that would make
# the output depend on timing, so the runs compared here get a limit no page reaches.
NO_TIMEOUT = ("--set", "curate.ingest.extract_timeout_s=600")


# Every wait below is bounded, and the bounds of a test add up to less than its pytest timeout (the module
# fixtures — the cluster and the single-process reference — count against the first test that uses them).
RUN_TIMEOUT = 300


def _curate(work: Path, root: str, env: dict, *extra: str, timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run([KURATE, "--quiet", "curate", "-i", "../inputs/*.warc.gz", "-r", root, *NO_TIMEOUT, *extra],
                          cwd=work / "client", env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def single_process(work, prefect_server):
    """The reference: the same inputs curated in one process (executor local)."""
    run = _curate(work, "runs/single", _env(PREFECT_API_URL=prefect_server), "--set", "ray.executor=local")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return _output(work / "client" / "runs" / "single")


def test_paths_are_absolute_after_load(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models" / "judge").mkdir(parents=True)
    (tmp_path / "models" / "tok").mkdir()
    config = load_config(given={
        "root": "runs/r", "curate": {"inputs": ["data/*.warc.gz", "s3://cc/x.warc.gz"], "dedup": {"reference_roots": ["../old"]}},
        "train": {"checkpoint_dir": "~/ckpt"},
        "annotate": {"judges": [
            {"name": "local", "model": "models/judge", "prompt": "prompts/judge.yaml", "tokenizer": "./models/tok"},
            {"name": "hub", "model": "HuggingFaceTB/SmolLM2-360M-Instruct", "prompt": "fineweb_edu", "tokenizer": "org/tok"}]},
        "synthesize": {"prompts": {"wikipedia": "prompts/wiki.yml"}, "gates": {"filter_params": "params.yaml"},
                       "generator": {"model": "models/judge"}},
        "jql": {"embedder": {"model": "./models/judge"}}})
    assert config.root == str(tmp_path / "runs" / "r")
    assert config.curate.inputs == [str(tmp_path / "data" / "*.warc.gz"), "s3://cc/x.warc.gz"]
    assert config.curate.dedup.reference_roots == [str(tmp_path.parent / "old")]
    assert config.train.checkpoint_dir == os.path.expanduser("~/ckpt")
    # a YAML file or an existing local path is resolved; an HF id, a built-in name or embedded: model is not
    local, hub = config.annotate.judges
    assert (local.model, local.prompt, local.tokenizer) == (
        str(tmp_path / "models" / "judge"), str(tmp_path / "prompts" / "judge.yaml"), str(tmp_path / "models" / "tok"))
    assert (hub.model, hub.prompt, hub.tokenizer) == ("HuggingFaceTB/SmolLM2-360M-Instruct", "fineweb_edu", "org/tok")
    assert config.synthesize.prompts == {"wikipedia": str(tmp_path / "prompts" / "wiki.yml")}
    assert config.synthesize.gates.filter_params == str(tmp_path / "params.yaml")
    assert config.synthesize.generator.model == config.jql.embedder.model == str(tmp_path / "models" / "judge")
    defaults = PipelineConfig(root="memory://x")
    assert (defaults.jql.embedder.model, defaults.synthesize.generator.model) == (EmbedderConfig().model, EMBEDDED_GENERATOR_MODEL)
    assert PipelineConfig(root="memory://x").root == "memory://x"
    # resolved once: a config sent as JSON to a worker or a Ray Job keeps the driver's paths
    monkeypatch.chdir("/")
    assert PipelineConfig.model_validate_json(config.model_dump_json()).root == config.root


def test_workers_get_the_drivers_settings(monkeypatch):
    from kurate.flows.runner import worker_env

    monkeypatch.setenv("KURATE_CACHE", "/shared/cache")
    monkeypatch.setenv("HF_HOME", "/shared/hf")
    monkeypatch.setenv("PYTHONPATH", "/home/me/project")
    env = worker_env()
    assert env["KURATE_CACHE"] == "/shared/cache" and env["HF_HOME"] == "/shared/hf"
    assert "PYTHONPATH" not in env  # workers import the installed package, never the caller's folders


def test_a_dashboard_address_is_not_a_cluster_address():
    from kurate.flows.runner import _connect

    # _connect, not ensure_ray: in a test session another test's Ray may already be initialized in this process
    with pytest.raises(KurateError, match="dashboard .* not a cluster address"):
        _connect("http://127.0.0.1:8265", {})


PRIVATE_RAY_PROBE = """
import os, ray
from kurate.flows.config import RayConfig
from kurate.flows.runner import _gcs_wants_token, ensure_ray
ensure_ray(RayConfig(num_cpus=1))
token_path = ray.get(ray.remote(lambda: os.environ.get("RAY_AUTH_TOKEN_PATH")).remote())
print(token_path, _gcs_wants_token(ray.get_runtime_context().gcs_address))
"""


def test_private_ray_has_a_token_of_its_own_and_leaves_home_alone(tmp_path):
    """Ray 2.60 turns token auth on for a new local cluster and, without a token, writes ~/.ray/auth_token:
    the private Ray keeps token auth with a token in its own temp dir, removed with it."""
    home = tmp_path / "home"
    home.mkdir()
    run = subprocess.run([sys.executable, "-c", PRIVATE_RAY_PROBE], env=_env(HOME=str(home), RAY_USAGE_STATS_ENABLED="0"),
                         capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert run.returncode == 0, run.stderr[-3000:]
    token_path, wants_token = run.stdout.split()
    assert token_path.startswith("/tmp/kurate-ray-") and wants_token == "True"  # workers share it; no token, no entry
    assert not os.path.exists(token_path)  # removed with the private Ray's temp dir at exit
    assert list(home.iterdir()) == []


def _call_tasks(cluster) -> list:
    from ray.util.state import list_tasks

    return [t for t in list_tasks(address=cluster.dashboard, limit=10_000, raise_on_missing_output=False)
            if t.name.endswith("_call")]


@pytest.mark.e2e
@pytest.mark.timeout(2100)  # the fixtures (3 nodes, ≤ 180 s each, a worker started up to 3 times; one run) + a run
def test_curate_spreads_over_both_workers_and_matches_one_process(ray_cluster, work, single_process, prefect_server):
    assert ray_cluster.alive("worker1") and ray_cluster.alive("worker2")
    run = _curate(work, "runs/multi", _env(RAY_ADDRESS=ray_cluster.address, RAY_AUTH_MODE="disabled", PREFECT_API_URL=prefect_server))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    # the relative root is the client's folder, not the head's or a worker's working directory
    assert (work / "client" / "runs" / "multi" / "_manifests").is_dir()
    from ray.util.state import list_nodes

    # which node each shard task (filter and finalize) ran on, by the node's own resource name
    names = {n.node_id: sorted(r for r in n.resources_total if r.startswith("worker")) for n in list_nodes(address=ray_cluster.dashboard)}
    ran_on = {t.node_id for t in _call_tasks(ray_cluster) if t.state == "FINISHED"}
    assert {name for node in ran_on for name in names.get(node, ["?"])} == {"worker1", "worker2"}, (ran_on, names)
    assert _output(work / "client" / "runs" / "multi") == single_process


@pytest.mark.e2e
@pytest.mark.timeout(2700)  # the fixtures (when this test runs alone) + a wait, the killed run and a re-run
def test_worker_node_killed_mid_run_then_rerun_matches(ray_cluster, work, single_process, prefect_server):
    from ray.util.state import list_nodes

    env = _env(RAY_ADDRESS=ray_cluster.address, RAY_AUTH_MODE="disabled", PREFECT_API_URL=prefect_server)
    worker2 = {n.node_id for n in list_nodes(address=ray_cluster.dashboard) if n.state == "ALIVE" and "worker2" in n.resources_total}
    assert len(worker2) == 1, worker2
    seen_before = {t.task_id for t in _call_tasks(ray_cluster)}
    proc = subprocess.Popen([KURATE, "--quiet", "curate", "-i", "../inputs/*.warc.gz", "-r", "runs/killed", *NO_TIMEOUT],
                            cwd=work / "client", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # the kill must hit a shard task while it runs on worker2, or the retry path would never be taken
        deadline = time.time() + RUN_TIMEOUT
        while not any(t.state == "RUNNING" and t.task_id not in seen_before and t.node_id in worker2
                      for t in _call_tasks(ray_cluster)):
            assert proc.poll() is None and time.time() < deadline, "the run ended before a shard task ran on worker2"
            time.sleep(0.2)
        ray_cluster.raylet("worker2").kill()  # SIGKILL: the node and its workers are lost mid-run
        out, err = proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    if proc.returncode != 0:  # failed clearly: one line, no traceback
        assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("kurate curate: "), err[-3000:]
        rerun = _curate(work, "runs/killed", env)
        assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert _output(work / "client" / "runs" / "killed") == single_process


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.e2e
def test_driver_sigkill_leaves_no_prefect_server_ray_or_workers(work, tmp_path):
    """Issue 16 case 11: no $RAY_ADDRESS and no Prefect server: the driver starts a private Ray and a temporary
    Prefect server; after a SIGKILL of the driver both (and Ray's agents and task workers) are gone soon."""
    env = _env(PREFECT_HOME=str(tmp_path / "prefect-home"))
    proc = subprocess.Popen([KURATE, "--quiet", "curate", "-i", "../inputs/*.warc.gz", "-r", str(tmp_path / "root")],
                            cwd=work / "client", env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    seen: dict[int, psutil.Process] = {}  # every descendant seen while the driver lived: cleaned up on failure too

    def descendants() -> list[psutil.Process]:
        found = [p for p in _descendants(proc.pid) if _alive(p)]
        seen.update((p.pid, p) for p in found)
        return found

    try:
        deadline = time.time() + RUN_TIMEOUT
        # wait until the private Ray runs a shard task (ray::_call) beside the Prefect server
        while not any("_call" in " ".join(_cmdline(p)) for p in descendants()):
            assert proc.poll() is None and time.time() < deadline, "the run ended before a shard task ran"
            time.sleep(0.5)
        started = descendants()
        names = " ".join(" ".join(_cmdline(p)) + " " + _name(p) for p in started)
        assert "raylet" in names and "gcs_server" in names  # a private Ray: every Ray process is the driver's own
        assert "prefect" in names or "uvicorn" in names  # the temporary Prefect server
        temp_dirs = {a for p in started for a in _cmdline(p) for a in a.split("=") if a.startswith("/tmp/kurate-ray-")}
        roots = {d.split("/session_")[0] for d in temp_dirs}
        assert roots
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.time() + 120  # a bounded wait, not a timing claim
        while (any(_alive(p) for p in started) or any(os.path.exists(d) for d in roots)) and time.time() < deadline:
            time.sleep(0.5)
        left = [(p.pid, _name(p)) for p in started if _alive(p)]
        assert not left, left
        assert not any(os.path.exists(d) for d in roots), roots  # the private Ray's temp dir is removed too
    finally:
        if proc.poll() is None:
            proc.kill()
        for p in seen.values():  # psutil refuses a PID that was reused meanwhile
            try:
                p.kill()
            except psutil.Error:
                pass


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.Error:
        return []


def _name(proc: psutil.Process) -> str:
    try:
        return proc.name()
    except psutil.Error:
        return ""


@pytest.mark.e2e
def test_token_auth_cluster_refused_with_one_line(work, tmp_path, prefect_server):
    """A cluster with token auth and a client with RAY_AUTH_MODE=disabled: one line saying what to set."""
    import secrets
    import tempfile

    temp_dir = tempfile.mkdtemp(prefix="ktok", dir="/tmp")
    port = free_port()
    head = subprocess.Popen([str(Path(sys.executable).with_name("ray")), "start", "--head", "--block", "--port", str(port),
                             "--num-cpus", "1", "--include-dashboard", "false", "--temp-dir", temp_dir,
                             "--ray-client-server-port", str(free_port()), "--node-manager-port", str(free_port()),
                             "--object-manager-port", str(free_port()), "--metrics-export-port", str(free_port()),
                             "--dashboard-agent-listen-port", str(free_port()), "--dashboard-agent-grpc-port", str(free_port()),
                             "--runtime-env-agent-port", str(free_port())],
                            # a token of its own: `ray start` refuses token auth without one, and ~/.ray/auth_token
                            # exists only on machines where someone generated it
                            env=_env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32), RAY_USAGE_STATS_ENABLED="0"),
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        from kurate.flows.runner import _gcs_wants_token

        deadline = time.time() + 180
        while not _gcs_wants_token(f"127.0.0.1:{port}"):
            assert head.poll() is None and time.time() < deadline, "the token-auth head did not start"
            time.sleep(1)
        run = _curate(work, str(tmp_path / "root"), _env(RAY_AUTH_MODE="disabled", PREFECT_API_URL=prefect_server),
                      "--set", f"ray.address=127.0.0.1:{port}")
        assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]
        last = run.stderr.strip().splitlines()[-1]
        assert "uses token authentication" in last and "RAY_AUTH_MODE=token" in last and "Traceback" not in run.stderr
    finally:
        stop_session(head.pid)
        shutil.rmtree(temp_dir, ignore_errors=True)
