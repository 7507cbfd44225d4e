"""One trainer for HAT, T-FREE and the BPE baseline.

    from kurate.models.train import preset, train, generate_text
    cfg = preset("tiny", "hat", max_steps=60)
    summary = train(cfg, texts_train, texts_eval, "runs/hat-tiny")       # resumes if a checkpoint exists
    print(generate_text("runs/hat-tiny/checkpoint", "Die Stadt", 20, temperature=0.8, seed=0))

Every model kind supplies a codec (text → units; units → batch tensors; UTF-8 bytes per unit)
and an nn.Module whose forward(batch) returns {"loss", "nats", "bytes"} (T-FREE returns "nats"
at eval only), plus generate() and flops_per_unit(). Documents become [BOS] + units and are
packed back to back into sequences of seq_len + 1 units; consecutive sequences share one unit,
so every unit after the first is a target exactly once.

Optimiser: AdamW (weight decay on matrices only), linear warm-up then cosine decay to
min_lr_frac·lr; the learning rate is a pure function of the step. Gradient clipping; bf16
autocast on CUDA, fp32 on CPU; optional torch.compile.

Checkpoint dir (out_dir/checkpoint, replaced atomically): model.safetensors, optimizer.pt
(optimizer state, step, torch RNG states, packer position — loaded with weights_only=True),
config.json, and the codec's files. Resume is exact: the packer position is (epoch, document
index, unit offset), so a restarted run that is given the same text stream from its beginning
skips to the same place and sees the same batches.

Metrics per step (dicts passed to on_metrics and printed): loss, bits/byte (where the model
gives nats), units/s, bytes/s, achieved FLOP/s and, given a peak FLOP/s, MFU. FLOPs per unit
are each model's flops_per_unit(): 6·P per position for every matmul weight P (forward 2·P,
backward 4·P) plus 12·n_layer·d·ctx attention per position, per component (HAT: encoder over
the word's bytes, pooling, backbone over words, decoder over bytes + end-of-word).

Data parallel: when a torch.distributed process group with more than one rank exists (Ray Train's
TorchTrainer sets one up: gloo on CPU, NCCL on GPU), the model is wrapped in
DistributedDataParallel. Every rank runs the same Packer over the same stream and draws
world_size × batch_size sequences per micro-batch, keeping slice `rank`: the ranks see different
sequences, yet the packer position is one global value, so resume stays exact (even with another
world size). Rank 0 fits the codec and sends it to the others. DDP averages the gradients, so one
step over W ranks with grad_accum G equals one process with grad_accum W·G (every micro-batch
weighs the same), before clipping and AdamW. Loss, nats, bytes and units are summed over the
ranks for the metrics; only rank 0 evaluates, prints, calls on_metrics and writes checkpoints
(the checkpoint directory must be shared by all ranks to resume). Without a process group
nothing of this runs and training is what it was on one device.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import math
import os
import shutil
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch
from safetensors.torch import load_file, save_file

from kurate.models.bpe import BPECodec, BPEConfig, BPEModel
from kurate.models.hat import HAT, HATCodec, HATConfig
from kurate.models.tfree import TFree, TFreeCodec, TFreeConfig

MODELS = {
    "hat": (HATConfig, HATCodec, HAT),
    "tfree": (TFreeConfig, TFreeCodec, TFree),
    "bpe": (BPEConfig, BPECodec, BPEModel),
}


@dataclass
class TrainConfig:
    model: str = "hat"  # hat | tfree | bpe
    model_config: dict = field(default_factory=dict)  # fields of HATConfig / TFreeConfig / BPEConfig
    seq_len: int = 64  # units (words or tokens) per sequence
    batch_size: int = 8  # sequences per micro-batch
    grad_accum: int = 1
    max_steps: int = 60
    lr: float = 3e-3
    min_lr_frac: float = 0.1
    warmup_steps: int = 10
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    seed: int = 0
    eval_every: int = 0  # steps; 0 = only after the last step
    eval_batches: int = 4
    checkpoint_every: int = 0  # steps; 0 = only after the last step
    fit_docs: int = 2000  # first training documents used to fit the codec (BPE merges, T-FREE dictionary)
    device: str = "auto"  # auto | cpu | cuda
    compile: bool = False
    peak_flops: float | None = None  # None: 989e12 on H100, 312e12 on A100 (bf16), none on CPU
    init_from: str | None = None  # a checkpoint whose codec and weights a fresh run starts from (continual training)
    log_every: int = 10  # print every N steps (0 = silent)


_BACKBONE = {  # d_model, n_layer, n_head
    "tiny": (128, 2, 4),
    "125m": (768, 12, 12),
    "350m": (1024, 24, 16),
    "1b": (2048, 16, 16),
}
_BYTE_STACKS = {  # HAT encoder and decoder: d, n_layer, n_head
    "tiny": (64, 1, 2),
    "125m": (384, 2, 6),
    "350m": (512, 3, 8),
    "1b": (1024, 3, 16),
}
_VOCAB = {  # T-FREE rows v, wordfreq words per language, BPE vocab
    "tiny": (2048, 5000, 8192),
    "125m": (8192, 50000, 64000),
    "350m": (16384, 50000, 64000),
    "1b": (16384, 50000, 64000),
}
_TRAIN = {  # seq_len, batch_size, lr, warmup, max_steps
    "tiny": (64, 8, 3e-3, 10, 60),
    "125m": (1024, 32, 6e-4, 1000, 20000),
    "350m": (1024, 32, 3e-4, 2000, 40000),
    "1b": (1024, 32, 2e-4, 2000, 60000),
}
PRESETS = tuple(_BACKBONE)


def preset(name: str, model: str, **overrides: Any) -> TrainConfig:
    """A TrainConfig for `model` at preset `name` (tiny | 125m | 350m | 1b); keyword overrides win.

    `model_config` overrides are merged into the preset's model geometry.
    """
    if name not in _BACKBONE:
        raise ValueError(f"unknown preset {name!r}; choose one of {PRESETS}")
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of {tuple(MODELS)}")
    d, L, H = _BACKBONE[name]
    seq_len, batch, lr, warmup, steps = _TRAIN[name]
    mc: dict[str, Any] = {"d_model": d, "n_layer": L, "n_head": H}
    if model == "hat":
        ed, el, eh = _BYTE_STACKS[name]
        mc.update(enc_d=ed, enc_layers=el, enc_heads=eh, dec_d=ed, dec_layers=el, dec_heads=eh)
    elif model == "tfree":
        mc.update(vocab_rows=_VOCAB[name][0], wordfreq_top=_VOCAB[name][1])
    else:
        mc.update(vocab_size=_VOCAB[name][2])
    mc.update(overrides.pop("model_config", {}))
    cfg = TrainConfig(model=model, model_config=mc, seq_len=seq_len, batch_size=batch, lr=lr,
                      warmup_steps=warmup, max_steps=steps)
    return dataclasses.replace(cfg, **overrides)


def model_config(cfg: TrainConfig):
    C = MODELS[cfg.model][0]
    mc = {"max_len": cfg.seq_len, **cfg.model_config}
    if "wordfreq_langs" in mc:
        mc["wordfreq_langs"] = tuple(mc["wordfreq_langs"])
    return C(**mc)


def fit_codec(cfg: TrainConfig, texts: list[str]):
    """The codec of a fresh run: the init_from checkpoint's own (continual training keeps its
    units), else one fitted on texts."""
    Codec = MODELS[cfg.model][1]
    if cfg.init_from:
        return Codec.load(_checkpoint_dir(cfg.init_from))
    return Codec.fit(model_config(cfg), texts)


def build(cfg: TrainConfig, codec=None, fit_texts: list[str] | None = None):
    """→ (model, codec). Fits the codec on fit_texts unless one is given; init_from loads the weights."""
    mcfg = model_config(cfg)
    _, Codec, Model = MODELS[cfg.model]
    if codec is None:
        codec = fit_codec(cfg, fit_texts or [])
    torch.manual_seed(cfg.seed)
    model = Model(mcfg, codec)
    if cfg.init_from:  # the optimizer, schedule and data position start afresh
        model.load_state_dict(load_file(os.path.join(_checkpoint_dir(cfg.init_from), "model.safetensors")))
    return model, codec


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up over warmup_steps, then cosine from lr to min_lr_frac·lr at max_steps."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
    return cfg.lr * (cfg.min_lr_frac + (1 - cfg.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


# ---------------------------------------------------------------------------------------------
# packing


class MaskedText(str):
    """A training document that counts only some of its units (a core-tokenset replay document).

    A plain `str` everywhere else (codec fitting, printing); `spans` are [start, end) ranges of
    unit indices into codec.encode(text).
    """

    spans: tuple[tuple[int, int], ...]

    def __new__(cls, text: str, spans):
        obj = super().__new__(cls, text)
        obj.spans = tuple((int(a), int(b)) for a, b in spans)
        return obj

    def unit_mask(self, n_units: int) -> list[bool]:
        """[BOS] + units → keep flags, cut after the last kept unit (BOS itself is never kept)."""
        keep = [False] * (n_units + 1)
        for a, b in self.spans:
            for j in range(max(0, a), min(b, n_units)):
                keep[j + 1] = True
        last = max((j for j, k in enumerate(keep) if k), default=0)
        return keep[:last + 1]


class Packer:
    """Documents → sequences of seq_len + 1 units; resumable position (epoch, doc, offset).

    The position names the first document still needed (its epoch and index in the stream) and
    the unit offset into it. A re-iterable source (list, ParquetMix) starts over for the next
    epoch unless cycle=False; a one-shot iterator ends training when it runs dry.

    Masked replay: a document given as a `MaskedText` contributes loss only on its kept units;
    its units after the last kept one are dropped (they would only be masked context). A batch
    holding any masked unit gets `loss_mask` (B, seq_len + 1, bool, per unit; the models read
    [:, 1:] for the targets); batches without one are exactly what they were before.
    """

    def __init__(self, texts: Iterable[str], codec, seq_len: int, state: dict | None = None,
                 cycle: bool | None = None):
        self.texts, self.codec, self.n = texts, codec, seq_len + 1
        self.cyclic = (iter(texts) is not texts) if cycle is None else cycle
        s = state or {"epoch": 0, "doc": 0, "offset": 0}
        self.epoch, self.doc, self.offset = s["epoch"], s["doc"], s["offset"]
        self.buffer: deque[tuple[int, int, list, list | None]] = deque()  # (epoch, doc index, units, keep mask)
        self.last_mask: list[bool] | None = None  # of the latest sequence; None = every unit counts
        self.buffered = 0
        self._docs = self._doc_stream(self.epoch, self.doc)

    def _doc_stream(self, epoch: int, skip: int):
        while True:
            for i, text in enumerate(self.texts):
                if i >= skip:
                    yield epoch, i, text
            if not self.cyclic:
                return
            epoch, skip = epoch + 1, 0

    def state(self) -> dict:
        epoch, doc = (self.buffer[0][0], self.buffer[0][1]) if self.buffer else (self.epoch, self.doc)
        return {"epoch": epoch, "doc": doc, "offset": self.offset}

    def next_sequence(self) -> list:
        while self.buffered - self.offset < self.n:
            e, i, text = next(self._docs)  # StopIteration: the source ran dry
            units = [self.codec.bos] + self.codec.encode(text)
            mask = None
            if isinstance(text, MaskedText):
                mask = text.unit_mask(len(units) - 1)
                units, mask = units[:len(mask)], mask  # mask is [BOS] + units up to the last kept one
            self.buffer.append((e, i, units, mask))
            self.buffered += len(units)
        seq, need, k, pos = [], self.n, 0, self.offset
        masks: list[bool] = []
        while need:
            _, _, units, mask = self.buffer[k]
            take = units[pos:pos + need]
            seq += take
            masks += mask[pos:pos + need] if mask is not None else [True] * len(take)
            need -= len(take)
            k, pos = k + 1, 0
        self.last_mask = None if all(masks) else masks
        self.offset += self.n - 1  # the last unit starts the next sequence
        while self.buffer and len(self.buffer[0][2]) <= self.offset:
            e, i, done, _ = self.buffer.popleft()
            self.offset -= len(done)
            self.buffered -= len(done)
            self.epoch, self.doc = e, i + 1  # past the end of an epoch is fine: resume skips it
        return seq

    def next_batch(self, batch_size: int, rank: int = 0, world: int = 1) -> dict[str, torch.Tensor]:
        """batch_size sequences: slice `rank` of the next world × batch_size (see module docstring)."""
        seqs, masks = [], []
        for _ in range(batch_size * world):
            seqs.append(self.next_sequence())
            masks.append(self.last_mask)
        lo, hi = rank * batch_size, (rank + 1) * batch_size
        batch = self.codec.collate(seqs[lo:hi])
        if any(m is not None for m in masks[lo:hi]):
            batch["loss_mask"] = torch.tensor([m or [True] * self.n for m in masks[lo:hi]], dtype=torch.bool)
        return batch


# ---------------------------------------------------------------------------------------------
# checkpoints


def save_checkpoint(path: str, model, codec, cfg: TrainConfig, optimizer, step: int, packer: Packer) -> None:
    tmp = path + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()},
              os.path.join(tmp, "model.safetensors"))
    rng = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    torch.save({"optimizer": optimizer.state_dict(), "step": step, "rng": rng, "data": packer.state()},
               os.path.join(tmp, "optimizer.pt"))
    with open(os.path.join(tmp, "config.json"), "w") as f:
        json.dump({"train": dataclasses.asdict(cfg), "model": dataclasses.asdict(model.cfg), "step": step}, f, indent=2)
    codec.save(tmp)
    old = path + ".old"
    shutil.rmtree(old, ignore_errors=True)
    if os.path.exists(path):
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def _checkpoint_dir(path: str) -> str:
    return path if os.path.exists(os.path.join(path, "config.json")) else os.path.join(path, "checkpoint")


def load_checkpoint(path: str, device: str = "cpu"):
    """→ (model, codec, TrainConfig) from a checkpoint dir (or a run dir holding `checkpoint/`).

    Weights come from safetensors; nothing is unpickled."""
    path = _checkpoint_dir(path)
    with open(os.path.join(path, "config.json")) as f:
        cfg = TrainConfig(**json.load(f)["train"])
    codec = MODELS[cfg.model][1].load(path)
    model, _ = build(dataclasses.replace(cfg, init_from=None), codec=codec)  # these weights, not the parent's
    model.load_state_dict(load_file(os.path.join(path, "model.safetensors")))
    return model.to(device).eval(), codec, cfg


def generate_text(checkpoint_dir: str, prompt: str, max_new_units: int = 32, temperature: float = 0.8,
                  seed: int = 0, device: str = "cpu") -> str:
    model, _, _ = load_checkpoint(checkpoint_dir, device)
    return model.generate(prompt, max_new_units=max_new_units, temperature=temperature, seed=seed)


# ---------------------------------------------------------------------------------------------
# training


def _peak_flops(cfg: TrainConfig, device: torch.device) -> float | None:
    if cfg.peak_flops is not None:
        return cfg.peak_flops
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        if "H100" in name or "H200" in name:
            return 989e12
        if "A100" in name:
            return 312e12
    return None


def _dist() -> tuple[int, int]:
    """(rank, world size) of the torch.distributed process group; (0, 1) without one."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _share_codec(codec, Codec, device: torch.device):
    """Rank 0's codec on every rank: its saved files travel through the process group, so ranks
    never fit their own (BPE merges could tie-break differently) and need no shared disk for it."""
    import tempfile

    rank = torch.distributed.get_rank()
    files = [None]
    if rank == 0:
        with tempfile.TemporaryDirectory() as d:
            codec.save(d)
            files[0] = {n: open(os.path.join(d, n), "rb").read() for n in os.listdir(d)}
    torch.distributed.broadcast_object_list(files, src=0, device=device if device.type == "cuda" else None)
    if rank == 0:
        return codec
    with tempfile.TemporaryDirectory() as d:
        for name, data in files[0].items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        return Codec.load(d)


def _to(batch: dict, device) -> dict:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


@torch.no_grad()
def evaluate(model, batches: list[dict], device, autocast, calibration: dict | None = None) -> dict:
    if calibration is not None and hasattr(model, "calibrate"):  # T-FREE: fit its softmax scale
        with autocast():
            model.calibrate(calibration)
    model.eval()
    loss, nats, nbytes, extra = 0.0, 0.0, 0, {}
    for b in batches:
        with autocast():
            out = model(_to(b, device))
        loss += float(out["loss"])
        nbytes += out["bytes"]
        if "nats" in out:
            nats += float(out["nats"])
        if "oov_byte_frac" in out:
            extra["eval_oov_byte_frac"] = extra.get("eval_oov_byte_frac", 0.0) + out["oov_byte_frac"] / len(batches)
    model.train()
    res = {"eval_loss": loss / len(batches), **extra}
    if nats:
        res["eval_bits_per_byte"] = nats / max(1, nbytes) / math.log(2)
    return res


def train(config: TrainConfig, texts_train: Iterable[str], texts_eval: Iterable[str] | None, out_dir: str,
          resume: bool = True, on_metrics: Callable[[dict], None] | None = None,
          device: str | torch.device | None = None) -> dict:
    """Train (or resume) and return a summary dict; see the module docstring.

    On resume, pass the same texts_train stream from its beginning: the packer skips to where the
    checkpoint left off. `device` overrides cfg.device (Ray Train passes each worker's own GPU).
    Under a process group every rank calls this with the same arguments; only rank 0's summary
    has a history.
    """
    cfg = config
    rank, world = _dist()
    device = torch.device(device if device is not None else
                          "cuda" if cfg.device == "auto" and torch.cuda.is_available() else
                          "cpu" if cfg.device == "auto" else cfg.device)
    if world > 1 and device.type == "cuda":
        torch.cuda.set_device(device)  # NCCL collectives use the current device
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device.type == "cuda" else contextlib.nullcontext
    ckpt = os.path.join(out_dir, "checkpoint")
    os.makedirs(out_dir, exist_ok=True)

    state = None
    if resume and os.path.exists(os.path.join(ckpt, "optimizer.pt")):
        model, codec, saved = load_checkpoint(ckpt, "cpu")
        if dataclasses.asdict(saved) != dataclasses.asdict(cfg):
            diff = {k for k, v in dataclasses.asdict(cfg).items() if dataclasses.asdict(saved)[k] != v}
            print(f"resume: config differs from the checkpoint's in {sorted(diff)}; using the new values")
        model.train()
        state = torch.load(os.path.join(ckpt, "optimizer.pt"), map_location="cpu", weights_only=True)
    else:
        if iter(texts_train) is texts_train:  # one-shot iterator: keep the documents used for fitting
            head = [t for _, t in zip(range(cfg.fit_docs), texts_train)]
            texts_train = itertools.chain(head, texts_train)
            fit = head
        else:
            fit = [t for _, t in zip(range(cfg.fit_docs), texts_train)]
        codec = fit_codec(cfg, fit) if rank == 0 else None
        if world > 1:
            codec = _share_codec(codec, MODELS[cfg.model][1], device)
        model, _ = build(cfg, codec=codec)
    model.to(device)

    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=device.type == "cuda")
    step = 0
    if state is not None:
        opt.load_state_dict(state["optimizer"])
        step = state["step"]
        torch.set_rng_state(state["rng"]["cpu"])
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    packer = Packer(texts_train, codec, cfg.seq_len, state["data"] if state else None)

    eval_batches = []
    if texts_eval is not None and rank == 0:
        ep = Packer(list(texts_eval), codec, cfg.seq_len, cycle=False)
        try:
            for _ in range(cfg.eval_batches):
                eval_batches.append(ep.next_batch(cfg.batch_size))
        except StopIteration:
            pass

    # DDP averages gradients across ranks during backward; buffers (rotary tables, T-FREE's α) are
    # constants in training, so they are not re-broadcast every step
    ddp = (torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                                      broadcast_buffers=False) if world > 1 else None)
    fmodel = torch.compile(ddp or model, dynamic=True) if cfg.compile else (ddp or model)
    peak = _peak_flops(cfg, device)
    if peak and world > 1:  # MFU against all ranks' devices
        peak *= world
    n_params = sum(p.numel() for p in model.parameters())
    log_every = cfg.log_every if rank == 0 else 0
    if log_every:
        print(f"{cfg.model}: {n_params / 1e6:.2f}M parameters, device {device}, from step {step}"
              + (f", {world} DDP ranks" if world > 1 else ""))
    history, last_eval, t_start = [], {}, time.perf_counter()

    while step < cfg.max_steps:
        lr = lr_at(cfg, step)
        for g in opt.param_groups:
            g["lr"] = lr
        t0 = time.perf_counter()
        loss_sum, nats, nbytes, units, has_nats = 0.0, 0.0, 0, 0, False
        try:
            for i in range(cfg.grad_accum):
                batch = _to(packer.next_batch(cfg.batch_size, rank, world), device)
                # DDP: accumulate locally, all-reduce once with the last micro-batch's backward
                no_sync = ddp.no_sync() if ddp is not None and i < cfg.grad_accum - 1 else contextlib.nullcontext()
                with no_sync, autocast():
                    out = fmodel(batch)
                with no_sync:
                    (out["loss"] / cfg.grad_accum).backward()
                loss_sum += float(out["loss"].detach())
                nbytes += out["bytes"]
                units += cfg.batch_size * cfg.seq_len
                if "nats" in out:
                    nats += float(out["nats"])
                    has_nats = True
        except StopIteration:  # every rank's packer runs dry at the same step
            if rank == 0:
                print(f"training text ran out at step {step}")
            opt.zero_grad(set_to_none=True)
            break
        grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip))
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        step += 1
        if world > 1:  # global figures: mean loss over ranks, summed nats/bytes/units
            t = torch.tensor([loss_sum, nats, nbytes, units, has_nats], dtype=torch.float64, device=device)
            torch.distributed.all_reduce(t)
            loss_sum, nats, nbytes, units, has_nats = float(t[0]) / world, float(t[1]), int(t[2]), int(t[3]), bool(t[4])

        flops = model.flops_per_unit(cfg.seq_len, nbytes / max(1, units)) * units
        m = {"step": step, "model": cfg.model, "loss": loss_sum / cfg.grad_accum, "lr": lr, "grad_norm": grad_norm,
             "units_per_s": units / dt, "bytes_per_s": nbytes / dt, "bytes_per_unit": nbytes / max(1, units),
             "flops_per_s": flops / dt, "step_time_s": dt}
        if has_nats:
            m["bits_per_byte"] = nats / max(1, nbytes) / math.log(2)
        if peak:
            m["mfu"] = flops / dt / peak
        if eval_batches and ((cfg.eval_every and step % cfg.eval_every == 0) or step == cfg.max_steps):
            last_eval = evaluate(model, eval_batches, device, autocast, calibration=batch)
            m.update(last_eval)
        if rank == 0 and ((cfg.checkpoint_every and step % cfg.checkpoint_every == 0) or step == cfg.max_steps):
            save_checkpoint(ckpt, model, codec, cfg, opt, step, packer)
        if rank > 0:
            continue
        history.append(m)
        if log_every and (step % log_every == 0 or step == cfg.max_steps):
            line = f"step {step}/{cfg.max_steps} | loss {m['loss']:.4f}"
            if "bits_per_byte" in m:
                line += f" | bpb {m['bits_per_byte']:.3f}"
            if "eval_bits_per_byte" in m:
                line += f" | eval bpb {m['eval_bits_per_byte']:.3f}"
            line += f" | {m['units_per_s']:.0f} units/s | {m['flops_per_s'] / 1e9:.2f} GFLOP/s"
            if "mfu" in m:
                line += f" | mfu {100 * m['mfu']:.1f}%"
            print(line)
        if on_metrics is not None:
            on_metrics(m)

    return {"model": cfg.model, "steps": step, "params": n_params, "history": history,
            "final_loss": history[-1]["loss"] if history else None, **last_eval,
            "wall_s": time.perf_counter() - t_start, "checkpoint": ckpt}
