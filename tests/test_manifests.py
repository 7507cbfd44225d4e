"""The cluster manifests under infra/ (Dockerfile, KubeRay RayCluster/RayJob, `ray up`, Prefect work pool and
deployments) and configs/germanweb.yaml: parsed and checked against the fields the tools define.

No Docker, Kubernetes or cloud account here: the KubeRay fields are checked against the v1 CRD field sets
written below (ray.io/v1 RayCluster and RayJob, KubeRay 1.x), `ray up`'s file against Ray's own cluster
schema, the Prefect deployments by importing their flows and validating their parameters."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest
import yaml

from kurate.flows.config import PipelineConfig, load_config

REPO = Path(__file__).resolve().parents[1]
INFRA = REPO / "infra"

# KubeRay ray.io/v1 CRD fields (the ones a manifest may use; a typo or a v1alpha1 leftover fails).
RAYCLUSTER_SPEC = {"rayVersion", "enableInTreeAutoscaling", "autoscalerOptions", "headGroupSpec", "workerGroupSpecs",
                   "headServiceAnnotations", "suspend", "managedBy", "gcsFaultToleranceOptions", "upgradeStrategy"}
AUTOSCALER_OPTIONS = {"upscalingMode", "idleTimeoutSeconds", "resources", "image", "imagePullPolicy", "imagePullSecrets",
                      "env", "envFrom", "securityContext", "volumeMounts", "version"}
HEAD_GROUP = {"rayStartParams", "template", "serviceType", "headService", "enableIngress", "suspend"}
WORKER_GROUP = {"groupName", "replicas", "minReplicas", "maxReplicas", "rayStartParams", "template", "scaleStrategy",
                "numOfHosts", "suspend", "idleTimeoutSeconds"}
RAYJOB_SPEC = {"entrypoint", "runtimeEnvYAML", "jobId", "shutdownAfterJobFinishes", "ttlSecondsAfterFinished",
               "activeDeadlineSeconds", "rayClusterSpec", "clusterSelector", "submissionMode", "submitterPodTemplate",
               "submitterConfig", "entrypointNumCpus", "entrypointNumGpus", "entrypointResources", "suspend",
               "backoffLimit", "metadata", "managedBy", "deletionStrategy"}
SUBMISSION_MODES = {"K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode"}
UPSCALING_MODES = {"Default", "Aggressive", "Conservative"}
CONTAINER = {"name", "image", "imagePullPolicy", "command", "args", "ports", "env", "envFrom", "resources",
             "volumeMounts", "securityContext", "lifecycle", "livenessProbe", "readinessProbe", "workingDir"}
POD_SPEC = {"containers", "volumes", "tolerations", "nodeSelector", "affinity", "serviceAccountName",
            "restartPolicy", "imagePullSecrets", "securityContext", "initContainers"}


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _keys(mapping: dict, allowed: set[str], where: str) -> None:
    unknown = set(mapping) - allowed
    assert not unknown, f"{where}: not a field of the CRD: {sorted(unknown)}"


def _check_pod(template: dict, where: str, volumes_needed: bool = True) -> list[dict]:
    spec = template["spec"]
    _keys(spec, POD_SPEC, f"{where}.template.spec")
    volumes = {v["name"] for v in spec.get("volumes", [])}
    for container in spec["containers"]:
        _keys(container, CONTAINER, f"{where} container {container['name']}")
        assert container["image"].startswith("kurate:"), container["image"]
        limits, requests = container["resources"]["limits"], container["resources"]["requests"]
        assert {"cpu", "memory"} <= set(limits) and {"cpu", "memory"} <= set(requests), where
        for mount in container.get("volumeMounts", []):
            assert mount["name"] in volumes, f"{where}: mount of an undeclared volume {mount['name']}"
    return spec["containers"]


def _secret_names(container: dict) -> set[str]:
    return {e["secretRef"]["name"] for e in container.get("envFrom", []) if "secretRef" in e}


def test_raycluster_has_cpu_and_gpu_groups_autoscaling_and_shared_storage():
    docs = {d["kind"]: d for d in _docs(INFRA / "kuberay" / "raycluster.yaml")}
    cluster = docs["RayCluster"]
    assert cluster["apiVersion"] == "ray.io/v1"
    spec = cluster["spec"]
    _keys(spec, RAYCLUSTER_SPEC, "spec")
    _keys(spec["autoscalerOptions"], AUTOSCALER_OPTIONS, "spec.autoscalerOptions")
    assert spec["enableInTreeAutoscaling"] is True and spec["autoscalerOptions"]["upscalingMode"] in UPSCALING_MODES
    import ray

    assert spec["rayVersion"] == ray.__version__  # the image's Ray (pyproject pins it)

    head = spec["headGroupSpec"]
    _keys(head, HEAD_GROUP, "headGroupSpec")
    groups = {g["groupName"]: g for g in spec["workerGroupSpecs"]}
    assert set(groups) == {"cpu", "gpu"}
    for where, params in [("head", head["rayStartParams"]), *((name, g["rayStartParams"]) for name, g in groups.items())]:
        # KubeRay's rayStartParams is map[string]string: a bare number fails admission
        assert all(isinstance(v, str) for v in params.values()), where
        assert int(params["object-store-memory"]) > 0, where
    assert head["rayStartParams"]["num-cpus"] == "0"  # the head drives, workers work
    containers = {"head": _check_pod(head["template"], "head")}
    for name, group in groups.items():
        _keys(group, WORKER_GROUP, f"workerGroupSpecs[{name}]")
        assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"], name
        containers[name] = _check_pod(group["template"], name)
    gpu = containers["gpu"][0]
    assert gpu["resources"]["limits"]["nvidia.com/gpu"] == 1 and groups["gpu"]["rayStartParams"]["num-gpus"] == "1"
    assert "cu" in gpu["image"].split(":")[1]  # the CUDA variant of the image
    # every pod: the shared volume at the same path and S3 credentials from the Secret (never inline)
    claim = docs["PersistentVolumeClaim"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    for name, pods in containers.items():
        mounts = {m["mountPath"]: m["name"] for m in pods[0]["volumeMounts"]}
        assert mounts.get("/data") == "data", name
        assert "kurate-s3" in _secret_names(pods[0]), name
        assert not any("SECRET" in e["name"] and "value" in e for e in pods[0].get("env", [])), name
    template_volumes = [head["template"]] + [g["template"] for g in groups.values()]
    for template in template_volumes:
        data = next(v for v in template["spec"]["volumes"] if v["name"] == "data")
        assert data["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]


def test_rayjob_runs_kurate_on_the_raycluster():
    (job,) = _docs(INFRA / "kuberay" / "rayjob.yaml")
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob"
    spec = job["spec"]
    _keys(spec, RAYJOB_SPEC, "RayJob spec")
    assert spec["submissionMode"] in SUBMISSION_MODES
    assert not ("clusterSelector" in spec and "rayClusterSpec" in spec)  # KubeRay rejects both
    cluster = next(d for d in _docs(INFRA / "kuberay" / "raycluster.yaml") if d["kind"] == "RayCluster")
    assert spec["clusterSelector"] == {"ray.io/cluster": cluster["metadata"]["name"]}
    command = spec["entrypoint"].split()
    assert command[:2] == ["kurate", "run"]
    config = command[2]  # a file of the ConfigMap mounted on the head
    head = cluster["spec"]["headGroupSpec"]["template"]["spec"]
    mount = next(m for m in head["containers"][0]["volumeMounts"] if m["name"] == "configs")
    assert config.startswith(mount["mountPath"] + "/") and (REPO / "configs" / Path(config).name).is_file()
    yaml.safe_load(spec["runtimeEnvYAML"])
    _check_pod(spec["submitterPodTemplate"], "submitter")


def test_ray_up_cluster_yaml_fits_rays_schema():
    import jsonschema
    import ray.autoscaler

    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    cluster = yaml.safe_load((INFRA / "ray-up" / "cluster.yaml").read_text())
    jsonschema.validate(cluster, schema)
    types = cluster["available_node_types"]
    assert cluster["head_node_type"] in types and types["head"]["resources"] == {"CPU": 0}
    assert {"cpu_worker", "gpu_worker"} <= set(types)
    assert sum(t.get("max_workers", 0) for t in types.values()) <= cluster["max_workers"]
    assert "cu" in types["gpu_worker"]["docker"]["worker_image"]


def test_dockerfile_pins_torch_first_and_installs_kurate():
    text = (INFRA / "docker" / "Dockerfile").read_text()
    runs = [line for line in text.splitlines() if line.startswith("RUN ")]
    torch = next(i for i, line in enumerate(runs) if "torch==" in line)
    kurate = next(i for i, line in enumerate(runs) if "pip install /tmp/kurate" in line)
    assert torch < kurate  # torch first: nothing else may choose the build
    assert re.search(r"ARG TORCH_VERSION=2\.13\.0\b", text) and "ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu" in text
    for copied in re.findall(r"^COPY (.+) /tmp/kurate", text, flags=re.M):
        for name in copied.split():
            assert (REPO / name).exists(), name  # the build context has what the image copies
    # the image's python is the one pyproject allows
    minor = re.search(r"python:(3\.\d+)", text).group(1)
    import tomllib

    assert minor in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"].replace(">=", "")


def test_prefect_k8s_deployments_submit_to_the_cluster():
    spec = yaml.safe_load((INFRA / "prefect" / "prefect.yaml").read_text())
    pool = json.loads((INFRA / "prefect" / "work-pool.json").read_text())
    variables = set(pool["variables"]["properties"])
    from prefect import Flow

    from kurate.flows.submit import submit_flow

    for deployment in spec["deployments"]:
        module, function = deployment["entrypoint"].split(":")
        target = getattr(importlib.import_module(module), function)
        assert isinstance(target, Flow) and target is submit_flow, deployment["entrypoint"]
        config = PipelineConfig.model_validate(deployment["parameters"]["config"])
        assert config.ray.submit and config.ray.job_address.startswith("http://")
        assert "://" in config.root  # an object-store root: the work pool's pod has no cluster volume
        assert deployment["work_pool"]["name"] == spec["name"]
        assert set(deployment["work_pool"]["job_variables"]) <= variables
    manifest = pool["job_configuration"]["job_manifest"]
    assert manifest["kind"] == "Job" and manifest["spec"]["template"]["spec"]["containers"][0]["image"] == "{{ image }}"


def test_germanweb_config_validates_with_the_papers_models():
    config = load_config(REPO / "configs" / "germanweb.yaml")
    assert config.root.startswith("s3://") and config.curate.inputs[0].startswith("s3://commoncrawl/")
    assert config.curate.ingest.extractor == "trafilatura" and config.curate.language.keep[0] == "de"
    models = {j.model for j in config.annotate.judges}
    assert {"google/gemma-3-27b-it", "mistralai/Mistral-Small-3.1-24B-Instruct-2503", "meta-llama/Llama-3.3-70B-Instruct"} <= models
    assert all(j.samples == 3 for j in config.annotate.judges if j.prompt == "fineweb_edu")
    assert config.jql.embedder.model == "Snowflake/snowflake-arctic-embed-m-v2.0"
    assert config.synthesize.generator.model == "mistralai/Mistral-Nemo-Instruct-2407"
    assert "release" in config.stages and config.train.data.release == config.release.name
    assert not any("secret" in str(v).lower() or "key" in v for v in config.storage_options.values())


@pytest.mark.parametrize("path", sorted(p.relative_to(REPO).as_posix() for p in INFRA.rglob("*.yaml")))
def test_every_infra_yaml_parses(path):
    assert _docs(REPO / path)
