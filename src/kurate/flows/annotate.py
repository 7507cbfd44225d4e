"""Annotate flow: LLM judges score a language-balanced sample of curated documents.

    kurate annotate --root runs/demo [--judge NAME …] [--per-language N]

1. sample (DuckDB over the catalog): N curated documents per language, seeded → ``samples``; a
   committed decision: new curated shards only fill the places still free (one more increment)
2. label: per judge, a pool of Ray actors (one model each; a GPU each when the cluster has them
   and the backend loads a model) labels the sample chunk by chunk → ``labels``; committed chunks are skipped on re-runs
3. report: counts, invalid rate per judge and language, score histograms (Prefect artifacts)
"""

from __future__ import annotations

import functools
import sys

from prefect import flow, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from kurate.annotators.annotate import JudgeWorker, SampleRef, commit_sample, judge_hash, label_report, stage_of
from kurate.annotators.judge import JudgeConfig
from kurate.flows.artifacts import Report, Table, artifact_key, figure_png, publish_markdown, publish_report, publish_table
from kurate.flows.config import PipelineConfig, load_config
from kurate.flows.plots import label_distribution_figure
from kurate.flows.runner import WorkerResources, in_process_only, map_on_workers
from kurate.storage.catalog import Catalog
from kurate.storage.shards import ShardStore, UnitKey
from kurate.storage.status import record_plan


@task(name="sample")
def sample(config: PipelineConfig) -> SampleRef:
    a = config.annotate
    ref = commit_sample(config.root, a.sample, a.docs_per_unit, config.storage_options)
    print(f"[annotate] sample {ref.unit}: {ref.rows} documents in {len(ref.parts)} increment(s), {len(ref.chunks)} chunks")
    return ref


@task(name="label")
def label(config: PipelineConfig, judge: JudgeConfig, ref: SampleRef) -> list[dict]:
    """Label every chunk of the sample with one judge (Ray actor pool; in-process for local/memory)."""
    a = config.annotate
    stage = stage_of(judge.name)  # the plan names the units JudgeWorker.label_unit commits, for `kurate status`
    record_plan(ShardStore(config.root, config.storage_options), stage, [UnitKey(stage, c, judge_hash(judge)) for c in ref.chunks])
    progress = create_progress_artifact(0.0, key=artifact_key(config.root, "annotate", judge.name, "progress"),
                                        description=f"{judge.name}: chunks done")
    results = []

    def done(result: dict) -> None:
        results.append(result)
        rate = "skipped" if result["skipped"] else f"{result['docs'] / max(result['seconds'], 1e-9):.1f} docs/s"
        print(f"[annotate:{judge.name}] {len(results)}/{len(ref.chunks)} chunks ({rate})", flush=True)
        update_progress_artifact(progress, 100.0 * len(results) / max(len(ref.chunks), 1))

    root, docs_per_unit, storage_options = config.root, a.docs_per_unit, config.storage_options
    map_on_workers(functools.partial(JudgeWorker, judge), ref.chunks,
                   lambda worker, chunk: worker.label_unit(root, ref, chunk, docs_per_unit, storage_options),
                   WorkerResources.for_backend(judge.backend, a.cpus_per_actor), config.ray,
                   workers=a.actors_per_judge, local=in_process_only(config.root), on_result=done,
                   label=f"annotate {judge.name}", unit="chunks")
    return results


@flow(name="annotate", log_prints=True)
def annotate(config: PipelineConfig) -> dict:
    """Label a language-balanced sample of curated documents with every configured judge."""
    if config.ray.submit:  # run this stage as a Ray Job on ray.job_address and follow it (flows/submit.py)
        from kurate.flows.submit import submit_flow

        return submit_flow(config, "annotate")
    a = config.annotate
    ref = sample(config)
    summary = {"sample": ref.unit, "documents": ref.rows, "judges": {}}
    for judge in a.judges:
        results = label(config, judge, ref)
        summary["judges"][judge.name] = {
            "chunks": len(results),
            "labelled_now": sum(r["docs"] for r in results if not r["skipped"]),
            "skipped_chunks": sum(1 for r in results if r["skipped"]),
            "invalid": sum(r["invalid"] for r in results),
        }
    Catalog(config.root, config.storage_options).refresh_file()
    report = label_report(config.root, config.storage_options)
    if report["per_language"]:
        publish_table(config.root, "annotate-judges", report["per_language"], "Labels, invalid rate and mean score per judge and language")
    if report["histogram"]:
        publish_table(config.root, "annotate-histogram", report["histogram"], "Score histogram per judge")
        summary["report"] = publish_label_distribution(config, report["per_language"])
    lines = [f"# annotate: {config.root}", "", f"Sample `{ref.unit}`: {ref.rows} documents.", "",
             "| judge | chunks | labelled now | chunks skipped | invalid |", "|---|---|---|---|---|"]
    lines += [f"| {name} | {s['chunks']} | {s['labelled_now']} | {s['skipped_chunks']} | {s['invalid']} |" for name, s in summary["judges"].items()]
    publish_markdown(config.root, "annotate-summary", "\n".join(lines), "Annotate summary")
    print(f"[annotate] done: {summary}")
    return summary


def publish_label_distribution(config: PipelineConfig, per_language: list[dict]) -> dict:
    """Valid labels per score, judge and language: picture + tables (Prefect artifact and <root>/reports/)."""
    rows = Catalog(config.root, config.storage_options).query("""
        select judge, coalesce(language, '?') as language, cast(round(score) as integer) as score, cast(count(*) as integer) as docs
        from labels where valid group by all order by judge, language, score""").to_pylist()
    report = Report(name="annotate-labels", title="annotate: judge label distribution", png=figure_png(label_distribution_figure(rows)),
                    lines=[f"{sum(r['docs'] for r in rows)} valid labels from {len({r['judge'] for r in rows})} judge(s) on `{config.root}`."],
                    tables=[Table("Labels per judge and language", per_language), Table("Valid labels per score", rows)])
    return publish_report(config.root, report, config.storage_options, description="Judge label distribution per language")


if __name__ == "__main__":
    annotate(load_config(sys.argv[1], sys.argv[2:]))
