"""Where work runs: one function per input shard (Ray tasks), or one loaded model per worker (Ray
actors), or both in this process (docs/ARCHITECTURE.md, "Where things run").

Prefect stays at the edge: a flow calls ``run_per_shard`` or ``map_on_workers`` from one coarse task
and gets back small results, with what the Ray workers printed (re-printed inside the task, so it
is in the flow run's logs) and a progress bar in the terminal (``flows/progress.py``). ``run_per_shard`` reports a shard that raises as its outcome, so the
others go on and a re-run redoes only what did not commit. A worker declares what it reserves
(``WorkerResources``); GPUs are only asked for when the cluster has them, so the same code runs on
a CPU-only cluster.
"""

from __future__ import annotations

import atexit
import io
import os
import shutil
import sys
import tempfile
import time
import traceback
import uuid
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence, TypeVar

from kurate.errors import KurateError
from kurate.flows.config import RayConfig
from kurate.flows.progress import progress_bar
from kurate.storage.fs import protocol_of

# Ray's driver replaces builtins.print with its own (tqdm_ray.safe_print, bound to the original print)
# the first time it relays a worker's log line; that would undo Prefect's log_prints patch for the
# rest of the process, and printed lines would stop reaching the flow run's logs.
os.environ.setdefault("RAY_TQDM_PATCH_PRINT", "0")

W = TypeVar("W")
T = TypeVar("T")
R = TypeVar("R")


@dataclass
class ShardOutcome:
    input: str
    result: Any = None
    error: str | None = None
    output: str = ""  # what the Ray task printed (forwarded to the driver's log)


ProgressCallback = Callable[[int, int, list[ShardOutcome]], None]


@dataclass(frozen=True)
class WorkerResources:
    """What one worker (a Ray task or actor) reserves: CPUs, and GPUs when the cluster has them.

    A fraction of a GPU is allowed (a small model can share one)."""

    cpus: float = 1.0
    gpus: float = 0.0

    @classmethod
    def for_backend(cls, backend: str, cpus: float) -> "WorkerResources":
        """A worker holding an LLM backend: a GPU when the backend loads a model (transformers, vllm),
        none when it is an HTTP client (openai) whose server holds the model."""
        from kurate.annotators.contracts import backend_class

        return cls(cpus=cpus, gpus=1.0 if backend_class(backend).wants_gpu else 0.0)


def in_process_only(root: str) -> bool:
    """A memory:// root lives inside this process: Ray workers would write somewhere else."""
    return protocol_of(root) == "memory"


def ensure_ray(config: RayConfig) -> None:
    """Connect to Ray once per process, by the connection rules of docs/ARCHITECTURE.md ("Where things run").

    * no ``ray.address`` and no ``$RAY_ADDRESS``: start a *private* local Ray for this run
      (``address="local"``: never attach to another instance on the machine), on loopback, with its
      own temp dir, stopped with the driver even after a SIGKILL (``flows/watchdog.py``);
    * an address: connect, and turn a version or auth-mode mismatch into one line saying what to do.

    Workers get the driver's ``KURATE_*`` and cache settings (``worker_env``): a private Ray's by inheritance,
    a cluster's through the job's runtime environment. When the config's root is a local folder and the cluster has more than one node,
    every node must see it (``check_root_on_nodes``)."""
    import ray

    if not ray.is_initialized():
        address = config.address or os.environ.get("RAY_ADDRESS")
        kwargs: dict[str, Any] = {"logging_level": "WARNING", "log_to_driver": True}
        if address:
            # A private Ray's workers inherit this process's environment; a cluster's get it from the job's
            # runtime environment — except inside a Ray Job, whose own runtime env carries it (Ray refuses both).
            if "RAY_JOB_CONFIG_JSON_ENV_VAR" not in os.environ:
                kwargs["runtime_env"] = {"env_vars": worker_env()}
            _connect(address, kwargs)
        else:
            _start_private_ray(config, kwargs)
    root = getattr(config, "_root", None)  # checked once per root (a process may serve several runs)
    if root:
        check_root_on_nodes(root)


# Settings a worker must share with the driver: kurate's own (model cache …) and the caches of the
# libraries that load models, so a model is converted or downloaded once, into the same place.
_CACHE_VARIABLES = ("HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_CACHE", "TRANSFORMERS_OFFLINE",
                    "SENTENCE_TRANSFORMERS_HOME", "TORCH_HOME", "XDG_CACHE_HOME")


def worker_env() -> dict[str, str]:
    """The driver's ``KURATE_*`` settings and model-cache variables, for Ray workers and Ray Jobs.

    No ``PYTHONPATH``: workers import the installed ``kurate`` package, so a caller's own ``models/``
    or ``tasks/`` folder can never shadow it."""
    return {k: v for k, v in os.environ.items() if k.startswith("KURATE_") or k in _CACHE_VARIABLES}


def _start_private_ray(config: RayConfig, kwargs: dict[str, Any]) -> None:
    import ray

    from kurate.flows.watchdog import start_watchdog

    # Ray's socket paths must stay under 107 bytes, and /tmp/ray is shared with every other Ray here.
    temp_dir = tempfile.mkdtemp(prefix="kurate-ray-", dir="/tmp")
    start_watchdog((temp_dir,))
    private_ray_token(temp_dir)
    # Meant to keep the node address on 127.0.0.1 (Ray's single-machine mode). Ray 2.60 reads it when ray is
    # imported, i.e. before this line, so the node still reports the machine's outward address and its GCS
    # listens on every interface: the private Ray's token (private_ray_token) is what keeps others out.
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    ray.init(address="local", num_cpus=config.num_cpus, include_dashboard=False, _temp_dir=temp_dir,
             _node_ip_address="127.0.0.1", **kwargs)
    atexit.register(_stop_private_ray, temp_dir)


def private_ray_token(temp_dir: str) -> str | None:
    """Give a new local Ray a token of its own when the user has none, so it never writes ``~/.ray/auth_token``.

    Ray 2.60's ``ray.init()`` of a new local cluster turns token auth on when ``RAY_AUTH_MODE`` is unset
    and, without a token (``$RAY_AUTH_TOKEN``, ``$RAY_AUTH_TOKEN_PATH``, ``~/.ray/auth_token``), generates
    one into the user's HOME. Token auth stays on (the private Ray's GCS is reachable from other users and
    machines, see ``_start_private_ray``): the token is a file in the private Ray's own temp dir (0600, removed with it), named by
    ``$RAY_AUTH_TOKEN_PATH``, which the GCS, raylet and workers inherit. An explicit ``RAY_AUTH_MODE`` or
    a token of the user's own is left to Ray. Returns the token file written, if any."""
    mode = os.environ.get("RAY_AUTH_MODE")
    if mode is not None and mode.lower() != "token":
        return None
    if (os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")
            or os.path.exists(os.path.join(os.path.expanduser("~"), ".ray", "auth_token"))):
        return None
    import secrets

    path = os.path.join(temp_dir, "auth_token")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))  # 256 bits, as Ray's own generator
    os.environ["RAY_AUTH_TOKEN_PATH"] = path
    return path


def _stop_private_ray(temp_dir: str) -> None:
    """At exit: stop the private Ray, then remove its temp dir (Ray's own exit hook, registered when ray was
    imported, would run after this one and find its folder gone)."""
    import ray

    ray.shutdown()
    shutil.rmtree(temp_dir, ignore_errors=True)


class RayConnectionError(KurateError):
    """The configured Ray cluster cannot be used from this client (address, version, auth mode)."""


def _connect(address: str, kwargs: dict[str, Any]) -> None:
    import ray

    if address.startswith(("http://", "https://")):
        raise RayConnectionError(
            f"Ray address {address} is a dashboard (Jobs API) address, not a cluster address",
            "use `kurate submit CONFIG --address " + address + "` to run there, or set ray.address / $RAY_ADDRESS "
            "to the cluster (HOST:6379, ray://HOST:10001 or auto)")
    mode = os.environ.get("RAY_AUTH_MODE", "unset")
    if mode != "token" and _gcs_wants_token(address):
        # Ray itself retries for ~20 s and then says only "Failed to connect": say why, at once.
        raise RayConnectionError(
            f"Ray at {address} uses token authentication and this client has RAY_AUTH_MODE={mode}",
            "set RAY_AUTH_MODE=token and the cluster's token (RAY_AUTH_TOKEN or ~/.ray/auth_token)")
    try:
        ray.init(address=address, **kwargs)
    except Exception as exc:  # noqa: BLE001 - Ray's connection errors become one line
        text = " ".join(str(exc).split())
        lowered = text.lower()
        if "version mismatch" in lowered or "version" in lowered and "python" in lowered and "ray" in lowered:
            raise RayConnectionError(
                f"Ray at {address} runs another Ray or Python version than this client (ray {ray.__version__}, "
                f"Python {sys.version.split()[0]}): {text[:300]}",
                "install the cluster's ray version (and Python minor version) here, or run the driver on the "
                "cluster with `kurate submit`") from None
        if any(word in lowered for word in ("auth", "token", "unauthenticated", "permission denied")):
            raise RayConnectionError(
                f"Ray at {address} refused this client's authentication (RAY_AUTH_MODE={mode}): {text[:300]}",
                "a token-auth cluster needs RAY_AUTH_MODE=token and its token (RAY_AUTH_TOKEN or ~/.ray/auth_token); "
                "a cluster started with RAY_AUTH_MODE=disabled needs RAY_AUTH_MODE=disabled here") from None
        raise RayConnectionError(f"cannot connect to Ray at {address}: {type(exc).__name__}: {text[:300]}",
                                 "check ray.address / $RAY_ADDRESS and that the cluster is up") from None


def _gcs_wants_token(address: str) -> bool:
    """Whether the GCS at HOST:PORT answers a call without a token with UNAUTHENTICATED (one short RPC;
    any other outcome, or an address that is not HOST:PORT, leaves the verdict to ``ray.init``)."""
    host, _, port = address.rpartition(":")
    if "://" in address or not host or not port.isdigit():
        return False
    import grpc
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        try:
            gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel).GetClusterId(gcs_service_pb2.GetClusterIdRequest(), timeout=10)
        except grpc.RpcError as exc:
            return exc.code() == grpc.StatusCode.UNAUTHENTICATED
    return False


_checked_roots: set[str] = set()


def check_root_on_nodes(root: str) -> None:
    """A local root must be the same folder on every node: refuse it (one line) when a node cannot see it.

    Probed, not guessed: the driver writes a marker file under the root and one zero-CPU task pinned to
    each alive node looks for it, so a shared path (NFS, a volume mounted on every node, or one machine
    running several nodes) passes and a node-local folder fails before any work is scheduled."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    if "://" in root or root in _checked_roots:
        return
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    if len(nodes) < 2:
        _checked_roots.add(root)
        return
    os.makedirs(root, exist_ok=True)
    marker = os.path.join(root, f".kurate-node-probe-{uuid.uuid4().hex}")
    with open(marker, "w") as handle:
        handle.write("visible\n")
    try:
        probe = ray.remote(num_cpus=0, max_retries=0)(os.path.exists)
        refs = {n["NodeID"]: probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
                .remote(marker) for n in nodes}
        blind = [f"{n['NodeManagerAddress']} ({node[:8]})" for node, n in zip(refs, nodes) if not ray.get(refs[node], timeout=120)]
    finally:
        os.remove(marker)
    if blind:
        raise KurateError(
            f"root {root} is a local folder that {len(blind)} of {len(nodes)} Ray nodes cannot see: {', '.join(blind)}",
            "on a multi-node cluster the root must be a shared path (the same folder on every node, e.g. NFS) or an "
            "object store (s3://…)")
    _checked_roots.add(root)


def cluster_has_gpus() -> bool:
    """Whether the connected Ray cluster has any GPU (call after ``ensure_ray``)."""
    import ray

    return ray.cluster_resources().get("GPU", 0) > 0


class _Capture:
    """What this worker process prints (stdout and stderr), kept until the driver takes it.

    One buffer for the process's life: a library that binds a logging handler to ``sys.stderr``
    while a call is captured keeps writing into the same buffer on later calls."""

    def __init__(self) -> None:
        self.buffer = io.StringIO()

    @contextmanager
    def active(self) -> Iterator[None]:
        with redirect_stdout(self.buffer), redirect_stderr(self.buffer):
            yield

    def take(self) -> str:
        text = self.buffer.getvalue()
        self.buffer.seek(0)
        self.buffer.truncate()
        return text


_WORKER_OUTPUT = _Capture()  # per Ray worker process (Ray tasks run one at a time in a worker)


def forward_output(text: str, source: str) -> None:
    """Print a worker's captured output on the driver, one line each, tagged with where it ran.

    Called inside the Prefect task, whose ``log_prints`` turns every line into a log line of the
    flow run; carriage-return updates (download bars) keep only their last state."""
    for raw in text.replace("\r\n", "\n").split("\n"):
        line = raw.split("\r")[-1].rstrip()
        if line:
            print(f"[{source}] {line}", flush=True)


def _call(fn: Callable, item: str, args: tuple, capture: bool = False) -> ShardOutcome:
    def run() -> ShardOutcome:
        try:
            return ShardOutcome(item, fn(item, *args))
        except Exception as exc:  # noqa: BLE001 - reported per shard, never swallowed
            return ShardOutcome(item, error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}")

    if not capture:
        return run()
    with _WORKER_OUTPUT.active():
        outcome = run()
    outcome.output = _WORKER_OUTPUT.take()
    return outcome


def _short(item: str) -> str:
    return str(item).rstrip("/").rsplit("/", 1)[-1]


def run_per_shard(
    fn: Callable,
    items: Sequence[str],
    args: tuple,
    config: RayConfig,
    on_progress: ProgressCallback | None = None,
    local: bool = False,
    gpus: float = 0,
    label: str | None = None,
    retries: int = 0,
) -> list[ShardOutcome]:
    """Apply ``fn(item, *args)`` to every item (one Ray task each, ``config.cpus_per_shard`` CPUs and
    ``gpus`` GPUs when the cluster has them); results in the order of ``items``.

    An item whose call raises is run again up to ``retries`` times before its error is reported (Ray's
    own ``max_retries`` only covers a worker that died: an exception is caught in ``_call``). Units
    commit exactly once, so a retry redoes only what did not commit. A progress bar (``label``,
    default the function's name) counts the shards in the terminal; what a Ray task prints comes
    back with its outcome and is printed here, tagged with the shard."""
    label = label or fn.__name__.replace("_", " ")
    done: list[ShardOutcome] = []
    attempts: dict[str, int] = {}

    def should_retry(outcome: ShardOutcome) -> bool:
        if outcome.error is None or attempts.get(outcome.input, 0) >= retries:
            return False
        attempts[outcome.input] = attempts.get(outcome.input, 0) + 1
        first = outcome.error.splitlines()[0] if outcome.error else ""
        print(f"[{label}] shard {_short(outcome.input)} failed ({first}); retry {attempts[outcome.input]} of {retries}", flush=True)
        return True

    def arrived(outcome: ShardOutcome, bar) -> None:
        done.append(outcome)
        if outcome.output:
            forward_output(outcome.output, f"{label} {_short(outcome.input)}")
        failed = sum(1 for o in done if o.error is not None)
        bar.advance(1, info=f"{failed} failed" if failed else "")
        if on_progress:
            on_progress(len(done), len(items), done)

    with progress_bar(label, len(items), "shards") as bar:
        if local or config.executor == "local":
            for item in items:
                outcome = _call(fn, item, args)
                while should_retry(outcome):
                    outcome = _call(fn, item, args)
                arrived(outcome, bar)
            return done

        import ray

        ensure_ray(config)
        resources = WorkerResources(cpus=config.cpus_per_shard, gpus=gpus if cluster_has_gpus() else 0)
        remote = ray.remote(_call).options(num_cpus=resources.cpus, num_gpus=resources.gpus, max_retries=config.max_retries)
        pending = {remote.remote(fn, item, args, True): item for item in items}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=5.0)
            for ref in ready:
                item = pending.pop(ref)
                try:
                    outcome = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - the worker died beyond its retries
                    outcome = ShardOutcome(item, error=f"{type(exc).__name__}: {exc}")
                if should_retry(outcome):
                    if outcome.output:
                        forward_output(outcome.output, f"{label} {_short(item)}")
                    pending[remote.remote(fn, item, args, True)] = item
                    continue
                arrived(outcome, bar)
    order = {item: i for i, item in enumerate(items)}
    return sorted(done, key=lambda o: order[o.input])


class WorkerHost:
    """A Ray actor that builds one worker (its model loads once) and applies ``call`` to each item.

    What the worker prints while it is built and while it runs is captured and handed to the driver
    with each result (``run``), or on request after a call failed (``take_output``), so model
    conversion messages and tracebacks reach the flow run's logs. A worker that fails to build
    keeps the actor alive and fails every call with the build's exception."""

    def __init__(self, make_worker: Callable[[], W], call: Callable[[W, T], R]):
        self.call = call
        self.worker, self.failed = None, None
        with _WORKER_OUTPUT.active():
            try:
                self.worker = make_worker()
            except Exception as exc:  # noqa: BLE001 - raised again by every run(), its traceback forwarded
                traceback.print_exc()
                self.failed = exc

    def run(self, item: T) -> tuple[str, R]:
        with _WORKER_OUTPUT.active():
            if self.failed is not None:
                raise self.failed
            try:
                result = self.call(self.worker, item)
            except Exception:
                traceback.print_exc()  # the worker's own traceback, for the flow run's logs
                raise
        return _WORKER_OUTPUT.take(), result

    def take_output(self) -> str:
        return _WORKER_OUTPUT.take()


def map_on_workers(
    make_worker: Callable[[], W],
    items: Sequence[T],
    call: Callable[[W, T], R],
    resources: WorkerResources,
    config: RayConfig,
    workers: int = 1,
    local: bool = False,
    on_result: Callable[[R], None] | None = None,
    label: str | None = None,
    unit: str = "units",
) -> list[R]:
    """``call(worker, item)`` for every item, on workers built by ``make_worker``; results in the order
    they finish (each also passed to ``on_result`` as it arrives).

    In this process (one worker) when ``local`` or ``executor: local``; else up to ``workers`` Ray
    actors (never more than items), each reserving ``resources`` and taking the next item when it
    is free. A call that raises stops the map (after its output and traceback are printed here):
    workers hold units that commit or not as a whole, so a re-run redoes the rest. A progress bar
    (``label``, default the worker's name) counts the items in ``unit``."""
    results: list[R] = []
    label = label or getattr(make_worker, "func", make_worker).__name__

    if not items:
        return results
    with progress_bar(label, len(items), unit) as bar:
        def collect(result: R) -> None:
            results.append(result)
            bar.advance(1)
            if on_result is not None:
                on_result(result)

        if local or config.executor == "local":
            worker = make_worker()
            for item in items:
                collect(call(worker, item))
            return results

        import ray

        ensure_ray(config)
        gpus = resources.gpus if cluster_has_gpus() else 0
        host = ray.remote(WorkerHost).options(num_cpus=resources.cpus, num_gpus=gpus)
        actors = [host.remote(make_worker, call) for _ in range(max(1, min(workers, len(items))))]
        names = {actor: f"{label} worker {i}" for i, actor in enumerate(actors)}
        try:
            _drive(actors, names, items, collect)
        finally:
            # Free the actors' CPUs/GPUs now: a failed call's traceback keeps this frame (and the
            # handles) alive, and a leaked actor holds resources the next pool waits for forever.
            for actor in actors:
                ray.kill(actor)
    return results


def _drive(actors: list, names: dict, items: Sequence, collect: Callable) -> None:
    """Hand each free actor the next item until every item is done (map_on_workers' Ray path)."""
    import ray

    todo, idle, running = list(items), list(actors), {}
    while todo or running:
        while todo and idle:
            actor = idle.pop()
            running[actor.run.remote(todo.pop(0))] = actor
        ready, _ = ray.wait(list(running), num_returns=1)
        for ref in ready:
            actor = running.pop(ref)
            try:
                output, result = ray.get(ref)
            except Exception:
                try:
                    forward_output(ray.get(actor.take_output.remote(), timeout=30), names[actor])
                except Exception:  # noqa: BLE001 - the actor itself died: Ray's error says why
                    pass
                raise
            forward_output(output, names[actor])
            idle.append(actor)
            collect(result)


class Throughput:
    """docs/s since start, for progress lines."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def rate(self, docs: int) -> float:
        return docs / max(time.perf_counter() - self.started, 1e-9)


def submit_ray_job(client, attempts: int = 30, **kwargs) -> None:
    """``client.submit_job(**kwargs)``, retried while the head's job agent is still starting (it
    answers 'No available agent' for a while after the head comes up)."""
    for attempt in range(attempts):
        try:
            client.submit_job(**kwargs)
            return
        except RuntimeError as exc:
            if "No available agent" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(2)


def follow_ray_job(client, job_id: str, echo: Callable[[str], None], prefix: str, poll_s: float):
    """Echo a Ray Job's log, each line after ``prefix``, as it grows until the job ends; its status."""
    printed = 0
    while True:
        status = client.get_job_status(job_id)
        logs = client.get_job_logs(job_id)
        for line in logs[printed:].splitlines():
            echo(f"{prefix} {line}")
        printed = len(logs)
        if status.is_terminal():
            return status
        time.sleep(poll_s)
