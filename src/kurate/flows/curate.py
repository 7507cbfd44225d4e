"""Curate flow: WARC/WET shards → ``curated`` documents, with a ``rejects`` row for everything dropped.

    kurate curate --input 'data/*.warc.gz' --root runs/r1
    python -m kurate.flows.curate configs/demo.yaml

1. filter (Ray task per shard): extract → URL filter → language ID → heuristic filters → staged + signatures
2. finalize the shards an earlier run already decided, with those committed decisions
3. dedup (Ray tasks, DuckDB): exact + MinHash LSH over the undecided shards and the finalized curated references,
   split by hash range into tasks of bounded memory (``tasks/dedup_partitioned``)
4. finalize (Ray task per shard): staged − duplicates → curated; duplicates → rejects
5. report: retention funnel per stage and language (Prefect artifacts + PNG/HTML under the root)

The order of units is ``tasks.curate.curate_units`` (the same as ``run_local``). Every step is a
coarse Prefect task passing paths and counts; units already committed are skipped, a shard's unit
that raises is retried (``curate.shard_retries``) and then reported as that input's failure while
the other shards finish, so a re-run redoes only what did not commit. The run holds the root's
curate lock (``storage/shards.RunLock``): a second run on the same root fails with one line (or
waits ``curate.lock_wait_s``).
"""

from __future__ import annotations

import sys
from collections import Counter

from prefect import flow, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from kurate.errors import KurateError
from kurate.flows.artifacts import artifact_key, publish_markdown, publish_table
from kurate.flows.config import PipelineConfig, load_config
from kurate.flows.report import publish_funnel
from kurate.flows.runner import ShardOutcome, Throughput, in_process_only, run_per_shard
from kurate.storage.catalog import Catalog
from kurate.storage.fs import expand_inputs
from kurate.storage.shards import RunLock, ShardStore, input_version
from kurate.tasks.curate import STAGE_FINAL, ShardFailure, curate_units, dedup_run, final_key


@task(name="plan-curate")
def plan(config: PipelineConfig) -> dict:
    """Expand the inputs, record the plan, and say which shards are already curated."""
    inputs = expand_inputs(config.curate.inputs, config.storage_options)
    hashes = config.curate.hashes()
    store = ShardStore(config.root, config.storage_options)
    keys = {source: final_key(source, hashes.final, version=input_version(source, config.storage_options)) for source in inputs}
    store.write_plan(STAGE_FINAL, hashes.final, {key.name: source for source, key in keys.items()})
    done = [s for s in inputs if store.is_committed(keys[s])]
    return {"inputs": inputs, "done": done, "filter_hash": hashes.filter, "final_hash": hashes.final}


def _progress(label: str, progress_id, throughput: Throughput):
    def report(done: int, total: int, outcomes: list[ShardOutcome]) -> None:
        docs = sum(o.result.records for o in outcomes if o.result is not None and not o.result.skipped)
        print(f"[curate:{label}] {done}/{total} shards, {docs} records, {throughput.rate(docs):.1f} docs/s", flush=True)
        if progress_id is not None:
            update_progress_artifact(progress_id, progress=100.0 * done / max(total, 1))

    return report


def _run_shards(config: PipelineConfig, label: str, fn, items: list[str], args: tuple) -> list:
    """One step over shards (Ray tasks, retried): a ``ShardResult`` or ``ShardFailure`` per shard."""
    local = in_process_only(config.root)
    progress_id = create_progress_artifact(progress=0.0, key=artifact_key(config.root, "curate", label, "progress"), description=f"{label}: shards done")
    outcomes = run_per_shard(fn, items, args, config.ray, on_progress=_progress(label, progress_id, Throughput()), local=local,
                             label=f"curate {label}", retries=config.curate.shard_retries)
    results = []
    for outcome in outcomes:
        if outcome.error is not None:
            print(f"[curate:{label}] shard {outcome.input} failed: {outcome.error}")
            results.append(ShardFailure(outcome.input, outcome.error))
        else:
            results.append(outcome.result)
    return results


@task(name="filter-shards")
def filter_shards(config: PipelineConfig, label: str, fn, items: list[str], args: tuple) -> list:
    """Per shard: extraction, URL filter, language ID, heuristic filters, signatures."""
    return _run_shards(config, label, fn, items, args)


@task(name="finalize-shards")
def finalize_shards(config: PipelineConfig, label: str, fn, items: list[str], args: tuple) -> list:
    """Per shard: staged minus its committed duplicates → curated; duplicates → rejects."""
    return _run_shards(config, label, fn, items, args)


def _map_shards(config: PipelineConfig):
    def run(label: str, fn, items: list[str], args: tuple) -> list:
        step = filter_shards if label == "filter" else finalize_shards
        return step(config, label, fn, items, args)

    return run


def _dedup_tasks(config: PipelineConfig):
    """Run dedup's tasks (``tasks/dedup_partitioned``) as Ray tasks, like the shards: a task that still
    fails after ``curate.shard_retries`` fails the dedup unit, which then commits nothing."""
    def run(fn, items: list[str], args: tuple) -> list:
        step = fn.__name__.removesuffix("_task")
        outcomes = run_per_shard(fn, items, args, config.ray, local=in_process_only(config.root),
                                 label=f"curate dedup {step}", retries=config.curate.shard_retries)
        failed = [o for o in outcomes if o.error is not None]
        if failed:
            raise KurateError(f"dedup {step} task {failed[0].input} failed: {failed[0].error.splitlines()[0]}",
                              "re-run `kurate curate`: the dedup unit did not commit and is redone")
        return [o.result for o in outcomes]

    return run


@task(name="dedup-run")
def dedup(config: PipelineConfig, units: list, final_hash: str) -> dict:
    """Run-wide exact + MinHash dedup of the undecided shards against the finalized curated documents,
    in tasks of bounded memory (``curate.dedup.partitions`` / ``docs_per_task``) on Ray."""
    result = dedup_run(config.root, units, config.curate.dedup, final_hash, config.storage_options, _dedup_tasks(config))
    print(f"[curate:dedup] {result['exact']} exact and {result['near']} near duplicates "
          f"({result['new_shards']} new shards, {result['reference_files']} reference signature files)")
    return result


def _row(result) -> dict:
    if isinstance(result, ShardFailure):
        return result.as_dict()
    row = result.as_dict()
    row["status"] = "skipped" if row.pop("skipped") else "committed"
    return row


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
        "curated": sum(row.get("kept", 0) for row in rows),
        "rejected": sum(row.get("rejected", 0) for row in rows),
        "reasons": dict(sorted(reasons.items())),
    }


def _markdown(root: str, summary: dict, rows: list[dict]) -> str:
    lines = [
        f"# curate: {root}",
        "",
        f"{summary['shards']} shards: {summary['committed']} curated now, {summary['skipped']} already curated "
        f"(skipped), {summary['failed']} failed.",
        f"{summary['records']} records → {summary['curated']} curated, {summary['rejected']} rejected.",
        "",
        "| reject reason | documents |",
        "|---|---|",
        *[f"| {reason} | {count} |" for reason, count in summary["reasons"].items()],
    ]
    failed = [r for r in rows if r["status"] == "failed"]
    if failed:
        lines += ["", "## Failed shards (re-run to retry them)", *[f"- `{r['input']}`: {r['error']}" for r in failed]]
    return "\n".join(lines)


def _raise_if_failed(rows: list[dict]) -> None:
    failed = [f"{r['input']} ({r['error']})" for r in rows if r["status"] == "failed"]
    if failed:
        raise KurateError(f"curate: {len(failed)} shard(s) failed, the other shards are committed: {'; '.join(failed)}",
                          "fix those inputs and run again: only what did not commit is redone")


@flow(name="curate", log_prints=True)
def curate(config: PipelineConfig) -> dict:
    """Curate WARC/WET shards into deduplicated documents with a recorded reason for every drop."""
    if config.ray.submit:  # run this stage as a Ray Job on ray.job_address and follow it (flows/submit.py)
        from kurate.flows.submit import submit_flow

        return submit_flow(config, "curate")
    store = ShardStore(config.root, config.storage_options)
    with RunLock(store, STAGE_FINAL, wait_s=config.curate.lock_wait_s):
        planned = plan(config)
        todo = [s for s in planned["inputs"] if s not in set(planned["done"])]
        print(f"[curate] {len(planned['inputs'])} input shards, {len(planned['done'])} already curated, {len(todo)} to do")
        c = config.curate
        result = curate_units(todo, config.root, c.hashes(), (c.ingest, c.quality(), c.dedup), _map_shards(config),
                              lambda units: dedup(config, units, planned["final_hash"]), config.storage_options)
    final_rows = [_row(r) for r in result["final"] + result["failed"]]
    for source in planned["done"]:
        manifest = store.manifest(final_key(source, planned["final_hash"], config.storage_options))
        final_rows.append({"input": source, "unit": manifest.unit, "status": "skipped", **_counts(manifest.counts)})
    catalog_file = refresh_catalog(config)
    summary = summarize(final_rows)
    table = [{k: v for k, v in row.items() if k != "reasons"} | {"reasons": str(row.get("reasons", ""))} for row in final_rows]
    publish_table(config.root, "curate-shards", table, "Per-shard counts of this curate run")
    publish_markdown(config.root, "curate-summary", _markdown(config.root, summary, final_rows), "Curate summary")
    if config.curate.report:
        summary["report"] = publish_funnel(config.root, config.storage_options)
    print(f"[curate] done: {summary}")
    if catalog_file:
        print(f"[curate] catalog: {catalog_file}")
    _raise_if_failed(final_rows)
    return summary


def _counts(counts: dict) -> dict:
    return {"records": counts.get("records", 0), "kept": counts.get("curated", 0),
            "rejected": counts.get("rejected", 0), "reasons": counts.get("reasons", {})}


if __name__ == "__main__":
    curate(load_config(sys.argv[1], sys.argv[2:]))
