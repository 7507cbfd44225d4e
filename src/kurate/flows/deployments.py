"""Prefect deployments of the stage flows and the pipeline, served from one local process.

`kurate serve` uses this; `infra/local/prefect.yaml` declares the same deployments for
`prefect deploy` with a work pool.
"""

from __future__ import annotations

from prefect import serve

from kurate.flows.config import PipelineConfig
from kurate.flows.annotate import annotate
from kurate.flows.curate import curate
from kurate.flows.jql import distill, score
from kurate.flows.pipeline import pipeline
from kurate.flows.synthesize import synthesize
from kurate.flows.train import train_flow


def build_deployments(config: PipelineConfig, cron: str | None = None) -> list:
    parameters = {"config": config.model_dump(mode="json")}
    return [
        pipeline.to_deployment(name="served-pipeline", parameters=parameters, cron=cron, tags=["kurate"]),
        *[f.to_deployment(name=f"served-{f.name}", parameters=parameters, tags=["kurate"])
          for f in (curate, annotate, distill, score, synthesize, train_flow)],
    ]


def serve_deployments(config: PipelineConfig, cron: str | None = None) -> None:
    serve(*build_deployments(config, cron))
