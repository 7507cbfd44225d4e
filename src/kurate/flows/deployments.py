"""Prefect deployments: one per stage and one for the whole pipeline, served from one local process.

    kurate serve --config configs/demo.yaml [--cron '0 3 * * *']

Each deployment runs what the pipeline runs for its stage (docs/ARCHITECTURE.md, "Where things
run"), with the config file as its default parameters (editable in the UI's run form). The README's
"Run with the Prefect UI" section lists exactly these names (checked by tests/test_infra.py);
`infra/local/prefect.yaml` declares the pipeline and curate deployments for `prefect deploy` with a
work pool.
"""

from __future__ import annotations

from prefect import Flow, flow, serve

from kurate.flows.annotate import annotate
from kurate.flows.config import PipelineConfig
from kurate.flows.continual import continual_stage
from kurate.flows.curate import curate
from kurate.flows.jql import distill, score
from kurate.flows.pipeline import pipeline
from kurate.flows.synthesize import synthesize
from kurate.flows.train import train_stage


@flow(name="train-stage", log_prints=True)
def train_stage_flow(config: PipelineConfig) -> dict:
    """The pipeline's train stage: the `train` flow (a Ray Job) when train.job_address or $RAY_JOB_ADDRESS
    is set, else `train-local` (in this process, or Ray Train with a Ray address)."""
    return train_stage(config)


@flow(name="continual-stage", log_prints=True)
def continual_stage_flow(config: PipelineConfig) -> dict:
    """The pipeline's continual stage: the `continual` flow (a Ray Job) when continual.job_address or
    $RAY_JOB_ADDRESS is set, else `continual-local` in this process."""
    return continual_stage(config)


# deployment name -> flow; the order is the pipeline's (the README lists the same names)
SERVED: dict[str, Flow] = {
    "served-pipeline": pipeline,
    "served-curate": curate,
    "served-annotate": annotate,
    "served-distill": distill,
    "served-score": score,
    "served-synthesize": synthesize,
    "served-train": train_stage_flow,
    "served-continual": continual_stage_flow,
}


def build_deployments(config: PipelineConfig, cron: str | None = None) -> list:
    """One deployment per entry of SERVED with `config` as default parameters; `cron` schedules the pipeline."""
    parameters = {"config": config.model_dump(mode="json")}
    return [f.to_deployment(name=name, parameters=parameters, tags=["kurate"],
                            cron=cron if f is pipeline else None)
            for name, f in SERVED.items()]


def serve_deployments(config: PipelineConfig, cron: str | None = None) -> None:
    serve(*build_deployments(config, cron))
