"""Retention funnel of a root: how many documents each curate stage dropped, overall and per language.

Published as a Prefect markdown artifact with the plot embedded, two table artifacts, and
``<root>/reports/curate-funnel.{png,html}`` (``flows/artifacts.py``). The numbers come from the
catalog (committed units only), so the report always matches what ``kurate query`` shows. Only
rejects of the curate stages count: later stages (synthesize) write ``rejects`` rows too, but they
reject generations, not crawled records.
"""

from __future__ import annotations

from kurate.flows.artifacts import Report, Table, figure_png, publish_report, publish_table
from kurate.flows.plots import funnel_figure
from kurate.storage.catalog import Catalog
from kurate.storage.fs import StorageOptions
from kurate.tasks.filters.chain import FILTERS
from kurate.tasks.ingest import STAGE as INGEST_STAGE

# The curate stages that write rejects, in pipeline order (tasks/ingest, tasks/quality, tasks/curate);
# a newly registered filter joins through FILTERS.
CURATE_STAGES = [INGEST_STAGE, "url", "language", *FILTERS, "dedup"]
ALWAYS_SHOWN = (INGEST_STAGE, "language", "dedup")


def funnel(root: str, storage_options: StorageOptions | None = None) -> dict:
    """Overall and per-language retention of the curate stages.

    ``{'total': n, 'stages': [...], 'overall': [{stage, dropped, remaining, remaining_pct}],
    'languages': {code: {'identified', 'curated', 'funnel': [{stage, dropped, remaining}]}}}``
    """
    catalog = Catalog(root, storage_options)
    dropped = catalog.query(
        "select stage, coalesce(language, '') as language, count(*)::integer as n from rejects "
        "where list_contains(?, stage) group by all", [CURATE_STAGES]).to_pylist()
    kept = {r["language"]: r["n"] for r in catalog.query(
        "select coalesce(language, '') as language, count(*)::integer as n from curated group by all").to_pylist()}
    seen = {r["stage"] for r in dropped}
    stages = [s for s in CURATE_STAGES if s in seen or s in ALWAYS_SHOWN]
    by_stage: dict[str, int] = {}
    by_language: dict[str, dict[str, int]] = {}
    for row in dropped:
        by_stage[row["stage"]] = by_stage.get(row["stage"], 0) + row["n"]
        if row["language"]:
            by_language.setdefault(row["language"], {})[row["stage"]] = row["n"]
    total = sum(by_stage.values()) + sum(kept.values())
    overall, remaining = [], total
    for stage in stages:
        remaining -= by_stage.get(stage, 0)
        overall.append({"stage": stage, "dropped": by_stage.get(stage, 0), "remaining": remaining,
                        "remaining_pct": round(100.0 * remaining / total, 1) if total else 0.0})
    languages = {}
    from_language_id = stages[stages.index("language"):]
    for language in sorted(set(by_language) | {k for k in kept if k}):
        drops = by_language.get(language, {})
        identified = sum(drops.values()) + kept.get(language, 0)
        rows, remaining = [], identified
        for stage in from_language_id:
            remaining -= drops.get(stage, 0)
            rows.append({"stage": stage, "dropped": drops.get(stage, 0), "remaining": remaining})
        languages[language] = {"identified": identified, "curated": kept.get(language, 0), "funnel": rows}
    return {"total": total, "stages": stages, "overall": overall, "languages": languages}


def language_rows(data: dict) -> list[dict]:
    """One row per language: its code, documents identified and curated, and ``dropped_<stage>`` per stage."""
    return [{"language": language, "identified": info["identified"], "curated": info["curated"],
             **{f"dropped_{r['stage']}": r["dropped"] for r in info["funnel"]}}
            for language, info in data["languages"].items()]


def publish_funnel(root: str, storage_options: StorageOptions | None = None) -> dict:
    """Compute the funnel, publish it (picture + tables) and write PNG + HTML under the root."""
    data = funnel(root, storage_options)
    per_language = language_rows(data)
    publish_table(root, "curate-funnel-stages", data["overall"], "Documents remaining after each curate stage")
    if per_language:
        publish_table(root, "curate-funnel-languages", per_language, "Documents dropped per curate stage and language")
    report = Report(
        name="curate-funnel", title="Curate retention funnel", png=figure_png(funnel_figure(data), dpi=90),
        lines=[f"Root `{root}`: {data['total']} records read, "
               f"{data['overall'][-1]['remaining'] if data['overall'] else 0} curated."],
        tables=[Table("All documents", data["overall"]), Table("Per language (from language ID on)", per_language)])
    return publish_report(root, report, storage_options, description="Documents remaining after each curate stage, per language")
