"""Reading WARC and WET shards through fsspec with FastWARC, surviving bad input.

``read_records`` yields one ``WarcItem`` per response (WARC) or conversion (WET) record, plus one
``WarcDamage`` per unreadable region, so the caller can record every loss:

* a corrupt gzip member or malformed record makes FastWARC raise; we resume at the next gzip
  member after it (Common Crawl compresses each record on its own) and report the skipped bytes;
* a truncated shard makes FastWARC stop silently; we check the tail after the last record we got
  and report the incomplete bytes. When that last record is a response/conversion, FastWARC hands
  it over with whatever bytes were there: it becomes one ``truncated_record`` damage (under the
  record's own id) instead of a document, so each input record is counted exactly once;
* an empty (0-byte) input is one ``empty_input`` damage, never a silent success.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Iterator

from fastwarc.warc import ArchiveIterator, WarcRecordType

from kurate.storage.fs import StorageOptions, filesystem

GZIP_MAGIC = b"\x1f\x8b\x08"
RESUME_SCAN_BYTES = 1 << 20


@dataclass
class WarcItem:
    record_id: str
    url: str
    date: datetime | None
    record_type: str  # "response" or "conversion"
    status: int | None  # HTTP status (None for WET conversion records)
    content_type: str  # HTTP Content-Type header, or the WARC Content-Type of a conversion record
    http_charset: str | None
    payload: bytes
    offset: int  # byte offset of the record in the shard
    payload_digest: str | None


@dataclass
class WarcDamage:
    start: int
    end: int
    reason: str  # malformed_record | truncated_shard | truncated_record | empty_input
    detail: str
    record_id: str = ""  # a truncated_record's own id and URL (its lineage row keeps the document id)
    url: str = ""
    payload_digest: str | None = None


# Record types that are neither documents nor damage: CC's request, metadata and warcinfo records.
IGNORED_TYPES = (
    WarcRecordType.request | WarcRecordType.metadata | WarcRecordType.warcinfo | WarcRecordType.revisit
    | WarcRecordType.resource | WarcRecordType.continuation
)


def _items(stream: IO[bytes], base: int, max_payload_bytes: int, cursor: list[int]) -> Iterator[WarcItem | WarcDamage]:
    """Records from ``stream`` (positioned at ``base``); ``cursor[0]`` tracks the last record parsed."""
    # All record types are read (not only responses): a record with a garbage header comes back as
    # type "unknown", and it must become a recorded loss rather than vanish in a type filter.
    records = ArchiveIterator(stream, parse_http=False, fsspec_args=False)
    for record in records:
        offset = base + record.stream_pos
        cursor[0] = offset
        kind = record.record_type
        if kind & IGNORED_TYPES:
            continue
        if kind not in (WarcRecordType.response, WarcRecordType.conversion):
            yield WarcDamage(offset, offset + 1, "malformed_record",
                             f"unreadable WARC record at byte {offset} (type {kind}, id {record.record_id or 'none'})")
            continue
        is_response = kind == WarcRecordType.response
        http = None
        if is_response:
            record.parse_http()
            http = record.http_headers if record.is_http else None
            if http is None or http.status_code is None:
                yield WarcDamage(offset, offset + 1, "malformed_record",
                                 f"response record at byte {offset} has no parseable HTTP header")
                continue
        # Read one byte more than the cap, so an oversize payload is recognisable without reading it all.
        payload = record.reader.read(max_payload_bytes + 1)
        yield WarcItem(
            record_id=record.record_id or "",
            url=record.headers.get("WARC-Target-URI") or "",
            date=record.record_date,
            record_type="response" if is_response else "conversion",
            status=http.status_code if http is not None else None,
            content_type=(http.get("Content-Type") if http is not None else record.headers.get("Content-Type")) or "",
            http_charset=record.http_charset if http is not None else None,
            payload=payload,
            offset=offset,
            payload_digest=record.headers.get("WARC-Payload-Digest"),
        )


def _next_member(stream: IO[bytes], after: int, size: int) -> int | None:
    """Offset of the next gzip member header strictly after ``after``, or None."""
    position = after + 1
    while position < size:
        stream.seek(position)
        chunk = stream.read(RESUME_SCAN_BYTES + len(GZIP_MAGIC))
        found = chunk.find(GZIP_MAGIC)
        if found >= 0:
            return position + found
        position += RESUME_SCAN_BYTES
    return None


def _gzip_tail_is_complete(stream: IO[bytes], start: int) -> tuple[bool, str]:
    """Whether every gzip member from ``start`` to EOF decompresses to its end."""
    stream.seek(start)
    data = stream.read()
    while data:
        member = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            member.decompress(data)
        except zlib.error as exc:
            return False, f"corrupt gzip data: {exc}"
        if not member.eof:
            return False, "gzip member ends before its trailer"
        data = member.unused_data
    return True, ""


def _plain_tail_is_complete(stream: IO[bytes], start: int) -> tuple[bool, str]:
    """Whether the uncompressed WARC records from ``start`` all have their declared length."""
    stream.seek(start)
    data = stream.read()
    position = 0
    while position < len(data):
        head_end = data.find(b"\r\n\r\n", position)
        if head_end < 0:
            return (False, "record header without end") if data[position:].strip() else (True, "")
        length = 0
        for line in data[position:head_end].split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1].strip() or 0)
        position = head_end + 4 + length
        if position > len(data):
            return False, f"record declares {length} bytes but the shard ends first"
        while data[position : position + 2] == b"\r\n":
            position += 2
    return True, ""


def read_records(
    url: str, storage_options: StorageOptions | None = None, max_payload_bytes: int = 10 << 20
) -> Iterator[WarcItem | WarcDamage]:
    """Yield every response/conversion record of a WARC/WET shard and every unreadable region."""
    fs, path = filesystem(url, storage_options)
    with fs.open(path, "rb") as stream:
        size = fs.size(path)
        if not size:
            yield WarcDamage(0, 0, "empty_input", "the input is empty (0 bytes): an unfinished download? Replace it and re-run")
            return
        gzipped = stream.read(len(GZIP_MAGIC)) == GZIP_MAGIC
        base = 0
        cursor = [-1]  # start of the last record FastWARC parsed, of any type
        damage_start: int | None = None  # an unreadable region not reported yet
        reported: set[int] = set()  # damage start offsets already reported (one row per bad record)
        error = ""
        held: WarcItem | None = None  # the last record, yielded once the next one (or a complete tail) shows it is whole

        def pending_damage(end: int) -> Iterator[WarcDamage]:
            nonlocal damage_start
            if damage_start is not None and damage_start not in reported:
                reported.add(damage_start)
                yield WarcDamage(damage_start, end, "malformed_record", f"{error}; bytes {damage_start}-{end} skipped")
            damage_start = None

        while True:
            stream.seek(base)
            try:
                for item in _items(stream, base, max_payload_bytes, cursor):
                    if held is not None:
                        yield held
                        held = None
                    yield from pending_damage(base)
                    if isinstance(item, WarcDamage):
                        reported.add(item.start)
                        yield item
                    else:
                        held = item
                yield from pending_damage(base)
                break
            except OSError as exc:
                if held is not None:  # FastWARC read the held record whole; the failure is after it
                    yield held
                    held = None
                # Resume at the next gzip member after the last record that parsed; one reject row
                # covers the whole unreadable stretch, however many restarts it takes to cross it.
                error = str(exc)
                failed_after = max(cursor[0], base)
                if damage_start is None:
                    damage_start = failed_after
                resume = _next_member(stream, failed_after, size) if gzipped else None
                if resume is None:
                    yield from pending_damage(size)
                    return
                base = cursor[0] = resume
        tail_start = max(cursor[0], 0)
        complete, why = (_gzip_tail_is_complete if gzipped else _plain_tail_is_complete)(stream, tail_start)
        if not complete and held is not None and held.offset == tail_start:
            yield WarcDamage(tail_start, size, "truncated_record",
                             f"record at byte {tail_start} is cut off ({why}): recorded, not curated",
                             held.record_id, held.url, held.payload_digest)
            return
        if held is not None:
            yield held
        if not complete:
            yield WarcDamage(
                start=tail_start,
                end=size,
                reason="truncated_shard",
                detail=f"shard ends inside a record after byte {tail_start} ({why}); records before it were kept",
            )
