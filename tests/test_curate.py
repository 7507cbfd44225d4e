"""The curate stage end to end on WARC files written here: lineage, dedup across shards and runs,
reference roots, config generations, bad input, and the lineage questions `kurate query` answers."""

from __future__ import annotations

import dataclasses

import pyarrow.parquet as pq
import pytest

from kurate.demo.pages import DemoPage, demo_pages
from kurate.demo.records import page_records, write_warc
from kurate.storage.catalog import Catalog
from kurate.storage.shards import ShardStore
from kurate.tasks.curate import DedupConfig, run_local
from kurate.tasks.ingest import IngestConfig
from kurate.tasks.quality import LanguageConfig, QualityConfig

QUALITY = QualityConfig(language=LanguageConfig(keep=["de", "en", "fr"]))
INGEST = IngestConfig(extractor="resiliparse")


def _curate(inputs, root, dedup=None, quality=QUALITY):
    return run_local([str(p) for p in inputs], str(root), INGEST, quality, dedup)


def _rows(root, sql):
    return Catalog(str(root)).query(sql).to_pylist()


def _n(root, sql):
    return _rows(root, sql)[0]["n"]


def _write_pages(path, pages, first_index):
    write_warc(str(path), [r for i, page in enumerate(pages) for r in page_records(page, first_index + i)])
    return path


def _articles():
    return [p for p in demo_pages() if p.kind.startswith("article-")]


def test_lineage_every_record_in_exactly_one_place(tmp_path, demo_warc):
    path, manifest = demo_warc
    result = _curate([path], tmp_path)
    records = manifest.responses + manifest.malformed
    assert result["final"][0].records == records
    assert _n(tmp_path, "select count(*) n from (select id from curated union all select id from rejects)") == records
    assert _n(tmp_path, "select count(distinct id) n from (select id from curated union all select id from rejects)") == records
    stages = {r["stage"] for r in _rows(tmp_path, "select distinct stage from rejects")}
    assert {"ingest", "url", "language", "dedup"} <= stages
    # the planted near-duplicates and the exact duplicate of the demo are found
    kinds = {r["reason"]: r["n"] for r in _rows(tmp_path, "select reason, count(*) n from rejects where stage='dedup' group by 1")}
    assert kinds == {"near_duplicate": 2, "exact_duplicate": 1}
    # rejected documents after language ID carry their language
    assert _n(tmp_path, "select count(*) n from rejects where stage='dedup' and language is null") == 0
    assert _n(tmp_path, "select count(*) n from curated where language not in ('de','en','fr')") == 0


def test_why_was_this_url_dropped_and_retention_by_stage_and_language(tmp_path, demo_warc):
    _curate([demo_warc[0]], tmp_path)
    why = _rows(tmp_path, "select stage, reason, detail from rejects where url = 'https://www.example-casino-bonus.com/free-spins-no-deposit-2026.html'")
    assert why == [{"stage": "url", "reason": "url:keyword", "detail": "keyword 'casino'"}]
    retention = _rows(tmp_path, """
        select language, stage, count(*) as n from (
            select language, stage from rejects union all select language, 'curated' as stage from curated)
        group by all order by all""")
    assert {"language": "de", "stage": "curated", "n": _n(tmp_path, "select count(*) n from curated where language='de'")} in retention


def test_dedup_holds_across_shards_and_runs_and_committed_docs_win(tmp_path, demo_warc):
    first = tmp_path / "shard-1.warc.gz"
    articles = _articles()
    _write_pages(first, articles[:6], 0)
    root = tmp_path / "root"
    _curate([first], root)
    before = _rows(root, "select id, url from curated order by id")
    assert len(before) >= 4

    # A later dump re-publishes two of those articles under new URLs, plus one new article.
    copies = [dataclasses.replace(p, url=p.url.replace("https://", "https://mirror.")) for p in articles[:2]]
    second = _write_pages(tmp_path / "shard-2.warc.gz", copies + [articles[7]], 100)
    result = _curate([first, second], root)
    assert result["skipped"] == 1 and len(result["final"]) == 1
    assert _rows(root, "select id, url from curated where source like '%shard-1%' order by id") == before
    dropped = _rows(root, "select url, reason, detail from rejects where stage = 'dedup' order by url")
    assert {r["url"] for r in dropped} == {p.url for p in copies}
    assert all(r["reason"] == "exact_duplicate" for r in dropped)
    assert _n(root, "select count(*) n from curated where url like 'https://mirror.%'") == 0


def test_reference_roots_dedup_a_new_dump_against_an_earlier_curated_dataset(tmp_path):
    articles = _articles()
    old_root, new_root = tmp_path / "old", tmp_path / "new"
    _curate([_write_pages(tmp_path / "old.warc.gz", articles[:4], 0)], old_root)
    near = dataclasses.replace(articles[0], url="https://copy.example.org/a",
                               body=articles[0].body.replace(b"<h1>", b"<h1>Eilmeldung: ", 1))
    new = _write_pages(tmp_path / "new.warc.gz", [near, articles[5]], 50)
    _curate([new], new_root, DedupConfig(reference_roots=[str(old_root)]))
    assert _rows(new_root, "select url, stage from rejects where url = 'https://copy.example.org/a'") == [
        {"url": "https://copy.example.org/a", "stage": "dedup"}]
    assert _n(new_root, "select count(*) n from curated") == 1
    # without the reference it would have been kept
    _curate([new], tmp_path / "alone")
    assert _n(tmp_path / "alone", "select count(*) n from curated") == 2


def test_a_new_config_supersedes_the_old_generation_in_the_views(tmp_path, demo_warc):
    path = demo_warc[0]
    _curate([path], tmp_path)
    everything = QualityConfig(language=LanguageConfig(keep=["de", "en", "fr"]), filters={"enabled": []})
    _curate([path], tmp_path, quality=everything)
    records = _n(tmp_path, "select count(*) n from (select id from curated union all select id from rejects)")
    assert records == demo_warc[1].responses + demo_warc[1].malformed
    assert _n(tmp_path, "select count(*) n from rejects where stage like 'gopher%'") == 0
    assert len(ShardStore(str(tmp_path)).manifests("curate")) == 2  # both generations stay on disk


def test_bad_pages_are_kept_or_rejected_with_a_reason(tmp_path):
    article = _articles()[0]
    html = lambda body: b"<html><head><meta charset='utf-8'></head><body>" + body + b"</body></html>"  # noqa: E731
    pages = [
        DemoPage("https://bad.example/giant-line", html(b"<p>" + b"wort " * 150_000 + b"</p>"), kind="giant"),
        DemoPage("https://bad.example/binary", bytes(range(256)) * 400, content_type="text/html", kind="binary"),
        DemoPage("https://bad.example/garbage", html("".join(chr(0x2500 + i % 200) for i in range(20000)).encode()), kind="garbage"),
        DemoPage("https://bad.example/emoji", html(("\U0001F600\u200d\u0301" * 3000).encode()), kind="emoji"),
        DemoPage("https://bad.example/mixed", html(article.body[:3000] + "<p>這是一個中文段落。</p>".encode() * 200), kind="mixed"),
        DemoPage("https://bad.example/ten-mb", html(b"<p>Ein Satz mit Inhalt. </p>" * 400_000), kind="big"),
    ]
    path = _write_pages(tmp_path / "bad.warc.gz", pages, 0)
    result = _curate([path], tmp_path / "root")["final"][0]
    assert result.records == len(pages)
    decided = _rows(tmp_path / "root", "select url, stage, reason from rejects union all select url, 'kept', '' from curated")
    assert {r["url"] for r in decided} == {p.url for p in pages}
    assert all(r["reason"] for r in decided if r["stage"] != "kept")
    reasons = {r["url"].rsplit("/", 1)[1]: r["reason"] for r in decided}
    assert reasons["ten-mb"] == "too_large" and reasons["binary"] == "decode_error"


@pytest.mark.parametrize("languages,expected", [(["de"], {"de"}), (["en", "fr"], {"en", "fr"})])
def test_language_selection(tmp_path, demo_warc, languages, expected):
    _curate([demo_warc[0]], tmp_path, quality=QualityConfig(language=LanguageConfig(keep=languages)))
    assert {r["language"] for r in _rows(tmp_path, "select distinct language from curated")} == expected
    dropped = {r["reason"] for r in _rows(tmp_path, "select reason from rejects where stage = 'language'")}
    assert all(reason.startswith("language:") for reason in dropped)


def test_the_same_shard_twice_keeps_one_copy_of_each_record(tmp_path, demo_warc):
    """Records repeated in the input share their WARC-Record-ID (so their id): one copy is kept."""
    path, manifest = demo_warc
    copy = tmp_path / "copy-of-demo.warc.gz"
    copy.write_bytes(path.read_bytes())
    _curate([path], tmp_path / "once")
    _curate([path, copy], tmp_path / "twice")
    once = _rows(tmp_path / "once", "select id from curated order by id")
    assert _rows(tmp_path / "twice", "select id from curated order by id") == once and once
    records = manifest.responses + manifest.malformed
    assert _n(tmp_path / "twice", "select count(*) n from (select id from curated union all select id from rejects)") == 2 * records
    repeated = _rows(tmp_path / "twice", "select detail from rejects where stage = 'dedup' and detail like '%repeated in the input%'")
    assert len(repeated) >= len(once)


def test_quotes_in_paths_and_values_never_reach_the_sql(tmp_path, demo_warc):
    """File names travel to DuckDB as parameters (dedup, the catalog's root lock) or through the
    catalog's one quoting helper (its views); a quote in the root, the shard name or a value is data."""
    path, manifest = demo_warc
    shard = tmp_path / "o'brien's shard.warc.gz"
    shard.write_bytes(path.read_bytes())
    root = tmp_path / "it's a root"
    result = _curate([shard], root)
    assert result["final"][0].records == manifest.responses + manifest.malformed
    assert _n(root, "select count(*) n from rejects where stage = 'dedup'") == 3  # dedup read every signature file
    catalog = Catalog(str(root))
    assert catalog.query("select count(*) n from curated where source = ?", [str(shard)]).to_pylist()[0]["n"] > 0
    assert catalog.query("select count(*) n from curated where url = $url", {"url": "x' or '1'='1"}).to_pylist() == [{"n": 0}]


def test_tiny_batches_commit_exactly_the_rows_of_one_batch(tmp_path, demo_warc):
    """Filter and finalize stream a shard ``ingest.batch_rows`` rows at a time: with batches of 1 and 3
    rows (many row groups, dedup decisions spread over many batches) the committed rows, reasons and
    counts are those of one batch holding the whole shard."""
    path, manifest = demo_warc
    copy = tmp_path / "copy-of-demo.warc.gz"  # the same records again: every document a duplicate of one in `path`
    copy.write_bytes(path.read_bytes())

    def curate(batch_rows: int):
        root = tmp_path / f"batch-{batch_rows}"
        ingest = IngestConfig(extractor="resiliparse", batch_rows=batch_rows)
        result = run_local([str(path), str(copy)], str(root), ingest, QUALITY)
        tables = {name: _rows(root, f"select * from {name} order by all") for name in ("curated", "rejects")}
        counts = [(r.input, r.records, r.kept, r.rejected, r.reasons) for r in result["filtered"] + result["final"]]
        row_groups = sum(pq.ParquetFile(f).num_row_groups for f in (root / "staged").glob("*.parquet"))
        return tables, counts, row_groups, ShardStore(str(root)).current_manifests("curate")

    whole, whole_counts, whole_groups, _ = curate(100_000)
    for batch_rows in (1, 3):
        tables, counts, row_groups, manifests = curate(batch_rows)
        assert row_groups > whole_groups  # the tiny batches really were many
        assert counts == whole_counts
        assert tables == whole
    records = manifest.responses + manifest.malformed
    assert len(whole["curated"]) + len(whole["rejects"]) == 2 * records and whole["curated"]
    assert {r["stage"] for r in whole["rejects"]} >= {"ingest", "language", "dedup"}
    assert len(manifests) == 2  # both inputs finalized, each once
