"""The synthesize stage's units: one group of source documents rewritten and committed exactly once.

A unit commits ``synthetic`` (accepted rewrites) and ``rejects`` (stage ``synthesize``) together
under stage ``synthesize-<name>``; ``ShardStore.run_unit`` skips a committed unit (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import time

import pyarrow as pa

from kurate.annotators.contracts import LLMBackend
from kurate.annotators.synthesis.config import SynthesizeConfig
from kurate.annotators.synthesis.generation import Rewriter
from kurate.annotators.synthesis.sources import SourceUnit, read_sources
from kurate.storage.fs import StorageOptions
from kurate.storage.schemas import REJECTS, SYNTHETIC
from kurate.storage.shards import ShardStore, UnitKey, UnitWriter


def stage_of(name: str) -> str:
    return f"synthesize-{name}"


class SynthWorker:
    """One loaded generator that rewrites unit after unit; the flow runs one per Ray actor."""

    def __init__(self, config: SynthesizeConfig, backend: LLMBackend | None = None):
        self.config = config
        self.rewriter = Rewriter(config, backend)

    def synthesize_unit(self, root: str, unit: SourceUnit, storage_options: StorageOptions | None = None) -> dict:
        """Rewrite one unit of source documents and commit ``synthetic`` + ``rejects`` together
        (skipped when already committed)."""
        key = UnitKey(stage_of(self.config.name), unit.input, self.rewriter.config_hash)

        def write(writer: UnitWriter) -> dict:
            docs = read_sources(root, unit.ids, storage_options)
            started = time.perf_counter()
            rows, rejects, counts = self.rewriter.rewrite(docs)
            counts["seconds"] = time.perf_counter() - started
            writer.write("synthetic", pa.Table.from_pylist(rows, schema=SYNTHETIC))
            writer.write("rejects", pa.Table.from_pylist(rejects, schema=REJECTS))
            return counts

        run = ShardStore(root, storage_options).run_unit(key, ["synthetic", "rejects"], write)
        return {"unit": unit.input, "skipped": run.skipped, **run.counts}
