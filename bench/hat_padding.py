"""HAT byte stacks: padding waste and train-step time, padded vs length-bucketed, on CPU.

    .venv/bin/python bench/hat_padding.py                      # tiny and 125m byte stacks
    .venv/bin/python bench/hat_padding.py --steps 5 --threads 2 --geometry tiny

A batch arrives padded to its longest word. The padded path (`byte_buckets=()`) runs encoder and
decoder over every word at that width; the bucketed path (the default, see models/hat.py) runs
them once per length bucket. Printed per path: byte positions the encoder and the decoder compute
per useful one (encoder: the word's bytes; decoder: bytes + END_OF_WORD), averaged over
`--batches` training batches of ../shared/data/german-prose.txt.gz, and the time of a full train
step (forward, backward, AdamW) after one warm-up step, min and median over `--steps`, with the
same weights and batches, the variants taking turns step by step.
The `125m` geometry is the 125m preset's byte encoder/decoder (d 384, 2 layers, 6 heads) under the
tiny backbone and batch (8 × 64 words), which is what fits a CPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from bench.train_cpu import DATA, load  # noqa: E402
from kurate.models.hat import HAT, _length_buckets  # noqa: E402
from kurate.models.checkpoint import build  # noqa: E402
from kurate.models.packing import Packer  # noqa: E402
from kurate.models.train_config import preset  # noqa: E402


def positions(lens: torch.Tensor, bounds, extra: int) -> int:
    """Byte positions one stack computes for these word lengths (extra: the decoder's prefix slot)."""
    return sum(len(sel) * (w + extra) for sel, w in _length_buckets(lens, bounds))


def padding(batches: list[dict], bounds) -> tuple[float, float]:
    enc = dec = useful_enc = useful_dec = 0
    for b in batches:
        x_lens, y_lens = b["lens"][:, :-1].reshape(-1), b["lens"][:, 1:].reshape(-1)
        enc += positions(x_lens, bounds, 0)
        dec += positions(y_lens, bounds, 1)
        useful_enc += int(x_lens.sum())
        useful_dec += int((y_lens + 1).sum())
    return enc / useful_enc, dec / useful_dec


def step_times(models: list[HAT], batches: list[dict], steps: int) -> list[tuple[list[float], float]]:
    """Train steps, the models taking turns (a busy machine slows them alike) → (seconds per step, last loss)."""
    opts = [torch.optim.AdamW(m.parameters(), lr=1e-3) for m in models]
    times, losses = [[] for _ in models], [0.0] * len(models)
    for i in range(steps + 1):
        for k, (model, opt) in enumerate(zip(models, opts)):
            t0 = time.perf_counter()
            out = model(batches[i % len(batches)])
            out["loss"].backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            if i:  # the first step allocates and warms up
                times[k].append(time.perf_counter() - t0)
            losses[k] = float(out["loss"].detach())
    return list(zip(times, losses))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=8, help="timed train steps per path")
    ap.add_argument("--batches", type=int, default=50, help="batches for the padding figures")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    ap.add_argument("--geometry", nargs="+", default=["tiny", "125m"])
    ap.add_argument("--data", default=DATA)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    texts, _ = load(args.data)
    print(f"torch threads {torch.get_num_threads()}; {len(texts)} paragraphs")

    for geometry in args.geometry:
        cfg = preset("tiny", "hat")
        if geometry != "tiny":
            byte_stacks = {k: v for k, v in preset(geometry, "hat").model_options.items() if k.startswith(("enc_", "dec_"))}
            cfg = cfg.replace(model_options={**cfg.model_options, **byte_stacks})
        bucketed, codec = build(cfg, fit_texts=[])
        packer = Packer(texts, codec, cfg.seq_len)
        batches = [packer.next_batch(cfg.batch_size) for _ in range(args.batches)]
        L = [int(b["lens"].max()) for b in batches]
        print(f"\n{geometry} byte stacks (enc/dec d={bucketed.cfg.enc_d}, layers={bucketed.cfg.enc_layers}); "
              f"batch {cfg.batch_size}×{cfg.seq_len} words; longest word per batch: median {statistics.median(L):.0f}, "
              f"max {max(L)} bytes")
        variants = [(), (8, 16, 32, 64), bucketed.cfg.byte_buckets]  # padded, powers of two, the default
        models = []
        for bounds in variants:
            models.append(HAT(dataclasses.replace(bucketed.cfg, byte_buckets=bounds), codec))
            models[-1].load_state_dict(bucketed.state_dict())  # same weights and batches: the losses agree
        if geometry != "tiny":  # padding alone at the preset's own batch, where the longest word is longer
            full = preset(geometry, "hat")
            big = Packer(texts, codec, full.seq_len)
            big_batches = [big.next_batch(full.batch_size) for _ in range(max(1, args.batches // 10))]
            print(f"  at the {geometry} preset's batch ({full.batch_size}×{full.seq_len} words; longest word per batch: median "
                  f"{statistics.median(int(b['lens'].max()) for b in big_batches):.0f} bytes), positions per useful byte:")
            for bounds in variants:
                e, d = padding(big_batches, bounds)
                print(f"  {str(bounds) if bounds else '() = padded':34} {e:7.2f} {d:7.2f}")
        print(f"  {'byte_buckets':34} {'encoder':>7} {'decoder':>7}  positions per useful byte; train step ms (min / median)")
        for bounds, (t, loss) in zip(variants, step_times(models, batches, args.steps)):
            e, d = padding(batches, bounds)
            name = "() = padded to the longest word" if not bounds else str(bounds)
            print(f"  {name:34} {e:7.2f} {d:7.2f}  {1000 * min(t):8.1f} / {1000 * statistics.median(t):8.1f}"
                  f"  (loss after {args.steps + 1} steps {loss:.4f})")


if __name__ == "__main__":
    main()
