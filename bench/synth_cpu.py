"""Acceptance of the embedded synthesis generator on the demo's German articles (CPU).

    python bench/synth_cpu.py [--docs 2] [--temperature 0.7] [--repetition-penalty 1.15] [--max-new-tokens 160]

Rewrites the first chunk of each article in all five prompt types with the configured generator
(default: embedded gemma-3-270m base, few-shot prompts) through the stage's own worker and gates,
and prints generated/accepted per type, the gate reasons, generation time, and each generation's
start. It measures how usable a generator is, not speed: a generator that passes no gate is a
model-quality problem, not a gate problem (read the printed texts).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from kurate.annotators.synthesis import SynthesizeConfig, SynthWorker  # noqa: E402
from kurate.demo.pages import demo_pages  # noqa: E402

# The six German demo articles, in the order the recorded runs used (history, science, regional, recipe, ...).
_GERMAN = [page for page in demo_pages() if page.kind == "article-de"]
ARTICLES = [_GERMAN[i] for i in (0, 2, 3, 1, 4, 5)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="embedded:gemma-3-270m")
    ap.add_argument("--style", default="fewshot", choices=["fewshot", "chat"])
    ap.add_argument("--docs", type=int, default=2)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--repetition-penalty", type=float, default=1.15)
    ap.add_argument("--max-new-tokens", type=int, default=160)
    args = ap.parse_args()
    config = SynthesizeConfig.model_validate({
        "name": "bench", "generator": {"backend": "transformers", "model": args.model, "batch_size": 5}, "style": args.style,
        "every_type": True, "chunking": {"max_tokens": 256, "max_chunks_per_doc": 1},
        "sampling": {"max_new_tokens": args.max_new_tokens, "temperature": args.temperature,
                     "repetition_penalty": args.repetition_penalty}})
    started = time.perf_counter()
    worker = SynthWorker(config)
    loaded = time.perf_counter() - started
    docs = [{"id": f"demo-{i}", "url": a.url, "text": a.main_text} for i, a in enumerate(ARTICLES[: args.docs])]
    started = time.perf_counter()
    rows, rejects, counts = worker.rewriter.rewrite(docs)
    seconds = time.perf_counter() - started
    print(f"{args.model} ({args.style}) t={args.temperature} repetition_penalty={args.repetition_penalty} "
          f"max_new_tokens={args.max_new_tokens}: load {loaded:.0f} s, {counts['generated']} generations in {seconds:.0f} s")
    print(f"accepted {counts['accepted']}/{counts['generated']}; per type {json.dumps(counts['per_type'])}")
    print(f"reasons {json.dumps(counts['reasons'], sort_keys=True)}")
    for row in rows:
        print(f"  accepted {row['prompt_type']}: {row['text'][:160]!r}")
    for reject in rejects:
        detail = json.loads(reject["detail"])
        print(f"  rejected {detail['prompt_type']} ({reject['reason']}): {detail['text'][:160]!r}")


if __name__ == "__main__":
    main()
