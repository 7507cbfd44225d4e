"""WARC records for kurate's demo and test files, written with the standard library only.

:func:`write_warc` is a minimal WARC/1.1 writer.  Each record is compressed as a gzip member of
its own, as Common Crawl does, and record ids, dates and gzip headers are all fixed, so the same
input always gives a byte-identical file.  :func:`page_records` turns one :class:`DemoPage`
into the ``request``/``response``/``metadata`` triple Common Crawl writes per fetch, and
:func:`malformed_record` makes deliberately broken records for the readers' error paths.

WARC readers are the business of the code under test (``kurate.tasks.warc``), so none is
imported here.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import uuid
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http import HTTPStatus
from typing import BinaryIO, Iterable, Union
from urllib.parse import urlsplit

from kurate.demo.pages import DemoPage

__all__ = [
    "WarcRecord",
    "Destination",
    "make_record",
    "warcinfo_record",
    "page_records",
    "malformed_record",
    "MALFORMED_STYLES",
    "write_warc",
    "sha1_digest",
    "record_id",
    "gzip_member",
]

CRLF = b"\r\n"
WARC_VERSION = b"WARC/1.1"

#: Time of the warcinfo record; page ``i`` (0-based) is dated ``BASE_DATE + (i + 1)`` seconds.
BASE_DATE = datetime(2026, 9, 1, 12, 0, 0, tzinfo=timezone.utc)
#: Name recorded in the warcinfo record.  Deliberately independent of the output path, so that
#: two builds into different places are still byte-identical.
DEMO_FILENAME = "kurate-demo.warc.gz"
BULK_FILENAME = "kurate-bulk.warc.gz"
SOFTWARE = "kurate-demo-warc/1.0"
USER_AGENT = "kurate-demo-crawler/1.0 (+https://kurate.example.org/crawler)"

# All record ids are uuid5 names in this namespace, never random.
_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://kurate.example.org/demo-warc")

Destination = Union[str, "os.PathLike[str]", BinaryIO]


# ---------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WarcRecord:
    """A WARC record: its named header fields, in order (without the version line), and block.

    Build records with :func:`make_record` (or the helpers using it), which fills in
    ``Content-Length`` and ``WARC-Block-Digest`` from the block.
    """

    headers: tuple[tuple[str, str], ...]
    block: bytes

    def get(self, name: str, default: str | None = None) -> str | None:
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return default

    @property
    def warc_type(self) -> str | None:
        return self.get("WARC-Type")

    @property
    def record_id(self) -> str | None:
        return self.get("WARC-Record-ID")

    def to_bytes(self) -> bytes:
        """Serialise: version line, header fields, blank line, block, two CRLFs."""
        head = [WARC_VERSION]
        head.extend(f"{key}: {value}".encode("utf-8") for key, value in self.headers)
        return CRLF.join(head) + CRLF + CRLF + self.block + CRLF + CRLF


def sha1_digest(data: bytes) -> str:
    """WARC digest value: ``sha1:`` followed by the base32 SHA-1 of *data*."""
    return "sha1:" + base64.b32encode(hashlib.sha1(data).digest()).decode("ascii")


def record_id(url: str, index: int, role: str) -> str:
    """Deterministic ``<urn:uuid:...>`` for the *role* record of page *index* at *url*."""
    return f"<urn:uuid:{uuid.uuid5(_ID_NAMESPACE, f'{role}|{index}|{url}')}>"


def warc_date(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_record(
    warc_type: str,
    rec_id: str,
    date: datetime,
    block: bytes,
    *,
    content_type: str | None = None,
    fields: Iterable[tuple[str, str | None]] = (),
) -> WarcRecord:
    """A record with the mandatory fields, an exact Content-Length and a block digest.

    *fields* are further ``(name, value)`` pairs in order; pairs whose value is ``None`` are
    left out.
    """
    headers: list[tuple[str, str]] = [
        ("WARC-Type", warc_type),
        ("WARC-Date", warc_date(date)),
        ("WARC-Record-ID", rec_id),
        ("Content-Length", str(len(block))),
    ]
    if content_type is not None:
        headers.append(("Content-Type", content_type))
    headers.extend((name, value) for name, value in fields if value is not None)
    headers.append(("WARC-Block-Digest", sha1_digest(block)))
    return WarcRecord(tuple(headers), block)


def _warc_fields(pairs: Iterable[tuple[str, str]]) -> bytes:
    """An ``application/warc-fields`` block."""
    return b"".join(f"{name}: {value}".encode("utf-8") + CRLF for name, value in pairs)


def warcinfo_record(
    filename: str = DEMO_FILENAME,
    *,
    date: datetime = BASE_DATE,
    description: str = "Synthetic Common-Crawl-style sample written by kurate for demos and tests",
) -> WarcRecord:
    block = _warc_fields([
        ("software", SOFTWARE),
        ("format", "WARC File Format 1.1"),
        ("conformsTo", "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/"),
        ("isPartOf", "kurate-demo"),
        ("description", description),
        ("operator", "kurate test-suite"),
        ("http-header-user-agent", USER_AGENT),
    ])
    return make_record(
        "warcinfo",
        record_id("warcinfo:" + filename, 0, "warcinfo"),
        date,
        block,
        content_type="application/warc-fields",
        fields=[("WARC-Filename", filename)],
    )


def _stable_int(text: str) -> int:
    # hash() is salted per process; this is not.
    return int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:4], "big")


def _ip_for(host: str) -> str:
    """A documentation address (192.0.2.0/24, RFC 5737) that depends only on the host name."""
    return f"192.0.2.{1 + _stable_int(host) % 254}"


def _http_request_block(url: str) -> bytes:
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [
        f"GET {target} HTTP/1.1",
        f"Host: {parts.netloc}",
        f"User-Agent: {USER_AGENT}",
        "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        "Accept-Language: de,en;q=0.8,fr;q=0.6",
        "Accept-Encoding: identity",
        "Connection: close",
    ]
    return "\r\n".join(lines).encode("ascii") + CRLF + CRLF


def _http_response_block(page: DemoPage, date: datetime) -> bytes:
    try:
        reason = HTTPStatus(page.status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [
        f"HTTP/1.1 {page.status} {reason}",
        f"Date: {format_datetime(date, usegmt=True)}",
        "Server: nginx",
    ]
    if page.content_type is not None:
        lines.append(f"Content-Type: {page.content_type}")
    lines.append(f"Content-Length: {len(page.body)}")
    lines.extend(f"{name}: {value}" for name, value in page.extra_headers)
    lines.append("Connection: close")
    head = "\r\n".join(lines).encode("latin-1") + CRLF + CRLF
    return head + page.body


def page_records(page: DemoPage, index: int, *, warcinfo_id: str | None = None,
                 date: datetime | None = None) -> tuple[WarcRecord, WarcRecord, WarcRecord]:
    """The ``request``, ``response`` and ``metadata`` records of one page, Common Crawl style.

    The request and the metadata record point at the response with ``WARC-Concurrent-To``
    (and the response back at the request).  The payload digest covers the HTTP body only,
    the block digest the whole block (status line and HTTP headers included).
    """
    when = date if date is not None else BASE_DATE + timedelta(seconds=index + 1)
    host = urlsplit(page.url).hostname or ""
    request_id = record_id(page.url, index, "request")
    response_id = record_id(page.url, index, "response")
    metadata_id = record_id(page.url, index, "metadata")
    ip = _ip_for(host)

    request = make_record(
        "request", request_id, when, _http_request_block(page.url),
        content_type="application/http; msgtype=request",
        fields=[
            ("WARC-Warcinfo-ID", warcinfo_id),
            ("WARC-Concurrent-To", response_id),
            ("WARC-IP-Address", ip),
            ("WARC-Target-URI", page.url),
        ],
    )
    mime = page.content_type.split(";")[0].strip() if page.content_type else None
    response = make_record(
        "response", response_id, when, _http_response_block(page, when),
        content_type="application/http; msgtype=response",
        fields=[
            ("WARC-Warcinfo-ID", warcinfo_id),
            ("WARC-Concurrent-To", request_id),
            ("WARC-IP-Address", ip),
            ("WARC-Target-URI", page.url),
            ("WARC-Payload-Digest", sha1_digest(page.body)),
            ("WARC-Identified-Payload-Type", mime),
        ],
    )
    metadata = make_record(
        "metadata", metadata_id, when,
        _warc_fields([("fetchTimeMs", str(40 + _stable_int(page.url) % 900))]),
        content_type="application/warc-fields",
        fields=[
            ("WARC-Warcinfo-ID", warcinfo_id),
            ("WARC-Concurrent-To", response_id),
            ("WARC-Target-URI", page.url),
        ],
    )
    return request, response, metadata


# ---------------------------------------------------------------------------------------------
# The malformed record
# ---------------------------------------------------------------------------------------------
#
# What FastWARC 2.0.1 does with these, read with ArchiveIterator(open(path, "rb"),
# parse_http=True) (checked on gzip-per-record and on uncompressed files):
#
# "garbage-header" (the default, used by build_demo_warc): the version line is fine, the other
#     header lines are binary junk without a colon, Content-Length is "not-a-number" and there
#     is no block.  FastWARC does not raise.  It yields one extra record with record_type
#     WarcRecordType.unknown, content_length 0, no WARC-Record-ID / WARC-Target-URI and no
#     HTTP headers, then reads every following record normally.  The extra record is dropped
#     by record_types=WarcRecordType.response and by verify_digests=True (it has no digest),
#     so those readers see only the good records.  quirks_mode=True behaves the same.  warcio
#     1.8 also reads on; it yields the broken record with rec_type None and length 0.
#
# "bad-length": a response-looking record whose Content-Length is "not-a-number" but which
#     does carry an HTTP block.  FastWARC yields it as a response with content_length 0 and an
#     empty HTTP header map (status_code None), then raises OSError("Invalid WARC header") on
#     the block bytes that follow, so in default mode iteration ends there.  With
#     quirks_mode=True it skips to the next "WARC/" line and reads all good records (the broken
#     one still comes out first as an extra, empty response).  Because the record sits in a
#     gzip member of its own, a reader can also resume at the next gzip member.  warcio raises
#     ArchiveLoadFailed at the same point.
#
# "junk": a gzip member holding no WARC record at all, only text and binary junk.  FastWARC
#     raises OSError("Invalid WARC header") before yielding anything from it; with quirks_mode
#     it scans forward to the next "WARC/" line.  Resuming at the next gzip member also works.
#     warcio raises ArchiveLoadFailed.

MALFORMED_STYLES = ("garbage-header", "bad-length", "junk")


def malformed_record(style: str = "garbage-header") -> bytes:
    """Raw bytes of one deliberately broken WARC record (see the notes above on each style).

    Pass the result to :func:`write_warc` among the :class:`WarcRecord` objects; it is written
    verbatim (in its own gzip member when compressing).
    """
    if style == "garbage-header":
        return (
            WARC_VERSION + CRLF
            + b"\x00\x17\x1b\x7f\xfe garbled header line without a colon" + CRLF
            + b"@@ \xff\xfe #### ~~~~ %%%%" + CRLF
            + b"Content-Length: not-a-number" + CRLF
            + CRLF + CRLF + CRLF
        )
    if style == "bad-length":
        block = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
                 b"<html><body><p>This block cannot be located by its length.</p></body></html>")
        url = "https://www.example-stadtblog.de/kaputt/ungueltige-laenge.html"
        headers = [
            ("WARC-Type", "response"),
            ("WARC-Date", warc_date(BASE_DATE)),
            ("WARC-Record-ID", record_id(url, 0, "malformed")),
            ("Content-Length", "not-a-number"),
            ("Content-Type", "application/http; msgtype=response"),
            ("WARC-Target-URI", url),
        ]
        return WarcRecord(tuple(headers), block).to_bytes()
    if style == "junk":
        return (b"this is not a WARC record\r\n\x00\x01\x02\x03 \xde\xad\xbe\xef\r\n"
                b"Content-Length: ???\r\n\r\n" + bytes(range(32, 127)) + CRLF + CRLF)
    raise ValueError(f"unknown malformed style {style!r}; expected one of {MALFORMED_STYLES}")


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def gzip_member(data: bytes, level: int = 6) -> bytes:
    """*data* as one complete gzip member with a fixed header (mtime 0, no name, OS unknown).

    The header is written by hand rather than by :mod:`gzip`, so the bytes depend neither on
    the clock nor on the Python version's choice of OS byte.
    """
    compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    deflated = compressor.compress(data) + compressor.flush()
    header = b"\x1f\x8b\x08\x00" + b"\x00\x00\x00\x00" + b"\x00\xff"
    trailer = struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, len(data) & 0xFFFFFFFF)
    return header + deflated + trailer


def _write_records(out: BinaryIO, records: Iterable[WarcRecord | bytes],
                   gzip_per_record: bool) -> int:
    count = 0
    for record in records:
        raw = record.to_bytes() if isinstance(record, WarcRecord) else bytes(record)
        out.write(gzip_member(raw) if gzip_per_record else raw)
        count += 1
    return count


def write_warc(dest: Destination, records: Iterable[WarcRecord | bytes],
               gzip_per_record: bool = True) -> int:
    """Write *records* to *dest* (a path or a binary file object); return how many were written.

    Items are :class:`WarcRecord` objects or ready-made raw record bytes (such as
    :func:`malformed_record`), written verbatim.  With *gzip_per_record* every record becomes
    its own gzip member, as in Common Crawl's ``.warc.gz`` files; otherwise the file is plain
    WARC.  *records* may be a generator; records are written as they come.
    """
    if isinstance(dest, (str, os.PathLike)):
        with open(dest, "wb") as out:
            return _write_records(out, records, gzip_per_record)
    return _write_records(dest, records, gzip_per_record)
