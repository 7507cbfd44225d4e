"""The CLI's one error path (exit codes 2 config / 3 input / 1 runtime, one line, ``--debug`` for the
traceback), options that take several values after one flag, ``--quiet``, and what Ray workers
print reaching the Prefect flow run's logs. Output behaviour is checked on the real ``kurate``
executable in a subprocess."""

from __future__ import annotations

import functools
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from conftest import free_port
from kurate.errors import EXIT_CONFIG, EXIT_INPUT, EXIT_RUNTIME, InputError, KurateError, StorageError, explain
from kurate.flows.cli import app, spread_values
from kurate.flows.runner import WorkerResources, map_on_workers  # before Ray relays a log line (RAY_TQDM_PATCH_PRINT)

KURATE = str(Path(sys.executable).with_name("kurate"))


def kurate(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([KURATE, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})


def error_lines(done: subprocess.CompletedProcess) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def curated_root(tmp_path_factory, demo_warc) -> str:
    from kurate.tasks.curate import run_local
    from kurate.tasks.ingest import IngestConfig

    root = str(tmp_path_factory.mktemp("errors") / "root")
    run_local([str(demo_warc[0])], root, IngestConfig(extractor="resiliparse"))
    return root


def test_a_config_error_exits_2_naming_the_key(tmp_path):
    done = kurate("curate", "--input", "x.warc.gz", "--root", str(tmp_path / "r"), "--set", "curate.ingest.nope=1")
    assert done.returncode == EXIT_CONFIG
    assert "curate.ingest.nope: unknown key" in done.stderr and "Traceback" not in done.stderr


def test_a_missing_input_is_one_line_with_exit_3_and_no_prefect_traceback(tmp_path):
    done = kurate("curate", "--input", str(tmp_path / "missing.warc.gz"), "--root", str(tmp_path / "r"))
    assert done.returncode == EXIT_INPUT
    assert error_lines(done) == [f"kurate curate: input '{tmp_path / 'missing.warc.gz'}' matches no file — "
                                 "check --input / curate.inputs (a path, glob or URL that exists)"]
    assert not (tmp_path / "r").exists()  # checked before the flow: nothing written, no Prefect run


def test_an_unknown_root_is_an_input_error(tmp_path):
    for args in (["annotate", "--root", str(tmp_path / "typo")], ["query", "select 1", "--root", str(tmp_path / "typo")]):
        done = kurate(*args)
        assert done.returncode == EXIT_INPUT, done.stderr
        [line] = error_lines(done)
        assert line.startswith(f"kurate {args[0]}: no kurate root at {tmp_path / 'typo'} — check --root")
    assert not (tmp_path / "typo").exists()


def test_debug_adds_the_traceback(tmp_path):
    done = kurate("--debug", "annotate", "--root", str(tmp_path / "typo"))
    assert done.returncode == EXIT_INPUT
    assert "Traceback (most recent call last)" in done.stderr and "kurate.storage.status.NoRoot" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("kurate annotate: no kurate root at")


def test_an_unreachable_s3_endpoint_is_a_runtime_failure_in_one_line(demo_warc):
    closed = free_port()  # nothing listens there
    s3 = ["--set", f"storage_options.s3.endpoint_url=http://127.0.0.1:{closed}",
          "--set", "storage_options.s3.config_kwargs={retries: {max_attempts: 1}}"]
    done = kurate("curate", "--input", str(demo_warc[0]), "--root", "s3://kurate/run", *s3,
                  "--set", "storage_options.s3.key=k", "--set", "storage_options.s3.secret=s")
    assert done.returncode == EXIT_RUNTIME
    [line] = error_lines(done)
    assert line.startswith(f"kurate curate: cannot reach the storage endpoint: Could not connect to the endpoint URL: \"http://127.0.0.1:{closed}/")
    assert line.endswith("check storage_options.s3.endpoint_url and that the S3 server is up")
    # no credentials anywhere: said so, before any request
    bare = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    no_credentials = {"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true"}
    done = subprocess.run([KURATE, "curate", "--input", str(demo_warc[0]), "--root", "s3://kurate/run", *s3], capture_output=True,
                          text=True, timeout=300, env={**bare, **no_credentials})
    assert done.returncode == EXIT_RUNTIME
    assert error_lines(done) == ["kurate curate: no S3 credentials found — set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                                 "or reference them in storage_options.s3 ({prefect_secret: BLOCK}, {env: VAR} or "
                                 "{file: PATH}; README: Credentials)"]


def test_a_failure_inside_a_flow_ends_in_one_line_without_prefect_tracebacks(prefect_server, curated_root):
    done = kurate("train", "--root", curated_root, "--set", "train.mix=[{dataset: synthetic}]", env={"PREFECT_API_URL": prefect_server})
    assert done.returncode == EXIT_RUNTIME, done.stderr
    assert "Traceback" not in done.stderr
    ours = [line for line in error_lines(done) if line.startswith("kurate train:")]
    assert ours == [f"kurate train: no committed 'synthetic' shards under {curated_root} — run the stage that makes them first"]


def test_ray_wrappers_are_explained_by_the_workers_own_error():
    from ray.train import WorkerGroupError

    failed = WorkerGroupError("rank 0: ValueError: lr must be positive", {0: ValueError("lr must be positive")})
    assert explain(failed).line() == "ValueError: lr must be positive — run again with --debug for the traceback"
    assert isinstance(explain(FileNotFoundError(2, "No such file", "/x.warc.gz")), InputError)
    assert explain(ConnectionRefusedError("refused")).exit_code == EXIT_RUNTIME
    assert isinstance(explain(ConnectionRefusedError("refused")), StorageError)
    assert isinstance(explain(KurateError("x")), KurateError) and explain(InputError("x")).exit_code == EXIT_INPUT


# --- several values after one flag -------------------------------------------------------------------

def _params(command: str, args: list[str]) -> dict:
    click_command = typer.main.get_command(app).commands[command]
    return click_command.make_context(command, args).params


def test_several_values_after_one_flag_or_one_flag_each():
    assert _params("synthesize", ["--root", "r", "--types", "wikipedia", "summary", "-n", "3"])["types"] == ["wikipedia", "summary"]
    assert _params("synthesize", ["--root", "r", "--types", "wikipedia", "--types", "summary"])["types"] == ["wikipedia", "summary"]
    assert _params("synthesize", ["-t", "qa", "list", "--root", "r", "--types=simple", "wikipedia"])["types"] == ["qa", "list", "simple", "wikipedia"]
    assert _params("annotate", ["--root", "r", "--judge", "A", "B"])["judge"] == ["A", "B"]
    assert _params("curate", ["--input", "a.warc.gz", "b.warc.gz", "--root", "r"])["input"] == ["a.warc.gz", "b.warc.gz"]
    # --set stays one value per flag (a value may hold spaces or commas)
    assert _params("curate", ["-i", "a", "--set", "x=1", "--set", "y=[a, b]", "--root", "r"])["set_"] == ["x=1", "y=[a, b]"]
    assert spread_values(["--types", "a", "b", "--", "c"], {"--types"}) == ["--types", "a", "--types", "b", "--", "c"]


def test_the_readme_command_line_parses_as_shown(tmp_path):
    done = kurate("synthesize", "--root", str(tmp_path / "typo"), "--types", "wikipedia", "summary", "qa", "list", "bogus")
    # every value reached the config: only the bad one is named (exit 2), no "unexpected extra argument"
    assert done.returncode == EXIT_CONFIG and "unknown prompt type(s) ['bogus']" in done.stderr
    done = kurate("synthesize", "--root", str(tmp_path / "typo"), "--types", "wikipedia", "summary", "--max-docs", "3")
    assert done.returncode == EXIT_INPUT and "no kurate root" in done.stderr  # parsed; the root is what is wrong
    done = kurate("annotate", "--root", str(tmp_path / "typo"), "--judge", "smollm2-edu", "other")
    assert done.returncode == EXIT_CONFIG and "no judge named 'other'" in done.stderr


# --- progress bars -----------------------------------------------------------------------------------

def _on_a_terminal(args: list[str], env: dict, timeout: float = 300) -> tuple[int, str]:
    """Run with stderr on a pseudo-terminal (where bars are drawn); returns (exit code, what the terminal got)."""
    main, side = pty.openpty()
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=side,
                            env={**os.environ, "COLUMNS": "160", **env})
    os.close(side)
    seen = []
    while True:
        ready, _, _ = select.select([main], [], [], 0.5)
        if ready:
            try:
                data = os.read(main, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            seen.append(data)
        elif proc.poll() is not None:
            break
    os.close(main)
    return proc.wait(timeout=timeout), b"".join(seen).decode(errors="replace")


def test_progress_bars_on_a_terminal_and_none_under_quiet(prefect_server, demo_warc, tmp_path):
    env = {"PREFECT_API_URL": prefect_server}
    args = ["curate", "--input", str(demo_warc[0]), "--set", "ray.executor=local", "--set", "curate.ingest.extractor=resiliparse"]
    rc, shown = _on_a_terminal([KURATE, *args, "--root", str(tmp_path / "a")], env)
    assert rc == 0, shown[-3000:]
    assert "curate filter" in shown and "1/1" in shown and "ETA" in shown and "curate finalize" in shown
    rc, quiet = _on_a_terminal([KURATE, "--quiet", *args, "--root", str(tmp_path / "b")], env)
    assert rc == 0, quiet[-3000:]
    assert "[curate:filter] 1/1 shards" in quiet  # the log lines stay
    assert "curate filter" not in quiet and "ETA" not in quiet
    # not a terminal (a pipe): no bar either
    done = kurate(*args, "--root", str(tmp_path / "c"), env=env)
    assert done.returncode == 0 and "ETA" not in done.stderr and "[curate:filter] 1/1 shards" in done.stderr


# --- Ray worker output in the flow run's logs --------------------------------------------------------

def test_what_a_ray_actor_prints_reaches_the_flow_run_logs(prefect_server, ray_local):
    from prefect import flow, task
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    from kurate.flows.config import RayConfig

    class Loud:  # stands for a model whose loading and calls print
        def __init__(self) -> None:
            print("converting the loud model (once per actor)")

        def shout(self, item: int) -> int:
            if item == 3:
                raise ValueError("item 3 is bad")
            print(f"shouting item {item}")
            return item

    @task
    def shout_all(items: list[int]) -> list[int]:
        return map_on_workers(functools.partial(Loud), items, lambda worker, item: worker.shout(item),
                              WorkerResources(cpus=0.5), RayConfig(), workers=1, label="loud")

    @flow(log_prints=True)
    def loud_flow(items: list[int]) -> list[int]:
        return shout_all(items)

    def messages(state) -> list[str]:
        APILogWorker.drain_all(timeout=30)  # the run's logs are sent in the background
        with get_client(sync_client=True) as client:
            logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id])))
        return [log.message for log in logs]

    ok = loud_flow([1, 2], return_state=True)
    assert ok.is_completed()
    seen = messages(ok)
    assert "[loud worker 0] converting the loud model (once per actor)" in seen
    assert {"[loud worker 0] shouting item 1", "[loud worker 0] shouting item 2"} <= set(seen)

    failed = loud_flow([3], return_state=True)
    assert failed.is_failed()
    seen = messages(failed)
    assert "[loud worker 0] ValueError: item 3 is bad" in seen  # the actor's own traceback, line by line
    assert any(m.startswith("[loud worker 0] Traceback (most recent call last)") for m in seen)
