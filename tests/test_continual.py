"""Core tokensets and continual training: attribution on a planted toy, masked replay gradients,
the replay share in loss-bearing units, budgeted selection, the `coretokens` dataset, `kurate
continual` end to end and the `continual` flow as a Ray Job (conftest `ray_head`; CPU)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch

from kurate.models.bpe import BOS, BPECodec, BPEConfig, BPEModel
from kurate.models.checkpoint import build
from kurate.models.coretokens import (ATMAN_SUPPRESSION, atman_relevance, build_buffer, doc_batch, encode_docs,
                                      gradxinput_relevance, kept_rows, replay_texts, score_documents,
                                      select_documents, span_rows)
from kurate.models.packing import KeptSpans, MaskedText, Packer
from kurate.models.train import train
from kurate.models.train_config import preset
from kurate.storage.catalog import Catalog
from kurate.storage.schemas import CORETOKENS, CURATED
from kurate.storage.shards import ShardStore, UnitKey
from toy_corpus import german_paragraphs

pytestmark = pytest.mark.usefixtures("one_torch_thread")

KEYS = [f"k{i}" for i in range(6)]
FILLERS = [f"f{i}" for i in range(12)]


def _word_codec() -> BPECodec:
    """A word-level tokenizer behind the BPE codec: one token per planted word."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {BOS: 0, **{w: i + 1 for i, w in enumerate(KEYS + FILLERS)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=BOS))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return BPECodec(tok)


def _planted(rng: random.Random) -> str:
    """key, five random fillers, the key again: only the first unit tells the last one."""
    key = rng.choice(KEYS)
    return " ".join([key, *rng.choices(FILLERS, k=5), key])


COPY_LOSS = 0.05  # nats on the last (copied) unit; a filler costs ln 12 ≈ 2.5 whatever the model


def _copy_loss(model, codec, docs) -> float:
    with torch.no_grad():
        return float(model(doc_batch(codec, docs))["unit_loss"][:, -1].mean())


@pytest.fixture(scope="module")
def planted_model():
    """Trained to a loss criterion, not for a fixed number of steps. The earlier toy (d 32, 2 heads,
    lr 1e-2) learned the copy for 1 seed of 4 (the others plateau at a held-out copy loss of
    0.2–0.8), so whether it converged depended on the machine's float rounding. This one (d 64,
    4 heads, lr 3e-3) reaches the criterion by step 100 for every seed tried; the step cap and the
    seed loop are a backstop that fails loudly instead of asserting on an untrained model."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures run before the per-test one_torch_thread
    codec = _word_codec()
    probe = [codec.encode(_planted(random.Random(1000 + i))) for i in range(64)]
    try:
        for seed in range(4):
            torch.manual_seed(seed)
            model = BPEModel(BPEConfig(d_model=64, n_layer=1, n_head=4, max_len=16), codec)
            opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
            rng = random.Random(seed)
            for step in range(1, 1501):
                batch = doc_batch(codec, [codec.encode(_planted(rng)) for _ in range(32)])
                model(batch)["loss"].backward()
                opt.step()
                opt.zero_grad()
                if step % 50 == 0 and _copy_loss(model, codec, probe) < COPY_LOSS:
                    return model, codec
        pytest.fail(f"the planted toy never learned the copy (held-out copy loss ≥ {COPY_LOSS} after 4 × 1,500 steps)")
    finally:
        torch.set_num_threads(threads)


def test_attribution_ranks_the_planted_unit_first(planted_model):
    model, codec = planted_model
    rng = random.Random(7)
    docs = [codec.encode(_planted(rng)) for _ in range(8)]
    # the model did learn the copy: the last unit is cheap, the fillers are not
    loss = model(doc_batch(codec, docs))["unit_loss"].detach()
    assert float(loss[:, -1].mean()) < 0.3 < 2.0 < float(loss[:, 1:-1].mean())
    for units in docs:
        for manipulation in ("scores", "weights"):  # AtMan's own, and the weight scaling
            assert int(np.argmax(atman_relevance(model, codec, units, manipulation=manipulation))) == 0
    # gradient×input gives one value per unit (the last feeds nothing); on this toy it does not find
    # the key reliably: the well-predicted last unit's loss gradient is saturated (see BENCHMARKS)
    rels = gradxinput_relevance(model, codec, docs)
    assert [len(r) for r in rels] == [len(d) for d in docs] and all(r[-1] == 0 and r[:-1].sum() > 0 for r in rels)


def _small(kind: str):
    mc = {"hat": {}, "tfree": {"vocab_rows": 512, "wordfreq_top": 0}, "bpe": {"vocab_size": 400}}[kind]
    return preset("tiny", kind, seq_len=16, batch_size=4, max_steps=6, warmup_steps=2, log_every=0,
                  eval_batches=1, model_options={**mc, "d_model": 64, "n_layer": 1, "n_head": 2})


def _grads(model, batch) -> list[torch.Tensor]:
    model.zero_grad()
    out = model(batch)
    out["loss"].backward()
    return [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in model.parameters()]


@pytest.mark.parametrize("kind", ["hat", "tfree", "bpe"])
def test_masked_units_contribute_no_gradient(kind):
    texts = german_paragraphs(30)
    model, codec = build(_small(kind), fit_texts=texts)
    seqs = [([codec.bos] + codec.encode(t))[:10] for t in texts[:3]]
    plain = codec.collate(seqs)
    # an all-true mask is the plain path: same loss, nats and bytes
    ones = {**plain, "loss_mask": torch.ones(3, 10, dtype=torch.bool)}
    a, b = model(plain), model(ones)
    assert torch.allclose(a["loss"], b["loss"]) and a["bytes"] == b["bytes"]
    # mask every row's last unit (only a target, never an input) and one middle unit
    mask = torch.ones(3, 10, dtype=torch.bool)
    mask[:, -1] = False
    mask[0, 4] = False
    batch = {**plain, "loss_mask": mask}
    other = [s[:-1] + [codec.encode(" Zwischenfrühstück")[0]] for s in seqs]  # new targets where masked
    batch2 = {**codec.collate(other), "loss_mask": mask}
    for g1, g2 in zip(_grads(model, batch), _grads(model, batch2)):
        assert torch.allclose(g1, g2, atol=1e-6)
    out = model(batch)
    assert out["bytes"] == int((plain["count"] * mask)[:, 1:].sum())
    assert float(out["unit_loss"].detach()[~mask[:, 1:]].abs().sum()) == 0.0
    # the masked unit's gradient really is gone: dropping it by hand from the mean gives the same loss
    kept = out["unit_loss"][mask[:, 1:]]
    if kind == "bpe":
        assert torch.allclose(out["loss"], kept.mean())


def test_packer_masks_replay_documents():
    texts = german_paragraphs(6)
    _, codec = build(_small("hat"), fit_texts=texts)
    replay = MaskedText(texts[0], [(2, 4)])
    packer = Packer([replay, texts[1]], codec, 16, cycle=False)
    batch = packer.next_batch(2)
    m = batch["loss_mask"]
    # [BOS] + units: kept units 2, 3 → positions 3, 4; the replay document ends after them
    assert m[0, :5].tolist() == [False, False, False, True, True] and m[0, 5:].all()
    assert batch["lens"][0, 5] == 1  # the next document's BOS starts right after the last kept unit
    assert "loss_mask" not in Packer([texts[1]], codec, 16).next_batch(1)


def test_selection_picks_the_budget():
    texts = german_paragraphs(60, seed=5)
    model, codec = build(_small("bpe"), fit_texts=texts)
    units = encode_docs(codec, texts, 17)
    scores = score_documents(model, codec, units)
    total = int(scores.units.sum())
    assert scores.grad_emb.shape == (60, 64) and (scores.grad_norm > 0).all()
    for method in ("loss", "gradnorm", "craig", "random"):
        picked = select_documents(scores, 0.2 * total, method)
        held = sum(len(units[i]) for i in picked)
        assert len(set(picked)) == len(picked)
        assert held >= 0.2 * total > held - len(units[picked[-1]])  # the last pick crosses the budget
    assert select_documents(scores, 0.2 * total, "loss")[0] == int(np.argmax(scores.loss))
    docs = [(f"d{i}", t) for i, t in enumerate(texts)]
    rows = build_buffer(model, codec, docs, budget=0.02, token_fraction=0.1, window=17, scores=scores, units=units)
    kept = sum(r["kept_units"] for r in rows)
    assert 0.02 * total <= kept <= 0.02 * total + 2 * len(rows)  # ceil per document
    for r in rows:  # replay "kept": the byte offsets index the stored text, a piece of the document each
        raw = r["text"].encode()
        for s in r["spans"]:
            assert raw[s["byte_start"]:s["byte_end"]].decode() in texts[int(r["id"][1:])]


@pytest.mark.parametrize("kind", ["hat", "bpe"])
def test_segments_hold_the_kept_units_with_bounded_context(kind):
    texts = german_paragraphs(40, seed=5)
    cfg = _small(kind)
    model, codec = build(cfg.replace(seq_len=64), fit_texts=texts)
    docs = [(f"d{i}", t) for i, t in enumerate(texts)]
    units = encode_docs(codec, texts, 65)
    per_unit = {}
    for c in (None, 16, 4, 0):
        rows = build_buffer(model, codec, docs, budget=0.03, token_fraction=0.1, window=65, units=units,
                            selection="random", context_units=c, replay="context")
        # through the dataset's schema and back, as the flow reads a committed buffer
        rows = pa.Table.from_pylist(rows, schema=CORETOKENS).to_pylist()
        assert rows and all(r["context_units"] == c and r["replay"] == "context" for r in rows)
        # the context arm stores the text up to its last kept unit, and says so
        assert all(r["stored_bytes"] == len(r["text"].encode()) for r in rows)
        positions = kept = 0
        for r in rows:
            u = units[int(r["id"][1:])]
            segs = replay_texts([r])
            loss_bearing = []
            for seg in segs:
                su = codec.encode(seg)
                mask = seg.unit_mask(len(su))
                assert not mask[0] and mask[-1]  # [BOS] + context …, ends with a kept unit
                loss_bearing += [su[j - 1] for j in range(1, len(mask)) if mask[j]]
                positions += len(mask)
            # the segments' loss-bearing units are exactly the kept units, in order
            assert loss_bearing == [x for sp in r["spans"] for x in u[sp["start"]:sp["end"]]]
            kept += r["kept_units"]
            prev = 0
            for sp in r["spans"]:
                assert prev <= sp["context_start"] <= sp["start"]
                assert sp["context_start"] == prev if c is None else sp["start"] - sp["context_start"] <= c
                context = u[sp["context_start"]:sp["start"]]
                assert sp["byte_start"] - sp["context_byte_start"] == sum(codec.unit_bytes(x) for x in context)
                prev = sp["end"]
            # a new segment starts wherever a span's context does not reach back to the previous span
            assert len(segs) == 1 + sum(b["context_start"] != a["end"] for a, b in zip(r["spans"], r["spans"][1:]))
        per_unit[c] = positions / kept
    # replayed positions per kept unit: the whole prefix ≥ 16 ≥ 4 > 0 units of context; no context: [BOS] + span
    assert per_unit[None] >= per_unit[16] >= per_unit[4] > per_unit[0] and per_unit[0] <= 2


def test_atman_suppression_defaults_to_the_papers_f():
    import inspect

    from kurate.flows.config import ContinualConfig

    # AtMan's official Explainer scales a suppressed key by suppression_factor = 0.1 = 1 − f
    assert ATMAN_SUPPRESSION == 0.9 and ContinualConfig().suppression == 0.9
    for fn in (atman_relevance, build_buffer):
        assert inspect.signature(fn).parameters["suppression"].default == 0.9


@pytest.mark.parametrize("kind", ["hat", "bpe"])
def test_kept_buffer_stores_only_the_kept_units(kind):
    texts = german_paragraphs(40, seed=5)
    model, codec = build(_small(kind).replace(seq_len=64), fit_texts=texts)
    docs = [(f"d{i}", t) for i, t in enumerate(texts)]
    units = encode_docs(codec, texts, 65)
    rows = build_buffer(model, codec, docs, budget=0.03, token_fraction=0.1, window=65, units=units, selection="random")
    rows = pa.Table.from_pylist(rows, schema=CORETOKENS).to_pylist()  # the dataset keeps what it stores
    context = build_buffer(model, codec, docs, budget=0.03, token_fraction=0.1, window=65, units=units,
                           selection="random", replay="context", context_units=None)
    assert rows and all(r["replay"] == "kept" and r["context_units"] is None for r in rows)
    for r in rows:
        u = units[int(r["id"][1:])]
        kept = [x for s in r["spans"] for x in u[s["start"]:s["end"]]]
        assert r["kept_units"] == len(kept) >= 1
        # stored bytes are the kept units' bytes: the text holds nothing else
        assert r["stored_bytes"] == len(r["text"].encode()) == sum(codec.unit_bytes(x) for x in kept)
        assert r["spans"][0]["byte_start"] == 0 and r["spans"][-1]["byte_end"] == r["stored_bytes"]
    # the same documents' prefix up to the last kept unit (the context arm) stores several times more
    assert sum(r["stored_bytes"] for r in context) > 3 * sum(r["stored_bytes"] for r in rows)
    # replay: one document per row, the kept units at their original positions
    (doc,) = replay_texts(rows[:1])
    assert isinstance(doc, KeptSpans) and doc == rows[0]["text"]
    u, r = units[int(rows[0]["id"][1:])], rows[0]
    packed, mask, pos = doc.packed(codec)
    want_units, want_pos = [codec.bos], [0]
    for s in r["spans"]:
        if s["start"] > 0:
            want_units, want_pos = want_units + [codec.bos], want_pos + [s["start"]]
        want_units += u[s["start"]:s["end"]]
        want_pos += list(range(s["start"] + 1, s["end"] + 1))
    assert packed == want_units and pos == want_pos and sum(mask) == r["kept_units"]
    assert [x for x, m in zip(packed, mask) if m] == [x for s in r["spans"] for x in u[s["start"]:s["end"]]]


@pytest.mark.parametrize("kind", ["hat", "bpe"])
def test_kept_replay_keeps_original_positions(kind):
    """The packed kept units get their original positions: the model's loss on them equals its loss
    on the whole document with [BOS] placeholders before the spans and every other unit's attention
    removed (key bias −inf), and differs from the same units packed at consecutive positions."""
    texts = german_paragraphs(12, seed=3)
    model, codec = build(_small(kind).replace(seq_len=64), fit_texts=texts)
    model.eval()
    u = codec.encode(texts[0])[:40]
    spans = [(3, 5), (11, 12), (20, 23)]
    sp, stored = kept_rows(codec, texts[0], u, spans)
    spans = [(s["start"], s["end"]) for s in sp]  # (a codec may have widened a span)
    (doc,) = replay_texts([{"text": stored, "spans": sp, "replay": "kept"}])
    packer = Packer([doc] * 4, codec, 8, cycle=False)  # 4 × 10 positions: the first sequence is the document's start
    batch = packer.next_batch(1)
    units, mask, pos = doc.packed(codec)
    assert batch["positions"][0].tolist() == pos[:9] and batch["loss_mask"][0].tolist() == mask[:9]
    one = codec.collate([units])
    one.update(loss_mask=torch.tensor([mask]), positions=torch.tensor([pos]))
    # the whole document: placeholders at the units before the spans, the rest suppressed
    full = [codec.bos] + list(u[:spans[-1][1]])
    keep_key = torch.zeros(len(full), dtype=torch.bool)
    keep_key[0] = True
    targets = torch.zeros(len(full), dtype=torch.bool)
    for a, b in spans:
        full[a] = codec.bos  # position a holds unit a − 1: now a placeholder
        keep_key[a:b + 1] = True
        targets[a + 1:b + 1] = True
    ref = codec.collate([full])
    ref.update(loss_mask=targets[None], key_bias=torch.where(keep_key, 0.0, float("-inf"))[None])
    with torch.no_grad():
        got = model(one)["unit_loss"][0][torch.tensor(mask[1:])]
        want = model(ref)["unit_loss"][0][targets[1:]]
        shifted = model({**one, "positions": torch.arange(len(units))[None]})["unit_loss"][0][torch.tensor(mask[1:])]
    assert torch.allclose(got, want, atol=1e-4), (got, want)
    # consecutive positions give another result (small at initialisation, far above the rounding)
    assert (got - shifted).abs().max() > 10 * (got - want).abs().max()


@pytest.mark.parametrize("arm", ["core-tokens-kept", "core-tokens-prefix", "core-tokens-context", "full-documents"])
def test_replay_share_counts_loss_bearing_units(arm):
    from kurate.models.continual import ReplayMix, loss_units

    old, new = german_paragraphs(20, seed=4), _english(300, seed=5)
    _, codec = build(_small("bpe"), fit_texts=old + new[:50])
    # core tokens: every 10th unit of each buffer document, replayed with every unit before it as
    # context (prefix) or with at most 2 context units per span; full documents: all of their units
    rows = []
    for t in old:
        u = codec.encode(t)
        spans = [(0, len(u))] if arm == "full-documents" else [(j, j + 1) for j in range(0, len(u), 10)]
        if arm == "core-tokens-kept":
            sp, text = kept_rows(codec, t, u, spans)
            rows.append({"text": text, "spans": sp, "replay": "kept"})
        else:
            sp, text = span_rows(codec, t, u, spans, 2 if arm == "core-tokens-context" else None)
            rows.append({"text": text, "spans": sp})
    buffer = replay_texts(rows)
    assert len(buffer) == (len(old) if arm != "core-tokens-context" else sum(len(r["spans"]) for r in rows))
    masks = [b.packed(codec)[1] for b in buffer]
    per_unit = sum(map(len, masks)) / sum(map(sum, masks))  # positions per loss-bearing unit
    masked = arm != "full-documents"
    share, seq_len, batch_size, steps = 0.25, 16, 4, 100
    mix = ReplayMix(new, buffer, share, loss_units(codec))
    # the stream flattened to ([BOS] + units) positions: loss-bearing?, replayed?
    docs = list(mix)
    bears, replayed = [], []
    ids = {id(b) for b in buffer}
    for d in docs:
        keep = d.packed(codec)[1] if isinstance(d, MaskedText) else [True] * (len(codec.encode(d)) + 1)
        bears += keep
        replayed += [id(d) in ids] * len(keep)
    packer = Packer(mix, codec, seq_len)
    for step in range(steps):
        batch = packer.next_batch(batch_size)
        # the real packer's loss mask is this flat stream cut into seq_len + 1 windows (one unit of overlap)
        lo = step * batch_size * seq_len
        flat = [bears[lo + j * seq_len:lo + j * seq_len + seq_len + 1] for j in range(batch_size)]
        assert batch.get("loss_mask", torch.ones(batch_size, seq_len + 1, dtype=torch.bool)).tolist() == flat
    # targets of the run: positions 1 … steps · batch_size · seq_len of the stream
    end = steps * batch_size * seq_len + 1
    trained = [r for b, r in zip(bears[1:end], replayed[1:end]) if b]
    assert len(trained) > 1500 and abs(sum(trained) / len(trained) - share) < 0.02, sum(trained) / len(trained)
    # sequence positions: a core-tokenset document also spends them on its masked context, the whole
    # prefix before its last kept unit or at most 2 units per span
    positions = sum(replayed[1:end]) / (end - 1)
    assert abs(positions - share * per_unit / (share * per_unit + 1 - share)) < 0.03, (positions, per_unit)
    if arm == "core-tokens-prefix":
        assert per_unit > 7 and positions > 2.5 * share
    elif arm == "core-tokens-kept":  # [BOS] + a placeholder per span: ≤ 2 positions per kept unit
        assert 1 < per_unit <= 2.1 and share < positions < 0.45
    elif arm == "core-tokens-context":
        assert per_unit <= 4 and share < positions < 0.6
    else:
        assert per_unit < 1.1 and abs(positions - share) < 0.02
    # deterministic: a packer resumed mid-run continues with the same batches
    state, rest = Packer(mix, codec, seq_len), []
    for _ in range(10):
        state.next_batch(batch_size)
    resumed = Packer(mix, codec, seq_len, state=state.state())
    for _ in range(5):
        a, b = state.next_batch(batch_size), resumed.next_batch(batch_size)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _english(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    who, does, what = ["The miller", "A teacher", "My aunt", "The gardener"], ["buys", "paints", "sells", "finds"], \
        ["red apples", "an old bicycle", "three chairs", "fresh bread"]
    return [" ".join(f"{rng.choice(who)} {rng.choice(does)} {rng.choice(what)}." for _ in range(rng.randint(2, 4)))
            for _ in range(n)]


@pytest.fixture(scope="module")
def continual_root(tmp_path_factory):
    """Old German and new English documents in `curated`, and a tiny BPE checkpoint trained on the German."""
    root = tmp_path_factory.mktemp("continual") / "root"
    de, en = german_paragraphs(240, seed=11), _english(160, seed=12)
    rows = [{"id": f"de{i:04d}", "text": t, "language": "de"} for i, t in enumerate(de)]
    rows += [{"id": f"en{i:04d}", "text": t, "language": "en"} for i, t in enumerate(en)]
    with ShardStore(str(root)).open_unit(UnitKey("curate", "toy.warc.gz", "t"), ["curated", "rejects"]) as unit:
        unit.write("curated", pa.Table.from_pylist(rows, schema=CURATED))
    torch.set_num_threads(1)
    cfg = preset("tiny", "bpe", seq_len=32, batch_size=4, max_steps=20, warmup_steps=2, log_every=0,
                 model_options={"vocab_size": 400, "d_model": 64, "n_layer": 1, "n_head": 2})
    train(cfg, de, None, str(root / "checkpoints" / "demo-bpe"))
    return str(root)


def _config(root: str, **continual):
    from kurate.flows.config import load_config

    return load_config(None, [], {"root": root, "train": {"model": "bpe"}, "continual": {
        "new": "curated", "new_languages": ["en"], "old_languages": ["de"], "budget": 0.02,
        "eval_fraction": 0.1, "eval_batches": 2, "overrides": {"max_steps": 4, "warmup_steps": 1, "log_every": 0},
        **continual}})


def test_comparison_runs_every_arm(continual_root):
    from kurate.flows.continual import run_continual

    result = run_continual(_config(continual_root, name="cmp", compare=True, multiples=[2],
                                   selection="loss", attribution="gradxinput"))
    table = result["comparison"]
    arms = [r["arm"] for r in table]
    assert arms[:3] == ["before continuing", "no replay", "core tokenset (loss + gradxinput, kept units only)"]
    assert arms[3:] == ["random coreset 1× storage", "loss coreset 1× storage",
                        "random coreset 2× storage", "loss coreset 2× storage"]
    assert all(np.isfinite(r["old_bpb"]) and np.isfinite(r["new_bpb"]) for r in table)
    # coresets matched by stored bytes: each stores at least k× the core tokenset's bytes, and less
    # than that plus one document (the last pick crosses the budget)
    core = table[2]["stored_bytes"]
    assert core > 0 and result["stored_bytes"] > 0
    for r in table[3:]:
        k = int(r["arm"].split()[2][:-1])
        assert k * core <= r["stored_bytes"] and r["storage_vs_core"] >= k
    # continuing on English moves the English figure
    assert result["comparison"][1]["new_delta"] != 0


@pytest.mark.e2e
def test_kurate_continual_end_to_end(prefect_server, continual_root):
    kurate = str(Path(sys.executable).with_name("kurate"))
    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    ckpt = os.path.join(continual_root, "checkpoints", "demo-bpe", "checkpoint")
    args = [kurate, "continual", "--root", continual_root, "--checkpoint", ckpt, "--new", "curated", "--budget", "0.02",
            "--set", "continual.new_languages=[en]", "--set", "continual.old_languages=[de]",
            "--set", "continual.eval_fraction=0.1", "--set", "continual.eval_batches=2",
            "--set", "continual.overrides={max_steps: 5, warmup_steps: 1, log_every: 0}"]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    cat = Catalog(continual_root)
    # the module's other runs commit buffers too (other selection/attribution): this run's is craig + atman
    mine = "from coretokens where selection = 'craig' and method = 'atman'"
    buf = cat.query(f"select id, kept_units, doc_units, len(spans) as n {mine}").to_pylist()
    assert buf and all(r["id"].startswith("de") for r in buf)
    assert all(0 < r["kept_units"] <= r["doc_units"] and r["n"] >= 1 for r in buf)
    steps = cat.query("select step, metrics from metrics where run = 'continual-bpe' order by step").to_pylist()
    assert [r["step"] for r in steps] == [1, 2, 3, 4, 5] and "old_bits_per_byte" in steps[-1]["metrics"]
    assert (Path(continual_root) / "checkpoints" / "continual-bpe" / "checkpoint" / "model.safetensors").exists()
    # a re-run reuses the committed buffer and resumes the finished run
    again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "already committed" in again.stdout + again.stderr, again.stdout[-3000:] + again.stderr[-3000:]
    assert len(cat.query(f"select id {mine}").to_pylist()) == len(buf)


@pytest.mark.e2e
def test_continual_flow_submits_a_ray_job_once(prefect_server, continual_root, ray_head):
    from ray.job_submission import JobSubmissionClient

    from kurate.flows.continual import continual_flow, submission_id

    # its own selection/attribution, so its buffer is told apart from the end-to-end test's in `coretokens`
    config = _config(continual_root, name="job", job_address=ray_head, selection="random", attribution="gradxinput",
                     overrides={"max_steps": 3, "warmup_steps": 1, "log_every": 0})
    result = continual_flow(config)
    assert result["job"] == submission_id(config) and "SUCCEEDED" in result["status"]
    assert result["run"] == "job-bpe" and result["steps"] == 3 and result["buffer_docs"] > 0
    cat = Catalog(continual_root)
    steps = cat.query("select step, metrics from metrics where run = 'job-bpe' order by step").to_pylist()
    assert [r["step"] for r in steps] == [1, 2, 3] and "old_bits_per_byte" in steps[-1]["metrics"]
    assert (Path(result["checkpoint"]) / "model.safetensors").exists()
    # a retried flow run attaches to the finished job instead of continuing again
    again = continual_flow(config)
    assert again["job"] == result["job"] and again["steps"] == 3
    assert [j.submission_id for j in JobSubmissionClient(ray_head).list_jobs()] == [result["job"]]


@pytest.fixture(scope="module")
def release_root(tmp_path_factory):
    """Release `r`: v1 = German curated documents, on which a tiny BPE was trained (run demo-v1, train.data
    r@v1); v2 = v1 plus English ones."""
    from kurate.flows.config import load_config
    from kurate.flows.train import run_training
    from kurate.release.config import ReleaseConfig, ReleaseSource
    from kurate.release.publish import build_release

    root = str(tmp_path_factory.mktemp("continual-release") / "root")
    de, en = german_paragraphs(160, seed=21), _english(120, seed=22)
    with ShardStore(root).open_unit(UnitKey("curate", "de.warc.gz", "t"), ["curated", "rejects"]) as unit:
        unit.write("curated", pa.Table.from_pylist([{"id": f"de{i:04d}", "text": t, "language": "de"}
                                                    for i, t in enumerate(de)], schema=CURATED))
    release = ReleaseConfig(name="r", sources=[ReleaseSource(dataset="curated")], validation_fraction=0.15)
    assert build_release(root, release).version == 1
    torch.set_num_threads(1)
    config = load_config(None, [], {"root": root, "train": {"name": "demo-v1", "model": "bpe", "data": {"release": "r", "version": 1},
                                                            "overrides": {"seq_len": 32, "batch_size": 4, "max_steps": 12,
                                                                          "warmup_steps": 2, "log_every": 0, "model_options": {
                                                                              "vocab_size": 400, "d_model": 64, "n_layer": 1,
                                                                              "n_head": 2}}}})
    run_training(root, config.train)
    with ShardStore(root).open_unit(UnitKey("curate", "en.warc.gz", "t"), ["curated", "rejects"]) as unit:
        unit.write("curated", pa.Table.from_pylist([{"id": f"en{i:04d}", "text": t, "language": "en"}
                                                    for i, t in enumerate(en)], schema=CURATED))
    assert build_release(root, release).version == 2
    return root, config.train


def _release_config(root: str, train, **continual):
    from kurate.flows.config import load_config

    return load_config(None, [], {"root": root, "train": train.model_dump(mode="json"), "continual": {
        "name": "cont", "budget": 0.05, "eval_batches": 2,
        "overrides": {"max_steps": 5, "warmup_steps": 1, "log_every": 0, "checkpoint_every": 2}, **continual}})


def test_continual_on_two_release_versions_records_its_lineage(release_root):
    """old = r@v1 (replay candidates, the checkpoint's data), new = what v2 adds; metrics and trained_on are
    committed per segment, the held-out figures on the last row; trained_on ⊆ v2."""
    from kurate.flows.continual import run_continual
    from kurate.models.checkpoint import checkpoint_info

    root, train = release_root
    result = run_continual(_release_config(root, train, data={"release": "r", "old_version": 1, "new_version": "latest"}))
    assert (result["release"], result["version"], result["old_version"]) == ("r", 2, 1)
    assert result["new_bpb_after"] < result["new_bpb_before"]  # it learnt the new (English) documents
    cat = Catalog(root)
    v1 = set(cat.query("select id from release_documents where name = 'r' and version = 1 and split = 'train'").column("id").to_pylist())
    v2 = set(cat.query("select id from release_documents where name = 'r' and version = 2").column("id").to_pylist())
    buffer = cat.query("select id, source from coretokens where source = 'r@v1'").to_pylist()
    assert buffer and {r["id"] for r in buffer} <= v1
    trained = cat.query("select release, version, id, first_step, checkpoint_step from trained_on where run = 'cont-bpe'").to_pylist()
    ids = [r["id"] for r in trained]
    assert len(ids) == len(set(ids)) and set(ids) <= v2 and {(r["release"], r["version"]) for r in trained} == {("r", 2)}
    new = {i for i in ids if i not in v1}
    assert new and all(i.startswith("en") for i in new)  # new data: what v2 adds
    assert {r["id"] for r in buffer} & set(ids)  # the replayed documents are in trained_on too
    assert all(r["first_step"] <= r["checkpoint_step"] for r in trained)
    steps = cat.query("select step, metrics from metrics where run = 'cont-bpe' order by step").to_pylist()
    assert [r["step"] for r in steps] == [1, 2, 3, 4, 5] and "old_bits_per_byte" in steps[-1]["metrics"]
    units = sorted(m.unit.split("-train-")[0] for m in ShardStore(root).manifests("train-cont-bpe"))
    assert units == ["cont-bpe-steps-0000001-0000002", "cont-bpe-steps-0000003-0000004", "cont-bpe-steps-0000005-0000005"]
    assert checkpoint_info(result["checkpoint"])["data"]["version"] == 2
    assert not (Path(root) / "checkpoints" / "cont-bpe" / "final-segment.json").exists()
    # a re-run resumes the finished run: nothing is committed twice
    run_continual(_release_config(root, train, data={"release": "r", "old_version": 1, "new_version": 2}))
    assert cat.query("select count(*) n from trained_on where run = 'cont-bpe'").to_pylist() == [{"n": len(ids)}]


def test_continual_refuses_a_checkpoint_of_another_version(release_root):
    from kurate.errors import PreconditionError
    from kurate.flows.continual import run_continual

    root, train = release_root
    with pytest.raises(PreconditionError, match="trained on release r@v1"):
        run_continual(_release_config(root, train, name="wrong", data={"release": "r", "old_version": 2}))


def test_continual_on_a_release_refuses_an_unfinished_checkpoint(release_root, tmp_path):
    """A release-triggered run continues the old version's finished training, never a checkpoint that
    training saved on the way (the continual run would count as done and never be redone)."""
    import json
    import shutil

    from kurate.errors import PreconditionError
    from kurate.flows.continual import checkpoint_of, run_continual

    root, train = release_root
    config = _release_config(root, train, name="early", data={"release": "r", "old_version": 1})
    partial = tmp_path / "checkpoint"
    shutil.copytree(checkpoint_of(config), partial)
    saved = json.loads((partial / "config.json").read_text())
    saved["step"] = 1  # as saved by checkpoint_every before the last step
    (partial / "config.json").write_text(json.dumps(saved))
    early = _release_config(root, train, name="early", checkpoint=str(partial), data={"release": "r", "old_version": 1})
    with pytest.raises(PreconditionError, match="has not finished"):
        run_continual(early)


def test_continual_release_reference_parses():
    from kurate.flows.config import ContinualData

    assert ContinualData.parse("r@v1..v3").model_dump() == {"release": "r", "old_version": 1, "new_version": 3, "new_only": True}
    assert ContinualData.parse("r@v2..").new_version == ContinualData.parse("r@v2..latest").new_version == "latest"
    with pytest.raises(ValueError):
        ContinualData.parse("r@v2")
