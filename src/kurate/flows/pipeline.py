"""The pipeline flow: runs the configured stages in order (curate, annotate, distill, score, synthesize, train,
continual).

    kurate run configs/demo.yaml
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
from kurate.flows.synthesize import synthesize
from kurate.flows.train import train_stage

STAGE_FLOWS = {"curate": curate, "annotate": annotate, "distill": distill, "score": score, "synthesize": synthesize,
               "train": train_stage, "continual": continual_stage}


@flow(name="pipeline", log_prints=True)
def pipeline(config: PipelineConfig) -> dict:
    """Run every stage listed in ``config.stages``, in order; each stage is its own sub-flow run."""
    results = {}
    for stage in config.stages:
        print(f"[pipeline] stage {stage}")
        results[stage] = STAGE_FLOWS[stage](config)
    lines = [f"# pipeline: {config.root}", "", "| stage | summary |", "|---|---|"]
    lines += [f"| {stage} | {summary} |" for stage, summary in results.items()]
    create_markdown_artifact("\n".join(lines), key=artifact_key(config.root, "pipeline-summary"), description="Stages run and their counts")
    return results


if __name__ == "__main__":
    pipeline(load_config(sys.argv[1], sys.argv[2:]))
