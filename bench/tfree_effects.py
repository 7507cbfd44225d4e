"""T-FREE's headline effects (arXiv 2406.19223) against the BPE baseline, at the `tiny` preset, on CPU.

    .venv/bin/python bench/tfree_effects.py --quick     # 3 seeds, short runs (minutes; its figures are from barely trained models)
    .venv/bin/python bench/tfree_effects.py             # 3 seeds, 8× the training bytes (400 KB)

(1) Embedding + head parameters at equal hidden size: T-FREE's EmbeddingBag (v + 1 rows, one for
    padding) and bias-free head (v rows) for v ∈ {8k, 16k, 32k} against BPE's untied embedding and
    head (vocabulary 8,192 at `tiny`, 64,000 from `125m` up), at each preset's d_model. The paper:
    ≥ 85% fewer.
(2) Held-out quality at equal training bytes, on German prose (../shared/data/german-prose.txt.gz,
    every 50th paragraph held out): T-FREE with v ∈ {8k, 16k, 32k} and BPE, same backbone, each
    model's steps = byte budget / (batch × seq_len × its bytes per unit). Both codecs are fitted on
    the same first 20,000 training paragraphs (`--quick`: 2,000, so a smaller dictionary — scoring
    it is the slow part on CPU). Reported:
    * bits/byte on the held-out paragraphs whose every T-FREE unit is in the dictionary (the same
      paragraphs for every model; the dictionary does not depend on v): there T-FREE's calibrated
      dictionary softmax is a full code length, so the figure is comparable with BPE's;
    * T-FREE's bits per in-dictionary byte on all held-out paragraphs and the share of bytes
      outside its dictionary (what `kurate train` reports for T-FREE; not with `--quick`);
    * T-FREE next-word top-1 accuracy on the in-dictionary paragraphs (greedy decoding with the
      paper's score). BPE's next-word top-1 (multi-token greedy decoding) is not measured here.
Every figure is mean ± spread (half the range) over the seeds. Seeds can run in separate
processes (`--seeds 0 --json s0.json`, …) and be merged (`--merge s0.json s1.json s2.json`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile

import torch

from hat_effects import BATCH, DATA, SEQ, bytes_per_unit, german, mean_spread, steps_for
from kurate.models.architectures import PRESETS, architecture
from kurate.models.checkpoint import load_checkpoint
from kurate.models.continual import bits_per_byte
from kurate.models.packing import Packer
from kurate.models.train import evaluate, train
from kurate.models.train_config import preset

ROWS = (8192, 16384, 32768)


def parameter_table() -> None:
    print("(1) embedding + head parameters at equal hidden size")
    for name in ("tiny", "125m", "1b"):
        d, bpe_vocab = PRESETS[name].d_model, architecture("bpe").presets[name]["vocab_size"]
        bpe = 2 * bpe_vocab * d
        cells = "".join(f"   T-FREE v={v:<6} {((2 * v + 1) * d) / 1e6:7.2f}M ({100 * (1 - (2 * v + 1) * d / bpe):4.1f}% fewer)"
                        for v in ROWS)
        print(f"  {name:5} d={d:<5} BPE vocab={bpe_vocab:<6} {bpe / 1e6:7.2f}M{cells}")


@torch.no_grad()
def next_word_top1(model, codec, texts: list[str], batches: int) -> float:
    """Share of in-dictionary target words that the paper's greedy score ranks first."""
    packer = Packer(list(texts), codec, SEQ, cycle=False)
    model.eval()
    hits = total = 0
    with contextlib.suppress(StopIteration):
        for _ in range(batches):
            b = packer.next_batch(BATCH)
            z = model.head(model.states(b["pat"][:, :-1])).float().reshape(-1, codec.v)
            wid = b["word_id"][:, 1:].reshape(-1)
            known = wid >= 0
            for s in range(0, len(z), 256):
                best = codec.score(z[s:s + 256], "paper").argmax(1)
                hits += int(((best == wid[s:s + 256]) & known[s:s + 256]).sum())
            total += int(known.sum())
    return hits / max(1, total)


def in_dictionary_bpb(model, codec, texts: list[str], batches: int) -> tuple[float, float]:
    """T-FREE's bits per in-dictionary byte and the share of bytes outside the dictionary."""
    packer = Packer(list(texts), codec, SEQ, cycle=False)
    bs = []
    with contextlib.suppress(StopIteration):
        for _ in range(batches):
            bs.append(packer.next_batch(BATCH))
    res = evaluate(model, bs, torch.device("cpu"), contextlib.nullcontext, calibration=bs[0])
    return res["eval_bits_per_byte"], res["eval_oov_byte_frac"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="short runs (50 KB of training text per model)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--arms", nargs="+", default=[*map(str, ROWS), "bpe"],
                    help="which models to train: T-FREE row counts and/or bpe (to split a run over processes)")
    ap.add_argument("--json", help="also write the per-seed figures to this file")
    ap.add_argument("--merge", nargs="+", help="print the table of these --json files together, train nothing")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    ap.add_argument("--data", default=DATA)
    args = ap.parse_args()
    names = [f"T-FREE {v // 1024}k" for v in ROWS] + ["BPE 8k"]
    if args.merge:
        parts = [json.load(open(f)) for f in args.merge]
        rows = {m: {n: [v for p in parts for v in p["rows"][m].get(n, [])] for n in names} for m in parts[0]["rows"]}
        print(f"merged {len(args.merge)} files: seeds " + ", ".join(str(p["seeds"]) for p in parts))
        print_table(rows, names)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    parameter_table()
    budget = 50_000 if args.quick else 400_000
    batches = 1 if args.quick else 8
    fit_docs = 2000 if args.quick else 20000
    de_train, de_eval = german(args.data)
    arms = [("tfree", {"vocab_rows": v}) for v in ROWS] + [("bpe", {})]
    chosen = [(arm, name) for arm, name, key in zip(arms, names, [*map(str, ROWS), "bpe"]) if key in args.arms]
    rows: dict[str, dict[str, list[float]]] = {}
    # the dictionary depends on the fitted texts and wordfreq only, not on v: one set for every model
    dictionary = architecture("tfree").codec.fit(preset("tiny", "tfree").model_hparams(), de_train[:fit_docs])
    covered = [t for t in de_eval if all(u in dictionary.index for u in dictionary.encode(t))]
    print(f"\n(2) {len(covered)} of {len(de_eval)} held-out paragraphs ({sum(len(t.encode()) for t in covered)} "
          f"bytes) lie wholly in T-FREE's {len(dictionary.dictionary)}-word dictionary; {budget} training bytes "
          f"per model; seeds {args.seeds}; torch threads {torch.get_num_threads()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for (kind, options), name in chosen:
                cfg = preset("tiny", kind, seed=seed, log_every=0, eval_batches=0, max_steps=2, fit_docs=fit_docs,
                             model_options=options)
                codec = architecture(kind).codec.fit(cfg.model_hparams(), de_train[:fit_docs])
                steps = steps_for(budget, bytes_per_unit(codec, de_train))
                cfg = cfg.replace(max_steps=steps, warmup_steps=max(1, steps // 10))
                ckpt = train(cfg, de_train, None, os.path.join(tmp, f"{kind}-{options}-{seed}"), resume=False)["checkpoint"]
                model, codec, _ = load_checkpoint(ckpt)
                metrics = {"steps": float(steps),
                           "bits/byte, in-dictionary paragraphs": bits_per_byte(model, codec, covered, SEQ, BATCH, batches)}
                if kind == "tfree":
                    metrics["next-word top-1, in-dict paragraphs"] = next_word_top1(model, codec, covered, batches)
                if kind == "tfree" and not args.quick:
                    idb, oov = in_dictionary_bpb(model, codec, de_eval, batches)
                    metrics["bits per in-dict byte, all held-out"] = idb
                    metrics["bytes outside the dictionary"] = oov
                for k, v in metrics.items():
                    rows.setdefault(k, {}).setdefault(name, []).append(v)
                print(f"  seed {seed} {name}: " + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()), flush=True)
    print_table(rows, names)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"seeds": args.seeds, "rows": rows}, f)


def print_table(rows: dict[str, dict[str, list[float]]], names: list[str]) -> None:
    print(f"\n  {'metric':38}" + "".join(f"{n:>18}" for n in names))
    for metric, per in rows.items():
        cells = ""
        for n in names:
            if per.get(n):
                m, s = mean_spread(per[n])
                cells += f"{m:11.3f} ± {s:5.3f}"
            else:
                cells += f"{'—':>18}"
        print(f"  {metric:38}{cells}")


if __name__ == "__main__":
    main()
