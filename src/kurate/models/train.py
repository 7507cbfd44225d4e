"""One trainer for every registered model kind (models/architectures.py): HAT, T-FREE, the BPE baseline.

    from kurate.models.checkpoint import generate_text
    from kurate.models.train import train
    from kurate.models.train_config import preset
    cfg = preset("tiny", "hat", max_steps=60)
    summary = train(cfg, texts_train, texts_eval, "runs/hat-tiny")       # resumes if a checkpoint exists
    print(generate_text("runs/hat-tiny/checkpoint", "Die Stadt", 20, temperature=0.8, seed=0))

A model kind is seen only through its contracts (models/contracts.py): the codec turns text into
units and unit sequences into batches; the unit LM's forward(batch) returns loss, unit_loss,
bytes and (where it gives a code length) nats; calibrate(batch) runs before each evaluation;
flops_per_unit gives the FLOPs for MFU. Documents are packed into sequences by the Packer
(models/packing.py); checkpoints are written and read by models/checkpoint.py.

Optimiser: AdamW (weight decay on matrices only), linear warm-up then cosine decay to
min_lr_frac·lr; the learning rate is a pure function of the step. Gradient clipping; bf16
autocast on CUDA, fp32 on CPU; optional torch.compile. Resume is exact: the checkpoint holds the
optimizer, the RNG states and the packer position, so a restarted run that is given the same text
stream from its beginning skips to the same place and sees the same batches.

Metrics per step (dicts passed to on_metrics and printed): loss, bits/byte (where the model
gives nats), units/s, bytes/s, achieved FLOP/s and, given a peak FLOP/s, MFU. FLOPs per unit
are each model's flops_per_unit(): 6·P per position for every matmul weight P (forward 2·P,
backward 4·P) plus 12·n_layer·d·ctx attention per position, per component (HAT: encoder over
the word's bytes, pooling, backbone over words, decoder over bytes + end-of-word).

Lineage (the `trained_on` dataset, flows/train.py): `on_documents(step, ids)` gets the ids of the
documents (`DocText`, models/data.py) whose first unit entered a batch of that step, in the first
epoch only (a later epoch repeats the same stream); `on_segment_end(step)` runs on rank 0 right
before each checkpoint is written and when training ends, so the caller commits what it buffered
*before* the checkpoint that makes those steps final: a run killed in between redoes the segment
and finds it committed, and a resumed run reports exactly the documents an uninterrupted one
would. `lineage` (e.g. release name, version, content hash) is stored in the checkpoint.

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
import itertools
import math
import os
import time
from typing import Callable, Iterable

import torch

from kurate.models.architectures import architecture
from kurate.models.checkpoint import build, fit_codec, load_checkpoint, save_checkpoint
from kurate.models.contracts import Codec, UnitLM
from kurate.models.packing import Packer
from kurate.models.train_config import TrainConfig


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up over warmup_steps, then cosine from lr to min_lr_frac·lr at max_steps."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
    return cfg.lr * (cfg.min_lr_frac + (1 - cfg.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


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


def _share_codec(codec: Codec | None, codec_type: type, device: torch.device) -> Codec:
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
        return codec_type.load(d)


class DocumentTap:
    """The training stream as the Packer sees it, noting each document it draws in epoch 0.

    The Packer draws a document only when the sequence it is building needs a unit of it, so
    "drawn" is "first trained on in this step". A resumed Packer re-draws from its saved position
    (epoch, doc): that document was already drawn before the checkpoint (it holds the unit the last
    sequence ended on), so only later ones are new. One-shot iterators stay one-shot (the Packer
    does not cycle them)."""

    def __init__(self, texts: Iterable[str], state: dict | None):
        self.texts = texts
        self.one_shot = iter(texts) is texts
        self.next_epoch = state["epoch"] if state else 0
        self.after = state["doc"] if state else -1
        self.drawn: list[str] = []
        self._index = -1

    def _note(self, epoch: int, index: int, text: str) -> None:
        doc_id = getattr(text, "doc_id", None)
        if epoch == 0 and index > self.after and doc_id is not None:
            self.drawn.append(doc_id)

    def __iter__(self):
        if self.one_shot:
            return self
        return self._epoch()

    def _epoch(self):
        epoch, self.next_epoch = self.next_epoch, self.next_epoch + 1
        for index, text in enumerate(self.texts):
            self._note(epoch, index, text)
            yield text

    def __next__(self) -> str:
        text = next(self.texts)
        self._index += 1
        self._note(self.next_epoch, self._index, text)
        return text

    def take(self) -> list[str]:
        drawn, self.drawn = self.drawn, []
        return drawn


def _to(batch: dict, device) -> dict:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


@torch.no_grad()
def evaluate(model: UnitLM, batches: list[dict], device, autocast, calibration: dict | None = None) -> dict:
    """Mean loss and bits/byte over held-out batches; `calibration`: a training batch the model
    fits its eval-time parameters on first (UnitLM.calibrate)."""
    if calibration is not None:
        with autocast():
            model.calibrate(calibration)
    model.eval()
    loss, nats, nbytes, extra = 0.0, 0.0, 0, {}
    for b in batches:
        with autocast():
            out = model(_to(b, device))
        loss += float(out["loss"])
        nbytes += int(out["bytes"])
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
          device: str | torch.device | None = None, on_documents: Callable[[int, list[str]], None] | None = None,
          on_segment_end: Callable[[int], None] | None = None, lineage: dict | None = None) -> dict:
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
        if saved != cfg:
            diff = {k for k, v in cfg.model_dump().items() if getattr(saved, k) != v}
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
            codec = _share_codec(codec, architecture(cfg.model).codec, device)
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
    tap = DocumentTap(texts_train, state["data"] if state else None)
    packer = Packer(tap, codec, cfg.seq_len, state["data"] if state else None)

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
        # summed on the device and read once after the optimizer step: one host sync per step
        sums = torch.zeros(4, dtype=torch.float64, device=device)  # loss, nats, bytes, micro-batches with nats
        try:
            for i in range(cfg.grad_accum):
                batch = _to(packer.next_batch(cfg.batch_size, rank, world), device)
                # DDP: accumulate locally, all-reduce once with the last micro-batch's backward
                no_sync = ddp.no_sync() if ddp is not None and i < cfg.grad_accum - 1 else contextlib.nullcontext()
                with no_sync, autocast():
                    out = fmodel(batch)
                with no_sync:
                    (out["loss"] / cfg.grad_accum).backward()
                sums[0] += out["loss"].detach()
                sums[2] += out["bytes"]
                if "nats" in out:
                    sums[1] += out["nats"].detach()
                    sums[3] += 1
        except StopIteration:  # every rank's packer runs dry at the same step
            if rank == 0:
                print(f"training text ran out at step {step}")
            opt.zero_grad(set_to_none=True)
            break
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if world > 1:  # global figures: mean loss over ranks, summed nats/bytes
            torch.distributed.all_reduce(sums)
            sums[0] /= world
        # the step's one host sync; it waits for the optimizer's kernels too, so dt is the whole step
        loss_sum, nats, nbytes, has_nats, grad_norm = torch.cat([sums, grad_norm.detach().double().view(1)]).tolist()
        nbytes, has_nats = int(nbytes), has_nats > 0
        units = cfg.batch_size * cfg.seq_len * cfg.grad_accum * world  # over all ranks
        dt = time.perf_counter() - t0
        step += 1

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
        drawn = tap.take()
        if rank > 0:
            continue
        if on_documents is not None:
            on_documents(step, drawn)
        if on_metrics is not None:
            on_metrics(m)
        if (cfg.checkpoint_every and step % cfg.checkpoint_every == 0) or step == cfg.max_steps:
            if on_segment_end is not None:
                on_segment_end(step)  # commit what the segment consumed before the checkpoint makes it final
            save_checkpoint(ckpt, model, codec, cfg, opt, step, packer, lineage)
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

    if rank == 0 and on_segment_end is not None:
        on_segment_end(step)  # the text ran out (or nothing was left to do): commit the rest
    return {"model": cfg.model, "steps": step, "params": n_params, "history": history,
            "final_loss": history[-1]["loss"] if history else None, **last_eval,
            "wall_s": time.perf_counter() - t_start, "checkpoint": ckpt}
