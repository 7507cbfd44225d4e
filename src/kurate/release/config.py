"""The release stage's config: which documents of a root go into a named, versioned release.

    release:
      name: default
      sources:
        - {dataset: curated, jql: auto}           # kept by the JQL rule (all when nothing is scored)
        - {dataset: synthetic}                    # every synthetic rewrite
      seed: 0

Every field that changes the release's content is part of its version key (release/publish.py),
so a changed config makes a new version; ``shard_documents`` only changes how files are cut and is
left out.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ReleaseSource(BaseModel):
    """One committed dataset feeding the release, with its filter and quota."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field("curated", pattern=r"^[a-z_][a-z0-9_]*$", description=(
        "curated, synthetic, or any committed dataset with id and text columns."))
    jql: Literal["auto", "kept", "all"] = Field("auto", description=(
        "curated only. auto: documents kept by the JQL rule (scores.kept) when a scores dataset exists, "
        "else all; kept: only kept ones (fails without scores); all: ignore scores."))
    min_scores: dict[str, float] = Field(default_factory=dict, description=(
        "curated only: per-head score minimum, e.g. {smollm2-edu: 3.0} (a GermanWeb-style top bucket)."))
    languages: list[str] = Field(default_factory=list, description="Keep only these languages (empty: all).")
    prompt_types: list[str] = Field(default_factory=list, description="synthetic only: these prompt types (empty: all).")
    fraction: float = Field(1.0, gt=0, le=1, description=(
        "The source's weight: share of its eligible documents taken (a seeded choice by id, stable as inputs grow)."))
    max_words: int | None = Field(None, ge=1, description="Word quota of this source (seeded order; empty: no quota).")
    max_words_per_language: dict[str, int] = Field(default_factory=dict, description=(
        "Word quota per language of this source, e.g. {de: 1000000, en: 100000}."))

    @model_validator(mode="after")
    def _fields_of_its_dataset(self) -> "ReleaseSource":
        if self.dataset != "curated" and (self.jql != "auto" or self.min_scores):
            raise ValueError("jql and min_scores apply to the curated dataset only")
        if self.dataset != "synthetic" and self.prompt_types:
            raise ValueError("prompt_types apply to the synthetic dataset only")
        return self


class ReleaseConfig(BaseModel):
    """The release stage: a named, versioned mix of committed documents in the Hugging Face Parquet
    layout under ``<root>/releases/<name>/v<k>/``, with a dataset card (docs/ARCHITECTURE.md)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("default", pattern=r"^[A-Za-z0-9_.-]+$", description="Release name: releases/<name>/v<k>.")
    sources: list[ReleaseSource] = Field(
        default_factory=lambda: [ReleaseSource(dataset="curated"), ReleaseSource(dataset="synthetic")],
        description="Datasets in the release; on a duplicate id or text the earlier source wins.")
    seed: int = Field(0, description="Seed of the document order, the fraction choice and the quotas.")
    validation_fraction: float = Field(0.05, ge=0, lt=1, description="Share of documents in the validation split (by id hash).")
    shard_documents: int = Field(50_000, ge=1, description="Documents per Parquet file.")
    license: str = Field("other", description="The card's license field.")
    license_note: str = Field(
        "Texts come from Common Crawl (terms of use: https://commoncrawl.org/terms-of-use) and keep the rights "
        "of their authors; synthetic rewrites also fall under the generating model's terms.",
        description="The card's license note.")

    @model_validator(mode="after")
    def _unique_sources(self) -> "ReleaseConfig":
        names = [s.dataset for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError(f"each dataset may appear once in release.sources, got {names}")
        if not names:
            raise ValueError("release.sources is empty")
        return self

    def content_key(self) -> dict:
        """What decides the release's content (its version key): everything but file cutting and the card's text."""
        return self.model_dump(mode="json", exclude={"shard_documents", "license", "license_note"})
