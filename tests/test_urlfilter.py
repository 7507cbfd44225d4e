"""URL filter: blocklists (local file, fsspec URL, hosts-file lines) and host keywords."""

from __future__ import annotations

import fsspec
import pytest

from kurate.tasks.filters import KEEP
from kurate.tasks.urlfilter import BUILTIN_KEYWORDS, UrlFilter, read_blocklist

BLOCKLIST = """\
# spam domains collected 2024-05
example-casino.com
Spam-Example.NET   # trailing comment
*.wildcard.example
0.0.0.0 hosts-style.example

# single pages
https://www.news.example.org/ads/landing.html
blog.example.de/2023/10/gewinnspiel/
"""


@pytest.fixture
def url_filter(tmp_path) -> UrlFilter:
    path = tmp_path / "blocklist.txt"
    path.write_text(BLOCKLIST, encoding="utf-8")
    return UrlFilter(str(path))


def test_blocklist_parsing():
    domains, urls = read_blocklist(BLOCKLIST.splitlines())
    assert domains == {"example-casino.com", "spam-example.net", "wildcard.example", "hosts-style.example"}
    assert urls == {"news.example.org/ads/landing.html", "blog.example.de/2023/10/gewinnspiel"}


@pytest.mark.parametrize(
    "url, domain",
    [
        ("https://example-casino.com/", "example-casino.com"),
        ("http://www.example-casino.com/slots?id=3", "example-casino.com"),
        ("https://a.b.spam-example.net/x", "spam-example.net"),
        ("https://SPAM-EXAMPLE.NET./", "spam-example.net"),
        ("http://spam-example.net:8080/page", "spam-example.net"),
        ("https://deep.wildcard.example/", "wildcard.example"),
        ("hosts-style.example/path", "hosts-style.example"),
    ],
)
def test_blocked_domains_and_subdomains(url_filter, url, domain):
    v = url_filter.check(url)
    assert (v.keep, v.reason, v.detail) == (False, "url:blocked_domain", f"domain {domain}")


@pytest.mark.parametrize(
    "url",
    ["https://notspam-example.net/", "https://spam-example.net.evil.org/", "https://spam-example.network/"],
)
def test_similar_domains_are_not_blocked(url_filter, url):
    assert url_filter.check(url) == KEEP


def test_blocked_urls(url_filter):
    for url in (
        "http://news.example.org/ads/landing.html",
        "https://www.news.example.org/ads/landing.html#top",
        "https://blog.example.de/2023/10/gewinnspiel",
    ):
        v = url_filter.check(url)
        assert (v.keep, v.reason) == (False, "url:blocked_url"), url
    assert url_filter.check("https://news.example.org/ads/other.html") == KEEP
    assert url_filter.check("https://news.example.org/") == KEEP


@pytest.mark.parametrize(
    "url, keyword",
    [
        ("https://www.best-casino-bonus.de/", "casino"),
        ("http://sex-shop.example/", "sex"),
        ("https://cheap.viagra.example.com/buy", "viagra"),
        ("https://XXX.example/", "xxx"),
    ],
)
def test_builtin_keywords_match_host_tokens(url_filter, url, keyword):
    v = url_filter.check(url)
    assert (v.keep, v.reason, v.detail) == (False, "url:keyword", f"keyword {keyword!r}")


@pytest.mark.parametrize(
    "url",
    [
        "https://www.essex.ac.uk/",  # "sex" inside a word
        "https://www.middlesex.gov.uk/",
        "https://www.sussex.de/",
        "https://www.example.org/casino-royale-film-review",  # keywords in the path are not checked
        "https://www.spiegel.de/wirtschaft/",
    ],
)
def test_keywords_do_not_match_inside_words(url_filter, url):
    assert url_filter.check(url) == KEEP


def test_keywords_can_be_switched_off():
    assert UrlFilter(builtin_keywords=False).check("https://casino.example/") == KEEP
    assert UrlFilter().check("https://casino.example/").reason == "url:keyword"
    assert 15 <= len(BUILTIN_KEYWORDS) <= 40


def test_blocklist_from_an_fsspec_url():
    with fsspec.open("memory://kurate-tests/blocklist.txt", "wt") as fh:
        fh.write("blocked.example\n")
    url_filter = UrlFilter("memory://kurate-tests/blocklist.txt", storage_options={"memory": {}})
    assert url_filter.check("https://www.blocked.example/").reason == "url:blocked_domain"
    assert url_filter.check("https://fine.example/") == KEEP


def test_gzipped_blocklist(tmp_path):
    import gzip

    path = tmp_path / "domains.txt.gz"
    path.write_bytes(gzip.compress(b"gz-blocked.example\n"))
    assert UrlFilter(str(path)).check("http://gz-blocked.example/").reason == "url:blocked_domain"


def test_missing_blocklist_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        UrlFilter(str(tmp_path / "nope.txt"))


@pytest.mark.parametrize("url", ["", "   ", "http://", "http://[::1", "\x00\x01", "::::", "https://exa mple.com/"])
def test_invalid_urls_are_rejected_not_raised(url_filter, url):
    v = url_filter.check(url)
    assert (v.keep, v.reason) == (False, "url:invalid")


def test_odd_but_valid_urls_never_raise(url_filter):
    for url in ("http://[::1]:8080/x", "https://bücher.example/straße", "http://192.168.0.1/", "https://a" * 5000):
        assert url_filter.check(url).reason in (None, "url:keyword", "url:blocked_domain")
