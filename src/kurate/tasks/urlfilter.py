"""URL filtering before extraction: a blocklist of domains and URLs, plus spam/adult host keywords.

Blocklist file (local path or any fsspec URL, optionally compressed): one entry per line, ``#``
starts a comment. An entry with a ``/`` is a URL (scheme, ``www.``-less host variants and a
trailing slash do not matter); any other entry is a domain and blocks itself and every subdomain
(``example.com`` blocks ``www.example.com`` but not ``notexample.com``). Lookups are set
membership per host suffix, so lists of millions of domains (e.g. UT1) cost O(labels) per URL.

Keywords are matched against whole host tokens (the host split on ``.`` and ``-``), never
inside words: ``sex-shop.example`` is blocked, ``essex.ac.uk`` is not.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping
from urllib.parse import urlsplit

from kurate.storage.fs import filesystem
from kurate.tasks.filters.base import KEEP, Verdict, reject

# Host tokens that mark adult or gambling/pharma spam sites, chosen to have no common innocent
# meaning as a whole token (so no "adult", "bet", "slots", "loans"). English and German.
BUILTIN_KEYWORDS: frozenset[str] = frozenset({
    "porn", "porno", "pornhub", "xxx", "sex", "sexy", "nude", "nudes", "hentai", "milf",
    "erotik", "erotic", "escort", "escorts", "camgirl", "camgirls", "bdsm", "fuck",
    "casino", "casinos", "viagra", "cialis",
})  # fmt: skip


def _parts(url: str) -> tuple[str, str] | None:
    """(host, path with query) of a URL, normalised for matching; None when it has no host."""
    url = url.strip()
    if "://" not in url:
        url = "http://" + url  # blocklist entries and some inputs omit the scheme
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
    except ValueError:  # e.g. "http://[::1" (unbalanced IPv6 bracket)
        return None
    if not host or any(ch <= " " or ch == "\x7f" for ch in host):  # empty, or control/space inside
        return None
    path = parts.path.rstrip("/")
    if parts.query:
        path += "?" + parts.query
    return host, path


def _without_www(host: str) -> str:
    return host[4:] if host.startswith("www.") else host


def read_blocklist(lines: Iterable[str]) -> tuple[set[str], set[str]]:
    """(domains, url keys) from blocklist lines; a url key is "host/path" with ``www.`` dropped."""
    domains: set[str] = set()
    urls: set[str] = set()
    for raw in lines:
        entry = raw.split("#", 1)[0].strip().lower()
        if not entry:
            continue
        entry = entry.split()[-1]  # hosts-file lines ("0.0.0.0 example.com") name the domain last
        if "/" in entry:
            parts = _parts(entry)
            if parts is not None:
                urls.add(_without_www(parts[0]) + parts[1])
        else:
            domains.add(entry.removeprefix("*.").strip("."))
    return domains, urls


class UrlFilter:
    """Decide from a document's URL alone; ``check`` never raises."""

    def __init__(
        self,
        blocklist: str | None = None,
        storage_options: Mapping[str, Mapping[str, Any]] | None = None,
        builtin_keywords: bool = True,
    ):
        self.domains: set[str] = set()
        self.urls: set[str] = set()
        if blocklist is not None:
            fs, path = filesystem(blocklist, storage_options)
            with fs.open(path, "rt", encoding="utf-8", compression="infer") as fh:
                self.domains, self.urls = read_blocklist(fh)
        self.keywords: frozenset[str] = BUILTIN_KEYWORDS if builtin_keywords else frozenset()

    def check(self, url: str) -> Verdict:
        parts = _parts(url) if isinstance(url, str) else None
        if parts is None:
            return reject("url:invalid", None, f"no host in URL {url!r:.200}")
        host, path = parts
        labels = host.split(".")
        for i in range(len(labels)):  # the host itself, then each parent domain
            domain = ".".join(labels[i:])
            if domain in self.domains:
                return reject("url:blocked_domain", None, f"domain {domain}")
        if self.urls:
            key = _without_www(host) + path
            if key in self.urls:
                return reject("url:blocked_url", None, f"url {key}")
        if self.keywords:
            for token in host.replace("-", ".").split("."):
                if token in self.keywords:
                    return reject("url:keyword", None, f"keyword {token!r}")
        return KEEP
