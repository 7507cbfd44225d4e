"""What a synthesize run produced: acceptance per prompt type and one accepted example per type."""

from __future__ import annotations

from kurate.annotators.synthesis.config import PROMPT_TYPES
from kurate.storage.catalog import Catalog
from kurate.storage.fs import StorageOptions


def summarise(results: list[dict]) -> list[dict]:
    """Generated / accepted counts and acceptance rate per prompt type over unit results."""
    totals: dict[str, dict[str, int]] = {}
    for result in results:
        for prompt_type, c in (result.get("per_type") or {}).items():
            t = totals.setdefault(prompt_type, {"generated": 0, "accepted": 0})
            t["generated"] += c["generated"]
            t["accepted"] += c["accepted"]
    return [{"prompt_type": t, "generated": c["generated"], "accepted": c["accepted"],
             "acceptance_rate": round(c["accepted"] / c["generated"], 3) if c["generated"] else 0.0}
            for t, c in sorted(totals.items(), key=lambda kv: PROMPT_TYPES.index(kv[0]))]


def examples_per_type(root: str, storage_options: StorageOptions | None = None) -> list[dict]:
    """One accepted generation per prompt type (the smallest id), with its source document's URL."""
    return Catalog(root, storage_options).query("""
        select s.prompt_type, s.id, s.source_id, c.url, s.text
        from synthetic s left join (select id, any_value(url) as url from curated group by id) c on c.id = s.source_id
        qualify row_number() over (partition by s.prompt_type order by s.id) = 1
        order by s.prompt_type""").to_pylist()
