"""Building a model from a TrainConfig, and checkpoints: write atomically, load without unpickling.

    model, codec = build(cfg, fit_texts=texts)                  # a fresh run (or init_from's weights)
    model, codec, cfg = load_checkpoint("runs/hat-tiny")         # a run dir or its checkpoint/ dir
    print(generate_text("runs/hat-tiny", "Die Stadt", 20, temperature=0.8, seed=0))

Checkpoint dir (out_dir/checkpoint, replaced atomically): model.safetensors, optimizer.pt
(optimizer state, step, torch RNG states, packer position — loaded with weights_only=True),
config.json (the TrainConfig, the model's config, the step and the data lineage — the release name,
version and content hash a run trained on), and the codec's files.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil

import torch
from safetensors.torch import load_file, save_file

from kurate.models.architectures import architecture
from kurate.models.contracts import Codec, UnitLM
from kurate.models.packing import Packer
from kurate.models.train_config import TrainConfig


def checkpoint_dir(path: str) -> str:
    """A checkpoint directory itself, or the `checkpoint/` inside a run directory."""
    return path if os.path.exists(os.path.join(path, "config.json")) else os.path.join(path, "checkpoint")


def fit_codec(cfg: TrainConfig, texts: list[str]) -> Codec:
    """The codec of a fresh run: the init_from checkpoint's own (continual training keeps its
    units), else one fitted on texts."""
    codec_type = architecture(cfg.model).codec
    if cfg.init_from:
        return codec_type.load(checkpoint_dir(cfg.init_from))
    return codec_type.fit(cfg.model_hparams(), texts)


def build(cfg: TrainConfig, codec: Codec | None = None, fit_texts: list[str] | None = None) -> tuple[UnitLM, Codec]:
    """→ (model, codec). Fits the codec on fit_texts unless one is given; init_from loads the weights."""
    if codec is None:
        codec = fit_codec(cfg, fit_texts or [])
    torch.manual_seed(cfg.seed)
    model = architecture(cfg.model).model(cfg.model_hparams(), codec)
    if cfg.init_from:  # the optimizer, schedule and data position start afresh
        model.load_state_dict(load_file(os.path.join(checkpoint_dir(cfg.init_from), "model.safetensors")))
    return model, codec


def save_checkpoint(path: str, model: UnitLM, codec: Codec, cfg: TrainConfig, optimizer, step: int,
                    packer: Packer, lineage: dict | None = None) -> None:
    tmp = path + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()},
              os.path.join(tmp, "model.safetensors"))
    rng = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    torch.save({"optimizer": optimizer.state_dict(), "step": step, "rng": rng, "data": packer.state()},
               os.path.join(tmp, "optimizer.pt"))
    with open(os.path.join(tmp, "config.json"), "w") as f:
        json.dump({"train": cfg.model_dump(mode="json"), "model": dataclasses.asdict(model.cfg), "step": step,
                   "data": lineage}, f, indent=2)
    codec.save(tmp)
    old = path + ".old"
    shutil.rmtree(old, ignore_errors=True)
    if os.path.exists(path):
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def checkpoint_info(path: str) -> dict | None:
    """A checkpoint's step and data lineage ({"step", "data"}), or None when there is none."""
    try:
        with open(os.path.join(checkpoint_dir(path), "config.json")) as f:
            saved = json.load(f)
    except FileNotFoundError:
        return None
    return {"step": saved.get("step"), "data": saved.get("data")}


def load_checkpoint(path: str, device: str = "cpu") -> tuple[UnitLM, Codec, TrainConfig]:
    """→ (model, codec, TrainConfig) from a checkpoint dir (or a run dir holding `checkpoint/`).

    Weights come from safetensors; nothing is unpickled."""
    path = checkpoint_dir(path)
    with open(os.path.join(path, "config.json")) as f:
        cfg = TrainConfig.model_validate(json.load(f)["train"])
    codec = architecture(cfg.model).codec.load(path)
    model, _ = build(cfg.replace(init_from=None), codec=codec)  # these weights, not the parent's
    model.load_state_dict(load_file(os.path.join(path, "model.safetensors")))
    return model.to(device).eval(), codec, cfg


def generate_text(checkpoint: str, prompt: str, max_new_units: int = 32, temperature: float = 0.8,
                  seed: int = 0, device: str = "cpu") -> str:
    model, _, _ = load_checkpoint(checkpoint, device)
    return model.generate(prompt, max_new_units=max_new_units, temperature=temperature, seed=seed)
