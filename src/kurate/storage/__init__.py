"""Storage: Arrow schemas, fsspec roots, the exactly-once shard commit protocol and the DuckDB catalog.

Nothing here imports flows/, tasks/, annotators/ or models/.
"""

from kurate import __version__ as KURATE_VERSION  # noqa: N812 - written into every commit record

__all__ = ["KURATE_VERSION"]
