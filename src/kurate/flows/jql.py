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
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from kurate.annotators.jql import (STAGE_SCORE_RAW, commit_thresholds, curated_units, distill as distill_judge, embed_shard,
                            finalize_scores, head_agreement, registered, score_hash, score_shard)
from kurate.flows.config import PipelineConfig, load_config
from kurate.flows.runner import in_process_only, run_per_shard
from kurate.storage.catalog import Catalog
from kurate.storage.shards import ShardStore, UnitKey


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
        raise RuntimeError(f"{config.root} has no committed curated shards: run `kurate curate` first")
    results = _check("embed", run_per_shard(embed_shard, units, (config.root, config.jql.embedder, config.storage_options),
                                            config.ray, local=in_process_only(config.root), gpus=config.jql.gpus_per_task))
    print(f"[jql:embed] {len(results)} shards, {sum(r['docs'] for r in results if not r['skipped'])} documents embedded now, "
          f"{sum(1 for r in results if r['skipped'])} shards reused")
    return results


@flow(name="distill", log_prints=True)
def distill(config: PipelineConfig) -> dict:
    """Distill each judge's labels into a JQL head on frozen embeddings; evaluate per language."""
    embed(config)
    judges = config.jql.distill.judges or [r["judge"] for r in Catalog(config.root, config.storage_options).query(
        "select distinct judge from labels where valid order by 1").to_pylist()]
    if not judges:
        raise RuntimeError(f"{config.root} has no valid labels: run `kurate annotate` first")
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
    create_table_artifact(rows, key="distill-evaluation", description="Held-out Spearman/Kendall per annotator and language")
    if agreement:
        create_table_artifact(agreement, key="distill-agreement", description="Spearman between heads on stored embeddings")
    _plot(config, cards)
    print(f"[distill] {len(cards)} annotators: " + ", ".join(f"{c['name']} (ρ={c['evaluation']['overall']['spearman']:.3f})" for c in cards))
    return {"annotators": names, "evaluation": rows, "agreement": agreement}


def _plot(config: PipelineConfig, cards: list[dict]) -> None:
    """Per-language Spearman bar chart under <root>/reports/ and as a markdown artifact."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.5))
    width = 0.8 / max(len(cards), 1)
    languages = sorted({lang for c in cards for lang in c["evaluation"].get("per_language", {})})
    for i, card in enumerate(cards):
        per = card["evaluation"].get("per_language", {})
        ax.bar([j + i * width for j in range(len(languages))], [per.get(lang, {}).get("spearman") or 0 for lang in languages],
               width, label=card["name"])
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(languages))], languages)
    ax.set_ylabel("held-out Spearman")
    ax.legend(fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    store = ShardStore(config.root, config.storage_options)
    store.fs.makedirs(f"{store.path}/reports", exist_ok=True)
    store.fs.pipe_file(f"{store.path}/reports/distill-spearman.png", buffer.getvalue())
    lines = ["# distill: held-out Spearman per language", "", f"Plot: `{store.url('reports', 'distill-spearman.png')}`", "",
             "| annotator | " + " | ".join(languages) + " | overall |", "|---" * (len(languages) + 2) + "|"]
    for card in cards:
        per = card["evaluation"].get("per_language", {})
        cells = [f"{per[lang]['spearman']:.3f}" if lang in per and per[lang]["spearman"] == per[lang]["spearman"] else "–" for lang in languages]
        lines.append(f"| {card['name']} | " + " | ".join(cells) + f" | {card['evaluation']['overall']['spearman']:.3f} |")
    create_markdown_artifact("\n".join(lines), key="distill-summary", description="Distill summary")


@flow(name="score", log_prints=True)
def score(config: PipelineConfig) -> dict:
    """Score every curated document with every head; keep those above the per-head thresholds."""
    embed(config)
    s = config.jql.score
    names = registered(config.root, s.annotators, config.storage_options)
    heads_hash = score_hash(names, config.root, config.storage_options)
    units = [m.unit for m in curated_units(ShardStore(config.root, config.storage_options))]
    _check("score", run_per_shard(score_shard, units, (config.root, names, config.jql.embedder, heads_hash, config.storage_options),
                                  config.ray, local=in_process_only(config.root), gpus=config.jql.gpus_per_task))
    thresholds = commit_thresholds(config.root, [UnitKey(STAGE_SCORE_RAW, u, heads_hash) for u in units], s, config.storage_options)
    results = _check("finalize", run_per_shard(finalize_scores, units, (config.root, names, heads_hash, thresholds, s, config.storage_options),
                                               config.ray, local=in_process_only(config.root)))
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
    create_table_artifact(share, key="score-kept", description="Share of documents kept per language")
    create_table_artifact(values, key="score-thresholds", description="Per-head thresholds")
    print(f"[score] {sum(r['docs'] for r in results)} documents scored by {len(names)} heads; kept per language: {share}")
    return {"annotators": names, "thresholds_version": version, "kept": share, "thresholds": values}


if __name__ == "__main__":
    distill(load_config(sys.argv[1], sys.argv[2:]))
