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
    * next-word top-1 accuracy on the in-dictionary paragraphs: T-FREE's greedy decoding with the
      paper's score; BPE's greedy multi-token decoding from the same paragraph prefix until a whole
      word (a T-FREE unit: optional space + letters, a digit, a punctuation or space character) is
      complete, counted over the same first words of the same paragraphs.
(3) English → German transfer, as in bench/hat_effects.py: T-FREE (8k rows, `tiny`'s default) and
    BPE trained on English web text (the English pages of ../shared/data/web-sample.warc.gz), then
    continued on German for the same byte budget. BPE keeps its English-fitted merges, as a
    continued model does; T-FREE's hashing and weights need no change for a new language, and its
    decoding dictionary (no parameters) is extended with the German words of (2). German bits/byte
    before and after on the held-out German paragraphs wholly inside that extended dictionary, and
    English retention on the held-out English lines wholly inside it — the same texts for both
    models, so the figures compare.
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

from hat_effects import BATCH, DATA, SEQ, bytes_per_unit, continue_on, english, german, mean_spread, pretrain, steps_for
from kurate.models.architectures import PRESETS, architecture
from kurate.models.checkpoint import load_checkpoint
from kurate.models.continual import bits_per_byte
from kurate.models.packing import Packer
from kurate.models.train import evaluate, train
from kurate.models.train_config import preset
from kurate.models.tfree import split_units

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


@torch.no_grad()
def bpe_next_word_top1(model, codec, texts: list[str], max_words: int, max_new_tokens: int = 12) -> float:
    """Share of target words (T-FREE's units, so the same targets) that greedy BPE decoding produces
    exactly, each from its paragraph's prefix (the last seq_len − 1 tokens of BOS + prefix)."""
    model.eval()
    hits = total = 0
    for text in texts:
        units = split_units(text)
        prefix = ""
        for target in units:
            if total >= max_words:
                return hits / max(1, total)
            ids = [codec.bos] + codec.encode(prefix)
            new: list[int] = []
            for _ in range(max_new_tokens):
                x = torch.tensor([(ids + new)[-(SEQ - 1):]])
                logits = model.head(model.backbone(model.emb(x))[0, -1]).float()
                logits[codec.bos] = float("-inf")
                new.append(int(logits.argmax()))
                generated = split_units(codec.decode(new))
                if len(generated) >= 2:  # the first word is complete once a second one starts
                    break
            generated = split_units(codec.decode(new))
            guess = generated[0] if generated else ""
            hits += guess == target
            total += 1
            prefix += target
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
    ap.add_argument("--no-transfer", action="store_true", help="skip (3), the English → German transfer")
    args = ap.parse_args()
    names = [f"T-FREE {v // 1024}k" for v in ROWS] + ["BPE 8k"]
    if args.merge:
        parts = [json.load(open(f)) for f in args.merge]
        rows = {m: {n: [v for p in parts for v in p["rows"][m].get(n, [])] for n in names} for m in parts[0]["rows"]}
        print(f"merged {len(args.merge)} files: seeds " + ", ".join(str(p["seeds"]) for p in parts))
        print_table(rows, names)
        transfer = [p.get("transfer") or {} for p in parts]
        if transfer[0]:
            cols = ["T-FREE 8k", "BPE 8k"]
            print("\n(3) English → German transfer")
            print_table({m: {n: [v for t in transfer for v in t[m][n]] for n in cols} for m in transfer[0]}, cols)
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
                else:  # over as many target words as T-FREE's packer scores
                    metrics["next-word top-1, in-dict paragraphs"] = bpe_next_word_top1(
                        model, codec, covered, batches * BATCH * SEQ)
                if kind == "tfree" and not args.quick:
                    idb, oov = in_dictionary_bpb(model, codec, de_eval, batches)
                    metrics["bits per in-dict byte, all held-out"] = idb
                    metrics["bytes outside the dictionary"] = oov
                for k, v in metrics.items():
                    rows.setdefault(k, {}).setdefault(name, []).append(v)
                print(f"  seed {seed} {name}: " + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()), flush=True)
    print_table(rows, names)
    transfer = {} if args.no_transfer else transfer_table(args, budget, batches, de_train, de_eval)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"seeds": args.seeds, "rows": rows, "transfer": transfer}, f)


def transfer_table(args, budget: int, batches: int, de_train: list[str], de_eval: list[str]) -> dict:
    """(3) English → German continued training for T-FREE 8k and BPE at equal bytes."""
    en_train, en_eval = english(args.data)
    # dictionaries depend on the fitted texts only (not on the seed): the English model's, extended by
    # the German one of (2); every model is scored on the texts wholly inside the extended one
    hp = preset("tiny", "tfree").model_hparams()
    en_dict = architecture("tfree").codec.fit(hp, en_train[:2000]).dictionary
    de_dict = architecture("tfree").codec.fit(hp, de_train[:2000 if args.quick else 20000]).dictionary
    extended = list(dict.fromkeys(en_dict + de_dict))
    index = set(extended)
    inside = lambda t: all(u in index for u in split_units(t))  # noqa: E731
    de_covered = [t for t in de_eval if inside(t)]
    en_lines = [ln for page in en_eval for ln in page.split("\n") if len(ln) >= 40]
    en_covered = [ln for ln in en_lines if inside(ln)]
    print(f"\n(3) English → German: {len(en_train)} English training pages; scored on {len(de_covered)} German "
          f"paragraphs and {len(en_covered)} of {len(en_lines)} English held-out lines wholly inside the "
          f"{len(extended)}-word dictionary ({len(en_dict)} English-fitted + German); {budget} bytes per model "
          f"and phase", flush=True)

    def score(ckpt: str, texts: list[str]) -> float:
        model, codec, _ = load_checkpoint(ckpt)
        if codec.kind == "tfree":  # the decoding dictionary only: hashing and weights stay as trained
            codec = type(codec)(codec.v, codec.m, codec.lowercase_shared, codec.seed, codec.max_word_chars, extended)
            model.codec = codec
        return bits_per_byte(model, codec, texts, SEQ, BATCH, batches)

    names = {"tfree": "T-FREE 8k", "bpe": "BPE 8k"}
    rows: dict[str, dict[str, list[float]]] = {}

    def put(metric, kind, value):
        rows.setdefault(metric, {n: [] for n in names.values()})[names[kind]].append(value)

    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for kind in names:
                run = os.path.join(tmp, f"{kind}-{seed}")
                en_ckpt, _ = pretrain(kind, en_train, budget, seed, run + "-en")
                en_before, de_before = score(en_ckpt, en_covered), score(en_ckpt, de_covered)
                de_ckpt, _ = continue_on(en_ckpt, de_train, budget, run + "-en-de")
                de_after, en_after = score(de_ckpt, de_covered), score(de_ckpt, en_covered)
                put("English bits/byte (English model)", kind, en_before)
                put("German bits/byte before", kind, de_before)
                put("German bits/byte after", kind, de_after)
                put("German gain (before − after)", kind, de_before - de_after)
                put("English retention (after − before)", kind, en_after - en_before)
                print(f"  seed {seed} {names[kind]}: German {de_before:.3f} → {de_after:.3f}, "
                      f"English {en_before:.3f} → {en_after:.3f}", flush=True)
    print_table(rows, list(names.values()))
    return rows


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
