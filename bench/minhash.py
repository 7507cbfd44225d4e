"""MinHash signatures/s on one core: kurate's vectorised MinHasher against datasketch, same run.

    .venv/bin/python bench/minhash.py [TEXT_GZ] [--docs N] [--repeat N]

TEXT_GZ defaults to ../shared/data/german-prose.txt.gz (gzip text, one German paragraph per line);
the first N paragraphs (default 10,000) are used. Both sides do the same work per document: the
same ``normalize_text``, word 5-gram shingles, 112 hash functions (14 bands × 8 rows).

* kurate: ``MinHasher.signatures`` over the whole list (it batches internally).
* datasketch, as usually written: ``MinHash(num_perm=112)`` per document, ``update_batch`` with the
  UTF-8 shingles (default SHA-1 hashing).
* datasketch, fastest documented path: ``MinHash.bulk`` (one set of permutations for all documents).

numpy is limited to one thread (OPENBLAS/OMP/MKL variables, set before numpy loads), so rates are
per core. The best of ``--repeat`` runs is reported for each side.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import gzip  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from kurate.tasks.minhash import MinHashConfig, MinHasher, jaccard_estimate, normalize_text  # noqa: E402

DEFAULT_TEXT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "german-prose.txt.gz"


def read_paragraphs(path: Path, limit: int) -> list[str]:
    paragraphs = []
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                paragraphs.append(line.rstrip("\n"))
                if len(paragraphs) == limit:
                    break
    return paragraphs


def shingles(text: str, ngram: int) -> list[bytes]:
    words = normalize_text(text).split()
    if len(words) < ngram:
        return [" ".join(words).encode()] if words else []
    return [" ".join(words[i : i + ngram]).encode() for i in range(len(words) - ngram + 1)]


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def kurate(texts: list[str], config: MinHashConfig) -> np.ndarray:
    return MinHasher(config).signatures(texts)


def datasketch_per_doc(texts: list[str], config: MinHashConfig) -> list:
    from datasketch import MinHash

    out = []
    for text in texts:
        m = MinHash(num_perm=config.num_perm, seed=config.seed)
        m.update_batch(shingles(text, config.ngram))
        out.append(m)
    return out


def datasketch_bulk(texts: list[str], config: MinHashConfig) -> list:
    from datasketch import MinHash

    return MinHash.bulk((shingles(t, config.ngram) for t in texts), num_perm=config.num_perm, seed=config.seed)


def best_rate(fn, texts: list[str], config: MinHashConfig, repeat: int) -> float:
    best = 0.0
    for _ in range(repeat):
        started = time.perf_counter()
        fn(texts, config)
        best = max(best, len(texts) / (time.perf_counter() - started))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("text", nargs="?", type=Path, default=DEFAULT_TEXT)
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import datasketch

    texts = read_paragraphs(args.text, args.docs)
    config = MinHashConfig()
    words = sum(len(normalize_text(t).split()) for t in texts)
    print(f"{len(texts)} paragraphs ({words / len(texts):.0f} words each on average) from {args.text}")
    print(f"num_perm={config.num_perm} ngram={config.ngram}; numpy {np.__version__}, datasketch {datasketch.__version__}, "
          f"{platform.processor() or platform.machine()}, one core")

    # Sanity check, not a benchmark: on paragraphs paired with a copy missing every 20th word, both
    # estimators should land near the true 5-gram Jaccard.
    sample = [t for t in texts if len(t.split()) >= 40][:100]
    edited = [" ".join(w for i, w in enumerate(t.split()) if i % 20 != 19) for t in sample]
    ours = kurate(sample + edited, config)
    theirs = datasketch_per_doc(sample + edited, config)
    n = len(sample)
    truth = [_jaccard(set(shingles(a, config.ngram)), set(shingles(b, config.ngram))) for a, b in zip(sample, edited)]
    err_ours = np.mean([abs(jaccard_estimate(ours[i], ours[n + i]) - truth[i]) for i in range(n)])
    err_theirs = np.mean([abs(theirs[i].jaccard(theirs[n + i]) - truth[i]) for i in range(n)])
    print(f"{n} edited pairs, true Jaccard {np.mean(truth):.3f} on average: "
          f"mean |error| kurate {err_ours:.4f}, datasketch {err_theirs:.4f}")

    rate_kurate = best_rate(kurate, texts, config, args.repeat)
    rate_ds = best_rate(datasketch_per_doc, texts, config, args.repeat)
    rate_bulk = best_rate(datasketch_bulk, texts, config, args.repeat)
    print(f"{'implementation':<38} {'signatures/s':>12} {'kurate ×':>9}")
    for name, rate in [
        ("kurate MinHasher.signatures", rate_kurate),
        ("datasketch MinHash + update_batch", rate_ds),
        ("datasketch MinHash.bulk", rate_bulk),
    ]:
        print(f"{name:<38} {rate:>12,.0f} {rate_kurate / rate:>8.2f}×")


if __name__ == "__main__":
    main()
