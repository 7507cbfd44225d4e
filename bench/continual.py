"""Core tokensets vs sample coresets for continual training, on CPU.

    .venv/bin/python bench/continual.py                       # ~3 minutes idle, ~10–17 on a busy shared 2-core box
    .venv/bin/python bench/continual.py --model hat --pretrain-steps 300 --steps 60

Old domain: English web text from ../shared/data/web-sample.warc.gz, through kurate's own ingest
(FastWARC, charset detection, trafilatura) and language ID; each page is cut into paragraph
documents (≥ 200 characters), every 10th held out. A tiny model (`--model`, preset tiny) is trained
on it, then continued for `--steps` on German prose (../shared/data/german-prose.txt.gz) with a
replay buffer drawn from the English training documents. Arms (models/continual.py
compare_replay): no replay; random-sample and selected (--selection) full-document coresets at the
core tokenset's unit budget (1×) and 2×/5×/10× it; the core tokenset (--selection documents,
--attribution units, --budget of the old units; one arm per --context-units value: each kept span
replayed with at most that many units of masked context, "none" = every unit before it). Every arm
replays --replay-share of the
loss-bearing units (models/continual.py ReplayMix). Printed: held-out English (old) and German
(new) bits/byte after each arm, the change from the pre-trained checkpoint, and the share of
sequence positions spent on replay (masked context included).
"""

from __future__ import annotations

import argparse
import gzip
import os
import tempfile
import time

import torch

from kurate.models.continual import compare_replay
from kurate.models.train import train
from kurate.models.train_config import preset
from kurate.tasks.ingest import IngestConfig, ingest_records
from kurate.tasks.langid import default_identifier

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


def english_paragraphs(warc: str, min_chars: int = 200) -> list[str]:
    pages = [o.curated["text"] for o in ingest_records(warc, IngestConfig()) if o.curated and o.curated.get("text")]
    lid = default_identifier()
    docs = []
    for page, (lang, score) in zip(pages, lid.predict(pages)):
        if lang != "en" or score < 0.65:
            continue
        buf = ""
        for line in page.splitlines():
            buf = f"{buf}\n{line}" if buf else line
            if len(buf) >= min_chars:
                docs.append(buf)
                buf = ""
    return docs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="bpe", choices=["hat", "tfree", "bpe"])
    ap.add_argument("--pretrain-steps", type=int, default=400)
    ap.add_argument("--steps", type=int, default=80, help="continued-training steps per arm")
    ap.add_argument("--budget", type=float, default=0.01)
    ap.add_argument("--token-fraction", type=float, default=0.1)
    ap.add_argument("--selection", default="craig", choices=["loss", "gradnorm", "craig", "random"])
    ap.add_argument("--attribution", default="atman", choices=["atman", "gradxinput"])
    ap.add_argument("--replay-share", type=float, default=0.25, help="share of the loss-bearing units replayed")
    ap.add_argument("--context-units", nargs="+", default=["none", "16", "4", "0"],
                    help="core-tokenset arms: masked context units per kept span (none: the whole prefix)")
    ap.add_argument("--german-docs", type=int, default=4000)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    en = english_paragraphs(os.path.join(DATA, "web-sample.warc.gz"))
    en_train = [d for i, d in enumerate(en) if i % 10]
    en_eval = [d for i, d in enumerate(en) if i % 10 == 0]
    with gzip.open(os.path.join(DATA, "german-prose.txt.gz"), "rt", encoding="utf-8") as f:
        de = [line.strip() for _, line in zip(range(args.german_docs + 400), f) if line.strip()]
    de_train, de_eval = de[:-200], de[-200:]
    print(f"old: {len(en_train)} English training documents ({sum(map(len, en_train)) / 1e3:.0f}k chars), "
          f"{len(en_eval)} held out; new: {len(de_train)} German paragraphs, {len(de_eval)} held out")

    with tempfile.TemporaryDirectory() as tmp:
        mc = {"bpe": {"vocab_size": 4096}, "tfree": {"wordfreq_langs": ["en", "de"]}, "hat": {}}[args.model]
        cfg = preset("tiny", args.model, max_steps=args.pretrain_steps, log_every=100, model_options=mc,
                     fit_docs=len(en_train))
        train(cfg, en_train, None, os.path.join(tmp, "old"))
        t_pre = time.perf_counter() - t0
        rows = compare_replay(os.path.join(tmp, "old", "checkpoint"), [(f"en{i}", t) for i, t in enumerate(en_train)],
                              de_train, en_eval, de_eval, os.path.join(tmp, "arms"), budget=args.budget,
                              token_fraction=args.token_fraction, selection=args.selection,
                              attribution=args.attribution, overrides={"max_steps": args.steps, "warmup_steps": 5,
                                                                       "log_every": 0, "lr": 1e-3},
                              replay_share=args.replay_share,
                              context_units=[None if c.lower() == "none" else int(c) for c in args.context_units])
    print(f"\nmodel {args.model} tiny; pre-training {args.pretrain_steps} steps ({t_pre:.0f} s); {args.steps} "
          f"continued steps per arm; replay share {args.replay_share}; wall {time.perf_counter() - t0:.0f} s\n")
    print("| arm | buffer docs | kept units (share of old) | replayed positions | old (en) bits/byte | Δ old "
          "| new (de) bits/byte | Δ new |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['arm']} | {r['buffer_docs']} | {r['kept_units']} ({100 * r['kept_share']:.1f}%) | "
              f"{100 * r['replay_positions']:.0f}% | {r['old_bpb']:.3f} | "
              f"{r['old_delta']:+.3f} | {r['new_bpb']:.3f} | {r['new_delta']:+.3f} |")


if __name__ == "__main__":
    main()
