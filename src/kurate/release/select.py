"""Which documents each release source offers: one read-only catalog query per source.

The filters run in DuckDB over the committed views (``scores`` joined to ``curated`` for the JQL
rule and per-head minimums); everything after that — dedup, quotas, splits — is pure Arrow
(release/mix.py). Every source comes back with the same columns (``SOURCE_COLUMNS`` plus one
``score_<head>`` column per JQL head), so sources concatenate.
"""

from __future__ import annotations

import pyarrow as pa

from kurate.errors import PreconditionError
from kurate.release.config import ReleaseSource
from kurate.storage.catalog import Catalog

SCORES_FIXED = {"id", "language", "kept", "thresholds_version"}

SOURCE_COLUMNS = pa.schema([
    pa.field("id", pa.string(), nullable=False),
    pa.field("text", pa.string()),
    pa.field("language", pa.string()),
    pa.field("source", pa.string()),  # the dataset it came from
    pa.field("url", pa.string()),  # for synthetic rows: the source document's URL
    pa.field("source_id", pa.string()),  # synthetic rows: the curated document rewritten
    pa.field("prompt_type", pa.string()),
    pa.field("language_score", pa.float32()),
    pa.field("jql_kept", pa.bool_()),  # null: not scored
])


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def score_heads(catalog: Catalog) -> list[str]:
    """The JQL heads with a column in ``scores`` (sorted)."""
    columns = catalog.query("select column_name from (describe scores)").column("column_name").to_pylist()
    return sorted(c for c in columns if c not in SCORES_FIXED)


def has_rows(catalog: Catalog, dataset: str) -> bool:
    return catalog.query(f"select count(*) > 0 as any from {_ident(dataset)}").column("any")[0].as_py()


def _columns_of(catalog: Catalog, dataset: str) -> set[str]:
    try:
        return set(catalog.query(f"select column_name from (describe {_ident(dataset)})").column("column_name").to_pylist())
    except Exception:  # noqa: BLE001 - DuckDB's catalog error: no such view
        raise PreconditionError(f"release source {dataset!r}: no such dataset in the catalog",
                                "name a committed dataset (kurate status lists them)") from None


def select_source(catalog: Catalog, source: ReleaseSource, heads: list[str]) -> pa.Table:
    """The source's documents that pass its filter, in the shared column layout (no order)."""
    head_cols = ", ".join(f"CAST(NULL AS FLOAT) AS {_ident('score_' + h)}" for h in heads)
    where, params = ["d.text IS NOT NULL", "length(d.text) > 0"], []
    if source.languages:
        where.append("d.language IN (SELECT unnest(?))")
        params.append(list(source.languages))
    if source.dataset == "curated":
        scored = has_rows(catalog, "scores")
        if source.jql == "kept" and not scored:
            raise PreconditionError("release source curated: jql: kept, but nothing is scored yet", "run the score stage first")
        missing = sorted(set(source.min_scores) - set(heads))
        if missing:
            raise PreconditionError(f"release source curated: min_scores names heads without scores: {missing} "
                                    f"(scored heads: {heads})", "fix release.sources[].min_scores")
        if scored and source.jql != "all":
            where.append("coalesce(s.kept, false)")
        for head, minimum in sorted(source.min_scores.items()):
            where.append(f"s.{_ident(head)} >= ?")
            params.append(float(minimum))
        heads_sql = ", ".join(f"s.{_ident(h)}::FLOAT AS {_ident('score_' + h)}" for h in heads)
        sql = (f"SELECT d.id, d.text, d.language, 'curated' AS source, d.url, NULL::VARCHAR AS source_id, "
               f"NULL::VARCHAR AS prompt_type, d.language_score::FLOAT AS language_score, s.kept AS jql_kept"
               f"{', ' + heads_sql if heads else ''} FROM curated d LEFT JOIN scores s ON s.id = d.id")
    elif source.dataset == "synthetic":
        if source.prompt_types:
            where.append("d.prompt_type IN (SELECT unnest(?))")
            params.append(list(source.prompt_types))
        sql = (f"SELECT d.id, d.text, d.language, 'synthetic' AS source, c.url, d.source_id, d.prompt_type, "
               f"d.language_score::FLOAT AS language_score, NULL::BOOLEAN AS jql_kept{', ' + head_cols if heads else ''} "
               f"FROM synthetic d LEFT JOIN (SELECT DISTINCT ON (id) id, url FROM curated) c ON c.id = d.source_id")
    else:
        columns = _columns_of(catalog, source.dataset)
        if not {"id", "text"} <= columns:
            raise PreconditionError(f"release source {source.dataset!r} has no id and text columns (has {sorted(columns)})",
                                    "name a dataset of documents")
        if source.languages and "language" not in columns:
            raise PreconditionError(f"release source {source.dataset!r} has no language column to filter on",
                                    "drop its languages filter")

        def col(name: str, sql_type: str) -> str:
            return f"d.{name}::{sql_type} AS {name}" if name in columns else f"NULL::{sql_type} AS {name}"

        sql = (f"SELECT d.id::VARCHAR AS id, d.text, {col('language', 'VARCHAR')}, ? AS source, {col('url', 'VARCHAR')}, "
               f"{col('source_id', 'VARCHAR')}, {col('prompt_type', 'VARCHAR')}, {col('language_score', 'FLOAT')}, "
               f"NULL::BOOLEAN AS jql_kept{', ' + head_cols if heads else ''} FROM {_ident(source.dataset)} d")
        params.insert(0, source.dataset)
    table = catalog.query(f"{sql} WHERE {' AND '.join(where)}", params)
    schema = pa.schema(list(SOURCE_COLUMNS) + [pa.field("score_" + h, pa.float32()) for h in heads])
    return table.select(schema.names).cast(schema)
