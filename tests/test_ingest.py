"""Ingest on real WARC files the project writes itself: lineage, reasons, charsets, damage."""

from __future__ import annotations

import gzip

import pytest

from storage.catalog import Catalog
from tasks.ingest import IngestConfig, document_id, ingest_shard
from tasks.warc import WarcDamage, WarcItem, read_records


def _count(root, sql):
    return Catalog(root).query(sql).to_pylist()[0]["n"]


@pytest.mark.parametrize("extractor", ["trafilatura", "resiliparse"])
def test_every_record_ends_in_curated_or_rejects(tmp_path, demo_warc, extractor):
    path, manifest = demo_warc
    root = str(tmp_path / "root")
    result = ingest_shard(str(path), root, IngestConfig(extractor=extractor), "h")
    responses_in = manifest.responses + manifest.malformed
    curated = _count(root, "select count(*) n from curated")
    rejected = _count(root, "select count(*) n from rejects")
    assert curated + rejected == responses_in == result.records
    assert _count(root, "select count(distinct id) n from (select id from curated union all select id from rejects)") == responses_in
    reasons = {r["reason"]: r["n"] for r in Catalog(root).query("select reason, count(*) n from rejects group by 1").to_pylist()}
    assert reasons == {"http_status": 2, "non_html": 1, "empty_text": 1, "malformed_record": 1}
    statuses = Catalog(root).query("select value from rejects where reason='http_status' order by value").column("value").to_pylist()
    assert statuses == [301.0, 404.0]
    assert _count(root, "select count(*) n from rejects where stage = 'ingest'") == rejected


def test_article_text_and_charsets(tmp_path, demo_warc):
    path, _ = demo_warc
    root = str(tmp_path / "root")
    ingest_shard(str(path), root, IngestConfig(), "h")
    latin = Catalog(root).query("select charset, text from curated where url like '%hochbeete%'").to_pylist()
    assert latin and latin[0]["charset"] == "cp1252" and "Frühjahr" in latin[0]["text"]
    assert "\ufffd" not in "".join(Catalog(root).query("select text from curated").column("text").to_pylist())
    # boilerplate pages keep little text; articles keep their paragraphs
    lengths = {r["url"]: r["n"] for r in Catalog(root).query("select url, length(text) n from curated").to_pylist()}
    assert max(lengths.values()) > 2000


def test_ids_are_stable_across_runs_and_roots(tmp_path, demo_warc):
    path, _ = demo_warc
    ids = []
    for name in ("a", "b"):
        root = str(tmp_path / name)
        ingest_shard(str(path), root, IngestConfig(extractor="resiliparse"), "h")
        ids.append(Catalog(root).query("select id from curated order by id").column("id").to_pylist())
    assert ids[0] == ids[1] and len(set(ids[0])) == len(ids[0])
    assert document_id("<urn:uuid:1>") == document_id("<urn:uuid:1>") != document_id("<urn:uuid:2>")


def test_rerun_of_a_committed_shard_is_skipped(tmp_path, demo_warc):
    path, _ = demo_warc
    root = str(tmp_path / "root")
    first = ingest_shard(str(path), root, IngestConfig(extractor="resiliparse"), "h")
    second = ingest_shard(str(path), root, IngestConfig(extractor="resiliparse"), "h")
    assert not first.skipped and second.skipped and second.records == first.records
    assert _count(root, "select count(*) n from curated") == first.curated


def test_truncated_shard_keeps_what_it_read_and_records_the_rest(tmp_path, demo_warc):
    path, manifest = demo_warc
    data = path.read_bytes()
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(data[: len(data) // 2])
    root = str(tmp_path / "root")
    result = ingest_shard(str(cut), root, IngestConfig(extractor="resiliparse"), "h")
    kept = _count(root, "select count(*) n from curated")
    assert 0 < kept < manifest.responses
    rows = Catalog(root).query("select reason, detail from rejects where reason = 'truncated_shard'").to_pylist()
    assert len(rows) == 1 and "shard ends inside a record" in rows[0]["detail"]
    assert result.records == kept + _count(root, "select count(*) n from rejects")


def test_corrupt_gzip_member_is_skipped_and_reading_resumes(tmp_path):
    from tasks.demo_warc import build_demo_warc

    path = tmp_path / "junk.warc.gz"
    manifest = build_demo_warc(str(path), malformed_style="junk")
    entries = list(read_records(str(path)))
    assert sum(isinstance(e, WarcItem) for e in entries) == manifest.responses
    damage = [e for e in entries if isinstance(e, WarcDamage)]
    assert len(damage) == 1 and damage[0].reason == "malformed_record"


def test_uncompressed_and_truncated_plain_warc(tmp_path, demo_warc):
    path, manifest = demo_warc
    plain = gzip.decompress(path.read_bytes())
    (tmp_path / "p.warc").write_bytes(plain[:-300])
    entries = list(read_records(str(tmp_path / "p.warc")))
    assert sum(isinstance(e, WarcItem) for e in entries) == manifest.responses
    assert any(isinstance(e, WarcDamage) and e.reason == "truncated_shard" for e in entries)


def test_wet_conversion_records_are_documents(tmp_path):
    from datetime import datetime, timezone

    from tasks.demo_warc import make_record, write_warc

    text = "Ein kurzer deutscher Text aus einer WET-Datei.\nZweite Zeile.".encode()
    record = make_record(
        "conversion", "<urn:uuid:00000000-0000-0000-0000-000000000001>", datetime(2026, 9, 1, tzinfo=timezone.utc),
        text, content_type="text/plain", fields=[("WARC-Target-URI", "https://example.test/wet")],
    )
    path = tmp_path / "x.warc.wet.gz"
    write_warc(str(path), [record])
    root = str(tmp_path / "root")
    result = ingest_shard(str(path), root, IngestConfig(), "h")
    assert result.curated == 1
    assert Catalog(root).query("select text from curated").column("text").to_pylist()[0].startswith("Ein kurzer")


def test_oversize_payload_is_rejected_as_too_large(tmp_path, demo_warc):
    path, _ = demo_warc
    root = str(tmp_path / "root")
    ingest_shard(str(path), root, IngestConfig(max_payload_bytes=2000), "h")
    assert _count(root, "select count(*) n from rejects where reason = 'too_large' and value > 2000") > 5
