"""T-FREE: splitting, hashed trigram patterns, dictionary decoding, training (CPU, seconds)."""

from __future__ import annotations

import tempfile

import pytest
import torch

from kurate.models.tfree import BOS, TFree, TFreeCodec, TFreeConfig, split_units
from kurate.models.train import train
from kurate.models.train_config import preset
from toy_corpus import german_paragraphs


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small_codec(words=None, v=1024):
    cfg = TFreeConfig(vocab_rows=v, wordfreq_top=0)
    return TFreeCodec.fit(cfg, words or german_paragraphs(50))


def test_split_units_lossless():
    text = "Im Jahr 1998 kaufte Jürgen  12 Äpfel.\nEnde!"
    units = split_units(text)
    assert "".join(units) == text
    assert units[:6] == ["Im", " Jahr", " 1", "9", "9", "8"]
    assert " " in units and "\n" in units and "." in units and " Äpfel" in units
    assert split_units("x" * 70, 32) == ["x" * 32, "x" * 32, "x" * 6]


def test_patterns_deterministic_and_sparse():
    a, b = small_codec(), small_codec()
    for w in [" Haus", "Haus", "ß", " 7", BOS]:
        assert (a.pattern(w) == b.pattern(w)).all()
        assert 0 < len(a.pattern(w)) <= 10 * (len(w.encode()) + 2)
        assert a.pattern(w).max() < a.v
    # " Haus" and "Haus" share the word trigrams; "Haus" adds the no-space marker
    assert set(a.pattern(" Haus")) < set(a.pattern("Haus"))


def test_decoding_recovers_word_from_its_own_pattern():
    codec = small_codec()
    for word in [" Bürgermeister", " Brunnen", "Der", " Äpfel", ",", " 7"]:
        assert word in codec.index
        z = torch.full((1, codec.v), -8.0)
        z[0, torch.from_numpy(codec.pattern(word))] = 8.0
        for mode in ("paper", "loglik"):  # mean_logit ties on sub-patterns (" Der" ⊂ "Der")
            best = int(codec.score(z, mode).argmax())
            assert codec.dictionary[best] == word, (mode, word, codec.dictionary[best])


def test_dictionary_includes_wordfreq_when_installed():
    try:
        import wordfreq  # noqa: F401
    except ImportError:
        return
    codec = TFreeCodec.fit(TFreeConfig(vocab_rows=512, wordfreq_top=200), ["Hallo Welt"])
    assert " und" in codec.index and "Und" in codec.index and " the" in codec.index


def test_tfree_loss_falls_and_bits_per_byte():
    texts = german_paragraphs(200)
    cfg = preset("tiny", "tfree", seq_len=32, batch_size=8, max_steps=40, warmup_steps=5, log_every=0,
                 eval_batches=2, model_options={"vocab_rows": 1024, "wordfreq_top": 500})
    with tempfile.TemporaryDirectory() as d:
        s = train(cfg, texts, german_paragraphs(20, seed=1), d, resume=False)
        from kurate.models.checkpoint import load_checkpoint

        model, codec, _ = load_checkpoint(d)
    losses = [m["loss"] for m in s["history"]]
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5
    assert 0 < s["eval_bits_per_byte"] < 3.0
    assert s["eval_oov_byte_frac"] == 0.0  # every word of the held-out text is in the toy vocabulary
    out = model.generate("Der alte Müller", max_new_units=5, temperature=0.0)
    assert out.startswith("Der alte Müller") and len(out) > len("Der alte Müller")


def test_forward_has_no_dense_targets():
    codec = small_codec()
    model = TFree(TFreeConfig(d_model=32, n_layer=1, n_head=2, vocab_rows=1024), codec)
    batch = codec.collate([[BOS] + codec.encode("Der Gärtner zählt drei Stühle.")])
    out = model(batch)
    assert out["loss"].item() > 0 and out["bytes"] == len(" Gärtner zählt drei Stühle.".encode()) + 3
