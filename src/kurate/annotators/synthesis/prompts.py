"""Synthesis prompts: German YAML files (``annotators/prompts/synth_<type>.yaml``) users can replace,
rendered as chat messages (instruct models) or as a few-shot text a base model continues."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from kurate.annotators.synthesis.config import PROMPT_TYPES

PROMPTS_DIR = Path(__file__).parent.parent / "prompts"


def normalise(text: str) -> str:
    """Lower case, punctuation to spaces, whitespace collapsed: the form gates compare texts in."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


@dataclass(frozen=True)
class SynthPrompt:
    """One prompt type's instructions and worked examples, as loaded from its YAML file."""

    type: str
    name: str
    version: str
    system: str
    user: str  # contains {document}
    answer_prefix: str
    fewshot_label: str
    examples: tuple[tuple[str, str], ...]  # (document, output)
    digest: str  # sha256 of the file: part of the unit config hash

    def messages(self, document: str) -> list[dict]:
        messages = [{"role": "system", "content": self.system.strip()}] if self.system.strip() else []
        return messages + [{"role": "user", "content": self.user.replace("{document}", document).strip()}]

    def fewshot(self, document: str) -> str:
        """A prompt a base model continues: task description, worked examples, then the document."""
        parts = [self.system.strip()] if self.system.strip() else []
        for doc, out in self.examples:
            parts.append(f"Text:\n{doc.strip()}\n\n{self.fewshot_label}:\n{out.strip()}")
        parts.append(f"Text:\n{document.strip()}\n\n{self.fewshot_label}:\n")
        return "\n\n".join(parts)

    def instruction_lines(self, min_chars: int = 25) -> list[str]:
        """Normalised instruction sentences (system and user turn, not the document) for echo detection."""
        lines = []
        for raw in (self.system + "\n" + self.user.replace("{document}", "")).splitlines():
            for sentence in re.split(r"(?<=[.!?])\s+", raw):
                norm = normalise(sentence)
                if len(norm) >= min_chars:
                    lines.append(norm)
        return lines


def load_synth_prompt(prompt_type: str, path: str | None = None) -> SynthPrompt:
    """The built-in ``annotators/prompts/synth_<type>.yaml`` or a replacement YAML file."""
    if prompt_type not in PROMPT_TYPES:
        raise ValueError(f"unknown prompt type {prompt_type!r}; choose from {list(PROMPT_TYPES)}")
    file = Path(path) if path else PROMPTS_DIR / f"synth_{prompt_type}.yaml"
    if not file.exists():
        raise FileNotFoundError(f"synthesis prompt {file} not found")
    body = file.read_text(encoding="utf-8")
    raw = yaml.safe_load(body) or {}
    allowed = {"name", "type", "version", "system", "user", "answer_prefix", "fewshot_label", "examples"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ValueError(f"prompt {file}: unknown keys {unknown}")
    if "{document}" not in raw.get("user", ""):
        raise ValueError(f"prompt {file}: user must contain {{document}}")
    if raw.get("type", prompt_type) != prompt_type:
        raise ValueError(f"prompt {file} is for type {raw['type']!r}, configured as {prompt_type!r}")
    examples = tuple((e["document"], e["output"]) for e in raw.get("examples") or [])
    return SynthPrompt(prompt_type, raw.get("name", f"synth_{prompt_type}"), str(raw.get("version", "1")), raw.get("system", ""),
                       raw["user"], raw.get("answer_prefix") or "", raw.get("fewshot_label", "Antwort"), examples,
                       hashlib.sha256(body.encode()).hexdigest()[:16])

