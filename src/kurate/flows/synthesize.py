"""Synthesize flow: LLM rewrites of kept German documents in five prompt types.

    kurate synthesize --root runs/demo [--types summary --types qa …] [--max-docs N]

1. plan (DuckDB over the catalog): German curated documents, only ``kept`` ones when ``scores``
   exist, seeded order, at most max_docs → units of docs_per_unit documents
2. generate: a pool of Ray actors (one model each; a GPU each when the cluster has them and the
   backend loads a model) chunks, rewrites, gates and commits unit by unit → ``synthetic`` +
   ``rejects`` (stage ``synthesize``); committed units are skipped on re-runs. In-process for ``ray.executor: local`` and memory:// roots.
3. report: counts and acceptance rate per prompt type, rejection reasons, one example per type
   (Prefect artifacts)
"""

from __future__ import annotations

import functools
import sys
from collections import Counter

from prefect import flow, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from kurate.annotators.synthesis import (SourceUnit, SynthesizeConfig, SynthWorker, examples_per_type, plan_units, stage_of, summarise,
                                         synth_hash)
from kurate.flows.artifacts import artifact_key, publish_markdown, publish_table
from kurate.flows.config import PipelineConfig, load_config
from kurate.flows.runner import WorkerResources, in_process_only, map_on_workers
from kurate.storage.catalog import Catalog
from kurate.storage.shards import ShardStore, UnitKey
from kurate.storage.status import record_plan


def settings(config: PipelineConfig) -> SynthesizeConfig:
    return config.synthesize


@task(name="plan-synthesis")
def plan(config: PipelineConfig) -> list[SourceUnit]:
    s = settings(config)
    units = plan_units(config.root, s, config.storage_options)
    stage, version = stage_of(s.name), synth_hash(s)  # the keys SynthWorker.synthesize_unit commits under
    record_plan(ShardStore(config.root, config.storage_options), stage, [UnitKey(stage, u.input, version) for u in units])
    print(f"[synthesize] {sum(len(u.ids) for u in units)} source documents in {len(units)} units")
    return units


@task(name="generate")
def generate(config: PipelineConfig, units: list[SourceUnit]) -> list[dict]:
    """Rewrite every unit (Ray actor pool, one model per actor; in-process for local/memory)."""
    s = settings(config)
    progress = create_progress_artifact(0.0, key=artifact_key(config.root, "synthesize", s.name, "progress"),
                                        description=f"synthesize {s.name}: units done")
    results: list[dict] = []

    def done(result: dict) -> None:
        results.append(result)
        rate = "skipped" if result["skipped"] else f"{result['generated'] / max(result['seconds'], 1e-9):.2f} generations/s"
        print(f"[synthesize:{s.name}] {len(results)}/{len(units)} units ({rate}; accepted {result['accepted']}/{result['generated']})", flush=True)
        update_progress_artifact(progress, 100.0 * len(results) / max(len(units), 1))

    root, storage_options = config.root, config.storage_options
    map_on_workers(functools.partial(SynthWorker, s), units,
                   lambda worker, unit: worker.synthesize_unit(root, unit, storage_options),
                   WorkerResources.for_backend(s.generator.backend, s.cpus_per_actor), config.ray,
                   workers=s.actors, local=in_process_only(config.root), on_result=done,
                   label=f"synthesize {s.name}", unit="units")
    return results


def _excerpt(text: str, limit: int = 600) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@flow(name="synthesize", log_prints=True)
def synthesize(config: PipelineConfig) -> dict:
    """Rewrite kept German documents with an LLM (wikipedia, summary, qa, list, simple) into ``synthetic``."""
    if config.ray.submit:  # run this stage as a Ray Job on ray.job_address and follow it (flows/submit.py)
        from kurate.flows.submit import submit_flow

        return submit_flow(config, "synthesize")
    s = settings(config)
    units = plan(config)
    results = generate(config, units)
    per_type = summarise(results)
    reasons = Counter()
    for r in results:
        reasons.update(r.get("reasons") or {})
    summary = {
        "stage": stage_of(s.name),
        "units": len(results),
        "skipped_units": sum(1 for r in results if r["skipped"]),
        "documents": sum(r["docs"] for r in results),
        "generated_now": sum(r["generated"] for r in results if not r["skipped"]),
        "accepted_now": sum(r["accepted"] for r in results if not r["skipped"]),
        "generated": sum(r["generated"] for r in results),
        "accepted": sum(r["accepted"] for r in results),
        "per_type": per_type,
        "reasons": dict(reasons.most_common()),
    }
    Catalog(config.root, config.storage_options).refresh_file()
    if per_type:
        publish_table(config.root, "synthesize-types", per_type, "Generations, accepted and acceptance rate per prompt type")
    if reasons:
        publish_table(config.root, "synthesize-rejects", [{"reason": k, "generations": v} for k, v in reasons.most_common()],
                      "Why generations were rejected (dataset rejects, stage synthesize)")
    lines = [f"# synthesize: {config.root}", "", f"Stage `{summary['stage']}`, model `{s.generator.model}`: "
             f"{summary['documents']} documents in {summary['units']} units ({summary['skipped_units']} already committed); "
             f"{summary['accepted']}/{summary['generated']} generations accepted.", "",
             "| type | generated | accepted | acceptance rate |", "|---|---|---|---|"]
    lines += [f"| {t['prompt_type']} | {t['generated']} | {t['accepted']} | {t['acceptance_rate']:.1%} |" for t in per_type]
    lines += ["", "## One example per type", ""]
    examples = examples_per_type(config.root, config.storage_options)
    for ex in examples:
        lines += [f"### {ex['prompt_type']}", "", f"`{ex['id']}` from `{ex['source_id']}` ({ex['url'] or 'no url'})", "",
                  "> " + _excerpt(ex["text"]), ""]
    if not examples:
        lines.append("_no accepted generations yet_")
    publish_markdown(config.root, "synthesize-summary", "\n".join(lines), "Synthesize summary with one example per type")
    print(f"[synthesize] done: {summary}")
    return summary


if __name__ == "__main__":
    synthesize(load_config(sys.argv[1], sys.argv[2:]))
