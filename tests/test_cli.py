"""The kurate CLI: read-only queries, output formats, status, and config errors that name the key."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from kurate.flows.cli import app
from kurate.flows.config import ConfigError, load_config
from kurate.tasks.curate import run_local
from kurate.tasks.ingest import IngestConfig
from kurate.tasks.quality import LanguageConfig, QualityConfig

runner = CliRunner()


@pytest.fixture(scope="module")
def root(tmp_path_factory, demo_warc):
    root = str(tmp_path_factory.mktemp("cli") / "root")
    result = run_local([str(demo_warc[0])], root, IngestConfig(extractor="resiliparse"),
                       QualityConfig(language=LanguageConfig(keep=["de", "en", "fr"])))["final"][0]
    return root, result


def test_query_formats(root):
    root, result = root
    out = runner.invoke(app, ["query", "select count(*) as n from curated", "--root", root, "--format", "json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == [{"n": result.kept}] and result.kept > 5
    out = runner.invoke(app, ["query", "select reason, count(*) as n from rejects group by 1 order by 1", "--root", root, "-f", "csv"])
    assert out.exit_code == 0 and out.output.splitlines()[0] == "reason,n"
    assert "http_status,2" in out.output.splitlines()
    out = runner.invoke(app, ["query", "select url from curated order by url limit 2", "--root", root])
    assert out.exit_code == 0 and "https://" in out.output


@pytest.mark.parametrize(
    "sql",
    [
        "create table x as select 1",
        "insert into curated select * from curated",
        "delete from curated",
        "attach '/tmp/other.duckdb' as o",
        "copy curated to '/tmp/kurate-leak.csv'",
        "select * from read_csv('/etc/passwd')",
        "select 1; drop view curated",
        "install httpfs",
        "set enable_external_access=true",
    ],
)
def test_query_refuses_anything_but_reading_the_catalog(root, sql):
    root, result = root
    out = runner.invoke(app, ["query", sql, "--root", root])
    assert out.exit_code == 2
    assert "query refused" in out.output
    still = runner.invoke(app, ["query", "select count(*) as n from curated", "--root", root, "-f", "json"])
    assert json.loads(still.output) == [{"n": result.kept}]


def test_status_lists_datasets(root):
    root, result = root
    out = runner.invoke(app, ["status", "--root", root])
    assert out.exit_code == 0, out.output
    lines = {line.split()[0]: line.split()[1:] for line in out.output.splitlines() if line.split()}
    assert lines["curated"][:2] == ["1", str(result.kept)]
    # rejects come from the filter unit and the final (dedup) unit of the shard
    assert lines["rejects"][:2] == ["2", str(result.rejected)]


def test_config_errors_name_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("root: r\ncurate:\n  ingest:\n    extracter: trafilatura\n")
    with pytest.raises(ConfigError, match=r"curate\.ingest\.extracter: unknown key"):
        load_config(bad)
    with pytest.raises(ConfigError, match=r"curate\.ingest\.extractor"):
        load_config(None, ["root=r", "curate.ingest.extractor=lynx"])
    with pytest.raises(ConfigError, match=r"curate\.ingest\.batch_rows"):
        load_config(None, ["root=r", "curate.ingest.batch_rows=-3"])
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(None, ["root"])
    with pytest.raises(ConfigError, match="root"):
        load_config(None, [])
    cfg = load_config(None, ["root=r", "curate.ingest.extractor=resiliparse", "ray.num_cpus=1"])
    assert cfg.curate.ingest.extractor == "resiliparse" and cfg.ray.num_cpus == 1


def test_cli_reports_config_errors_without_a_traceback(tmp_path):
    out = runner.invoke(app, ["curate", "--input", "x.warc.gz", "--root", str(tmp_path), "--set", "curate.ingest.nope=1"])
    assert out.exit_code == 2
    assert "curate.ingest.nope: unknown key" in out.output
    bad = tmp_path / "c.yaml"
    bad.write_text("root: [unclosed\n")
    out = runner.invoke(app, ["run", str(bad)])
    assert out.exit_code == 2 and "not valid YAML" in out.output


def test_help_for_every_command():
    for command in ["run", "curate", "annotate", "distill", "score", "synthesize", "train", "generate", "query", "status", "serve"]:
        out = runner.invoke(app, [command, "--help"])
        assert out.exit_code == 0 and "Usage" in out.output
