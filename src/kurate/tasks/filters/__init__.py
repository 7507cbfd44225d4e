"""Heuristic document filters (Gopher quality and repetition, C4, FineWeb) with per-language parameters.

    params = load_filter_params()                      # tasks/filter_params.yaml
    filters = build_filters(["gopher_repetition", "gopher_quality", "c4", "fineweb"], params)
    first_rejection(filters, text, "de")               # None, or ("c4", Verdict(False, "c4:lorem_ipsum", …))

Every filter splits text with ``word_tokens`` (datatrove's words, punctuation included) and judges at most the first ``ANALYSED_CHARS``
characters, so odd or huge input costs bounded time and never raises. The contract is
``DocumentFilter`` (base.py); the filters are registered in ``FILTERS`` (chain.py).
Imports point one way: params, text ← base ← each filter ← chain.
"""

from kurate.tasks.filters.base import KEEP, DocumentFilter, LanguageFilter, Verdict
from kurate.tasks.filters.c4 import C4Filter, C4Settings
from kurate.tasks.filters.chain import FILTERS, build_filters, first_rejection, load_filter_params, parse_filter_params
from kurate.tasks.filters.fineweb import FineWebFilter, FineWebSettings
from kurate.tasks.filters.gopher_quality import GopherQualityFilter, GopherQualitySettings
from kurate.tasks.filters.gopher_repetition import GopherRepetitionFilter, GopherRepetitionSettings
from kurate.tasks.filters.params import FilterParams, normalise_language
from kurate.tasks.filters.text import ANALYSED_CHARS, alnum_words, split_lines, split_paragraphs, word_tokens

__all__ = [
    "ANALYSED_CHARS",
    "FILTERS",
    "KEEP",
    "C4Filter",
    "C4Settings",
    "DocumentFilter",
    "FilterParams",
    "FineWebFilter",
    "FineWebSettings",
    "GopherQualityFilter",
    "GopherQualitySettings",
    "GopherRepetitionFilter",
    "GopherRepetitionSettings",
    "LanguageFilter",
    "Verdict",
    "alnum_words",
    "build_filters",
    "first_rejection",
    "load_filter_params",
    "normalise_language",
    "parse_filter_params",
    "split_lines",
    "split_paragraphs",
    "word_tokens",
]
