"""The ``kurate`` command line.

    kurate run configs/demo.yaml                 # the whole pipeline
    kurate curate --input 'x/*.warc.gz' --root R  # one stage
    kurate query "select count(*) from curated" --root R
    kurate status --root R
    kurate serve                                  # Prefect deployments, served from this process
"""

from __future__ import annotations

import csv
import io
import json
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from kurate.models.architectures import MODEL_KINDS, PRESETS  # names only: no torch at start-up

app = typer.Typer(no_args_is_help=True, add_completion=False, help="kurate: curated pre-training data from Common Crawl.")


def _print_version(value: bool) -> None:
    if value:
        from kurate import __version__

        typer.echo(f"kurate {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                       help="Print kurate's version and exit.")) -> None:
    """kurate: curated pre-training data from Common Crawl."""

SetOption = typer.Option(None, "--set", help="Override a config key: --set curate.ingest.extractor=resiliparse (repeatable).")


class OutputFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


def _fail(message: str) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def _load(path: Optional[Path], overrides: Optional[list[str]], given: dict | None = None):
    from kurate.flows.config import ConfigError, load_config

    try:
        return load_config(path, overrides or [], given)
    except ConfigError as exc:
        _fail(str(exc))


@app.command()
def run(
    config: Path = typer.Argument(..., exists=True, dir_okay=False, help="Pipeline YAML, e.g. configs/demo.yaml."),
    set_: Optional[list[str]] = SetOption,
) -> None:
    """Run the whole pipeline (every stage in the config's `stages`)."""
    cfg = _load(config, set_)
    from kurate.flows.pipeline import pipeline

    pipeline(cfg)


@app.command()
def curate(
    input: list[str] = typer.Option(..., "--input", "-i", help="WARC/WET shard URL or glob (local, s3://, https://); repeatable."),
    root: str = typer.Option(..., "--root", "-r", help="Output root: directory, s3://bucket/prefix or memory://name."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", exists=True, dir_okay=False, help="YAML config to start from."),
    set_: Optional[list[str]] = SetOption,
) -> None:
    """Ingest WARC/WET shards into `curated` and `rejects` under ROOT."""
    cfg = _load(config, set_, {"root": root, "curate": {"inputs": list(input)}})
    from kurate.flows.curate import curate as curate_flow

    try:
        curate_flow(cfg)
    except FileNotFoundError as exc:
        _fail(str(exc))


@app.command()
def annotate(
    root: str = typer.Option(..., "--root", "-r", help="Root with committed curated shards."),
    judge: Optional[list[str]] = typer.Option(None, "--judge", "-j", help="Run only these configured judges (repeatable)."),
    per_language: Optional[int] = typer.Option(None, "--per-language", "-n", help="Documents sampled per language."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", exists=True, dir_okay=False, help="YAML config to start from."),
    set_: Optional[list[str]] = SetOption,
) -> None:
    """Label a language-balanced sample of curated documents with LLM judges."""
    given: dict = {"root": root}
    if per_language is not None:
        given["annotate"] = {"sample": {"per_language": per_language}}
    cfg = _load(config, set_, given)
    if judge:
        try:
            cfg.annotate.judges = [cfg.annotate.judge(name) for name in judge]
        except KeyError as exc:
            _fail(str(exc.args[0]))
    from kurate.flows.annotate import annotate as annotate_flow

    try:
        annotate_flow(cfg)
    except RuntimeError as exc:
        _fail(str(exc))


def _run_stage(flow_name: str, root: str, config: Optional[Path], set_: Optional[list[str]]) -> None:
    cfg = _load(config, set_, {"root": root})
    import kurate.flows.jql

    try:
        getattr(kurate.flows.jql, flow_name)(cfg)
    except (RuntimeError, FileNotFoundError) as exc:
        _fail(str(exc))


@app.command()
def distill(
    root: str = typer.Option(..., "--root", "-r", help="Root with curated shards and judge labels."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", exists=True, dir_okay=False, help="YAML config to start from."),
    set_: Optional[list[str]] = SetOption,
) -> None:
    """Embed curated documents and train one JQL head per judge (registered under ROOT/annotators/)."""
    _run_stage("distill", root, config, set_)


@app.command()
def score(
    root: str = typer.Option(..., "--root", "-r", help="Root with curated shards and registered annotators."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", exists=True, dir_okay=False, help="YAML config to start from."),
    set_: Optional[list[str]] = SetOption,
) -> None:
    """Score every curated document with every head and keep those above per-head quantile thresholds."""
    _run_stage("score", root, config, set_)


@app.command()
def synthesize(
    root: str = typer.Option(..., "--root", "-r", help="Root with committed curated shards (kept ones are used when scores exist)."),
    types: Optional[list[str]] = typer.Option(None, "--types", "-t", help="Prompt types: wikipedia, summary, qa, list, simple (repeatable)."),
    max_docs: Optional[int] = typer.Option(None, "--max-docs", "-n", help="At most this many source documents."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", exists=True, dir_okay=False, help="YAML config to start from."),
    set_: Optional[list[str]] = SetOption,
) -> None:
    """Rewrite kept German documents with an LLM into `synthetic` (five prompt types, quality-gated)."""
    given: dict = {"root": root}
    synth: dict = {}
    if types:
        synth["types"] = list(types)
    if max_docs is not None:
        synth["max_docs"] = max_docs
    if synth:
        given["synthesize"] = synth
    cfg = _load(config, set_, given)
    from kurate.flows.synthesize import synthesize as synthesize_flow

    try:
        synthesize_flow(cfg)
    except (RuntimeError, FileNotFoundError, ValueError) as exc:
        _fail(str(exc))


# the choices of --model and --preset come from the registry (models/architectures.py)
ModelKindChoice = Enum("ModelKindChoice", {name: name for name in MODEL_KINDS}, type=str)
PresetChoice = Enum("PresetChoice", {name: name for name in PRESETS}, type=str)


@app.command()
def train(
    root: str = typer.Option(..., "--root", "-r", help="Root with committed curated (and synthetic) shards."),
    model: Optional[ModelKindChoice] = typer.Option(None, "--model", "-m", help="Model kind (default: the config's train.model, "
                                                    "else hat): " + "; ".join(f"{k}: {v.summary}" for k, v in MODEL_KINDS.items()) + "."),
    preset: Optional[PresetChoice] = typer.Option(None, "--preset", "-p", help="Model size (default: the config's train.preset, "
                                                  "else tiny): " + "; ".join(f"{k}: {v.summary}" for k, v in PRESETS.items()) + "."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", exists=True, dir_okay=False, help="YAML config to start from."),
    set_: Optional[list[str]] = SetOption,
) -> None:
    """Train a model on the root's data: in-process (CPU or one GPU), or with Ray Train when a Ray address is set
    (train.num_workers DDP ranks). A typo under --set train.overrides.… is a config error (exit code 2)."""
    chosen = {key: choice.value for key, choice in (("model", model), ("preset", preset)) if choice is not None}
    cfg = _load(config, set_, {"root": root, "train": chosen})
    from kurate.flows.train import train_local

    try:
        train_local(cfg)
    except (RuntimeError, ValueError) as exc:
        _fail(str(exc))


@app.command()
def continual(
    root: str = typer.Option(..., "--root", "-r", help="Root with the old and the new data."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", exists=True, file_okay=False,
                                              help="Checkpoint to continue (default: the train stage's)."),
    new: Optional[str] = typer.Option(None, "--new", help="Dataset with the new data, e.g. synthetic or curated."),
    budget: Optional[float] = typer.Option(None, "--budget", help="Share of the old data's units the replay buffer trains on (0.01 = 1%)."),
    compare: bool = typer.Option(False, "--compare", help="Also run the baselines: no replay, random and full-document coresets."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", exists=True, dir_okay=False, help="YAML config to start from."),
    set_: Optional[list[str]] = SetOption,
) -> None:
    """Continue a trained checkpoint on new data with a core-tokenset replay buffer of the old data."""
    given: dict = {"root": root, "continual": {}}
    for key, value in (("checkpoint", str(checkpoint) if checkpoint else None), ("new", new), ("budget", budget)):
        if value is not None:
            given["continual"][key] = value
    if compare:
        given["continual"]["compare"] = True
    cfg = _load(config, set_, given)
    from kurate.flows.continual import continual_local

    try:
        continual_local(cfg)
    except (RuntimeError, ValueError) as exc:
        _fail(str(exc))


@app.command()
def generate(
    prompt: str = typer.Argument(..., help="Text to continue."),
    checkpoint: Path = typer.Option(..., "--checkpoint", exists=True, file_okay=False, help="A checkpoint directory."),
    max_new: int = typer.Option(32, help="Units (words or tokens) to generate."),
    temperature: float = typer.Option(0.8),
    seed: int = typer.Option(0),
) -> None:
    """Sample a continuation of PROMPT from a trained checkpoint."""
    from kurate.models.checkpoint import generate_text

    typer.echo(generate_text(str(checkpoint), prompt, max_new, temperature, seed))


def _storage_options(config: Optional[Path]) -> dict:
    if config is None:
        return {}
    return _load(config, [], {"root": "unused"}).storage_options


@app.command()
def query(
    sql: str = typer.Argument(..., help='Read-only SQL over the datasets, e.g. "select count(*) from curated".'),
    root: str = typer.Option(..., "--root", "-r", help="The root whose catalog to query."),
    format: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="Output format."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", exists=True, dir_okay=False, help="Config with storage_options."),
    limit: int = typer.Option(1000, help="Most rows to print (table format)."),
) -> None:
    """Run read-only SQL over the committed shards (SELECT/EXPLAIN only)."""
    from kurate.storage.catalog import Catalog, QueryRefused

    try:
        result = Catalog(root, _storage_options(config)).query(sql)
    except QueryRefused as exc:
        _fail(f"query refused: {exc}")
    except Exception as exc:  # noqa: BLE001 - SQL errors are the user's to read
        _fail(f"query failed: {exc}")
    rows = result.to_pylist()
    if format is OutputFormat.json:
        typer.echo(json.dumps(rows, default=str, ensure_ascii=False))
    elif format is OutputFormat.csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(result.column_names)
        writer.writerows([[row[c] for c in result.column_names] for row in rows])
        typer.echo(buffer.getvalue(), nl=False)
    else:
        _print_table(result.column_names, rows[:limit])
        if len(rows) > limit:
            typer.echo(f"… {len(rows) - limit} more rows (use --limit or --format csv)")


def _print_table(columns: list[str], rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns, show_lines=False)
    for row in rows:
        table.add_row(*[_cell(row[c]) for c in columns])
    Console(width=200).print(table)


def _cell(value) -> str:
    text = "NULL" if value is None else " ".join(str(value).split())  # one line per row
    return text if len(text) <= 80 else text[:77] + "…"


@app.command()
def status(
    root: str = typer.Option(..., "--root", "-r", help="The root to describe."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", exists=True, dir_okay=False, help="Config with storage_options."),
) -> None:
    """List datasets (committed shards, rows, bytes) and pending work under ROOT."""
    from kurate.storage.catalog import Catalog

    catalog = Catalog(root, _storage_options(config))
    typer.echo(f"root: {root}")
    typer.echo(f"{'dataset':<12} {'shards':>7} {'rows':>10} {'bytes':>12}")
    for s in catalog.status():
        typer.echo(f"{s.dataset:<12} {s.shards:>7} {s.rows:>10} {s.bytes:>12}")
    store = catalog.store
    committed = {m.unit for m in store.manifests()}
    for plan in store.plans():
        pending = sorted(set(plan["units"]) - committed)
        typer.echo(f"stage {plan['stage']}: {len(plan['units'])} planned shards, {len(plan['units']) - len(pending)} committed, {len(pending)} pending")
        for unit in pending[:20]:
            typer.echo(f"  pending: {plan['units'][unit]}")
    tmp = store.pending_tmp()
    if tmp:
        typer.echo(f"{len(tmp)} uncommitted temporary unit(s) (in flight, or left by a killed run; a re-run replaces them):")
        for name in tmp[:20]:
            typer.echo(f"  {name}")
    if catalog.is_local:
        catalog.refresh_file()


@app.command()
def serve(
    config: Path = typer.Option(Path("configs/demo.yaml"), "--config", "-c", exists=True, dir_okay=False, help="Default parameters for the deployments."),
    cron: Optional[str] = typer.Option(None, help="Cron schedule for the pipeline deployment, e.g. '0 3 * * *'."),
) -> None:
    """Serve the stage flows and the pipeline as Prefect deployments from this process (Ctrl-C stops)."""
    cfg = _load(config, [])
    from kurate.flows.deployments import serve_deployments

    serve_deployments(cfg, cron)


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
