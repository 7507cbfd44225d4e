"""HAT: the word splitter's properties, batching, training and generation (CPU, seconds)."""

from __future__ import annotations

import random

import pytest
import torch

from kurate.models.hat import BOS_WORD, END_OF_WORD, HAT, HATCodec, HATConfig, split_words
from kurate.models.train import train
from kurate.models.train_config import preset
from toy_corpus import german_paragraphs


pytestmark = pytest.mark.usefixtures("one_torch_thread")

ALPHABET = list("abcXYZäöüßÄÖÜ  \n\r\t.,;:'\"!?-_/()0123456789") + [
    "\u0301", "\u0300", "\u200d", "\u00ad", "\u202f", "\u3000", "\u2044",  # marks, ZWJ, soft hyphen, spaces
    "😀", "👨", "🇩", "🇪", "日", "本", "語", "ア", "ー", "א", "\u05f4", "Straße", "camelCase",
]
# characters through which UAX#29 looks ahead without being punctuation (see models/hat.py): with
# them the official rule changes an earlier word once the next character arrives
LOOK_AHEAD = {"\u2044", "\u202f", "\u00ad", "\u200d", "\u0301", "\u0300"}
ORDINARY = [a for a in ALPHABET if a not in LOOK_AHEAD]
# the official splitter's own stress string (hat-splitter src/split.rs, it_is_causal)
STRANGE_STUFF = ("𓀀✨𝒜𝓁𝑔𝑜𝓇𝒾𝓉𝒽𝓂 شْء 你好吗 こんにちは 안녕하세요 𞤢𞤭𞤤 𝔽(λx.𝑥²) 🤖🍕⟨𝛴, 𝜋⟩ 🜚 𝔽↦𝑒ⁿω₀📡;𝑧𝑎<𝔱𝓇𝑢∃>🛠️ҀЋހ±(Δ𝓧) "
                 "乁( •_• )ㄏ   ⿰木日👾")


def check_lossless(text: str, max_bytes: int) -> list[str]:
    words = split_words(text, max_bytes)
    assert "".join(words) == text
    assert all(w and len(w.encode("utf-8")) <= max_bytes for w in words)
    return words


def check_causal(text: str, max_bytes: int) -> None:
    words = check_lossless(text, max_bytes)
    for k in range(1, len(text)):
        prefix = split_words(text[:k], max_bytes)
        # causal: all but the last word of the prefix's split are the whole text's first words
        assert words[:len(prefix) - 1] == prefix[:-1], (text[:k], text)


def test_split_official_examples():
    """hat-splitter's documented and tested cases (DOCS.md, src/split.rs tests)."""
    assert split_words("Hello, world!") == ["Hello,", " world!"]
    assert split_words("Hello, world!", max_bytes=4) == ["Hell", "o,", " wor", "ld!"]
    assert split_words("") == []
    assert split_words("howAreYou") == ["how", "Are", "You"]
    assert split_words("how_are_you") == ["how_", "are_", "you"]
    assert split_words("verylongword", max_bytes=10) == ["verylongwo", "rd"]
    assert split_words(STRANGE_STUFF)  # it_handles_strange_stuff


def test_split_rule_on_german():
    # punctuation joins the word before it; one space joins the next word; longer runs stand alone
    assert split_words("Hallo, Welt.  Größe") == ["Hallo,", " Welt.", "  ", "Größe"]
    assert split_words("camelCaseWort") == ["camel", "Case", "Wort"]
    assert split_words("3.14 can't") == ["3.", "14", " can'", "t"]
    assert split_words("(Hallo) – ja...") == ["(", "Hallo)", " –", " ja..."]
    assert split_words("Zeile\n\nneu") == ["Zeile", "\n", "\n", "neu"]
    assert split_words("Ende ") == ["Ende", " "]
    assert split_words("ä" * 7, max_bytes=4) == ["ää", "ää", "ää", "ä"]
    assert split_words("a😀b", max_bytes=4) == ["a", "😀", "b"]


def test_split_is_causal_on_the_official_stress_string():
    """The official it_is_causal: each word of a prefix's split starts the whole split's word."""
    full = split_words(STRANGE_STUFF, 1024)
    for i in range(len(STRANGE_STUFF)):
        for whole, part in zip(full, split_words(STRANGE_STUFF[:i], 1024)):
            assert whole.startswith(part)
    check_causal(STRANGE_STUFF, 100)


def test_split_random_strings_fixed_seed():
    rng = random.Random(0)
    for _ in range(1500):
        n, max_bytes = rng.randint(1, 20), rng.choice([4, 5, 8, 100])
        check_causal("".join(rng.choice(ORDINARY) for _ in range(n)), max_bytes)
        check_lossless("".join(rng.choice(ALPHABET) for _ in range(n)), max_bytes)


def test_split_property_hypothesis():
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies

    @hypothesis.settings(max_examples=300, deadline=None, derandomize=True)
    @hypothesis.given(st.lists(st.one_of(st.sampled_from(ALPHABET), st.characters()), max_size=16).map("".join),
                      st.lists(st.sampled_from(ORDINARY), max_size=16).map("".join),
                      st.sampled_from([4, 6, 100]))
    def prop(anything, ordinary, max_bytes):
        check_lossless(anything, max_bytes)
        check_causal(ordinary, max_bytes)

    prop()


def test_split_german_prose_round_trip():
    for text in german_paragraphs(50):
        words = split_words(text)
        assert "".join(words) == text
        assert 5 < sum(len(w.encode()) for w in words) / len(words) < 9


def test_collate_pads_and_counts():
    codec = HATCodec(100)
    seqs = [[BOS_WORD, b" ab", b"c"], [b"x", "ü".encode(), b"  "]]
    b = codec.collate(seqs)
    assert b["bytes"].shape == (2, 3, 3)
    assert b["lens"].tolist() == [[1, 3, 1], [1, 2, 2]]
    assert b["count"].tolist() == [[0, 3, 1], [1, 2, 2]]
    assert bytes(b["bytes"][0, 1].tolist()) == b" ab"
    assert b["bytes"][0, 2, 1:].tolist() == [0xC1, 0xC1]


def test_hat_loss_falls_and_generates():
    texts = german_paragraphs(200)
    cfg = preset("tiny", "hat", seq_len=32, batch_size=8, max_steps=40, warmup_steps=5, log_every=0,
                 eval_batches=2)
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        s = train(cfg, texts, german_paragraphs(20, seed=1), d, resume=False)
    losses = [m["loss"] for m in s["history"]]
    assert sum(losses[-5:]) / 5 < 0.6 * sum(losses[:5]) / 5
    assert s["eval_bits_per_byte"] < 5.0  # from 8+ at random init


def test_generation_is_valid_utf8_and_stops_at_word_end():
    torch.manual_seed(0)
    cfg = HATConfig(d_model=32, n_layer=1, n_head=2, enc_d=16, dec_d=16, max_word_bytes=6, max_len=64)
    model = HAT(cfg).eval()
    prompt = "Grüße aus Köln"
    for seed in range(3):
        out = model.generate(prompt, max_new_units=6, temperature=1.5, seed=seed)
        assert out.startswith(prompt)
        new = out[len(prompt):].encode("utf-8")  # str: already valid UTF-8
        assert len(new) <= 6 * 6
    # one word at a time: ≤ max_word_bytes, decodes, never contains the specials
    z = torch.randn(1, cfg.d_model)
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        w = model._sample_word(z, 2.0, gen)
        assert 1 <= len(w) <= 6
        w.decode("utf-8")
        assert END_OF_WORD not in w
    assert model.generate("x", 3, 0.0, 0) == model.generate("x", 3, 0.0, 1)  # greedy ignores the seed


def test_length_buckets_give_the_padded_loss_and_gradients():
    import dataclasses

    from kurate.models.packing import Packer

    torch.manual_seed(0)
    cfg = HATConfig(d_model=32, n_layer=1, n_head=2, enc_d=16, dec_d=16, max_len=64)
    codec = HATCodec(cfg.max_word_bytes)
    texts = ["Donaudampfschifffahrtsgesellschaftskapitänsmützenabzeichen " * 3, "x" * 90 + " " + "ü" * 40,
             *german_paragraphs(30)]
    batch = Packer(texts, codec, 48).next_batch(12)
    assert batch["lens"].max() > 64  # every bucket, including the rest above the last bound, is used
    bucketed = HAT(cfg, codec)
    padded = HAT(dataclasses.replace(cfg, byte_buckets=()), codec)
    padded.load_state_dict(bucketed.state_dict())
    outs = []
    for model in (bucketed, padded):
        out = model(batch)
        out["loss"].backward()
        outs.append(out)
    assert outs[0]["loss"].item() == pytest.approx(outs[1]["loss"].item(), rel=1e-5)
    assert outs[0]["nats"].item() == pytest.approx(outs[1]["nats"].item(), rel=1e-5)
    assert outs[0]["bytes"] == outs[1]["bytes"]
    for (name, a), b in zip(bucketed.named_parameters(), padded.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6, msg=name)
