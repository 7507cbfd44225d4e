"""Copy a committed release version to any fsspec URL, for other trainers.

    export_release(root, "default", "latest", "s3://bucket/kurate/default", "parquet")

``parquet`` copies the Hugging Face layout as it is (``data/*.parquet``, ``README.md``, ``images/``,
``release.json``); ``jsonl`` writes one JSON object per document per line, one
``data/<split>-NNNNN-of-NNNNN.jsonl`` per Parquet file, beside the same card.

The target opens through ``storage.fs.filesystem`` with the config's ``storage_options`` (credential
references resolved there, README "Credentials"). It must be empty or absent: exporting over an
earlier export would leave files of two versions side by side, which a reader of ``data/*`` mixes.
"""

from __future__ import annotations

import json
from typing import Literal

import pyarrow.parquet as pq

from kurate.errors import PreconditionError
from kurate.release.publish import resolve
from kurate.storage.fs import StorageOptions, filesystem, join
from kurate.storage.shards import ShardStore

CARD_FILES = ("README.md", "release.json", "images/scores.png")


def export_release(root: str, name: str, version: int | str, to: str, fmt: Literal["parquet", "jsonl"] = "parquet",
                   storage_options: StorageOptions | None = None) -> dict:
    """Write the version under ``to`` (empty or absent); returns {"name", "version", "files", "documents"}."""
    store = ShardStore(root, storage_options)
    manifest = resolve(store, name, version)
    base = manifest.counts["path"]
    target, to_path = filesystem(to, storage_options)
    if target.exists(to_path) and target.find(to_path):
        raise PreconditionError(f"export target {to} is not empty",
                                "export into an empty or new folder (remove the earlier export first): files of two "
                                "versions side by side would be read as one dataset")
    target.makedirs(join(to_path, "data"), exist_ok=True)
    written = []
    for extra in CARD_FILES:
        source = join(store.path, base, extra)
        if store.fs.exists(source):
            if "/" in extra:
                target.makedirs(join(to_path, extra.rsplit("/", 1)[0]), exist_ok=True)
            target.pipe_file(join(to_path, extra), store.fs.cat_file(source))
            written.append(extra)
    documents = 0
    for split, files in sorted(manifest.counts["files"].items()):
        for rel in files:
            filename = rel.rsplit("/", 1)[1]
            with store.fs.open(join(store.path, rel), "rb") as handle:
                if fmt == "parquet":
                    target.pipe_file(join(to_path, "data", filename), handle.read())
                    written.append(f"data/{filename}")
                    continue
                table = pq.read_table(handle)
            out = f"data/{filename.removesuffix('.parquet')}.jsonl"
            with target.open(join(to_path, out), "w", encoding="utf-8") as sink:
                for row in table.to_pylist():
                    sink.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
            documents += table.num_rows
            written.append(out)
    if fmt == "parquet":
        documents = manifest.counts["documents"]  # the commit record's row count: no file reopened
    return {"name": name, "version": manifest.counts["version"], "files": written, "documents": documents}
