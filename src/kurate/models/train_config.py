"""The trainer's config (`TrainConfig`), size presets, and the partial overrides the pipeline config takes.

    cfg = preset("tiny", "hat", max_steps=200, model_options={"d_model": 64})
    cfg.model_hparams()             # → HATConfig(d_model=64, …, max_len=cfg.seq_len)
    cfg.replace(lr=1e-3)            # a validated copy

`TrainConfig` is a pydantic model with `extra="forbid"`: an unknown field, or an unknown field of
the kind's model config under `model_options`, is a validation error naming the key. The pipeline
config's `train.overrides` and `continual.overrides` are `TrainOverrides` / `ContinualOverrides`:
the same fields, derived from TrainConfig (never listed twice), every one optional — only the
fields a user gives override the preset (or, for continual training, the checkpoint's config).
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, create_model, field_validator, \
    model_serializer

from kurate.models.architectures import ModelKindName, architecture, preset_of


class TrainConfig(BaseModel):
    """One training run of the trainer (models/train.py): model, schedule, evaluation, checkpoints."""

    model_config = ConfigDict(extra="forbid")

    model: ModelKindName = Field("hat", description="Model kind (models/architectures.py).")
    model_options: dict[str, Any] = Field(
        default_factory=dict,
        description="Fields of the kind's model config dataclass (e.g. HATConfig): d_model, n_layer, …")
    seq_len: int = Field(64, ge=1, description="Units (words or tokens) per training sequence.")
    batch_size: int = Field(8, ge=1, description="Sequences per micro-batch (per DDP rank).")
    grad_accum: int = Field(1, ge=1, description="Micro-batches per optimizer step.")
    max_steps: int = Field(60, ge=1, description="Optimizer steps; the schedule's cosine ends here.")
    lr: float = Field(3e-3, gt=0, description="Peak learning rate (after warm-up).")
    min_lr_frac: float = Field(0.1, ge=0, le=1, description="Final learning rate as a share of lr.")
    warmup_steps: int = Field(10, ge=0, description="Steps of linear warm-up.")
    weight_decay: float = Field(0.1, ge=0, description="AdamW weight decay (matrices only).")
    beta1: float = Field(0.9, ge=0, lt=1, description="AdamW β1.")
    beta2: float = Field(0.95, ge=0, lt=1, description="AdamW β2.")
    grad_clip: float = Field(1.0, gt=0, description="Clip the gradient norm to this.")
    seed: int = Field(0, description="Seed of the weights' initialisation (and of the data mix in the train flow).")
    eval_every: int = Field(0, ge=0, description="Evaluate every N steps; 0: only after the last step.")
    eval_batches: int = Field(4, ge=0, description="Held-out batches per evaluation.")
    # 50 steps: a killed run loses at most that much work, and the tiny presets (60 steps) checkpoint once mid-run
    checkpoint_every: int = Field(50, ge=0, description="Checkpoint every N steps (and after the last); 0: only after the last step.")
    fit_docs: int = Field(2000, ge=1, description="First training documents the codec is fitted on "
                          "(BPE merges, the T-FREE dictionary).")
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:[0-9]+)?)$", description="auto: CUDA when available, else CPU.")
    compile: bool = Field(False, description="torch.compile the model.")
    peak_flops: float | None = Field(None, gt=0, description="Peak FLOP/s for MFU; null: 989e12 on H100/H200, "
                                     "312e12 on A100 (bf16), no MFU on CPU.")
    init_from: str | None = Field(None, description="A checkpoint whose codec and weights a fresh run starts from "
                                  "(continual training); optimizer, schedule and data position start afresh.")
    log_every: int = Field(10, ge=0, description="Print every N steps; 0: silent.")

    @field_validator("model_options")
    @classmethod
    def _known_model_options(cls, options: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        if "model" not in info.data:  # the kind itself was invalid (and is reported)
            return options
        return check_model_options(info.data["model"], options)

    def model_hparams(self):
        """The kind's model config dataclass: model_options over its defaults, max_len = seq_len."""
        fields = _options_model(self.model).model_validate({"max_len": self.seq_len, **self.model_options})
        return architecture(self.model).config(**fields.model_dump(exclude_unset=True))

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with `changes`, validated like a new config."""
        return TrainConfig.model_validate({**self.model_dump(), **changes})


def preset(name: str, model: str, **overrides: Any) -> TrainConfig:
    """A TrainConfig for `model` at preset `name` (models/architectures.py PRESETS); keyword
    overrides win, `model_options` are merged into the preset's model geometry."""
    size, arch = preset_of(name), architecture(model)
    options = {"d_model": size.d_model, "n_layer": size.n_layer, "n_head": size.n_head, **arch.presets[name],
               **overrides.pop("model_options", {})}
    return TrainConfig.model_validate({
        "model": model, "model_options": options, "seq_len": size.seq_len, "batch_size": size.batch_size,
        "lr": size.lr, "warmup_steps": size.warmup_steps, "max_steps": size.max_steps, **overrides})


# ---------------------------------------------------------------------------------------------
# model options: a kind's config dataclass as a pydantic model of optional fields


_OPTION_MODELS: dict[str, type[BaseModel]] = {}


def _options_model(kind: str) -> type[BaseModel]:
    """Pydantic twin of the kind's config dataclass (same fields and types, extra forbidden), so a
    typo or a bad value under model_options is an error naming the key."""
    if kind not in _OPTION_MODELS:
        config = architecture(kind).config
        hints = typing.get_type_hints(config)
        fields = {f.name: (hints[f.name], Field(None)) for f in dataclasses.fields(config)}
        _OPTION_MODELS[kind] = create_model(f"{config.__name__}Options", __config__=ConfigDict(extra="forbid"), **fields)
    return _OPTION_MODELS[kind]


def check_model_options(kind: str, options: dict[str, Any], loc: tuple = ()) -> dict[str, Any]:
    """The options as JSON values (tuples as lists, as config.json holds them, so a resumed run's
    config compares equal); a ValidationError located under `loc` for unknown or ill-typed ones."""
    try:
        return _options_model(kind).model_validate(options).model_dump(mode="json", exclude_unset=True)
    except ValidationError as exc:
        raise ValidationError.from_exception_data(exc.title, [
            {"type": e["type"], "loc": (*loc, *e["loc"]), "input": e["input"], **({"ctx": e["ctx"]} if "ctx" in e else {})}
            for e in exc.errors()]) from None


# ---------------------------------------------------------------------------------------------
# partial overrides of a TrainConfig


class _Overrides(BaseModel):
    """Base of the partial TrainConfig models: a field counts only when it was given."""

    model_config = ConfigDict(extra="forbid")

    def given(self) -> dict[str, Any]:
        """The fields that were given, as TrainConfig keyword arguments."""
        return self.model_dump(exclude_unset=True)

    def __repr_args__(self):
        return [(k, v) for k, v in super().__repr_args__() if k in self.model_fields_set]

    @model_serializer(mode="wrap")
    def _dump_given(self, handler):
        # fields never given stay out of dumps, so a dumped config validates back to the same overrides
        # (the Ray Train payload, the Ray Job spec, config hashes)
        return {k: v for k, v in handler(self).items() if k in self.model_fields_set}


def _partial(name: str, doc: str, exclude: tuple[str, ...]) -> type[_Overrides]:
    """TrainConfig's fields (types, bounds, descriptions) minus `exclude`, each optional: the
    default None stands for "not given" and is never validated; a given value is validated as
    in TrainConfig (so `max_steps: null` is an error, `peak_flops: null` is not)."""
    fields = {}
    for field, info in TrainConfig.model_fields.items():
        if field in exclude:
            continue
        annotation = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
        fields[field] = (annotation, Field(None, description=info.description))
    return create_model(name, __base__=_Overrides, __doc__=doc, **fields)


TrainOverrides = _partial(
    "TrainOverrides", "TrainConfig fields that override the preset (the stage's `model` picks the kind).",
    exclude=("model",))
ContinualOverrides = _partial(
    "ContinualOverrides", "TrainConfig fields of the continued run over the checkpoint's own; the model, "
    "its options and the starting point (init_from) come from the checkpoint.",
    exclude=("model", "model_options", "init_from"))
