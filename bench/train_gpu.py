"""Training throughput and MFU on a GPU for HAT, T-FREE and the BPE baseline, through the real trainer.

    python bench/train_gpu.py [--presets 125m 350m] [--steps 40]
    python bench/train_gpu.py --presets tiny --steps 12          # smoke run on CPU

For each model × preset, ``models.train.train`` runs ``--steps`` steps on paragraphs of
../shared/data/german-prose.txt.gz (bf16 autocast on CUDA); the first third of the steps is warm-up
and the median of the rest is reported: units (words/tokens) per second, bytes per second and MFU.
FLOPs are each model's ``flops_per_unit`` (6·P per trained position for every matmul weight plus
12·n_layer·d·ctx attention, per component; padding and embedding lookups not counted — see
models/backbone.py), against the device's bf16 peak (989 TFLOP/s H100, 312 A100). Target
(the project's GPU target): ≥ 40% MFU at 100M–1B parameters.
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import tempfile
from pathlib import Path

PROSE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "german-prose.txt.gz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["125m", "350m"])
    parser.add_argument("--models", nargs="+", default=["hat", "tfree", "bpe"])
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()

    import torch

    from kurate.models.train import train
    from kurate.models.train_config import preset

    texts = gzip.open(PROSE, "rt").read().splitlines()
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    print(f"device: {device}; {len(texts)} paragraphs; {args.steps} steps per run (median after the first third)")
    print(f"{'model':<6} {'preset':<6} {'params':>9} {'units/s':>10} {'bytes/s':>11} {'MFU':>7}")
    for name in args.presets:
        for model in args.models:
            cfg = preset(name, model, max_steps=args.steps, eval_every=0, checkpoint_every=0, log_every=0,
                         fit_docs=min(2000, len(texts)))
            with tempfile.TemporaryDirectory() as out:
                summary = train(cfg, texts, None, out, resume=False)
            steady = summary["history"][args.steps // 3:]
            units = statistics.median(m["units_per_s"] for m in steady)
            nbytes = statistics.median(m["bytes_per_s"] for m in steady)
            mfu = statistics.median(m["mfu"] for m in steady) if "mfu" in steady[0] else None
            print(f"{model:<6} {name:<6} {summary['params'] / 1e6:8.1f}M {units:10.0f} {nbytes:11.0f} "
                  f"{f'{100 * mfu:6.1f}%' if mfu is not None else '    n/a'}")


if __name__ == "__main__":
    main()
