"""The DuckDB catalog: one view per dataset over the committed shards of a root.

A view shows the files that the *current* commit records name (the latest generation per stage and
input), read from the root's compacted snapshot of the commit records (storage/snapshot.py): opening
the catalog lists the records' names, reads one snapshot file per stage and opens only the records
committed since that snapshot, then folds them into a new snapshot (bench/catalog_scale.py: open
and plan grow ~19x from 1k to 100k units, where reading every record grew superlinearly). A view
never shows a unit before its commit, and a unit committed while a query runs is either wholly in
it or not at all. In the connection that
``connect``/``query`` return, each view reads its file list from a DuckDB variable
(``getvariable('kurate_files_<dataset>')``) set from the snapshot, not from SQL text listing every
file; the paths are the root's as it is now (commit records hold paths relative to the root), so
``kurate query`` on a moved or copied root reads that root's files.

For a local root the same views are also stored in ``<root>/catalog.duckdb`` so the DuckDB CLI or
any client can open it directly. A stored view cannot read a variable, so those views list their
files (relative to the root: the file moves with the root); they are rewritten by ``refresh_file``,
which stages call after they commit. DuckDB resolves a relative path against the current
directory, then against the ``file_search_path`` setting (a view cannot carry its own base
directory: a table function takes literals only), so open it from the root (``cd runs/demo &&
duckdb catalog.duckdb``) or tell DuckDB where the root is (``SET file_search_path = 'runs/demo'``,
or ``duckdb.connect(path).execute("SET file_search_path = ?", [root])`` in Python).

Files of one dataset share a schema (the writer casts every batch to it), so a view reads them by
position; ``union_by_name`` (which opens every file's footer while planning) is used only for
datasets whose schema varies per run (``scores``: one column per annotator) or whose files were
written by more than one kurate version.

``query`` runs user SQL read-only: only SELECT/EXPLAIN statements are accepted, and DuckDB's file
access is locked to the root, so ``COPY … TO``, ``ATTACH``, ``read_csv('/etc/passwd')`` and friends
are refused with a clear error.
"""

from __future__ import annotations

import os
import warnings

import duckdb
import pyarrow as pa
from fsspec.implementations.local import LocalFileSystem

from kurate.storage.fs import StorageOptions
from kurate.storage.schemas import DATASETS
from kurate.storage.shards import ShardStore
from kurate.storage.snapshot import current_files, records

FILE_COLUMNS = ["current", "kurate_version", "outputs"]  # what the views need from the snapshot
WIDE_DATASETS = {"scores"}  # written with a schema per run (one column per annotator): read by name

# Files per dataset of the current commit records (snapshot.current_files), in (stage, unit) order,
# with the number of kurate versions that wrote them.
CURRENT_FILES = """
SELECT dataset, list($prefix || path ORDER BY i) AS files, count(DISTINCT kurate_version) AS versions
FROM _kurate_files GROUP BY dataset ORDER BY dataset
"""

CATALOG_FILE = "catalog.duckdb"
READ_ONLY_STATEMENTS = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}


class QueryRefused(ValueError):
    """The SQL would write, attach, or read outside the catalog."""


def _sql_string(value: str) -> str:
    """``value`` as a SQL string literal.

    Values travel as DuckDB parameters everywhere else (``con.execute(sql, [value])``). The one place
    they cannot is the view definitions: DuckDB refuses a prepared parameter inside CREATE VIEW, and
    the views stored in ``catalog.duckdb`` must be plain SQL that any client can run. This is the
    only SQL quoting in kurate; do not add another.
    """
    return "'" + value.replace("'", "''") + "'"


def _empty_select(schema: pa.Schema, con: duckdb.DuckDBPyConnection) -> str:
    """A typed, empty SELECT for a dataset with no committed shards yet (so queries still bind)."""
    # DuckDB reads float16 from Parquet (as FLOAT) but not from Arrow: describe such fields as float32
    readable = pa.schema([f.with_type(pa.list_(pa.float32())) if f.type == pa.list_(pa.float16()) else f for f in schema])
    types = con.from_arrow(readable.empty_table()).types
    columns = ", ".join(f'CAST(NULL AS {t}) AS "{f.name}"' for f, t in zip(schema, types))
    return f"SELECT {columns} WHERE false"


def _union_by_name(dataset: str, versions: int) -> bool:
    return dataset in WIDE_DATASETS or versions > 1


def _view_sql(dataset: str, files: list[str], con: duckdb.DuckDBPyConnection, by_name: bool = True) -> str:
    """A view listing its files in SQL (for ``catalog.duckdb``, which any client opens)."""
    if not files:
        return f'CREATE OR REPLACE VIEW "{dataset}" AS {_empty_select(DATASETS[dataset], con)}'
    listed = ", ".join(_sql_string(f) for f in files)
    return f'CREATE OR REPLACE VIEW "{dataset}" AS SELECT * FROM read_parquet([{listed}], union_by_name={str(by_name).lower()})'


def _variable_view_sql(dataset: str, by_name: bool) -> str:
    """A view reading its file list from the connection's variable ``kurate_files_<dataset>``."""
    return (f'CREATE OR REPLACE VIEW "{dataset}" AS SELECT * FROM '
            f"read_parquet(getvariable('kurate_files_{dataset}'), union_by_name={str(by_name).lower()})")


class Catalog:
    """Views over the committed shards of one root."""

    def __init__(self, root: str, storage_options: StorageOptions | None = None):
        self.store = ShardStore(root, storage_options)

    @property
    def is_local(self) -> bool:
        return isinstance(self.store.fs, LocalFileSystem)

    def current_files(self, con: duckdb.DuckDBPyConnection, relative: bool = False) -> dict[str, tuple[list[str], bool]]:
        """Files of the current commit records per dataset (full URLs, or paths relative to the root
        for catalog.duckdb) and whether the view reads them by name; folds new records into the snapshot."""
        con.register("_kurate_files", current_files(records(self.store, fold=True, columns=FILE_COLUMNS)))
        try:
            prefix = "" if relative else self.store.url().rstrip("/") + "/"
            rows = con.execute(CURRENT_FILES, {"prefix": prefix}).fetchall()
        finally:
            con.unregister("_kurate_files")
        found: dict[str, tuple[list[str], bool]] = {d: ([], False) for d in DATASETS}
        found.update({dataset: (files, _union_by_name(dataset, versions)) for dataset, files, versions in rows})
        return found

    def _set_views(self, con: duckdb.DuckDBPyConnection) -> None:
        """One view per dataset reading ``getvariable('kurate_files_<dataset>')``, the variables set
        inside DuckDB from the snapshot (no file list passes through Python or SQL text)."""
        con.register("_kurate_files", current_files(records(self.store, fold=True, columns=FILE_COLUMNS)))
        try:
            con.execute(f"CREATE TEMP TABLE _kurate_current AS {CURRENT_FILES}", {"prefix": self.store.url().rstrip("/") + "/"})
        finally:
            con.unregister("_kurate_files")
        found = dict(con.execute("SELECT dataset, versions FROM _kurate_current").fetchall())
        for dataset in {**{d: 0 for d in DATASETS}, **found}:
            if dataset in found:
                con.execute(f'SET VARIABLE "kurate_files_{dataset}" = (SELECT files FROM _kurate_current WHERE dataset = $d)', {"d": dataset})
                con.execute(_variable_view_sql(dataset, _union_by_name(dataset, found[dataset])))
            else:
                con.execute(_view_sql(dataset, [], con))
        con.execute("DROP TABLE _kurate_current")

    def connect(self) -> duckdb.DuckDBPyConnection:
        """An in-memory connection with a fresh view per dataset, file access limited to the root."""
        con = duckdb.connect()
        if not self.is_local:
            con.register_filesystem(self.store.fs)
        self._set_views(con)
        root_dir = self.store.url()
        con.execute("SET allowed_directories = ?", [[root_dir.rstrip("/") + "/"]])
        con.execute("SET enable_external_access=false")
        con.execute("SET lock_configuration=true")
        return con

    def refresh_file(self) -> str | None:
        """Write the views into ``<root>/catalog.duckdb`` (local roots only); returns its path.

        The views name files relative to the root, so the file keeps working when the root is
        moved or copied (see the module docstring for how a client resolves them)."""
        if not self.is_local:
            return None
        path = os.path.join(self.store.path, CATALOG_FILE)
        os.makedirs(self.store.path, exist_ok=True)
        try:
            with duckdb.connect(path) as con:
                con.execute("SET file_search_path = ?", [self.store.url()])  # so the views bind from any cwd
                for dataset, (files, by_name) in self.current_files(con, relative=True).items():
                    con.execute(_view_sql(dataset, files, con, by_name))
        except duckdb.IOException as exc:
            # Another process (a user's DuckDB shell) holds the file; `kurate query` does not need it.
            warnings.warn(f"{path} not refreshed: {exc}", stacklevel=2)
            return None
        return path

    def query(self, sql: str, parameters: list | dict | None = None) -> pa.Table:
        """Run read-only SQL over the catalog and return the result of the last statement.

        Pass values as ``parameters`` (``?`` or ``$name`` in ``sql``), never formatted into ``sql``;
        a query with parameters must be a single statement.
        """
        con = self.connect()
        try:
            try:
                statements = con.extract_statements(sql)
            except duckdb.Error as exc:
                raise QueryRefused(f"cannot parse query: {exc}") from None
            if not statements:
                raise QueryRefused("empty query")
            if parameters is not None and len(statements) > 1:
                raise QueryRefused(f"parameters need a single statement, got {len(statements)}")
            for statement in statements:
                if statement.type not in READ_ONLY_STATEMENTS:
                    kind = statement.type.name
                    raise QueryRefused(
                        f"refused {kind} statement: `kurate query` is read-only and accepts SELECT/EXPLAIN only"
                    )
            result = None
            for statement in statements:
                try:
                    result = con.execute(statement.query, parameters).fetch_arrow_table()
                except duckdb.PermissionException as exc:
                    raise QueryRefused(f"the query reads or writes files outside the catalog ({exc})") from None
            return result
        finally:
            con.close()

