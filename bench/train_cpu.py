"""HAT vs T-FREE vs BPE at the `tiny` preset on real German prose, on CPU.

    .venv/bin/python bench/train_cpu.py                       # 200 steps each, all cores
    .venv/bin/python bench/train_cpu.py --steps 100 --threads 2 --models hat
    .venv/bin/python bench/train_cpu.py --quick                # 60 steps each

Data: ../shared/data/german-prose.txt.gz (one paragraph per line). Every 50th paragraph is
held out for evaluation (the first 400 of those are used); the rest is the training stream.
Each model trains `--steps` steps of batch 8 × 64 units (words for HAT/T-FREE, tokens for BPE,
so the models see different numbers of bytes — printed) and is evaluated on the same held-out
paragraphs. Printed: held-out bits/byte (T-FREE: bits per *in-dictionary* byte under its calibrated
dictionary softmax, with the share of bytes outside the dictionary next to it — not comparable with
HAT's and BPE's figure; bench/tfree_effects.py compares them on text the dictionary covers; see
models/tfree.py), training throughput, T-FREE's embedding+head parameters vs the BPE baseline's at
equal hidden size, and bytes per unit on German for each split.
"""

from __future__ import annotations

import argparse
import gzip
import os
import tempfile
import time

import torch

from kurate.models.hat import split_words
from kurate.models.tfree import split_units
from kurate.models.train import train
from kurate.models.train_config import preset

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "german-prose.txt.gz")


def load(path: str) -> tuple[list[str], list[str]]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        paras = [line.rstrip("\n") for line in f if line.strip()]
    train_texts = [p for i, p in enumerate(paras) if i % 50]
    eval_texts = [p for i, p in enumerate(paras) if i % 50 == 0][:400]
    return train_texts, eval_texts


def emb_head_params(kind: str, d: int, rows: int) -> int:
    if kind == "tfree":  # EmbeddingBag (v+1 rows incl. padding) + head weight (no bias)
        return (rows + 1) * d + rows * d
    return 2 * rows * d  # BPE: untied embedding + head


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--quick", action="store_true", help="60 steps each (a shared or slow machine)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--models", nargs="+", default=["hat", "tfree", "bpe"], choices=["hat", "tfree", "bpe"])
    args = ap.parse_args()
    if args.quick:
        args.steps = 60
    if args.threads:
        torch.set_num_threads(args.threads)
    train_texts, eval_texts = load(args.data)
    print(f"data: {len(train_texts)} train / {len(eval_texts)} eval paragraphs; torch threads {torch.get_num_threads()}")

    # bytes per unit on German (held-out paragraphs)
    n_bytes = sum(len(t.encode()) for t in eval_texts)
    hat_words = sum(len(split_words(t)) for t in eval_texts)
    tfree_units = sum(len(split_units(t)) for t in eval_texts)
    print(f"HAT split: {n_bytes / hat_words:.2f} bytes/word; T-FREE split: {n_bytes / tfree_units:.2f} bytes/unit")

    rows = []
    for kind in args.models:
        cfg = preset("tiny", kind, max_steps=args.steps, warmup_steps=max(1, args.steps // 10),
                     eval_batches=8, log_every=max(1, args.steps // 4), fit_docs=5000)
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            s = train(cfg, train_texts, eval_texts, out, resume=False)
            wall = time.perf_counter() - t0
        h = s["history"]
        seen = sum(m["bytes_per_unit"] * cfg.batch_size * cfg.seq_len for m in h)
        ups = sum(m["units_per_s"] for m in h[5:]) / max(1, len(h[5:]))
        bps = sum(m["bytes_per_s"] for m in h[5:]) / max(1, len(h[5:]))
        fps = sum(m["flops_per_s"] for m in h[5:]) / max(1, len(h[5:]))
        rows.append((kind, s["params"], s["eval_bits_per_byte"], s.get("eval_oov_byte_frac"), seen, ups, bps, fps, wall))

    print(f"\n{'model':6} {'params':>9} {'eval bpb':>9} {'train MB':>9} {'units/s':>9} {'bytes/s':>9} {'GFLOP/s':>8} {'wall s':>7}")
    for kind, p, bpb, oov, seen, ups, bps, fps, wall in rows:
        extra = f"  (bits per in-dictionary byte; {100 * oov:.1f}% of bytes outside the dictionary)" if oov is not None else ""
        print(f"{kind:6} {p / 1e6:8.2f}M {bpb:9.3f} {seen / 1e6:9.2f} {ups:9.0f} {bps:9.0f} {fps / 1e9:8.2f} {wall:7.1f}{extra}")

    print("\nembedding + head parameters at equal hidden size (T-FREE vs BPE):")
    for name in ("tiny", "125m", "1b"):
        t, b = preset(name, "tfree").model_options, preset(name, "bpe").model_options
        pt = emb_head_params("tfree", t["d_model"], t["vocab_rows"])
        pb = emb_head_params("bpe", b["d_model"], b["vocab_size"])
        print(f"  {name:5} d={t['d_model']:<5} T-FREE v={t['vocab_rows']:<6} {pt / 1e6:8.2f}M   "
              f"BPE vocab={b['vocab_size']:<6} {pb / 1e6:8.2f}M   → {100 * (1 - pt / pb):.1f}% fewer")


if __name__ == "__main__":
    main()
