"""Data-parallel training: Ray Train with two DDP ranks (gloo on CPU) against the session's local Ray.

The strongest check that gradients are averaged across ranks: two ranks with batch B give the same
losses and weights as one process with grad_accum 2 at batch B (both average the same two
micro-batches per step; see models/train.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from kurate.flows.config import TrainStageConfig
from kurate.flows.train import run_ray_train, run_training
from kurate.storage.catalog import Catalog
from toy_roots import german_root

SMALL = {"seq_len": 16, "batch_size": 4, "max_steps": 6, "warmup_steps": 2, "log_every": 2, "eval_batches": 1,
         "model_options": {"d_model": 64, "n_layer": 1, "n_head": 2}}


@pytest.fixture()
def text_root(tmp_path):
    return german_root(tmp_path / "root", 120, seed=5)


def _rows(root: str, run: str) -> list[dict]:
    return Catalog(root).query(
        f"select step, loss, bits_per_byte, eval_loss from metrics where run = '{run}' order by step").to_pylist()


@pytest.mark.e2e
def test_two_ddp_ranks_equal_one_process_with_grad_accum_2(ray_local, text_root, one_torch_thread, capsys):
    ddp = TrainStageConfig(name="ddp", model="hat", overrides=SMALL, num_workers=2, use_gpu=False)
    run_ray_train(text_root, ddp, None, None)
    # what rank 0 printed comes back to the driver (inside a flow: the flow run's logs)
    out = capsys.readouterr().out
    assert "[train ddp-hat rank0] hat: " in out and "[train ddp-hat rank1] " in out
    rows = _rows(text_root, "ddp-hat")
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]  # committed once: rank 1 writes no metrics
    assert rows[-1]["loss"] < rows[0]["loss"]
    run_dir = Path(ddp.run_dir(text_root))
    assert os.listdir(run_dir) == ["checkpoint"]  # rank 0 alone wrote it: no leftover .tmp/.old
    assert json.loads((run_dir / "checkpoint" / "config.json").read_text())["step"] == 6

    one = TrainStageConfig(name="one", model="hat", overrides={**SMALL, "grad_accum": 2})
    run_training(text_root, one)
    ref = _rows(text_root, "one-hat")
    for a, b in zip(rows, ref):
        for key in ("loss", "bits_per_byte"):
            assert a[key] == pytest.approx(b[key], rel=1e-4), (a, b)
    assert rows[-1]["eval_loss"] == pytest.approx(ref[-1]["eval_loss"], rel=1e-4)
    wa = load_file(str(run_dir / "checkpoint" / "model.safetensors"))
    wb = load_file(os.path.join(one.run_dir(text_root), "checkpoint", "model.safetensors"))
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-4, atol=1e-5)
