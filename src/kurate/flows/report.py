"""Retention funnel of a root: how many documents each stage dropped, overall and per language.

Published as Prefect table artifacts and written as ``<root>/reports/curate-funnel.{png,html}``.
The numbers come from the catalog (committed shards only), so the report always matches what
``kurate query`` shows.
"""

from __future__ import annotations

import base64
import html
import io

from prefect.artifacts import create_table_artifact

from kurate.storage.catalog import Catalog
from kurate.storage.fs import StorageOptions
from kurate.storage.shards import ShardStore

# Stages in pipeline order; a stage not listed here is appended in alphabetical order.
STAGE_ORDER = ["ingest", "url", "language", "gopher_quality", "gopher_repetition", "c4", "fineweb", "dedup"]


def funnel(root: str, storage_options: StorageOptions | None = None) -> dict:
    """Overall and per-language retention: {'overall': [...], 'languages': {lang: [...]}, 'stages': [...]}."""
    catalog = Catalog(root, storage_options)
    dropped = catalog.query("select stage, coalesce(language, '') as language, count(*) as n from rejects group by all").to_pylist()
    kept = {r["language"] or "": r["n"] for r in catalog.query("select language, count(*) as n from curated group by all").to_pylist()}
    seen = {r["stage"] for r in dropped}
    stages = [s for s in STAGE_ORDER if s in seen or s in ("ingest", "language", "dedup")] + sorted(seen - set(STAGE_ORDER))
    by_stage: dict[str, int] = {}
    by_language: dict[str, dict[str, int]] = {}
    for row in dropped:
        by_stage[row["stage"]] = by_stage.get(row["stage"], 0) + row["n"]
        if row["language"]:
            by_language.setdefault(row["language"], {})[row["stage"]] = row["n"]
    total = sum(by_stage.values()) + sum(kept.values())
    overall = []
    remaining = total
    for stage in stages:
        remaining -= by_stage.get(stage, 0)
        overall.append({"stage": stage, "dropped": by_stage.get(stage, 0), "remaining": remaining,
                        "remaining_pct": round(100.0 * remaining / total, 1) if total else 0.0})
    languages = {}
    after_language = stages[stages.index("language"):] if "language" in stages else stages
    for language in sorted(set(by_language) | {k for k in kept if k}):
        identified = sum(by_language.get(language, {}).values()) + kept.get(language, 0)
        rows, remaining = [], identified
        for stage in after_language:
            remaining -= by_language.get(language, {}).get(stage, 0)
            rows.append({"stage": stage, "dropped": by_language.get(language, {}).get(stage, 0), "remaining": remaining})
        languages[language] = {"identified": identified, "curated": kept.get(language, 0), "funnel": rows}
    return {"total": total, "stages": stages, "overall": overall, "languages": languages}


def _plot_png(data: dict) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5))
    stages = [r["stage"] for r in data["overall"]]
    left.bar(range(len(stages)), [r["remaining"] for r in data["overall"]], color="#3b6ea5")
    left.set_xticks(range(len(stages)), stages, rotation=35, ha="right")
    left.set_ylabel("documents remaining")
    left.set_title(f"Retention after each stage ({data['total']} records)")
    # Per language: the main languages only, so the legend stays readable.
    top = sorted(data["languages"].items(), key=lambda kv: -kv[1]["identified"])[:8]
    for language, info in top:
        rows = info["funnel"]
        right.plot([r["stage"] for r in rows], [r["remaining"] for r in rows], marker="o", label=f"{language} ({info['identified']})")
    right.set_title("Per language, from language ID on")
    right.tick_params(axis="x", rotation=35)
    right.set_ylabel("documents remaining")
    if top:
        right.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def _html(data: dict, png: bytes) -> str:
    def table(rows: list[dict]) -> str:
        if not rows:
            return "<p>(none)</p>"
        head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0])
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r.values()) + "</tr>" for r in rows)
        return f"<table border=1 cellpadding=4><tr>{head}</tr>{body}</table>"

    parts = ["<html><head><meta charset='utf-8'><title>kurate curate funnel</title></head><body>",
             "<h1>Curate retention funnel</h1>",
             f"<img src='data:image/png;base64,{base64.b64encode(png).decode()}'/>",
             "<h2>All documents</h2>", table(data["overall"])]
    for language, info in data["languages"].items():
        parts += [f"<h2>{html.escape(language)}: {info['identified']} identified, {info['curated']} curated</h2>", table(info["funnel"])]
    parts.append("</body></html>")
    return "\n".join(parts)


def publish_funnel(root: str, storage_options: StorageOptions | None = None) -> dict:
    """Compute the funnel, publish it as Prefect artifacts and write PNG + HTML under the root."""
    data = funnel(root, storage_options)
    create_table_artifact(data["overall"], key="curate-funnel", description="Documents remaining after each stage")
    per_language = [{"language": lang, "identified": info["identified"], "curated": info["curated"],
                     **{r["stage"]: r["dropped"] for r in info["funnel"]}} for lang, info in data["languages"].items()]
    if per_language:
        create_table_artifact(per_language, key="curate-funnel-languages", description="Dropped per stage and language")
    store = ShardStore(root, storage_options)
    png = _plot_png(data)
    store.fs.makedirs(f"{store.path}/reports", exist_ok=True)
    store.fs.pipe_file(f"{store.path}/reports/curate-funnel.png", png)
    store.fs.pipe_file(f"{store.path}/reports/curate-funnel.html", _html(data, png).encode())
    return {"png": store.url("reports", "curate-funnel.png"), "html": store.url("reports", "curate-funnel.html")}
