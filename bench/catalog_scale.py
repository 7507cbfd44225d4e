"""Catalog latency at 1k / 10k / 100k committed units: kurate's snapshot catalog against the catalog
it replaced (the named baseline, run in the same process tree) and against DuckLake, same roots.

    .venv/bin/python bench/catalog_scale.py            # local 1k, 10k, 100k; loopback S3 10k
    .venv/bin/python bench/catalog_scale.py --quick    # local 1k, 10k; loopback S3 1k

A root holds one ``curate`` unit per shard, as a Common Crawl run would: per unit a ``curated`` and
a ``rejects`` file (3 and 2 rows) and its commit record. The first 50 units of every root are
committed through the real path (``ShardStore.open_unit``); the rest are written as the same
artifacts directly (the Parquet bytes of a real unit's files under a fresh ``<unit>.<token>``
name, and a ``Manifest.to_json()`` commit record with generation 1): the real path's
``next_generation`` lists the stage's records on a local disk, which would make building a 100k
root take hours, and it is not what is measured.

Measured, each in a fresh Python process (imports not timed; peak RSS of that process):

* **snapshot** (this code): ``Catalog(root).connect()`` (list the records' names, read the snapshot,
  set the views) then ``select count(*) from curated``; the first open after the root was built
  folds every record into the snapshot (reported apart); warm runs are the median of 3 (one at
  100k, where the count alone takes about a minute). ``plan_s`` is ``EXPLAIN``, ``count_s`` the
  query's execution (it reads every file's footer: data, not catalog, cost). Then
  ``root_status(root)``; then 10 more commits through the real path and one open (the incremental fold).
* **baseline**: the catalog and status of git ``HEAD`` (the code this replaced) (``git show HEAD:src/kurate/storage/...``):
  every record globbed and read, views listing every file with ``union_by_name``. Skipped at 100k
  (it grows superlinearly: 21 s at 20k units in the issue).
* **ducklake**: the same curated files registered in a DuckLake catalog
  (``ducklake_add_data_files`` in batches of 1,000; build time reported), then ATTACH read-only and
  ``count(*)``. ``--no-ducklake`` skips it; at 100k only with ``--ducklake-100k`` (minutes to build).
* CLI wall time of ``kurate query "select count(*) from curated"`` and ``kurate status`` (snapshot
  only; it includes Python start-up, shown apart on a one-unit root).

S3: the root is built locally and uploaded to a ``moto_server`` started on 127.0.0.1 (stopped by PID).
On S3 the query is measured up to planning (open + ``EXPLAIN``): ``count(*)`` reads every file's
footer through fsspec, which on moto takes ~0.1 s per file (data, not catalog, cost); the baseline
runs there up to ``--s3-baseline-max`` units (default 1,000).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
REAL_UNITS = 50
CONFIG = "c0ffee0123456789"

MEASURE = r'''
import json, resource, sys, time
mode, root, what = sys.argv[1], sys.argv[2], sys.argv[3]
opts, warm_root = json.loads(sys.argv[4]), sys.argv[6] if len(sys.argv) > 6 else ""
if mode == "baseline":
    sys.path.insert(0, sys.argv[5])
    from head_catalog import Catalog
    from head_status import root_status
elif mode == "ducklake":
    import duckdb
else:
    from kurate.storage.catalog import Catalog
    from kurate.storage.status import root_status
if warm_root and mode != "ducklake":  # the process's one-time costs (lazy imports, DuckDB start-up), not timed
    Catalog(warm_root).connect().execute("select count(*) from curated").fetchall()
    root_status(warm_root)
t0 = time.perf_counter()
out = {}
if mode == "ducklake":
    con = duckdb.connect()
    con.execute(f"LOAD '{sys.argv[5]}'")
    con.execute(f"ATTACH 'ducklake:{root}' AS lake (READ_ONLY)")
    t1 = time.perf_counter()
    out["rows"] = con.execute("select count(*) from lake.curated").fetchone()[0]
    t2 = time.perf_counter()
    out.update(open=t1 - t0, count=t2 - t1, total=t2 - t0)
elif what in ("query", "plan"):
    con = Catalog(root, opts).connect()
    t1 = time.perf_counter()
    con.execute("explain select count(*) from curated").fetchall()
    t2 = time.perf_counter()
    out.update(open=t1 - t0, plan=t2 - t1)
    if what == "query":  # "plan" only (S3: reading 10k footers through fsspec on moto takes many minutes)
        out["rows"] = con.execute("select count(*) from curated").fetchone()[0]
    t3 = time.perf_counter()
    out.update(count=t3 - t2, total=t3 - t0)
else:
    status = root_status(root, opts)
    out.update(total=time.perf_counter() - t0, units=sum(s.committed for s in status.stages))
out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
'''


def _run(args: list[str], env: dict | None = None) -> dict:
    done = subprocess.run([sys.executable, "-c", MEASURE, *args], capture_output=True, text=True, env=env)
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def head_modules(into: Path) -> Path:
    """The catalog, shards and status modules of git HEAD, importable as head_* (the baseline)."""
    into.mkdir(parents=True, exist_ok=True)
    for name in ("shards", "catalog", "status"):
        text = subprocess.run(["git", "show", f"HEAD:src/kurate/storage/{name}.py"], cwd=REPO, check=True,
                              capture_output=True, text=True).stdout
        for other in ("shards", "catalog", "status"):
            text = text.replace(f"from kurate.storage.{other} import", f"from head_{other} import")
        (into / f"head_{name}.py").write_text(text)
    return into


def build_root(root: Path, units: int) -> None:
    import pyarrow as pa  # noqa: F401 - imported here so --help stays fast

    from kurate.storage import KURATE_VERSION
    from kurate.storage.shards import Manifest, OutputFile, ShardStore, UnitKey

    store = ShardStore(str(root))

    def key(i: int) -> UnitKey:
        return UnitKey("curate", f"s3://commoncrawl/crawl-data/CC-MAIN-2026-40/segments/{i // 1000:04d}/warc/CC-MAIN-{i:06d}.warc.gz", CONFIG)

    def real(i: int) -> None:
        with store.open_unit(key(i), ["curated", "rejects"]) as unit:
            unit.write("curated", [{"id": f"{i}-{j}", "url": f"https://e.test/{i}/{j}", "text": f"Text {i} {j}", "language": "de"} for j in range(3)])
            unit.write("rejects", [{"id": f"{i}-r{j}", "stage": "filter", "reason": "short"} for j in range(2)])
            unit.counts = {"responses": 5, "kept": 3, "rejected": 2}

    for i in range(min(REAL_UNITS, units)):
        real(i)
    template = store.current_manifests()[0]
    blobs = {o.dataset: (root / o.path).read_bytes() for o in template.outputs}
    rows = {o.dataset: o.rows for o in template.outputs}
    records = root / "_manifests" / "curate"
    for i in range(REAL_UNITS, units):
        k, token = key(i), uuid.uuid4().hex[:12]
        outputs = []
        for dataset, blob in blobs.items():
            rel = f"{dataset}/{k.name}.{token}.parquet"
            (root / rel).write_bytes(blob)
            outputs.append(OutputFile(dataset, rel, rows[dataset], len(blob)))
        manifest = Manifest(unit=k.name, stage="curate", input=k.input, config_hash=CONFIG, kurate_version=KURATE_VERSION,
                            committed_at=time.time(), outputs=tuple(outputs), counts=dict(template.counts), generation=1)
        (records / f"{k.name}.json").write_text(manifest.to_json())


def commit_more(root: str, storage_options: dict, start: int, n: int) -> None:
    from kurate.storage.shards import ShardStore, UnitKey

    store = ShardStore(root, storage_options)
    for i in range(start, start + n):
        with store.open_unit(UnitKey("curate", f"s3://commoncrawl/more/{i:06d}.warc.gz", CONFIG), ["curated", "rejects"]) as unit:
            unit.write("curated", [{"id": f"m{i}", "text": "x"}])


def ducklake_extension() -> str | None:
    try:
        import duckdb
        import duckdb_extension_ducklake
    except ImportError:
        return None
    path = Path(duckdb_extension_ducklake.__file__).parent / "extensions" / f"v{duckdb.__version__}" / "ducklake.duckdb_extension"
    return str(path) if path.exists() else None


def build_ducklake(root: Path, extension: str) -> tuple[str, float]:
    import duckdb

    from kurate.storage.schemas import CURATED

    files = sorted(str(p) for p in (root / "curated").glob("*.parquet"))
    meta = str(root.parent / f"{root.name}.ducklake")
    t0 = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"LOAD '{extension}'")
    con.execute(f"ATTACH 'ducklake:{meta}' AS lake (DATA_PATH '{root}/')")
    con.register("empty", CURATED.empty_table())
    con.execute("CREATE TABLE lake.curated AS SELECT * FROM empty")
    for i in range(0, len(files), 1000):
        con.execute("CALL ducklake_add_data_files('lake', 'curated', ?)", [files[i:i + 1000]])
    con.close()
    return meta, time.perf_counter() - t0


def cli_wall(args: list[str]) -> float:
    """Wall time of one ``kurate`` command; its CPU time (user + sys) goes to ``CLI_CPU`` (load from
    other processes inflates wall time on a shared machine, not CPU time)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run([str(BIN / "kurate"), *args], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(done.stdout[-2000:] + done.stderr[-2000:])
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CLI_CPU[args[0]] = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall


CLI_CPU: dict[str, float] = {}


def measure(label: str, root: str, units: int, opts: dict, head: Path, baseline: bool, extension: str | None,
            local_path: Path | None, warm_root: Path) -> dict:
    o, w = json.dumps(opts), str(warm_root)
    what = "query" if local_path is not None else "plan"
    row: dict = {"where": label, "units": units}
    first = _run(["snapshot", root, what, o, "", w])
    assert first.get("rows", 3 * units) == 3 * units, first
    row["first_open_s"] = first["open"]
    warm = [_run(["snapshot", root, what, o, "", w]) for _ in range(3 if units <= 10000 else 1)]  # 100k: one (its count is ~1 min)
    for key in ("open", "plan", "count", "total"):
        row[f"{key}_s" if key != "total" else "query_s"] = statistics.median(x[key] for x in warm)
    row["query_rss_mb"] = max(x["rss_mb"] for x in warm)
    status = [_run(["snapshot", root, "status", o, "", w]) for _ in range(3)]
    assert status[0]["units"] == units, status[0]
    row["status_s"] = statistics.median(s["total"] for s in status)
    row["status_rss_mb"] = max(s["rss_mb"] for s in status)
    if baseline:
        old = _run(["baseline", root, what, o, str(head), w])
        assert old.get("rows", 3 * units) == 3 * units, old
        row.update(base_open_s=old["open"], base_plan_s=old["plan"], base_query_s=old["total"], base_query_rss_mb=old["rss_mb"])
        old_status = _run(["baseline", root, "status", o, str(head), w])
        row.update(base_status_s=old_status["total"], base_status_rss_mb=old_status["rss_mb"])
    if local_path is not None:
        row["cli_query_s"] = cli_wall(["query", "--root", root, "select count(*) from curated"])
        row["cli_query_cpu_s"] = CLI_CPU["query"]
        row["cli_status_s"] = cli_wall(["status", "--root", root])
        row["cli_status_cpu_s"] = CLI_CPU["status"]
        if extension:
            meta, row["ducklake_build_s"] = build_ducklake(local_path, extension)
            lake = _run(["ducklake", meta, "query", o, extension, ""])
            assert lake["rows"] == 3 * units, lake
            row.update(ducklake_query_s=lake["total"], ducklake_rss_mb=lake["rss_mb"])
    commit_more(root, opts, units, 10)
    inc = _run(["snapshot", root, "plan", o, "", w])
    row["after_10_commits_open_s"] = inc["open"]
    return row


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Moto:
    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.options = {"s3": {"endpoint_url": self.endpoint, "key": "testing", "secret": "testing",
                               "client_kwargs": {"region_name": "us-east-1"}}}
        deadline = time.time() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                if time.time() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("moto_server did not start")
                time.sleep(0.2)
        import boto3

        boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                     region_name="us-east-1").create_bucket(Bucket="kurate")

    def upload(self, local: Path, prefix: str) -> None:
        import s3fs

        fs = s3fs.S3FileSystem(key="testing", secret="testing", endpoint_url=self.endpoint,
                               client_kwargs={"region_name": "us-east-1"})
        blobs = {f"kurate/{prefix}/{p.relative_to(local)}": p.read_bytes() for p in local.rglob("*")
                 if p.is_file() and "_catalog" not in p.parts and p.name != "catalog.duckdb"}
        items = list(blobs.items())
        for i in range(0, len(items), 2000):
            fs.pipe(dict(items[i:i + 2000]))

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


COLUMNS = [("where", "{}"), ("units", "{:,}"), ("first_open_s", "{:.2f}"), ("open_s", "{:.3f}"), ("plan_s", "{:.3f}"),
           ("count_s", "{:.3f}"), ("query_s", "{:.3f}"), ("query_rss_mb", "{:.0f}"), ("status_s", "{:.3f}"),
           ("status_rss_mb", "{:.0f}"), ("after_10_commits_open_s", "{:.3f}"), ("cli_query_s", "{:.2f}"), ("cli_query_cpu_s", "{:.2f}"),
           ("cli_status_s", "{:.2f}"), ("cli_status_cpu_s", "{:.2f}"),
           ("base_open_s", "{:.2f}"), ("base_plan_s", "{:.2f}"), ("base_query_s", "{:.2f}"), ("base_query_rss_mb", "{:.0f}"),
           ("base_status_s", "{:.2f}"), ("base_status_rss_mb", "{:.0f}"),
           ("ducklake_build_s", "{:.1f}"), ("ducklake_query_s", "{:.3f}"), ("ducklake_rss_mb", "{:.0f}")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="local 1k and 10k, S3 1k")
    parser.add_argument("--sizes", type=int, nargs="*", help="local sizes (default 1000 10000 100000)")
    parser.add_argument("--s3-units", type=int, help="units on the loopback S3 (default 10000; 1000 with --quick; 0 skips)")
    parser.add_argument("--baseline-max", type=int, default=10000, help="largest local size that runs the baseline")
    parser.add_argument("--s3-baseline-max", type=int, default=1000,
                        help="largest S3 size that runs the baseline (it reads every record and, planning, every footer through moto)")
    parser.add_argument("--no-ducklake", action="store_true")
    parser.add_argument("--ducklake-100k", action="store_true", help="also build DuckLake at 100k (minutes)")
    parser.add_argument("--keep", help="build roots here and keep them (default: a temp dir, removed)")
    args = parser.parse_args()
    sizes = args.sizes or ([1000, 10000] if args.quick else [1000, 10000, 100000])
    s3_units = args.s3_units if args.s3_units is not None else (1000 if args.quick else 10000)
    extension = None if args.no_ducklake else ducklake_extension()
    if not args.no_ducklake and extension is None:
        print("DuckLake: duckdb-extension-ducklake not installed, skipped")
    work = Path(args.keep or tempfile.mkdtemp(prefix="kcat"))
    head = head_modules(work / "head")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; load {os.getloadavg()}")
    rows = []
    try:
        tiny = work / "tiny"
        build_root(tiny, 1)
        startup = cli_wall(["query", "--root", str(tiny), "select count(*) from curated"])
        print(f"CLI start-up (kurate query on a 1-unit root): {startup:.2f} s wall, {CLI_CPU['query']:.2f} s CPU")
        for n in sizes:
            local = work / f"local-{n}"
            t0 = time.perf_counter()
            build_root(local, n)
            print(f"built {n:,} units in {time.perf_counter() - t0:.1f} s", flush=True)
            lake = extension if (n < 100000 or args.ducklake_100k) else None
            rows.append(measure("local", str(local), n, {}, head, n <= args.baseline_max, lake, local, tiny))
            print(json.dumps(rows[-1]), flush=True)
        if s3_units:
            moto = Moto()
            try:
                local = work / f"s3src-{s3_units}"
                build_root(local, s3_units)
                t0 = time.perf_counter()
                moto.upload(local, f"r{s3_units}")
                print(f"uploaded {s3_units:,} units to moto in {time.perf_counter() - t0:.1f} s", flush=True)
                rows.append(measure("s3", f"s3://kurate/r{s3_units}", s3_units, moto.options, head,
                                    s3_units <= args.s3_baseline_max, None, None, tiny))
                print(json.dumps(rows[-1]), flush=True)
            finally:
                moto.stop()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print()
    shown = [(c, f) for c, f in COLUMNS if any(c in r for r in rows)]
    print("| " + " | ".join(c for c, _ in shown) + " |")
    print("|" + "---|" * len(shown))
    for r in rows:
        print("| " + " | ".join(f.format(r[c]) if c in r else "–" for c, f in shown) + " |")
    local = {r["units"]: r for r in rows if r["where"] == "local"}
    if min(local, default=0) and len(local) > 1:
        lo, hi = min(local), max(local)
        print(f"\nratio {hi:,}/{lo:,} units (local): snapshot open+plan {(local[hi]['open_s'] + local[hi]['plan_s']) / (local[lo]['open_s'] + local[lo]['plan_s']):.1f}x, "
              f"query incl. count {local[hi]['query_s'] / local[lo]['query_s']:.1f}x (count alone {local[hi]['count_s'] / local[lo]['count_s']:.1f}x), "
              f"status {local[hi]['status_s'] / local[lo]['status_s']:.1f}x")
        for n, r in sorted(local.items()):
            if "base_query_s" in r:
                print(f"{n:,} units: baseline/snapshot query {r['base_query_s'] / r['query_s']:.1f}x, "
                      f"status {r['base_status_s'] / r['status_s']:.1f}x")


if __name__ == "__main__":
    main()
