"""Pure functions over Arrow tables that turn the sources' candidate documents into a release.

    table = assemble([(source_cfg, candidates), …], seed=0, validation_fraction=0.05)

1. every candidate gets a seeded key (blake2b of seed and id): it decides the fraction choice,
   which documents fill a quota first, and the release's document order — none depends on the
   order files were read in, so the same inputs give byte-identical shards;
2. dedup across sources, the earlier source winning: the same id never appears twice, and the
   same text (case- and whitespace-folded) never appears twice — so a synthetic "rewrite" that
   copies its source is dropped, and a document two datasets share is released once;
3. the source's ``fraction`` (a threshold on the key), then its word quotas (total and per
   language), filled in key order;
4. the split: ``validation`` when the id hashes below ``validation_fraction``, else ``train``.
"""

from __future__ import annotations

import hashlib

import pyarrow as pa
import pyarrow.compute as pc

from kurate.release.config import ReleaseSource


def _key(seed: int, doc_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{seed}\x00{doc_id}".encode(), digest_size=8).digest(), "big")


def _text_hash(text: str) -> bytes:
    return hashlib.blake2b(" ".join(text.casefold().split()).encode(), digest_size=16).digest()


def in_validation(doc_id: str, fraction: float) -> bool:
    """The split rule (independent of the seed, so a document keeps its split across versions)."""
    h = int.from_bytes(hashlib.blake2b(doc_id.encode(), digest_size=8).digest(), "little")
    return h / 2**64 < fraction


def word_counts(texts: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Whitespace-separated words per text."""
    return pc.fill_null(pc.list_value_length(pc.utf8_split_whitespace(texts)), 0).cast(pa.int64())


def choose(source: ReleaseSource, candidates: pa.Table, seed: int, seen_ids: set[str], seen_texts: set[bytes]) -> pa.Table:
    """The documents this source contributes, in key order, with ``words`` and ``order_key`` columns;
    updates ``seen_ids``/``seen_texts`` with what it took."""
    ids = candidates.column("id").to_pylist()
    texts = candidates.column("text").to_pylist()
    words = word_counts(candidates.column("text")).to_pylist()
    languages = candidates.column("language").to_pylist()
    keys = [_key(seed, i) for i in ids]
    limit = source.fraction * 2**64
    taken, total, per_language = [], 0, {}
    for row in sorted(range(len(ids)), key=lambda r: (keys[r], ids[r])):
        doc_id = ids[row]
        if keys[row] >= limit or doc_id in seen_ids:
            continue
        text_hash = _text_hash(texts[row])
        if text_hash in seen_texts:
            continue
        n, language = words[row], languages[row]
        if source.max_words is not None and total + n > source.max_words:
            continue  # a shorter document may still fit: quotas are filled, not cut at the first miss
        cap = source.max_words_per_language.get(language) if language is not None else None
        if cap is not None and per_language.get(language, 0) + n > cap:
            continue
        seen_ids.add(doc_id)
        seen_texts.add(text_hash)
        total += n
        per_language[language] = per_language.get(language, 0) + n
        taken.append(row)
    chosen = candidates.take(pa.array(taken, pa.int64()))
    chosen = chosen.append_column("words", pa.array([words[r] for r in taken], pa.int64()))
    return chosen.append_column("order_key", pa.array([keys[r] for r in taken], pa.uint64()))


def assemble(sources: list[tuple[ReleaseSource, pa.Table]], seed: int, validation_fraction: float) -> pa.Table:
    """All sources' choices as one table in release order (by key), with a ``split`` column."""
    seen_ids: set[str] = set()
    seen_texts: set[bytes] = set()
    parts = [choose(source, candidates, seed, seen_ids, seen_texts) for source, candidates in sources]
    table = pa.concat_tables(parts) if parts else pa.table({})
    order = pc.sort_indices(table, sort_keys=[("order_key", "ascending"), ("id", "ascending")])
    table = table.take(order).drop_columns(["order_key"])
    split = [("validation" if in_validation(i, validation_fraction) else "train") for i in table.column("id").to_pylist()]
    return table.append_column("split", pa.array(split, pa.string()))


def shards(table: pa.Table, rows_per_file: int) -> dict[str, list[pa.Table]]:
    """Split → its files' tables (at least one file per split that has rows)."""
    out: dict[str, list[pa.Table]] = {}
    for split in ("train", "validation"):
        part = table.filter(pc.equal(table.column("split"), split)).drop_columns(["split"])
        if part.num_rows:
            out[split] = [part.slice(i, rows_per_file) for i in range(0, part.num_rows, rows_per_file)]
    return out
