"""Curate flow: WARC/WET shards → ``curated`` documents, with a ``rejects`` row for everything dropped.

    kurate curate --input 'data/*.warc.gz' --root runs/r1
    python -m kurate.flows.curate configs/demo.yaml

1. filter (Ray task per shard): extract → URL filter → language ID → heuristic filters → staged + signatures
2. dedup (one task, DuckDB): exact + MinHash LSH over the whole run and the already-curated references
3. finalize (Ray task per shard): staged − duplicates → curated; duplicates → rejects
4. report: retention funnel per stage and language (Prefect artifacts + PNG/HTML under the root)

Every step is a coarse Prefect task passing paths and counts; units already committed are skipped,
so a re-run after a crash redoes only what did not commit.
"""

from __future__ import annotations

import sys
from collections import Counter

from prefect import flow, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from kurate.flows.artifacts import artifact_key, publish_markdown, publish_table
from kurate.flows.config import PipelineConfig, load_config
from kurate.flows.report import publish_funnel
from kurate.flows.runner import ShardOutcome, Throughput, in_process_only, run_per_shard
from kurate.storage.catalog import Catalog
from kurate.storage.fs import expand_inputs
from kurate.storage.shards import ShardStore, UnitKey
from kurate.tasks.curate import STAGE_FILTER, STAGE_FINAL, dedup_run, filter_shard, finalize_shard


@task(name="plan-curate")
def plan(config: PipelineConfig) -> dict:
    """Expand the inputs, record the plan, and say which shards are already curated."""
    inputs = expand_inputs(config.curate.inputs, config.storage_options)
    hashes = config.curate.hashes()
    store = ShardStore(config.root, config.storage_options)
    finals = {UnitKey(STAGE_FINAL, source, hashes.final).name: source for source in inputs}
    store.write_plan(STAGE_FINAL, hashes.final, finals)
    done = [s for s in inputs if store.is_committed(UnitKey(STAGE_FINAL, s, hashes.final))]
    return {"inputs": inputs, "done": done, "filter_hash": hashes.filter, "final_hash": hashes.final}


def _progress(label: str, progress_id, throughput: Throughput):
    def report(done: int, total: int, outcomes: list[ShardOutcome]) -> None:
        docs = sum(o.result.records for o in outcomes if o.result is not None and not o.result.skipped)
        print(f"[curate:{label}] {done}/{total} shards, {docs} records, {throughput.rate(docs):.1f} docs/s", flush=True)
        if progress_id is not None:
            update_progress_artifact(progress_id, progress=100.0 * done / max(total, 1))

    return report


def _run_shards(config: PipelineConfig, label: str, fn, items: list[str], args_for) -> list[dict]:
    local = in_process_only(config.root)
    progress_id = create_progress_artifact(progress=0.0, key=artifact_key(config.root, "curate", label, "progress"), description=f"{label}: shards done")
    outcomes = run_per_shard(fn, items, args_for, config.ray, on_progress=_progress(label, progress_id, Throughput()), local=local,
                             label=f"curate {label}")
    rows = []
    for outcome in outcomes:
        if outcome.error is not None:
            print(f"[curate:{label}] shard {outcome.input} failed: {outcome.error}")
            rows.append({"input": outcome.input, "status": "failed", "error": outcome.error.splitlines()[0]})
        else:
            result = outcome.result.as_dict()
            result["status"] = "skipped" if result.pop("skipped") else "committed"
            rows.append(result)
    return rows


@task(name="filter-shards")
def filter_shards(config: PipelineConfig, inputs: list[str], filter_hash: str) -> list[dict]:
    """Per shard: extraction, URL filter, language ID, heuristic filters, signatures."""
    c = config.curate
    return _run_shards(config, "filter", filter_shard, inputs,
                       (config.root, c.ingest, c.quality(), c.dedup, filter_hash, config.storage_options))


@task(name="dedup-run")
def dedup(config: PipelineConfig, inputs: list[str], filter_hash: str, final_hash: str) -> dict:
    """Run-wide exact + MinHash dedup against everything already curated (DuckDB over Parquet)."""
    units = [UnitKey(STAGE_FILTER, source, filter_hash) for source in inputs]
    result = dedup_run(config.root, units, config.curate.dedup, final_hash, config.storage_options)
    print(f"[curate:dedup] {result['exact']} exact and {result['near']} near duplicates "
          f"({result['new_shards']} new shards, {result['reference_files']} reference signature files)")
    return result


@task(name="finalize-shards")
def finalize_shards(config: PipelineConfig, inputs: list[str], filter_hash: str, dedup_key: UnitKey, final_hash: str) -> list[dict]:
    """Per shard: staged minus duplicates → curated; duplicates → rejects."""
    return _run_shards(config, "finalize", finalize_shard, inputs,
                       (config.root, filter_hash, dedup_key, final_hash, config.storage_options))


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


def _raise_if_failed(label: str, rows: list[dict]) -> None:
    failed = [r["input"] for r in rows if r["status"] == "failed"]
    if failed:
        raise RuntimeError(f"curate {label}: {len(failed)} shard(s) failed (committed shards are kept; re-run to retry): {failed}")


@flow(name="curate", log_prints=True)
def curate(config: PipelineConfig) -> dict:
    """Curate WARC/WET shards into deduplicated documents with a recorded reason for every drop."""
    planned = plan(config)
    todo = [s for s in planned["inputs"] if s not in set(planned["done"])]
    print(f"[curate] {len(planned['inputs'])} input shards, {len(planned['done'])} already curated, {len(todo)} to do")
    final_rows: list[dict] = []
    if todo:
        filtered = filter_shards(config, todo, planned["filter_hash"])
        _raise_if_failed("filter", filtered)
        found = dedup(config, todo, planned["filter_hash"], planned["final_hash"])
        final_rows = finalize_shards(config, todo, planned["filter_hash"], found["key"], planned["final_hash"])
    store = ShardStore(config.root, config.storage_options)
    for source in planned["done"]:
        manifest = store.manifest(UnitKey(STAGE_FINAL, source, planned["final_hash"]))
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
    _raise_if_failed("finalize", final_rows)
    return summary


def _counts(counts: dict) -> dict:
    return {"records": counts.get("records", 0), "kept": counts.get("curated", 0),
            "rejected": counts.get("rejected", 0), "reasons": counts.get("reasons", {})}


if __name__ == "__main__":
    curate(load_config(sys.argv[1], sys.argv[2:]))
