"""Curate flow: WARC/WET shards → ``curated`` + ``rejects`` Parquet shards, one unit per input shard.

    kurate curate --input 'data/*.warc.gz' --root runs/r1
    python -m flows.curate configs/demo.yaml

Planning, the per-shard work (Ray tasks) and the catalog refresh are coarse Prefect tasks that pass
paths and counts. Each run publishes a per-shard table, a markdown summary and a progress artifact.
Shards committed by an earlier run with the same config are skipped.
"""

from __future__ import annotations

import sys
from collections import Counter

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, create_table_artifact, update_progress_artifact

from flows.config import PipelineConfig, load_config
from flows.runner import ShardOutcome, Throughput, run_per_shard
from storage.catalog import Catalog
from storage.fs import expand_inputs, protocol_of
from storage.shards import ShardStore, UnitKey
from tasks.ingest import ingest_shard

STAGE = "curate"


@task(name="plan-curate")
def plan(config: PipelineConfig) -> dict:
    """Expand the inputs, record the plan, and say which shards are already committed."""
    inputs = expand_inputs(config.curate.inputs, config.storage_options)
    work_hash = config.curate.work_hash()
    store = ShardStore(config.root, config.storage_options)
    units = {UnitKey(STAGE, source, work_hash).name: source for source in inputs}
    store.write_plan(STAGE, work_hash, units)
    committed = [s for s in inputs if store.is_committed(UnitKey(STAGE, s, work_hash))]
    return {"inputs": inputs, "work_hash": work_hash, "committed": committed}


def _progress_printer(progress_id, throughput: Throughput):
    def report(done: int, total: int, outcomes: list[ShardOutcome]) -> None:
        docs = sum(o.result.records for o in outcomes if o.result is not None and not o.result.skipped)
        print(f"[curate] {done}/{total} shards, {docs} records, {throughput.rate(docs):.1f} docs/s", flush=True)
        if progress_id is not None:
            update_progress_artifact(progress_id, progress=100.0 * done / max(total, 1))

    return report


@task(name="ingest-shards")
def ingest_shards(config: PipelineConfig, inputs: list[str], work_hash: str) -> list[dict]:
    """Run the ingest unit on every shard (Ray tasks; in-process for a memory:// root)."""
    # A memory:// filesystem lives inside this process: Ray workers would write somewhere else.
    local = protocol_of(config.root) == "memory"
    if local and config.ray.executor == "ray":
        print("[curate] root is memory://: running shards in this process instead of on Ray")
    progress_id = create_progress_artifact(progress=0.0, key="curate-progress", description="Shards done")
    outcomes = run_per_shard(
        ingest_shard,
        inputs,
        (config.root, config.curate.ingest, work_hash, config.storage_options, STAGE),
        config.ray,
        on_progress=_progress_printer(progress_id, Throughput()),
        local=local,
    )
    rows = []
    for outcome in outcomes:
        if outcome.error is not None:
            print(f"[curate] shard {outcome.input} failed: {outcome.error}")
            rows.append({"input": outcome.input, "status": "failed", "error": outcome.error.splitlines()[0]})
        else:
            result = outcome.result.as_dict()
            result["status"] = "skipped" if result.pop("skipped") else "committed"
            rows.append(result)
    return rows


@task(name="refresh-catalog")
def refresh_catalog(config: PipelineConfig) -> str | None:
    return Catalog(config.root, config.storage_options).refresh_file()


def summarize(rows: list[dict]) -> dict:
    reasons: Counter[str] = Counter()
    for row in rows:
        reasons.update(row.get("reasons") or {})
    status = Counter(row["status"] for row in rows)
    return {
        "shards": len(rows),
        "committed": status["committed"],
        "skipped": status["skipped"],
        "failed": status["failed"],
        "records": sum(row.get("records", 0) for row in rows),
        "curated": sum(row.get("curated", 0) for row in rows),
        "rejected": sum(row.get("rejected", 0) for row in rows),
        "reasons": dict(sorted(reasons.items())),
    }


def _markdown(root: str, summary: dict, rows: list[dict]) -> str:
    lines = [
        f"# curate: {root}",
        "",
        f"{summary['shards']} shards: {summary['committed']} committed, {summary['skipped']} already committed "
        f"(skipped), {summary['failed']} failed.",
        f"{summary['records']} records → {summary['curated']} curated, {summary['rejected']} rejected (this run's commits and earlier ones).",
        "",
        "| reject reason | documents |",
        "|---|---|",
        *[f"| {reason} | {count} |" for reason, count in summary["reasons"].items()],
    ]
    failed = [r for r in rows if r["status"] == "failed"]
    if failed:
        lines += ["", "## Failed shards (re-run to retry them)", *[f"- `{r['input']}`: {r['error']}" for r in failed]]
    return "\n".join(lines)


@flow(name="curate", log_prints=True)
def curate(config: PipelineConfig) -> dict:
    """Ingest WARC/WET shards into curated documents and recorded rejects, exactly once per shard."""
    planned = plan(config)
    todo = len(planned["inputs"]) - len(planned["committed"])
    print(f"[curate] {len(planned['inputs'])} input shards, {len(planned['committed'])} already committed, {todo} to do")
    rows = ingest_shards(config, planned["inputs"], planned["work_hash"])
    catalog_file = refresh_catalog(config)
    summary = summarize(rows)
    table = [{k: v for k, v in row.items() if k != "reasons"} | {"reasons": str(row.get("reasons", ""))} for row in rows]
    create_table_artifact(table, key="curate-shards", description="Per-shard counts of this curate run")
    create_markdown_artifact(_markdown(config.root, summary, rows), key="curate-summary", description="Curate summary")
    print(f"[curate] done: {summary}")
    if catalog_file:
        print(f"[curate] catalog: {catalog_file}")
    if summary["failed"]:
        failed = [r["input"] for r in rows if r["status"] == "failed"]
        raise RuntimeError(f"{summary['failed']} shard(s) failed (committed shards are kept; re-run to retry): {failed}")
    return summary


if __name__ == "__main__":
    curate(load_config(sys.argv[1], sys.argv[2:]))
