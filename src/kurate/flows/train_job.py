"""Entry point of a training Ray Job (submitted by the ``train`` flow).

    python -m kurate.flows.train_job SPEC.json      # SPEC: a PipelineConfig as JSON

Runs the trainer in this process, or as Ray Train on the cluster (one DDP rank per worker) when
the config asks for more than one worker or for GPUs; the checkpoint in the run directory makes a
resubmitted job resume.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from kurate.flows.config import PipelineConfig
from kurate.flows.train import run_ray_train, run_training


def main(spec: str) -> None:
    config = PipelineConfig.model_validate_json(Path(spec).read_text())
    stage = config.train
    if stage.num_workers > 1 or stage.use_gpu:
        result = run_ray_train(config.root, stage, config.storage_options, "auto")
    else:
        result = run_training(config.root, stage, config.storage_options)
    print(json.dumps({k: v for k, v in result.items() if isinstance(v, (int, float, str))}, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1])
