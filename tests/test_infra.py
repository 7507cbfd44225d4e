"""What surrounds the pipeline: the local infra (infra/local/up.sh → a pipeline run seen through the Prefect
API → down.sh, on non-default ports), the deployments (`kurate serve` creates the ones the README lists;
prefect.yaml names real flows with valid parameters), and the licence files (LICENSE, NOTICE, pyproject,
the terms written next to converted weights)."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import tomllib
from pathlib import Path

import httpx
import psutil
import pytest
import yaml
from prefect import Flow

from conftest import free_port
from kurate.flows.config import PipelineConfig, load_config

REPO = Path(__file__).resolve().parents[1]
INFRA = REPO / "infra" / "local"
LOOPBACK = {"127.0.0.1", "::ffff:127.0.0.1", "::1"}


def _readme_section(title: str) -> str:
    text = (REPO / "README.md").read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def _session(sid: int) -> list[psutil.Process]:
    """Every live process of session `sid` (what up.sh started for one service)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) == sid and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (ProcessLookupError, psutil.Error):
            pass
    return found


def _gone(proc: psutil.Process) -> bool:
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.e2e
def test_up_pipeline_down_on_other_ports(ray_head, demo_warc, tmp_path):
    ports = {name: free_port() for name in ("PREFECT_PORT", "RAY_PORT", "RAY_DASHBOARD_PORT", "RAY_CLIENT_PORT",
                                            "RAY_DASHBOARD_AGENT_PORT")}
    assert ports["PREFECT_PORT"] != 4200 and ports["RAY_DASHBOARD_PORT"] != 8265
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RAY_"))}
    env.update({k: str(v) for k, v in ports.items()}, KURATE_INFRA_STATE=str(state), RAY_NUM_CPUS="1")
    up = subprocess.run(["bash", str(INFRA / "up.sh")], env=env, capture_output=True, text=True, timeout=400)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        sessions = {name: int((state / f"{name}.pid").read_text()) for name in ("prefect", "ray")}
        prefect = f"http://127.0.0.1:{ports['PREFECT_PORT']}"

        # the browser UI asks /ui-settings where its API is: this port, not the default 4200
        settings = httpx.get(f"{prefect}/ui-settings", timeout=10).json()
        assert settings["api_url"] == f"{prefect}/api"
        # the Ray head runs the dashboard with the Jobs API, on its own port
        jobs = httpx.get(f"http://127.0.0.1:{ports['RAY_DASHBOARD_PORT']}/api/jobs/", timeout=10)
        assert jobs.status_code == 200 and isinstance(jobs.json(), list)

        root = tmp_path / "root"
        run = subprocess.run(["bash", "-c", f'source "{state}/env.sh" && exec "$0" curate -i "$1" -r "$2"',
                              str(REPO / ".venv" / "bin" / "kurate"), str(demo_warc[0]), str(root)],
                             env=env, capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

        body = {"flows": {"name": {"any_": ["curate"]}}, "sort": "START_TIME_DESC"}
        flow_runs = httpx.post(f"{prefect}/api/flow_runs/filter", json=body, timeout=10).json()
        ours = [r for r in flow_runs if r["parameters"]["config"]["root"] == str(root)]
        assert len(ours) == 1 and ours[0]["state_type"] == "COMPLETED"

        started = {name: _session(sid) for name, sid in sessions.items()}
        assert len(started["ray"]) > 3 and started["prefect"]  # GCS, raylet, dashboard, agents …
        for proc in started["ray"] + started["prefect"]:  # README: every port on loopback only
            try:
                listening = [c.laddr for c in proc.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
            except psutil.NoSuchProcess:
                continue
            assert all(addr.ip in LOOPBACK for addr in listening), (proc.name(), listening)
    finally:
        down = subprocess.run(["bash", str(INFRA / "down.sh")], env=env, capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
    assert all(_gone(proc) for procs in started.values() for proc in procs)
    assert not (state / "env.sh").exists() and not list(state.glob("*.pid"))
    # the other Ray on this machine (the test's own head) still answers: down.sh is not `ray stop`
    assert httpx.get(f"{ray_head}/api/version", timeout=10).status_code == 200


def test_served_deployments_are_the_readmes():
    from kurate.flows.deployments import build_deployments

    deployments = build_deployments(load_config(REPO / "configs" / "demo.yaml"), cron="0 3 * * *")
    served = [f"{d.flow_name}/{d.name}" for d in deployments]
    section = _readme_section("Run with the Prefect UI")
    assert re.findall(r"^\| `([\w-]+/served-[\w-]+)` \|", section, flags=re.M) == served
    # one per stage the pipeline knows, plus the pipeline itself
    from kurate.flows.pipeline import STAGE_FLOWS

    assert sorted(d.name for d in deployments) == sorted(["served-pipeline", *(f"served-{s}" for s in STAGE_FLOWS)])


def test_prefect_yaml_names_real_flows_with_valid_parameters():
    spec = yaml.safe_load((INFRA / "prefect.yaml").read_text())
    names = {}
    for deployment in spec["deployments"]:
        path, function = deployment["entrypoint"].split(":")
        assert (REPO / path).is_file(), path
        module = importlib.import_module(path.removeprefix("src/").removesuffix(".py").replace("/", "."))
        target = getattr(module, function)
        assert isinstance(target, Flow), deployment["entrypoint"]
        PipelineConfig.model_validate(deployment["parameters"]["config"])
        names[f"{target.name}/{deployment['name']}"] = deployment

    # "the whole pipeline on the demo config": configs/demo.yaml with its own root
    pipeline = names["pipeline/kurate-pipeline"]["parameters"]["config"]
    demo = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    assert pipeline == {**demo, "root": "runs/scheduled"}
    assert pipeline["stages"] == load_config(REPO / "configs" / "demo.yaml").stages
    # every deployment the README runs is declared
    for name in re.findall(r"prefect deployment run '([^']+)'", _readme_section("Run with the Prefect UI")):
        assert name in names


def test_licence_files_and_metadata():
    licence = (REPO / "LICENSE").read_text()
    assert licence.lstrip().startswith("Apache License\n                           Version 2.0, January 2004")
    assert "END OF TERMS AND CONDITIONS" in licence and "APPENDIX: How to apply the Apache License" in licence
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
    assert all((REPO / f).is_file() for f in project["license-files"]) and "NOTICE" in project["license-files"]

    from kurate.annotators.embedder import EMBEDDED as EMBEDDERS
    from kurate.annotators.models import EMBEDDED as GENERATIVE

    notice = (REPO / "NOTICE").read_text()
    for name in [*GENERATIVE, *EMBEDDERS]:  # every embedded model, with its licence
        assert f"`{name}`" in notice, name
    for terms in ("Gemma Terms of Use", "Creative Commons Attribution-Share-Alike License 3.0", "MIT License",
                  "Apache License 2.0", "Attribution-ShareAlike 4.0"):
        assert terms in notice, terms


def test_converted_model_folders_carry_their_terms(tmp_path, monkeypatch):
    """The notice written at conversion (convert_gguf → write_terms) and into folders converted before it."""
    from kurate.annotators.models import EMBEDDED, resolve_model, write_terms

    monkeypatch.setenv("KURATE_CACHE", str(tmp_path))
    earlier = tmp_path / "models" / "smollm2-135m-instruct"  # a conversion from before folders had a NOTICE
    earlier.mkdir(parents=True)
    (earlier / "config.json").write_text("{}")
    assert resolve_model("embedded:smollm2-135m-instruct") == str(earlier)
    assert "Apache License 2.0" in (earlier / "NOTICE").read_text()
    assert (earlier / "LICENSE").read_text().strip() == (REPO / "LICENSE").read_text().strip()

    gemma = tmp_path / "gemma"
    gemma.mkdir()
    write_terms(EMBEDDED["embedded:gemma-3-270m"], gemma)
    assert "Gemma is provided under and subject to the Gemma Terms of Use" in (gemma / "NOTICE").read_text()
    assert "Gemma Terms of Use" in (gemma / "GEMMA_TERMS.html").read_text()
