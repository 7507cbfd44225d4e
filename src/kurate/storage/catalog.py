"""The DuckDB catalog: one view per dataset over the committed shards of a root.

Views are rebuilt from the commit records every time a catalog is opened, so they never show a
shard before its commit, and they name the files of the root as it is now (commit records hold
paths relative to the root): ``kurate query`` on a moved or copied root reads that root's files.

For a local root the same views are also stored in ``<root>/catalog.duckdb`` so the DuckDB CLI or
any client can open it directly. Those views name files relative to the root, so the file moves
with the root. DuckDB resolves a relative path against the current directory, then against the
``file_search_path`` setting (a view cannot carry its own base directory: a table function takes
literals only), so open it from the root (``cd runs/demo && duckdb catalog.duckdb``) or tell
DuckDB where the root is (``SET file_search_path = 'runs/demo'``, or
``duckdb.connect(path).execute("SET file_search_path = ?", [root])`` in Python).

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


def _view_sql(dataset: str, files: list[str], con: duckdb.DuckDBPyConnection) -> str:
    if not files:
        return f'CREATE OR REPLACE VIEW "{dataset}" AS {_empty_select(DATASETS[dataset], con)}'
    listed = ", ".join(_sql_string(f) for f in files)
    return f'CREATE OR REPLACE VIEW "{dataset}" AS SELECT * FROM read_parquet([{listed}], union_by_name=true)'


class Catalog:
    """Views over the committed shards of one root."""

    def __init__(self, root: str, storage_options: StorageOptions | None = None):
        self.store = ShardStore(root, storage_options)

    @property
    def is_local(self) -> bool:
        return isinstance(self.store.fs, LocalFileSystem)

    def _files(self, relative: bool = False) -> dict[str, list[str]]:
        """Committed files per dataset: full URLs, or paths relative to the root (for catalog.duckdb)."""
        files: dict[str, list[str]] = {d: [] for d in DATASETS}
        for manifest in self.store.current_manifests():
            for out in manifest.outputs:
                files.setdefault(out.dataset, []).append(out.path if relative else self.store.url(out.path))
        return files

    def connect(self) -> duckdb.DuckDBPyConnection:
        """An in-memory connection with a fresh view per dataset, file access limited to the root."""
        con = duckdb.connect()
        if not self.is_local:
            con.register_filesystem(self.store.fs)
        for dataset, files in self._files().items():
            con.execute(_view_sql(dataset, files, con))
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
                for dataset, files in self._files(relative=True).items():
                    con.execute(_view_sql(dataset, files, con))
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

