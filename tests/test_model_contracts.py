"""Every registered model kind against its contracts (models/contracts.py): the codec, the unit LM,
the registry entry, and the trainer and coretokens that rely on them (CPU, tiny dims, seconds).

Parametrized over models/architectures.py MODEL_KINDS: a new kind is checked here without editing
this file. Each kind runs at its own `tiny` preset with a smaller backbone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math

import numpy as np
import pytest
import torch

from kurate.models.architectures import MODEL_KINDS, PRESETS, architecture
from kurate.models.checkpoint import build, load_checkpoint
from kurate.models.contracts import Codec, UnitLM
from kurate.models.coretokens import atman_relevance, encode_docs, score_documents
from kurate.models.packing import Packer
from kurate.models.train import evaluate, train
from kurate.models.train_config import preset
from toy_corpus import german_paragraphs

pytestmark = pytest.mark.usefixtures("one_torch_thread")

KINDS = list(MODEL_KINDS)
TEXT = "Übermorgen trägt die Bäckerin 12 Körbe nach Köln, weil es regnet.\n„Wo?“ — 😀"
SEQ = 12  # units per test sequence after BOS


def tiny_config(kind: str, **train_fields):
    return preset("tiny", kind, seq_len=16, model_options={"d_model": 32, "n_layer": 1, "n_head": 2}, **train_fields)


@pytest.fixture(scope="module", params=KINDS)
def built(request):
    """(kind, model, codec): the kind's tiny model, codec fitted on toy German."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures run before the per-test one_torch_thread
    try:
        model, codec = build(tiny_config(request.param, seed=1), fit_texts=german_paragraphs(40))
    finally:
        torch.set_num_threads(threads)
    return request.param, model, codec


def sequences(codec, n: int = 3) -> list[list]:
    """n sequences of [BOS] + SEQ units from different paragraphs."""
    texts = german_paragraphs(n, seed=9)
    return [([codec.bos] + codec.encode(t))[:SEQ + 1] for t in texts]


@pytest.mark.parametrize("kind", KINDS)
def test_registry_entry_covers_every_preset(kind):
    arch = architecture(kind)
    assert dataclasses.is_dataclass(arch.config) and arch.codec.kind == kind
    names = {f.name for f in dataclasses.fields(arch.config)}
    assert {"d_model", "n_layer", "n_head", "max_len"} <= names  # what the presets and the trainer set
    assert set(arch.presets) == set(PRESETS), "every kind gives its fields for every preset"
    for name in PRESETS:
        cfg = preset(name, kind)
        hp = cfg.model_hparams()
        assert isinstance(hp, arch.config) and hp.max_len == cfg.seq_len and hp.d_model == PRESETS[name].d_model


def test_codec_contract(built, tmp_path):
    kind, _, codec = built
    assert isinstance(codec, Codec) and codec.kind == kind
    for text in (TEXT, *german_paragraphs(5, seed=2)):
        units = codec.encode(text)
        assert codec.decode(units) == text and codec.decode([codec.bos, *units]) == text
        assert sum(codec.unit_bytes(u) for u in units) == len(text.encode("utf-8"))
    assert codec.unit_bytes(codec.bos) == 0
    codec.save(str(tmp_path))
    loaded = type(codec).load(str(tmp_path))
    assert isinstance(loaded, Codec) and loaded.encode(TEXT) == codec.encode(TEXT)


def test_collate_shapes_and_counts(built):
    _, _, codec = built
    seqs = sequences(codec)
    batch = codec.collate(seqs)
    assert all(isinstance(v, torch.Tensor) and v.shape[:2] == (3, SEQ + 1) for v in batch.values())
    assert batch["count"].tolist() == [[codec.unit_bytes(u) for u in s] for s in seqs]


def test_forward_contract(built):
    _, model, codec = built
    assert isinstance(model, UnitLM) and isinstance(model.codec, Codec)
    batch = codec.collate(sequences(codec))
    model.train()
    out = model(batch)
    assert out["loss"].dim() == 0 and torch.isfinite(out["loss"]) and out["loss"].requires_grad
    assert out["unit_loss"].shape == (3, SEQ) and bool((out["unit_loss"] >= 0).all())
    assert out["bytes"].dim() == 0 and int(out["bytes"]) == int(batch["count"][:, 1:].sum())  # a tensor: no sync in forward
    model.zero_grad()
    out["loss"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    model.eval()
    with torch.no_grad():
        ev = model(batch)
    model.train()
    assert "nats" in ev and math.isfinite(float(ev["nats"])) and float(ev["nats"]) > 0  # bits/byte at eval


def test_loss_mask_zeroes_masked_targets_only(built):
    _, model, codec = built
    batch = codec.collate(sequences(codec))
    mask = torch.ones(3, SEQ + 1, dtype=torch.bool)
    mask[:, 0] = False  # BOS is never a target
    mask[0, 3:6] = False
    mask[2, -1] = False
    with torch.no_grad():
        plain = model(batch)
        ones = model({**batch, "loss_mask": torch.ones(3, SEQ + 1, dtype=torch.bool)})
        masked = model({**batch, "loss_mask": mask})
    assert torch.allclose(plain["loss"], ones["loss"]) and plain["bytes"] == ones["bytes"]
    keep = mask[:, 1:]
    assert float(masked["unit_loss"][~keep].abs().sum()) == 0.0
    # a masked unit is still context: the kept targets' losses do not change
    torch.testing.assert_close(masked["unit_loss"][keep], plain["unit_loss"][keep], rtol=1e-5, atol=1e-6)
    assert masked["bytes"] == int((batch["count"] * mask)[:, 1:].sum())


def test_key_bias_suppresses_one_key_for_later_queries(built):
    _, model, codec = built
    batch = codec.collate(sequences(codec))
    p = 5  # the suppressed key (a unit position after BOS)
    bias = torch.zeros(3, SEQ + 1)
    with torch.no_grad():
        plain = model(batch)["unit_loss"]
        zero = model({**batch, "key_bias": bias})["unit_loss"]
        bias[:, p] = math.log(1 - 0.9)
        suppressed = model({**batch, "key_bias": bias})["unit_loss"]
    torch.testing.assert_close(zero, plain, rtol=1e-5, atol=1e-6)
    # targets predicted before position p never see key p; those from p on do
    torch.testing.assert_close(suppressed[:, :p], plain[:, :p], rtol=1e-5, atol=1e-6)
    assert float((suppressed[:, p:] - plain[:, p:]).abs().max()) > 1e-6


def test_key_scale_suppresses_one_key_for_later_queries(built):
    """AtMan's own manipulation (`key_scale`): ones are the plain model; 1 − f on key p changes only
    the predictions whose context holds p."""
    _, model, codec = built
    batch = codec.collate(sequences(codec))
    p = 5
    scale = torch.ones(3, SEQ + 1)
    with torch.no_grad():
        plain = model(batch)["unit_loss"]
        ones = model({**batch, "key_scale": scale})["unit_loss"]
        scale[:, p] = 1 - 0.9
        suppressed = model({**batch, "key_scale": scale})["unit_loss"]
    torch.testing.assert_close(ones, plain, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(suppressed[:, :p], plain[:, :p], rtol=1e-4, atol=1e-5)
    assert float((suppressed[:, p:] - plain[:, p:]).abs().max()) > 1e-6


def test_key_scale_is_atmans_row_min_shifted_score_scaling():
    """Worked by hand: one head of width 1, q = k = (1, 2, 3), v = (1, 0, 0). The last query's raw
    scores are (3, 6, 9); shifted by their minimum (0, 3, 6); key 1 scaled by 0.1 → (0, 0.3, 6);
    its output is the softmax weight of key 0: 1 / (1 + e^0.3 + e^6) = 0.0024644."""
    from kurate.models.backbone import _scaled_score_attention

    q = k = torch.tensor([1.0, 2.0, 3.0]).view(1, 1, 3, 1)
    v = torch.tensor([1.0, 0.0, 0.0]).view(1, 1, 3, 1)
    future = torch.ones(3, 3, dtype=torch.bool).triu(1)
    bias = torch.zeros(1, 1, 3, 3).masked_fill(future, float("-inf"))
    y = _scaled_score_attention(q, k, v, torch.tensor([[1.0, 0.1, 1.0]]), bias)
    expected = 1 / (1 + math.exp(0.3) + math.exp(6))
    assert abs(float(y[0, 0, 2, 0]) - expected) < 1e-6
    # the first query sees only key 0; the second: scores (2, 4) → (0, 2) → key 1 scaled → (0, 0.2)
    assert abs(float(y[0, 0, 0, 0]) - 1.0) < 1e-6
    assert abs(float(y[0, 0, 1, 0]) - 1 / (1 + math.exp(0.2))) < 1e-6


def test_backbone_sees_one_embedding_per_unit(built):
    """coretokens hooks model.backbone: its input is one d-vector per input unit, its output feeds the head."""
    _, model, codec = built
    batch = codec.collate(sequences(codec))
    shapes = []
    hooks = [model.backbone.register_forward_pre_hook(lambda m, args: shapes.append(tuple(args[0].shape))),
             model.backbone.register_forward_hook(lambda m, args, out: shapes.append(tuple(out.shape)))]
    try:
        with torch.no_grad():
            model(batch)
    finally:
        for h in hooks:
            h.remove()
    assert shapes == [(3, SEQ, model.cfg.d_model)] * 2


def test_flops_per_unit_counts_at_least_the_backbone(built):
    _, model, _ = built
    backbone = 6 * sum(p.numel() for p in model.backbone.parameters() if p.dim() == 2)
    short, long = model.flops_per_unit(16, 5.0), model.flops_per_unit(64, 5.0)
    assert math.isfinite(short) and short >= backbone > 0
    assert long > short  # attention grows with the context


def test_calibrate_and_generate(built):
    _, model, codec = built
    batch = codec.collate(sequences(codec))
    model.train()
    fitted = model.calibrate(batch)
    assert model.training and (fitted is None or fitted > 0)
    model.eval()
    prompt = "Die Bäckerin"
    greedy = model.generate(prompt, max_new_units=3, temperature=0.0, seed=0)
    assert greedy.startswith(prompt) and len(greedy) > len(prompt)
    assert greedy == model.generate(prompt, max_new_units=3, temperature=0.0, seed=1)  # greedy ignores the seed
    sampled = model.generate(prompt, max_new_units=3, temperature=1.0, seed=4)
    assert sampled == model.generate(prompt, max_new_units=3, temperature=1.0, seed=4)
    model.train()


def test_coretokens_scores_and_attributes(built):
    _, model, codec = built
    units = encode_docs(codec, german_paragraphs(4, seed=3), 13)
    scores = score_documents(model, codec, units, batch_size=2)
    assert scores.grad_emb.shape == (4, model.cfg.d_model) and (scores.grad_norm > 0).all()
    assert np.isfinite(scores.loss).all() and scores.units.tolist() == [len(u) for u in units]
    rel = atman_relevance(model, codec, units[0], suppression=0.9)
    assert rel.shape == (len(units[0]),) and np.isfinite(rel).all() and rel[-1] == 0  # the last unit is no one's context


@pytest.mark.parametrize("kind", KINDS)
def test_trainer_trains_saves_and_loads_every_kind(kind, tmp_path):
    cfg = tiny_config(kind, batch_size=2, max_steps=2, warmup_steps=1, eval_batches=1, log_every=0)
    summary = train(cfg, german_paragraphs(20), german_paragraphs(4, seed=1), str(tmp_path))
    assert summary["steps"] == 2 and math.isfinite(summary["eval_loss"]) and summary["eval_bits_per_byte"] > 0
    assert all(m["flops_per_s"] > 0 for m in summary["history"])
    model, codec, saved = load_checkpoint(str(tmp_path))
    assert saved == cfg and isinstance(model, UnitLM) and isinstance(codec, Codec)
    # the checkpoint is the trained model: its held-out loss is the one the run reported
    held_out = Packer(german_paragraphs(4, seed=1), codec, cfg.seq_len, cycle=False).next_batch(cfg.batch_size)
    again = evaluate(model, [held_out], torch.device("cpu"), contextlib.nullcontext)
    assert again["eval_loss"] == pytest.approx(summary["eval_loss"], rel=1e-5)
    assert again["eval_bits_per_byte"] == pytest.approx(summary["eval_bits_per_byte"], rel=1e-5)
