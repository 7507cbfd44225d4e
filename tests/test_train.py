"""Trainer core: exact resume, packing, schedule, checkpoints, Parquet data mix (CPU, seconds)."""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from kurate.models.data import ParquetMix, is_heldout, stream_texts
from kurate.models.hat import HATCodec
from kurate.models.checkpoint import generate_text, load_checkpoint
from kurate.models.packing import Packer
from kurate.models.train import lr_at, train
from kurate.models.train_config import preset
from toy_corpus import german_paragraphs


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Crash(Exception):
    pass


def small(kind: str, **kw):
    mc = {"hat": {}, "tfree": {"vocab_rows": 512, "wordfreq_top": 0}, "bpe": {"vocab_size": 400}}[kind]
    mc = {**mc, "d_model": 64, "n_layer": 1, "n_head": 2}
    return preset("tiny", kind, seq_len=16, batch_size=4, max_steps=8, warmup_steps=2, log_every=0,
                  checkpoint_every=2, eval_every=4, eval_batches=1, model_options=mc, **kw)


@pytest.mark.parametrize("kind", ["hat", "tfree", "bpe"])
def test_resume_gives_the_same_losses(tmp_path, kind):
    texts = german_paragraphs(40)
    ev = german_paragraphs(5, seed=1)
    cfg = small(kind)
    full = train(cfg, texts, ev, str(tmp_path / "full"))
    ref = [m["loss"] for m in full["history"]]

    def crash_at_5(m):
        if m["step"] == 5:
            raise Crash

    with pytest.raises(Crash):
        train(cfg, texts, ev, str(tmp_path / "resumed"), on_metrics=crash_at_5)  # last checkpoint: step 4
    seen = []
    resumed = train(cfg, texts, ev, str(tmp_path / "resumed"), on_metrics=lambda m: seen.append(m))
    assert [m["step"] for m in seen] == [5, 6, 7, 8]
    assert [m["loss"] for m in seen] == ref[4:]
    assert resumed["eval_loss"] == full["eval_loss"]


def test_resume_with_a_one_shot_iterator(tmp_path):
    texts = german_paragraphs(60)
    cfg = small("bpe")
    full = [m["loss"] for m in train(cfg, iter(texts), None, str(tmp_path / "a"))["history"]]
    with pytest.raises(Crash):
        train(cfg, iter(texts), None, str(tmp_path / "b"), on_metrics=lambda m: (_ for _ in ()).throw(Crash)
              if m["step"] == 3 else None)
    seen = []
    train(cfg, iter(texts), None, str(tmp_path / "b"), on_metrics=seen.append)
    assert [m["loss"] for m in seen] == full[2:]


def test_packer_state_round_trip():
    codec = HATCodec()
    texts = german_paragraphs(10)
    a = Packer(texts, codec, 16)
    for _ in range(7):
        a.next_sequence()
    b = Packer(texts, codec, 16, state=a.state())
    for _ in range(30):  # crosses into the next epoch
        assert a.next_sequence() == b.next_sequence()
    # consecutive sequences share one unit and cover the stream without gaps
    c = Packer(texts, codec, 16, cycle=False)
    s1, s2 = c.next_sequence(), c.next_sequence()
    assert s1[-1] == s2[0] and len(s1) == 17


def test_lr_schedule():
    cfg = preset("tiny", "hat", lr=1e-3, warmup_steps=10, max_steps=110, min_lr_frac=0.1)
    assert lr_at(cfg, 0) == pytest.approx(1e-4)
    assert lr_at(cfg, 9) == pytest.approx(1e-3)
    assert lr_at(cfg, 60) == pytest.approx(0.55e-3)
    assert lr_at(cfg, 110) == pytest.approx(1e-4)


def test_checkpoint_files_metrics_and_generation(tmp_path):
    metrics = []
    cfg = small("hat")
    s = train(cfg, german_paragraphs(40), german_paragraphs(5, seed=1), str(tmp_path), on_metrics=metrics.append)
    ck = tmp_path / "checkpoint"
    assert {"model.safetensors", "optimizer.pt", "config.json", "codec.json"} <= set(os.listdir(ck))
    assert json.loads((ck / "config.json").read_text())["step"] == 8
    torch.load(ck / "optimizer.pt", weights_only=True)
    for key in ("loss", "bits_per_byte", "units_per_s", "bytes_per_s", "flops_per_s", "lr", "grad_norm"):
        assert key in metrics[-1]
    assert "eval_bits_per_byte" in metrics[3] and s["steps"] == 8
    model, codec, cfg2 = load_checkpoint(str(tmp_path))
    assert cfg2 == cfg
    out = generate_text(str(ck), "Die Bäckerin", max_new_units=4, temperature=0.9, seed=3)
    assert out.startswith("Die Bäckerin")
    assert out == generate_text(str(ck), "Die Bäckerin", max_new_units=4, temperature=0.9, seed=3)


def _write_shard(path, texts, ids=None):
    cols = {"text": texts}
    if ids is not None:
        cols["id"] = ids
    pq.write_table(pa.table(cols), path)


def test_parquet_mix_is_deterministic_weighted_and_split(tmp_path):
    a = [f"A{i}" for i in range(300)]
    b = [f"B{i}" for i in range(300)]
    _write_shard(tmp_path / "a1.parquet", a[:150], [f"a{i}" for i in range(150)])
    _write_shard(tmp_path / "a2.parquet", a[150:], [f"a{i}" for i in range(150, 300)])
    _write_shard(tmp_path / "b.parquet", b)  # no id column: the text is the key
    sources = [([str(tmp_path / "a1.parquet"), str(tmp_path / "a2.parquet")], 3.0), ([str(tmp_path / "b.parquet")], 1.0)]
    mix = ParquetMix(sources, seed=7, eval_fraction=0.1)
    first, second = list(mix), list(mix)
    assert first == second == list(stream_texts(sources, seed=7, eval_fraction=0.1))
    assert list(ParquetMix(sources, seed=8, eval_fraction=0.1)) != first
    held = list(ParquetMix(sources, seed=7, split="eval", eval_fraction=0.1))
    assert not set(held) & set(first) and len(set(held) | set(first)) == 600
    assert 20 < len(held) < 100
    # weight 3:1 → early on about three A documents per B document
    head = first[:120]
    assert 2.0 < sum(t[0] == "A" for t in head) / max(1, sum(t[0] == "B" for t in head)) < 4.5
    assert is_heldout("x", 1.0) and not is_heldout("x", 0.0)
    # within a source, file order and row order are kept
    a_seen = [t for t in first if t[0] == "A"]
    assert a_seen == sorted(a_seen, key=lambda t: int(t[1:]))


def _documents_run(cfg, texts, out: str, crash_at: int | None = None) -> list[tuple[str, int, int]]:
    """(id, first step, checkpoint step) as the train flow commits them: buffered per step, kept at
    each segment end (right before a checkpoint); a crash loses the uncommitted segment."""
    committed, buffer = [], []

    def on_documents(step, ids):
        if step == crash_at:
            raise Crash
        buffer.extend((doc_id, step) for doc_id in ids)

    def on_segment_end(step):
        committed.extend((doc_id, first, step) for doc_id, first in buffer)
        buffer.clear()

    try:
        train(cfg, texts, None, out, on_documents=on_documents, on_segment_end=on_segment_end)
    except Crash:
        pass
    return committed


def test_a_resumed_run_reports_the_documents_an_uninterrupted_one_does(tmp_path):
    from kurate.models.data import DocText

    texts = [DocText(t, f"d{i}") for i, t in enumerate(german_paragraphs(6))]  # several epochs in 12 steps
    cfg = small("bpe").replace(max_steps=12, checkpoint_every=4)
    full = _documents_run(cfg, texts, str(tmp_path / "a"))
    assert sorted(d for d, _, _ in full) == [f"d{i}" for i in range(6)]  # every document once, epoch 0 only
    assert [first for _, first, _ in full] == sorted(first for _, first, _ in full)
    killed = _documents_run(cfg, texts, str(tmp_path / "b"), crash_at=7)  # checkpoint at 4, segment 5-7 lost
    assert killed == [row for row in full if row[2] <= 4]
    resumed = _documents_run(cfg, texts, str(tmp_path / "b"))
    assert resumed and killed + resumed == full  # the resumed part is not empty: epoch 0 spans the checkpoint


def test_checkpoints_at_a_default_interval(tmp_path):
    from kurate.models.train_config import TrainConfig

    assert TrainConfig().checkpoint_every == 50
    cfg = small("bpe").replace(max_steps=60, checkpoint_every=TrainConfig().checkpoint_every, eval_every=0)
    texts = german_paragraphs(40)
    with pytest.raises(Crash):
        train(cfg, texts, None, str(tmp_path / "r"), on_metrics=lambda m: (_ for _ in ()).throw(Crash) if m["step"] == 55 else None)
    _, _, saved = load_checkpoint(str(tmp_path / "r"))
    steps = []
    train(cfg, texts, None, str(tmp_path / "r"), on_metrics=lambda m: steps.append(m["step"]))
    assert steps == list(range(51, 61))  # resumed from the step-50 checkpoint, not from 0
