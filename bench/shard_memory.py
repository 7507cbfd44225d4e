"""Peak memory of the curate stage against shard size: a ~40k-response WARC vs a 1k-response one.

    .venv/bin/python bench/shard_memory.py [--big 40000] [--small 1000] [--extractor resiliparse] [--batch-rows 256]

Both shards are built from ../shared/data/web-sample.warc.gz (142 real pages, 6.3 MB): its records
are repeated with fresh WARC record ids (a UUID5 of copy + old id) until the shard holds the asked
number of responses, one gzip member per record as in Common Crawl. 40,000 responses are ~1.8 GB
gzipped (the sample's pages are larger than Common Crawl's average, so a real 1 GB CC file has
about as many responses). Each response body is compressed once and reused behind a fresh header
(a full flush after the header makes the deflate stream of the body independent of it), so
building the big shard takes seconds, not minutes.

The real curate stage runs on each shard: ``tasks.curate.curate_units`` with a ``ShardMap`` and a
dedup step that run every unit (filter, dedup, finalize) in a fresh ``spawn`` subprocess, so each
unit's peak RSS (``ru_maxrss`` of its process) is measured alone. Printed per unit: peak RSS on
the small and the big shard, their ratio (goal: close to 1 for filter and finalize, whose memory
should be bounded by ``--batch-rows``, not by the shard) and the difference in MB.

Default extractor resiliparse: the memory held across batches does not depend on the extractor,
and with trafilatura (~40 pages/s/core) the 40k shard alone takes 20+ minutes. Pass
``--extractor trafilatura`` to measure it anyway.
"""

from __future__ import annotations

import argparse
import re
import resource
import shutil
import sys
import tempfile
import time
import uuid
import zlib
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "data" / "web-sample.warc.gz"
URN = re.compile(rb"<urn:uuid:([0-9a-fA-F-]{36})>")
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # no name, no mtime, OS unknown


def _members(data: bytes):
    while data:
        member = zlib.decompressobj(wbits=31)
        yield member.decompress(data)
        data = member.unused_data


def _raw_deflate(data: bytes, final: bool) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush(zlib.Z_FINISH if final else zlib.Z_FULL_FLUSH)


def build_warc(responses: int, dest: Path) -> tuple[int, int]:
    """Write the sample's records with fresh ids until ``responses`` responses are in; (responses, bytes)."""
    records = []
    for record in _members(SAMPLE.read_bytes()):
        head, sep, body = record.partition(b"\r\n\r\n")
        # the body (HTTP response + the record's closing CRLFs) is compressed once, reused for every copy
        records.append((head + sep, body, _raw_deflate(body, final=True), b"WARC-Type: response" in head))
    written = 0
    with open(dest, "wb") as out:
        copy = 0
        while written < responses:
            def fresh(match: re.Match) -> bytes:
                return b"<urn:uuid:%s>" % str(uuid.uuid5(uuid.NAMESPACE_URL, f"{copy}/{match.group(1).decode()}")).encode()

            for head, body, packed_body, is_response in records:
                head = URN.sub(fresh, head) if copy else head
                crc = zlib.crc32(body, zlib.crc32(head))  # the member's trailer: CRC32 and size of head + body
                out.write(GZIP_HEADER + _raw_deflate(head, final=False) + packed_body
                          + crc.to_bytes(4, "little") + ((len(head) + len(body)) & 0xFFFFFFFF).to_bytes(4, "little"))
                written += is_response
                if written >= responses:
                    break
            copy += 1
    return written, dest.stat().st_size


def measured(fn, item, args):
    """Run one unit here (a fresh process) and return its result with this process's peak RSS in KiB."""
    started = time.perf_counter()
    result = fn(item, *args)
    return result, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter() - started


def measured_dedup(root, units, dedup, final_hash):
    from kurate.tasks.curate import dedup_run

    started = time.perf_counter()
    result = dedup_run(root, units, dedup, final_hash)
    return result, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter() - started


def _fresh_process():
    return ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"), max_tasks_per_child=1)


def curate_measured(warc: Path, root: Path, extractor: str, batch_rows: int) -> dict:
    """The real curate stage on one shard, each unit in its own process; peak RSS (MiB) and seconds per unit."""
    from kurate.tasks.curate import CurateHashes, DedupConfig, ShardFailure, curate_units
    from kurate.tasks.ingest import IngestConfig
    from kurate.tasks.quality import LanguageConfig, QualityConfig

    ingest = IngestConfig(extractor=extractor, batch_rows=batch_rows)
    quality, dedup = QualityConfig(language=LanguageConfig(keep=["de", "en", "fr"])), DedupConfig()
    hashes = CurateHashes.of(ingest, quality, dedup)
    peaks: dict[str, tuple[float, float]] = {}

    def map_shards(label, fn, items, args):
        results = []
        for item in items:
            with _fresh_process() as pool:
                result, peak_kib, seconds = pool.submit(measured, fn, item, args).result()
            peaks[label] = (peak_kib / 1024, seconds)
            results.append(result)
        return results

    def dedup_step(units):
        with _fresh_process() as pool:
            result, peak_kib, seconds = pool.submit(measured_dedup, str(root), units, dedup, hashes.final).result()
        peaks["dedup"] = (peak_kib / 1024, seconds)
        return result

    result = curate_units([str(warc)], str(root), hashes, (ingest, quality, dedup), map_shards, dedup_step)
    failed = [r for r in result["failed"] if isinstance(r, ShardFailure)]
    if failed:
        sys.exit(f"curate failed: {failed[0].error}")
    return {"peaks": peaks, "records": result["final"][0].records, "curated": result["final"][0].kept,
            "staged": result["filtered"][0].kept}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", type=int, default=40_000, help="responses in the big shard (default 40,000)")
    parser.add_argument("--small", type=int, default=1_000, help="responses in the small shard (default 1,000)")
    parser.add_argument("--extractor", default="resiliparse", choices=["resiliparse", "trafilatura"])
    parser.add_argument("--batch-rows", type=int, default=256, help="curate.ingest.batch_rows (default 256)")
    parser.add_argument("--work", default=None, help="directory for the shards and roots (default: a temp dir)")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="kurate-bench-shard-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        runs = {}
        for name, responses in (("small", args.small), ("big", args.big)):
            warc = work / f"{name}.warc.gz"
            started = time.perf_counter()
            count, size = build_warc(responses, warc)
            print(f"{name}: {count} responses, {size / 1e6:.0f} MB gzipped (built in {time.perf_counter() - started:.1f} s)", flush=True)
            runs[name] = curate_measured(warc, work / f"root-{name}", args.extractor, args.batch_rows)
            run = runs[name]
            print(f"  {run['records']} records, {run['staged']} staged, {run['curated']} curated; "
                  + ", ".join(f"{unit} {mib:.0f} MiB in {s:.1f} s" for unit, (mib, s) in run["peaks"].items()), flush=True)
            warc.unlink()
            shutil.rmtree(work / f"root-{name}", ignore_errors=True)
        print(f"\npeak RSS per curate unit (own process), extractor {args.extractor}, batch_rows {args.batch_rows}")
        print(f"{'unit':<10} {f'{args.small} resp.':>12} {f'{args.big} resp.':>12} {'ratio':>7} {'growth':>9}")
        for unit in ("filter", "dedup", "finalize"):
            small, big = runs["small"]["peaks"][unit][0], runs["big"]["peaks"][unit][0]
            print(f"{unit:<10} {small:>8.0f} MiB {big:>8.0f} MiB {big / small:>6.2f}x {big - small:>+6.0f} MiB")
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
