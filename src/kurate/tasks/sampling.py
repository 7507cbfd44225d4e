"""Seeded, language-balanced samples of curated documents (DuckDB over the catalog).

N documents per language, optionally spread evenly over length strata (quantiles of the text
length within each language), so judge labels are comparable across languages. The order inside a
stratum is an md5 of (seed, id): the same seed and corpus give the same sample on any machine.

A sample is a committed decision (DESIGN.md §3): when curated shards are added, ``taken`` (the
documents already drawn) keeps its places and only the places still free in each language and
stratum are filled from the documents not drawn yet — a top-up, never a redraw.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from kurate.storage.schemas import SAMPLES

TAKEN = pa.schema([pa.field("id", pa.string(), nullable=False)])


def balanced_sample(
    con: duckdb.DuckDBPyConnection,
    per_language: int,
    languages: list[str] | None = None,
    strata: int = 1,
    seed: int = 0,
    taken: pa.Table | None = None,
) -> pa.Table:
    """Up to ``per_language`` curated documents per language (from the ``curated`` view of ``con``).

    ``taken``: ids already in the sample. They count against their language's and stratum's places
    (when still curated) and are never returned again, so the result is exactly the top-up."""
    if per_language < 1 or strata < 1:
        raise ValueError("per_language and strata must be at least 1")
    where = ""
    params: list = [str(seed)]
    if languages:
        where = f"where language in ({', '.join('?' for _ in languages)})"
        params += list(languages)
    con.register("kurate_taken", (taken if taken is not None else TAKEN.empty_table()).select(["id"]))
    per_stratum = -(-per_language // strata)
    sql = f"""
        with docs as (
            select id, language, text, length(text) as chars,
                   ntile({strata}) over (partition by language order by length(text), id) - 1 as stratum,
                   md5(? || ':' || id) as draw,
                   id in (select id from kurate_taken) as is_taken
            from curated {where}
        ), held as (  -- places the committed sample already fills, per language and stratum
            select language, stratum, count(*) filter (where is_taken) as in_stratum,
                   sum(count(*) filter (where is_taken)) over (partition by language) as in_language
            from docs group by language, stratum
        ), ranked as (
            select d.*, h.in_language as held_language,
                   h.in_stratum + row_number() over (partition by d.language, d.stratum order by d.draw) as in_stratum
            from docs d join held h using (language, stratum) where not d.is_taken
        ), capped as (
            select *, held_language + row_number() over (partition by language order by in_stratum, stratum, draw) as in_language
            from ranked where in_stratum <= {per_stratum}
        )
        select id, language, cast(stratum as integer) as stratum, chars, text
        from capped where in_language <= {per_language}
        order by language, id
    """
    try:
        table = con.execute(sql, params).fetch_arrow_table()
    finally:
        con.unregister("kurate_taken")
    return table.cast(SAMPLES)
