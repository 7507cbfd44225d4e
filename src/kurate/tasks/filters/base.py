"""What a filter is: ``check(text, language) -> Verdict``, with thresholds chosen per language."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from kurate.tasks.filters.text import Analysed, analyse

if TYPE_CHECKING:
    from kurate.tasks.filters.params import FilterParams


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


class DocumentFilter(Protocol):
    name: str

    def check(self, text: str, language: str) -> Verdict: ...


SettingsT = TypeVar("SettingsT")


class LanguageFilter(Generic[SettingsT]):
    """Base of the built-in filters: thresholds come from a Settings dataclass per language.

    A subclass sets ``name`` and ``settings_type`` and implements the pure ``evaluate``. Without
    ``params`` every language gets the Settings defaults (the papers' values, no stop words).
    """

    name: ClassVar[str]
    settings_type: ClassVar[type]

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

    def check(self, text: str, language: str) -> Verdict:
        return self.evaluate(analyse(text), self.settings_for(language), language)

    def evaluate(self, doc: Analysed, settings: SettingsT, language: str) -> Verdict:
        raise NotImplementedError
