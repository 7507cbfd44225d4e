"""Main-text extraction from HTML, behind one interface.

``trafilatura`` keeps the article and drops boilerplate best (~20 docs/s/core);
``resiliparse`` is ~15× faster and keeps more boilerplate. Pick one in config (``ingest.extractor``).
"""

from __future__ import annotations

import re
from typing import Callable, Literal

ExtractorName = Literal["trafilatura", "resiliparse"]
BLANK_LINES = re.compile(r"\n{3,}")


def _trafilatura(html: str, url: str | None) -> str:
    import trafilatura

    text = trafilatura.extract(
        html, url=url, include_comments=False, include_tables=True, deduplicate=False, with_metadata=False
    )
    return text or ""


def _resiliparse(html: str, url: str | None) -> str:
    from resiliparse.extract.html2text import extract_plain_text

    return extract_plain_text(html, main_content=True, alt_texts=False, links=False, comments=False)


EXTRACTORS: dict[str, Callable[[str, str | None], str]] = {
    "trafilatura": _trafilatura,
    "resiliparse": _resiliparse,
}


def extract_text(html: str, extractor: ExtractorName = "trafilatura", url: str | None = None) -> str:
    """Main text of an HTML page, whitespace-normalised; empty when the page has none."""
    try:
        fn = EXTRACTORS[extractor]
    except KeyError:
        raise ValueError(f"unknown extractor {extractor!r}; choose one of {sorted(EXTRACTORS)}") from None
    text = fn(html, url)
    lines = (line.strip() for line in text.replace("\r\n", "\n").split("\n"))
    return BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
