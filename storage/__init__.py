"""Storage: Arrow schemas, fsspec roots, the exactly-once shard commit protocol and the DuckDB catalog.

Nothing here imports flows/, tasks/, annotators/ or models/.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    KURATE_VERSION = version("kurate")
except PackageNotFoundError:  # running from a source tree that was never installed
    KURATE_VERSION = "0.0.0+source"
