"""Pipeline configuration: one pydantic model drives the CLI, the Prefect flow forms and YAML files.

Unknown keys and bad values are errors that name the key (``curate.ingest.extractor: …``).
``--set a.b.c=value`` overrides take YAML scalars (``--set curate.ingest.batch_rows=64``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, ValidationInfo, field_validator, model_validator

from kurate.errors import EXIT_CONFIG, KurateError
from kurate.annotators.annotate import SampleConfig
from kurate.annotators.embedder import EmbedderConfig
from kurate.annotators.jql import DistillConfig, ScoreConfig
from kurate.annotators.judge import JudgeConfig
from kurate.annotators.synthesis import SynthesizeConfig
from kurate.flows.credentials import StorageOptionsField
from kurate.models.architectures import MODEL_KINDS, PRESETS, ModelKindName, PresetName
from kurate.models.train_config import ContinualOverrides, TrainOverrides, check_model_options
from kurate.release.config import ReleaseConfig
from kurate.tasks.curate import CurateHashes, DedupConfig
from kurate.tasks.ingest import IngestConfig
from kurate.tasks.quality import FilterConfig, LanguageConfig, QualityConfig, UrlFilterConfig

# The pipeline's stages in their order; flows/pipeline.py maps each to its flow (a test checks both agree).
STAGES = ("curate", "annotate", "distill", "score", "synthesize", "release", "train", "continual")
Stage = Literal[STAGES]


class ConfigError(KurateError, ValueError):
    """A config file or override that does not fit the schema; the message names every bad key."""

    exit_code = EXIT_CONFIG
    default_hint = "fix the named keys (kurate COMMAND --help lists the options)"


class RayConfig(BaseModel):
    """Where per-shard work runs."""

    model_config = ConfigDict(extra="forbid")

    executor: Literal["ray", "local"] = Field(
        "ray", description="ray: one Ray task per shard; local: in this process, one shard after another."
    )
    address: str | None = Field(
        None, description="Ray cluster address (ray://host:10001 or auto). Empty: $RAY_ADDRESS, else a local Ray."
    )
    num_cpus: int | None = Field(None, gt=0, description="CPUs for a local Ray instance (default: all).")
    cpus_per_shard: float = Field(1.0, gt=0, description="CPUs each shard task reserves.")
    max_retries: int = Field(2, ge=0, description="Ray retries of a shard whose worker died.")
    submit: bool = Field(False, description="Run the pipeline (or the stage flow called) as a Ray Job on ray.job_address (what `kurate submit` does); "
                         "this process only submits it and follows its logs, the data plane runs on the cluster.")
    job_address: str | None = Field(None, description="Ray dashboard (Jobs API) address for ray.submit, e.g. http://HEAD:8265; "
                                    "default $RAY_JOB_ADDRESS.")
    # The run's root (set by PipelineConfig): a local root must be visible on every node (flows/runner.py).
    _root: str | None = PrivateAttr(None)


class CurateConfig(BaseModel):
    """The curate stage: WARC/WET shards → extraction → URL filter → language ID → heuristic filters
    → exact + MinHash dedup → curated documents, with a reject row for everything dropped."""

    model_config = ConfigDict(extra="forbid")

    inputs: list[str] = Field(default_factory=list, description="WARC/WET shard URLs or globs (local, s3://, https://).")
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    url: UrlFilterConfig = Field(default_factory=UrlFilterConfig)
    language: LanguageConfig = Field(default_factory=LanguageConfig)
    filters: FilterConfig = Field(default_factory=FilterConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    report: bool = Field(True, description="Write the retention funnel (PNG + HTML) under <root>/reports/.")
    shard_retries: int = Field(1, ge=0, description="Times a shard's unit that raised is run again before it is reported failed.")
    lock_wait_s: float = Field(
        0.0, ge=0, description="Seconds to wait for another curate run on the same root to finish (0: fail at once with who holds it).")

    def quality(self) -> QualityConfig:
        return QualityConfig(url=self.url, language=self.language, filters=self.filters)

    def hashes(self) -> CurateHashes:
        """Config hashes of the curate units (the list of inputs is not part of them)."""
        return CurateHashes.of(self.ingest, self.quality(), self.dedup)


class AnnotateConfig(BaseModel):
    """The annotate stage: LLM judges on a language-balanced sample of curated documents."""

    model_config = ConfigDict(extra="forbid")

    judges: list[JudgeConfig] = Field(
        default_factory=lambda: [JudgeConfig(name="smollm2-edu")],
        description="Judges to run (each: backend, model, prompt, mode …).",
    )
    sample: SampleConfig = Field(default_factory=SampleConfig)
    docs_per_unit: int = Field(32, ge=1, description="Documents per committed labels chunk (the resume granularity).")
    actors_per_judge: int = Field(1, ge=1, description="Ray actors (model copies) per judge.")
    cpus_per_actor: float = Field(1.0, gt=0)

    def judge(self, name: str) -> JudgeConfig:
        for judge in self.judges:
            if judge.name == name:
                return judge
        raise KeyError(f"no judge named {name!r}; configured: {[j.name for j in self.judges]}")


class JqlConfig(BaseModel):
    """JQL annotators: the embedder both steps share, head training, and corpus scoring."""

    model_config = ConfigDict(extra="forbid")

    embedder: EmbedderConfig = Field(default_factory=EmbedderConfig)
    distill: DistillConfig = Field(default_factory=DistillConfig)
    score: ScoreConfig = Field(default_factory=ScoreConfig)
    gpus_per_task: float = Field(1.0, ge=0, description="GPUs per embedding task when the Ray cluster has GPUs.")


class TrainSource(BaseModel):
    """One dataset of an experimental raw mix (``train.mix``); a release (``train.data``) is the product path."""

    model_config = ConfigDict(extra="forbid")

    dataset: Literal["curated", "synthetic"] = "curated"
    weight: float = Field(1.0, gt=0)


class TrainData(BaseModel):
    """Train on a committed release: its train split for training, its validation split for eval."""

    model_config = ConfigDict(extra="forbid")

    release: str = Field(..., pattern=r"^[A-Za-z0-9_.-]+$", description="Release name (releases/<name>/).")
    version: int | Literal["latest"] = Field("latest", description="Version number, or latest (resolved when training "
                                             "starts; a resumed run keeps its checkpoint's version).")

    @classmethod
    def parse(cls, ref: str) -> "TrainData":
        """``NAME`` or ``NAME@vK`` (the CLI's --release)."""
        name, _, version = ref.partition("@")
        return cls(release=name, version=int(version.lstrip("v")) if version and version != "latest" else "latest")


class TrainStageConfig(BaseModel):
    """A training run: model kind, preset, data mix and where checkpoints go."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("demo", pattern=r"^[A-Za-z0-9_.-]+$", description="Run name: checkpoints/<name>-<model>.")
    model: ModelKindName = Field("hat", description="Model kind: " + "; ".join(
        f"{name} ({kind.summary})" for name, kind in MODEL_KINDS.items()) + ".")
    preset: PresetName = Field("tiny", description="Model size and trainer defaults: " + "; ".join(
        f"{name} ({p.summary})" for name, p in PRESETS.items()) + ".")
    overrides: TrainOverrides = Field(default_factory=TrainOverrides, description=(
        "TrainConfig fields over the preset's, e.g. {max_steps: 200, model_options: {d_model: 256}}."))
    data: TrainData | None = Field(None, description="Train on a release ({release: NAME, version: K|latest}); "
                                   "empty: the raw datasets of `mix`.")
    mix: list[TrainSource] = Field(default_factory=lambda: [TrainSource()], description="Raw datasets and weights "
                                   "(experiments; ignored when `data` names a release).")
    eval_fraction: float = Field(0.05, gt=0, lt=1, description="Share of documents held out for eval (by id hash).")
    checkpoint_dir: str | None = Field(None, description="Local/shared directory (default: <root>/checkpoints).")
    num_workers: int = Field(1, ge=1, description="Ray Train workers (ScalingConfig), one DDP rank each; "
                             "train.overrides.batch_size is per worker, so the global batch grows with it.")
    cpus_per_worker: float = Field(1, gt=0, description="CPUs Ray reserves for each Train worker (plus one GPU with use_gpu).")
    use_gpu: bool | None = Field(None, description="Ray Train workers on GPUs (default: when the cluster has GPUs).")
    job_address: str | None = Field(None, description="Ray dashboard address for Ray Jobs (http://host:8265); default $RAY_ADDRESS.")

    @field_validator("overrides")
    @classmethod
    def _known_model_options(cls, overrides: TrainOverrides, info: ValidationInfo) -> TrainOverrides:
        """model_options must be fields of the chosen kind's model config (a typo names the key)."""
        if overrides.model_options is not None and "model" in info.data:
            check_model_options(info.data["model"], overrides.model_options, loc=("model_options",))
        return overrides

    def run_dir(self, root: str) -> str:
        base = self.checkpoint_dir or os.path.join(root, "checkpoints")
        if "://" in base:
            raise ValueError("train.checkpoint_dir must be a local or shared filesystem path (set it for non-local roots)")
        return os.path.join(base, f"{self.name}-{self.model}")


class ContinualData(BaseModel):
    """Continual training between two versions of a release: the old version's documents are the replay
    candidates (and its validation split the old held-out set), the new version's are the new data."""

    model_config = ConfigDict(extra="forbid")

    release: str = Field(..., pattern=r"^[A-Za-z0-9_.-]+$", description="Release name (releases/<name>/).")
    old_version: int = Field(..., ge=1, description="The version the checkpoint was trained on (replay candidates).")
    new_version: int | Literal["latest"] = Field("latest", description="The version with the new data (latest: resolved "
                                                 "when the run starts).")
    new_only: bool = Field(True, description="New data = the new version's documents the old version does not hold "
                           "(false: all of the new version's).")

    @classmethod
    def parse(cls, ref: str) -> "ContinualData":
        """``NAME@vOLD..vNEW``, ``NAME@vOLD..latest`` or ``NAME@vOLD..`` (the CLI's --release)."""
        name, at, versions = ref.partition("@")
        old, dots, new = versions.partition("..")
        if not at or not dots:
            raise ValueError(f"expected NAME@vOLD..vNEW, not {ref!r}")
        return cls(release=name, old_version=int(old.lstrip("v")),
                   new_version=int(new.lstrip("v")) if new and new != "latest" else "latest")


class ContinualConfig(BaseModel):
    """Continual training: a core-tokenset replay buffer from the old data, then the checkpoint
    continued on new data mixed with it (models/coretokens.py, models/continual.py)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("continual", pattern=r"^[A-Za-z0-9_.-]+$", description="Run name: checkpoints/<name>-<model>.")
    checkpoint: str | None = Field(None, description="Checkpoint to continue (default: the train stage's).")
    data: ContinualData | None = Field(None, description="Old and new version of a release ({release: NAME, old_version: K, "
                                       "new_version: K|latest}); empty: the raw datasets `old` and `new` (experiments).")
    new: str = Field("synthetic", description="Dataset with the new data (a committed dataset with a text column).")
    new_languages: list[str] = Field(default_factory=list, description="Keep only these languages of the new data (empty: all).")
    old: str = Field("curated", description="Dataset the checkpoint was trained on: candidates for the replay buffer.")
    old_languages: list[str] = Field(default_factory=list, description="Keep only these languages of the old data (empty: all).")
    candidates: int = Field(2000, ge=1, description="Old training documents scored for the buffer (seeded sample).")
    budget: float = Field(0.01, gt=0, le=1, description="Share of the candidates' units the buffer trains on.")
    token_fraction: float = Field(0.1, gt=0, le=1, description="Share of each selected document's units kept (1.0: whole documents).")
    selection: Literal["loss", "gradnorm", "craig", "random"] = Field("craig", description="Document selection.")
    attribution: Literal["atman", "gradxinput", "full"] = Field("atman", description="Unit attribution (full: whole documents).")
    replay: Literal["kept", "context"] = Field("kept", description="kept: store and replay only the kept units, at "
                                               "their original positions (the paper); context: also masked context.")
    context_units: int | None = Field(16, ge=0, description="replay context: masked context replayed before each kept "
                                      "span, in units (each span its own short segment; null: every unit before it).")
    suppression: float = Field(0.9, gt=0, le=1, description="AtMan's suppression factor f: attention to a unit is "
                               "scaled by 1 − f when attributing it.")
    replay_share: float = Field(0.25, ge=0, lt=1, description="Share of the trained (loss-bearing) units that come from the replay buffer.")
    overrides: ContinualOverrides = Field(
        default_factory=lambda: ContinualOverrides(max_steps=100, warmup_steps=5),
        description="TrainConfig fields of the continued run over the checkpoint's (lr, max_steps …).")
    eval_fraction: float = Field(0.05, gt=0, lt=1, description="Held-out share of old and new documents (by id hash).")
    eval_batches: int = Field(8, ge=1, description="Batches of each held-out set for bits/byte.")
    compare: bool = Field(False, description="Also run the baselines (no replay, random and full-document coresets).")
    multiples: list[int] = Field(default_factory=lambda: [2, 5, 10],
                                 description="Coreset baselines storing k× the core tokenset's stored bytes (and 1×).")
    seed: int = 0
    job_address: str | None = Field(None, description="Ray dashboard address for the Ray Job (default: $RAY_ADDRESS).")


class PipelineConfig(BaseModel):
    """A whole kurate run: where data lives, which stages run, and each stage's settings."""

    model_config = ConfigDict(extra="forbid")

    root: str = Field(..., description="Output root: a directory, s3://bucket/prefix or memory://name.")
    storage_options: StorageOptionsField = Field(
        default_factory=dict,
        description="fsspec options per protocol, e.g. {s3: {endpoint_url: http://127.0.0.1:9000}}. Credentials: AWS_* "
                    "env or credentials file, or references {prefect_secret: BLOCK} / {env: VAR} / {file: PATH}; "
                    "a literal key or secret is kept in memory only and never serialized.",
    )
    stages: list[Stage] = Field(default_factory=lambda: ["curate"], description="Stages to run, in order.")
    curate: CurateConfig = Field(default_factory=CurateConfig)
    annotate: AnnotateConfig = Field(default_factory=AnnotateConfig)
    jql: JqlConfig = Field(default_factory=JqlConfig)
    synthesize: SynthesizeConfig = Field(default_factory=SynthesizeConfig)
    release: ReleaseConfig = Field(default_factory=ReleaseConfig)
    train: TrainStageConfig = Field(default_factory=TrainStageConfig)
    continual: ContinualConfig = Field(default_factory=ContinualConfig)
    ray: RayConfig = Field(default_factory=RayConfig)

    @model_validator(mode="after")
    def _resolve_local_paths(self) -> "PipelineConfig":
        """Every path that leaves the driver is absolute or a URL, resolved once here against the directory
        the config is loaded in: Ray workers and Ray Jobs run in other directories (or on other machines)."""
        c, dedup = self.curate, self.curate.dedup
        self.root = absolute_path(self.root)
        self.curate = c.model_copy(update={
            "inputs": [absolute_path(p) for p in c.inputs],
            "dedup": dedup.model_copy(update={"reference_roots": [absolute_path(p) for p in dedup.reference_roots]}),
            "filters": c.filters.model_copy(update={"params": absolute_path(c.filters.params)}),
            "url": c.url.model_copy(update={"blocklist": absolute_path(c.url.blocklist)}),
        })
        self.train = self.train.model_copy(update={"checkpoint_dir": absolute_path(self.train.checkpoint_dir)})
        self.continual = self.continual.model_copy(update={"checkpoint": absolute_path(self.continual.checkpoint)})
        # Fields that hold a name *or* a path (a built-in prompt, an HF id, a server's model name): only a
        # YAML file or a path that exists here is resolved.
        self.annotate = self.annotate.model_copy(update={"judges": [
            _with_local_paths(judge, "prompt", "model", "tokenizer") for judge in self.annotate.judges]})
        s = self.synthesize
        self.synthesize = s.model_copy(update={
            "generator": _with_local_paths(s.generator, "model", "tokenizer"),
            "prompts": {kind: local_path_or_name(path) for kind, path in s.prompts.items()},
            "gates": s.gates.model_copy(update={"filter_params": absolute_path(s.gates.filter_params)}),
        })
        self.jql = self.jql.model_copy(update={"embedder": _with_local_paths(self.jql.embedder, "model")})
        self.ray._root = self.root
        return self


def absolute_path(path: str | None) -> str | None:
    """A local path as an absolute one (``~`` expanded); URLs (``s3://``, ``memory://``, ``file://`` …) unchanged."""
    if path is None or "://" in path:
        return path
    return os.path.abspath(os.path.expanduser(path))


def local_path_or_name(value: str | None) -> str | None:
    """A value that is a name or a local path (``model: org/name`` or ``./models/judge``; ``prompt:
    fineweb_edu`` or ``prompts/judge.yaml``): absolute when it is a YAML file or names an existing path,
    else unchanged (an HF id, a built-in or ``embedded:`` name, a URL)."""
    if value is None or "://" in value:
        return value
    if value.endswith((".yaml", ".yml")) or os.path.exists(os.path.expanduser(value)):
        return absolute_path(value)
    return value


def _with_local_paths(model: BaseModel, *fields: str) -> BaseModel:
    return model.model_copy(update={f: local_path_or_name(getattr(model, f)) for f in fields})


def _format_errors(error: ValidationError, source: str) -> str:
    lines = [f"invalid config ({source}):"]
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"]) or "<top>"
        message = "unknown key" if item["type"] == "extra_forbidden" else item["msg"]
        lines.append(f"  {key}: {message}")
    return "\n".join(lines)


def _set_dotted(tree: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {dotted}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def parse_overrides(overrides: list[str]) -> list[tuple[str, Any]]:
    parsed = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. curate.ingest.extractor=resiliparse")
        parsed.append((key.strip(), yaml.safe_load(raw) if raw.strip() else None))
    return parsed


def load_config(
    path: str | os.PathLike | None = None,
    overrides: list[str] | None = None,
    given: dict | None = None,
) -> PipelineConfig:
    """Load YAML (optional), merge ``given`` (CLI options) over it, apply ``key=value`` overrides, validate."""
    tree: dict = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        try:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
        except FileNotFoundError:
            raise ConfigError(f"config file {path} not found") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping at the top level")
        tree = _merge(tree, loaded)
    tree = _merge(tree, given or {})
    for key, value in parse_overrides(overrides or []):
        _set_dotted(tree, key, value)
        source += f" + --set {key}"
    try:
        return PipelineConfig.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, source)) from None


def _merge(base: dict, update: dict) -> dict:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged
