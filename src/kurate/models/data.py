"""Training text from Parquet shards: a seeded, weighted mix of sources, with a held-out split.

    mix = ParquetMix([(["scored/a.parquet", "scored/b.parquet"], 0.7), (["synthetic/s.parquet"], 0.3)],
                     seed=0, split="train")
    for text in mix: ...          # every iteration yields the same sequence (re-iterable)

* Each source reads its files in the given order, record batch by record batch (only the `text`
  column and, when present, the id column are read).
* At each draw a source is picked with probability ∝ its weight (numpy Generator seeded with
  `seed`); an exhausted source drops out and the others keep their relative weights. The mix ends
  when every source is exhausted (the trainer starts the next epoch by iterating again).
* Held-out split: a document is "eval" when blake2b(id, or the text where the id is missing)
  maps below `eval_fraction`; independent of the mix, the seed and the file order.
* Documents with an id come as `DocText` (a `str` that carries `doc_id`), so the trainer can
  record which documents it consumed (the `trained_on` dataset, flows/train.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow.parquet as pq


class DocText(str):
    """A training document that knows its id; a plain `str` everywhere else."""

    doc_id: str

    def __new__(cls, text: str, doc_id: str):
        obj = super().__new__(cls, text)
        obj.doc_id = doc_id
        return obj


def is_heldout(key: str, eval_fraction: float) -> bool:
    h = int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "little")
    return h / 2**64 < eval_fraction


def _read_source(files: Sequence[str], split: str, eval_fraction: float, text_column: str,
                 id_column: str, batch_size: int, filesystem) -> Iterator[str]:
    want_eval = split == "eval"
    for path in files:
        pf = pq.ParquetFile(path, filesystem=filesystem) if filesystem is not None else pq.ParquetFile(path)
        columns = [text_column] + ([id_column] if id_column in pf.schema_arrow.names else [])
        for batch in pf.iter_batches(batch_size=batch_size, columns=columns):
            texts = batch.column(text_column).to_pylist()
            ids = batch.column(id_column).to_pylist() if len(columns) == 2 else [None] * len(texts)
            for text, doc_id in zip(texts, ids):
                if not text:
                    continue
                key = str(doc_id) if doc_id is not None else text
                if is_heldout(key, eval_fraction) == want_eval:
                    yield DocText(text, str(doc_id)) if doc_id is not None else text


class ParquetMix:
    """Re-iterable weighted mix of Parquet sources; see the module docstring."""

    def __init__(self, sources: Sequence[tuple[Sequence[str], float]], *, seed: int = 0, split: str = "train",
                 eval_fraction: float = 0.01, text_column: str = "text", id_column: str = "id",
                 batch_size: int = 1024, filesystem=None):
        assert split in ("train", "eval"), f"split must be 'train' or 'eval', not {split!r}"
        assert all(w > 0 for _, w in sources), "source weights must be positive"
        self.sources = [(list(files), float(w)) for files, w in sources]
        self.seed, self.split, self.eval_fraction = seed, split, eval_fraction
        self.text_column, self.id_column = text_column, id_column
        self.batch_size, self.filesystem = batch_size, filesystem

    def __iter__(self) -> Iterator[str]:
        rng = np.random.default_rng(self.seed)
        its = [_read_source(files, self.split, self.eval_fraction, self.text_column, self.id_column,
                            self.batch_size, self.filesystem) for files, _ in self.sources]
        weights = np.array([w for _, w in self.sources])
        active = list(range(len(its)))
        while active:
            p = weights[active] / weights[active].sum()
            k = active[int(rng.choice(len(active), p=p))]
            try:
                yield next(its[k])
            except StopIteration:
                active.remove(k)


def stream_texts(sources: Sequence[tuple[Sequence[str], float]], **kwargs) -> Iterator[str]:
    """One pass over ParquetMix(sources, **kwargs)."""
    return iter(ParquetMix(sources, **kwargs))
