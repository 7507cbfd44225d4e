"""The filters by name, and how a chain of them is built and applied.

Adding a filter: write one ``LanguageFilter`` subclass (a Settings model + ``evaluate``), add one
line to ``FILTERS``, and give its defaults a section in filter_params.yaml.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from kurate.tasks.filters.base import DocumentFilter, LanguageFilter, Verdict
from kurate.tasks.filters.c4 import C4Filter
from kurate.tasks.filters.fineweb import FineWebFilter
from kurate.tasks.filters.gopher_quality import GopherQualityFilter
from kurate.tasks.filters.gopher_repetition import GopherRepetitionFilter

if TYPE_CHECKING:
    from kurate.tasks.filters.params import FilterParams

FILTERS: dict[str, type[LanguageFilter]] = {
    "gopher_quality": GopherQualityFilter,
    "gopher_repetition": GopherRepetitionFilter,
    "c4": C4Filter,
    "fineweb": FineWebFilter,
}


def build_filters(names: Sequence[str], params: FilterParams) -> list[DocumentFilter]:
    """Instantiate filters by name, in the order given, with their per-language parameters."""
    unknown = [name for name in names if name not in FILTERS]
    if unknown:
        raise ValueError(f"unknown filter(s) {unknown}; choose from {sorted(FILTERS)}")
    return [FILTERS[name](params) for name in names]


def first_rejection(filters: Sequence[DocumentFilter], text: str, language: str) -> tuple[str, Verdict] | None:
    """(filter name, verdict) of the first filter that rejects the document, or None when all keep it."""
    for document_filter in filters:
        verdict = document_filter.check(text, language)
        if not verdict.keep:
            return document_filter.name, verdict
    return None
