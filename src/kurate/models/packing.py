"""Packing documents into training sequences, with a resumable position and masked replay.

    packer = Packer(texts, codec, seq_len=64)           # texts: a list, a ParquetMix or an iterator
    batch = packer.next_batch(8)                          # codec.collate of 8 sequences of 65 units
    state = packer.state()                                # {"epoch", "doc", "offset"}: saved in checkpoints

Documents become [BOS] + units and are packed back to back into sequences of seq_len + 1 units;
consecutive sequences share one unit, so every unit after the first is a target exactly once. The
position (epoch, document index, unit offset) makes resume exact: a packer given the same stream
from its beginning and a saved state continues with the same batches (models/train.py).
"""

from __future__ import annotations

from collections import deque
from typing import Iterable

import torch

from kurate.models.contracts import Codec


class MaskedText(str):
    """A training document that counts only some of its units (a core-tokenset replay document).

    A plain `str` everywhere else (codec fitting, printing); `spans` are [start, end) ranges of
    unit indices into codec.encode(text).
    """

    spans: tuple[tuple[int, int], ...]

    def __new__(cls, text: str, spans):
        obj = super().__new__(cls, text)
        obj.spans = tuple((int(a), int(b)) for a, b in spans)
        return obj

    def unit_mask(self, n_units: int) -> list[bool]:
        """[BOS] + units → keep flags, cut after the last kept unit (BOS itself is never kept)."""
        keep = [False] * (n_units + 1)
        for a, b in self.spans:
            for j in range(max(0, a), min(b, n_units)):
                keep[j + 1] = True
        last = max((j for j, k in enumerate(keep) if k), default=0)
        return keep[:last + 1]

    def packed(self, codec) -> tuple[list, list[bool], list[int] | None]:
        """[BOS] + units up to the last kept one, their keep flags, positions (None: 0, 1, 2 …)."""
        units = [codec.bos] + codec.encode(self)
        mask = self.unit_mask(len(units) - 1)
        return units[:len(mask)], mask, None


class KeptSpans(MaskedText):
    """A core-tokenset replay document that holds only its kept units, each at its original position.

    `pieces[k]` is the text of a kept span that starts at unit index `starts[k]` of its document
    (codec.encode(piece) gives that span's units). Packed as [BOS] at position 0, then per span a
    BOS placeholder at the position of the unit before it (a query that predicts the span's first
    unit from the kept units before it; no stored text, no loss) and the span's units at their
    positions start + 1 …; every kept unit bears loss. The str value is the pieces joined.
    """

    def __new__(cls, pieces, starts):
        pieces = tuple(pieces)
        obj = super().__new__(cls, "".join(pieces), [])
        obj.pieces, obj.starts = pieces, tuple(int(a) for a in starts)
        return obj

    def packed(self, codec) -> tuple[list, list[bool], list[int]]:
        units, mask, pos = [codec.bos], [False], [0]
        for piece, a in zip(self.pieces, self.starts):
            u = codec.encode(piece)
            if a > 0:  # the unit before the span was not kept: a placeholder query in its place
                units, mask, pos = units + [codec.bos], mask + [False], pos + [a]
            units += u
            mask += [True] * len(u)
            pos += list(range(a + 1, a + 1 + len(u)))
        return units, mask, pos

    def unit_mask(self, n_units: int) -> list[bool]:
        raise TypeError("KeptSpans is not a mask over codec.encode(text); use packed(codec)")


class Packer:
    """Documents → sequences of seq_len + 1 units; resumable position (epoch, doc, offset).

    The position names the first document still needed (its epoch and index in the stream) and
    the unit offset into it. A re-iterable source (list, ParquetMix) starts over for the next
    epoch unless cycle=False; a one-shot iterator ends training when it runs dry.

    Masked replay: a document given as a `MaskedText` contributes loss only on its kept units;
    its units after the last kept one are dropped (they would only be masked context). A batch
    holding any masked unit gets `loss_mask` (B, seq_len + 1, bool, per unit; the models read
    [:, 1:] for the targets); batches without one are exactly what they were before. A `KeptSpans`
    document also carries positions: a batch holding one gets `positions` (B, seq_len + 1): each
    sequence counts from 0 and steps by 1 between units, except inside a KeptSpans document, which
    steps by its units' original distances (models/contracts.py).
    """

    def __init__(self, texts: Iterable[str], codec: Codec, seq_len: int, state: dict | None = None,
                 cycle: bool | None = None):
        self.texts, self.codec, self.n = texts, codec, seq_len + 1
        self.cyclic = (iter(texts) is not texts) if cycle is None else cycle
        s = state or {"epoch": 0, "doc": 0, "offset": 0}
        self.epoch, self.doc, self.offset = s["epoch"], s["doc"], s["offset"]
        # (epoch, doc index, units, keep mask, position steps from the unit before)
        self.buffer: deque[tuple[int, int, list, list | None, list | None]] = deque()
        self.last_mask: list[bool] | None = None  # of the latest sequence; None = every unit counts
        self.last_positions: list[int] | None = None  # of the latest sequence; None = 0, 1, 2 …
        self.buffered = 0
        self._docs = self._doc_stream(self.epoch, self.doc)

    def _doc_stream(self, epoch: int, skip: int):
        while True:
            for i, text in enumerate(self.texts):
                if i >= skip:
                    yield epoch, i, text
            if not self.cyclic:
                return
            epoch, skip = epoch + 1, 0

    def state(self) -> dict:
        epoch, doc = (self.buffer[0][0], self.buffer[0][1]) if self.buffer else (self.epoch, self.doc)
        return {"epoch": epoch, "doc": doc, "offset": self.offset}

    def next_sequence(self) -> list:
        while self.buffered - self.offset < self.n:
            e, i, text = next(self._docs)  # StopIteration: the source ran dry
            steps = None
            if isinstance(text, MaskedText):  # [BOS] + units up to the last kept one
                units, mask, at = text.packed(self.codec)
                steps = None if at is None else [1] + [b - a for a, b in zip(at, at[1:])]
            else:
                units, mask = [self.codec.bos] + self.codec.encode(text), None
            self.buffer.append((e, i, units, mask, steps))
            self.buffered += len(units)
        seq, need, k, pos = [], self.n, 0, self.offset
        masks: list[bool] = []
        steps: list[int] = []
        while need:
            _, _, units, mask, step = self.buffer[k]
            take = units[pos:pos + need]
            seq += take
            masks += mask[pos:pos + need] if mask is not None else [True] * len(take)
            steps += step[pos:pos + need] if step is not None else [1] * len(take)
            need -= len(take)
            k, pos = k + 1, 0
        self.last_mask = None if all(masks) else masks
        self.last_positions = None
        if any(x != 1 for x in steps[1:]):
            at = [0]
            for x in steps[1:]:
                at.append(at[-1] + x)
            self.last_positions = at
        self.offset += self.n - 1  # the last unit starts the next sequence
        while self.buffer and len(self.buffer[0][2]) <= self.offset:
            e, i, done, _, _ = self.buffer.popleft()
            self.offset -= len(done)
            self.buffered -= len(done)
            self.epoch, self.doc = e, i + 1  # past the end of an epoch is fine: resume skips it
        return seq

    def next_batch(self, batch_size: int, rank: int = 0, world: int = 1) -> dict[str, torch.Tensor]:
        """batch_size sequences: slice `rank` of the next world × batch_size (data parallel: models/train.py)."""
        seqs, masks, positions = [], [], []
        for _ in range(batch_size * world):
            seqs.append(self.next_sequence())
            masks.append(self.last_mask)
            positions.append(self.last_positions)
        lo, hi = rank * batch_size, (rank + 1) * batch_size
        batch = self.codec.collate(seqs[lo:hi])
        if any(m is not None for m in masks[lo:hi]):
            batch["loss_mask"] = torch.tensor([m or [True] * self.n for m in masks[lo:hi]], dtype=torch.bool)
        if any(p is not None for p in positions[lo:hi]):
            batch["positions"] = torch.tensor([p or list(range(self.n)) for p in positions[lo:hi]], dtype=torch.long)
        return batch
