"""Reports as pictures: real flows on a real Prefect test server publish markdown artifacts that embed a PNG
(read back through the Prefect client), under keys that carry the root, and the same pictures under
<root>/reports/. Also the funnel's numbers (language codes, curate stages only) and finite Spearman on a
sample as small as the demo's."""

from __future__ import annotations

import base64
import json
import math
import re

import pyarrow as pa
import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.sorting import ArtifactSort

from kurate.flows.artifacts import artifact_key, root_key
from kurate.flows.config import load_config
from kurate.flows.report import funnel, language_rows
from kurate.storage.catalog import Catalog
from kurate.storage.schemas import LABELS, REJECTS
from kurate.storage.shards import ShardStore, UnitKey
from kurate.tasks.curate import run_local

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DATA_URI = re.compile(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)")


def _latest(key: str):
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
                                      sort=ArtifactSort.CREATED_DESC, limit=1)
    assert found, f"no artifact {key}"
    return found[0]


def _embedded_png(key: str) -> bytes:
    """The PNG inside a markdown artifact, as the UI's markdown renderer finds it (an image with a data: source)."""
    artifact = _latest(key)
    assert artifact.type == "markdown"
    match = DATA_URI.search(artifact.data)
    assert match, artifact.data[:300]
    png = base64.b64decode(match.group(1))
    assert png.startswith(PNG_MAGIC) and len(png) > 5_000
    return png


def _local(root, **extra) -> object:
    return load_config(None, ["ray.executor=local"], {"root": str(root), **extra})


def test_artifact_keys_carry_the_root_and_are_valid_prefect_keys(tmp_path):
    a, b = tmp_path / "a" / "Demo_Run", tmp_path / "b" / "Demo_Run"
    assert root_key(str(a)) != root_key(str(b)) and root_key(str(a)).startswith("demo-run-")
    assert root_key(str(a)) == root_key(str(a) + "/")  # one root, one key
    for root in (str(a), "memory://kurate-test", "s3://bucket/runs/2026.05", "runs/démo"):
        key = artifact_key(root, "train-demo_hat.v2", "curves")
        assert re.fullmatch(r"[a-z0-9-]+", key) and key.endswith("-train-demo-hat-v2-curves"), key


def test_funnel_counts_curate_rejects_only_and_names_languages(tmp_path, demo_warc):
    root = str(tmp_path / "root")
    run_local([str(demo_warc[0])], root)
    before = funnel(root)
    rows = language_rows(before)
    assert {r["language"] for r in rows} >= {"de", "en", "fr"}
    assert all(isinstance(r["language"], str) and re.fullmatch(r"[a-z]{2,3}", r["language"]) for r in rows)
    assert all(r["identified"] >= r["curated"] and "dropped_language" in r for r in rows)
    # synthesize writes rejects too (stage "synthesize", language de): they reject generations, not records
    with ShardStore(root).open_unit(UnitKey("synthesize-gemma", "unit-0000", "s"), ["synthetic", "rejects"]) as unit:
        unit.write("rejects", pa.Table.from_pylist(
            [{"id": f"g{i}", "source": "d", "language": "de", "stage": "synthesize", "reason": "copy", "value": 0.9} for i in range(5)],
            schema=REJECTS))
    assert Catalog(root).query("select count(*) n from rejects where stage = 'synthesize'").to_pylist() == [{"n": 5}]
    after = funnel(root)
    assert after == before and "synthesize" not in after["stages"]
    assert after["total"] == demo_warc[1].responses + demo_warc[1].malformed


@pytest.mark.e2e
def test_curate_publishes_the_funnel_picture_per_root(prefect_server, demo_warc, tmp_path):
    from kurate.flows.curate import curate

    roots = [tmp_path / "one" / "root", tmp_path / "two" / "root"]
    for root in roots:
        curate(_local(root, curate={"inputs": [str(demo_warc[0])]}))
    keys = [artifact_key(str(r), "curate-funnel") for r in roots]
    assert keys[0] != keys[1]
    for root, key in zip(roots, keys):  # the second run did not overwrite the first root's latest artifact
        png = _embedded_png(key)
        assert (root / "reports" / "curate-funnel.png").read_bytes() == png
        assert "curate-funnel.png" in (root / "reports" / "curate-funnel.html").read_text()
        table = json.loads(_latest(artifact_key(str(root), "curate-funnel-languages")).data)
        assert {r["language"] for r in table} >= {"de", "en", "fr"}
        assert json.loads(_latest(artifact_key(str(root), "curate-shards")).data)[0]["status"] == "committed"


def _label(root, docs: list[dict]) -> None:
    """Labels for every curated document, as annotate commits them: a planted judge whose score grows with length."""
    with ShardStore(root).open_unit(UnitKey("annotate-planted", "sample#00000", "planted"), ["labels"]) as unit:
        unit.write("labels", pa.Table.from_pylist(
            [{"id": d["id"], "language": d["language"], "judge": "planted", "mode": "logits", "score": float(min(5, len(d["text"]) // 400)),
              "expected": min(5.0, len(d["text"]) / 400), "valid": True, "prompt_version": "planted-v1"} for d in docs], schema=LABELS))


@pytest.mark.e2e
def test_demo_sized_sample_gets_finite_spearman_and_every_jql_picture(prefect_server, demo_warc, tmp_path):
    """The demo labels 12–14 documents: a 10% split holds 1–2 per language, where Spearman is undefined."""
    from kurate.annotators.head_store import load_annotator
    from kurate.flows.annotate import publish_label_distribution
    from kurate.flows.jql import distill, score
    from kurate.flows.plots import spearman_figure

    root = tmp_path / "root"
    config = _local(root, curate={"language": {"keep": ["de", "en", "fr"]}}, jql={"distill": {"head": {"width": 64, "max_epochs": 8}}})
    c = config.curate
    run_local([str(demo_warc[0])], str(root), c.ingest, c.quality(), c.dedup)  # the demo config's languages
    docs = Catalog(str(root)).query("select id, language, text from curated order by id").to_pylist()
    assert 10 <= len(docs) <= 20 and {d["language"] for d in docs} == {"de", "en", "fr"}
    _label(str(root), docs)

    result = distill(config)
    per_language = [r for r in result["evaluation"] if r["language"] != "overall"]
    assert {r["language"] for r in per_language} >= {"de", "en", "fr"}
    assert all(math.isfinite(r["spearman"]) for r in per_language), per_language
    cards = [load_annotator(str(root), name).card for name in result["annotators"]]
    assert all(c["evaluation"]["mode"].startswith("5-fold cross-validation") for c in cards)
    figure = spearman_figure(cards)
    heights = [p.get_height() for p in figure.axes[0].patches]
    assert len(heights) == len(cards) * (len({r["language"] for r in per_language}) + 1)
    assert all(math.isfinite(h) for h in heights)
    assert _embedded_png(artifact_key(str(root), "distill-spearman")) == (root / "reports" / "distill-spearman.png").read_bytes()

    score(config)
    assert (root / "reports" / "score-histograms.png").stat().st_size > 5_000
    _embedded_png(artifact_key(str(root), "score-histograms"))
    assert "threshold" in _latest(artifact_key(str(root), "score-histograms")).data.lower()

    @flow
    def labels_report() -> dict:
        return publish_label_distribution(config, [])

    labels_report()
    _embedded_png(artifact_key(str(root), "annotate-labels"))


@pytest.mark.e2e
def test_training_curves_and_continual_comparison_are_pictures(prefect_server, tmp_path):
    from kurate.flows.continual import publish
    from kurate.flows.train import Segment, commit_segment, publish_metrics

    root = tmp_path / "root"
    config = _local(root)
    steps = [{"step": s, "loss": 5.0 / s, "bits_per_byte": 7.0 / s, "units_per_s": 900.0, "mfu": 0.01} for s in range(1, 41)]
    steps[19] |= {"eval_loss": 0.4, "eval_bits_per_byte": 0.5}
    steps[39] |= {"eval_loss": 0.2, "eval_bits_per_byte": 0.3}
    commit_segment(str(root), config.train, Segment(metrics=steps), steps[-1]["step"], {})
    arms = [{"arm": "before continuing", "old_bpb": 2.0, "new_bpb": 3.0, "old_delta": 0.0, "new_delta": 0.0},
            {"arm": "no replay", "old_bpb": 2.4, "new_bpb": 2.2, "old_delta": 0.4, "new_delta": -0.8},
            {"arm": "coretokens", "old_bpb": 2.1, "new_bpb": 2.25, "old_delta": 0.1, "new_delta": -0.75}]
    result = {"run": "continual-hat", "buffer_docs": 3, "kept_units": 40, "stored_bytes": 160, "checkpoint": str(root / "ckpt" / "checkpoint"),
              "old_bpb_before": 2.0, "old_bpb_after": 2.1, "new_bpb_before": 3.0, "new_bpb_after": 2.25, "comparison": arms}

    @flow
    def publish_both() -> list[dict]:
        publish(config, result)
        return publish_metrics(str(root), config.train)

    assert len(publish_both()) == 40
    run = f"{config.train.name}-{config.train.model}"
    curves = _latest(artifact_key(str(root), f"train-{run}-curves"))
    assert "bits/byte" in curves.data and DATA_URI.search(curves.data)
    assert (root / "reports" / f"train-{run}-curves.png").exists()
    _embedded_png(artifact_key(str(root), "continual-continual-hat-compare"))
    summary = _latest(artifact_key(str(root), "continual-continual-hat"))
    assert "continual-hat-compare" in summary.data
