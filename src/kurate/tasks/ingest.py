"""Ingest: one WARC/WET shard → documents in ``curated`` and everything else in ``rejects``.

Each response record ends in exactly one of the two (the lineage invariant), and so does each
unreadable region of a damaged shard. ``tasks/curate.py`` runs this per input shard, followed by
the quality stages, inside one committed unit.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import ClassVar, Iterator

from pydantic import BaseModel, ConfigDict, Field

from kurate.storage.fs import StorageOptions
from kurate.tasks.decode import DecodeError, decode_payload, is_html, mime_type
from kurate.tasks.extract import DEFAULT_EXTRACT_TIMEOUT_S, ExtractionTimeout, ExtractorName, extract_text
from kurate.tasks.warc import WarcDamage, WarcItem, read_records

STAGE = "ingest"


class IngestConfig(BaseModel):
    """How WARC/WET records become documents."""

    model_config = ConfigDict(extra="forbid")

    # Fields that change how work is buffered, never what it outputs: left out of the unit hash.
    BUFFERING: ClassVar[tuple[str, ...]] = ("batch_rows",)

    extractor: ExtractorName = Field(
        "trafilatura", description="Main-text extractor: trafilatura (quality), trafilatura_fast (trafilatura's fast=True: "
                                   "~1.3x faster, a few pages differ) or resiliparse (speed)."
    )
    max_payload_bytes: int = Field(5 << 20, gt=0, description="Larger payloads are rejected as too_large.")
    min_text_chars: int = Field(1, ge=1, description="Extracted text shorter than this is rejected as empty_text.")
    batch_rows: int = Field(
        256, gt=0,
        description="Rows per batch in the curate units (filter and finalize): what a unit holds in memory at once, "
                    "and one Parquet row group each; not in the unit hash.")
    extract_timeout_s: float = Field(
        DEFAULT_EXTRACT_TIMEOUT_S, gt=0,
        description="Per-document extraction time limit in seconds; a page that takes longer is rejected as extract_timeout.")


def document_id(record_id: str, url: str = "", payload_digest: str | None = None) -> str:
    """Stable id: a hash of the WARC-Record-ID, else of URL + payload digest."""
    key = record_id or f"{url}\n{payload_digest or ''}"
    return hashlib.blake2b(key.encode(), digest_size=16).hexdigest()


@dataclass
class Outcome:
    """What happened to one record: a curated row or a reject row."""

    curated: dict | None = None
    reject: dict | None = None


def _reject(base: dict, reason: str, value: float | None = None, detail: str | None = None) -> Outcome:
    return Outcome(reject={**base, "language": None, "stage": STAGE, "reason": reason, "value": value, "detail": detail})


def process_item(item: WarcItem, source: str, config: IngestConfig) -> Outcome:
    """Decide one record: extract its main text, or say why not."""
    base = {
        "id": document_id(item.record_id, item.url, item.payload_digest),
        "url": item.url,
        "warc_record_id": item.record_id,
        "source": source,
    }
    if len(item.payload) > config.max_payload_bytes:
        return _reject(base, "too_large", float(len(item.payload)), f"payload over {config.max_payload_bytes} bytes")
    if item.record_type == "conversion":  # WET: the text was extracted already
        try:
            text = item.payload.decode("utf-8")
            charset = "utf-8"
        except UnicodeDecodeError as exc:
            return _reject(base, "decode_error", detail=str(exc)[:200])
    else:
        if item.status != 200:
            return _reject(base, "http_status", float(item.status or 0), f"HTTP {item.status}")
        if not is_html(item.content_type, item.payload):
            return _reject(base, "non_html", detail=mime_type(item.content_type) or "no content type")
        try:
            decoded = decode_payload(item.payload, item.http_charset)
        except DecodeError as exc:
            return _reject(base, "decode_error", detail=str(exc)[:200])
        charset = decoded.charset
        try:
            text = extract_text(decoded.text, config.extractor, item.url, timeout_s=config.extract_timeout_s)
        except ExtractionTimeout as exc:
            return _reject(base, "extract_timeout", config.extract_timeout_s, str(exc)[:200])
        except Exception as exc:  # noqa: BLE001 - extractors raise anything on hostile HTML; record it
            return _reject(base, "extract_error", detail=f"{type(exc).__name__}: {exc}"[:200])
    text = text.strip()
    if len(text) < config.min_text_chars:
        return _reject(base, "empty_text", float(len(text)))
    return Outcome(
        curated={
            **base,
            "warc_date": item.date,
            "content_type": mime_type(item.content_type),
            "charset": charset,
            "text": text,
        }
    )


def damage_outcome(damage: WarcDamage, source: str) -> Outcome:
    """A reject for an unreadable region; a truncated record keeps its own document id and URL."""
    if damage.record_id or damage.url:
        ident = document_id(damage.record_id, damage.url, damage.payload_digest)
    else:
        ident = document_id(f"{source}#{damage.start}-{damage.end}")
    base = {
        "id": ident,
        "url": damage.url or None,
        "warc_record_id": damage.record_id or None,
        "source": source,
    }
    return _reject(base, damage.reason, float(damage.end - damage.start), damage.detail)


def ingest_records(source: str, config: IngestConfig, storage_options: StorageOptions | None = None) -> Iterator[Outcome]:
    for entry in read_records(source, storage_options, config.max_payload_bytes):
        yield damage_outcome(entry, source) if isinstance(entry, WarcDamage) else process_item(entry, source, config)
