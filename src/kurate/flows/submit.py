"""Run the pipeline (or one stage) on a Ray cluster as a Ray Job: ``kurate submit`` and the Prefect flow ``submit``.

    kurate submit configs/germanweb.yaml --address http://HEAD:8265 --wait
    kurate submit configs/demo.yaml --address http://127.0.0.1:8265 --stage curate --wait

The driver itself runs on the cluster (docs/ARCHITECTURE.md, "Where things run"): this process only
submits it, streams its logs and waits; so a laptop, CI runner or Prefect worker drives a remote
cluster without running the data plane. The job gets:

* the config in the job's environment (``KURATE_JOB_CONFIG``, through the Jobs API: no shared filesystem
  and no ``working_dir`` — on several nodes of one machine Ray's nodes share and clean up one working-dir
  cache, which removed a running driver's directory), paths already resolved on this side;
* the driver's ``KURATE_*`` and cache settings (``runner.worker_env``), and ``PREFECT_API_URL`` when the
  cluster can reach it (else the job starts its own temporary Prefect server);
* kurate itself: the cluster's installed package (``--package installed``, the default; the job
  refuses to run another version), this client's package uploaded as a ``py_module``
  (``--package ship``) or ``pip install kurate==VERSION`` in the job's environment (``--package pip``).

The submission id derives from the config and the stage, so submitting again attaches to the job
that runs (or succeeded) instead of starting a second one; after a failed or stopped job a new one
``…-retryN`` starts (committed units are skipped, so it redoes only the rest). Ctrl-C (or cancelling
the Prefect flow run) stops the job.

    python -m kurate.flows.submit [--stage STAGE] [--expect-version V]   # the job's entry point (config: $KURATE_JOB_CONFIG)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

from prefect import flow

from kurate.errors import KurateError, explain
from kurate.flows.config import STAGES, ConfigError, PipelineConfig
from kurate.flows.runner import follow_ray_job, submit_ray_job, worker_env
from kurate.storage.shards import config_hash

CONFIG_VARIABLE = "KURATE_JOB_CONFIG"  # the job's config (JSON); read and removed by the job's driver
PACKAGES = ("installed", "ship", "pip")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class SubmitError(KurateError):
    """A Ray Job that cannot be submitted, or that ended without success."""

    default_hint = "its log is above; fix the cause and submit again (committed units are skipped)"


def job_address(config: PipelineConfig, address: str | None = None) -> str:
    """The Jobs API address: the given one, ``ray.job_address``, or ``$RAY_JOB_ADDRESS``; http:// added when missing."""
    address = address or config.ray.job_address or os.environ.get("RAY_JOB_ADDRESS")
    if not address:
        raise SubmitError("no Ray Jobs address to submit to",
                          "pass --address http://HEAD:8265, or set ray.job_address or $RAY_JOB_ADDRESS")
    return address if "://" in address else f"http://{address}"


def submission_id(config: PipelineConfig, stage: str | None) -> str:
    """Same config and stage → same id (how a re-submit finds its job). ``ray.submit``/``ray.job_address``
    say where to submit, not what runs: they are left out."""
    spec = config.model_dump(mode="json")
    spec["ray"] = {k: v for k, v in spec["ray"].items() if k not in ("submit", "job_address")}
    return f"kurate-{stage or 'pipeline'}-{config_hash([spec, stage])}"


def _is_loopback(url: str) -> bool:
    return (urlparse(url).hostname or "") in _LOOPBACK


def job_env(address: str) -> dict[str, str]:
    """What the job's driver inherits: worker settings, and the Prefect API when the cluster can reach it."""
    env = worker_env()
    prefect_api = os.environ.get("PREFECT_API_URL")
    if prefect_api and (not _is_loopback(prefect_api) or _is_loopback(address)):
        env["PREFECT_API_URL"] = prefect_api
    return env


def runtime_env(config: PipelineConfig, address: str, package: str) -> dict:
    """The job's runtime environment: the config and the settings as env vars, and where kurate comes from."""
    import kurate

    if package not in PACKAGES:
        raise ConfigError(f"unknown --package {package!r}: use one of {', '.join(PACKAGES)}")
    # storage credentials come from the cluster's environment, never from the job spec
    env: dict = {"env_vars": {**job_env(address), CONFIG_VARIABLE: config.model_dump_json()}}
    if package == "ship":
        env["py_modules"] = [str(Path(kurate.__file__).parent)]
    elif package == "pip":
        env["pip"] = [f"kurate=={kurate.__version__}"]
    return env


def entrypoint(stage: str | None, package: str, address: str) -> str:
    """``python -m kurate.flows.submit …``; on a loopback cluster this client's interpreter (the head runs here)."""
    import kurate

    python = sys.executable if _is_loopback(address) else "python"
    args = [python, "-m", "kurate.flows.submit"]
    if stage:
        args += ["--stage", stage]
    if package == "installed":
        args += ["--expect-version", kurate.__version__]
    return " ".join(args)


def _client(address: str, attempts: int = 5):
    """A Jobs API client; a refused connection is tried again a few times (a busy or restarting dashboard,
    a port-forward that is reconnecting) before it becomes one line."""
    from ray.job_submission import JobSubmissionClient

    for attempt in range(attempts):
        try:
            client = JobSubmissionClient(address)
            break
        except ConnectionError:
            if attempt < attempts - 1:
                time.sleep(3)
                continue
            raise SubmitError(f"cannot reach the Ray Jobs API at {address}",
                              "check --address (the dashboard, http://HEAD:8265) and that the head is up") from None
        except Exception as exc:  # noqa: BLE001 - the version check and auth errors say it in one line
            text = " ".join(str(exc).split())
            raise SubmitError(f"cannot use the Ray Jobs API at {address}: {text[:300]}",
                              "check the cluster's Ray version and RAY_AUTH_MODE") from None
    _check_cluster_version(client, address)
    return client


def _check_cluster_version(client, address: str) -> None:
    import ray

    try:
        theirs = client.get_version()  # the Jobs API's version, and the cluster's Ray version via /api/version
        import httpx

        info = httpx.get(f"{address}/api/version", timeout=10, headers=client._headers).json()
    except Exception:  # noqa: BLE001 - an older head without /api/version: Ray's own check applies
        return
    cluster = info.get("ray_version")
    if cluster and cluster != ray.__version__:
        raise SubmitError(f"the cluster at {address} runs ray {cluster}, this client ray {ray.__version__} (Jobs API {theirs})",
                          f"install ray=={cluster} here (the job's driver runs the cluster's Ray either way)")


def submit(config: PipelineConfig, address: str | None = None, stage: str | None = None, wait: bool = True,
           package: str = "installed", echo: Callable[[str], None] = print) -> dict:
    """Submit the pipeline (or ``stage``) as a Ray Job, or attach to the one with the same id; with
    ``wait``, stream its logs until it ends (Ctrl-C stops it). Returns the job's id and status."""
    from ray.job_submission import JobStatus

    if stage is not None and stage not in STAGES:
        raise ConfigError(f"unknown --stage {stage!r}: use one of {', '.join(STAGES)}")
    if package not in PACKAGES:
        raise ConfigError(f"unknown --package {package!r}: use one of {', '.join(PACKAGES)}")
    address = job_address(config, address)
    client = _client(address)
    base = submission_id(config, stage)
    jobs = sorted((j for j in client.list_jobs() if (j.submission_id or "").startswith(base)), key=lambda j: j.submission_id)
    live = [j for j in jobs if not j.status.is_terminal() or j.status == JobStatus.SUCCEEDED]
    job_id = live[-1].submission_id if live else base if not jobs else f"{base}-retry{len(jobs)}"
    try:  # Ctrl-C from here on stops the job, also while it is being submitted
        if live:
            echo(f"[submit] attaching to Ray Job {job_id} ({live[-1].status})")
        else:
            submit_ray_job(client, entrypoint=entrypoint(stage, package, address), submission_id=job_id,
                    runtime_env=runtime_env(config, address, package),
                    metadata={"kurate_stage": stage or "pipeline", "kurate_root": config.root})
            echo(f"[submit] submitted Ray Job {job_id} to {address}")
        if not wait:
            echo(f"[submit] follow it with: ray job logs --address {address} --follow {job_id}")
            return {"job": job_id, "status": str(client.get_job_status(job_id))}
        status = follow_ray_job(client, job_id, echo, "[job]", poll_s=1.0)
    except KeyboardInterrupt:
        _stop(client, job_id, echo)
        raise
    if status != JobStatus.SUCCEEDED:
        message = client.get_job_info(job_id).message or ""
        raise SubmitError(f"Ray Job {job_id} ended {status}: {' '.join(message.split())[:300]}")
    return {"job": job_id, "status": str(status)}


def _stop(client, job_id: str, echo: Callable[[str], None]) -> None:
    """Stop the job (a second Ctrl-C while stopping is ignored: the stop request must go out)."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        try:
            client.stop_job(job_id)
        except Exception:  # noqa: BLE001 - interrupted before the job existed: nothing to stop
            return
        echo(f"[submit] stopped Ray Job {job_id}")
    finally:
        signal.signal(signal.SIGINT, previous)


def _stop_on_cancel(flow, flow_run, state) -> None:
    """Prefect cancellation hook: stop the Ray Job this flow run follows."""
    config = PipelineConfig.model_validate(flow_run.parameters["config"])
    stage = flow_run.parameters.get("stage")
    client = _client(job_address(config))
    for job in client.list_jobs():
        if (job.submission_id or "").startswith(submission_id(config, stage)) and not job.status.is_terminal():
            client.stop_job(job.submission_id)
            print(f"[submit] stopped Ray Job {job.submission_id}")


@flow(name="submit", log_prints=True, on_cancellation=[_stop_on_cancel])
def submit_flow(config: PipelineConfig, stage: str | None = None) -> dict:
    """Run the pipeline (or one stage) as a Ray Job on ``ray.job_address`` and follow it (``ray.submit: true``)."""
    return submit(config, None, stage, wait=True)


# --- inside the job ------------------------------------------------------------------------------------

def run_job(spec: str, stage: str | None, expect_version: str | None) -> dict:
    """The job's driver: the config (JSON) run here on the cluster (never submitted again)."""
    import kurate

    if expect_version and expect_version != kurate.__version__:
        raise SubmitError(f"the cluster has kurate {kurate.__version__}, the submitter kurate {expect_version}",
                          "install the same kurate version on the cluster (infra/docker), or submit with --package ship")
    config = PipelineConfig.model_validate_json(spec)
    config.ray.submit = False
    if stage is None:
        from kurate.flows.pipeline import pipeline

        return pipeline(config)
    from kurate.flows.pipeline import STAGE_FLOWS

    return STAGE_FLOWS[stage](config)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kurate.flows.submit", description="Entry point of a kurate Ray Job.")
    parser.add_argument("--stage", choices=STAGES)
    parser.add_argument("--expect-version")
    args = parser.parse_args(argv)
    # not passed on: Ray Jobs this driver submits (train, continual) get the KURATE_* settings, not this
    spec = os.environ.pop(CONFIG_VARIABLE, None)
    try:
        if spec is None:
            raise SubmitError(f"${CONFIG_VARIABLE} is not set", "this entry point runs inside a job that `kurate submit` started")
        result = run_job(spec, args.stage, args.expect_version)
    except Exception as exc:  # noqa: BLE001 - the job's log ends in one line saying what failed
        failure = explain(exc)
        print(f"kurate job: {failure.line()}", file=sys.stderr, flush=True)
        return failure.exit_code
    print(f"[job] done: {result}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
