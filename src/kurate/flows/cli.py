"""The ``kurate`` command line.

    kurate run configs/demo.yaml                 # the whole pipeline
    kurate curate --input 'x/*.warc.gz' --root R  # one stage
    kurate query "select count(*) from curated" --root R
    kurate status --root R
    kurate serve                                  # Prefect deployments, served from this process

One error path (``_run``): a failure ends in one line on stderr, what failed and what to do, with
the exit code of its kind (``kurate.errors``): 2 for a config error, 3 for an input error (an input
or a root that does not exist), 1 for a runtime failure; ``kurate --debug`` adds the traceback.
Inputs and roots are checked before a flow starts, so these errors print no Prefect run logs.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import logging
import sys
import traceback
from enum import Enum
from pathlib import Path
from typing import Callable, Optional, TypeVar

import typer
from typer.core import TyperCommand

from kurate.errors import EXIT_CONFIG, explain
from kurate.models.architectures import MODEL_KINDS, PRESETS  # names only: no torch at start-up

T = TypeVar("T")

# options that take several values after one flag (`--types wikipedia summary`); repeating the flag
# works too. The commands that have them take no positional argument the values could swallow.
SEVERAL_VALUES = frozenset({"input", "judge", "types"})


def spread_values(args: list[str], flags: set[str]) -> list[str]:
    """``--types a b -n 3`` → ``--types a --types b -n 3`` for the flags in ``flags`` (click options
    take one value per flag); ``--`` ends the spreading."""
    spread: list[str] = []
    current, own_value = None, False
    for i, token in enumerate(args):
        if token == "--":
            return spread + args[i:]
        if token.startswith("-") and len(token) > 1:
            flag = token.split("=", 1)[0]
            current = flag if flag in flags else None
            own_value = current is not None and "=" not in token  # the next token is this flag's own value
            spread.append(token)
        elif current is not None and not own_value:
            spread += [current, token]
        else:
            own_value = False
            spread.append(token)
    return spread


class SeveralValuesCommand(TyperCommand):
    """A command whose ``SEVERAL_VALUES`` options take every value up to the next option."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        flags = {opt for param in self.params if param.name in SEVERAL_VALUES for opt in param.opts}
        return super().parse_args(ctx, spread_values(list(args), flags))


app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="kurate: curated pre-training data from Common Crawl.\n\n"
                       "A failure ends in one line on stderr; exit codes: 1 runtime failure, 2 config error, 3 input error "
                       "(an input or a root that does not exist).")

_options = {"debug": False}


def _print_version(value: bool) -> None:
    if value:
        from kurate import __version__

        typer.echo(f"kurate {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                       help="Print kurate's version and exit."),
          quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars (log lines stay)."),
          debug: bool = typer.Option(False, "--debug", help="On a failure, print the traceback (and Prefect's) too.")) -> None:
    """kurate: curated pre-training data from Common Crawl."""
    from kurate.flows.progress import set_quiet

    set_quiet(quiet)
    _options["debug"] = debug


SetOption = typer.Option(None, "--set", help="Override a config key: --set curate.ingest.extractor=resiliparse (repeat the flag for more).")


class OutputFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"
    jsonl = "jsonl"


class ExportFormat(str, Enum):
    parquet = "parquet"
    jsonl = "jsonl"


def _fail(message: str) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code=EXIT_CONFIG)


def _load(path: Optional[Path], overrides: Optional[list[str]], given: dict | None = None):
    from kurate.flows.config import ConfigError, load_config

    try:
        return load_config(path, overrides or [], given)
    except ConfigError as exc:
        _fail(str(exc))


class _WithoutTraceback(logging.Formatter):
    """Prefect's console format minus tracebacks: the CLI ends a failure with its own line. The
    flow run's logs in the Prefect API keep them (a separate handler)."""

    def __init__(self, inner: logging.Formatter):
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info or record.exc_text or record.stack_info:
            record = copy.copy(record)
            record.exc_info, record.exc_text, record.stack_info = None, None, None
        return self.inner.format(record)


def _console_without_tracebacks() -> None:
    for name in ("", "prefect", "uvicorn", "fastapi"):
        for handler in logging.getLogger(name).handlers:
            if type(handler).__name__ == "PrefectConsoleHandler" and not isinstance(handler.formatter, _WithoutTraceback):
                handler.setFormatter(_WithoutTraceback(handler.formatter or logging.Formatter()))


def _drain_prefect() -> None:
    """Let Prefect send its queued logs and events now, so its background workers' notes print
    before the failure line rather than after it."""
    if "prefect" not in sys.modules:
        return
    try:
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=5)
        EventsWorker.drain_all(timeout=5)
    except Exception:  # noqa: BLE001 - best effort: the failure line matters more
        pass


# Commands that run flows (and so start a temporary Prefect server, maybe a private Ray): the read-only
# ones (query, status, export, generate) stay free of the watchdog's extra process.
FLOW_COMMANDS = {"run", "curate", "annotate", "distill", "score", "synthesize", "release", "train", "continual", "serve", "submit"}


def _run(command: str, action: Callable[[], T]) -> T:
    """Run a stage; any failure ends in one line (``kurate.errors.explain``) and its exit code."""
    from kurate.flows.watchdog import start_watchdog

    if not _options["debug"]:
        _console_without_tracebacks()
    if command in FLOW_COMMANDS:
        start_watchdog()  # the temporary Prefect server and anything else the run starts die with this process, even on SIGKILL
    try:
        return action()
    except (typer.Exit, typer.Abort):
        raise
    except KeyboardInterrupt:
        typer.secho(f"kurate {command}: interrupted — committed units are kept; a re-run redoes only the rest", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=130) from None
    except Exception as exc:  # noqa: BLE001 - the one place a failure becomes a message
        if _options["debug"]:
            traceback.print_exception(exc, file=sys.stderr)
        # flows.config loads torch (via the JQL heads): only a command that read a config can raise its
        # ConfigError, and `kurate query`/`status` must not pay seconds of imports to find out
        config = sys.modules.get("kurate.flows.config")
        if config is not None and isinstance(exc, config.ConfigError):
            _fail(f"kurate {command}: {exc}")
        failure = explain(exc)
        _drain_prefect()
        typer.secho(f"kurate {command}: {failure.line()}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=failure.exit_code) from None


def _check_inputs(cfg) -> None:
    """The curate inputs exist (an input error, exit code 3, before any flow starts)."""
    from kurate.storage.fs import expand_inputs

    expand_inputs(cfg.curate.inputs, cfg.storage_options)


def _check_root(root: str, storage_options: dict, writes: bool = False) -> None:
    """The root can be reached; unless the stage creates it (``writes``), it must hold a kurate root."""
    from kurate.storage.fs import filesystem

    fs, path = filesystem(root, storage_options)
    exists = fs.exists(path)  # the first request: an unreachable endpoint or missing credentials fail here
    if writes:
        return
    from kurate.storage.shards import ShardStore
    from kurate.storage.status import NoRoot, check_root

    if not exists:
        raise NoRoot(f"no kurate root at {root}")
    check_root(ShardStore(root, storage_options))  # NoRoot (an InputError) when nothing a stage writes is there


def _preflight(command: str, cfg, stages: list[str]) -> None:
    """What can be checked before the first flow starts, reported like any other failure."""
    def check() -> None:
        starts_with_curate = stages[:1] == ["curate"]
        if starts_with_curate:
            _check_inputs(cfg)
        _check_root(cfg.root, cfg.storage_options, writes=starts_with_curate)

    _run(command, check)


@app.command()
def run(
    config: Path = typer.Argument(..., exists=True, dir_okay=False, help="Pipeline YAML, e.g. configs/demo.yaml."),
    set_: Optional[list[str]] = SetOption,
) -> None:
    """Run the whole pipeline (every stage in the config's `stages`)."""
    cfg = _load(config, set_)
    _preflight("run", cfg, list(cfg.stages))
    from kurate.flows.pipeline import pipeline

    _run("run", lambda: pipeline(cfg))


@app.command(cls=SeveralValuesCommand)
def curate(
    input: list[str] = typer.Option(..., "--input", "-i", metavar="URL…",
                                    help="WARC/WET shard URLs or globs (local, s3://, https://); several after one flag, or repeat the flag."),
    root: str = typer.Option(..., "--root", "-r", help="Output root: directory, s3://bucket/prefix or memory://name."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", exists=True, dir_okay=False, help="YAML config to start from."),
    set_: Optional[list[str]] = SetOption,
) -> None:
    """Ingest WARC/WET shards into `curated` and `rejects` under ROOT."""
    cfg = _load(config, set_, {"root": root, "curate": {"inputs": list(input)}})
    _preflight("curate", cfg, ["curate"])
    from kurate.flows.curate import curate as curate_flow

    _run("curate", lambda: curate_flow(cfg))


@app.command(cls=SeveralValuesCommand)
def annotate(
    root: str = typer.Option(..., "--root", "-r", help="Root with committed curated shards."),
    judge: Optional[list[str]] = typer.Option(None, "--judge", "-j", metavar="NAME…",
                                              help="Run only these configured judges (several after one flag, or repeat the flag)."),
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
    _preflight("annotate", cfg, ["annotate"])
    from kurate.flows.annotate import annotate as annotate_flow

    _run("annotate", lambda: annotate_flow(cfg))


def _run_jql(flow_name: str, root: str, config: Optional[Path], set_: Optional[list[str]]) -> None:
    cfg = _load(config, set_, {"root": root})
    _preflight(flow_name, cfg, [flow_name])
    import kurate.flows.jql

    _run(flow_name, lambda: getattr(kurate.flows.jql, flow_name)(cfg))


@app.command()
def distill(
    root: str = typer.Option(..., "--root", "-r", help="Root with curated shards and judge labels."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", exists=True, dir_okay=False, help="YAML config to start from."),
    set_: Optional[list[str]] = SetOption,
) -> None:
    """Embed curated documents and train one JQL head per judge (registered under ROOT/annotators/)."""
    _run_jql("distill", root, config, set_)


@app.command()
def score(
    root: str = typer.Option(..., "--root", "-r", help="Root with curated shards and registered annotators."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", exists=True, dir_okay=False, help="YAML config to start from."),
    set_: Optional[list[str]] = SetOption,
) -> None:
    """Score every curated document with every head and keep those above per-head quantile thresholds."""
    _run_jql("score", root, config, set_)


@app.command(cls=SeveralValuesCommand)
def synthesize(
    root: str = typer.Option(..., "--root", "-r", help="Root with committed curated shards (kept ones are used when scores exist)."),
    types: Optional[list[str]] = typer.Option(None, "--types", "-t", metavar="TYPE…",
                                              help="Prompt types: wikipedia, summary, qa, list, simple (several after one flag, "
                                                   "or repeat the flag)."),
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
    _preflight("synthesize", cfg, ["synthesize"])
    from kurate.flows.synthesize import synthesize as synthesize_flow

    _run("synthesize", lambda: synthesize_flow(cfg))


@app.command()
def release(
    root: str = typer.Option(..., "--root", "-r", help="Root with committed curated (and scores, synthetic) shards."),
    name: Optional[str] = typer.Option(None, "--name", "-n", help="Release name (default: the config's release.name, else default)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", exists=True, dir_okay=False, help="YAML config to start from."),
    set_: Optional[list[str]] = SetOption,
) -> None:
    """Write a versioned release (ROOT/releases/NAME/vK/, Hugging Face Parquet layout + dataset card); the same
    config and inputs give the existing version, a changed config or new inputs the next one."""
    given: dict = {"root": root}
    if name is not None:
        given["release"] = {"name": name}
    cfg = _load(config, set_, given)
    _preflight("release", cfg, ["release"])
    from kurate.flows.release import release as release_flow

    result = _run("release", lambda: release_flow(cfg))
    state = "new version" if result["created"] else "unchanged"
    typer.echo(f"{result['name']}@v{result['version']} ({state}): {result['documents']} documents, {result['words']} words "
               f"in {result['path']}")


@app.command()
def export(
    release_ref: str = typer.Option(..., "--release", help="NAME or NAME@vK (default version: latest)."),
    to: str = typer.Option(..., "--to", help="Target folder URL (fsspec: a path, s3://bucket/prefix, …); it must be "
                           "empty or new (an export never mixes with an earlier one's files)."),
    root: str = typer.Option(..., "--root", "-r", help="The root holding the release."),
    format: ExportFormat = typer.Option(ExportFormat.parquet, "--format", "-f", help="parquet: the layout as is; jsonl: one JSON object per line."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", exists=True, dir_okay=False, help="Config with storage_options."),
) -> None:
    """Copy a release version, with its card, into an empty or new folder, for other trainers."""
    from kurate.flows.config import TrainData
    from kurate.release.export import export_release

    storage_options = _storage_options(config)
    try:
        ref = TrainData.parse(release_ref)
    except ValueError as exc:
        _fail(f"--release {release_ref!r}: expected NAME or NAME@vK ({exc.__class__.__name__})")
    _run("export", lambda: _check_root(root, storage_options))
    done = _run("export", lambda: export_release(root, ref.release, ref.version, to, format.value, storage_options))
    typer.echo(f"{done['name']}@v{done['version']}: {done['documents']} documents in {len(done['files'])} files → {to}")


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
    release_ref: Optional[str] = typer.Option(None, "--release", help="Train on this release: NAME or NAME@vK "
                                              "(default: the config's train.data, else the raw train.mix)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", exists=True, dir_okay=False, help="YAML config to start from."),
    set_: Optional[list[str]] = SetOption,
) -> None:
    """Train a model on the root's data: in-process (CPU or one GPU), or with Ray Train when a Ray address is set
    (train.num_workers DDP ranks). A typo under --set train.overrides.… is a config error (exit code 2)."""
    chosen: dict = {key: choice.value for key, choice in (("model", model), ("preset", preset)) if choice is not None}
    if release_ref is not None:
        from kurate.flows.config import TrainData

        try:
            chosen["data"] = TrainData.parse(release_ref).model_dump(mode="json")
        except ValueError as exc:
            _fail(f"--release {release_ref!r}: expected NAME or NAME@vK ({exc.__class__.__name__})")
    cfg = _load(config, set_, {"root": root, "train": chosen})
    _preflight("train", cfg, ["train"])
    from kurate.flows.train import train_local

    _run("train", lambda: train_local(cfg))


@app.command()
def continual(
    root: str = typer.Option(..., "--root", "-r", help="Root with the old and the new data."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", exists=True, file_okay=False,
                                              help="Checkpoint to continue (default: the train stage's)."),
    new: Optional[str] = typer.Option(None, "--new", help="Dataset with the new data, e.g. synthetic or curated."),
    release_ref: Optional[str] = typer.Option(None, "--release", help="Old and new version of a release: NAME@vOLD..vNEW "
                                              "or NAME@vOLD..latest (replay candidates from vOLD, new data from vNEW)."),
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
    if release_ref is not None:
        from kurate.flows.config import ContinualData

        try:
            # the release and versions only: other `continual.data` fields (new_only) keep the config's value
            given["continual"]["data"] = ContinualData.parse(release_ref).model_dump(mode="json", exclude={"new_only"})
        except ValueError as exc:
            _fail(f"--release {release_ref!r}: expected NAME@vOLD..vNEW ({exc.__class__.__name__})")
    cfg = _load(config, set_, given)
    _preflight("continual", cfg, ["continual"])
    from kurate.flows.continual import continual_local

    _run("continual", lambda: continual_local(cfg))


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

    typer.echo(_run("generate", lambda: generate_text(str(checkpoint), prompt, max_new, temperature, seed)))


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

    storage_options = _storage_options(config)
    _run("query", lambda: _check_root(root, storage_options))
    try:
        result = Catalog(root, storage_options).query(sql)
    except QueryRefused as exc:
        _fail(f"query refused: {exc}")
    except Exception as exc:  # noqa: BLE001 - SQL errors are the user's to read
        _fail(f"query failed: {exc}")
    rows = result.to_pylist()
    if format is OutputFormat.json:
        typer.echo(json.dumps(rows, default=str, ensure_ascii=False))
    elif format is OutputFormat.jsonl:
        for row in rows:
            typer.echo(json.dumps(row, default=str, ensure_ascii=False))
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
    """List datasets (committed units, rows, bytes) and every stage's committed, pending and temporary
    units under ROOT. Read-only: writes nothing; a ROOT that holds no kurate root is an error (exit code 3)."""
    from kurate.storage.status import render, root_status

    described = _run("status", lambda: root_status(root, _storage_options(config)))  # no root: NoRoot, an input error
    for line in render(described):
        typer.echo(line)


@app.command()
def vacuum(
    root: str = typer.Option(..., "--root", "-r", help="The root to clean."),
    older_than_days: float = typer.Option(7.0, "--older-than-days", min=0,
                                          help="Remove a superseded generation only once its successor committed this many days ago, "
                                               "and an orphaned file only once it is this old (never younger than 10 minutes)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would be removed; remove nothing."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", exists=True, dir_okay=False, help="Config with storage_options."),
) -> None:
    """Remove files no catalog shows any more, so a reader that globs a dataset folder sees what the catalog sees:
    superseded generations, orphaned per-attempt files (<unit>.<token>.parquet no commit record names; none while a
    run holds the root), temporary units of dead writers and old catalog snapshots. Never removes a commit record or a
    file a current commit record names. Prints counts and bytes per kind."""
    from kurate.storage.vacuum import vacuum as run_vacuum

    report = _run("vacuum", lambda: run_vacuum(root, older_than_days, _storage_options(config), dry_run=dry_run))
    for line in report.lines(dry_run):
        typer.echo(line)


@app.command()
def serve(
    config: Path = typer.Option(Path("configs/demo.yaml"), "--config", "-c", exists=True, dir_okay=False, help="Default parameters for the deployments."),
    cron: Optional[str] = typer.Option(None, help="Cron schedule for the pipeline deployment, e.g. '0 3 * * *'."),
) -> None:
    """Serve the stage flows and the pipeline as Prefect deployments from this process (Ctrl-C stops)."""
    cfg = _load(config, [])
    from kurate.flows.deployments import serve_deployments

    _run("serve", lambda: serve_deployments(cfg, cron))


@app.command()
def submit(
    config: Path = typer.Argument(..., exists=True, dir_okay=False, help="Pipeline YAML, e.g. configs/germanweb.yaml."),
    address: Optional[str] = typer.Option(None, "--address", "-a", help="The cluster's Ray dashboard (Jobs API), e.g. "
                                          "http://HEAD:8265 (default: ray.job_address, else $RAY_JOB_ADDRESS)."),
    stage: Optional[str] = typer.Option(None, "--stage", "-s", help="Run only this stage (default: every stage in the config's `stages`)."),
    wait: bool = typer.Option(False, "--wait", "-w", help="Stream the job's log until it ends (Ctrl-C stops the job); "
                              "the exit code says how it ended."),
    package: str = typer.Option("installed", "--package", help="Where the job's kurate comes from: installed (the cluster's, "
                                "same version required), ship (upload this kurate package), pip (pip install kurate==VERSION)."),
    set_: Optional[list[str]] = SetOption,
) -> None:
    """Run the pipeline (or one stage) on a Ray cluster as a Ray Job; submitting the same config again attaches to it."""
    cfg = _load(config, set_)
    from kurate.flows.submit import submit as submit_job

    _run("submit", lambda: submit_job(cfg, address, stage, wait=wait, package=package, echo=typer.echo))


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
