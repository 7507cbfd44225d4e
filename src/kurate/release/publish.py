"""Write a release version: ``<root>/releases/<name>/v<k>/`` in the Hugging Face Parquet layout,
its card, and one commit record (``ShardStore.run_unit``, docs/ARCHITECTURE.md "Exactly once").

    result = build_release(root, ReleaseConfig(name="default"))
    result.version, result.created       # 1, True; a second call with the same inputs: 1, False

Versioning: the *content hash* covers the release config's content fields and the commit records
of every dataset the release reads (unit names and row counts of curated, scores, synthetic …).
A committed version with the same name and hash is the answer (nothing is written); otherwise
the next version number is taken. The version folder is written under a temporary name, moved
into place, and only then committed, with the ``releases`` (one row) and ``release_documents``
(one row per document) datasets the catalog serves — so a killed run leaves no visible version,
and a committed one is never rewritten.

One builder per release name and root: the version number is allocated and committed under the
root lock ``_locks/release-<name>.json`` (``storage.shards.RunLock``); a second build waits for it,
then sees the first one's commit (the same inputs: that version; others: the next number).
A release whose sources keep no document is an error naming them, not an empty version.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kurate.errors import KurateError, PreconditionError
from kurate.release.card import render_card, score_histogram_png
from kurate.release.config import ReleaseConfig
from kurate.release.mix import assemble, shards
from kurate.release.select import has_rows, score_heads, select_source
from kurate.storage.catalog import Catalog
from kurate.storage.schemas import RELEASE_DOCUMENTS, RELEASES
from kurate.storage.fs import StorageOptions, join
from kurate.storage.shards import Manifest, RunLock, ShardStore, UnitKey, config_hash

STAGE = "release"
LOCK_WAIT_S = 600.0  # a concurrent build of the same release is waited for (it is minutes at most), then reported


@dataclass(frozen=True)
class ReleaseResult:
    name: str
    version: int
    path: str  # relative to the root: releases/<name>/v<k>
    content_hash: str
    created: bool  # False: an existing version had this content hash
    counts: dict

    @property
    def ref(self) -> str:
        return f"{self.name}@v{self.version}"


def version_path(name: str, version: int) -> str:
    return f"releases/{name}/v{version}"


def committed_versions(store: ShardStore, name: str) -> list[Manifest]:
    """The commit records of a release's versions, oldest first."""
    found = [m for m in store.manifests(STAGE) if m.counts.get("name") == name]
    return sorted(found, key=lambda m: m.counts["version"])


def resolve(store: ShardStore, name: str, version: int | str = "latest") -> Manifest:
    """The commit record of ``name`` at ``version`` (an int, ``vK``, or ``latest``)."""
    versions = committed_versions(store, name)
    if not versions:
        raise PreconditionError(f"no release {name!r} under {store.root}", "run `kurate release` first")
    if version in (None, "latest"):
        return versions[-1]
    wanted = int(str(version).lstrip("v"))
    for manifest in versions:
        if manifest.counts["version"] == wanted:
            return manifest
    raise PreconditionError(f"release {name!r} has no version {wanted} (versions: {[m.counts['version'] for m in versions]})",
                            "name an existing version or `latest`")


def release_files(store: ShardStore, manifest: Manifest, split: str) -> list[str]:
    """Full URLs of a committed version's Parquet files of one split."""
    return [store.url(p) for p in manifest.counts["files"].get(split, [])]


def input_fingerprint(store: ShardStore, datasets: set[str]) -> list[list]:
    """(unit, dataset, rows) of every current commit that holds one of ``datasets``."""
    return sorted([m.unit, o.dataset, o.rows] for m in store.current_manifests() for o in m.outputs if o.dataset in datasets)


def _funnel(catalog: Catalog, table: pa.Table) -> list[dict]:
    def count(sql: str) -> int:
        return int(catalog.query(sql).column(0)[0].as_py() or 0)

    curated = count("select count(*) from curated")
    rows = [{"step": "crawl records read", "documents": curated + count("select count(*) from rejects where stage <> 'synthesize'")},
            {"step": "curated (after filters and dedup)", "documents": curated}]
    if has_rows(catalog, "scores"):
        rows.append({"step": "kept by the JQL rule", "documents": count("select count(*) from scores where kept")})
    sources = table.column("source").to_pylist()
    rows.append({"step": "curated in the release", "documents": sources.count("curated")})
    if has_rows(catalog, "synthetic"):
        rows.append({"step": "synthetic rewrites accepted", "documents": count("select count(*) from synthetic")})
        rows.append({"step": "synthetic in the release", "documents": sources.count("synthetic")})
    rows.append({"step": "release documents", "documents": table.num_rows})
    return rows


def describe_source(source) -> str:
    """A source as the config gives it: its dataset and the fields set (the filter and the quota)."""
    given = source.model_dump(mode="json", exclude_defaults=True, exclude={"dataset"})
    return source.dataset + (f" {json.dumps(given, sort_keys=True)}" if given else "")


def build_release(root: str, config: ReleaseConfig, storage_options: StorageOptions | None = None,
                  lock_wait_s: float = LOCK_WAIT_S) -> ReleaseResult:
    """Build (or find) the release version for this config and the root's committed inputs."""
    store = ShardStore(root, storage_options)
    read = {s.dataset for s in config.sources} | {"scores"}
    content_hash = config_hash({"release": config.content_key(), "inputs": input_fingerprint(store, read)})
    with RunLock(store, f"{STAGE}-{config.name}", wait_s=lock_wait_s):
        # the versions are read under the lock: a build that finished meanwhile is seen, its number never reused
        return _build_locked(store, Catalog(root, storage_options), config, content_hash)


def _build_locked(store: ShardStore, catalog: Catalog, config: ReleaseConfig, content_hash: str) -> ReleaseResult:
    versions = committed_versions(store, config.name)
    for manifest in versions:
        if manifest.config_hash == content_hash:
            return ReleaseResult(config.name, manifest.counts["version"], manifest.counts["path"], content_hash, False, manifest.counts)
    version = 1 + max((m.counts["version"] for m in versions), default=0)
    path = version_path(config.name, version)

    heads = score_heads(catalog)
    candidates = [(s, select_source(catalog, s, heads)) for s in config.sources]
    table = assemble(candidates, config.seed, config.validation_fraction)
    if table.num_rows == 0:
        selected = "; ".join(f"{describe_source(s)}: {c.num_rows} selected" for s, c in candidates)
        raise PreconditionError(f"release {config.name!r} would hold no documents: its sources keep none ({selected})",
                                "widen release.sources (languages, min_scores, jql, prompt_types, fraction, quotas), "
                                "or run the stages that commit their datasets first")
    parts = shards(table, config.shard_documents)
    key = UnitKey(STAGE, path, content_hash)

    def write(unit) -> dict:
        fs = store.fs
        tmp = join(store.path, "releases", config.name, f".{path.rsplit('/', 1)[1]}.tmp-{uuid.uuid4().hex[:8]}")
        files: dict[str, list[str]] = {}
        doc_rows = []
        for split, tables in parts.items():
            for i, part in enumerate(tables):
                name = f"{split}-{i:05d}-of-{len(tables):05d}.parquet"
                fs.makedirs(join(tmp, "data"), exist_ok=True)
                with fs.open(join(tmp, "data", name), "wb") as handle:
                    pq.write_table(part, handle, compression="zstd")
                rel = f"{path}/data/{name}"
                files.setdefault(split, []).append(rel)
                doc_rows.append(pa.table({
                    "name": pa.array([config.name] * part.num_rows, pa.string()),
                    "version": pa.array([version] * part.num_rows, pa.int32()),
                    "id": part.column("id"), "source": part.column("source"),
                    "split": pa.array([split] * part.num_rows, pa.string()),
                    "url": part.column("url"), "file": pa.array([rel] * part.num_rows, pa.string())}))
        scored = catalog.query("select * from scores") if heads else None
        png = score_histogram_png(table.filter(pc.equal(table.column("source"), "curated")), scored) if heads else None
        if png is not None:
            fs.makedirs(join(tmp, "images"), exist_ok=True)
            fs.pipe_file(join(tmp, "images", "scores.png"), png)
        funnel = _funnel(catalog, table)
        card = render_card(config.name, version, table, funnel, files, config.license, config.license_note, content_hash, png is not None)
        fs.pipe_file(join(tmp, "README.md"), card.encode())
        created = time.time()
        counts = {"name": config.name, "version": version, "path": path, "documents": table.num_rows,
                  "words": int(sum(table.column("words").to_pylist())) if table.num_rows else 0,
                  "files": files, "funnel": funnel,
                  "splits": {s: sum(t.num_rows for t in ts) for s, ts in parts.items()},
                  "config": config.model_dump(mode="json"), "created": created}
        fs.pipe_file(join(tmp, "release.json"), json.dumps(counts, indent=1, sort_keys=True).encode())
        final = join(store.path, path)
        if any(m.counts.get("path") == path for m in committed_versions(store, config.name)):
            fs.rm(tmp, recursive=True)  # only our own temporary folder: a committed version is never touched
            raise KurateError(f"release {config.name}@v{version} was committed by another build meanwhile",
                              "run the release again: it takes the next version (or finds this one)")
        if fs.exists(final):  # an uncommitted folder a killed run left (no commit record names it)
            fs.rm(final, recursive=True)
        fs.mv(tmp, final, recursive=True)
        for table_rows in doc_rows:
            unit.write("release_documents", table_rows)
        unit.write("releases", pa.Table.from_pylist([{
            "name": config.name, "version": version, "created": int(created), "content_hash": content_hash,
            "documents": counts["documents"], "words": counts["words"], "train_documents": counts["splits"].get("train", 0),
            "validation_documents": counts["splits"].get("validation", 0), "path": path,
            "config": json.dumps(counts["config"], sort_keys=True)}], schema=RELEASES))
        return counts

    run = store.run_unit(key, ["releases", "release_documents"], write,
                         schemas={"releases": RELEASES, "release_documents": RELEASE_DOCUMENTS})
    return ReleaseResult(config.name, version, path, content_hash, not run.skipped, run.counts)
