"""What a filter is: ``check(text, language) -> Verdict``, with thresholds chosen per language.

``DocumentFilter`` is the contract every registered filter meets (``tests/test_filter_contracts.py``
checks each entry of ``kurate.tasks.filters.chain.FILTERS`` against it); ``LanguageFilter`` is the
base the built-in ones share. See docs/ARCHITECTURE.md, "Contracts".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Iterable, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel

from kurate.tasks.filters.params import FilterParams, normalise_language
from kurate.tasks.filters.text import Analysed, analyse


@dataclass(frozen=True)
class Verdict:
    """A filter's decision on one document; a rejection says which statistic decided and why."""

    keep: bool
    reason: str | None = None  # "<filter>:<statistic>", e.g. "gopher_quality:stop_words"
    value: float | None = None  # the measured value that decided
    detail: str | None = None  # for people: "1 stop word < 2 required (de)"


KEEP = Verdict(True)


def reject(reason: str, value: float | None, detail: str) -> Verdict:
    return Verdict(False, reason, None if value is None else float(value), detail)


@runtime_checkable
class DocumentFilter(Protocol):
    """A heuristic document filter.

    ``check`` never raises, whatever the text (empty, binary-looking, 10 MB), and gives the same
    verdict for the same (text, language). A rejection's ``reason`` is one of ``reasons(language)``
    (it lands in ``rejects.reason``, so the set is what a report can group by); a kept document has
    no reason.
    """

    name: str

    def reasons(self, language: str) -> frozenset[str]:
        """Every reason this filter can give for a document in ``language``."""
        ...

    def check(self, text: str, language: str) -> Verdict: ...


SettingsT = TypeVar("SettingsT")


class LanguageFilter(Generic[SettingsT]):
    """Base of the built-in filters: thresholds come from a Settings model per language.

    A subclass sets ``name``, ``settings_type`` and ``statistics`` (the statistics its rejections
    name) and implements the pure ``evaluate``. Without ``params`` every language gets the Settings
    defaults (the papers' values, no stop words).
    """

    name: ClassVar[str]
    settings_type: ClassVar[type[BaseModel]]
    statistics: ClassVar[tuple[str, ...]]

    def __init__(self, params: FilterParams | None = None):
        self.params = params
        self._settings: dict[str, SettingsT] = {}

    def settings_for(self, language: str) -> SettingsT:
        if language not in self._settings:
            values: dict[str, Any] = {}
            if self.params is not None:
                values = self.params.for_language(language).get(self.name, {})
            self._settings[language] = self.settings_type(**values)
        return self._settings[language]

    def statistics_for(self, settings: SettingsT) -> Iterable[str]:
        """The statistics a rejection can name under these settings (override where they vary)."""
        return self.statistics

    def reasons(self, language: str) -> frozenset[str]:
        return frozenset(f"{self.name}:{statistic}" for statistic in self.statistics_for(self.settings_for(language)))

    def check(self, text: str, language: str) -> Verdict:
        return self.evaluate(analyse(text, normalise_language(language)), self.settings_for(language), language)

    def evaluate(self, doc: Analysed, settings: SettingsT, language: str) -> Verdict:
        raise NotImplementedError
