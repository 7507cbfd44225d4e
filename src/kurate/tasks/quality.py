"""Per-document quality decisions over an Arrow table of extracted documents.

Order (the first stage that drops a document is the one recorded): URL filter → language ID →
heuristic filters (Gopher quality, Gopher repetition, C4, FineWeb) in the configured order.
``Quality`` holds the loaded models and parameters; build it once per worker process
(``quality_for``) and call ``assess`` per batch.
"""

from __future__ import annotations

import functools
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from kurate.storage.fs import StorageOptions
from kurate.tasks.filters import FILTERS, build_filters, first_rejection, load_filter_params
from kurate.tasks.langid import default_identifier
from kurate.tasks.urlfilter import UrlFilter

# The choices come from the filter registry, so a new filter is a valid config value (and a choice
# in the Prefect form) as soon as it is registered.
FilterName = Literal[tuple(FILTERS)]  # type: ignore[valid-type]
DEFAULT_FILTERS: list[str] = ["gopher_quality", "gopher_repetition", "c4", "fineweb"]


class UrlFilterConfig(BaseModel):
    """Domain/URL blocklist and built-in adult/spam keywords."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    blocklist: str | None = Field(None, description="Blocklist file (path or fsspec URL): domains or URLs, one per line.")
    builtin_keywords: bool = Field(True, description="Also block hosts containing built-in adult/spam keywords.")


class LanguageConfig(BaseModel):
    """fastText lid.176 language ID: which languages to keep and how sure it must be."""

    model_config = ConfigDict(extra="forbid")

    keep: list[str] = Field(default_factory=lambda: ["de"], description="ISO codes to keep (German first).")
    min_score: float = Field(0.65, ge=0, le=1, description="Minimum fastText probability of the top language.")
    min_score_by_language: dict[str, float] = Field(
        default_factory=dict, description="Per-language minimum scores overriding min_score, e.g. {en: 0.8}."
    )

    def threshold(self, language: str) -> float:
        return self.min_score_by_language.get(language, self.min_score)


class FilterConfig(BaseModel):
    """FineWeb2-style heuristic filters with per-language parameters."""

    model_config = ConfigDict(extra="forbid")

    enabled: list[FilterName] = Field(default_factory=lambda: list(DEFAULT_FILTERS), description="Filters to run, in order.")
    params: str | None = Field(None, description="YAML with per-language parameters (default: the shipped table).")


class QualityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: UrlFilterConfig = Field(default_factory=UrlFilterConfig)
    language: LanguageConfig = Field(default_factory=LanguageConfig)
    filters: FilterConfig = Field(default_factory=FilterConfig)


def _reject_row(doc: dict, stage: str, reason: str, value: float | None, detail: str | None, language: str | None) -> dict:
    return {
        "id": doc["id"],
        "url": doc["url"],
        "warc_record_id": doc["warc_record_id"],
        "source": doc["source"],
        "language": language,
        "stage": stage,
        "reason": reason,
        "value": value,
        "detail": detail,
    }


class Quality:
    """Loaded URL filter, language identifier and heuristic filters for one config."""

    def __init__(self, config: QualityConfig, storage_options: StorageOptions | None = None):
        self.config = config
        self.url_filter = (
            UrlFilter(config.url.blocklist, dict(storage_options or {}), config.url.builtin_keywords)
            if config.url.enabled
            else None
        )
        self.identifier = default_identifier()
        self.filters = build_filters(config.filters.enabled, load_filter_params(config.filters.params))
        self.keep_languages = set(config.language.keep)

    def assess(self, docs: list[dict]) -> tuple[list[dict], list[dict]]:
        """Split documents into kept (with ``language``/``language_score`` set) and reject rows."""
        kept: list[dict] = []
        rejects: list[dict] = []
        candidates = []
        for doc in docs:
            if self.url_filter is not None:
                verdict = self.url_filter.check(doc["url"] or "")
                if not verdict.keep:
                    rejects.append(_reject_row(doc, "url", verdict.reason, verdict.value, verdict.detail, None))
                    continue
            candidates.append(doc)
        predictions = self.identifier.predict([doc["text"] for doc in candidates])
        for doc, (language, score) in zip(candidates, predictions):
            if language not in self.keep_languages or score < self.config.language.threshold(language):
                detail = (
                    f"{language} ({score:.2f}) not in {sorted(self.keep_languages)}"
                    if language not in self.keep_languages
                    else f"{language} score {score:.2f} < {self.config.language.threshold(language)}"
                )
                rejects.append(_reject_row(doc, "language", f"language:{language}", float(score), detail, language))
                continue
            failed = first_rejection(self.filters, doc["text"], language)
            if failed is not None:
                name, verdict = failed
                rejects.append(_reject_row(doc, name, verdict.reason, verdict.value, verdict.detail, language))
                continue
            kept.append({**doc, "language": language, "language_score": float(score)})
        return kept, rejects


@functools.lru_cache(maxsize=4)
def _cached_quality(config_json: str, options_json: str) -> Quality:
    return Quality(QualityConfig.model_validate_json(config_json), json.loads(options_json))


def quality_for(config: QualityConfig, storage_options: StorageOptions | None = None) -> Quality:
    """One ``Quality`` per config per process: models and blocklists load once per Ray worker."""
    return _cached_quality(config.model_dump_json(), json.dumps(storage_options or {}, sort_keys=True))
