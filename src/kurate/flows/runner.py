"""Where work runs: one function per input shard (Ray tasks), or one loaded model per worker (Ray
actors), or both in this process (docs/ARCHITECTURE.md, "Where things run").

Prefect stays at the edge: a flow calls ``run_per_shard`` or ``map_on_workers`` from one coarse task
and gets back small results. ``run_per_shard`` reports a shard that raises as its outcome, so the
others go on and a re-run redoes only what did not commit. A worker declares what it reserves
(``WorkerResources``); GPUs are only asked for when the cluster has them, so the same code runs on
a CPU-only cluster.
"""

from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Sequence, TypeVar

from kurate.flows.config import RayConfig
from kurate.storage.fs import protocol_of

W = TypeVar("W")
T = TypeVar("T")
R = TypeVar("R")


@dataclass
class ShardOutcome:
    input: str
    result: Any = None
    error: str | None = None


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
    """Connect to the configured cluster, $RAY_ADDRESS, or start a local Ray (once per process)."""
    import ray

    if ray.is_initialized():
        return
    address = config.address or os.environ.get("RAY_ADDRESS")
    kwargs: dict[str, Any] = {"logging_level": "WARNING", "log_to_driver": True}
    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(num_cpus=config.num_cpus, include_dashboard=False, **kwargs)


def cluster_has_gpus() -> bool:
    """Whether the connected Ray cluster has any GPU (call after ``ensure_ray``)."""
    import ray

    return ray.cluster_resources().get("GPU", 0) > 0


def _call(fn: Callable, item: str, args: tuple) -> ShardOutcome:
    try:
        return ShardOutcome(item, fn(item, *args))
    except Exception as exc:  # noqa: BLE001 - reported per shard, never swallowed
        return ShardOutcome(item, error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}")


def run_per_shard(
    fn: Callable,
    items: Sequence[str],
    args: tuple,
    config: RayConfig,
    on_progress: ProgressCallback | None = None,
    local: bool = False,
    gpus: float = 0,
) -> list[ShardOutcome]:
    """Apply ``fn(item, *args)`` to every item (one Ray task each, ``config.cpus_per_shard`` CPUs and
    ``gpus`` GPUs when the cluster has them); results in the order of ``items``."""
    done: list[ShardOutcome] = []
    if local or config.executor == "local":
        for item in items:
            done.append(_call(fn, item, args))
            if on_progress:
                on_progress(len(done), len(items), done)
        return done

    import ray

    ensure_ray(config)
    resources = WorkerResources(cpus=config.cpus_per_shard, gpus=gpus if cluster_has_gpus() else 0)
    remote = ray.remote(_call).options(num_cpus=resources.cpus, num_gpus=resources.gpus, max_retries=config.max_retries)
    pending = {remote.remote(fn, item, args): item for item in items}
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=5.0)
        for ref in ready:
            item = pending.pop(ref)
            try:
                done.append(ray.get(ref))
            except Exception as exc:  # noqa: BLE001 - the worker died beyond its retries
                done.append(ShardOutcome(item, error=f"{type(exc).__name__}: {exc}"))
        if ready and on_progress:
            on_progress(len(done), len(items), done)
    order = {item: i for i, item in enumerate(items)}
    return sorted(done, key=lambda o: order[o.input])


class WorkerHost:
    """A Ray actor that builds one worker (its model loads once) and applies ``call`` to each item."""

    def __init__(self, make_worker: Callable[[], W], call: Callable[[W, T], R]):
        self.worker = make_worker()
        self.call = call

    def run(self, item: T) -> R:
        return self.call(self.worker, item)


def map_on_workers(
    make_worker: Callable[[], W],
    items: Sequence[T],
    call: Callable[[W, T], R],
    resources: WorkerResources,
    config: RayConfig,
    workers: int = 1,
    local: bool = False,
    on_result: Callable[[R], None] | None = None,
) -> list[R]:
    """``call(worker, item)`` for every item, on workers built by ``make_worker``; results in the order
    they finish (each also passed to ``on_result`` as it arrives).

    In this process (one worker) when ``local`` or ``executor: local``; else a Ray ``ActorPool`` of up
    to ``workers`` actors (never more than items), each reserving ``resources``. A call that raises
    stops the map: workers hold units that commit or not as a whole, so a re-run redoes the rest."""
    results: list[R] = []

    def collect(result: R) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result)

    if not items:
        return results
    if local or config.executor == "local":
        worker = make_worker()
        for item in items:
            collect(call(worker, item))
        return results

    import ray
    from ray.util import ActorPool

    ensure_ray(config)
    gpus = resources.gpus if cluster_has_gpus() else 0
    host = ray.remote(WorkerHost).options(num_cpus=resources.cpus, num_gpus=gpus)
    pool = ActorPool([host.remote(make_worker, call) for _ in range(max(1, min(workers, len(items))))])
    for result in pool.map_unordered(lambda actor, item: actor.run.remote(item), items):
        collect(result)
    return results


class Throughput:
    """docs/s since start, for progress lines."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def rate(self, docs: int) -> float:
        return docs / max(time.perf_counter() - self.started, 1e-9)
