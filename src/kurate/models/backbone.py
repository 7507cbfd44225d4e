"""The Llama-style transformer shared by HAT, T-FREE and the BPE baseline.

RMSNorm (pre-norm), rotary position embeddings, SwiGLU MLP, attention through
`F.scaled_dot_product_attention` (flash / memory-efficient kernels on CUDA). No bias anywhere.
The stack knows nothing about units: each model embeds its own units (words, tokens, bytes)
into `d_model` vectors and puts its own head on top. HAT also builds its small byte encoder
and decoder from the same `Transformer` class.

FLOPs (used for MFU): a dense matmul with P weights costs 2·P FLOPs per position forward and
4·P backward, so 6·P per trained position. Attention scores and the weighted sum add
2·2·ctx·d per layer forward; with backward that is 12·n_layer·d·ctx per position (the
PaLM / nanoGPT convention, which does not halve for the causal mask).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class BackboneConfig:
    d_model: int = 128
    n_layer: int = 2
    n_head: int = 4
    mlp_mult: float = 8 / 3  # SwiGLU hidden = mlp_mult·d, rounded up to a multiple of 64
    max_len: int = 4096  # longest sequence the rotary tables cover
    rope_theta: float = 10000.0
    norm_eps: float = 1e-6

    @property
    def mlp_hidden(self) -> int:
        return 64 * math.ceil(self.mlp_mult * self.d_model / 64)


class RMSNorm(nn.Module):
    def __init__(self, d: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # normalise in fp32 for stability under bf16 autocast
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (xf * self.weight.float()).type_as(x)


def rotary_tables(head_dim: int, max_len: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    freqs = torch.outer(torch.arange(max_len, dtype=torch.float32), inv_freq)  # (max_len, head_dim/2)
    return freqs.cos(), freqs.sin()


def rotary_at(positions: torch.Tensor, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin (B, 1, T, head_dim/2) at explicit integer positions (B, T): core-tokenset replay keeps
    each kept unit at its original position (models/contracts.py `positions`), so gaps may exceed max_len."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32, device=positions.device) / head_dim))
    freqs = positions.float()[..., None] * inv_freq
    return freqs.cos()[:, None], freqs.sin()[:, None]


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: (B, H, T, hd); cos/sin: (T, hd/2). Rotates pairs (x1, x2) = halves of the head dim."""
    x1, x2 = x.float().chunk(2, dim=-1)
    y = torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return y.type_as(x)


class Attention(nn.Module):
    def __init__(self, d: int, n_head: int):
        super().__init__()
        assert d % n_head == 0, f"d_model {d} not divisible by n_head {n_head}"
        self.n_head = n_head
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.proj = nn.Linear(d, d, bias=False)

    def forward(self, x, cos, sin, mask=None, causal=True, key_scale=None):
        B, T, D = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_head, D // self.n_head).permute(2, 0, 3, 1, 4)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        if key_scale is not None:
            y = _scaled_score_attention(q, k, v, key_scale, mask)
        else:
            # mask (bool, True = may attend) is used for padded bidirectional stacks; a float mask is an
            # additive score bias (attention suppression, see Transformer.forward)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal and mask is None)
        return self.proj(y.transpose(1, 2).reshape(B, T, D))


def _scaled_score_attention(q, k, v, key_scale: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Causal attention whose pre-softmax score on key t is multiplied by key_scale (B, T)[t] after
    shifting each query's row of scores by its minimum (AtMan's manipulation: the official code,
    Aleph-Alpha/AtMan `manipulate_attention_scores`, shifts the raw scores to be non-negative and
    multiplies the suppressed token's by the suppression factor). bias: optional additive float
    mask (B, 1, T, T) with −inf above the diagonal (Transformer.forward builds it)."""
    T = q.shape[-2]
    scores = (q.float() @ k.float().transpose(-2, -1)) / math.sqrt(q.shape[-1])
    future = torch.ones(T, T, dtype=torch.bool, device=q.device).triu(1)
    if bias is not None:
        scores = scores + bias.float()
    allowed = ~future & torch.isfinite(scores)
    row_min = scores.masked_fill(~allowed, float("inf")).amin(-1, keepdim=True)
    scores = (scores - row_min) * key_scale[:, None, None, :].float()
    weights = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)
    return (weights @ v.float()).type_as(v)


class SwiGLU(nn.Module):
    def __init__(self, d: int, hidden: int):
        super().__init__()
        self.gate_up = nn.Linear(d, 2 * hidden, bias=False)
        self.down = nn.Linear(hidden, d, bias=False)

    def forward(self, x):
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)


class Block(nn.Module):
    def __init__(self, cfg: BackboneConfig):
        super().__init__()
        self.attn_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.attn = Attention(cfg.d_model, cfg.n_head)
        self.mlp_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.mlp = SwiGLU(cfg.d_model, cfg.mlp_hidden)

    def forward(self, x, cos, sin, mask=None, causal=True, key_scale=None):
        x = x + self.attn(self.attn_norm(x), cos, sin, mask, causal, key_scale)
        return x + self.mlp(self.mlp_norm(x))


class Transformer(nn.Module):
    """(B, T, d) → (B, T, d). Causal by default; `causal=False` with a padding mask for HAT's encoder."""

    def __init__(self, cfg: BackboneConfig):
        super().__init__()
        self.cfg = cfg
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        cos, sin = rotary_tables(cfg.d_model // cfg.n_head, cfg.max_len, cfg.rope_theta)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, causal: bool = True,
                key_bias: torch.Tensor | None = None, positions: torch.Tensor | None = None,
                key_scale: torch.Tensor | None = None) -> torch.Tensor:
        """key_bias (B, T), optional: added to every query's attention score on key t in every layer
        and head. log(1 − f) scales the attention weight on that key by (1 − f) before renormalising;
        −inf removes the key (masked replay). None keeps the plain causal kernel.
        key_scale (B, T), optional: multiplies every query's pre-softmax score on key t, shifted by
        the row's minimum, in every layer and head (AtMan's own manipulation, models/coretokens.py);
        ones change nothing. It takes an explicit (unfused) attention path.
        positions (B, T) int, optional: each position's rotary phase (default 0..T − 1)."""
        T = x.shape[1]
        assert T <= self.cfg.max_len, f"sequence of {T} exceeds max_len {self.cfg.max_len}"
        if positions is None:
            cos, sin = self.cos[:T], self.sin[:T]
        else:
            cos, sin = rotary_at(positions, self.cfg.d_model // self.cfg.n_head, self.cfg.rope_theta)
        if key_scale is not None and key_bias is None:
            key_bias = torch.zeros_like(key_scale)
        if key_bias is not None:
            assert causal and mask is None, "key_bias/key_scale are for causal stacks without a padding mask"
            future = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
            scores = key_bias[:, None, None, :].to(x.dtype).expand(-1, 1, T, -1)
            mask, causal = scores.masked_fill(future, float("-inf")), False
        for block in self.blocks:
            x = block(x, cos, sin, mask, causal, key_scale)
        return self.norm(x)

    def matmul_params(self) -> int:
        """Weights that take part in matmuls (norm gains excluded)."""
        return sum(p.numel() for n, p in self.named_parameters() if p.dim() == 2)

    def flops_per_position(self, ctx: float) -> float:
        """Training FLOPs per position: 6·P for the matmuls + 12·n_layer·d·ctx for attention."""
        return 6 * self.matmul_params() + 12 * self.cfg.n_layer * self.cfg.d_model * ctx


def init_weights(module: nn.Module, std: float = 0.02, n_layer: int = 1) -> None:
    """Normal(0, std) for linears/embeddings; residual output projections scaled by 1/sqrt(2·n_layer)."""
    for name, m in module.named_modules():
        if isinstance(m, nn.Linear):
            s = std / math.sqrt(2 * n_layer) if name.endswith(("attn.proj", "mlp.down")) else std
            nn.init.normal_(m.weight, 0.0, s)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.Embedding, nn.EmbeddingBag)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.padding_idx is not None:
                with torch.no_grad():
                    m.weight[m.padding_idx].zero_()
