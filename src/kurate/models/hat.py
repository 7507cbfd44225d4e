"""HAT — Hierarchical Autoregressive Transformer (arXiv 2501.10322), tokenizer-free.

    text ─split_words─▶ words (UTF-8 bytes) ─byte encoder + pooling─▶ one vector per word
         ─backbone (causal over words)─▶ predictive embedding of word i
         ─byte decoder─▶ bytes of word i+1, then END_OF_WORD

* Splitter (`split_words`): the official rule (Aleph-Alpha-Research/hat-splitter, `src/split.rs`;
  DESIGN.md §4). Lexer: UAX#29 word boundaries (the `regex` module's `(?w)\\b`), each segment cut
  after every punctuation character (`\\p{P}`) and between a lower- and an upper-case letter
  (camelCase), consecutive single spaces joined; each piece is a single space, other whitespace, a
  single punctuation character or a word. Parser: a word joins a single space before it,
  punctuation joins the word, punctuation or single space before it, anything else starts a new
  word — so `"Hello, world!"` → `["Hello,", " world!"]`, `"how_are_you"` → `["how_", "are_", "you"]`,
  and a run of two or more spaces (or any other whitespace) is a word of its own. Words longer than
  `max_bytes` are cut into greedy chunks at character boundaries (the official `split_with_limit`;
  ours never cuts a character, hence max_bytes ≥ 4). Lossless (`"".join(words) == text`). Causal
  like the official splitter: splitting a prefix gives the whole text's split except possibly its
  last word, on ordinary text; the exceptions are UAX#29's look-ahead through characters that are
  not punctuation (U+2044 FRACTION SLASH between digits; an Extend/Format or ExtendNumLet
  character such as U+00AD or U+202F right after whitespace), where the official rule, followed
  here, changes an earlier word once the next character arrives.
* Byte ids 0–255; ids of bytes that never occur in UTF-8 are specials: END_OF_WORD = 0xC0,
  PAD = 0xC1, BOS = 0xF5 (a one-byte "document start" word that counts as 0 text bytes).
* Encoder: a small bidirectional transformer over each word's bytes, pooled to one vector per
  word by cross-attention from a learned query.
* Decoder: prefix conditioning — position 0 holds the projected predictive embedding, positions
  1..n the target word's bytes; a causal byte transformer predicts byte j at position j and
  END_OF_WORD after the last byte. Loss = byte cross-entropy incl. END_OF_WORD.
* Length buckets: a batch arrives padded to its longest word (20–100+ bytes, while a German word
  has 6–7), so encoder and decoder run once per length bucket instead (`byte_buckets`: words of
  ≤ 4, ≤ 8, ≤ 12, … ≤ 64 bytes, the rest at the batch's longest): each bucket's words are gathered
  with one index op, cut to the bucket's width, and the results put back in word order — a
  handful of batched calls, no per-word Python loop. A padding byte changes nothing in either
  stack (masked out of the encoder's attention; after the target in the causal decoder), so the
  loss is the padded computation's up to float rounding, at ~1.3 computed byte positions per real
  one instead of 4–6 on German prose (docs/BENCHMARKS.md: 2.5–3× faster CPU train steps).
  `byte_buckets=()` is the plain padded path.
* bits/byte = (nats of all target bytes + END_OF_WORD of words with text bytes) / ln 2 / text bytes.
  The split is a deterministic function of the text, so this is the model's code length of the text.
* Generation: the nested loop (encode context → backbone → decode bytes until END_OF_WORD),
  with sampling restricted to byte sequences that are valid UTF-8, so output always decodes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np
import regex
import torch
import torch.nn as nn
import torch.nn.functional as F

from kurate.models.backbone import BackboneConfig, Transformer, init_weights
from kurate.models.contracts import Architecture

END_OF_WORD, PAD, BOS = 0xC0, 0xC1, 0xF5
BOS_WORD = bytes([BOS])

# ---------------------------------------------------------------------------------------------
# word splitter

_UAX29 = regex.compile(r"(?wV1)\b")
_WHITESPACE = regex.compile(r"\s+")
# a cut after each punctuation character, and between a lower- and an upper-case letter (the
# cut goes after the lower-case one; the two cannot overlap, so finditer finds every such pair)
_PUNCT = regex.compile(r"\p{P}")
_CAMEL = regex.compile(r"\p{Ll}(?=\p{Lu})")

# token classes of the official lexer
_WORD, _PUNCTUATION, _WHITESPACE_RUN, _SPACE = range(4)


def _cut_after(piece: str, pattern: regex.Pattern) -> list[str]:
    """Cut `piece` right after every match of the one-character `pattern`."""
    out, start = [], 0
    for m in pattern.finditer(piece):
        out.append(piece[start:m.end()])
        start = m.end()
    if start < len(piece):
        out.append(piece[start:])
    return out


def _lex(text: str) -> list[tuple[int, str]]:
    """UAX#29 segments, cut after punctuation and at camelCase, runs of U+0020 joined, classified."""
    pieces: list[str] = []
    for seg in _UAX29.split(text):
        for p in _cut_after(seg, _PUNCT) if seg else ():
            for q in _cut_after(p, _CAMEL):
                if q == " " and pieces and pieces[-1].strip(" ") == "":
                    pieces[-1] += q  # a space after a run of spaces extends the run
                else:
                    pieces.append(q)
    tokens = []
    for p in pieces:
        if p == " ":
            tokens.append((_SPACE, p))
        elif _WHITESPACE.fullmatch(p):
            tokens.append((_WHITESPACE_RUN, p))
        elif len(p) == 1 and _PUNCT.match(p):
            tokens.append((_PUNCTUATION, p))
        else:
            tokens.append((_WORD, p))
    return tokens


def _parse(tokens: list[tuple[int, str]]) -> list[str]:
    """Group tokens into words: a word joins a single space before it; punctuation joins whatever
    word, punctuation or single space precedes it; everything else starts a new word."""
    words: list[str] = []
    last = None  # class of the last token of the current word
    for cls, s in tokens:
        joins = (last == _SPACE and cls == _WORD) or (
            cls == _PUNCTUATION and last in (_SPACE, _WORD, _PUNCTUATION))
        if joins:
            words[-1] += s
        else:
            words.append(s)
        last = cls
    return words


def _chunk_utf8(word: str, max_bytes: int) -> list[str]:
    """Greedy chunks of whole characters, each at most max_bytes UTF-8 bytes."""
    if len(word.encode("utf-8")) <= max_bytes:
        return [word]
    out, cur, n = [], [], 0
    for ch in word:
        b = len(ch.encode("utf-8"))
        if n + b > max_bytes:
            out.append("".join(cur))
            cur, n = [], 0
        cur.append(ch)
        n += b
    out.append("".join(cur))
    return out


def split_words(text: str, max_bytes: int = 100) -> list[str]:
    """HAT word split; see the module docstring for the rules. max_bytes must be ≥ 4."""
    assert max_bytes >= 4, "max_bytes must hold one UTF-8 character"
    return [chunk for word in _parse(_lex(text)) for chunk in _chunk_utf8(word, max_bytes)]


# ---------------------------------------------------------------------------------------------
# codec: text ⇄ words as bytes, batches as padded byte tensors


class HATCodec:
    """Units are words as UTF-8 `bytes`; BOS_WORD starts each document."""

    kind = "hat"
    bos = BOS_WORD

    def __init__(self, max_word_bytes: int = 100):
        self.max_word_bytes = max_word_bytes

    def encode(self, text: str) -> list[bytes]:
        return [w.encode("utf-8") for w in split_words(text, self.max_word_bytes)]

    def decode(self, units: list[bytes]) -> str:
        return b"".join(u for u in units if u != BOS_WORD).decode("utf-8", errors="replace")

    def unit_bytes(self, unit: bytes) -> int:
        return 0 if unit == BOS_WORD else len(unit)

    def collate(self, seqs: list[list[bytes]]) -> dict[str, torch.Tensor]:
        """Equal-length word sequences → bytes (B, T, L) padded with PAD, lens (B, T), count (B, T)."""
        B, T = len(seqs), len(seqs[0])
        words = [w for s in seqs for w in s]
        lens = np.fromiter((len(w) for w in words), dtype=np.int64, count=len(words))
        L = int(lens.max())
        out = np.full((B * T, L), PAD, dtype=np.int64)
        flat = np.frombuffer(b"".join(words), dtype=np.uint8)
        starts = np.cumsum(lens) - lens
        rows = np.repeat(np.arange(B * T), lens)
        cols = np.arange(len(flat)) - np.repeat(starts, lens)
        out[rows, cols] = flat
        count = lens.copy()
        count[[w == BOS_WORD for w in words]] = 0
        return {
            "bytes": torch.from_numpy(out).view(B, T, L),
            "lens": torch.from_numpy(lens).view(B, T),
            "count": torch.from_numpy(count).view(B, T),
        }

    def save(self, path: str) -> None:
        with open(os.path.join(path, "codec.json"), "w") as f:
            json.dump({"kind": self.kind, "max_word_bytes": self.max_word_bytes}, f)

    @classmethod
    def load(cls, path: str) -> "HATCodec":
        with open(os.path.join(path, "codec.json")) as f:
            return cls(json.load(f)["max_word_bytes"])

    @classmethod
    def fit(cls, cfg: "HATConfig", texts: list[str]) -> "HATCodec":
        return cls(cfg.max_word_bytes)


# ---------------------------------------------------------------------------------------------
# model


@dataclass
class HATConfig:
    # backbone over words
    d_model: int = 128
    n_layer: int = 2
    n_head: int = 4
    max_len: int = 4096
    # byte encoder and decoder
    enc_d: int = 64
    enc_layers: int = 1
    enc_heads: int = 2
    dec_d: int = 64
    dec_layers: int = 1
    dec_heads: int = 2
    max_word_bytes: int = 100
    byte_buckets: tuple[int, ...] = (4, 8, 12, 16, 24, 32, 48, 64)  # word-length bounds of the byte stacks' buckets

    def backbone(self) -> BackboneConfig:
        return BackboneConfig(self.d_model, self.n_layer, self.n_head, max_len=self.max_len)

    def encoder(self) -> BackboneConfig:
        return BackboneConfig(self.enc_d, self.enc_layers, self.enc_heads, max_len=self.max_word_bytes)

    def decoder(self) -> BackboneConfig:
        return BackboneConfig(self.dec_d, self.dec_layers, self.dec_heads, max_len=self.max_word_bytes + 1)


class QueryPool(nn.Module):
    """Cross-attention from one learned query to a word's byte states → one vector per word."""

    def __init__(self, d_in: int, d_out: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.query = nn.Parameter(torch.randn(d_in) * 0.02)
        self.kv = nn.Linear(d_in, 2 * d_in, bias=False)
        self.out = nn.Linear(d_in, d_out, bias=False)

    def forward(self, h: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        N, L, D = h.shape
        hd = D // self.n_head
        k, v = self.kv(h).view(N, L, 2, self.n_head, hd).permute(2, 0, 3, 1, 4)
        q = self.query.to(k.dtype).view(1, self.n_head, 1, hd).expand(N, -1, -1, -1)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=valid[:, None, None, :])
        return self.out(y.reshape(N, D))


class HAT(nn.Module):
    def __init__(self, cfg: HATConfig, codec: HATCodec | None = None):
        super().__init__()
        self.cfg = cfg
        self.codec = codec or HATCodec(cfg.max_word_bytes)
        self.enc_emb = nn.Embedding(256, cfg.enc_d)
        self.encoder = Transformer(cfg.encoder())
        self.pool = QueryPool(cfg.enc_d, cfg.d_model, cfg.enc_heads)
        self.backbone = Transformer(cfg.backbone())
        self.cond = nn.Linear(cfg.d_model, cfg.dec_d, bias=False)
        self.dec_emb = nn.Embedding(256, cfg.dec_d)
        self.decoder = Transformer(cfg.decoder())
        self.head = nn.Linear(cfg.dec_d, 256, bias=False)
        init_weights(self, n_layer=cfg.n_layer)

    # -- pieces shared by training and generation --

    def word_states(self, x: torch.Tensor, lens: torch.Tensor, key_bias: torch.Tensor | None = None,
                    positions: torch.Tensor | None = None, key_scale: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, T, L) padded word bytes, lens (B, T) → predictive embeddings (B, T, d_model).
        key_bias / key_scale (B, T): optional attention-score bias / scale per word in the backbone
        (see Transformer)."""
        B, T, L = x.shape
        words = self.embed_words(x.reshape(B * T, L), lens.reshape(B * T)).view(B, T, -1)
        return self.backbone(words, key_bias=key_bias, positions=positions, key_scale=key_scale)

    def embed_words(self, x: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        """x (N, L) padded word bytes, lens (N,) → one vector per word (N, d_model), per length bucket."""
        sels, parts = [], []
        for sel, w in _length_buckets(lens, self.cfg.byte_buckets):
            xb, lb = x[sel, :w], lens[sel]
            valid = torch.arange(w, device=x.device)[None, :] < lb[:, None]
            h = self.encoder(self.enc_emb(xb), mask=valid[:, None, None, :], causal=False)
            sels.append(sel)
            parts.append(self.pool(h, valid))
        return _unbucket(parts, sels)

    def word_nats(self, z: torch.Tensor, y: torch.Tensor, ylen: torch.Tensor) -> torch.Tensor:
        """z (N, d_model) predictive embeddings, y (N, L) padded target words, ylen (N,) → nats (N,)
        of each word's bytes and its END_OF_WORD, decoding each length bucket at its own width."""
        sels, parts = [], []
        for sel, w in _length_buckets(ylen, self.cfg.byte_buckets):
            yb, lb = y[sel, :w], ylen[sel]
            logits = self.decode_logits(z[sel], yb)
            # targets: the word's bytes, END_OF_WORD at position len, ignored after it
            tgt = torch.cat([yb, yb.new_full((len(sel), 1), PAD)], dim=1)
            tgt = tgt.scatter(1, lb[:, None], END_OF_WORD)
            pos = torch.arange(w + 1, device=y.device)[None, :]
            tgt = tgt.masked_fill(pos > lb[:, None], -100)
            ce = F.cross_entropy(logits.float().reshape(-1, 256), tgt.view(-1), ignore_index=-100, reduction="none")
            sels.append(sel)
            parts.append(ce.view(len(sel), w + 1).sum(1))
        return _unbucket(parts, sels)

    def decode_logits(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """z (N, d_model) predictive embeddings, y (N, L) target bytes → logits (N, L+1, 256)."""
        inp = torch.cat([self.cond(z).unsqueeze(1), self.dec_emb(y)], dim=1)
        return self.head(self.decoder(inp))

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x, lens, count = batch["bytes"], batch["lens"], batch["count"]
        B, T1, L = x.shape
        T = T1 - 1
        kb, ks = batch.get("key_bias"), batch.get("key_scale")
        pos = batch.get("positions")  # core-tokenset replay: original positions (models/contracts.py)
        z = self.word_states(x[:, :T], lens[:, :T], None if kb is None else kb[:, :T],
                             None if pos is None else pos[:, :T], None if ks is None else ks[:, :T]).reshape(B * T, -1)
        y, ylen = x[:, 1:].reshape(B * T, L), lens[:, 1:].reshape(B * T)
        ce = self.word_nats(z, y, ylen)  # nats per target word
        n_targets = (ylen + 1).sum()
        counted = count[:, 1:].reshape(B * T) > 0
        nbytes = count[:, 1:]
        if "loss_mask" in batch:  # masked replay: a masked target word adds no loss, gradient, nats or bytes
            keep = batch["loss_mask"][:, 1:].reshape(B * T)
            ce, counted, nbytes = ce * keep, counted & keep, nbytes * keep.view(B, T)
            n_targets = ((ylen + 1) * keep).sum().clamp(min=1)
        return {
            "loss": ce.sum() / n_targets,
            "nats": (ce * counted).sum().detach(),
            "bytes": nbytes.sum(),
            "unit_loss": ce.view(B, T),  # nats per target word (attribution and selection use it)
        }

    def calibrate(self, batch: dict[str, torch.Tensor]) -> None:
        """Nothing to fit: the byte softmax is the model's own distribution (models/contracts.py)."""
        return None

    # -- generation: encoder → backbone → decoder until the word ends --

    @torch.no_grad()
    def generate(self, prompt: str, max_new_units: int = 16, temperature: float = 1.0, seed: int = 0) -> str:
        device = next(self.parameters()).device
        gen = torch.Generator(device=device).manual_seed(seed)
        words = [BOS_WORD] + self.codec.encode(prompt)
        new: list[bytes] = []
        for _ in range(max_new_units):
            ctx = words[-self.cfg.max_len:]
            b = {k: v.to(device) for k, v in self.codec.collate([ctx]).items()}
            z = self.word_states(b["bytes"], b["lens"])[:, -1]
            word = self._sample_word(z, temperature, gen)
            words.append(word)
            new.append(word)
        return prompt + b"".join(new).decode("utf-8")

    def _sample_word(self, z: torch.Tensor, temperature: float, gen: torch.Generator) -> bytes:
        out: list[int] = []
        state = _Utf8State()
        while True:
            y = torch.tensor([out], dtype=torch.long, device=z.device).view(1, len(out))
            logits = self.decode_logits(z, y)[0, -1].float()
            allowed = state.allowed(len(out), self.cfg.max_word_bytes)
            logits = logits.masked_fill(~torch.from_numpy(allowed).to(logits.device), float("-inf"))
            if temperature <= 0:
                nxt = int(logits.argmax())
            else:
                probs = torch.softmax(logits / temperature, dim=-1)
                nxt = int(torch.multinomial(probs, 1, generator=gen))
            if nxt == END_OF_WORD:
                return bytes(out)
            out.append(nxt)
            state.push(nxt)

    def flops_per_unit(self, seq_len: int, bytes_per_unit: float) -> float:
        """Training FLOPs per word: encoder over b bytes, pooling, backbone, decoder over b+1 positions.

        b = mean UTF-8 bytes per word (padding is not counted: MFU counts useful work).
        """
        b = bytes_per_unit
        enc = b * self.encoder.flops_per_position(ctx=b)
        pool = 6 * (self.pool.kv.weight.numel() * b + self.pool.out.weight.numel()) + 12 * self.cfg.enc_d * b
        bb = self.backbone.flops_per_position(ctx=seq_len)
        dec = (b + 1) * (self.decoder.flops_per_position(ctx=b + 1) + 6 * self.head.weight.numel())
        return enc + pool + bb + dec + 6 * self.cond.weight.numel()


def _length_buckets(lens: torch.Tensor, bounds) -> list[tuple[torch.Tensor, int]]:
    """Word indices grouped by byte length: ≤ b for each bound b below the longest word, then the
    rest up to the longest → [(indices, width)] for the non-empty groups. The loop runs over the
    few bounds, never over words; widths are fixed numbers (plus the batch's longest), so tensor
    shapes repeat from batch to batch."""
    longest = int(lens.max())
    out, lo = [], -1
    for b in [*(b for b in bounds if b < longest), longest]:
        sel = ((lens > lo) & (lens <= b)).nonzero()[:, 0]
        if len(sel):
            out.append((sel, b))
        lo = b
    return out


def _unbucket(parts: list[torch.Tensor], sels: list[torch.Tensor]) -> torch.Tensor:
    """Per-bucket results back in word order (one gather; differentiable)."""
    if len(parts) == 1:
        return parts[0]  # one bucket holds every word in order
    order = torch.cat(sels)
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(len(order), device=order.device)
    return torch.cat(parts)[inverse]


class _Utf8State:
    """Which next byte keeps a byte string valid UTF-8 (END_OF_WORD only at a character boundary)."""

    def __init__(self):
        self.need = 0  # continuation bytes still expected
        self.lo, self.hi = 0x80, 0xBF  # range for the next continuation byte

    def push(self, b: int) -> None:
        if self.need:
            self.need -= 1
            self.lo, self.hi = 0x80, 0xBF
        elif b >= 0xF0:
            self.need = 3
            self.lo, self.hi = (0x90, 0xBF) if b == 0xF0 else (0x80, 0x8F) if b == 0xF4 else (0x80, 0xBF)
        elif b >= 0xE0:
            self.need = 2
            self.lo, self.hi = (0xA0, 0xBF) if b == 0xE0 else (0x80, 0x9F) if b == 0xED else (0x80, 0xBF)
        elif b >= 0xC2:
            self.need = 1

    def allowed(self, n: int, max_bytes: int) -> np.ndarray:
        ok = np.zeros(256, dtype=bool)
        if self.need:
            ok[self.lo:self.hi + 1] = True
            return ok
        room = max_bytes - n
        if room >= 1:
            ok[0x00:0x80] = True
        if room >= 2:
            ok[0xC2:0xE0] = True
        if room >= 3:
            ok[0xE0:0xF0] = True
        if room >= 4:
            ok[0xF0:0xF5] = True
        if n > 0:
            ok[END_OF_WORD] = True
        return ok


def _byte_stacks(d: int, layers: int, heads: int) -> dict:
    """Encoder and decoder of the same size."""
    return {"enc_d": d, "enc_layers": layers, "enc_heads": heads, "dec_d": d, "dec_layers": layers, "dec_heads": heads}


ARCHITECTURE = Architecture(
    config=HATConfig, codec=HATCodec, model=HAT,
    presets={"tiny": _byte_stacks(64, 1, 2), "125m": _byte_stacks(384, 2, 6), "350m": _byte_stacks(512, 3, 8),
             "1b": _byte_stacks(1024, 3, 16)},
)
