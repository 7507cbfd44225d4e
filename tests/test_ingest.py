"""Ingest on real WARC files the project writes itself: lineage, reasons, charsets, damage."""

from __future__ import annotations

import gzip

import pytest

from kurate.storage.catalog import Catalog
from kurate.tasks.curate import run_local
from kurate.tasks.ingest import IngestConfig, document_id, ingest_records
from kurate.tasks.quality import LanguageConfig, QualityConfig
from kurate.tasks.warc import WarcDamage, WarcItem, read_records

ALL_LANGUAGES = QualityConfig(language=LanguageConfig(keep=["de", "en", "fr"]))


def _count(root, sql):
    return Catalog(root).query(sql).to_pylist()[0]["n"]


def _curate(path, root, **ingest):
    return run_local([str(path)], root, IngestConfig(**ingest), ALL_LANGUAGES)


@pytest.mark.parametrize("extractor", ["trafilatura", "trafilatura_fast", "resiliparse"])
def test_every_record_ends_in_curated_or_rejects(tmp_path, demo_warc, extractor):
    path, manifest = demo_warc
    root = str(tmp_path / "root")
    result = _curate(path, root, extractor=extractor)["final"][0]
    responses_in = manifest.responses + manifest.malformed
    curated = _count(root, "select count(*) n from curated")
    rejected = _count(root, "select count(*) n from rejects")
    assert curated + rejected == responses_in == result.records
    assert _count(root, "select count(distinct id) n from (select id from curated union all select id from rejects)") == responses_in
    reasons = {r["reason"]: r["n"] for r in Catalog(root).query("select reason, count(*) n from rejects where stage = 'ingest' group by 1").to_pylist()}
    assert reasons == {"http_status": 2, "non_html": 1, "empty_text": 1, "malformed_record": 1}
    statuses = Catalog(root).query("select value from rejects where reason='http_status' order by value").column("value").to_pylist()
    assert statuses == [301.0, 404.0]
    assert _count(root, "select count(*) n from rejects where stage is null or reason is null") == 0


def test_article_text_and_charsets(demo_warc):
    path, _ = demo_warc
    docs = [o.curated for o in ingest_records(str(path), IngestConfig()) if o.curated is not None]
    latin = [d for d in docs if "hochbeete" in d["url"]]
    assert latin and latin[0]["charset"] == "cp1252" and "Frühjahr" in latin[0]["text"]
    assert "\ufffd" not in "".join(d["text"] for d in docs)
    assert max(len(d["text"]) for d in docs) > 2000  # articles keep their paragraphs


def test_ids_are_stable_across_runs_and_roots(tmp_path, demo_warc):
    path, _ = demo_warc
    ids = []
    for name in ("a", "b"):
        root = str(tmp_path / name)
        _curate(path, root, extractor="resiliparse")
        ids.append(Catalog(root).query("select id from curated order by id").column("id").to_pylist())
    assert ids[0] == ids[1] and len(set(ids[0])) == len(ids[0])
    assert document_id("<urn:uuid:1>") == document_id("<urn:uuid:1>") != document_id("<urn:uuid:2>")


def test_rerun_of_a_committed_shard_is_skipped(tmp_path, demo_warc):
    path, _ = demo_warc
    root = str(tmp_path / "root")
    first = _curate(path, root, extractor="resiliparse")
    before = _count(root, "select count(*) n from curated")
    second = _curate(path, root, extractor="resiliparse")
    assert first["skipped"] == 0 and second["skipped"] == 1 and second["final"] == []
    assert _count(root, "select count(*) n from curated") == before == first["final"][0].kept


def test_truncated_shard_keeps_what_it_read_and_records_the_rest(tmp_path, demo_warc):
    path, manifest = demo_warc
    data = path.read_bytes()
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(data[: len(data) // 2])
    root = str(tmp_path / "root")
    result = _curate(cut, root, extractor="resiliparse")["final"][0]
    kept = _count(root, "select count(*) n from curated")
    assert 0 < kept < manifest.responses
    # one row for the cut: the partial record itself (truncated_record) when a response was cut,
    # else the unreadable tail (truncated_shard); never a document with missing text
    rows = Catalog(root).query("select reason, detail from rejects where reason in ('truncated_shard', 'truncated_record')").to_pylist()
    assert len(rows) == 1 and ("shard ends inside a record" in rows[0]["detail"] or "is cut off" in rows[0]["detail"])
    assert result.records == kept + _count(root, "select count(*) n from rejects")


def test_corrupt_gzip_member_is_skipped_and_reading_resumes(tmp_path):
    from kurate.demo.warc import build_demo_warc

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

    from kurate.demo.records import make_record, write_warc

    text = "Ein kurzer deutscher Text aus einer WET-Datei.\nZweite Zeile.".encode()
    record = make_record(
        "conversion", "<urn:uuid:00000000-0000-0000-0000-000000000001>", datetime(2026, 9, 1, tzinfo=timezone.utc),
        text, content_type="text/plain", fields=[("WARC-Target-URI", "https://example.test/wet")],
    )
    path = tmp_path / "x.warc.wet.gz"
    write_warc(str(path), [record])
    outcomes = list(ingest_records(str(path), IngestConfig()))
    assert len(outcomes) == 1 and outcomes[0].curated["text"].startswith("Ein kurzer")


def test_oversize_payload_is_rejected_as_too_large(tmp_path, demo_warc):
    path, _ = demo_warc
    root = str(tmp_path / "root")
    _curate(path, root, max_payload_bytes=2000)
    assert _count(root, "select count(*) n from rejects where reason = 'too_large' and value > 2000") > 5
