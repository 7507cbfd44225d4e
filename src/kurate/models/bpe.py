"""BPE baseline: the shared backbone over byte-level BPE tokens (HF `tokenizers`), for like-for-like
comparisons with HAT and T-FREE (parameters, bits/byte, speed).

The tokenizer is trained on the first training documents (byte-level pre-tokenizer without a
prefix space, so decoding the tokens gives back the text exactly). Every token maps to a known
number of UTF-8 bytes — one per character of its byte-level string — which gives bits/byte.
Input embedding and output head are separate matrices (not tied), as in the T-FREE comparison.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from kurate.models.backbone import BackboneConfig, Transformer, init_weights
from kurate.models.contracts import Architecture

BOS = "<|bos|>"


@dataclass
class BPEConfig:
    d_model: int = 128
    n_layer: int = 2
    n_head: int = 4
    max_len: int = 4096
    vocab_size: int = 8192

    def backbone(self) -> BackboneConfig:
        return BackboneConfig(self.d_model, self.n_layer, self.n_head, max_len=self.max_len)


class BPECodec:
    kind = "bpe"

    def __init__(self, tokenizer):
        self.tok = tokenizer
        self.bos = tokenizer.token_to_id(BOS)
        vocab = tokenizer.get_vocab()
        self.vocab_size = tokenizer.get_vocab_size()
        self._bytes = torch.zeros(self.vocab_size, dtype=torch.long)
        for piece, i in vocab.items():
            self._bytes[i] = 0 if piece == BOS else len(piece)  # byte-level: one char per byte

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False).ids

    def decode(self, units: list[int]) -> str:
        return self.tok.decode([u for u in units if u != self.bos])

    def unit_bytes(self, unit: int) -> int:
        return int(self._bytes[unit])

    def collate(self, seqs: list[list[int]]) -> dict[str, torch.Tensor]:
        ids = torch.tensor(seqs, dtype=torch.long)
        return {"ids": ids, "count": self._bytes[ids]}

    def save(self, path: str) -> None:
        self.tok.save(os.path.join(path, "tokenizer.json"))

    @classmethod
    def load(cls, path: str) -> "BPECodec":
        from tokenizers import Tokenizer

        return cls(Tokenizer.from_file(os.path.join(path, "tokenizer.json")))

    @classmethod
    def fit(cls, cfg: BPEConfig, texts: list[str]) -> "BPECodec":
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=cfg.vocab_size, special_tokens=[BOS], show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator(texts, trainer)
        return cls(tok)


class BPEModel(nn.Module):
    def __init__(self, cfg: BPEConfig, codec: BPECodec):
        super().__init__()
        self.cfg, self.codec = cfg, codec
        # the trained vocabulary can be smaller than asked for on little text
        self.vocab_size = codec.vocab_size
        self.emb = nn.Embedding(self.vocab_size, cfg.d_model)
        self.backbone = Transformer(cfg.backbone())
        self.head = nn.Linear(cfg.d_model, self.vocab_size, bias=False)
        init_weights(self, n_layer=cfg.n_layer)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        ids, count = batch["ids"], batch["count"]
        kb, ks = batch.get("key_bias"), batch.get("key_scale")
        pos = batch.get("positions")  # core-tokenset replay: original positions (models/contracts.py)
        h = self.backbone(self.emb(ids[:, :-1]), key_bias=None if kb is None else kb[:, :-1],
                          positions=None if pos is None else pos[:, :-1], key_scale=None if ks is None else ks[:, :-1])
        logits = self.head(h).float()
        ce = F.cross_entropy(logits.reshape(-1, self.vocab_size), ids[:, 1:].reshape(-1), reduction="none")
        c = count[:, 1:].reshape(-1)
        loss = ce.mean()
        if "loss_mask" in batch:  # masked replay: a masked target token adds no loss, gradient, nats or bytes
            keep = batch["loss_mask"][:, 1:].reshape(-1)
            ce, c = ce * keep, c * keep
            loss = ce.sum() / keep.sum().clamp(min=1)
        return {"loss": loss, "nats": (ce * (c > 0)).sum().detach(), "bytes": c.sum(),
                "unit_loss": ce.view(ids.shape[0], -1)}  # nats per target token

    def calibrate(self, batch: dict[str, torch.Tensor]) -> None:
        """Nothing to fit: the token softmax is the model's own distribution (models/contracts.py)."""
        return None

    @torch.no_grad()
    def generate(self, prompt: str, max_new_units: int = 16, temperature: float = 1.0, seed: int = 0) -> str:
        device = next(self.parameters()).device
        gen = torch.Generator(device=device).manual_seed(seed)
        ids = [self.codec.bos] + self.codec.encode(prompt)
        new = []
        for _ in range(max_new_units):
            x = torch.tensor([ids[-self.cfg.max_len:]], device=device)
            logits = self.head(self.backbone(self.emb(x))[0, -1]).float()
            logits[self.codec.bos] = float("-inf")
            if temperature <= 0:
                nxt = int(logits.argmax())
            else:
                nxt = int(torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=gen))
            ids.append(nxt)
            new.append(nxt)
        # decode all new tokens together: a character may span tokens
        return prompt + self.codec.tok.decode(new)

    def flops_per_unit(self, seq_len: int, bytes_per_unit: float = 0.0) -> float:
        """Backbone + head matmuls (6·P) + attention; the embedding lookup is not a matmul."""
        return self.backbone.flops_per_position(ctx=seq_len) + 6 * self.head.weight.numel()

    def embedding_head_params(self) -> int:
        return self.emb.weight.numel() + self.head.weight.numel()


ARCHITECTURE = Architecture(
    config=BPEConfig, codec=BPECodec, model=BPEModel,
    presets={"tiny": {"vocab_size": 8192}, "125m": {"vocab_size": 64000}, "350m": {"vocab_size": 64000},
             "1b": {"vocab_size": 64000}},
)
