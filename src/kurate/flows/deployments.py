"""Prefect deployments: one per stage and one for the whole pipeline, served from one local process.

    kurate serve --config configs/demo.yaml [--cron '0 3 * * *']

Each deployment runs what the pipeline runs for its stage (docs/ARCHITECTURE.md, "Where things
run"), with the config file as its default parameters (editable in the UI's run form). The README's
"Run with the Prefect UI" section lists exactly these names (checked by tests/test_infra.py);
`infra/local/prefect.yaml` declares the pipeline, curate, train and continual deployments for `prefect deploy`
with a work pool.

The train deployment carries a trigger: a `kurate.release.published` event for its release on its
root (flows/release.py) starts a train run on the published version — a new release starts
training without a human. Each version trains its own run: the trigger's parameters are Prefect
templates over the event (`train.name: <name>-v{{ event.payload.version }}`, `train.data.version:
{{ event.payload.version }}`), so v2 neither resumes v1's finished checkpoint nor reads a newer
version than the one that was published.

The continual deployment carries one too, for versions ≥ 2 only (it matches the resource label
`kurate.release.previous_version`, which v1's event lacks): it continues the checkpoint of the
previous version's train run (`checkpoints/<train.name>-v<k−1>-<model>`, unless
continual.checkpoint names one) with `continual.data` = {old_version: k − 1, new_version: k}, as
run `<continual.name>-v<k>` — the old release's documents are the replay candidates, the new
one's the new data.
"""

from __future__ import annotations

from prefect import Flow, serve
from prefect.events import DeploymentEventTrigger

from kurate.flows.annotate import annotate
from kurate.flows.config import ContinualData, PipelineConfig, TrainData
from kurate.flows.curate import curate
from kurate.flows.jql import distill, score
from kurate.flows.pipeline import continual_stage_flow, pipeline, train_stage_flow
from kurate.flows.release import PREVIOUS_LABEL, PUBLISHED, release, release_resource, root_label
from kurate.flows.synthesize import synthesize

# deployment name -> flow; the order is the pipeline's (the README lists the same names)
SERVED: dict[str, Flow] = {
    "served-pipeline": pipeline,
    "served-curate": curate,
    "served-annotate": annotate,
    "served-distill": distill,
    "served-score": score,
    "served-synthesize": synthesize,
    "served-release": release,
    "served-train": train_stage_flow,
    "served-continual": continual_stage_flow,
}


# Prefect renders these from the triggering event when it creates the flow run (a single-expression
# template keeps the payload's type: the version arrives as an int)
PUBLISHED_VERSION = "{{ event.payload.version }}"
PREVIOUS_VERSION = "{{ event.payload.previous_version }}"


def train_on_release(config: PipelineConfig) -> dict:
    """The parameters a release-triggered train run gets: the config, with train.data pinned to the
    published version and the run named after it (``<train.name>-v<k>``: checkpoints/<name>-v<k>-<model>)."""
    name = config.train.data.release if config.train.data is not None else config.release.name
    parameters = config.model_copy(update={"train": config.train.model_copy(update={
        "data": TrainData(release=name, version="latest")})}).model_dump(mode="json")
    parameters["train"]["name"] = f"{config.train.name}-v{PUBLISHED_VERSION}"
    parameters["train"]["data"]["version"] = PUBLISHED_VERSION
    return parameters


def release_trigger(config: PipelineConfig) -> DeploymentEventTrigger:
    """Run the train deployment on each version of its release published on its root."""
    triggered = train_on_release(config)
    return _on_published("train", triggered["train"]["data"]["release"], config.root, triggered)


def continual_on_release(config: PipelineConfig) -> dict:
    """The parameters a release-triggered continual run gets: ``continual.data`` = the previous and the
    published version, the previous version's train run as the checkpoint (``<train.name>-v<k−1>``),
    the run named ``<continual.name>-v<k>``."""
    c = config.continual
    name = (c.data.release if c.data is not None else
            config.train.data.release if config.train.data is not None else config.release.name)
    data = ContinualData(release=name, old_version=1, new_only=c.data.new_only if c.data is not None else True)
    # without continual.data, old_/new_languages carve "old" and "new" out of one raw dataset (configs/demo.yaml:
    # de+en vs fr); between two versions the versions do that, so only a configured continual.data keeps them
    languages = {} if c.data is not None else {"old_languages": [], "new_languages": []}
    parameters = config.model_copy(update={"continual": c.model_copy(update={"data": data, **languages})}).model_dump(mode="json")
    parameters["train"]["name"] = f"{config.train.name}-v{PREVIOUS_VERSION}"
    parameters["continual"]["name"] = f"{c.name}-v{PUBLISHED_VERSION}"
    parameters["continual"]["data"].update(old_version=PREVIOUS_VERSION, new_version=PUBLISHED_VERSION)
    return parameters


def continual_trigger(config: PipelineConfig) -> DeploymentEventTrigger:
    """Run the continual deployment on each version ≥ 2 of its release published on its root."""
    triggered = continual_on_release(config)
    # Prefect's matcher is False for an absent label, and only v ≥ 2 carries this one
    return _on_published("continual", triggered["continual"]["data"]["release"], config.root, triggered,
                         {PREVIOUS_LABEL: "*"})


def _on_published(stage: str, release_name: str, root: str, triggered: dict, match: dict | None = None) -> DeploymentEventTrigger:
    """A trigger on `kurate.release.published` of ``release_name`` on ``root``, running ``stage``'s
    deployment with ``triggered`` as its config."""
    return DeploymentEventTrigger(
        name=f"{stage} on {release_name} releases",
        expect={PUBLISHED},
        match={"prefect.resource.id": release_resource(release_name), "kurate.root": root_label(root), **(match or {})},
        parameters={"config": triggered},
    )


TRIGGERS = {"served-train": release_trigger, "served-continual": continual_trigger}


def build_deployments(config: PipelineConfig, cron: str | None = None) -> list:
    """One deployment per entry of SERVED with `config` as default parameters; `cron` schedules the pipeline,
    a published release triggers the train deployment (and, from v2 on, the continual deployment)."""
    parameters = {"config": config.model_dump(mode="json")}
    return [f.to_deployment(name=name, parameters=parameters, tags=["kurate"],
                            cron=cron if f is pipeline else None,
                            triggers=[TRIGGERS[name](config)] if name in TRIGGERS else None)
            for name, f in SERVED.items()]


def serve_deployments(config: PipelineConfig, cron: str | None = None) -> None:
    serve(*build_deployments(config, cron))
