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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    """A local Ray instance shared by the session (2 CPUs, as on CI)."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


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
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
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
            proc.kill()
            raise RuntimeError(f"ray head did not start: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(1)
    old = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    yield address
    if old is None:
        os.environ.pop("RAY_AUTH_MODE", None)
    else:
        os.environ["RAY_AUTH_MODE"] = old
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
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
