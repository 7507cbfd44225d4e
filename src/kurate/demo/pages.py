"""The hand-written demo pages, read from the data files next to this module.

``pages/pages.json`` lists the pages in the order they are written to the demo WARC; each
entry names the file in ``pages/`` that holds the exact HTTP body bytes (the windows-1252 page
is stored in windows-1252, the PDF-looking page as raw bytes) and says what the page is there
to exercise (``kind``: ``article-de``, ``boilerplate``, ``spam``, ``latin1``, ``redirect``, ...).
Keys left out of an entry take the :class:`DemoPage` defaults.  All article texts were written
for this project; every site, person and place in them is invented, and every URL uses an
example domain.

``bulk_vocabulary.json`` holds the words :mod:`kurate.demo.bulk` builds generated pages from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files

__all__ = ["DemoPage", "demo_pages", "bulk_vocabulary"]

_PAGES = files("kurate.demo") / "pages"


@dataclass(frozen=True)
class DemoPage:
    """One fetched URL as it will appear in a WARC response record.

    ``body`` is the HTTP entity exactly as sent (already encoded); ``content_type`` is the
    HTTP Content-Type header (``None`` leaves the header out).  The keyword-only fields are
    for tests: ``lang`` is the language of the main text, ``main_text`` the text a good
    extractor should find (paragraphs separated by blank lines, empty where there is none),
    ``duplicate_of`` the URL of the page this one copies, and ``extra_headers`` further HTTP
    response headers such as ``Location``.
    """

    url: str
    body: bytes
    status: int = 200
    content_type: str | None = "text/html; charset=utf-8"
    kind: str = field(kw_only=True)
    lang: str | None = field(default=None, kw_only=True)
    main_text: str = field(default="", kw_only=True)
    duplicate_of: str | None = field(default=None, kw_only=True)
    extra_headers: tuple[tuple[str, str], ...] = field(default=(), kw_only=True)


@cache
def _load_pages() -> tuple[DemoPage, ...]:
    entries = json.loads((_PAGES / "pages.json").read_text(encoding="utf-8"))
    pages = []
    for entry in entries:
        body = (_PAGES / entry.pop("file")).read_bytes()
        headers = tuple((name, value) for name, value in entry.pop("extra_headers", ()))
        pages.append(DemoPage(entry.pop("url"), body, extra_headers=headers, **entry))
    return tuple(pages)


def demo_pages() -> list[DemoPage]:
    """All hand-made demo pages, in the order they are written to the demo WARC."""
    return list(_load_pages())


def bulk_vocabulary() -> dict[str, dict[str, list]]:
    """Per language (``de``, ``en``): the word lists generated bulk pages are assembled from."""
    return json.loads((files("kurate.demo") / "bulk_vocabulary.json").read_text(encoding="utf-8"))
