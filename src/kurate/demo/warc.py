"""Build kurate's demo WARC (or a bulk WARC of generated pages).

:func:`build_demo_warc` writes the hand-made pages of :mod:`kurate.demo.pages` (articles in
German, English and French, boilerplate, duplicates, spam, charset and HTTP edge cases), each
as a ``request``/``response``/``metadata`` triple after one ``warcinfo`` record, and can put
one deliberately malformed record in the middle.  It returns a :class:`DemoManifest` with the
counts a test should expect.  :func:`make_bulk_warc` writes generated pages
(:mod:`kurate.demo.bulk`) in the same layout.  Both outputs are byte-identical on every run.

Command line::

    python -m kurate.demo.warc OUT.warc.gz [--bulk N] [--seed S] [--no-malformed]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from dataclasses import dataclass
from typing import Iterator

from kurate.demo.bulk import bulk_pages
from kurate.demo.pages import demo_pages
from kurate.demo.records import (BULK_FILENAME, DEMO_FILENAME, Destination, WarcRecord,
                                 malformed_record, page_records, warcinfo_record, write_warc)

__all__ = ["DemoManifest", "build_demo_warc", "make_bulk_warc", "main"]


@dataclass(frozen=True)
class DemoManifest:
    """What :func:`build_demo_warc` wrote.

    ``responses`` counts good response records (one per page, the malformed record excluded),
    ``malformed`` is 0 or 1, ``by_kind`` maps each page ``kind`` to its number of responses,
    ``records`` counts every record in the file (warcinfo, requests, responses, metadata and
    the malformed one), and ``path`` is the file written (``None`` for an unnamed file object).
    """

    path: str | None
    responses: int
    malformed: int
    by_kind: dict[str, int]
    records: int


def _dest_path(dest: Destination) -> str | None:
    if isinstance(dest, (str, os.PathLike)):
        return os.fspath(dest)
    name = getattr(dest, "name", None)
    return name if isinstance(name, str) else None


def build_demo_warc(dest: Destination, *, malformed: bool = True,
                    malformed_style: str = "garbage-header",
                    gzip_per_record: bool = True) -> DemoManifest:
    """Write the demo WARC: warcinfo, then request/response/metadata for each demo page.

    With *malformed*, one broken record (see :func:`kurate.demo.records.malformed_record`) is
    placed between the records of the middle two pages.
    """
    pages = demo_pages()
    info = warcinfo_record(DEMO_FILENAME)
    bad_after = len(pages) // 2

    def records() -> Iterator[WarcRecord | bytes]:
        yield info
        for index, page in enumerate(pages):
            if malformed and index == bad_after:
                yield malformed_record(malformed_style)
            yield from page_records(page, index, warcinfo_id=info.record_id)

    written = write_warc(dest, records(), gzip_per_record=gzip_per_record)
    return DemoManifest(
        path=_dest_path(dest),
        responses=len(pages),
        malformed=1 if malformed else 0,
        by_kind=dict(Counter(page.kind for page in pages)),
        records=written,
    )


def make_bulk_warc(dest: Destination, n_pages: int, seed: int = 0) -> int:
    """Write a WARC of *n_pages* generated pages (see :func:`kurate.demo.bulk.bulk_pages`);
    return the number of response records.  Same layout as the demo WARC, without a malformed
    record."""
    if n_pages < 0:
        raise ValueError("n_pages must not be negative")
    info = warcinfo_record(BULK_FILENAME, description=f"kurate bulk test WARC, seed {seed}")

    def records() -> Iterator[WarcRecord]:
        yield info
        for index, page in enumerate(bulk_pages(n_pages, seed)):
            yield from page_records(page, index, warcinfo_id=info.record_id)

    write_warc(dest, records())
    return n_pages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kurate.demo.warc",
        description="Write kurate's demo WARC (or a bulk WARC of generated pages).",
    )
    parser.add_argument("out", help="output file, e.g. demo.warc.gz")
    parser.add_argument("--bulk", type=int, metavar="N",
                        help="write N generated pages instead of the demo pages")
    parser.add_argument("--seed", type=int, default=0, help="seed for --bulk (default 0)")
    parser.add_argument("--no-malformed", action="store_true",
                        help="leave out the deliberately malformed record")
    args = parser.parse_args(argv)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)

    if args.bulk is not None:
        count = make_bulk_warc(args.out, args.bulk, seed=args.seed)
        print(f"wrote {count} responses to {args.out}")
        return 0
    manifest = build_demo_warc(args.out, malformed=not args.no_malformed)
    kinds = ", ".join(f"{kind}={n}" for kind, n in sorted(manifest.by_kind.items()))
    print(f"wrote {manifest.responses} responses ({manifest.records} records, "
          f"{manifest.malformed} malformed) to {args.out}: {kinds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
