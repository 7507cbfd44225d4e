"""BPE baseline: tokenizer round trip, byte accounting, training (CPU, seconds)."""

from __future__ import annotations

import tempfile

import pytest

from kurate.models.bpe import BPECodec, BPEConfig
from kurate.models.train import train
from kurate.models.train_config import preset
from toy_corpus import german_paragraphs


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_bpe_codec_round_trip_and_bytes():
    codec = BPECodec.fit(BPEConfig(vocab_size=400), german_paragraphs(100))
    text = "Übermorgen trägt die Bäckerin 12 Körbe 😀 nach Köln."
    ids = codec.encode(text)
    assert codec.decode(ids) == text
    assert sum(codec.unit_bytes(i) for i in ids) == len(text.encode("utf-8"))
    assert codec.unit_bytes(codec.bos) == 0


def test_bpe_trains():
    cfg = preset("tiny", "bpe", seq_len=32, batch_size=8, max_steps=40, warmup_steps=5, log_every=0,
                 eval_batches=2, model_options={"vocab_size": 512})
    with tempfile.TemporaryDirectory() as d:
        s = train(cfg, german_paragraphs(200), german_paragraphs(20, seed=1), d, resume=False)
    losses = [m["loss"] for m in s["history"]]
    assert sum(losses[-5:]) / 5 < 0.6 * sum(losses[:5]) / 5
    assert s["eval_bits_per_byte"] < 2.5
