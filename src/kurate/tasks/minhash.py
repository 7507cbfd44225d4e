"""Text normalisation, exact-content hashes and vectorised MinHash signatures with LSH band keys.

Everything here is deterministic across processes, machines and numpy versions: hashes come from
BLAKE2b and fixed integer arithmetic, never from Python's salted ``hash()`` or a numpy RNG stream,
because signatures are written to Parquet and compared with signatures computed in later runs.

How a signature is made (all of it batched over many documents in numpy):

1. ``normalize_text`` → words; word *n*-grams are the shingles (a document shorter than *n* words
   is one shingle of all its words).
2. Each word gets a 64-bit BLAKE2b hash (cached per process); a shingle's hash is a polynomial
   over its word hashes, avalanched with the splitmix64 finaliser, keeping the top 32 bits.
3. Each of the ``num_perm`` hash functions is *multiply-add-shift*:
   ``h(x) = ((a·x + b) mod 2^64) >> 32`` with ``a, b`` drawn from [0, 2^64). For 32-bit keys this
   family is strongly universal (Dietzfelbinger 1996; Thorup, "High speed hashing for integers and
   strings", 2015 — it needs 64 ≥ 32 + 32 − 1 bits), and ``mod 2^64`` is just numpy's uint64
   wrap-around, so nothing overflows incorrectly and no modulo by a prime is needed. The shift is
   monotone, so the minimum is taken on the 64-bit values and shifted once per signature entry.
   That is two array operations per (shingle, permutation) plus the min-reduction.

LSH: the signature is cut into ``bands`` bands of ``rows`` values; two documents become a
candidate pair when any band matches. With Jaccard similarity *s* the chance of that is
``1 − (1 − s^rows)^bands``; for the default 14 × 8 (FineWeb's setting on word 5-grams) the S-curve
is 0.05 at s=0.5, 0.56 at 0.7, 0.92 at 0.8, 0.99 at 0.85 and 0.9996 at 0.9, with its midpoint
``(1/bands)^(1/rows) ≈ 0.72``. ``tasks.dedup`` then keeps only candidates whose estimated Jaccard
(the fraction of equal signature entries) is ≥ 0.8, so in effect pairs from about 0.8 upwards are
near-duplicates: the LSH threshold sits below the verification threshold so that few true pairs are
lost before verification.
"""

from __future__ import annotations

import functools
import hashlib
import unicodedata
from dataclasses import dataclass
from typing import Sequence

import numpy as np

_U64_MAX = np.iinfo(np.uint64).max
_SHINGLE_MUL = np.uint64(0x9E3779B97F4A7C15)  # odd: multiplication by it is a bijection mod 2^64
_SHINGLE_INIT = np.uint64(0x243F6A8885A308D3)
_BAND_INIT = np.uint64(0x13198A2E03707344)
_CHUNK_SHINGLES = 8192  # shingles per (num_perm × shingles) uint64 work block: 7 MiB at 112 perms
_DOCS_PER_BLOCK = 4096  # texts whose words and shingles are held at once
# Words whose hashes are cached per process: ~22 MiB at 2^17 (1M cached words took 174 MiB, a
# fixed cost per Ray worker that a long shard's vocabulary would reach); cleared when full.
_WORD_CACHE_MAX = 1 << 17

# Empty documents (no words after normalisation) get this value in every position. Real text never
# does: that would need every one of num_perm minima to be the largest 32-bit value.
EMPTY_VALUE = np.uint32(0xFFFFFFFF)


# --- normalisation and exact hashes -----------------------------------------------------------------


@functools.cache
def _strip_table() -> dict[int, str | None]:
    """``str.translate`` table: punctuation (P*) and symbols (S*) → space, format characters (Cf) → removed.

    Built once per process from the Unicode database (~20 ms). Planes above U+2FFFF hold no
    punctuation or symbols, only format characters in plane 14 (tags). Format characters (soft
    hyphen, zero-width space/joiners, BOM) are deleted so that "Bei\u00adspiel" is "beispiel".
    Letters, digits and combining marks (needed by Devanagari or Thai words) are kept.
    """
    table: dict[int, str | None] = {}
    for code in [*range(0x30000), *range(0xE0000, 0xE1000)]:
        category = unicodedata.category(chr(code))
        if category[0] in "PS":
            table[code] = " "
        elif category == "Cf":
            table[code] = None
    return table


def normalize_text(text: str) -> str:
    """Unicode NFKC, case folding, punctuation and symbols → space, whitespace collapsed to single spaces.

    Used by both exact and fuzzy dedup, so "Hello,  World!" and "hello world" are the same text.
    Case folding is lowercasing that also maps ß → ss, so "Straße", "STRASSE" and Swiss "Strasse"
    are one word.
    """
    text = unicodedata.normalize("NFKC", text).casefold().translate(_strip_table())
    return " ".join(text.split())


def _utf8(text: str) -> bytes:
    # surrogatepass: a lone surrogate left by a bad decode still hashes (stably) instead of raising
    return text.encode("utf-8", "surrogatepass")


def exact_hash(text: str) -> int:
    """64-bit BLAKE2b of ``normalize_text(text)`` as a non-negative int (fits uint64)."""
    return int.from_bytes(hashlib.blake2b(_utf8(normalize_text(text)), digest_size=8).digest(), "little")


# --- hashing helpers ----------------------------------------------------------------------------------


def _mix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser (a bijection on uint64 with full avalanche), in place."""
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def _stable_u64(*parts: object) -> int:
    return int.from_bytes(hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=8).digest(), "little")


_word_hashes: dict[str, int] = {}


def _hash_words(words: list[str]) -> np.ndarray:
    """64-bit BLAKE2b of each word, via a per-process cache (natural text reuses few words often)."""
    cache = _word_hashes
    found = list(map(cache.get, words))
    if None in found:
        if len(cache) > _WORD_CACHE_MAX:
            cache.clear()
        for i, value in enumerate(found):
            if value is None:
                word = words[i]
                value = cache.get(word)
                if value is None:
                    value = int.from_bytes(hashlib.blake2b(_utf8(word), digest_size=8).digest(), "little")
                    cache[word] = value
                found[i] = value
    return np.array(found, dtype=np.uint64)


# --- MinHash ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MinHashConfig:
    """MinHash LSH parameters. Defaults follow FineWeb: word 5-grams, 14 bands × 8 rows = 112 hashes.

    The LSH S-curve ``1 − (1 − s^rows)^bands`` has its midpoint at ``(1/bands)^(1/rows)`` ≈ 0.72
    for 14 × 8; together with verification at estimated Jaccard ≥ 0.8 (``tasks.dedup``) the
    effective near-duplicate threshold is ≈ 0.8 (see the module docstring).
    """

    num_perm: int = 112
    ngram: int = 5
    bands: int = 14
    rows: int = 8
    seed: int = 1

    def __post_init__(self) -> None:
        for name in ("num_perm", "ngram", "bands", "rows"):
            if getattr(self, name) < 1:
                raise ValueError(f"MinHashConfig.{name} must be ≥ 1, got {getattr(self, name)}")
        if self.bands * self.rows != self.num_perm:
            raise ValueError(
                f"MinHashConfig: bands × rows must equal num_perm, got {self.bands} × {self.rows} ≠ {self.num_perm}"
            )

    @property
    def lsh_threshold(self) -> float:
        """Jaccard similarity at which a pair becomes an LSH candidate with probability ≈ 1/2."""
        return (1.0 / self.bands) ** (1.0 / self.rows)

    def candidate_probability(self, similarity: float) -> float:
        """Probability that two documents with this Jaccard similarity share at least one band."""
        return 1.0 - (1.0 - similarity**self.rows) ** self.bands


class MinHasher:
    """Computes MinHash signatures and LSH band keys for batches of texts.

    Holds a reusable work buffer (num_perm × 8,192 uint64, 7 MiB at 112): use one instance per
    thread. Processes (Ray tasks) each build their own; the results are identical everywhere.
    """

    def __init__(self, config: MinHashConfig | None = None):
        self.config = config or MinHashConfig()
        n = self.config.num_perm
        seed = self.config.seed
        self._a = np.array([_stable_u64("kurate-minhash-a", seed, i) for i in range(n)], dtype=np.uint64)
        self._b = np.array([_stable_u64("kurate-minhash-b", seed, i) for i in range(n)], dtype=np.uint64)
        self._work = np.empty((n, _CHUNK_SHINGLES), dtype=np.uint64)

    def shingle_hashes(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """32-bit shingle hashes of all texts (as uint64) and each text's shingle count."""
        ngram = self.config.ngram
        words: list[str] = []
        lengths = np.empty(len(texts), dtype=np.int64)
        for i, text in enumerate(texts):
            doc_words = normalize_text(text).split()
            words += doc_words
            lengths[i] = len(doc_words)
        word_hash = _hash_words(words)
        counts = np.where(lengths >= ngram, lengths - ngram + 1, np.minimum(lengths, 1))
        total = int(counts.sum())
        if total == 0:
            return np.empty(0, dtype=np.uint64), counts
        doc = np.repeat(np.arange(len(texts)), counts)
        shingle_start = np.cumsum(counts) - counts  # first shingle of each doc
        word_start = np.cumsum(lengths) - lengths
        first_word = word_start[doc] + (np.arange(total) - shingle_start[doc])
        width = np.minimum(lengths, ngram)[doc]  # ngram, or all words of a short doc
        last = len(word_hash) - 1
        h = np.full(total, _SHINGLE_INIT, dtype=np.uint64)
        for k in range(ngram):
            step = h * _SHINGLE_MUL + word_hash[np.minimum(first_word + k, last)]
            h = step if k == 0 or bool((width > k).all()) else np.where(width > k, step, h)
        return _mix64(h) >> np.uint64(32), counts

    def signatures(self, texts: Sequence[str]) -> np.ndarray:
        """MinHash signatures, shape (len(texts), num_perm), uint32.

        A text with no words after normalisation gets ``EMPTY_VALUE`` everywhere. Texts are
        processed in blocks of ``_DOCS_PER_BLOCK``, so memory stays bounded for any input length.
        """
        out = np.empty((len(texts), self.config.num_perm), dtype=np.uint32)
        for lo in range(0, len(texts), _DOCS_PER_BLOCK):
            block = texts[lo : lo + _DOCS_PER_BLOCK]
            out[lo : lo + len(block)] = (self._minima(block) >> np.uint64(32)).T
        return out

    def _minima(self, texts: Sequence[str]) -> np.ndarray:
        """Per hash function and text, the minimum of (a·x + b) mod 2^64 over its shingles x."""
        keys, counts = self.shingle_hashes(texts)
        # (num_perm, docs) and (num_perm, shingles): numpy's inner loops then run along the long,
        # contiguous shingle axis, about twice as fast as the (shingles, num_perm) layout.
        minima = np.full((self.config.num_perm, len(texts)), _U64_MAX, dtype=np.uint64)
        doc = np.repeat(np.arange(len(texts)), counts)
        a, b, work = self._a[:, None], self._b[:, None], self._work
        for start in range(0, len(keys), _CHUNK_SHINGLES):
            chunk = keys[start : start + _CHUNK_SHINGLES]
            block = work[:, : len(chunk)]
            np.multiply(a, chunk[None, :], out=block)  # wraps mod 2^64, as the hash family requires
            block += b
            owner = doc[start : start + len(chunk)]
            seg = np.flatnonzero(np.concatenate(([True], owner[1:] != owner[:-1])))
            lows = np.minimum.reduceat(block, seg, axis=1)  # one column per document in this chunk
            cols = owner[seg]  # distinct, so the fancy assignment below has no conflicts
            minima[:, cols] = np.minimum(minima[:, cols], lows)
        return minima

    def band_keys(self, signatures: np.ndarray) -> np.ndarray:
        """One uint64 key per LSH band, shape (n, bands): an avalanched hash of the band's rows."""
        sig = np.asarray(signatures)
        if sig.ndim != 2 or sig.shape[1] != self.config.num_perm:
            raise ValueError(f"signatures must have shape (n, {self.config.num_perm}), got {sig.shape}")
        bands = sig.reshape(len(sig), self.config.bands, self.config.rows).astype(np.uint64)
        h = np.full(bands.shape[:2], _BAND_INIT, dtype=np.uint64)
        for r in range(self.config.rows):
            h ^= bands[:, :, r]
            _mix64(h)
        return h


def jaccard_estimate(a: np.ndarray, b: np.ndarray) -> float:
    """Estimated Jaccard similarity of two signatures: the fraction of equal entries."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"signatures must have the same non-empty shape, got {a.shape} and {b.shape}")
    return float(np.count_nonzero(a == b)) / a.size

