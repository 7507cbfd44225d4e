"""fsspec paths: a root or an input can be a local path, ``s3://…``, ``memory://…`` or ``https://…``.

Storage options (endpoint, credentials) are given per protocol, e.g.
``{"s3": {"endpoint_url": "http://127.0.0.1:9000"}}``, so one config can read inputs over HTTPS and
write the root to S3.
"""

from __future__ import annotations

from typing import Any, Mapping

import fsspec
from fsspec.core import url_to_fs

from kurate.errors import InputError

StorageOptions = Mapping[str, Mapping[str, Any]]


def protocol_of(url: str) -> str:
    """The fsspec protocol of a URL ('file' for plain paths)."""
    return url.split("://", 1)[0] if "://" in url else "file"


def filesystem(url: str, storage_options: StorageOptions | None = None) -> tuple[fsspec.AbstractFileSystem, str]:
    """Return (filesystem, path inside it) for a URL, applying that protocol's options."""
    options = dict((storage_options or {}).get(protocol_of(url), {}))
    fs, path = url_to_fs(url, **options)
    return fs, path


def unstrip(fs: fsspec.AbstractFileSystem, path: str) -> str:
    """A full URL for a path of ``fs`` (fsspec strips the protocol; DuckDB and users need it back)."""
    url = fs.unstrip_protocol(path)
    return path if url.startswith("file://") else url


def join(*parts: str) -> str:
    return "/".join(p.strip("/") if i else p.rstrip("/") for i, p in enumerate(parts) if p)


def expand_inputs(patterns: list[str], storage_options: StorageOptions | None = None) -> list[str]:
    """Expand globs into a sorted, de-duplicated list of input URLs; a pattern that matches nothing is an error."""
    found: set[str] = set()
    for pattern in patterns:
        fs, path = filesystem(pattern, storage_options)
        if any(ch in path for ch in "*?["):
            matches = [m for m in fs.glob(path) if fs.isfile(m)]
        else:
            matches = [path] if fs.exists(path) else []
        if not matches:
            raise InputError(f"input {pattern!r} matches no file", "check --input / curate.inputs (a path, glob or URL that exists)")
        found.update(unstrip(fs, m) for m in matches)
    return sorted(found)
