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


def trigrams_of(word: str) -> set[bytes]:
    s = f" {word} ".encode()
    return {s[i:i + 3] for i in range(len(s) - 2)}


def test_every_trigram_activates_exactly_m_distinct_rows():
    """The official hash init re-draws a row already taken: m distinct rows, even at a small v
    where plain hashing collides often."""
    for v in (16, 64, 8192):
        codec = TFreeCodec(v, 10, 2, 0, 32, [])
        for word in german_paragraphs(20)[0].split() + ["Straße", "ÄÖÜ", "x"]:
            for t in trigrams_of(word):
                rows = codec._rows(t)
                assert len(rows) == 10 and len(set(rows)) == 10 and all(0 <= r < v for r in rows)


def test_trigram_shares_two_rows_with_its_lower_case_form():
    codec = TFreeCodec(8192, 10, 2, 0, 32, [])
    for upper, lower in [(b" Ha", b" ha"), (b"HAU", b"hau"), (b"us ", b"us "), ("Äpf".encode(), "äpf".encode())]:
        up, low = codec._rows(upper), codec._rows(lower)
        assert up[:2] == low[:2]  # the shared rows come first, from the lower-cased form
        if upper != lower:
            assert len(set(up) & set(low)) == 2  # and only they (no chance collision at v = 8192)
    # the words share the rows of their lower-cased trigrams beyond the trigrams they have in common
    own = set(codec.pattern(" Haus")) - set(codec.pattern(" Maus"))
    shared = own & set(codec.pattern(" haus"))
    assert len(shared) >= 4  # " Ha" and "Hau" each share 2 rows with " ha" and "hau"
    no_sharing = TFreeCodec(8192, 10, 0, 0, 32, [])
    assert len(set(no_sharing.pattern(" Haus")) & set(no_sharing.pattern(" haus"))) == 2 * 10  # "us ", "aus"
    with pytest.raises(ValueError):
        TFreeCodec(8, 10, 2, 0, 32, [])


def test_loss_is_bce_with_positive_weight():
    """forward's sparse loss equals torch's dense BCE-with-logits with pos_weight."""
    codec = small_codec()
    cfg = TFreeConfig(d_model=32, n_layer=1, n_head=2, vocab_rows=1024, pos_weight=100.0)
    torch.manual_seed(0)
    model = TFree(cfg, codec).train()
    assert model.head.bias is None
    batch = codec.collate([[BOS] + codec.encode("Der Gärtner zählt drei Stühle.")])
    loss = model(batch)["loss"]
    z = model.head(model.states(batch["pat"][:, :-1])).float().reshape(-1, 1024)
    target = torch.zeros_like(z)
    for i, p in enumerate(batch["pat"][0, 1:]):
        target[i, p[p < 1024]] = 1.0
    dense = torch.nn.functional.binary_cross_entropy_with_logits(z, target, pos_weight=torch.tensor(100.0))
    assert torch.allclose(loss, dense, rtol=1e-5)


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


def test_eval_counts_only_in_dictionary_words():
    codec = TFreeCodec.fit(TFreeConfig(vocab_rows=1024, wordfreq_top=0), ["Der Hund bellt."])
    model = TFree(TFreeConfig(d_model=32, n_layer=1, n_head=2, vocab_rows=1024), codec).eval()
    out = model(codec.collate([[BOS] + codec.encode("Der Hund miaut.")]))
    assert int(out["bytes"]) == len("Der Hund.".encode())  # " miaut" is not in the dictionary
    assert abs(out["oov_byte_frac"] - len(" miaut".encode()) / len("Der Hund miaut.".encode())) < 1e-9
    assert float(out["nats"]) > 0
    out = model.generate("Der alte Müller", max_new_units=5, temperature=0.0)
    assert out.startswith("Der alte Müller") and len(out) > len("Der alte Müller")


def test_forward_has_no_dense_targets():
    codec = small_codec()
    model = TFree(TFreeConfig(d_model=32, n_layer=1, n_head=2, vocab_rows=1024), codec)
    batch = codec.collate([[BOS] + codec.encode("Der Gärtner zählt drei Stühle.")])
    out = model(batch)
    assert out["loss"].item() > 0 and out["bytes"] == len(" Gärtner zählt drei Stühle.".encode()) + 3
