"""Paragraph-aligned chunks of a source document that fit the generator's context."""

from __future__ import annotations

import re
from typing import Callable

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")


def _pieces(text: str, count: Callable[[str], int], max_tokens: int) -> list[tuple[str, int]]:
    """Paragraphs (blank-line separated, else lines) with token counts; oversize ones split by sentence,
    then cut by characters."""
    paragraphs = [p.strip() for p in _PARAGRAPH_BREAK.split(text) if p.strip()]
    if len(paragraphs) <= 1:
        paragraphs = [p.strip() for p in text.splitlines() if p.strip()]
    out: list[tuple[str, int]] = []
    for paragraph in paragraphs:
        n = count(paragraph)
        if n <= max_tokens:
            out.append((paragraph, n))
            continue
        group, group_n = [], 0
        for sentence in _SENTENCE_END.split(paragraph):
            s_n = count(sentence)
            while s_n > max_tokens:  # one sentence longer than a chunk: cut it by characters
                cut = max(1, int(len(sentence) * max_tokens / s_n * 0.9))
                space = sentence.rfind(" ", 0, cut)
                cut = space if space > 0 else cut  # at a word boundary where there is one
                head = sentence[:cut].strip()
                out.append((head, count(head)))
                sentence = sentence[cut:].strip()
                s_n = count(sentence)
            if group and group_n + s_n > max_tokens:
                out.append((" ".join(group), group_n))
                group, group_n = [], 0
            if sentence.strip():
                group.append(sentence)
                group_n += s_n
        if group:
            out.append((" ".join(group), group_n))
    return out


def chunk_document(text: str, count: Callable[[str], int], max_tokens: int, overlap_paragraphs: int = 0) -> list[str]:
    """Paragraph-aligned chunks of at most ``max_tokens`` tokens (by ``count``); the last
    ``overlap_paragraphs`` paragraphs of a chunk open the next when they fit."""
    pieces = _pieces(text, count, max_tokens)
    chunks: list[str] = []
    current: list[tuple[str, int]] = []
    fresh = 0  # pieces in `current` that no earlier chunk holds
    for piece in pieces:
        if current and sum(n for _, n in current) + piece[1] > max_tokens:
            if fresh:
                chunks.append("\n\n".join(p for p, _ in current))
            carried = current[-overlap_paragraphs:] if overlap_paragraphs else []
            while carried and sum(n for _, n in carried) + piece[1] > max_tokens:
                carried = carried[1:]
            current, fresh = list(carried), 0
        current.append(piece)
        fresh += 1
    if current and fresh:
        chunks.append("\n\n".join(p for p, _ in current))
    return chunks
