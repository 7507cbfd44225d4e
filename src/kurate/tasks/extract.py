"""Main-text extraction from HTML, behind one interface.

``trafilatura`` keeps the article and drops boilerplate best (~20 docs/s/core);
``resiliparse`` is ~15× faster and keeps more boilerplate; ``trafilatura_fast`` is trafilatura with
``fast=True`` (its own extraction only, no readability/jusText comparison): ~1.3× faster, and on the
142 sample pages 10 pages differ from the default's text (docs/BENCHMARKS.md). Pick one in config
(``ingest.extractor``).

Each page gets a time limit (``ingest.extract_timeout_s``, default 10 s): a hostile page that would
hold a worker for minutes becomes an ``extract_timeout`` reject. datatrove's extractors default to 1 s;
kurate's default is larger because a limit near ordinary extraction times makes the output depend on
machine load (1 s gave 5 vs 2 timeouts between two identical runs on a loaded 2-core box), while
ordinary pages take tens of milliseconds. The limit
is a SIGALRM interval timer, so it applies where units run on a process's main thread (Ray tasks,
``run_local``, the CLI's in-process executor); elsewhere the page is extracted without a limit.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator, Literal

ExtractorName = Literal["trafilatura", "trafilatura_fast", "resiliparse"]
BLANK_LINES = re.compile(r"\n{3,}")
DEFAULT_EXTRACT_TIMEOUT_S = 10.0


class ExtractionTimeout(Exception):
    """Extracting one page took longer than its time limit."""


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise ``ExtractionTimeout`` in this block after ``seconds`` (main thread only; no-op elsewhere)."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    # An outer interval timer (pytest-timeout's signal method, a Prefect task timeout) keeps
    # running: when it fires first we leave it alone, otherwise it is re-armed with what is left.
    outer_left, outer_interval = signal.getitimer(signal.ITIMER_REAL)
    if outer_left and outer_left <= seconds:
        yield
        return

    def expired(signum, frame):
        raise ExtractionTimeout(f"extraction took longer than {seconds:g} s")

    started = time.monotonic()
    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_left:
            left = outer_left - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3), outer_interval)


def _trafilatura(html: str, url: str | None, fast: bool = False) -> str:
    import trafilatura

    text = trafilatura.extract(
        html, url=url, include_comments=False, include_tables=True, deduplicate=False, with_metadata=False, fast=fast
    )
    return text or ""


def _trafilatura_fast(html: str, url: str | None) -> str:
    return _trafilatura(html, url, fast=True)


def _resiliparse(html: str, url: str | None) -> str:
    from resiliparse.extract.html2text import extract_plain_text

    return extract_plain_text(html, main_content=True, alt_texts=False, links=False, comments=False)


EXTRACTORS: dict[str, Callable[[str, str | None], str]] = {
    "trafilatura": _trafilatura,
    "trafilatura_fast": _trafilatura_fast,
    "resiliparse": _resiliparse,
}


def extract_text(html: str, extractor: ExtractorName = "trafilatura", url: str | None = None,
                 timeout_s: float | None = None) -> str:
    """Main text of an HTML page, whitespace-normalised; empty when the page has none.

    Raises ``ExtractionTimeout`` when ``timeout_s`` is given and the extractor takes longer."""
    try:
        fn = EXTRACTORS[extractor]
    except KeyError:
        raise ValueError(f"unknown extractor {extractor!r}; choose one of {sorted(EXTRACTORS)}") from None
    with time_limit(timeout_s):
        text = fn(html, url)
    lines = (line.strip() for line in text.replace("\r\n", "\n").split("\n"))
    return BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
