"""Ingest throughput per core on real web pages, against a named baseline measured in the same run.

    .venv/bin/python bench/ingest.py [WARC] [--repeat N]

WARC defaults to ../shared/data/web-sample.warc.gz (142 real pages). Everything runs in this one
process, so docs/s is per core. For each extractor it measures:

* kurate ingest (FastWARC + charset detection + extraction + lineage rows, no writes),
* baseline "warcio+extractor": the ad-hoc script many teams start from — warcio's ArchiveIterator,
  UTF-8 decode with replacement, the same extractor — and prints kurate's ratio to it.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from kurate.tasks.extract import extract_text
from kurate.tasks.ingest import IngestConfig, ingest_records

DEFAULT_WARC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "web-sample.warc.gz"


def baseline_warcio(path: str, extractor: str) -> int:
    from warcio.archiveiterator import ArchiveIterator

    docs = 0
    with open(path, "rb") as stream:
        for record in ArchiveIterator(stream):
            if record.rec_type != "response":
                continue
            docs += 1
            if record.http_headers.get_statuscode() != "200":
                continue
            if "html" not in (record.http_headers.get_header("Content-Type") or ""):
                continue
            html = record.content_stream().read().decode("utf-8", "replace")
            extract_text(html, extractor)
    return docs


def kurate_records(path: str, extractor: str) -> int:
    return sum(1 for _ in ingest_records(path, IngestConfig(extractor=extractor)))


def rate(fn, path: str, extractor: str, repeat: int) -> tuple[float, int]:
    rates, docs = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        docs = fn(path, extractor)
        rates.append(docs / (time.perf_counter() - started))
    return statistics.median(rates), docs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warc", nargs="?", default=str(DEFAULT_WARC))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"ingest benchmark on {args.warc} (one process = one core; median of {args.repeat})")
    print(f"{'extractor':<12} {'measure':<28} {'docs':>5} {'docs/s/core':>12} {'vs baseline':>12}")
    for extractor in ("resiliparse", "trafilatura"):
        base, docs = rate(baseline_warcio, args.warc, extractor, args.repeat)
        print(f"{extractor:<12} {'baseline warcio+extractor':<28} {docs:>5} {base:>12.1f} {1.0:>11.2f}x")
        value, docs = rate(kurate_records, args.warc, extractor, args.repeat)
        print(f"{extractor:<12} {'kurate ingest (no write)':<28} {docs:>5} {value:>12.1f} {value / base:>11.2f}x")


if __name__ == "__main__":
    main()
