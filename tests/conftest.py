"""Shared fixtures: real components only — a Prefect test server, a local Ray, a separate Ray head with
the Jobs API, an S3 server on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

REPO = Path(__file__).resolve().parents[1]


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A free port never handed out before in this test session: the kernel may offer the same
    ephemeral port twice in a row, and Ray refuses two components on one port."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


@pytest.fixture()
def one_torch_thread():
    """Tiny models train fastest on one thread (and do not fight other jobs for the cores)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def prefect_server():
    """One real Prefect API server (temporary, on 127.0.0.1) for the whole session; yields its URL."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield PREFECT_API_URL.value()


@pytest.fixture(scope="session")
def ray_local():
    """A private local Ray instance shared by the session (2 CPUs, as on CI): ``address="local"`` and a temp dir
    of its own, so it never attaches to another Ray running on the machine."""
    import shutil
    import tempfile

    import ray

    from kurate.flows.runner import private_ray_token

    temp_dir = tempfile.mkdtemp(prefix="kloc", dir="/tmp")  # Ray's socket paths must stay under 107 bytes
    private_ray_token(temp_dir)  # as a run's private Ray: a token of its own, never one written into ~/.ray
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING", _temp_dir=temp_dir)
    yield ray
    ray.shutdown()
    shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture()
def ray_head(tmp_path):
    """A separate local Ray head with the dashboard (Jobs API) on 127.0.0.1, stopped afterwards."""
    import shutil
    import tempfile

    short_tmp = tempfile.mkdtemp(prefix="kray", dir="/tmp")  # Ray's socket paths must stay under 107 bytes
    port, dashboard = free_port(), free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    ray = Path(sys.executable).with_name("ray")
    proc = subprocess.Popen([str(ray), "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(port),
                             "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard), "--include-dashboard", "true",
                             "--num-cpus", "1", "--temp-dir", short_tmp,
                             # the session's own Ray runs on this machine too: give every port of this head its own
                             # value, or its dashboard agent fails to bind and jobs find "no available agent"
                             *[arg for flag in ("--dashboard-agent-listen-port", "--dashboard-agent-grpc-port",
                                                "--metrics-export-port", "--ray-client-server-port",
                                                "--runtime-env-agent-port", "--node-manager-port", "--object-manager-port")
                               for arg in (flag, str(free_port()))]],
                            # a log file, not a pipe: nobody reads a pipe while the test runs, and a full one blocks the head
                            env=env, stdout=subprocess.DEVNULL, stderr=open(Path(short_tmp) / "head.log", "w"),
                            # its own session: the GCS, raylet, dashboard and workers are stopped by session id
                            stdin=subprocess.DEVNULL, start_new_session=True)
    address = f"http://127.0.0.1:{dashboard}"
    deadline = time.time() + 120
    import httpx

    while True:
        try:
            if httpx.get(f"{address}/api/version", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            stop_session(proc.pid, grace=5)
            raise RuntimeError(f"ray head did not start: {(Path(short_tmp) / 'head.log').read_text()[-2000:]}")
        time.sleep(1)
    old = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    yield address
    if old is None:
        os.environ.pop("RAY_AUTH_MODE", None)
    else:
        os.environ["RAY_AUTH_MODE"] = old
    stop_session(proc.pid)  # never `ray stop`: it would stop every Ray on the machine
    shutil.rmtree(short_tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def demo_warc(tmp_path_factory):
    """The demo WARC (25 responses + 1 malformed record) and its manifest."""
    from kurate.demo.warc import build_demo_warc

    path = tmp_path_factory.mktemp("warc") / "demo.warc.gz"
    manifest = build_demo_warc(str(path))
    return path, manifest


@pytest.fixture(scope="session")
def s3_server():
    """A moto S3 server on 127.0.0.1; yields fsspec storage options for it with bucket `kurate` created."""
    port = free_port()
    moto = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen(
        [str(moto), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    endpoint = f"http://127.0.0.1:{port}"
    options = {"s3": {"endpoint_url": endpoint, "key": "testing", "secret": "testing", "client_kwargs": {"region_name": "us-east-1"}}}
    deadline = time.time() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("moto_server did not start")
            time.sleep(0.2)
    import boto3

    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                 region_name="us-east-1").create_bucket(Bucket="kurate")
    yield options
    proc.terminate()
    proc.wait(timeout=10)


def session_processes(sid: int) -> list:
    """Every live process of session ``sid`` (a ``ray start`` started with ``start_new_session``: its GCS,
    raylet, agents and workers, which Ray moves into process groups of their own but never out of the session)."""
    import psutil

    found = []
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) == sid and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (ProcessLookupError, PermissionError, psutil.Error):
            pass
    return found


def stop_session(sid: int, grace: float = 30) -> None:
    """SIGTERM the processes of session ``sid``, SIGKILL what is left after ``grace`` seconds (never `ray stop`)."""
    import psutil

    procs = session_processes(sid)
    for proc in procs:
        try:
            proc.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for proc in alive + session_processes(sid):
        try:
            proc.kill()
        except psutil.Error:
            pass


class LocalRayCluster:
    """A Ray head (0 CPUs, dashboard) and worker nodes (1 CPU each), each a `ray start --block` in its own
    session on this machine, every port its own free one."""

    def __init__(self, temp_dir: str):
        self.temp_dir = temp_dir
        self.gcs_port, self.dashboard_port = free_port(), free_port()
        self.address = f"127.0.0.1:{self.gcs_port}"
        self.dashboard = f"http://127.0.0.1:{self.dashboard_port}"
        self.env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
        self.env.pop("RAY_ADDRESS", None)
        self.nodes: dict[str, subprocess.Popen] = {}

    def _ports(self, index: int) -> list[str]:
        flags = ("--dashboard-agent-listen-port", "--dashboard-agent-grpc-port", "--metrics-export-port",
                 "--runtime-env-agent-port", "--node-manager-port", "--object-manager-port")
        # worker ports in a range of their own per node (the default range is shared)
        return [a for f in flags for a in (f, str(free_port()))] + [
            "--min-worker-port", str(20000 + 1000 * index), "--max-worker-port", str(20999 + 1000 * index)]

    def _start(self, name: str, args: list[str]) -> None:
        ray = Path(sys.executable).with_name("ray")
        log = open(Path(self.temp_dir) / f"{name}.log", "w")
        self.nodes[name] = subprocess.Popen([str(ray), "start", "--block", *args], env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    def alive(self, name: str) -> bool:
        """Whether the node holding resource ``name`` is registered and alive (Ray's state API)."""
        from ray.util.state import list_nodes

        return any(n.state == "ALIVE" and name in n.resources_total for n in list_nodes(address=self.dashboard))

    def start_head(self) -> None:
        import httpx

        self._start("head", ["--head", "--port", str(self.gcs_port), "--num-cpus", "0", "--include-dashboard", "true",
                             "--dashboard-host", "127.0.0.1", "--dashboard-port", str(self.dashboard_port),
                             "--ray-client-server-port", str(free_port()), "--temp-dir", self.temp_dir, *self._ports(0)])
        self._wait(lambda: httpx.get(f"{self.dashboard}/api/version", timeout=2).status_code == 200, "head")

    def add_worker(self, name: str, attempts: int = 3) -> None:
        """A worker node with 1 CPU and resource ``name``; on a loaded machine a raylet can miss Ray's fixed 30 s
        registration window, so a node that dies while starting is started again."""
        for attempt in range(attempts):
            self._start(name, ["--address", self.address, "--num-cpus", "1", "--resources", f'{{"{name}": 1}}',
                               *self._ports(len(self.nodes))])
            try:
                self._wait(lambda: self.alive(name), name)
                return
            except RuntimeError:
                stop_session(self.nodes.pop(name).pid, grace=5)
                if attempt == attempts - 1:
                    raise

    def _wait(self, ready, name: str, timeout: float = 180) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if ready():
                    return
            except Exception:  # noqa: BLE001 - not up yet
                pass
            if self.nodes[name].poll() is not None:
                break
            time.sleep(1)
        raise RuntimeError(f"ray node {name} did not start: {(Path(self.temp_dir) / f'{name}.log').read_text()[-2000:]}")

    def raylet(self, name: str):
        """The raylet process of node ``name``."""
        return next(p for p in session_processes(self.nodes[name].pid) if p.name() == "raylet")

    def stop(self) -> None:
        for name in reversed(list(self.nodes)):
            stop_session(self.nodes[name].pid)


@pytest.fixture(scope="module")
def ray_cluster():
    """A head and two worker nodes (``worker1``, ``worker2``) on this machine; stopped by session id afterwards."""
    import shutil
    import tempfile

    cluster = LocalRayCluster(tempfile.mkdtemp(prefix="kcl", dir="/tmp"))  # socket paths must stay under 107 bytes
    try:
        cluster.start_head()
        cluster.add_worker("worker1")
        cluster.add_worker("worker2")
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(cluster.temp_dir, ignore_errors=True)
