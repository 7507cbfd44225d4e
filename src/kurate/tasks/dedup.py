"""Cross-shard exact and near-duplicate detection with DuckDB over signature Parquet files.

Each shard's documents are reduced to one row of ``SIGNATURE_SCHEMA`` (``signature_table``); the
run-wide join (``find_duplicates``) happens in DuckDB, which streams the Parquet files and spills
to disk, so nothing here holds all documents in Python. Python only sees the candidate pairs.

Who wins: reference documents (already curated) always, and are never reported; among new
documents the lowest ``rank``, then the lowest ``id``. DuckDB numbers all documents once in that
order (``ord``), so "better" is simply "smaller ord" everywhere below.

1. **Exact.** Documents with the same ``exact_hash`` (of the normalised text): every new one but the
   group's best is ``kind="exact"``, ``duplicate_of`` the best, similarity 1.0. Their losers take
   no part in step 2.
2. **Candidates (LSH).** Bands are unnested with their index; documents sharing a (band, key)
   bucket are candidates. A bucket of k documents would give k·(k−1)/2 pairs (boilerplate can fill
   one with millions), so each member is linked only to the bucket's best member (a star) and to
   its predecessor in ord order (a chain): at most 2(k−1) pairs, linear in the bucket. The chain
   keeps a component connected when the star's centre is a false positive of the band. Pairs of
   two reference documents are dropped: refs are never reported and already win.
3. **Verification.** Each candidate pair's Jaccard estimate (fraction of equal MinHash values) is
   computed in numpy over Arrow batches; pairs below ``threshold`` are dropped.
4. **Components.** Union-find over the verified pairs only. Each component's winner is its
   smallest ord (a reference document if there is one); every other new document is
   ``kind="near"`` with ``duplicate_of`` = the winner and ``similarity`` = the estimated Jaccard
   between the document and the winner. That estimate can be below ``threshold`` when the document
   joined the component through a chain (A≈B≈C with A, C further apart); the pair that linked it
   was verified.

An exact duplicate points at the winner of its exact group, which may itself be reported as a
near duplicate of a third document. A document given both as new and as reference (the same shard
twice) is an exact duplicate of its reference copy, under the same id. The documents to keep are
the new ones not in the result.

Memory: DuckDB holds per document (ord, id, exact hash, file, row) and the band keys of the exact
survivors, MinHash values only of candidate-pair members; it spills to its temp directory when
these outgrow RAM. Python holds the candidate pairs of one Arrow batch and the verified pairs.
That is one process whose memory grows with the run (~1.3 GB per million documents): curate runs
``tasks/dedup_partitioned.find_duplicates_partitioned`` instead, the same decisions split into
tasks by hash range with memory bounded per task; this function stays as the single-process
reference its tests and ``bench/dedup_scale.py`` compare against.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import duckdb
import numpy as np
import pyarrow as pa

from kurate.storage.schemas import DUPLICATES, SIGNATURES
from kurate.tasks.minhash import MinHasher, exact_hash

SIGNATURE_SCHEMA: pa.Schema = SIGNATURES  # id, rank (lower wins), exact_hash uint64, minhash list<uint32>, bands list<uint64>
DUPLICATE_SCHEMA: pa.Schema = DUPLICATES  # id, duplicate_of, kind ("exact" | "near"), similarity float64

_BATCH_PAIRS = 65_536  # candidate pairs verified per Arrow batch


def signature_table(ids: Sequence[str], ranks: Sequence[str], texts: Sequence[str], hasher: MinHasher) -> pa.Table:
    """One ``SIGNATURE_SCHEMA`` row per document: exact hash, MinHash signature and LSH band keys."""
    if not len(ids) == len(ranks) == len(texts):
        raise ValueError(f"ids, ranks and texts differ in length: {len(ids)}, {len(ranks)}, {len(texts)}")
    signatures = hasher.signatures(texts)
    bands = hasher.band_keys(signatures)

    def lists(values: np.ndarray, value_type: pa.DataType) -> pa.Array:
        n, width = values.shape
        offsets = pa.array(np.arange(0, n * width + 1, width, dtype=np.int32))
        return pa.ListArray.from_arrays(offsets, pa.array(values.reshape(-1), value_type))

    hashes = pa.array(np.array([exact_hash(t) for t in texts], dtype=np.uint64), pa.uint64())
    columns = [pa.array(ids, pa.string()), pa.array(ranks, pa.string()), hashes,
               lists(signatures, pa.uint32()), lists(bands, pa.uint64())]
    return pa.Table.from_arrays(columns, schema=SIGNATURE_SCHEMA)


def find_duplicates(
    new_files: Sequence[str],
    reference_files: Sequence[str] = (),
    *,
    reference_exclude: Sequence[str] = (),
    threshold: float = 0.8,
    con: duckdb.DuckDBPyConnection | None = None,
    exact: bool = True,
    fuzzy: bool = True,
) -> pa.Table:
    """Duplicates among ``new_files`` and against ``reference_files`` (``DUPLICATE_SCHEMA``, sorted by id).

    Both are Parquet files in ``SIGNATURE_SCHEMA``: local paths or URLs the connection can read
    (pass ``con`` with an fsspec filesystem registered for ``s3://`` or ``memory://``). Temporary
    tables live on a cursor of ``con``, so the caller's connection is left as it was. ``exact`` and
    ``fuzzy`` switch the two steps (without the exact step, identical texts are found as near
    duplicates with similarity 1.0).
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    if not new_files or not (exact or fuzzy):
        return DUPLICATE_SCHEMA.empty_table()
    owned = con is None
    base = duckdb.connect() if owned else con
    cur = base.cursor()
    try:
        return _find(cur, list(new_files), list(reference_files), list(reference_exclude), threshold, exact, fuzzy)
    finally:
        cur.close()
        if owned:
            base.close()


def _find(cur: duckdb.DuckDBPyConnection, new: list[str], ref: list[str], exclude: list[str], threshold: float,
          exact: bool, fuzzy: bool) -> pa.Table:
    # kd_scan stays a view (each step below re-reads only the columns it needs, so MinHash values
    # are never held for all documents). SQL cannot bind a parameter inside CREATE VIEW, so the
    # view is a relation registered on the cursor (a temporary view that goes with it), which takes
    # the file lists as values: no path is ever quoted into SQL.
    scans = [(False, new)] + ([(True, ref)] if ref else [])
    relations = [
        cur.read_parquet(files, filename=True, file_row_number=True).select(
            f"{is_ref} AS is_ref, filename, file_row_number AS row, id, rank, exact_hash, minhash, bands"
        )
        for is_ref, files in scans
    ]
    if ref and exclude:
        dropped = cur.read_parquet(exclude).select("rank AS dropped_rank")
        relations[1] = relations[1].join(dropped, "rank = dropped_rank", how="anti")
    scan = relations[0] if len(relations) == 1 else relations[0].union(relations[1])
    cur.register("kd_scan", scan)
    # A small integer per file, so that later scans find their documents by (src, row).
    cur.execute(
        "CREATE TEMP TABLE kd_files AS SELECT is_ref, filename, row_number() OVER (ORDER BY is_ref DESC, filename) AS src "
        "FROM (SELECT DISTINCT is_ref, filename FROM kd_scan)"
    )
    exact_of = "min(ord) OVER (PARTITION BY exact_hash)" if exact else "ord"
    cur.execute(
        f"""
        CREATE TEMP TABLE kd_docs AS
        SELECT ord, id, rank, is_ref, src, row, {exact_of} AS exact_of FROM (
            SELECT row_number() OVER (ORDER BY s.is_ref DESC, s.rank NULLS LAST, s.id, f.src, s.row) AS ord,
                   s.id, s.rank, s.is_ref, s.exact_hash, f.src, s.row
            FROM kd_scan s JOIN kd_files f USING (is_ref, filename))
        """
    )
    n_ref = cur.execute("SELECT count(*) FROM kd_docs WHERE is_ref").fetchall()[0][0]
    cur.execute("CREATE TEMP TABLE kd_found (ord BIGINT, winner BIGINT, kind VARCHAR, similarity DOUBLE)")
    cur.execute("INSERT INTO kd_found SELECT ord, exact_of, 'exact', 1.0 FROM kd_docs WHERE NOT is_ref AND exact_of <> ord")
    if fuzzy:
        near = _near_duplicates(cur, n_ref, threshold)
        cur.register("kd_near", near)
        cur.execute("INSERT INTO kd_found SELECT ord, winner, 'near', similarity FROM kd_near")
        cur.unregister("kd_near")
    result = cur.execute(
        """
        SELECT d.id, d.rank, w.id AS duplicate_of, f.kind, f.similarity
        FROM kd_found f JOIN kd_docs d ON d.ord = f.ord JOIN kd_docs w ON w.ord = f.winner
        ORDER BY d.id, d.ord
        """
    ).fetch_record_batch().read_all()
    return result.cast(DUPLICATE_SCHEMA)


_JOIN_DOCS = "kd_scan s JOIN kd_files f USING (is_ref, filename) JOIN kd_docs d ON d.src = f.src AND d.row = s.row"


def _near_duplicates(cur: duckdb.DuckDBPyConnection, n_ref: int, threshold: float) -> pa.Table:
    """Near duplicates among the exact-dedup survivors as (ord, winner, similarity)."""
    cur.execute(
        f"""
        CREATE TEMP TABLE kd_keys AS
        SELECT d.ord, unnest(s.bands) AS key, unnest(generate_series(1, len(s.bands))) AS band
        FROM {_JOIN_DOCS} WHERE d.exact_of = d.ord
        """
    )
    # Star + chain per bucket (module docstring): linear in the bucket size, never quadratic.
    cur.execute(
        """
        CREATE TEMP TABLE kd_pairs AS
        WITH shared AS (SELECT band, key FROM kd_keys GROUP BY band, key HAVING count(*) > 1),
        members AS (SELECT k.band, k.key, k.ord FROM kd_keys k SEMI JOIN shared USING (band, key)),
        linked AS (
            SELECT ord AS b, min(ord) OVER w AS best, lag(ord) OVER (w ORDER BY ord) AS prev
            FROM members WINDOW w AS (PARTITION BY band, key))
        SELECT DISTINCT a, b FROM (
            SELECT best AS a, b FROM linked WHERE b <> best
            UNION ALL
            SELECT prev AS a, b FROM linked WHERE prev IS NOT NULL AND prev <> best)
        WHERE b > $n_ref
        """,
        {"n_ref": n_ref},
    )
    cur.execute("DROP TABLE kd_keys")
    cur.execute(
        f"""
        CREATE TEMP TABLE kd_minhash AS SELECT d.ord, s.minhash FROM {_JOIN_DOCS}
        WHERE d.ord IN (SELECT a FROM kd_pairs UNION SELECT b FROM kd_pairs)
        """
    )
    verified_a, verified_b, verified_sim = [], [], []
    for a, b, sim in _similarities(cur, "kd_pairs"):
        keep = sim >= threshold - 1e-12
        verified_a.append(a[keep])
        verified_b.append(b[keep])
        verified_sim.append(sim[keep])
    a, b, sim = (np.concatenate(x) if x else np.empty(0) for x in (verified_a, verified_b, verified_sim))
    winners = _components(a.astype(np.int64), b.astype(np.int64))

    # Similarity to the winner: known where the pair itself was verified, else estimated now.
    members = np.fromiter((m for m, w in winners.items() if m > n_ref and m != w), dtype=np.int64)
    members.sort()
    winner = np.fromiter((winners[m] for m in members), dtype=np.int64, count=len(members))
    known = dict(zip(zip(a.tolist(), b.tolist()), sim.tolist()))
    similarity = np.array([known.get(p, np.nan) for p in zip(winner.tolist(), members.tolist())], dtype=np.float64)
    missing = np.isnan(similarity)
    if missing.any():
        cur.register("kd_missing", pa.table({"a": winner[missing], "b": members[missing]}))
        found = {}
        for _, doc, doc_sim in _similarities(cur, "kd_missing"):
            found.update(zip(doc.tolist(), doc_sim.tolist()))
        cur.unregister("kd_missing")
        similarity[missing] = [found[m] for m in members[missing].tolist()]
    return pa.table({"ord": members, "winner": winner, "similarity": similarity})


def _similarities(cur: duckdb.DuckDBPyConnection, pairs: str) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(a, b, estimated Jaccard) for the pairs in table ``pairs``, in Arrow batches."""
    reader = cur.execute(
        f"SELECT p.a, p.b, x.minhash AS ma, y.minhash AS mb FROM {pairs} p "
        "JOIN kd_minhash x ON x.ord = p.a JOIN kd_minhash y ON y.ord = p.b"
    ).fetch_record_batch(_BATCH_PAIRS)
    return jaccard_batches(reader)


def jaccard_batches(batches) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(a, b, estimated Jaccard) per Arrow batch of (a, b, ma, mb): the fraction of equal MinHash values."""
    for batch in batches:
        if batch.num_rows == 0:
            continue
        ma, mb = batch.column("ma"), batch.column("mb")
        lengths = np.concatenate([ma.value_lengths().to_numpy(zero_copy_only=False),
                                  mb.value_lengths().to_numpy(zero_copy_only=False)])
        if lengths.min() != lengths.max() or lengths[0] == 0:
            raise ValueError(
                f"MinHash signatures of different lengths ({lengths.min()}..{lengths.max()}): were the signature "
                "files written with different MinHashConfigs?"
            )
        width = int(lengths[0])
        x = ma.flatten().to_numpy().reshape(-1, width)
        y = mb.flatten().to_numpy().reshape(-1, width)
        sim = np.count_nonzero(x == y, axis=1) / width
        yield batch.column("a").to_numpy(), batch.column("b").to_numpy(), sim


def _components(a: np.ndarray, b: np.ndarray) -> dict[int, int]:
    """Union-find over edges (a, b): every node → its component's smallest node."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        root = x
        while (up := parent.get(root, root)) != root:
            root = up
        while x != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    for x, y in zip(a.tolist(), b.tolist()):
        rx, ry = find(x), find(y)
        if rx != ry:
            parent[max(rx, ry)] = min(rx, ry)  # the smaller ord (the better document) stays the root
        parent.setdefault(x, x)
        parent.setdefault(y, y)
    return {x: find(x) for x in parent}
