"""Seeded, language-balanced samples of curated documents (DuckDB over the catalog).

N documents per language, optionally spread evenly over length strata (quantiles of the text
length within each language), so judge labels are comparable across languages. The order inside a
stratum is an md5 of (seed, id): the same seed and corpus give the same sample on any machine.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from kurate.storage.schemas import SAMPLES


def balanced_sample(
    con: duckdb.DuckDBPyConnection,
    per_language: int,
    languages: list[str] | None = None,
    strata: int = 1,
    seed: int = 0,
) -> pa.Table:
    """Up to ``per_language`` curated documents per language (from the ``curated`` view of ``con``)."""
    if per_language < 1 or strata < 1:
        raise ValueError("per_language and strata must be at least 1")
    where = ""
    params: list = [str(seed)]
    if languages:
        where = f"where language in ({', '.join('?' for _ in languages)})"
        params += list(languages)
    per_stratum = -(-per_language // strata)
    sql = f"""
        with docs as (
            select id, language, text, length(text) as chars,
                   ntile({strata}) over (partition by language order by length(text), id) - 1 as stratum,
                   md5(? || ':' || id) as draw
            from curated {where}
        ), ranked as (
            select *, row_number() over (partition by language, stratum order by draw) as in_stratum
            from docs
        ), capped as (
            select *, row_number() over (partition by language order by in_stratum, stratum, draw) as in_language
            from ranked where in_stratum <= {per_stratum}
        )
        select id, language, cast(stratum as integer) as stratum, chars, text
        from capped where in_language <= {per_language}
        order by language, id
    """
    table = con.execute(sql, params).fetch_arrow_table()
    return table.cast(SAMPLES)
