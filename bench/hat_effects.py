"""HAT's headline effects (arXiv 2501.10322) against the BPE baseline, at the `tiny` preset, on CPU.

    .venv/bin/python bench/hat_effects.py --quick      # 3 seeds, short runs (minutes; its figures are from barely trained models)
    .venv/bin/python bench/hat_effects.py              # 3 seeds, 10× the training bytes (600 KB)

Both models have the same backbone (tiny: d=128, 2 layers, 4 heads) and see the same training
bytes: each model's steps = byte budget / (batch × seq_len × its bytes per unit on that text), so
the word-level HAT takes fewer steps than the token-level BPE model.

(a) Robustness. Trained on German prose (../shared/data/german-prose.txt.gz, every 50th paragraph
    held out); held-out bits/byte on clean text and under character noise: each character, with
    probability p, is swapped with the next one, dropped, or has its case flipped (one of the three
    at random), p = 2/5/10%. Degradation = noisy − clean bits/byte. The paper: HAT degrades less.
(b) English → German. Trained on English web text (the English pages of
    ../shared/data/web-sample.warc.gz, extracted and language-identified with kurate's own curate
    steps; every 5th page held out), then continued on German for the same byte budget (BPE keeps
    its English-fitted merges, as a continued model does). Printed: German bits/byte before and
    after, English bits/byte after (retention = after − before). The paper: HAT adapts ~2× faster.

Every figure is mean ± spread (half the range) over the seeds; the ratio column is HAT / BPE.
Seeds can run in separate processes and be merged:

    .venv/bin/python bench/hat_effects.py --quick --seeds 0 --json s0.json   # … one per seed
    .venv/bin/python bench/hat_effects.py --merge s0.json s1.json s2.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import tempfile

import torch

from kurate.models.architectures import architecture
from kurate.models.checkpoint import load_checkpoint
from kurate.models.continual import bits_per_byte
from kurate.models.train import train
from kurate.models.train_config import preset

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
SEQ, BATCH = 64, 8  # the tiny preset's sequence length and batch


def german(data: str = DATA) -> tuple[list[str], list[str]]:
    with gzip.open(os.path.join(data, "german-prose.txt.gz"), "rt", encoding="utf-8") as f:
        paras = [line.rstrip("\n") for line in f if line.strip()]
    return [p for i, p in enumerate(paras) if i % 50], [p for i, p in enumerate(paras) if i % 50 == 0][:400]


def english(data: str = DATA) -> tuple[list[str], list[str]]:
    """English pages of the sample WARC (cached beside the system's temp files: extraction is slow)."""
    warc = os.path.join(data, "web-sample.warc.gz")
    cache = os.path.join(tempfile.gettempdir(), f"kurate-bench-english-{int(os.path.getmtime(warc))}.json")
    if not os.path.exists(cache):
        from kurate.tasks.ingest import IngestConfig, ingest_records
        from kurate.tasks.langid import default_identifier

        docs = [o.curated["text"] for o in ingest_records(warc, IngestConfig()) if o.curated]
        langs = default_identifier().predict(docs)
        with open(cache, "w") as f:
            json.dump([d for d, (lang, _) in zip(docs, langs) if lang == "en"], f)
    with open(cache) as f:
        docs = json.load(f)
    return [d for i, d in enumerate(docs) if i % 5], [d for i, d in enumerate(docs) if i % 5 == 0]


def add_noise(text: str, p: float, rng: random.Random) -> str:
    """Character noise: with probability p per character a swap with the next, a drop or a case flip."""
    out, chars, i = [], list(text), 0
    while i < len(chars):
        c = chars[i]
        if rng.random() < p:
            op = rng.randrange(3)
            if op == 0 and i + 1 < len(chars):
                out += [chars[i + 1], c]
                i += 2
                continue
            if op == 1:
                i += 1
                continue
            c = c.swapcase()
        out.append(c)
        i += 1
    return "".join(out)


def bytes_per_unit(codec, texts: list[str]) -> float:
    sample = texts[:500]
    return sum(len(t.encode()) for t in sample) / sum(len(codec.encode(t)) for t in sample)


def steps_for(budget: int, bpu: float) -> int:
    return max(2, round(budget / (BATCH * SEQ * bpu)))


def pretrain(kind: str, texts: list[str], budget: int, seed: int, out: str) -> tuple[str, int]:
    """Train from scratch on `budget` bytes of `texts` → (checkpoint, steps)."""
    cfg = preset("tiny", kind, seed=seed, log_every=0, eval_batches=0, max_steps=2)
    codec = architecture(kind).codec.fit(cfg.model_hparams(), texts[:cfg.fit_docs])
    steps = steps_for(budget, bytes_per_unit(codec, texts))
    cfg = cfg.replace(max_steps=steps, warmup_steps=max(1, steps // 10))
    return train(cfg, texts, None, out, resume=False)["checkpoint"], steps


def continue_on(checkpoint: str, texts: list[str], budget: int, out: str) -> tuple[str, int]:
    """Continue a checkpoint (its codec and weights) on `budget` bytes of `texts`."""
    _, codec, cfg = load_checkpoint(checkpoint)
    steps = steps_for(budget, bytes_per_unit(codec, texts))
    cfg = cfg.replace(max_steps=steps, warmup_steps=max(1, steps // 10), init_from=os.path.abspath(checkpoint))
    return train(cfg, texts, None, out, resume=False)["checkpoint"], steps


def bpb(checkpoint: str, texts: list[str], batches: int) -> float:
    model, codec, _ = load_checkpoint(checkpoint)
    return bits_per_byte(model, codec, texts, SEQ, batch_size=BATCH, max_batches=batches)


def mean_spread(xs: list[float]) -> tuple[float, float]:
    return sum(xs) / len(xs), (max(xs) - min(xs)) / 2


def table(title: str, rows: dict[str, dict[str, list[float]]], kinds: list[str]) -> None:
    """rows: metric → kind → per-seed values; prints mean ± spread and the first kind / second kind ratio."""
    print(f"\n{title}")
    print(f"  {'metric':34}" + "".join(f"{k:>18}" for k in kinds) + f"{kinds[0] + '/' + kinds[1]:>12}")
    for metric, per_kind in rows.items():
        cells, means = "", []
        for k in kinds:
            m, s = mean_spread(per_kind[k])
            cells += f"{m:11.3f} ± {s:5.3f}"
            means.append(m)
        ratio = means[0] / means[1] if means[1] else float("nan")
        print(f"  {metric:34}{cells}{ratio:12.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="short runs (60 KB of training text per model and phase)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--json", help="also write the per-seed figures to this file")
    ap.add_argument("--merge", nargs="+", help="print the tables of these --json files together, train nothing")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    ap.add_argument("--data", default=DATA)
    args = ap.parse_args()
    if args.merge:
        parts = [json.load(open(f)) for f in args.merge]
        merged = {key: {m: {k: [v for p in parts for v in p[key][m][k]] for k in p0} for m, p0 in parts[0][key].items()}
                  for key in ("robust", "transfer")}
        print(f"merged {len(args.merge)} files: seeds " + ", ".join(str(p["seeds"]) for p in parts))
        table("(a) held-out German bits/byte and its degradation under character noise", merged["robust"], ["hat", "bpe"])
        table("(b) English → German continued training (equal bytes)", merged["transfer"], ["hat", "bpe"])
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    budget = 60_000 if args.quick else 600_000  # training bytes per model and phase
    eval_batches = 2 if args.quick else 8
    kinds = ["hat", "bpe"]
    de_train, de_eval = german(args.data)
    en_train, en_eval = english(args.data)
    print(f"German {len(de_train)} train / {len(de_eval)} eval paragraphs; English {len(en_train)} train / "
          f"{len(en_eval)} eval pages; {budget} training bytes per model and phase; seeds {args.seeds}; "
          f"torch threads {torch.get_num_threads()}")
    noise_levels = (0.02, 0.05, 0.10)
    noisy = {p: [add_noise(t, p, random.Random(1000 + i)) for i, t in enumerate(de_eval)] for p in noise_levels}
    robust: dict[str, dict[str, list[float]]] = {}
    transfer: dict[str, dict[str, list[float]]] = {}
    steps: dict[str, list[int]] = {k: [] for k in kinds}

    def put(rows, metric, kind, value):
        rows.setdefault(metric, {k: [] for k in kinds})[kind].append(value)

    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for kind in kinds:
                run = os.path.join(tmp, f"{kind}-{seed}")
                ckpt, n = pretrain(kind, de_train, budget, seed, run + "-de")
                steps[kind].append(n)
                clean = bpb(ckpt, de_eval, eval_batches)
                put(robust, "clean German bits/byte", kind, clean)
                for p in noise_levels:
                    put(robust, f"degradation at {int(100 * p)}% noise", kind, bpb(ckpt, noisy[p], eval_batches) - clean)
                en_ckpt, _ = pretrain(kind, en_train, budget, seed, run + "-en")
                en_before, de_before = bpb(en_ckpt, en_eval, eval_batches), bpb(en_ckpt, de_eval, eval_batches)
                de_ckpt, _ = continue_on(en_ckpt, de_train, budget, run + "-en-de")
                de_after, en_after = bpb(de_ckpt, de_eval, eval_batches), bpb(de_ckpt, en_eval, eval_batches)
                put(transfer, "English bits/byte (English model)", kind, en_before)
                put(transfer, "German bits/byte before", kind, de_before)
                put(transfer, "German bits/byte after", kind, de_after)
                put(transfer, "German gain (before − after)", kind, de_before - de_after)
                put(transfer, "English retention (after − before)", kind, en_after - en_before)
                print(f"  seed {seed} {kind}: clean {clean:.3f}, German after English→German {de_after:.3f}", flush=True)
    print(f"\nsteps per model (German pretraining, per seed): " + ", ".join(f"{k} {steps[k]}" for k in kinds))
    table("(a) held-out German bits/byte and its degradation under character noise", robust, kinds)
    table("(b) English → German continued training (equal bytes)", transfer, kinds)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"seeds": args.seeds, "robust": robust, "transfer": transfer, "steps": steps}, f)


if __name__ == "__main__":
    main()
