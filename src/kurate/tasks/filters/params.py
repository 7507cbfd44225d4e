"""Per-language filter parameters: a ``default`` section plus overrides per language (filter_params.yaml).

Layout: ``{section: {filter name: {key: value}}}`` where a section is ``default`` or a language
code as fastText gives it ("de", "en", "zh"). ``for_language`` starts from ``default`` and
replaces the keys the language's section sets (a key's value is replaced whole, so a language
that sets ``max_top_ngram_char_frac`` gives all its n). A language without a section gets
``default``; one without ``stop_words`` skips the stop-word check.

Everything is validated when loaded: an unknown section, filter or key, or a value of the wrong
type, is an error that names the file, the section, the filter and the key. This module knows no
filter: ``validate_params`` checks against the settings models it is given, and
``kurate.tasks.filters.chain`` gives it those of every registered filter (so the imports run
one way: params, text ← base ← each filter ← chain).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from pydantic import BaseModel, ValidationError

DEFAULT_PARAMS_PATH = Path(__file__).resolve().parents[1] / "filter_params.yaml"

# Other spellings of the languages we ship sections for (ISO 639-2/3, FineWeb 2's "deu_Latn").
LANGUAGE_ALIASES: dict[str, str] = {
    "deu": "de", "ger": "de", "eng": "en", "fra": "fr", "fre": "fr", "spa": "es", "ita": "it",
    "nld": "nl", "dut": "nl", "pol": "pl", "zho": "zh", "chi": "zh", "cmn": "zh", "jpn": "ja", "tha": "th",
}  # fmt: skip

Sections = Mapping[str, Mapping[str, Mapping[str, Any]]]


def normalise_language(code: str) -> str:
    """'de', 'DE', 'de-AT', 'deu_Latn' → 'de'; codes we have no alias for pass through lower-cased."""
    base = code.strip().lower().replace("_", "-").split("-")[0]
    return LANGUAGE_ALIASES.get(base, base)


@dataclass(frozen=True)
class FilterParams:
    sections: Sections
    source: str = "<in memory>"
    _merged: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def languages(self) -> list[str]:
        """Languages with their own section."""
        return sorted(name for name in self.sections if name != "default")

    def for_language(self, language: str) -> dict[str, dict[str, Any]]:
        """{filter name: {key: value}}: the default section updated by the language's section."""
        lang = normalise_language(language)
        if lang not in self._merged:
            merged = {name: dict(values) for name, values in self.sections.get("default", {}).items()}
            for name, values in self.sections.get(lang, {}).items():
                merged.setdefault(name, {}).update(values)
            self._merged[lang] = merged
        return copy.deepcopy(self._merged[lang])  # callers may mutate their copy


def validate_params(data: Any, source: str, settings_types: Mapping[str, type[BaseModel]]) -> FilterParams:
    """Validate a mapping shaped like filter_params.yaml against the filters' settings models (filter
    name → model) and wrap it; errors name what is wrong."""
    if not isinstance(data, Mapping) or "default" not in data:
        raise ValueError(f"{source}: expected a mapping with a 'default' section, got {type(data).__name__}")
    for section, filters in data.items():
        if not isinstance(section, str) or not isinstance(filters, Mapping):
            raise ValueError(f"{source}: section {section!r} must map filter names to their settings")
        for name, values in filters.items():
            if name not in settings_types:
                raise ValueError(f"{source}: [{section}] unknown filter {name!r}; known filters: {sorted(settings_types)}")
            if not isinstance(values, Mapping):
                raise ValueError(f"{source}: [{section}.{name}] must be a mapping of settings")
            known = settings_types[name].model_fields
            for key in values:
                if key not in known:
                    raise ValueError(
                        f"{source}: [{section}.{name}] unknown key {key!r}; known keys: {sorted(known)}"
                    )
    sections: dict[str, Mapping[str, Mapping[str, Any]]] = {}
    for section, filters in data.items():
        key = section if section == "default" else normalise_language(section)
        if key in sections:
            raise ValueError(f"{source}: sections {section!r} and an earlier one both mean language {key!r}")
        sections[key] = filters
    params = FilterParams(sections=sections, source=source)
    for section in sections:  # build every language's settings once, so bad values fail now, not mid-run
        merged = params.for_language(section)
        for name, values in merged.items():
            try:
                settings_types[name](**values)
            except ValidationError as err:
                raise ValueError(f"{source}: [{section}.{name}] invalid value: {err}") from None
    return params
