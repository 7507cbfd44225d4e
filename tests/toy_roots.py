"""A root holding one committed curate unit of toy German paragraphs (tests/toy_corpus.py)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from toy_corpus import german_paragraphs
from kurate.storage.schemas import CURATED
from kurate.storage.shards import ShardStore, UnitKey


def german_root(root: str | Path, docs: int, seed: int) -> str:
    """Commit `docs` paragraphs as `curated` (ids d0000…, language de) under `root`; returns the root."""
    texts = german_paragraphs(docs, seed=seed)
    with ShardStore(str(root)).open_unit(UnitKey("curate", "toy.warc.gz", "t"), ["curated", "rejects"]) as unit:
        unit.write("curated", pa.Table.from_pylist(
            [{"id": f"d{i:04d}", "text": t, "language": "de"} for i, t in enumerate(texts)], schema=CURATED))
    return str(root)
