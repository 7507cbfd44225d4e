"""The pipeline flow: runs the configured stages in order (curate, annotate, distill, score, synthesize,
release, train, continual).

    kurate run configs/demo.yaml

Each stage is its own sub-flow run, started with ``wait_for`` on the previous stage's run, so the
Prefect UI draws the stages as a chain (curate → … → release → train → continual) rather than
all hanging off the pipeline. Train and continual run as ``train-stage``/``continual-stage``: a
Ray Job when a job address is configured, else in-process.
"""

from __future__ import annotations

import sys

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from kurate.flows.artifacts import artifact_key
from kurate.flows.config import PipelineConfig, load_config
from kurate.flows.annotate import annotate
from kurate.flows.continual import continual_stage
from kurate.flows.curate import curate
from kurate.flows.jql import distill, score
from kurate.flows.release import release
from kurate.flows.synthesize import synthesize
from kurate.flows.train import train_stage


@flow(name="train-stage", log_prints=True)
def train_stage_flow(config: PipelineConfig) -> dict:
    """The pipeline's train stage: the `train` flow (a Ray Job) when train.job_address or $RAY_JOB_ADDRESS
    is set, else `train-local` (in this process, or Ray Train with a Ray address)."""
    if config.ray.submit:  # run this stage as a Ray Job on ray.job_address and follow it (flows/submit.py)
        from kurate.flows.submit import submit_flow

        return submit_flow(config, "train")
    return train_stage(config)


@flow(name="continual-stage", log_prints=True)
def continual_stage_flow(config: PipelineConfig) -> dict:
    """The pipeline's continual stage: the `continual` flow (a Ray Job) when continual.job_address or
    $RAY_JOB_ADDRESS is set, else `continual-local` in this process."""
    if config.ray.submit:  # run this stage as a Ray Job on ray.job_address and follow it (flows/submit.py)
        from kurate.flows.submit import submit_flow

        return submit_flow(config, "continual")
    return continual_stage(config)


STAGE_FLOWS = {"curate": curate, "annotate": annotate, "distill": distill, "score": score, "synthesize": synthesize,
               "release": release, "train": train_stage_flow, "continual": continual_stage_flow}


@flow(name="pipeline", log_prints=True)
def pipeline(config: PipelineConfig) -> dict:
    """Run every stage listed in ``config.stages``, in order; each stage waits on the previous one's run.
    With ``ray.submit: true`` this process only submits the pipeline as a Ray Job and follows it."""
    if config.ray.submit:
        from kurate.flows.submit import submit_flow

        return submit_flow(config)
    results, previous = {}, None
    for stage in config.stages:
        print(f"[pipeline] stage {stage}")
        state = STAGE_FLOWS[stage](config, return_state=True, wait_for=[previous] if previous is not None else None)
        results[stage] = state.result()  # a failed stage raises here and ends the pipeline
        previous = state
    lines = [f"# pipeline: {config.root}", "", "| stage | summary |", "|---|---|"]
    lines += [f"| {stage} | {summary} |" for stage, summary in results.items()]
    create_markdown_artifact("\n".join(lines), key=artifact_key(config.root, "pipeline-summary"), description="Stages run and their counts")
    return results


if __name__ == "__main__":
    pipeline(load_config(sys.argv[1], sys.argv[2:]))
