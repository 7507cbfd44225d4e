"""The annotate stage: balanced sampling, the Prefect flow with judges on Ray actors, resume, and
the embedded default judge (SmolLM2-135M-Instruct converted from the wheel's GGUF)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from kurate.annotators.annotate import JudgeWorker, SampleConfig, commit_sample
from kurate.annotators.judge import Judge, JudgeConfig
from kurate.flows.annotate import annotate
from kurate.flows.cli import app
from kurate.flows.config import load_config
from kurate.storage.catalog import Catalog
from kurate.tasks.curate import run_local
from kurate.tasks.ingest import IngestConfig
from kurate.tasks.quality import LanguageConfig, QualityConfig
from tiny_models import build_tiny_judge

runner = CliRunner()


@pytest.fixture(scope="module")
def curated_root(tmp_path_factory, demo_warc):
    root = tmp_path_factory.mktemp("annotate") / "root"
    run_local([str(demo_warc[0])], str(root), IngestConfig(extractor="resiliparse"),
              QualityConfig(language=LanguageConfig(keep=["de", "en", "fr"])))
    return str(root)


@pytest.fixture(scope="module")
def forced(tmp_path_factory):
    return build_tiny_judge(tmp_path_factory.mktemp("forced") / "m", forced_score=4)


def _rows(root, sql):
    return Catalog(root).query(sql).to_pylist()


def test_sample_is_balanced_seeded_and_stratified(curated_root):
    counts = {r["language"]: r["n"] for r in _rows(curated_root, "select language, count(*) n from curated group by 1")}
    ref = commit_sample(curated_root, SampleConfig(per_language=2, seed=7), docs_per_unit=3)
    sample = {r["language"]: r["n"] for r in _rows(curated_root, "select language, count(*) n from samples group by 1")}
    assert sample == {lang: min(2, n) for lang, n in counts.items()}
    assert ref.rows == sum(sample.values()) and len(ref.chunks) == -(-ref.rows // 3)
    again = commit_sample(curated_root, SampleConfig(per_language=2, seed=7), docs_per_unit=3)
    assert again == ref  # same config + same curated generation → the committed sample is reused
    from kurate.tasks.sampling import balanced_sample

    con = Catalog(curated_root).connect()
    a = balanced_sample(con, 3, ["de"], strata=2, seed=1).column("id").to_pylist()
    b = balanced_sample(con, 3, ["de"], strata=2, seed=1).column("id").to_pylist()
    c = balanced_sample(con, 3, ["de"], strata=2, seed=2).column("id").to_pylist()
    strata = balanced_sample(con, 4, ["de"], strata=2, seed=1).column("stratum").to_pylist()
    assert a == b and len(a) == 3 and sorted(strata) == [0, 0, 1, 1]
    assert set(c) != set(a) or counts["de"] <= 3


@pytest.mark.e2e
def test_annotate_flow_on_ray_labels_every_sampled_doc_and_resumes(prefect_server, ray_local, curated_root, forced, tmp_path):
    cfg = load_config(None, [], {
        "root": curated_root,
        "annotate": {
            "judges": [{"name": "forced-logits", "model": forced, "mode": "logits"},
                       {"name": "forced-gen", "model": forced, "mode": "generate", "samples": 2, "max_new_tokens": 4}],
            "sample": {"per_language": 3}, "docs_per_unit": 2, "actors_per_judge": 2,
        },
    })
    # Simulate an interrupted earlier run: the first chunk of one judge was committed.
    ref = commit_sample(curated_root, cfg.annotate.sample, cfg.annotate.docs_per_unit)
    first = JudgeWorker(cfg.annotate.judges[0]).label_unit(curated_root, ref, ref.chunks[0], cfg.annotate.docs_per_unit)
    assert not first["skipped"]

    summary = annotate(cfg)
    assert summary["judges"]["forced-logits"]["skipped_chunks"] == 1
    assert summary["judges"]["forced-logits"]["labelled_now"] == ref.rows - first["docs"]
    labels = _rows(curated_root, "select judge, count(*) n, count(distinct id) d, min(score) lo, max(score) hi, bool_and(valid) ok from labels group by 1 order by 1")
    assert labels == [
        {"judge": "forced-gen", "n": ref.rows, "d": ref.rows, "lo": 4.0, "hi": 4.0, "ok": True},
        {"judge": "forced-logits", "n": ref.rows, "d": ref.rows, "lo": 4.0, "hi": 4.0, "ok": True},
    ]
    again = annotate(cfg)
    assert all(j["labelled_now"] == 0 for j in again["judges"].values())
    assert _rows(curated_root, "select count(*) n from labels") == [{"n": 2 * ref.rows}]


@pytest.mark.e2e
def test_cli_annotate_selects_judges(prefect_server, curated_root, forced, tmp_path):
    cfg = tmp_path / "a.yaml"
    cfg.write_text(json.dumps({"annotate": {"judges": [{"name": "one", "model": forced}, {"name": "two", "model": forced}],
                                            "sample": {"per_language": 1}}, "ray": {"executor": "local"}}))
    out = runner.invoke(app, ["annotate", "--root", curated_root, "--config", str(cfg), "--judge", "two", "-n", "2"])
    assert out.exit_code == 0, out.output
    assert _rows(curated_root, "select distinct judge from labels where judge in ('one', 'two')") == [{"judge": "two"}]
    out = runner.invoke(app, ["annotate", "--root", curated_root, "--config", str(cfg), "--judge", "three"])
    assert out.exit_code == 2 and "no judge named 'three'" in out.output


@pytest.mark.e2e
def test_embedded_default_judge_converts_once_and_scores(tmp_path, monkeypatch):
    monkeypatch.setenv("KURATE_CACHE", str(tmp_path / "cache"))
    judge = Judge(JudgeConfig(name="smollm2-edu"))  # the default model: embedded:smollm2-135m-instruct
    rows = judge.label([{"id": "x", "language": "en", "text": "Photosynthesis converts light energy into chemical energy in plants."}])
    assert rows[0]["valid"] and 0 <= rows[0]["expected"] <= 5
    assert (tmp_path / "cache" / "models" / "smollm2-135m-instruct" / "config.json").exists()
