"""Dedup at 1M / 4M / 16M documents: the partitioned tasks (tasks/dedup_partitioned.py) against the
single-process ``find_duplicates`` (the baseline), same signature files, same run.

    .venv/bin/python bench/dedup_scale.py            # 1M, 4M, 16M
    .venv/bin/python bench/dedup_scale.py --quick    # 1M and 4M
    .venv/bin/python bench/dedup_scale.py --sizes 1000000 --docs-per-task 500000 --workers 1 2

Signatures are random (hash-generated, so a copy is cheap to make), written as Parquet files of
``--docs-per-file`` documents in ``SIGNATURE_SCHEMA``; planted: ``--near`` of the documents are near
copies of another document (1–16 of the 112 MinHash values changed: estimated Jaccard ≥ 0.857) and
``--exact`` exact copies (same exact hash), each source copied once, ranks a random permutation, so
the planted truth is "the copy or its source, whichever has the higher rank, is the duplicate of the
other". Recall and precision of the near duplicates are printed against that truth; the exact copies
must all be found exactly.

Every configuration runs in a subprocess (the driver), and the partitioned driver runs each task in
a fresh process of its own (a pool of ``--workers``), so each peak RSS (``ru_maxrss``) is that of
one task. Tasks are sized by ``--docs-per-task`` (partitions = ⌈N / docs_per_task⌉) and their DuckDB
limited to ``--task-memory-mb``. The baseline runs at the sizes up to ``--baseline-max``
(default 4M: at ~1.3 GB per million documents 16M would not fit beside the other work on a 24 GB
machine); where both run, their results must be equal. Data lives in a temp folder, removed after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from kurate.tasks.minhash import _mix64

WIDTH = 112  # 14 bands × 8 rows, the default MinHashConfig


def _mix(x: np.ndarray) -> np.ndarray:
    """kurate's splitmix64 finaliser (tasks/minhash.py) on a fresh uint64 array."""
    with np.errstate(over="ignore"):
        return _mix64(np.array(x, dtype=np.uint64, copy=True))


# --- data ----------------------------------------------------------------------------------------


def make_data(folder: Path, n: int, docs_per_file: int, near: float, exact: float, seed: int) -> dict:
    """Write the signature files; returns the files and the planted truth (winner per loser, -1 if none)."""
    from kurate.tasks.minhash import MinHasher
    from kurate.storage.schemas import SIGNATURES

    rng = np.random.default_rng(seed)
    n_near, n_exact = int(n * near), int(n * exact)
    perm = rng.permutation(n)
    near_copy, near_src = perm[:n_near], perm[n_near:2 * n_near]
    exact_copy, exact_src = perm[2 * n_near:2 * n_near + n_exact], perm[2 * n_near + n_exact:2 * (n_near + n_exact)]
    del perm
    origin = np.arange(n, dtype=np.int64)
    origin[near_copy], origin[exact_copy] = near_src, exact_src
    text = np.arange(n, dtype=np.int64)  # what the exact hash is of: the same only for exact copies
    text[exact_copy] = exact_src
    changes = np.zeros(n, dtype=np.int8)
    changes[near_copy] = rng.integers(1, 17, n_near)
    rank = rng.permutation(n)
    truth_near = np.full(n, -1, dtype=np.int64)
    truth_exact = np.full(n, -1, dtype=np.int64)
    for copies, sources, truth in ((near_copy, near_src, truth_near), (exact_copy, exact_src, truth_exact)):
        copy_loses = rank[copies] > rank[sources]
        truth[np.where(copy_loses, copies, sources)] = np.where(copy_loses, sources, copies)
    hasher, files, columns = MinHasher(), [], np.arange(WIDTH, dtype=np.uint64)
    for start in range(0, n, docs_per_file):
        docs = np.arange(start, min(n, start + docs_per_file), dtype=np.int64)
        sig = (_mix(origin[docs].astype(np.uint64)[:, None] * np.uint64(WIDTH) + columns) & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        # near copies: the first `changes` positions of a random rotation get fresh values
        for i in np.flatnonzero(changes[docs]):
            doc = docs[i]
            where = (np.arange(changes[doc]) + int(doc) * 7) % WIDTH
            sig[i, where] = (_mix(np.uint64(1 << 62) + np.uint64(doc) * np.uint64(WIDTH) + where.astype(np.uint64))
                             & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        bands = hasher.band_keys(sig)
        exact_hash = _mix(text[docs].astype(np.uint64) + np.uint64(0x5BD1E995))
        m = len(docs)

        def lists(values, width, kind):
            return pa.ListArray.from_arrays(pa.array(np.arange(0, (m + 1) * width, width, dtype=np.int32)),
                                            pa.array(values.reshape(-1), kind))

        table = pa.Table.from_arrays([
            pa.array([f"d{d:09d}" for d in docs.tolist()], pa.string()),
            pa.array([f"{r:09d}" for r in rank[docs].tolist()], pa.string()),
            pa.array(exact_hash, pa.uint64()), lists(sig, WIDTH, pa.uint32()), lists(bands, bands.shape[1], pa.uint64()),
        ], schema=SIGNATURES)
        path = folder / f"sig-{start // docs_per_file:05d}.parquet"
        pq.write_table(table, path)
        files.append(str(path))
    np.save(folder / "truth_near.npy", truth_near)
    np.save(folder / "truth_exact.npy", truth_exact)
    return {"files": files, "near": int((truth_near >= 0).sum()), "exact": int((truth_exact >= 0).sum())}


def score(result_path: str, folder: Path) -> dict:
    """Recall and precision of the near duplicates against the planted truth; exact copies found."""
    table = pq.read_table(result_path)
    ids = np.array([int(x[1:]) for x in table.column("id").to_pylist()], dtype=np.int64)
    dups = np.array([int(x[1:]) for x in table.column("duplicate_of").to_pylist()], dtype=np.int64)
    kinds = np.array(table.column("kind").to_pylist())
    truth_near, truth_exact = np.load(folder / "truth_near.npy"), np.load(folder / "truth_exact.npy")
    is_near = kinds == "near"
    correct = int((truth_near[ids[is_near]] == dups[is_near]).sum())
    exact_found = int((truth_exact[ids[~is_near]] == dups[~is_near]).sum())
    planted = int((truth_near >= 0).sum())
    return {"recall": correct / max(planted, 1), "precision": correct / max(int(is_near.sum()), 1),
            "exact_ok": exact_found == int((truth_exact >= 0).sum()) == int((~is_near).sum())}


# --- what runs in the subprocesses -------------------------------------------------------------


def _measured(fn, item, args):
    """One task in a fresh process: its result, seconds and peak RSS (MB)."""
    started = time.perf_counter()
    result = fn(item, *args)
    return result, time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _driver(spec: dict) -> dict:
    from kurate.tasks.dedup import find_duplicates
    from kurate.tasks.dedup_partitioned import find_duplicates_partitioned

    started = time.perf_counter()
    tasks = []
    if spec["method"] == "baseline":
        con = __import__("duckdb").connect()
        con.execute("SET temp_directory = ?", [os.path.join(spec["tmp"], "spill")])
        result = find_duplicates(spec["files"], con=con)
    else:
        pool = ProcessPoolExecutor(max_workers=spec["workers"], mp_context=get_context("spawn"), max_tasks_per_child=1)

        def map_tasks(fn, items, args):
            step_started = time.perf_counter()
            outs = list(pool.map(_measured, [fn] * len(items), items, [args] * len(items)))
            tasks.append({"step": fn.__name__.removesuffix("_task"), "n": len(items), "wall": time.perf_counter() - step_started,
                          "max_rss": max(o[2] for o in outs), "max_s": max(o[1] for o in outs)})
            return [o[0] for o in outs]

        with pool:
            result = find_duplicates_partitioned(spec["files"], docs_per_task=spec["docs_per_task"], memory_mb=spec["memory_mb"],
                                                 scratch=os.path.join(spec["tmp"], "scratch"), map_tasks=map_tasks)
    seconds = time.perf_counter() - started
    pq.write_table(result, spec["out"])
    return {"seconds": seconds, "driver_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "tasks": tasks,
            "rows": result.num_rows}


def run(spec: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, "--driver", json.dumps(spec)], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{spec['method']} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1M and 4M only")
    parser.add_argument("--sizes", type=int, nargs="+", default=None)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--docs-per-task", type=int, default=2_000_000)
    parser.add_argument("--task-memory-mb", type=int, default=1024)
    parser.add_argument("--docs-per-file", type=int, default=50_000)
    parser.add_argument("--near", type=float, default=0.05)
    parser.add_argument("--exact", type=float, default=0.02)
    parser.add_argument("--baseline-max", type=int, default=4_000_000)
    parser.add_argument("--tmp", default=None, help="folder for the data (default: the system temp dir)")
    parser.add_argument("--driver", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.driver:
        print(json.dumps(_driver(json.loads(args.driver))))
        return
    sizes = args.sizes or ([1_000_000, 4_000_000] if args.quick else [1_000_000, 4_000_000, 16_000_000])
    print(f"{platform.node()}: {os.cpu_count()} CPUs, {os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB, "
          f"load {os.getloadavg()[0]:.1f}; docs_per_task {args.docs_per_task:,}, task memory {args.task_memory_mb} MB, "
          f"{args.docs_per_file:,} docs per file, near {args.near:.0%}, exact {args.exact:.0%}")
    header = f"{'docs':>11} {'method':<22} {'tasks':>5} {'wall s':>7} {'max task RSS MB':>15} {'driver RSS MB':>13} " \
             f"{'recall':>7} {'precision':>9} {'= baseline':>10}"
    rows = []
    for n in sizes:
        tmp = Path(tempfile.mkdtemp(prefix="kurate-dedup-bench-", dir=args.tmp))
        try:
            started = time.perf_counter()
            data = make_data(tmp, n, args.docs_per_file, args.near, args.exact, seed=n)
            size = sum(os.path.getsize(f) for f in data["files"]) / 2**30
            print(f"{n:,} docs: {len(data['files'])} files, {size:.1f} GiB, {data['near']:,} near and {data['exact']:,} exact "
                  f"planted, written in {time.perf_counter() - started:.0f} s", flush=True)
            base = {"files": data["files"], "tmp": str(tmp), "docs_per_task": args.docs_per_task, "memory_mb": args.task_memory_mb}
            configs = ([("baseline", 1)] if n <= args.baseline_max else []) + [("partitioned", w) for w in args.workers]
            baseline_out = None
            for method, workers in configs:
                out = str(tmp / f"result-{method}-{workers}.parquet")
                measured = run({**base, "method": method, "workers": workers, "out": out})
                quality = score(out, tmp)
                same = "" if baseline_out is None else ("yes" if pq.read_table(out).equals(pq.read_table(baseline_out)) else "NO")
                if method == "baseline":
                    baseline_out = out
                    name, ntasks, task_rss = "find_duplicates (1 proc)", 1, measured["driver_rss"]
                else:
                    name = f"partitioned, {workers} worker{'s' if workers > 1 else ''}"
                    ntasks = sum(t["n"] for t in measured["tasks"])
                    task_rss = max(t["max_rss"] for t in measured["tasks"])
                row = f"{n:>11,} {name:<22} {ntasks:>5} {measured['seconds']:>7.1f} {task_rss:>15.0f} " \
                      f"{measured['driver_rss']:>13.0f} {quality['recall']:>7.4f} {quality['precision']:>9.4f} {same:>10}"
                if not quality["exact_ok"]:
                    row += "  (exact copies NOT all found)"
                rows.append(row)
                print(row, flush=True)
                for t in measured["tasks"]:
                    print(f"{'':>11}   {t['step']:<10} {t['n']:>3} tasks, step {t['wall']:.1f} s, slowest task {t['max_s']:.1f} s, "
                          f"max RSS {t['max_rss']:.0f} MB", flush=True)
            if n > args.baseline_max:
                print(f"{'':>11}   baseline not run at {n:,} (--baseline-max {args.baseline_max:,})", flush=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(header)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
