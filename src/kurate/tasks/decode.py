"""Turning a response payload into text: HTML detection and charset detection.

The declared charset (HTTP header, then ``<meta charset>``) is tried first; uchardet (through
resiliparse) decides when nothing is declared or the declaration is wrong. Payloads that look binary
are refused instead of being decoded into noise.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from resiliparse.parse.encoding import bytes_to_str, detect_encoding

HTML_TYPES = ("text/html", "application/xhtml+xml")
META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
SNIFF_BYTES = 4096


@dataclass
class Decoded:
    text: str
    charset: str


class DecodeError(ValueError):
    pass


def mime_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def is_html(content_type: str, payload: bytes) -> bool:
    """HTML by header; a missing header falls back to sniffing the first bytes."""
    mime = mime_type(content_type)
    if mime:
        return mime in HTML_TYPES
    head = payload[:SNIFF_BYTES].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<body" in head


def _known(label: str | None) -> str | None:
    if not label:
        return None
    try:
        return codecs.lookup(label.strip().strip("\"'")).name
    except LookupError:
        return None


def declared_charset(http_charset: str | None, payload: bytes) -> str | None:
    found = _known(http_charset)
    if found:
        return found
    match = META_CHARSET.search(payload[:SNIFF_BYTES])
    return _known(match.group(1).decode("ascii", "ignore")) if match else None


def looks_binary(payload: bytes) -> bool:
    sample = payload[:SNIFF_BYTES]
    return b"\x00" in sample


def decode_payload(payload: bytes, http_charset: str | None) -> Decoded:
    """Decode with the declared charset when it works, else with the detected one."""
    if looks_binary(payload):
        raise DecodeError("payload contains NUL bytes: binary, not text")
    declared = declared_charset(http_charset, payload)
    if declared:
        try:
            return Decoded(payload.decode(declared), declared)
        except UnicodeDecodeError:
            pass  # a wrong declaration is common; fall through to detection
    detected = _known(detect_encoding(payload)) or "utf-8"
    text = bytes_to_str(payload, detected, errors="replace")
    if text.count("\ufffd") > max(8, len(text) // 20):
        raise DecodeError(f"undecodable: {text.count(chr(0xFFFD))} replacement characters after decoding as {detected}")
    return Decoded(text, detected)
