"""Copy a committed release version to any fsspec URL, for other trainers.

    export_release(root, "default", "latest", "s3://bucket/kurate/default", "parquet")

``parquet`` copies the Hugging Face layout as it is (``data/*.parquet``, ``README.md``, ``images/``,
``release.json``); ``jsonl`` writes one JSON object per document per line, one
``data/<split>-NNNNN-of-NNNNN.jsonl`` per Parquet file, beside the same card.
"""

from __future__ import annotations

import json
from typing import Literal

import fsspec
import pyarrow.parquet as pq

from kurate.release.publish import resolve
from kurate.storage.fs import StorageOptions
from kurate.storage.shards import ShardStore


def export_release(root: str, name: str, version: int | str, to: str, fmt: Literal["parquet", "jsonl"] = "parquet",
                   storage_options: StorageOptions | None = None) -> dict:
    """Write the version under ``to``; returns {"name", "version", "files", "documents"}."""
    store = ShardStore(root, storage_options)
    manifest = resolve(store, name, version)
    base = manifest.counts["path"]
    protocol = to.split("://", 1)[0] if "://" in to else "file"
    target, to_path = fsspec.core.url_to_fs(to, **(storage_options or {}).get(protocol, {}))
    target.makedirs(to_path, exist_ok=True)
    written, documents = [], 0
    for extra in ("README.md", "release.json", "images/scores.png"):
        source = f"{store.path}/{base}/{extra}"
        if store.fs.exists(source):
            target.makedirs(f"{to_path}/{extra.rsplit('/', 1)[0]}" if "/" in extra else to_path, exist_ok=True)
            target.pipe_file(f"{to_path}/{extra}", store.fs.cat_file(source))
            written.append(extra)
    target.makedirs(f"{to_path}/data", exist_ok=True)
    for split, files in sorted(manifest.counts["files"].items()):
        for rel in files:
            filename = rel.rsplit("/", 1)[1]
            with store.fs.open(f"{store.path}/{rel}", "rb") as handle:
                if fmt == "parquet":
                    target.pipe_file(f"{to_path}/data/{filename}", handle.read())
                    documents += pq.ParquetFile(store.fs.open(f"{store.path}/{rel}", "rb")).metadata.num_rows
                    written.append(f"data/{filename}")
                    continue
                table = pq.read_table(handle)
            out = f"data/{filename.removesuffix('.parquet')}.jsonl"
            with target.open(f"{to_path}/{out}", "w", encoding="utf-8") as sink:
                for row in table.to_pylist():
                    sink.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
            documents += table.num_rows
            written.append(out)
    return {"name": name, "version": manifest.counts["version"], "files": written, "documents": documents}
