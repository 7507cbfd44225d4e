"""JQL flows: ``distill`` trains one head per judge on stored embeddings; ``score`` applies every
head to the whole curated corpus and keeps documents above per-head quantile thresholds.

    kurate distill --root runs/demo
    kurate score --root runs/demo

Both start with the same embed step (one Ray task per curated shard, GPU when the cluster has
one), which skips shards already embedded with the same embedder config.
"""

from __future__ import annotations

import sys

from prefect import flow, task

from kurate.annotators.jql import (STAGE_EMBED, STAGE_SCORE_RAW, commit_thresholds, curated_units, distill as distill_judge, embed_key,
                            embed_shard, finalize_scores, head_agreement, registered, score_hash, score_shard)
from kurate.errors import PreconditionError
from kurate.flows.artifacts import Report, Table, figure_png, publish_report, publish_table
from kurate.flows.config import PipelineConfig, load_config
from kurate.flows.plots import score_histogram_figure, spearman_figure
from kurate.flows.runner import in_process_only, run_per_shard
from kurate.storage.catalog import Catalog
from kurate.storage.shards import ShardStore, UnitKey
from kurate.storage.status import record_plan


def _check(label: str, outcomes) -> list[dict]:
    failed = [o for o in outcomes if o.error is not None]
    if failed:
        raise RuntimeError(f"{label}: {len(failed)} shard(s) failed; first: {failed[0].input}: {failed[0].error.splitlines()[0]}")
    return [o.result for o in outcomes]


@task(name="embed-shards")
def embed(config: PipelineConfig) -> list[dict]:
    """Embed every curated shard once per embedder (stored as float16, reused by distill and score)."""
    units = [m.unit for m in curated_units(ShardStore(config.root, config.storage_options))]
    if not units:
        raise PreconditionError(f"{config.root} has no committed curated shards", "run `kurate curate` first")
    record_plan(ShardStore(config.root, config.storage_options), STAGE_EMBED, [embed_key(u, config.jql.embedder) for u in units])
    results = _check("embed", run_per_shard(embed_shard, units, (config.root, config.jql.embedder, config.storage_options),
                                            config.ray, local=in_process_only(config.root), gpus=config.jql.gpus_per_task, label="embed"))
    print(f"[jql:embed] {len(results)} shards, {sum(r['docs'] for r in results if not r['skipped'])} documents embedded now, "
          f"{sum(1 for r in results if r['skipped'])} shards reused")
    return results


@flow(name="distill", log_prints=True)
def distill(config: PipelineConfig) -> dict:
    """Distill each judge's labels into a JQL head on frozen embeddings; evaluate per language."""
    if config.ray.submit:  # run this stage as a Ray Job on ray.job_address and follow it (flows/submit.py)
        from kurate.flows.submit import submit_flow

        return submit_flow(config, "distill")
    embed(config)
    judges = config.jql.distill.judges or [r["judge"] for r in Catalog(config.root, config.storage_options).query(
        "select distinct judge from labels where valid order by 1").to_pylist()]
    if not judges:
        raise PreconditionError(f"{config.root} has no valid labels", "run `kurate annotate` first")
    cards = []
    for judge in judges:
        cards += distill_judge(config.root, judge, config.jql.embedder, config.jql.distill, config.storage_options)
    names = [c["name"] for c in cards]
    agreement = head_agreement(config.root, names, config.jql.embedder, config.storage_options)
    rows = []
    for card in cards:
        evaluation = card["evaluation"]
        rows.append({"annotator": card["name"], "language": "overall", **evaluation["overall"]})
        rows += [{"annotator": card["name"], "language": lang, **m} for lang, m in evaluation.get("per_language", {}).items()]
    publish_table(config.root, "distill-evaluation", rows, "Held-out Spearman/Kendall per annotator and language")
    if agreement:
        publish_table(config.root, "distill-agreement", agreement, "Spearman between heads on stored embeddings")
    report = publish_spearman(config, cards, rows)
    print(f"[distill] {len(cards)} annotators: " + ", ".join(f"{c['name']} (ρ={c['evaluation']['overall']['spearman']:.3f})" for c in cards))
    return {"annotators": names, "evaluation": rows, "agreement": agreement, "report": report}


def publish_spearman(config: PipelineConfig, cards: list[dict], rows: list[dict]) -> dict:
    """Held-out Spearman per language and head: picture + table (Prefect artifact and <root>/reports/)."""
    modes = sorted({c["evaluation"]["mode"] for c in cards})
    report = Report(name="distill-spearman", title="distill: held-out Spearman per language",
                    png=figure_png(spearman_figure(cards)),
                    lines=[f"Evaluation: {'; '.join(modes)}. Labels per head: {', '.join(str(c['training_labels']) for c in cards)}."],
                    tables=[Table("Spearman and Kendall per head and language", rows)])
    return publish_report(config.root, report, config.storage_options, description="Held-out Spearman per language and head")


@flow(name="score", log_prints=True)
def score(config: PipelineConfig) -> dict:
    """Score every curated document with every head; keep those above the per-head thresholds."""
    if config.ray.submit:  # run this stage as a Ray Job on ray.job_address and follow it (flows/submit.py)
        from kurate.flows.submit import submit_flow

        return submit_flow(config, "score")
    embed(config)
    s = config.jql.score
    names = registered(config.root, s.annotators, config.storage_options)
    heads_hash = score_hash(names, config.root, config.storage_options)
    units = [m.unit for m in curated_units(ShardStore(config.root, config.storage_options))]
    record_plan(ShardStore(config.root, config.storage_options), STAGE_SCORE_RAW, [UnitKey(STAGE_SCORE_RAW, u, heads_hash) for u in units])
    _check("score", run_per_shard(score_shard, units, (config.root, names, config.jql.embedder, heads_hash, config.storage_options),
                                  config.ray, local=in_process_only(config.root), gpus=config.jql.gpus_per_task, label="score"))
    thresholds = commit_thresholds(config.root, [UnitKey(STAGE_SCORE_RAW, u, heads_hash) for u in units], s, config.storage_options)
    results = _check("finalize", run_per_shard(finalize_scores, units, (config.root, names, heads_hash, thresholds, s, config.storage_options),
                                               config.ray, local=in_process_only(config.root), label="score finalize"))
    catalog = Catalog(config.root, config.storage_options)
    catalog.refresh_file()
    version = thresholds.config_hash
    con = catalog.connect()
    try:
        share = con.execute("""select language, count(*)::integer as docs, count(*) filter (where kept)::integer as kept,
                                      round(avg(kept::integer), 3)::double as share_kept
                               from scores where thresholds_version = ? group by all order by all""", [version]).fetch_arrow_table().to_pylist()
        values = con.execute("select annotator, language, quantile, value from thresholds where version = ? order by all",
                             [version]).fetch_arrow_table().to_pylist()
    finally:
        con.close()
    publish_table(config.root, "score-kept", share, "Share of documents kept per language")
    publish_table(config.root, "score-thresholds", values, "Per-head thresholds")
    publish_score_histograms(config, names, version, share, values)
    print(f"[score] {sum(r['docs'] for r in results)} documents scored by {len(names)} heads; kept per language: {share}")
    return {"annotators": names, "thresholds_version": version, "kept": share, "thresholds": values}


def publish_score_histograms(config: PipelineConfig, names: list[str], version: str, share: list[dict], thresholds: list[dict]) -> dict:
    """Histogram of every head's scores per language with its keep threshold marked (artifact + <root>/reports/)."""
    columns = ", ".join(f'"{n}"' for n in names)  # head names are registered annotator names (no quotes)
    rows = Catalog(config.root, config.storage_options).query(
        f"select language, {columns} from scores where thresholds_version = ?", [version]).to_pylist()
    values: dict[tuple[str, str], list[float]] = {}
    for row in rows:
        for name in names:
            values.setdefault((name, row["language"] or "?"), []).append(row[name])
    limits = {(t["annotator"], t["language"]): t["value"] for t in thresholds}
    quantiles = sorted({t["quantile"] for t in thresholds})
    report = Report(name="score-histograms", title="score: head scores per language", png=figure_png(score_histogram_figure(values, limits)),
                    lines=[f"{len(rows)} documents, {len(names)} heads; keep rule `{config.jql.score.keep}` at quantile "
                           f"{', '.join(map(str, quantiles))} ({'per language' if config.jql.score.per_language else 'corpus-wide'})."],
                    tables=[Table("Kept per language", share), Table("Thresholds", thresholds)])
    return publish_report(config.root, report, config.storage_options, description="Head score histograms with the keep thresholds")


if __name__ == "__main__":
    distill(load_config(sys.argv[1], sys.argv[2:]))
