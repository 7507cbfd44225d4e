"""Running one function per input shard: as Ray tasks (default) or in this process.

Prefect stays at the edge: a flow calls ``run_per_shard`` from one coarse task and gets back
small result dicts. A shard that raises does not stop the others; its error comes back as a result
so the flow can report it (and a re-run redoes only what did not commit).
"""

from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from kurate.flows.config import RayConfig


@dataclass
class ShardOutcome:
    input: str
    result: Any = None
    error: str | None = None


ProgressCallback = Callable[[int, int, list[ShardOutcome]], None]


def _call(fn: Callable, item: str, args: tuple) -> ShardOutcome:
    try:
        return ShardOutcome(item, fn(item, *args))
    except Exception as exc:  # noqa: BLE001 - reported per shard, never swallowed
        return ShardOutcome(item, error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}")


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


def run_per_shard(
    fn: Callable,
    items: Sequence[str],
    args: tuple,
    config: RayConfig,
    on_progress: ProgressCallback | None = None,
    local: bool = False,
    gpus: float = 0,
) -> list[ShardOutcome]:
    """Apply ``fn(item, *args)`` to every item; results in the order of ``items``."""
    done: list[ShardOutcome] = []
    if local or config.executor == "local":
        for item in items:
            done.append(_call(fn, item, args))
            if on_progress:
                on_progress(len(done), len(items), done)
        return done

    import ray

    ensure_ray(config)
    if gpus and ray.cluster_resources().get("GPU", 0) == 0:
        gpus = 0  # a CPU-only cluster: the same code runs on CPU
    remote = ray.remote(_call).options(num_cpus=config.cpus_per_shard, num_gpus=gpus, max_retries=config.max_retries)
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


class Throughput:
    """docs/s since start, for progress lines."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def rate(self, docs: int) -> float:
        return docs / max(time.perf_counter() - self.started, 1e-9)
