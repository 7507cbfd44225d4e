"""Release flow: the pipeline's product — a named, versioned, JQL-filtered mix of committed documents.

    kurate release --root runs/demo [--name default]

1. build (release/publish.py): each source's filter as a catalog query (curated joined with the
   JQL ``scores``; synthetic by prompt type), dedup across sources, quotas, a seeded order, and
   ``releases/<name>/v<k>/`` in the Hugging Face Parquet layout with its dataset card, committed
   with the ``releases`` and ``release_documents`` datasets; the same config and inputs give the
   version that exists already;
2. publish: a new version emits the Prefect event ``kurate.release.published`` (resource
   ``kurate.release.<name>``, payload name, version, previous_version, root), which the served train
   deployment's trigger answers (flows/deployments.py) — and, from v2 on (the resource then carries
   ``kurate.release.previous_version``), the continual deployment's; the card's summary becomes a
   markdown artifact.
"""

from __future__ import annotations

import os
import sys

from prefect import flow, task
from prefect.events import emit_event

from kurate.flows.artifacts import publish_markdown
from kurate.flows.config import PipelineConfig, load_config
from kurate.release.publish import ReleaseResult, build_release

PUBLISHED = "kurate.release.published"


def root_label(root: str) -> str:
    """The root as events name it: absolute for local roots, so a trigger matches from any directory."""
    return root if "://" in root else os.path.abspath(root)


def release_resource(name: str) -> str:
    return f"kurate.release.{name}"


PREVIOUS_LABEL = "kurate.release.previous_version"  # on the resource of v ≥ 2 only: the continual trigger matches it


def emit_published(root: str, result: ReleaseResult) -> None:
    previous = result.version - 1 if result.version > 1 else None  # versions are numbered 1, 2, … without gaps
    emit_event(event=PUBLISHED,
               resource={"prefect.resource.id": release_resource(result.name), "kurate.root": root_label(root),
                         "kurate.release.version": str(result.version),
                         **({PREVIOUS_LABEL: str(previous)} if previous else {})},
               payload={"name": result.name, "version": result.version, "previous_version": previous,
                        "root": root_label(root), "documents": result.counts.get("documents"),
                        "content_hash": result.content_hash})


@task(name="build-release")
def build(config: PipelineConfig) -> ReleaseResult:
    return build_release(config.root, config.release, config.storage_options)


@flow(name="release", log_prints=True)
def release(config: PipelineConfig) -> dict:
    """Build the configured release (a new version only when its config or inputs changed) and publish it."""
    if config.ray.submit:  # run this stage as a Ray Job on ray.job_address and follow it (flows/submit.py)
        from kurate.flows.submit import submit_flow

        return submit_flow(config, "release")
    result = build(config)
    counts = result.counts
    if result.created:
        emit_published(config.root, result)
        print(f"[release] {result.ref}: {counts['documents']} documents, {counts['words']} words → {result.path}")
    else:
        print(f"[release] {result.ref} already holds this config and these inputs (content hash {result.content_hash})")
    lines = [f"# release {result.ref}", "", f"{counts['documents']} documents, {counts['words']} words in `{result.path}`.", "",
             "| step | documents |", "|---|---:|"] + [f"| {r['step']} | {r['documents']} |" for r in counts["funnel"]]
    publish_markdown(config.root, f"release-{result.name}", "\n".join(lines), f"release {result.ref}: card summary")
    return {"name": result.name, "version": result.version, "path": result.path, "created": result.created,
            "documents": counts["documents"], "words": counts["words"], "content_hash": result.content_hash}


if __name__ == "__main__":
    release(load_config(sys.argv[1], sys.argv[2:]))
