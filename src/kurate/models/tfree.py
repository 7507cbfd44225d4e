"""T-FREE — tokenizer-free sparse representations (arXiv 2406.19223).

    text ─split_units─▶ words ─trigram hashing─▶ sparse pattern (≈ m·#trigrams of v rows)
         ─EmbeddingBag(sum)─▶ backbone ─Linear(d, v)─▶ BCE against the next word's pattern
         ─score a word dictionary─▶ next word

* Split (`split_units`): runs of letters (+ combining marks, at most `max_word_chars`), every
  digit, and every other non-space character are words. Whitespace: the paper assumes one
  space between words by default and marks the exceptions; we keep that default explicit and
  lossless — a single space in front of a word belongs to the word (" Haus"), every other
  whitespace character is a word of its own. `"".join(split_units(t)) == t`.
* Pattern (as the official trainer, Aleph-Alpha/trigrams; DESIGN.md §4): the byte trigrams of
  " word " (the word without its leading space, wrapped in one space each side). Each trigram
  activates exactly m *distinct* rows of v (`hashes`; a drawn row already taken is re-drawn), and
  `lowercase_shared` of them (2 of 10) are the lower-cased trigram's, so "Haus" and "haus" share
  rows beyond their common trigrams. The official code shares them for ASCII letters; we lower-case
  a trigram that is whole UTF-8 characters with str.lower (so "Äpf" shares with "äpf") and any
  other one byte-wise (ASCII). A word *without* a leading space also activates the m rows of a
  "no-space" marker, a flag shared by all words. Hashing is blake2b keyed by `hash_seed`, computed
  on the fly and cached per trigram and per word; no 256³ table.
* Head: Linear(d, v) without bias, trained with binary cross-entropy on the multi-hot pattern of
  the next word, positives weighted by `pos_weight` (100; the official 7B config uses 300: a word
  turns on ~1% of the rows, and unweighted BCE learns to switch every row off), mean over rows —
  computed sparsely: Σ softplus(z) + (w − 1)·Σ_on softplus(z) − w·Σ_on z, never a dense target.
* Decoding scores a dictionary (training-data words + `wordfreq` top lists, lower-case and
  capitalised, with and without the leading space). Greedy decoding uses the paper's score,
  mean σ(z) on the word's pattern minus mean σ(z) off it.
* Likelihood (eval only). The BCE model's own distribution over the dictionary, log p(w) ∝
  Σ_{i∈pattern(w)} z_i (score "loglik"), is badly over-confident with independent rows and hash
  collisions. We use softmax over the dictionary of α · mean_{i∈pattern(w)} z_i, with the single
  scalar α fitted (grid search, NLL) on the latest *training* batch before each evaluation
  (`calibrate`); sampling uses the same distribution with temperature. A word outside the
  dictionary has no probability at all, so eval-mode `nats` and `bytes` cover the *in-dictionary*
  target words only and `oov_byte_frac` says how much was left out: the trainer's bits/byte for
  T-FREE is bits per in-dictionary byte. It equals a full code length (comparable with HAT's and
  BPE's bits/byte) on text whose every word is in the dictionary — which is how
  bench/tfree_effects.py compares the models. The training loss (weighted BCE) is reported as
  `loss`; it is not comparable with the other models' loss.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections import Counter
from dataclasses import dataclass

import numpy as np
import regex
import torch
import torch.nn as nn
import torch.nn.functional as F

from kurate.models.backbone import BackboneConfig, Transformer, init_weights
from kurate.models.contracts import Architecture

BOS = "\x00<bos>"  # the document-start unit; split_units never yields it (it splits at "<")
_NO_SPACE = b"\xf6nospace"  # cannot collide with a 3-byte trigram


def split_units(text: str, max_word_chars: int = 32) -> list[str]:
    pattern = _unit_regex(max_word_chars)
    return pattern.findall(text)


_REGEX_CACHE: dict[int, regex.Pattern] = {}


def _unit_regex(n: int) -> regex.Pattern:
    if n not in _REGEX_CACHE:
        _REGEX_CACHE[n] = regex.compile(r" ?(?:[\p{L}\p{M}]{1,%d}|\p{N}|[^\s\p{L}\p{M}\p{N}])|\s" % n)
    return _REGEX_CACHE[n]


@dataclass
class TFreeConfig:
    d_model: int = 128
    n_layer: int = 2
    n_head: int = 4
    max_len: int = 4096
    vocab_rows: int = 8192  # v: rows of the embedding and of the head (the paper: 8k–64k)
    hashes: int = 10  # m: distinct rows per trigram
    lowercase_shared: int = 2  # of the m rows, this many are the lower-cased trigram's
    pos_weight: float = 100.0  # BCE weight of the on rows (official 7B config: 300)
    hash_seed: int = 0
    max_word_chars: int = 32
    wordfreq_langs: tuple[str, ...] = ("de", "en")
    wordfreq_top: int = 20000  # words per language added to the dictionary (if wordfreq is installed)
    min_count: int = 1  # training-data words seen at least this often join the dictionary

    def backbone(self) -> BackboneConfig:
        return BackboneConfig(self.d_model, self.n_layer, self.n_head, max_len=self.max_len)


class TFreeCodec:
    """Units are word strings; pattern(word) → sorted row ids; owns the decoding dictionary."""

    kind = "tfree"
    bos = BOS

    def __init__(self, v: int, m: int, lowercase_shared: int, seed: int, max_word_chars: int,
                 dictionary: list[str]):
        if not 0 <= lowercase_shared <= m <= v:
            raise ValueError(f"T-FREE needs 0 ≤ lowercase_shared ({lowercase_shared}) ≤ hashes ({m}) ≤ vocab_rows ({v})")
        self.v, self.m, self.lowercase_shared, self.seed = v, m, lowercase_shared, seed
        self.max_word_chars = max_word_chars
        self.dictionary = dictionary
        self._trigram_rows: dict[bytes, list[int]] = {}
        self.index = {w: i for i, w in enumerate(dictionary)}
        self._patterns: dict[str, np.ndarray] = {}
        self._bags: tuple[torch.Tensor, torch.Tensor] | None = None
        self._sizes: torch.Tensor | None = None

    # -- text --
    def encode(self, text: str) -> list[str]:
        return split_units(text, self.max_word_chars)

    def decode(self, units: list[str]) -> str:
        return "".join(u for u in units if u != BOS)

    def unit_bytes(self, unit: str) -> int:
        return 0 if unit == BOS else len(unit.encode("utf-8"))

    # -- patterns --
    def _draws(self, tag: bytes, feature: bytes):
        """An endless stream of rows for `feature`: 16 per blake2b block, keyed by the seed."""
        key = self.seed.to_bytes(8, "little")
        for block in itertools.count():
            digest = hashlib.blake2b(tag + block.to_bytes(4, "little") + feature, digest_size=64, key=key).digest()
            yield from (int(r) % self.v for r in np.frombuffer(digest, dtype="<u4"))

    def _rows(self, feature: bytes) -> list[int]:
        """The m distinct rows of a trigram (or marker): first the lower-cased form's shared rows,
        then its own, each drawn row that is already taken re-drawn (the official `hash` init)."""
        rows = self._trigram_rows.get(feature)
        if rows is None:
            rows = []
            for tag, source, n in ((b"lower", _lower(feature), self.lowercase_shared), (b"own", feature, self.m)):
                draws = self._draws(tag, source)
                while len(rows) < n:
                    r = next(draws)
                    if r not in rows:
                        rows.append(r)
            self._trigram_rows[feature] = rows
        return rows

    def pattern(self, word: str) -> np.ndarray:
        p = self._patterns.get(word)
        if p is None:
            if word == BOS:
                core, spaced = b"\xf5", True
            else:
                raw = word.encode("utf-8")
                spaced = raw.startswith(b" ") and len(raw) > 1
                core = raw[1:] if spaced else raw
            s = b" " + core + b" "
            feats = {s[i:i + 3] for i in range(len(s) - 2)}
            if not spaced:
                feats.add(_NO_SPACE)
            p = np.unique(np.array([r for f in sorted(feats) for r in self._rows(f)], dtype=np.int64))
            self._patterns[word] = p
        return p

    def collate(self, seqs: list[list[str]]) -> dict[str, torch.Tensor]:
        """→ pat (B, T, K) row ids padded with v, count (B, T) text bytes, word_id (B, T) (−1 = OOV)."""
        B, T = len(seqs), len(seqs[0])
        pats = [self.pattern(u) for s in seqs for u in s]
        K = max(len(p) for p in pats)
        out = np.full((B * T, K), self.v, dtype=np.int64)
        for i, p in enumerate(pats):  # data-side loop; the model's forward has none
            out[i, :len(p)] = p
        count = [self.unit_bytes(u) for s in seqs for u in s]
        ids = [self.index.get(u, -1) for s in seqs for u in s]
        return {
            "pat": torch.from_numpy(out).view(B, T, K),
            "count": torch.tensor(count, dtype=torch.long).view(B, T),
            "word_id": torch.tensor(ids, dtype=torch.long).view(B, T),
        }

    # -- dictionary scoring --
    def dict_bags(self, device) -> tuple[torch.Tensor, torch.Tensor]:
        """Dictionary patterns as one flat index tensor + bag offsets (for F.embedding_bag)."""
        if self._bags is None or self._bags[0].device != torch.device(device):
            pats = [self.pattern(w) for w in self.dictionary]
            offsets = np.concatenate([[0], np.cumsum([len(p) for p in pats])[:-1]])
            self._bags = (torch.from_numpy(np.concatenate(pats)).to(device), torch.from_numpy(offsets).to(device))
        return self._bags

    def score(self, z: torch.Tensor, mode: str = "mean_logit") -> torch.Tensor:
        """z (N, v) head logits → (N, D) dictionary scores.

        "mean_logit": mean of z over the word's pattern (for the calibrated softmax);
        "loglik": Σ_on z (the BCE log-likelihood up to a constant per row);
        "paper": mean σ(z) on the pattern − mean σ(z) off it.
        Computed as an embedding-bag over the columns of z: a deterministic sparse product.
        """
        idx, offsets = self.dict_bags(z.device)
        z = z.float()
        if mode in ("loglik", "mean_logit"):
            agg = "sum" if mode == "loglik" else "mean"
            return F.embedding_bag(idx, z.T.contiguous(), offsets, mode=agg).T
        act = torch.sigmoid(z)
        on = F.embedding_bag(idx, act.T.contiguous(), offsets, mode="sum").T
        n_on = self.pattern_sizes(z.device)
        off = (act.sum(1, keepdim=True) - on) / (self.v - n_on)
        return on / n_on - off

    def pattern_sizes(self, device) -> torch.Tensor:
        if self._sizes is None or self._sizes.device != torch.device(device):
            self._sizes = torch.tensor([len(self.pattern(w)) for w in self.dictionary],
                                       dtype=torch.float32, device=device)
        return self._sizes

    # -- persistence --
    def save(self, path: str) -> None:
        with open(os.path.join(path, "codec.json"), "w") as f:
            json.dump({"kind": self.kind, "v": self.v, "m": self.m, "lowercase_shared": self.lowercase_shared,
                       "seed": self.seed,
                       "max_word_chars": self.max_word_chars, "dictionary": self.dictionary}, f, ensure_ascii=False)

    @classmethod
    def load(cls, path: str) -> "TFreeCodec":
        with open(os.path.join(path, "codec.json")) as f:
            d = json.load(f)
        return cls(d["v"], d["m"], d["lowercase_shared"], d["seed"], d["max_word_chars"], d["dictionary"])

    @classmethod
    def fit(cls, cfg: TFreeConfig, texts: list[str]) -> "TFreeCodec":
        counts = Counter(u for t in texts for u in split_units(t, cfg.max_word_chars))
        words = [w for w, c in counts.most_common() if c >= cfg.min_count]
        words += [str(d) for d in range(10)] + [" " + str(d) for d in range(10)]
        try:
            from wordfreq import top_n_list
        except ImportError:  # optional: the dictionary then comes from the training data only
            top_n_list = None
        if top_n_list is not None and cfg.wordfreq_top > 0:
            for lang in cfg.wordfreq_langs:
                for w in top_n_list(lang, cfg.wordfreq_top):
                    for form in dict.fromkeys((w, w[:1].upper() + w[1:])):  # ordered, unlike a set
                        if split_units(form, cfg.max_word_chars) == [form]:
                            words += [form, " " + form]
        dictionary = list(dict.fromkeys(words))
        return cls(cfg.vocab_rows, cfg.hashes, cfg.lowercase_shared, cfg.hash_seed, cfg.max_word_chars, dictionary)


def _lower(trigram: bytes) -> bytes:
    """The lower-cased form a trigram shares rows with: str.lower when the trigram is whole UTF-8
    characters and keeps its length, else ASCII lower-casing (what the official code covers)."""
    try:
        low = trigram.decode("utf-8").lower().encode("utf-8")
    except UnicodeDecodeError:
        return trigram.lower()
    return low if len(low) == len(trigram) else trigram.lower()


class TFree(nn.Module):
    def __init__(self, cfg: TFreeConfig, codec: TFreeCodec):
        super().__init__()
        self.cfg, self.codec = cfg, codec
        v = cfg.vocab_rows
        self.emb = nn.EmbeddingBag(v + 1, cfg.d_model, mode="sum", padding_idx=v)
        self.backbone = Transformer(cfg.backbone())
        self.head = nn.Linear(cfg.d_model, v, bias=False)  # as the official model: pos_weight, not a bias prior
        init_weights(self, n_layer=cfg.n_layer)
        self.register_buffer("alpha", torch.tensor(1.0))  # softmax scale for bits/byte, see calibrate()

    def states(self, pat: torch.Tensor, key_bias: torch.Tensor | None = None,
               positions: torch.Tensor | None = None, key_scale: torch.Tensor | None = None) -> torch.Tensor:
        B, T, K = pat.shape
        x = self.emb(pat.reshape(B * T, K)).view(B, T, -1)
        return self.backbone(x, key_bias=key_bias, positions=positions, key_scale=key_scale)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        pat, count = batch["pat"], batch["count"]
        B, T1, K = pat.shape
        T, v = T1 - 1, self.cfg.vocab_rows
        kb, ks = batch.get("key_bias"), batch.get("key_scale")
        pos = batch.get("positions")  # core-tokenset replay: original positions (models/contracts.py)
        z = self.head(self.states(pat[:, :T], None if kb is None else kb[:, :T], None if pos is None else pos[:, :T],
                                  None if ks is None else ks[:, :T])).float().reshape(B * T, v)
        tgt = pat[:, 1:].reshape(B * T, K)
        on = tgt < v
        # BCE with a multi-hot target and positive weight w, sparse (module docstring), mean over N·v
        z_on = z.gather(1, tgt.clamp(max=v - 1))
        w = self.cfg.pos_weight
        per_unit = F.softplus(z).sum(1) + ((w - 1) * F.softplus(z_on) - w * z_on).mul(on).sum(1)
        cnt = count[:, 1:].reshape(-1)
        if "loss_mask" in batch:  # masked replay: a masked target word adds no loss, gradient, nats or bytes
            keep = batch["loss_mask"][:, 1:].reshape(-1)
            per_unit, cnt = per_unit * keep, cnt * keep
            loss = per_unit.sum() / (keep.sum().clamp(min=1) * v)
        else:
            loss = per_unit.sum() / z.numel()
        out = {"loss": loss, "bytes": cnt.sum(), "unit_loss": per_unit.view(B, T) / v}
        if not self.training:  # nats and bytes of the in-dictionary targets (module docstring)
            out.update(self._dictionary_nats(z.detach(), batch["word_id"][:, 1:].reshape(-1), cnt))
        return out

    @torch.no_grad()
    def _dictionary_nats(self, z, word_id, count, chunk: int = 256) -> dict:
        """Code length of the in-dictionary target words under the calibrated dictionary softmax,
        their bytes, and the share of target bytes in words outside the dictionary."""
        nats = torch.zeros((), device=z.device)
        known = (word_id >= 0) & (count > 0)
        for s in range(0, z.shape[0], chunk):
            logp = torch.log_softmax(self.alpha * self.codec.score(z[s:s + chunk]), dim=-1)
            wid = word_id[s:s + chunk]
            nats += -(logp.gather(1, wid.clamp(min=0)[:, None])[:, 0] * known[s:s + chunk]).sum()
        known_bytes = (count * known).sum()
        oov_frac = 1.0 - float(known_bytes) / max(1, int(count.sum()))
        return {"nats": nats, "bytes": known_bytes, "oov_byte_frac": oov_frac}

    @torch.no_grad()
    def calibrate(self, batch: dict[str, torch.Tensor], max_units: int = 2048) -> float:
        """Fit α (the dictionary-softmax scale used for bits/byte) on a training batch: grid search."""
        was_training = self.training
        self.eval()
        pat = batch["pat"]
        z = self.head(self.states(pat[:, :-1])).float().reshape(-1, self.cfg.vocab_rows)
        wid, cnt = batch["word_id"][:, 1:].reshape(-1), batch["count"][:, 1:].reshape(-1)
        keep = ((wid >= 0) & (cnt > 0)).nonzero()[:, 0][:max_units]
        s, wid = self.codec.score(z[keep]), wid[keep]
        best = (float("inf"), 1.0)
        for a in torch.logspace(-1, 2.5, 36).tolist():
            nll = float(-torch.log_softmax(a * s, dim=-1).gather(1, wid[:, None]).sum())
            best = min(best, (nll, a))
        self.alpha.fill_(best[1])
        self.train(was_training)
        return best[1]

    @torch.no_grad()
    def generate(self, prompt: str, max_new_units: int = 16, temperature: float = 1.0, seed: int = 0) -> str:
        device = next(self.parameters()).device
        gen = torch.Generator(device=device).manual_seed(seed)
        units = [BOS] + self.codec.encode(prompt)
        new = []
        for _ in range(max_new_units):
            b = self.codec.collate([units[-self.cfg.max_len:]])
            z = self.head(self.states(b["pat"].to(device))[:, -1])
            if temperature <= 0:
                i = int(self.codec.score(z, "paper")[0].argmax())
            else:
                probs = torch.softmax(self.alpha * self.codec.score(z)[0] / temperature, dim=-1)
                i = int(torch.multinomial(probs, 1, generator=gen))
            word = self.codec.dictionary[i]
            units.append(word)
            new.append(word)
        return prompt + "".join(new)

    def flops_per_unit(self, seq_len: int, bytes_per_unit: float = 0.0) -> float:
        """Backbone + head matmuls (6·P each) + attention. The EmbeddingBag sum (≈ m·#trigrams
        additions of d-vectors per word) is not a matmul and is left out."""
        return self.backbone.flops_per_position(ctx=seq_len) + 6 * self.head.weight.numel()

    def embedding_head_params(self) -> int:
        return self.emb.weight.numel() + self.head.weight.numel()


ARCHITECTURE = Architecture(
    config=TFreeConfig, codec=TFreeCodec, model=TFree,
    # v rows (the paper's 85%-fewer comparison uses 8k; the official 7B config 32k); wordfreq words
    # per language in the dictionary
    presets={
        "tiny": {"vocab_rows": 8192, "wordfreq_top": 5000},
        "125m": {"vocab_rows": 8192, "wordfreq_top": 50000},
        "350m": {"vocab_rows": 16384, "wordfreq_top": 50000},
        "1b": {"vocab_rows": 32768, "wordfreq_top": 50000},
    },
)
