"""What a model kind supplies: a codec, a unit language model, and the record that bundles them.

A *unit* is what a model predicts: a word (HAT, T-FREE) or a token (the BPE baseline). The trainer
(`models/train.py`), core-tokenset selection (`models/coretokens.py`) and continual training
(`models/continual.py`) see a model kind only through these two protocols, so a new kind is one
module that defines them plus its `ARCHITECTURE`, one line in `models/architectures.py`, and its own
test; `tests/test_model_contracts.py` checks every registered kind against this file
(docs/ARCHITECTURE.md, "Contracts").

Batches. `Codec.collate` turns equal-length unit sequences ([BOS] + units, T + 1 of them) into a
dict of tensors whose first two dimensions are (B, T + 1); position t predicts unit t + 1. Every
codec's batch holds `count` (B, T + 1): the UTF-8 text bytes of each unit (0 for BOS). The trainer
and coretokens may add keys every model honours:

* `loss_mask` (B, T + 1) bool — masked replay: a target unit whose flag is False adds no loss, no
  gradient, no nats and no bytes (its `unit_loss` entry is 0); the unit is still context.
* `key_bias` (B, T + 1) float — added to every query's attention score on key t in every backbone
  layer (log(1 − f) scales the weight on key t by 1 − f; −inf removes it); zeros change nothing.
* `key_scale` (B, T + 1) float — multiplies every query's pre-softmax score on key t, shifted by
  the row's minimum, in every backbone layer (AtMan's own manipulation); ones change nothing.
* `positions` (B, T + 1) int — the rotary position of each unit (absent: 0..T). Core-tokenset
  replay (models/coretokens.py) packs only the kept units and keeps each at its original distance
  from the others; every model passes it to its backbone (`Transformer.forward(positions=…)`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, NotRequired, Protocol, TypedDict, runtime_checkable

if TYPE_CHECKING:  # annotations only: the registry (models/architectures.py) imports this without torch
    import torch


@runtime_checkable
class Codec(Protocol):
    """Text ⇄ units, and unit sequences → batch tensors (see the module docstring)."""

    kind: str  # the registry name; written into the codec's saved files
    bos: Any  # the document-start unit (0 text bytes); the Packer puts it before every document

    def encode(self, text: str) -> list:
        """Units of `text`, without BOS; lossless: decode(encode(t)) == t."""

    def decode(self, units: list) -> str:
        """Text of `units`; BOS units are dropped."""

    def unit_bytes(self, unit: Any) -> int:
        """UTF-8 bytes of the text a unit stands for (0 for BOS): the denominator of bits/byte."""

    def collate(self, seqs: list[list]) -> dict[str, torch.Tensor]:
        """B equal-length unit sequences → tensors (B, T + 1, …), including `count`."""

    def save(self, path: str) -> None:
        """Write the codec's files into the directory `path` (a checkpoint)."""

    @classmethod
    def load(cls, path: str) -> Codec:
        """The codec saved in directory `path`."""

    @classmethod
    def fit(cls, cfg: Any, texts: list[str]) -> Codec:
        """A codec for a fresh run: fitted on `texts` where the kind learns one (BPE merges, the
        T-FREE dictionary), else built from `cfg` alone."""


class ForwardOutput(TypedDict):
    """A unit LM's forward(batch) result."""

    loss: torch.Tensor  # scalar: mean over the counted targets, what backward() runs on
    unit_loss: torch.Tensor  # (B, T) per target unit (nats; T-FREE: BCE per row); 0 where loss_mask is False
    # 0-dim integer tensor: text bytes of the counted targets; a tensor, so that the caller reads it
    # together with the loss (one host sync per step, never one inside forward). T-FREE in eval mode
    # counts only its in-dictionary targets: the only ones its likelihood covers (models/tfree.py)
    bytes: torch.Tensor
    nats: NotRequired[torch.Tensor]  # code length of those bytes: HAT and BPE always, T-FREE in eval mode
    oov_byte_frac: NotRequired[float]  # T-FREE in eval mode: share of target bytes outside its dictionary (not counted)


@runtime_checkable
class UnitLM(Protocol):
    """A causal language model over a codec's units (an `nn.Module`)."""

    cfg: Any  # the kind's config dataclass; saved in the checkpoint's config.json
    codec: Codec
    # the causal Transformer over unit embeddings: its input (B, T, d) is one embedding per unit and
    # its output feeds the head; coretokens hooks both for gradient×input and the last-layer gradients
    backbone: torch.nn.Module

    def __call__(self, batch: dict[str, torch.Tensor]) -> ForwardOutput:
        """Forward pass over a collated batch (with optional `loss_mask`, `key_bias`, `key_scale`, `positions`)."""

    def calibrate(self, batch: dict[str, torch.Tensor]) -> float | None:
        """Fit eval-time parameters on a training batch before an evaluation (T-FREE: the scale of
        its dictionary softmax); kinds with nothing to fit return None."""

    def generate(self, prompt: str, max_new_units: int = 16, temperature: float = 1.0, seed: int = 0) -> str:
        """`prompt` followed by sampled units (temperature 0: greedy, the seed is then ignored)."""

    def flops_per_unit(self, seq_len: int, bytes_per_unit: float) -> float:
        """Training FLOPs per unit at this context length (6·P per matmul weight + attention; see
        models/backbone.py), for FLOP/s and MFU."""

    def parameters(self, recurse: bool = True) -> Any: ...

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]: ...

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any: ...

    def train(self, mode: bool = True) -> Any: ...


@dataclass(frozen=True)
class Architecture:
    """One model kind, as its module declares it (`ARCHITECTURE`) and the registry names it."""

    config: type  # dataclass of the model's hyper-parameters; `max_len` is set from the trainer's seq_len
    codec: type  # a Codec class: fit(config, texts) for a fresh run, load(path) from a checkpoint
    model: Callable[..., UnitLM]  # model(config, codec)
    # per preset (models/architectures.py PRESETS): the config fields beyond the shared backbone
    # geometry (d_model, n_layer, n_head), e.g. HAT's byte stacks or a vocabulary size
    presets: Mapping[str, Mapping[str, Any]]
