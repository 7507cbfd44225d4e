"""Which curated documents get rewritten, grouped into units (the resume granularity)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pyarrow as pa

from kurate.annotators.synthesis.config import SynthesizeConfig
from kurate.annotators.synthesis.ids import stable_hash
from kurate.storage.catalog import Catalog
from kurate.storage.fs import StorageOptions


@dataclass(frozen=True)
class SourceUnit:
    input: str  # "docs-<hash of the ids>": the unit's input name
    ids: tuple[str, ...]


def _select(root: str, storage_options: StorageOptions | None, sql: str, parameters: list) -> pa.Table:
    """Run one parameterised SELECT over the catalog's views (values travel as DuckDB parameters, never in the SQL)."""
    con = Catalog(root, storage_options).connect()
    try:
        return con.execute(sql, parameters).fetch_arrow_table()
    finally:
        con.close()


def select_sources(root: str, config: SynthesizeConfig, storage_options: StorageOptions | None = None) -> tuple[list[str], bool]:
    """Ids of the source documents in their seeded order (at most max_docs), and whether scores filtered them."""
    use_scores = config.use_scores and _select(root, storage_options, "select count(*) as n from scores", []).column("n")[0].as_py() > 0
    sql = "select distinct id from curated where language = ? and text is not null and length(trim(text)) >= ?"
    if use_scores:
        sql += " and id in (select id from scores where kept)"
    ids = _select(root, storage_options, sql, [config.language, config.chunking.min_chars]).column("id").to_pylist()
    ids.sort(key=lambda i: stable_hash("source", config.seed, i))
    if config.max_docs is not None:
        ids = ids[: config.max_docs]
    return ids, use_scores


def plan_units(root: str, config: SynthesizeConfig, storage_options: StorageOptions | None = None) -> list[SourceUnit]:
    """Units of ``docs_per_unit`` source documents. Groups are consecutive in the seeded order, so a
    larger max_docs keeps the earlier (committed) groups."""
    ids, _ = select_sources(root, config, storage_options)
    units = []
    for start in range(0, len(ids), config.docs_per_unit):
        group = tuple(ids[start : start + config.docs_per_unit])
        units.append(SourceUnit(f"docs-{stable_hash(*group)[:20]}", group))
    return units


def read_sources(root: str, ids: Sequence[str], storage_options: StorageOptions | None = None) -> list[dict]:
    """The documents (id, url, text) of ``ids``, in that order; ids no longer curated are left out."""
    if not ids:
        return []
    rows = _select(root, storage_options, "select id, any_value(url) as url, any_value(text) as text from curated "
                   "where list_contains(?, id) group by id", [list(ids)]).to_pylist()
    by_id = {r["id"]: r for r in rows}
    return [by_id[i] for i in ids if i in by_id]
