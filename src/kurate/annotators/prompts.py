"""Judge prompts: YAML files users can replace, rendered into chat messages per criterion.

A prompt has one or more criteria (FineWeb-Edu: one, educational value 0–5; GermanWeb: three —
content, language, orthography — 1–5, combined by their minimum). Each criterion is one question
to the judge, answered as "<answer_prefix> N".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

BUILTIN = Path(__file__).with_name("prompts")


@dataclass(frozen=True)
class Criterion:
    name: str
    system: str
    user: str  # contains {document}
    answer_prefix: str

    def messages(self, document: str) -> list[dict]:
        """The chat turns for one document; an empty ``system`` sends no system turn (FineWeb-Edu's
        prompt is the user turn alone)."""
        user = {"role": "user", "content": self.user.replace("{document}", document).strip()}
        system = self.system.strip()
        return [{"role": "system", "content": system}, user] if system else [user]


@dataclass(frozen=True)
class PromptSpec:
    name: str
    version: str
    scale: tuple[int, ...]
    combine: Literal["single", "min", "mean"]
    criteria: tuple[Criterion, ...]

    def combine_scores(self, values: list[float]) -> float:
        if self.combine == "mean":
            return sum(values) / len(values)
        return min(values)


def load_prompt(name_or_path: str) -> PromptSpec:
    """A built-in prompt by name (``fineweb_edu``, ``germanweb_quality``) or a YAML file path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = BUILTIN / f"{name_or_path}.yaml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in BUILTIN.glob("*.yaml")))
        raise FileNotFoundError(f"prompt {name_or_path!r} not found (built-in: {known}; or give a YAML path)")
    raw = yaml.safe_load(path.read_text())
    allowed = {"name", "version", "scale", "combine", "criteria"}
    unknown = set(raw) - allowed
    if unknown:
        raise ValueError(f"prompt {path}: unknown keys {sorted(unknown)}")
    criteria = []
    for item in raw["criteria"]:
        extra = set(item) - {"name", "system", "user", "answer_prefix"}
        if extra:
            raise ValueError(f"prompt {path}: criterion {item.get('name')!r} has unknown keys {sorted(extra)}")
        if "{document}" not in item["user"]:
            raise ValueError(f"prompt {path}: criterion {item['name']!r} must contain {{document}}")
        criteria.append(Criterion(item["name"], item.get("system", ""), item["user"], item["answer_prefix"]))
    combine = raw.get("combine", "single" if len(criteria) == 1 else "min")
    if combine not in ("single", "min", "mean"):
        raise ValueError(f"prompt {path}: combine must be single, min or mean")
    return PromptSpec(raw["name"], str(raw["version"]), tuple(int(v) for v in raw["scale"]), combine, tuple(criteria))


# --- reading answers -----------------------------------------------------------------------------

_NUMBER = r"(-?\d+(?:[.,]\d+)?)"
REFUSALS = ("i cannot", "i can't", "i can not", "as an ai", "i'm sorry", "i am sorry", "ich kann nicht", "es tut mir leid")


def parse_answer(text: str, prefix: str, scale: tuple[int, ...]) -> tuple[float | None, str | None]:
    """The score in a generated answer, or (None, reason).

    Looks for "<prefix> N" first (the last one wins: models sometimes restate the rubric), then
    "N/5"-style fractions, then a lone number at the end. Out-of-range numbers are invalid.
    """
    if not text or not text.strip():
        return None, "empty_answer"
    lowered = text.lower()
    label = re.escape(prefix.rstrip(": ").lower())
    found = re.findall(label + r"\s*[:=]?\s*\**\s*" + _NUMBER, lowered)
    if not found:
        found = re.findall(_NUMBER + r"\s*/\s*" + str(max(scale)) + r"\b", lowered)
    if not found:
        tail = re.findall(_NUMBER + r"\W*$", lowered.strip())
        found = tail
    if not found:
        if any(r in lowered for r in REFUSALS):
            return None, "refusal"
        return None, "no_number"
    value = float(found[-1].replace(",", "."))
    if value < min(scale) or value > max(scale):
        return None, "out_of_range"
    return value, None


def aggregate(values: list[float]) -> float:
    """Majority vote when one value has more than half the votes, else the mean."""
    counts: dict[float, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    best, votes = max(counts.items(), key=lambda kv: (kv[1], -kv[0]))
    return best if votes * 2 > len(values) else sum(values) / len(values)
