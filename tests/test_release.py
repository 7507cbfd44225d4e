"""Releases (release/, flows/release.py): the filter against `scores`, dedup across sources,
deterministic versions, the Hugging Face layout read by `datasets`, and training on a release
with its `trained_on` lineage."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from kurate.release.config import ReleaseConfig, ReleaseSource
from kurate.release.publish import build_release
from kurate.storage.catalog import Catalog
from kurate.storage.schemas import CURATED, SCORES, SYNTHETIC
from kurate.storage.shards import ShardStore, UnitKey
from toy_corpus import german_paragraphs

SCORES_EDU = SCORES.append(pa.field("edu", pa.float32()))


def commit_curated(root: str, name: str, rows: list[dict]) -> None:
    with ShardStore(root).open_unit(UnitKey("curate", f"{name}.warc.gz", "t"), ["curated", "rejects"]) as unit:
        unit.write("curated", pa.Table.from_pylist(rows, schema=CURATED))


def scored_root(root: Path) -> str:
    """40 German and 10 English curated documents; the even-numbered ones are kept by JQL (edu = i / 10);
    synthetic rewrites of c0000 and c0002, one of them a verbatim copy of its source."""
    root = str(root)
    texts = german_paragraphs(50, seed=7)
    docs = [{"id": f"c{i:04d}", "url": f"https://example.de/{i}", "text": texts[i], "language": "de" if i < 40 else "en",
             "language_score": 0.9} for i in range(50)]
    commit_curated(root, "a", docs)
    scores = [{"id": d["id"], "language": d["language"], "kept": i % 2 == 0, "thresholds_version": "v", "edu": i / 10}
              for i, d in enumerate(docs)]
    with ShardStore(root).open_unit(UnitKey("score", "all", "s"), ["scores"], schemas={"scores": SCORES_EDU}) as unit:
        unit.write("scores", pa.Table.from_pylist(scores, schema=SCORES_EDU))
    synthetic = [{"id": "s-copy", "source_id": "c0000", "prompt_type": "summary", "text": texts[0].upper(), "language": "de"},
                 {"id": "s-new", "source_id": "c0002", "prompt_type": "qa", "text": "Frage: Wer kauft Äpfel? Antwort: der Müller.",
                  "language": "de"}]
    with ShardStore(root).open_unit(UnitKey("synthesize", "u", "g"), ["synthetic"]) as unit:
        unit.write("synthetic", pa.Table.from_pylist(synthetic, schema=SYNTHETIC))
    return root


def test_default_release_holds_kept_curated_and_synthetic_without_duplicates(tmp_path):
    root = scored_root(tmp_path / "root")
    result = build_release(root, ReleaseConfig())
    assert (result.name, result.version, result.created) == ("default", 1, True)
    catalog = Catalog(root)
    # every curated document in the release passes the JQL rule: the join with scores finds it kept
    assert catalog.query("select count(*) n from release_documents r join scores s using (id) "
                         "where r.source = 'curated' and not s.kept").to_pylist() == [{"n": 0}]
    curated = catalog.query("select id from release_documents where source = 'curated' order by id").column("id").to_pylist()
    assert curated == [f"c{i:04d}" for i in range(0, 50, 2)]
    # the synthetic copy of its source (same text up to case) is dropped; the real rewrite stays
    assert catalog.query("select id from release_documents where source = 'synthetic'").column("id").to_pylist() == ["s-new"]
    ids = catalog.query("select id from release_documents").column("id").to_pylist()
    assert len(ids) == len(set(ids)) == 26
    files = sorted((Path(root) / "releases" / "default" / "v1" / "data").glob("*.parquet"))
    assert files and all(f.name.startswith(("train-", "validation-")) and "-of-" in f.name for f in files)
    released = pa.concat_tables([pa.parquet.read_table(f) for f in files])
    assert sorted(released.column("id").to_pylist()) == sorted(ids)
    assert {"id", "text", "language", "source", "url", "jql_kept", "score_edu", "words"} <= set(released.column_names)
    assert pa.parquet.ParquetFile(files[0]).metadata.row_group(0).column(0).compression == "ZSTD"
    card = (Path(root) / "releases" / "default" / "v1" / "README.md").read_text()
    front = card.split("---")[1]
    assert "configs:" in front and "- de" in front and "license: other" in front
    assert "kept by the JQL rule | 25" in card and (Path(root) / "releases/default/v1/images/scores.png").stat().st_size > 1000
    assert catalog.query("select name, version, documents from releases").to_pylist() == [
        {"name": "default", "version": 1, "documents": 26}]


def test_filters_quota_and_languages(tmp_path):
    root = scored_root(tmp_path / "root")
    config = ReleaseConfig(name="top", sources=[
        ReleaseSource(dataset="curated", min_scores={"edu": 3.0}, languages=["de"], max_words=400)])
    result = build_release(root, config)
    rows = Catalog(root).query("select r.id, s.edu, s.kept, c.language, len(string_split_regex(trim(c.text), '\\s+')) as words "
                               "from release_documents r join scores s using (id) join curated c using (id) "
                               "where r.name = 'top'").to_pylist()
    assert rows and all(r["edu"] >= 3.0 and r["kept"] and r["language"] == "de" for r in rows)
    assert sum(r["words"] for r in rows) <= 400 == config.sources[0].max_words
    assert result.counts["documents"] == len(rows)
    with pytest.raises(Exception, match="min_scores names heads without scores"):
        build_release(root, ReleaseConfig(name="bad", sources=[ReleaseSource(min_scores={"nope": 1})]))


def test_versions_are_deterministic(tmp_path):
    root = scored_root(tmp_path / "root")
    first = build_release(root, ReleaseConfig())
    again = build_release(root, ReleaseConfig(shard_documents=7))  # file cutting is not content
    assert (again.version, again.created) == (1, False)
    data = Path(root) / "releases" / "default" / "v1" / "data"
    before = {f.name: f.read_bytes() for f in data.iterdir()}
    commit_curated(root, "b", [{"id": "new-doc", "text": "Ein ganz neuer Text über den Markt in Köln.", "language": "de"}])
    newer = build_release(root, ReleaseConfig())  # new inputs
    changed = build_release(root, ReleaseConfig(seed=3))  # changed config
    assert (newer.version, newer.created, changed.version) == (2, True, 3)
    assert {f.name: f.read_bytes() for f in data.iterdir()} == before  # v1 is immutable
    assert build_release(root, ReleaseConfig(seed=3)).version == 3
    # the same inputs in another root give byte-identical files
    other = scored_root(tmp_path / "other")
    build_release(other, ReleaseConfig())
    assert {f.name: f.read_bytes() for f in (Path(other) / "releases/default/v1/data").iterdir()} == before
    assert Catalog(root).query("select version from releases order by version").column("version").to_pylist() == [1, 2, 3]
    assert first.content_hash != newer.content_hash


def test_datasets_loads_a_release(tmp_path):
    import datasets
    root = scored_root(tmp_path / "root")
    build_release(root, ReleaseConfig(validation_fraction=0.2))
    loaded = datasets.load_dataset("parquet", data_dir=str(Path(root) / "releases/default/v1/data"),
                                   cache_dir=str(tmp_path / "hf-cache"))
    assert set(loaded) == {"train", "validation"}
    assert loaded["train"].num_rows + loaded["validation"].num_rows == 26
    assert {"id", "text", "language", "source"} <= set(loaded["train"].column_names)
    # the card's front matter is what the Hub reads: its data_files patterns match the files
    card = (Path(root) / "releases/default/v1/README.md").read_text()
    assert "path: data/train-*" in card and "path: data/validation-*" in card


def test_training_on_a_release_records_what_it_consumed(tmp_path, one_torch_thread):
    from kurate.flows.config import load_config
    from kurate.flows.train import run_training
    from kurate.models.checkpoint import checkpoint_info

    root = scored_root(tmp_path / "root")
    build_release(root, ReleaseConfig(validation_fraction=0.2))
    overrides = {"max_steps": 6, "checkpoint_every": 2, "log_every": 0, "batch_size": 2, "seq_len": 16,
                 "model_options": {"vocab_size": 300, "d_model": 32, "n_layer": 1, "n_head": 2}}
    config = load_config(None, [], {"root": root, "train": {"model": "bpe", "data": {"release": "default", "version": "latest"},
                                                             "overrides": overrides}})
    summary = run_training(root, config.train)
    assert (summary["release"], summary["version"]) == ("default", 1)
    info = checkpoint_info(summary["checkpoint"])
    assert info["data"]["release"] == "default" and info["data"]["version"] == 1 and info["data"]["content_hash"]
    catalog = Catalog(root)
    trained = catalog.query("select id, first_step, checkpoint_step from trained_on where run = 'demo-bpe'").to_pylist()
    assert trained and all(r["first_step"] <= r["checkpoint_step"] for r in trained)
    # trained_on ⊆ the release's train split
    assert catalog.query("select count(*) n from trained_on t where t.id not in "
                         "(select id from release_documents where name = 'default' and version = 1 and split = 'train')"
                         ).to_pylist() == [{"n": 0}]
    assert [r["step"] for r in catalog.query("select step from metrics order by step").to_pylist()] == [1, 2, 3, 4, 5, 6]
    # the two lineage questions, one query each (README "Releases")
    in_checkpoint = catalog.query("select id from trained_on where run = ? and checkpoint_step <= ?", ["demo-bpe", 2]).to_pylist()
    assert 0 < len(in_checkpoint) <= len(trained)
    url = catalog.query("select url from release_documents where id = ?", [trained[0]["id"]]).column("url")[0].as_py()
    seen = catalog.query("select t.run, min(t.first_step) as first_step from trained_on t join release_documents r "
                         "on r.id = t.id and r.name = t.release and r.version = t.version where r.url = ? group by 1", [url]).to_pylist()
    assert seen == [{"run": "demo-bpe", "first_step": trained[0]["first_step"]}]
    # a newer release does not move a resumed run off its version
    commit_curated(root, "b", [{"id": "new-doc", "text": "Ein ganz neuer Text über den Markt in Köln.", "language": "de"}])
    assert build_release(root, ReleaseConfig(validation_fraction=0.2)).version == 2
    again = run_training(root, config.train)
    assert again["version"] == 1
    # continuing the run (more steps) on another version would not be an exact resume
    pinned = load_config(None, [], {"root": root, "train": {"model": "bpe", "data": {"release": "default", "version": 2},
                                                             "overrides": {**overrides, "max_steps": 8}}})
    with pytest.raises(Exception, match="trained on release default@v1, train.data asks for release default@v2"):
        run_training(root, pinned.train)


def test_release_ref_parsing():
    from kurate.flows.config import TrainData

    assert TrainData.parse("default") == TrainData(release="default", version="latest")
    assert TrainData.parse("default@v3") == TrainData(release="default", version=3)
    assert json.loads(TrainData.parse("x@2").model_dump_json()) == {"release": "x", "version": 2}


def test_a_release_that_keeps_nothing_names_its_sources(tmp_path):
    from kurate.errors import PreconditionError

    root = scored_root(tmp_path / "root")
    config = ReleaseConfig(name="none", sources=[ReleaseSource(dataset="curated", languages=["xx"]),
                                                 ReleaseSource(dataset="synthetic", prompt_types=["poem"])])
    with pytest.raises(PreconditionError, match=r"release 'none' would hold no documents") as failed:
        build_release(root, config)
    assert 'curated {"languages": ["xx"]}: 0 selected' in failed.value.message
    assert 'synthetic {"prompt_types": ["poem"]}: 0 selected' in failed.value.message
    assert not (Path(root) / "releases" / "none").exists() and ShardStore(root).manifests("release") == []


def test_concurrent_builds_never_share_a_version(tmp_path):
    import threading

    from kurate.storage.shards import RootLocked, RunLock

    root = scored_root(tmp_path / "root")
    # a build that finds the release's lock held waits for it, then fails with one line naming the holder
    with RunLock(ShardStore(root), "release-default"):
        with pytest.raises(RootLocked, match="being written by another `release-default` run"):
            build_release(root, ReleaseConfig(), lock_wait_s=0)
    # two builds with different content at once: one takes v1, the other waits and takes v2
    results, errors = [], []

    def build(seed: int) -> None:
        try:
            results.append(build_release(root, ReleaseConfig(seed=seed)))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=build, args=(seed,)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(r.version for r in results) == [1, 2] and all(r.created for r in results)
    assert Catalog(root).query("select version, count(*) n from release_documents group by 1 order by 1").to_pylist() == [
        {"version": 1, "n": 26}, {"version": 2, "n": 26}]
    for result in results:  # each version folder holds its own build's files
        recorded = json.loads((Path(root) / result.path / "release.json").read_text())
        assert recorded["config"]["seed"] == result.counts["config"]["seed"] and recorded["version"] == result.version


def test_export_refuses_a_non_empty_target(tmp_path):
    from kurate.errors import PreconditionError
    from kurate.release.export import export_release

    root = scored_root(tmp_path / "root")
    build_release(root, ReleaseConfig())
    out = tmp_path / "out"
    done = export_release(root, "default", "latest", str(out), "parquet")
    assert done["documents"] == 26 and sorted(done["files"])[:2] == ["README.md", "data/train-00000-of-00001.parquet"]
    with pytest.raises(PreconditionError, match=f"export target {out} is not empty"):
        export_release(root, "default", 1, str(out), "jsonl")
    assert not list((out / "data").glob("*.jsonl"))  # nothing was written beside the first export


def test_export_to_s3_resolves_credential_references(tmp_path, s3_server, monkeypatch):
    import fsspec

    from kurate.release.export import export_release

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)  # only the referenced credentials can work
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("KURATE_TEST_EXPORT_KEY", s3_server["s3"]["key"])
    monkeypatch.setenv("KURATE_TEST_EXPORT_SECRET", s3_server["s3"]["secret"])
    options = {"s3": {**s3_server["s3"], "key": {"env": "KURATE_TEST_EXPORT_KEY"}, "secret": {"env": "KURATE_TEST_EXPORT_SECRET"}}}
    root = scored_root(tmp_path / "root")
    build_release(root, ReleaseConfig())
    done = export_release(root, "default", "latest", "s3://kurate/exports/default", "jsonl", options)
    assert done["documents"] == 26
    fs = fsspec.filesystem("s3", **s3_server["s3"])
    lines = [json.loads(line) for p in sorted(fs.glob("kurate/exports/default/data/*.jsonl"))
             for line in fs.cat_file(p).decode().splitlines()]
    assert len(lines) == 26 and fs.cat_file("kurate/exports/default/README.md").startswith(b"---\n")
