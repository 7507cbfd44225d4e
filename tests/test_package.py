"""kurate installs one namespace, `kurate.*`, and nothing a user's own folders can shadow: no bare
imports of the old top-level names anywhere, a wheel whose top level is `kurate` only, and the
CLI, `kurate curate` and the Ray Job path working from a folder that holds its own `models/`,
`tasks/`, `flows/`, `storage/` and `annotators/` packages (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OLD_TOP_LEVEL = {"flows", "tasks", "annotators", "models", "storage"}


def _python_files() -> list[Path]:
    return sorted(p for folder in ("src", "tests", "bench") for p in (REPO / folder).rglob("*.py"))


def _bare_imports(path: Path, base: Path = REPO) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [f"{path.relative_to(base)}:{node.lineno}: {name}" for name in names
                  if name.split(".")[0] in OLD_TOP_LEVEL]
    return found


def test_no_bare_imports_of_the_old_top_level_packages():
    files = _python_files()
    assert len(files) > 50  # the walk found the tree
    offenders = [line for path in files for line in _bare_imports(path)]
    assert offenders == [], "import these through kurate.*:\n" + "\n".join(offenders)


def test_the_lint_sees_a_bare_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import models.train\nfrom tasks import curate\nfrom tokenizers import models\n")
    assert [line.split(": ")[1] for line in _bare_imports(bad, tmp_path)] == ["models.train", "tasks"]


def test_the_wheel_holds_kurate_only(tmp_path):
    # built from a copy: setuptools leaves build/ behind, and stale files there would end up in later wheels
    source = tmp_path / "source"
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
                           "--quiet", "-w", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = tmp_path.glob("kurate-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert top == {"kurate", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}, top
    # data files the code reads at run time travel with it
    assert "kurate/tasks/filter_params.yaml" in names
    assert any(n.startswith("kurate/annotators/prompts/") and n.endswith(".yaml") for n in names)
    assert "kurate/demo/pages/pages.json" in names


def _shadow_folder(path: Path) -> Path:
    """A user's project with its own packages named like kurate's layers; importing any of them fails loudly."""
    for name in sorted(OLD_TOP_LEVEL):
        package = path / name
        package.mkdir(parents=True)
        (package / "__init__.py").write_text(f"raise ImportError('the user\\'s own {name}/ package was imported')\n")
    return path


def _kurate() -> str:
    return str(Path(sys.executable).with_name("kurate"))


def test_cli_works_from_a_folder_with_its_own_models_and_tasks(tmp_path):
    shadow = _shadow_folder(tmp_path / "project")
    env = {**os.environ, "PYTHONPATH": str(shadow)}  # as a job's runtime env with the caller's folder on the path
    for command in ([_kurate(), "--version"], [sys.executable, "-m", "kurate.flows.cli", "--version"]):
        done = subprocess.run(command, cwd=shadow, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and done.stdout.startswith("kurate "), done.stderr[-2000:]


@pytest.mark.e2e
def test_curate_works_from_a_folder_with_its_own_models_and_tasks(tmp_path, prefect_server, demo_warc):
    shadow = _shadow_folder(tmp_path / "project")
    warc, _ = demo_warc
    root = tmp_path / "root"
    env = {**os.environ, "PYTHONPATH": str(shadow), "PREFECT_API_URL": prefect_server}
    done = subprocess.run([_kurate(), "curate", "--input", str(warc), "--root", str(root), "--set", "ray.executor=local",
                           "--set", "curate.report=false"], cwd=shadow, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    from kurate.storage.catalog import Catalog

    assert Catalog(str(root)).query("select count(*) as n from curated").to_pylist()[0]["n"] > 0


@pytest.mark.e2e
def test_ray_job_path_works_from_a_folder_with_its_own_models_and_tasks(tmp_path, monkeypatch, prefect_server, ray_head):
    from toy_roots import german_root

    from kurate.flows.config import load_config
    from kurate.flows.train import train_flow

    root = german_root(tmp_path / "root", 120, seed=5)
    shadow = _shadow_folder(tmp_path / "project")
    monkeypatch.chdir(shadow)  # the job is submitted from the user's folder
    monkeypatch.setenv("PYTHONPATH", str(shadow))
    config = load_config(None, [], {"root": root, "train": {
        "name": "shadow", "model": "bpe", "overrides": {"max_steps": 2, "log_every": 1}, "job_address": ray_head}})
    result = train_flow(config)
    assert "SUCCEEDED" in result["status"], result
    assert (Path(result["checkpoint"]) / "model.safetensors").exists()


def test_every_configurable_stage_has_its_flow():
    from kurate.flows.config import STAGES
    from kurate.flows.pipeline import STAGE_FLOWS

    assert tuple(STAGE_FLOWS) == STAGES
