"""What a root holds and what is left to do, for ``kurate status`` (docs/ARCHITECTURE.md, "Exactly once").

Everything here is read from what the unit protocol leaves behind, and only read:

- commit records ``_manifests/<stage>/<unit>.json``: committed units, and rows and bytes per dataset,
  read through the catalog snapshot ``_catalog/<stage>/`` (storage/snapshot.py: the records' names
  are listed and only those committed since the snapshot are opened);
- plans ``_plans/<stage>.json`` (written by a stage with ``record_plan`` before it starts its units):
  a planned unit without a commit record is *pending*;
- directories under ``_tmp/``: a writer in flight, or one that was killed (the next run of that
  unit clears it);
- run locks ``_locks/<stage>.json``: a run in progress on this root (host, pid, since when).

``root_status`` never writes (not even a new snapshot: ``kurate query`` and the stages fold new
records into it), never creates a directory and never opens ``catalog.duckdb``, so it is
safe on a root another process is writing, and a mistyped root is reported (``NoRoot``) instead of
being created.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from kurate.errors import InputError
from kurate.storage.catalog import CATALOG_FILE
from kurate.storage.fs import StorageOptions, join
from kurate.storage.schemas import DATASETS
from kurate.storage.shards import LOCKS, MANIFESTS, PLANS, TMP, ShardStore, UnitKey
from kurate.storage.snapshot import current as current_records, records

# Any of these under a location makes it a kurate root: stages write a plan or a temporary unit first.
ROOT_MARKERS = (MANIFESTS, PLANS, TMP, CATALOG_FILE)
SHOWN = 20  # most pending inputs / temporary units listed per stage


class NoRoot(InputError):
    """The location holds no kurate root (nothing a stage writes is there): a mistyped --root (exit code 3)."""

    default_hint = "check --root (a root an earlier stage wrote, e.g. `kurate curate`)"


def record_plan(store: ShardStore, stage: str, keys: Sequence[UnitKey]) -> None:
    """Record the units a run of ``stage`` sets out to do, so ``kurate status`` can say which are pending.

    One plan per stage: the latest run's plan replaces the previous one."""
    wrong = sorted({k.stage for k in keys} - {stage})
    if wrong:
        raise ValueError(f"plan for stage {stage!r} holds units of stage(s) {wrong}")
    config_hash = keys[0].config_hash if keys else ""
    store.write_plan(stage, config_hash, {k.name: k.input for k in keys})


@dataclass(frozen=True)
class DatasetStatus:
    dataset: str
    units: int  # committed units with a file in this dataset (current generation)
    rows: int
    bytes: int


@dataclass(frozen=True)
class StageStatus:
    stage: str
    committed: int  # commit records of this stage (current generation: the latest per input)
    planned: int | None  # units in the stage's last plan; None when the stage records no plan
    pending: tuple[str, ...]  # inputs of planned units that have no commit record
    temporary: tuple[str, ...]  # names under _tmp/ of this stage's units: in flight, or left by a killed writer


@dataclass(frozen=True)
class RootStatus:
    root: str
    datasets: tuple[DatasetStatus, ...]
    stages: tuple[StageStatus, ...]
    unattributed: tuple[str, ...]  # temporary units whose stage neither a plan nor a commit record names
    locks: tuple[dict, ...] = ()  # run locks held: {"stage", "host", "pid", "since"}


def check_root(store: ShardStore) -> None:
    """Raise ``NoRoot`` unless the store's location holds something a stage writes."""
    store.fs.invalidate_cache()
    if not any(store.fs.exists(join(store.path, marker)) for marker in ROOT_MARKERS):
        raise NoRoot(f"no kurate root at {store.url()} (none of {', '.join(ROOT_MARKERS)} there)")


def _tmp_unit(name: str) -> str:
    """The unit name of a temporary directory ``<unit>.<token>`` (UnitWriter adds a 12-hex token)."""
    unit, _, token = name.rpartition(".")
    return unit if unit and re.fullmatch(r"[0-9a-f]{12}", token) else name


class _UnitNames:
    """Tells the stage of a unit name: ``UnitKey.name`` is ``<stem>-<stage>-<input hash>-<config hash>``,
    and a stem may hold hyphens, so the stage is read where the input is known (it fixes the stem
    and the hash), else matched against the stages the root's plans and commit records name."""

    SENTINEL = "@"  # never in a stem: UnitKey.name replaces every character but [A-Za-z0-9_.-]

    def __init__(self, planned: dict[str, str], inputs: set[str], stages: set[str]):
        self.planned = planned
        self.stages = sorted(stages, key=len, reverse=True)
        self.inputs = inputs
        self._prefixes: dict[str, set[str]] | None = None

    @property
    def prefixes(self) -> dict[str, set[str]]:
        """Input hash -> "<stem>-" of the inputs with that hash; built on first use (a hash per input:
        only a root with temporary units pays it)."""
        if self._prefixes is None:
            self._prefixes = {}
            for source in self.inputs:
                name = UnitKey(self.SENTINEL, source, "").name
                stem, _, rest = name.partition(f"-{self.SENTINEL}-")
                self._prefixes.setdefault(rest.rstrip("-"), set()).add(stem + "-")
        return self._prefixes

    def stage(self, unit: str) -> str | None:
        if unit in self.planned:
            return self.planned[unit]
        tail = re.search(r"-([0-9a-f]{10})-[^-]*$", unit)
        if tail is None:
            return None
        for prefix in self.prefixes.get(tail.group(1), ()):
            if unit.startswith(prefix) and tail.start() > len(prefix):
                return unit[len(prefix):tail.start()]
        head = unit[:tail.start()]
        return next((stage for stage in self.stages if head.endswith(f"-{stage}")), None)


def root_status(root: str, storage_options: StorageOptions | None = None) -> RootStatus:
    """Datasets, committed units per stage, pending planned units and temporary units of ``root``."""
    store = ShardStore(root, storage_options)
    check_root(store)
    table = records(store, columns=["stage", "unit", "input", "current", "outputs"])  # through the snapshot; writes nothing
    committed_names = set(table["unit"].to_pylist())
    current = current_records(table)

    totals = {d: [0, 0, 0] for d in DATASETS}
    outputs = pc.list_flatten(current["outputs"].combine_chunks())
    if len(outputs):
        grouped = pa.table({"dataset": outputs.field("dataset"), "rows": outputs.field("rows"), "bytes": outputs.field("bytes")})
        for row in grouped.group_by("dataset").aggregate([("rows", "count"), ("rows", "sum"), ("bytes", "sum")]).to_pylist():
            totals[row["dataset"]] = [row["rows_count"], row["rows_sum"], row["bytes_sum"]]
    datasets = tuple(DatasetStatus(d, *t) for d, t in totals.items())

    plans = {p["stage"]: p for p in store.plans()}
    planned_stage = {unit: stage for stage, p in plans.items() for unit in p["units"]}
    committed_per_stage = Counter(current["stage"].to_pylist())
    # a unit's input is a source URL, or another unit's name (embed reads a curated unit)
    inputs = set(table["input"].to_pylist()) | committed_names | {i for p in plans.values() for i in p["units"].values()}
    names = _UnitNames(planned_stage, inputs, set(committed_per_stage) | set(plans))
    temporary: dict[str | None, list[str]] = {}
    for name in store.pending_tmp():
        temporary.setdefault(names.stage(_tmp_unit(name)), []).append(name)

    stages = []
    for stage in sorted(set(committed_per_stage) | set(plans) | (set(temporary) - {None})):
        plan = plans.get(stage)
        pending = tuple(plan["units"][u] for u in sorted(plan["units"]) if u not in committed_names) if plan else ()
        stages.append(StageStatus(stage, committed_per_stage.get(stage, 0), len(plan["units"]) if plan else None,
                                  pending, tuple(temporary.get(stage, ()))))
    return RootStatus(store.url(), datasets, tuple(stages), tuple(temporary.get(None, ())), _locks(store))


def _locks(store: ShardStore) -> tuple[dict, ...]:
    held = []
    for path in sorted(store.fs.glob(join(store.path, LOCKS, "*.json"))):
        try:
            holder = json.loads(store.fs.cat_file(path))
        except (FileNotFoundError, ValueError):
            continue  # released (or being written) while we looked
        held.append({"stage": path.rsplit("/", 1)[-1][: -len(".json")], **holder})
    return tuple(held)


def render(status: RootStatus) -> list[str]:
    """Plain-text lines for the terminal: a dataset table, a stage table, then what is pending."""
    lines = [f"root: {status.root}", "", f"{'dataset':<14} {'units':>7} {'rows':>12} {'bytes':>14}"]
    lines += [f"{d.dataset:<14} {d.units:>7} {d.rows:>12} {d.bytes:>14}" for d in status.datasets if d.units]
    empty = [d.dataset for d in status.datasets if not d.units]
    if empty:
        lines.append(f"(no committed units yet: {', '.join(empty)})")
    lines += ["", f"{'stage':<28} {'committed':>9} {'planned':>8} {'pending':>8} {'temporary':>9}"]
    for s in status.stages:
        planned = "-" if s.planned is None else str(s.planned)
        pending = "-" if s.planned is None else str(len(s.pending))
        lines.append(f"{s.stage:<28} {s.committed:>9} {planned:>8} {pending:>8} {len(s.temporary):>9}")
    if not status.stages:
        lines.append("(no stage has planned or committed a unit yet)")
    lines.append("")
    for s in status.stages:
        if s.pending:
            lines.append(f"pending in stage {s.stage} ({len(s.pending)} of {s.planned} planned units; a re-run does them):")
            lines += [f"  {source}" for source in s.pending[:SHOWN]] + _more(s.pending)
    temporary = [(f"stage {s.stage}", s.temporary) for s in status.stages if s.temporary]
    if status.unattributed:
        temporary.append(("an unknown stage", status.unattributed))
    for lock in status.locks:
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(lock.get("since", 0)))
        lines.append(f"a {lock['stage']} run holds this root: pid {lock.get('pid')} on {lock.get('host')} since {since} "
                     f"({LOCKS}/{lock['stage']}.json)")
    for owner, names in temporary:
        lines.append(f"temporary units of {owner} (in flight, or left by a killed writer; the unit's next run replaces them):")
        lines += [f"  {TMP}/{n}" for n in names[:SHOWN]] + _more(names)
    while not lines[-1]:
        lines.pop()
    return lines


def _more(items: Sequence[str]) -> list[str]:
    return [f"  … {len(items) - SHOWN} more"] if len(items) > SHOWN else []
