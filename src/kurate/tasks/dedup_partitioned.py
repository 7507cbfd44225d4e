"""``find_duplicates`` split into tasks whose memory is bounded per task, not by the size of the run.

The decisions are those of ``tasks/dedup.find_duplicates`` (its docstring says who wins and why);
only where the work happens changes. A document is named by ``doc = src << 40 | row`` (``src``: its
file's number in ``(is_ref DESC, filename)`` order, ``row``: its row in the file), and "better" is
the order ``(is_ref DESC, rank, id, doc)``, the same total order as ``find_duplicates``' ``ord``,
compared where it is needed instead of numbered once over all documents.

1. **Exact** (``partitions`` tasks): task *i* reads only the rows of every signature file whose
   ``exact_hash`` lies in the *i*-th of ``partitions`` equal ranges (a filter pushed into the
   Parquet scan), so an exact group lives in one task; it writes the group losers with their winner.
2. **LSH** (``partitions`` tasks): task *j* unnests the band keys of every file and keeps those in
   its key range, minus the exact losers. A (band, key) bucket lies in one range, so the star and
   chain pairs of every bucket are exactly those of the single process; only bucket members are
   looked up for their rank and id. It writes the candidate pairs and their endpoints.
3. **Verify** (``partitions`` tasks): task *k* takes the pairs with ``b % partitions = k`` from all
   LSH outputs, reads the MinHash values of just their documents and keeps the pairs at or above
   ``threshold``.
4. **Components** (one task): connected components over the verified pairs only (scipy), winner =
   the best endpoint of each component; members' similarity to the winner where that pair was
   verified, the other (winner, member) pairs are estimated by step 3 again, without a threshold.

The driver then joins the members with those similarities and the exact losers into
``DUPLICATE_SCHEMA`` (sorted by id as ``find_duplicates``). Every task writes its own Parquet files
under ``scratch`` (re-running a task rewrites them), so ``map_tasks`` can run the tasks anywhere that
sees ``scratch`` — Ray tasks (``flows/curate.py``) or this process (``run_here``).

Memory per task: DuckDB holds the rows of its range (exact: hash, rank, id, doc of ~N/P documents;
LSH: (band, key, doc) of ~bands·N/P keys, rank and id of bucket members; verify: ~pairs/P pairs and
their MinHash values) within ``memory_mb`` and spills beyond it. What still grows with N: each task
*reads* the needed column of every file (total reading ∝ N·P), the LSH tasks read the exact losers'
``doc`` (8 bytes each), and the components task and the driver hold what is verified and reported.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Callable, Sequence

import duckdb
import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from kurate.tasks.dedup import DUPLICATE_SCHEMA, jaccard_batches

TaskMap = Callable[[Callable, list[str], tuple], list]  # (fn, items, args) → [fn(item, *args) for item in items]
Connect = Callable[[], duckdb.DuckDBPyConnection]

_SRC_SHIFT = 40  # doc = src << 40 | row: 2^40 rows per file, 2^23 files
_BATCH_ROWS = 65_536
_ORDER = "is_ref DESC, rank NULLS LAST, id, doc"  # = find_duplicates' ord


def run_here(fn: Callable, items: list[str], args: tuple) -> list:
    """The default ``TaskMap``: every task in this process, one after the other."""
    return [fn(item, *args) for item in items]


@dataclass(frozen=True)
class DedupJob:
    """Everything a task needs (it travels to Ray workers: plain values, an fsspec filesystem, and a
    picklable ``connect`` that opens a DuckDB connection able to read every file)."""

    new: tuple[str, ...]
    ref: tuple[str, ...]
    exclude: tuple[str, ...]
    files: tuple[tuple[bool, str, int], ...]  # (is_ref, filename as DuckDB reports it, src)
    threshold: float
    exact: bool
    fuzzy: bool
    partitions: int
    scratch: str  # folder path on ``fs``
    fs: fsspec.AbstractFileSystem = field(repr=False)
    connect: Connect | None = field(default=None, repr=False)
    memory_mb: int | None = None

    def path(self, name: str) -> str:
        return f"{self.scratch.rstrip('/')}/{name}.parquet"

    def url(self, name: str) -> str:
        path = self.path(name)
        return path if isinstance(self.fs, LocalFileSystem) else self.fs.unstrip_protocol(path)

    def urls(self, step: str, count: int | None = None) -> list[str]:
        return [self.url(f"{step}-{i}") for i in range(self.partitions if count is None else count)]


def partitions_for(docs: int, docs_per_task: int, partitions: int = 0) -> int:
    """``partitions`` if given (> 0), else one task per ``docs_per_task`` documents (at least one)."""
    return partitions if partitions > 0 else max(1, math.ceil(docs / docs_per_task))


def plan_job(
    new_files: Sequence[str],
    reference_files: Sequence[str],
    *,
    reference_exclude: Sequence[str] = (),
    threshold: float = 0.8,
    exact: bool = True,
    fuzzy: bool = True,
    scratch: str,
    fs: fsspec.AbstractFileSystem | None = None,
    connect: Connect | None = None,
    partitions: int = 0,
    docs_per_task: int = 4_000_000,
    memory_mb: int | None = None,
) -> DedupJob:
    """Number the files as the tasks' scans name them (DuckDB's ``filename``, which may differ from the
    URL given) and size the tasks from the Parquet footers."""
    con = connect() if connect is not None else duckdb.connect()
    try:
        files, docs = [], 0
        for is_ref, group in ((True, list(reference_files)), (False, list(new_files))):
            if not group:
                continue
            names = con.execute("SELECT DISTINCT filename FROM read_parquet($files, filename=true) ORDER BY filename",
                                {"files": group}).fetchall()
            files += [(is_ref, name) for (name,) in names]
            docs += con.execute("SELECT sum(num_rows) FROM parquet_file_metadata($files)", {"files": group}).fetchall()[0][0] or 0
    finally:
        con.close()
    if len(files) >= 1 << (63 - _SRC_SHIFT):
        raise ValueError(f"{len(files)} signature files: at most {1 << (63 - _SRC_SHIFT)} fit the document numbering")
    numbered = tuple((is_ref, name, src) for src, (is_ref, name) in enumerate(files, start=1))
    return DedupJob(tuple(new_files), tuple(reference_files), tuple(reference_exclude), numbered, threshold, exact, fuzzy,
                    partitions_for(docs, docs_per_task, partitions), scratch, fs or fsspec.filesystem("file"), connect, memory_mb)


def find_duplicates_partitioned(
    new_files: Sequence[str],
    reference_files: Sequence[str] = (),
    *,
    reference_exclude: Sequence[str] = (),
    threshold: float = 0.8,
    exact: bool = True,
    fuzzy: bool = True,
    partitions: int = 0,
    docs_per_task: int = 4_000_000,
    memory_mb: int | None = None,
    connect: Connect | None = None,
    scratch: str | None = None,
    fs: fsspec.AbstractFileSystem | None = None,
    map_tasks: TaskMap = run_here,
) -> pa.Table:
    """``find_duplicates`` (same arguments, same result) as tasks of bounded memory run by ``map_tasks``.

    ``scratch`` is a folder on ``fs`` that every task can reach (default: a temporary local folder,
    removed afterwards); ``connect`` opens a DuckDB connection that can read the signature files
    (default ``duckdb.connect``; pass one with an fsspec filesystem registered for remote files).
    ``partitions`` tasks per step, or one per ``docs_per_task`` documents when 0; each task's DuckDB
    is limited to ``memory_mb`` and spills to a temporary folder of its own beyond it."""
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    if not new_files or not (exact or fuzzy):
        return DUPLICATE_SCHEMA.empty_table()
    owned = scratch is None
    if owned:
        scratch, fs = tempfile.mkdtemp(prefix="kurate-dedup-"), fsspec.filesystem("file")
    try:
        job = plan_job(new_files, reference_files, reference_exclude=reference_exclude, threshold=threshold, exact=exact,
                       fuzzy=fuzzy, scratch=scratch, fs=fs, connect=connect, partitions=partitions,
                       docs_per_task=docs_per_task, memory_mb=memory_mb)
        if not any(not is_ref for is_ref, _, _ in job.files):  # the new files hold no documents
            return DUPLICATE_SCHEMA.empty_table()
        return run_job(job, map_tasks)
    finally:
        if owned:
            shutil.rmtree(scratch, ignore_errors=True)


def run_job(job: DedupJob, map_tasks: TaskMap = run_here) -> pa.Table:
    """Steps 1–4 through ``map_tasks``, then the result from their files."""
    job.fs.makedirs(job.scratch, exist_ok=True)
    every = [str(i) for i in range(job.partitions)]
    if job.exact:
        map_tasks(exact_task, every, (job,))
    missing = 0
    if job.fuzzy:
        map_tasks(lsh_task, every, (job,))
        map_tasks(verify_task, every, (job, "pairs", "verified"))
        (missing,) = map_tasks(components_task, ["0"], (job,))
        if missing:
            map_tasks(verify_task, every, (job, "missing", "missing-sim"))
    return _result(job, bool(missing))


# --- the tasks -----------------------------------------------------------------------------------


def exact_task(item: str, job: DedupJob) -> int:
    """Exact step for hash range ``item``: writes ``exact-<item>`` (doc, is_ref, rank, id, winner, winner_id)."""
    lo, hi = _bounds(int(item), job.partitions)
    with _Task(job) as cur:
        reader = cur.execute(
            f"""
            SELECT doc, is_ref, rank, id, winner, winner_id FROM (
                SELECT doc, is_ref, rank, id, first_value(doc) OVER w AS winner, first_value(id) OVER w AS winner_id
                FROM kp_scan WHERE exact_hash BETWEEN {lo}::UBIGINT AND {hi}::UBIGINT
                WINDOW w AS (PARTITION BY exact_hash ORDER BY {_ORDER}))
            WHERE doc <> winner
            """
        ).fetch_record_batch(_BATCH_ROWS)
        return _write(job, f"exact-{item}", reader)


def lsh_task(item: str, job: DedupJob) -> int:
    """LSH step for band-key range ``item``: writes ``pairs-<item>`` (a, b) and ``docs-<item>`` (their endpoints)."""
    lo, hi = _bounds(int(item), job.partitions)
    with _Task(job) as cur:
        keys = (
            "SELECT doc, band, key FROM (SELECT doc, unnest(bands) AS key, unnest(generate_series(1, len(bands))) AS band "
            f"FROM kp_scan) WHERE key BETWEEN {lo}::UBIGINT AND {hi}::UBIGINT"
        )
        if job.exact:
            cur.register("kp_losers", cur.read_parquet(job.urls("exact")).select("doc AS loser"))
            keys = f"SELECT k.* FROM ({keys}) k ANTI JOIN kp_losers l ON l.loser = k.doc"
        cur.execute(f"CREATE TEMP TABLE kp_keys AS {keys}")
        cur.execute(
            "CREATE TEMP TABLE kp_members AS SELECT band, key, doc FROM kp_keys "
            "SEMI JOIN (SELECT band, key FROM kp_keys GROUP BY band, key HAVING count(*) > 1) USING (band, key)"
        )
        cur.execute("DROP TABLE kp_keys")
        cur.execute("CREATE TEMP TABLE kp_meta AS SELECT doc, is_ref, rank, id FROM kp_scan "
                    "WHERE doc IN (SELECT DISTINCT doc FROM kp_members)")
        # Star + chain per bucket, as find_duplicates: the bucket's best member and each member's predecessor.
        cur.execute(
            f"""
            CREATE TEMP TABLE kp_pairs AS
            WITH linked AS (
                SELECT doc AS b, is_ref AS b_is_ref, first_value(doc) OVER w AS best, lag(doc) OVER w AS prev
                FROM kp_members JOIN kp_meta USING (doc)
                WINDOW w AS (PARTITION BY band, key ORDER BY {_ORDER}))
            SELECT DISTINCT a, b FROM (
                SELECT best AS a, b, b_is_ref FROM linked WHERE b <> best
                UNION ALL
                SELECT prev AS a, b, b_is_ref FROM linked WHERE prev IS NOT NULL AND prev <> best)
            WHERE NOT b_is_ref
            """
        )
        pairs = _write(job, f"pairs-{item}", cur.execute("SELECT a, b FROM kp_pairs").fetch_record_batch(_BATCH_ROWS))
        _write(job, f"docs-{item}", cur.execute(
            "SELECT * FROM kp_meta WHERE doc IN (SELECT a FROM kp_pairs UNION SELECT b FROM kp_pairs)"
        ).fetch_record_batch(_BATCH_ROWS))
        return pairs


def verify_task(item: str, job: DedupJob, source: str, target: str) -> int:
    """Estimated Jaccard of the pairs (a, b) of ``source`` files with ``b % partitions = item``; writes
    ``<target>-<item>`` (a, b, similarity): the pairs at or above the threshold, or all when ``target``
    is for the missing (winner, member) pairs."""
    keep_all = source == "missing"
    sources = [job.url("missing")] if keep_all else job.urls(source)
    with _Task(job) as cur:
        cur.register("kp_in", cur.read_parquet(sources).select("a, b"))
        cur.execute(f"CREATE TEMP TABLE kp_pairs AS SELECT DISTINCT a, b FROM kp_in WHERE b % {job.partitions} = {int(item)}")
        cur.execute("CREATE TEMP TABLE kp_minhash AS SELECT doc, minhash FROM kp_scan "
                    "WHERE doc IN (SELECT a FROM kp_pairs UNION SELECT b FROM kp_pairs)")
        reader = cur.execute("SELECT p.a, p.b, x.minhash AS ma, y.minhash AS mb FROM kp_pairs p "
                             "JOIN kp_minhash x ON x.doc = p.a JOIN kp_minhash y ON y.doc = p.b").fetch_record_batch(_BATCH_ROWS)

        def verified():
            for a, b, sim in jaccard_batches(reader):
                keep = slice(None) if keep_all else sim >= job.threshold - 1e-12
                yield pa.record_batch([pa.array(a[keep]), pa.array(b[keep]), pa.array(sim[keep])], names=["a", "b", "similarity"])

        return _write_batches(job, f"{target}-{item}", _VERIFIED, verified())


_VERIFIED = pa.schema([("a", pa.int64()), ("b", pa.int64()), ("similarity", pa.float64())])


def components_task(item: str, job: DedupJob) -> int:
    """Components of the verified pairs: writes ``members`` (doc, rank, id, winner, winner_id, similarity
    where the (winner, member) pair was verified) and ``missing`` (the other pairs); returns their count."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    with _Task(job, scan=False) as cur:
        cur.register("kp_verified", cur.read_parquet(job.urls("verified")))
        cur.register("kp_docs", cur.read_parquet(job.urls("docs")))
        # The endpoints of verified pairs, numbered in the winners' order (a subset keeps the order of all).
        cur.execute(
            f"""
            CREATE TEMP TABLE kp_nodes AS
            SELECT row_number() OVER (ORDER BY {_ORDER}) - 1 AS ord, doc, is_ref, rank, id FROM (
                SELECT DISTINCT doc, is_ref, rank, id FROM kp_docs
                WHERE doc IN (SELECT a FROM kp_verified UNION SELECT b FROM kp_verified))
            """
        )
        n = cur.execute("SELECT count(*) FROM kp_nodes").fetchall()[0][0]
        edges = cur.execute("SELECT x.ord AS a, y.ord AS b FROM kp_verified v JOIN kp_nodes x ON x.doc = v.a "
                            "JOIN kp_nodes y ON y.doc = v.b").fetch_record_batch().read_all()
        a = edges.column("a").to_numpy().astype(np.int64)
        b = edges.column("b").to_numpy().astype(np.int64)
        del edges
        labels = np.zeros(0, dtype=np.int64)
        if n:
            _, labels = connected_components(coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(n, n)), directed=False)
        del a, b
        best = np.full(labels.max() + 1 if n else 0, n, dtype=np.int64)
        np.minimum.at(best, labels, np.arange(n, dtype=np.int64))  # each component's smallest ord: its winner
        cur.register("kp_winner", pa.table({"ord": np.arange(n, dtype=np.int64), "winner_ord": best[labels]}))
        cur.execute(
            """
            CREATE TEMP TABLE kp_members AS
            SELECT m.doc, m.rank, m.id, w.doc AS winner, w.id AS winner_id, v.similarity
            FROM kp_winner o JOIN kp_nodes m ON m.ord = o.ord JOIN kp_nodes w ON w.ord = o.winner_ord
            LEFT JOIN (SELECT DISTINCT a, b, similarity FROM kp_verified) v ON v.a = w.doc AND v.b = m.doc
            WHERE o.winner_ord <> o.ord AND NOT m.is_ref
            """
        )
        _write(job, "members", cur.execute("SELECT * FROM kp_members").fetch_record_batch(_BATCH_ROWS))
        return _write(job, "missing", cur.execute(
            "SELECT winner AS a, doc AS b FROM kp_members WHERE similarity IS NULL").fetch_record_batch(_BATCH_ROWS))


def _result(job: DedupJob, missing: bool) -> pa.Table:
    parts = []
    with _Task(job, scan=False) as cur:
        if job.exact:
            cur.register("kp_exact", cur.read_parquet(job.urls("exact")))
            parts.append("SELECT id, rank, winner_id AS duplicate_of, 'exact' AS kind, 1.0::DOUBLE AS similarity, doc "
                         "FROM kp_exact WHERE NOT is_ref")
        if job.fuzzy:
            cur.register("kp_members", cur.read_parquet([job.url("members")]))
            if missing:
                cur.register("kp_missing", cur.read_parquet(job.urls("missing-sim")))
                parts.append("SELECT m.id, m.rank, m.winner_id AS duplicate_of, 'near' AS kind, "
                             "coalesce(m.similarity, s.similarity) AS similarity, m.doc "
                             "FROM kp_members m LEFT JOIN kp_missing s ON s.a = m.winner AND s.b = m.doc")
            else:
                parts.append("SELECT id, rank, winner_id AS duplicate_of, 'near' AS kind, similarity, doc FROM kp_members")
        table = cur.execute(f"SELECT id, rank, duplicate_of, kind, similarity FROM ({' UNION ALL '.join(parts)}) "
                            "ORDER BY id, rank NULLS LAST, doc").fetch_record_batch().read_all()
    return table.cast(DUPLICATE_SCHEMA)


# --- helpers -------------------------------------------------------------------------------------


def _bounds(i: int, partitions: int) -> tuple[int, int]:
    """The i-th of ``partitions`` equal ranges of uint64, both ends included."""
    return (i << 64) // partitions, ((i + 1) << 64) // partitions - 1


class _Task:
    """A DuckDB cursor for one task: ``memory_mb`` limit, a spill folder of its own (removed after),
    DuckDB threads = the CPUs Ray gave the task, and ``kp_scan`` over every signature file with
    (is_ref, doc, id, rank, exact_hash, minhash, bands); references minus the excluded ranks."""

    def __init__(self, job: DedupJob, scan: bool = True):
        self.job, self.scan = job, scan

    def __enter__(self) -> duckdb.DuckDBPyConnection:
        job = self.job
        self.con = job.connect() if job.connect is not None else duckdb.connect()
        # DuckDB creates (and may touch again while it shuts down) only the last level: a folder
        # inside one of our own, so removing ours leaves nothing behind
        self.spill = tempfile.mkdtemp(prefix="kurate-dedup-")
        self.con.execute("SET temp_directory = ?", [os.path.join(self.spill, "spill")])
        if job.memory_mb:
            self.con.execute(f"SET memory_limit = '{int(job.memory_mb)}MB'")
        threads = _assigned_cpus()
        if threads:
            self.con.execute(f"SET threads = {threads}")
        self.con.execute("SET preserve_insertion_order = false")
        cur = self.cur = self.con.cursor()
        if self.scan:
            try:
                _register_scan(cur, job)
            except BaseException:
                self.__exit__()
                raise
        return cur

    def __exit__(self, *exc) -> None:
        self.cur.close()
        self.con.close()
        shutil.rmtree(self.spill, ignore_errors=True)


def _assigned_cpus() -> int | None:
    """The CPUs of the Ray task this runs in (whole ones, at least one), or None outside Ray tasks."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return None
    try:
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
    except AssertionError:  # "only available when the process is a worker": the driver
        return None
    return max(1, int(cpus)) if cpus else None


def _register_scan(cur: duckdb.DuckDBPyConnection, job: DedupJob) -> None:
    is_ref, names, srcs = zip(*job.files)
    cur.register("kp_files", pa.table({"is_ref": list(is_ref), "filename": list(names), "src": list(srcs)}))
    parts = []
    for ref, files in ((False, job.new), (True, job.ref)):
        if not files:
            continue
        name = "kp_ref" if ref else "kp_new"
        cur.register(name, cur.read_parquet(list(files), filename=True, file_row_number=True))
        sql = (f"SELECT f.is_ref, (f.src << {_SRC_SHIFT}) | s.file_row_number AS doc, s.id, s.rank, s.exact_hash, "
               f"s.minhash, s.bands FROM {name} s JOIN kp_files f ON f.filename = s.filename AND f.is_ref = {ref}")
        if ref and job.exclude:
            cur.register("kp_dropped", cur.read_parquet(list(job.exclude)).select("rank AS dropped_rank"))
            sql += " ANTI JOIN kp_dropped x ON s.rank = x.dropped_rank"
        parts.append(sql)
    cur.execute(f"CREATE TEMP VIEW kp_scan AS {' UNION ALL '.join(parts)}")


def _write(job: DedupJob, name: str, reader: pa.RecordBatchReader) -> int:
    return _write_batches(job, name, reader.schema, reader)


def _write_batches(job: DedupJob, name: str, schema: pa.Schema, batches) -> int:
    """Stream ``batches`` into ``<scratch>/<name>.parquet`` (replacing it); the number of rows."""
    rows = 0
    with job.fs.open(job.path(name), "wb") as handle, pq.ParquetWriter(handle, schema) as writer:
        for batch in batches:
            if batch.num_rows:
                writer.write_batch(batch)
                rows += batch.num_rows
    return rows
