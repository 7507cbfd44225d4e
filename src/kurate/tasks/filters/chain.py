"""The filters by name (the one place a filter is registered), their parameters, and the chain.

Adding a filter: write one ``LanguageFilter`` subclass (a Settings model, its ``statistics`` and
``evaluate``), add one line to ``FILTERS``, and give its defaults a section in filter_params.yaml;
``tests/test_filter_contracts.py`` then checks it against the ``DocumentFilter`` contract.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import yaml

from kurate.tasks.filters.base import DocumentFilter, LanguageFilter, Verdict
from kurate.tasks.filters.c4 import C4Filter
from kurate.tasks.filters.fineweb import FineWebFilter
from kurate.tasks.filters.gopher_quality import GopherQualityFilter
from kurate.tasks.filters.gopher_repetition import GopherRepetitionFilter
from kurate.tasks.filters.params import DEFAULT_PARAMS_PATH, FilterParams, validate_params

FILTERS: dict[str, type[LanguageFilter]] = {
    "gopher_quality": GopherQualityFilter,
    "gopher_repetition": GopherRepetitionFilter,
    "c4": C4Filter,
    "fineweb": FineWebFilter,
}


def parse_filter_params(data: Any, source: str = "<in memory>") -> FilterParams:
    """Validate a mapping shaped like filter_params.yaml against the registered filters' settings."""
    return validate_params(data, source, {name: cls.settings_type for name, cls in FILTERS.items()})


def load_filter_params(path: str | None = None) -> FilterParams:
    """Load and validate filter parameters from a YAML file (None: the table shipped with kurate)."""
    source = Path(path) if path is not None else DEFAULT_PARAMS_PATH
    with open(source, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    return parse_filter_params(data, str(source))


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
