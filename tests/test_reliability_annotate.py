"""Issue 16, case 4: the annotate sample is a committed decision and labels are never doubled.

Before: the sample's unit name hashed the list of curated units, so adding a shard with no new
documents drew a second sample, re-asked every judge and doubled the labels (50 → 100 rows for the
same 50 (id, judge) pairs); distill then trained on the duplicates. Here the real annotate flow runs
over a root that grows shard by shard, and the judge's own ``label`` method counts what it is asked.
"""

from __future__ import annotations

import shutil

import pytest

from kurate.annotators.annotate import STAGE_SAMPLE, stage_of
from kurate.annotators.judge import Judge
from kurate.demo.warc import build_demo_warc, make_bulk_warc
from kurate.flows.annotate import annotate
from kurate.flows.config import load_config
from kurate.storage.catalog import Catalog
from kurate.storage.shards import ShardStore
from kurate.tasks.curate import run_local
from kurate.tasks.ingest import IngestConfig
from kurate.tasks.quality import LanguageConfig, QualityConfig
from tiny_models import build_tiny_judge


@pytest.fixture()
def asked(monkeypatch):
    """Every document id the judges are asked about (the real Judge.label still answers)."""
    seen: list[str] = []
    real = Judge.label

    def counting(self, docs):
        seen.extend(d["id"] for d in docs)
        return real(self, docs)

    monkeypatch.setattr(Judge, "label", counting)
    return seen


def _curate(root, inputs):
    run_local([str(p) for p in inputs], root, IngestConfig(extractor="resiliparse"),
              QualityConfig(language=LanguageConfig(keep=["de", "en", "fr"])))


def _rows(root, sql):
    return Catalog(root).query(sql).to_pylist()


def _config(root, model, per_language=9, seed=0, mode="logits"):
    return load_config(None, [], {"root": root, "ray": {"executor": "local"}, "annotate": {
        "judges": [{"name": "forced", "model": model, "mode": mode, "samples": 1, "max_new_tokens": 2}],
        "sample": {"per_language": per_language, "seed": seed}, "docs_per_unit": 4}})


@pytest.mark.e2e
def test_adding_shards_extends_the_sample_and_never_reasks_or_doubles(prefect_server, tmp_path, asked):
    model = build_tiny_judge(tmp_path / "judge", forced_score=3)
    first, copy, bulk = tmp_path / "a.warc.gz", tmp_path / "a-copy.warc.gz", tmp_path / "b.warc.gz"
    build_demo_warc(str(first))
    shutil.copy(first, copy)
    make_bulk_warc(str(bulk), 12, seed=3)
    root = str(tmp_path / "root")
    _curate(root, [first])
    curated = {r["language"]: r["n"] for r in _rows(root, "select language, count(*) n from curated group by 1")}
    assert curated == {"de": 8, "en": 3, "fr": 3}

    annotate(_config(root, model))
    labels = _rows(root, "select id, score, raw_output from labels order by id")
    assert len(labels) == 14 and sorted(asked) == [r["id"] for r in labels]

    # The bug's exact case: a shard whose documents are all duplicates. Nothing is drawn or asked.
    _curate(root, [first, copy])
    asked.clear()
    summary = annotate(_config(root, model))
    assert asked == [] and summary["judges"]["forced"]["labelled_now"] == 0
    assert _rows(root, "select id, score, raw_output from labels order by id") == labels
    assert len(ShardStore(root).manifests(STAGE_SAMPLE)) == 1

    # A shard with new documents: only the places still free are drawn (German is capped at 9),
    # each new document is asked once, and the 14 earlier labels stay as they were.
    _curate(root, [first, copy, bulk])
    grown = {r["language"]: r["n"] for r in _rows(root, "select language, count(*) n from curated group by 1")}
    assert grown["de"] > 9 and sum(grown.values()) > 14
    asked.clear()
    annotate(_config(root, model))
    sampled = {r["language"]: r["n"] for r in _rows(root, "select language, count(*) n from samples group by 1")}
    assert sampled == {lang: min(9, n) for lang, n in grown.items()}
    new_ids = {r["id"] for r in _rows(root, "select id from samples")} - {r["id"] for r in labels}
    assert len(asked) == len(new_ids) == sum(sampled.values()) - 14 and set(asked) == new_ids
    after = _rows(root, "select id, score, raw_output from labels order by id")
    assert len(after) == sum(sampled.values()) and [r for r in after if r["id"] not in new_ids] == labels

    # Raising the target tops the sample up (the capped German documents); a re-run asks nothing.
    asked.clear()
    annotate(_config(root, model, per_language=20))
    assert len(asked) == sum(grown.values()) - sum(sampled.values())
    asked.clear()
    annotate(_config(root, model, per_language=20))
    assert asked == []

    # Another seed draws another sample of the same documents: this judge config already answered
    # them all, so it is not asked again and no second label appears.
    annotate(_config(root, model, per_language=20, seed=5))
    assert asked == []
    total = sum(grown.values())
    assert _rows(root, "select count(*) n, count(distinct (id, judge, prompt_version)) k from labels") == [{"n": total, "k": total}]
    assert len(ShardStore(root).manifests(STAGE_SAMPLE)) == 4  # seed 0: three increments; seed 5: one
    # Back to seed 0: its three increments are all still visible (another sample's increment never
    # hides one of its own), so nothing is redrawn or asked.
    from kurate.annotators.annotate import commit_sample

    seed0 = _config(root, model, per_language=20)
    ref = commit_sample(str(root), seed0.annotate.sample, seed0.annotate.docs_per_unit)
    assert len(ref.parts) == 3 and len({p.unit for p in ref.parts}) == 3
    assert len(ShardStore(root).manifests(STAGE_SAMPLE)) == 4

    # A changed judge (here: its mode) is a new judge config and asks again — once per document.
    annotate(_config(root, model, per_language=20, seed=5, mode="generate"))
    assert sorted(asked) == sorted(r["id"] for r in _rows(root, "select id from curated"))
    committed = ShardStore(root).current_manifests(stage_of("forced"))
    assert len({m.config_hash for m in committed}) == 2


@pytest.mark.e2e
def test_distill_reads_one_label_per_document(prefect_server, tmp_path):
    """Two judge configs labelled the same documents under one judge name (another sample, then a
    changed judge): distill's reader sees each document once, so nothing is trained on twice and
    no copy sits on both sides of the held-out split."""
    from kurate.annotators.embedder import USE_MULTILINGUAL, EmbedderConfig
    from kurate.annotators.jql import curated_units, embed_shard, labelled_embeddings

    model = build_tiny_judge(tmp_path / "judge", forced_score=2)
    warc = tmp_path / "a.warc.gz"
    build_demo_warc(str(warc))
    root = str(tmp_path / "root")
    _curate(root, [warc])
    annotate(_config(root, model, per_language=20))
    annotate(_config(root, model, per_language=20, seed=5, mode="generate"))
    assert _rows(root, "select count(*) n, count(distinct id) d from labels") == [{"n": 28, "d": 14}]

    embedder = EmbedderConfig(model=USE_MULTILINGUAL)
    for manifest in curated_units(ShardStore(root)):
        embed_shard(manifest.unit, root, embedder)
    x, y, languages, ids = labelled_embeddings(root, "forced", embedder, "expected")
    assert len(ids) == len(set(ids)) == 14 and x.shape[0] == len(y) == 14
