"""Train flow: HAT, T-FREE or the BPE baseline on a release (or an experimental mix of committed datasets).

    kurate train --root runs/demo --release default@v2 --model hat --preset tiny [--set train.overrides.max_steps=200]
    kurate generate --checkpoint runs/demo/checkpoints/demo-hat/checkpoint "Die Stadt"

Three ways to run the same trainer (``models/train.py``; its config is ``models/train_config.py``:
the stage's preset with ``train.overrides`` over it):

* in-process (``run_training``): CPU or one GPU — the default, and what `kurate train` does without
  a Ray address;
* Ray Train (``run_ray_train``): with ``ray.address``/``$RAY_ADDRESS``, a ``TorchTrainer`` runs the
  trainer on ``train.num_workers`` workers (``ScalingConfig``), one DDP rank each: every rank packs
  the same stream and keeps its own slice of each batch; rank 0 writes checkpoints and metrics;
* Ray Job (the Prefect flow ``train``): submits ``python -m kurate.flows.train_job`` with a deterministic
  submission id (a retried flow run attaches to the same job instead of starting a second one),
  forwards the job's logs into the flow run, and stops the job when the flow run is cancelled.

Data: ``train.data: {release: NAME, version: K|latest}`` trains on the release's train split and
evaluates on its validation split (release/publish.py); without it, ``train.mix`` weights raw
datasets. Every checkpoint records the release name, version and content hash.

Per segment — the steps up to each checkpoint, committed right before the checkpoint is written —
one unit commits the segment's ``metrics`` rows and its ``trained_on`` rows (run, checkpoint step,
release, version, document id, first step seen), so after a kill and resume both datasets hold
every step exactly once, as an uninterrupted run's would. Metrics are also published as a Prefect table + a loss and bits/byte picture (``<root>/reports/train-<run>-curves.*``).
"""

from __future__ import annotations

import glob
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from prefect import flow, task

from kurate.errors import PreconditionError
from kurate.flows.artifacts import Report, Table, cell, figure_png, publish_report, publish_table
from kurate.flows.config import PipelineConfig, RayConfig, TrainStageConfig
from kurate.flows.plots import training_figure
from kurate.flows.progress import progress_bar
from kurate.flows.runner import cluster_has_gpus, ensure_ray, follow_ray_job, forward_output, submit_ray_job, worker_env
from kurate.storage.catalog import Catalog
from kurate.storage.fs import StorageOptions
from kurate.storage.schemas import METRICS, TRAINED_ON
from kurate.storage.shards import ShardStore, UnitKey, config_hash


def trainer_config(stage: TrainStageConfig):
    """The stage's preset with its overrides (only the given fields) as the trainer's TrainConfig."""
    from kurate.models.train_config import preset

    return preset(stage.preset, stage.model, **stage.overrides.given())


@dataclass(frozen=True)
class TrainingData:
    """What a run reads: train and eval sources (files, weight), the held-out rule, and its lineage."""

    train: list[tuple[list[str], float]]
    eval: list[tuple[list[str], float]]
    eval_fraction: float  # 0: the sources are split already (a release's train / validation files)
    lineage: dict  # {"release", "version", "content_hash"}; empty values for a raw mix


def training_data(root: str, stage: TrainStageConfig, storage_options: StorageOptions | None = None) -> TrainingData:
    """The release's splits (``train.data``), else the raw mix with the held-out share by id hash."""
    from kurate.models.checkpoint import checkpoint_info

    checkpoint = checkpoint_info(stage.run_dir(root))
    saved = ((checkpoint or {}).get("data") or {})
    wanted = stage.data.release if stage.data is not None else None
    version = stage.data.version if stage.data is not None else None
    # a finished checkpoint trains no further (train() returns at once), so only a run still to go is checked
    unfinished = checkpoint is not None and (checkpoint.get("step") or 0) < trainer_config(stage).max_steps
    if unfinished and (saved.get("release") != wanted or (
            wanted and version != "latest" and saved.get("version") != version)):
        def ref(name, v):
            return (f"release {name}@" + (f"v{v}" if v != "latest" else "latest")) if name else "the raw train.mix"
        raise PreconditionError(
            f"the checkpoint in {stage.run_dir(root)} was trained on {ref(saved.get('release'), saved.get('version'))}, "
            f"train.data asks for {ref(wanted, version)}",
            "give the run a new train.name (a resumed run must read the stream it started on)")
    if stage.data is None:
        sources = training_sources(root, stage, storage_options)
        return TrainingData(sources, sources, stage.eval_fraction, {"release": None, "version": None, "content_hash": None})
    from kurate.release.publish import release_files, resolve

    store = ShardStore(root, storage_options)
    if saved.get("release") and version == "latest":
        version = saved["version"]  # resume on the version the checkpoint started on, not a newer one
    manifest = resolve(store, stage.data.release, version)
    train_files = release_files(store, manifest, "train")
    if not train_files:
        raise PreconditionError(f"release {stage.data.release}@v{manifest.counts['version']} has no train documents",
                                "widen the release's sources")
    eval_files = release_files(store, manifest, "validation")
    return TrainingData([(train_files, 1.0)], [(eval_files, 1.0)] if eval_files else [], 0.0,
                        {"release": stage.data.release, "version": manifest.counts["version"], "content_hash": manifest.config_hash})


def training_sources(root: str, stage: TrainStageConfig, storage_options: StorageOptions | None = None) -> list[tuple[list[str], float]]:
    """Committed shards of each dataset in the mix (current generation only)."""
    store = ShardStore(root, storage_options)
    sources = []
    for source in stage.mix:
        files = [store.url(o.path) for m in store.current_manifests() for o in m.outputs if o.dataset == source.dataset and o.rows]
        if not files:
            raise PreconditionError(f"no committed {source.dataset!r} shards under {root}", "run the stage that makes them first")
        sources.append((files, source.weight))
    return sources


def run_training(root: str, stage: TrainStageConfig, storage_options: StorageOptions | None = None,
                 device=None) -> dict:
    """Train in this process (CPU or one GPU), resume from the run's checkpoint, commit metrics.

    Inside a Ray Train worker this is one DDP rank (``device``: the worker's own); the trainer
    hands metrics to rank 0 only, so the segment is committed once."""
    from kurate.models.data import ParquetMix
    from kurate.models.train import train

    cfg = trainer_config(stage)
    data = training_data(root, stage, storage_options)
    filesystem = None if "://" not in root else ShardStore(root, storage_options).fs
    train_texts = ParquetMix(data.train, seed=cfg.seed, split="train", eval_fraction=data.eval_fraction, filesystem=filesystem)
    eval_texts = list(ParquetMix(data.eval, seed=cfg.seed, split="eval" if data.eval_fraction else "train",
                                 eval_fraction=data.eval_fraction, filesystem=filesystem)) if data.eval else []
    out_dir = stage.run_dir(root)
    segment = Segment()
    logged = 0
    # the terminal bar (flows/progress.py; off in Ray Train workers, whose stderr is a log file)
    with progress_bar(f"train {stage.name}-{stage.model}", cfg.max_steps, "steps") as bar:
        def on_metrics(m: dict) -> None:
            nonlocal logged
            segment.metrics.append(m)
            logged += 1
            info = f"loss {m['loss']:.3f}" + (f" · bpb {m['bits_per_byte']:.3f}" if "bits_per_byte" in m else "")
            bar.update(m["step"], info=f"{info} · {m['units_per_s']:.0f} units/s")

        def on_documents(step: int, ids: list[str]) -> None:
            segment.documents += [(doc_id, step) for doc_id in ids]

        def on_segment_end(step: int) -> None:
            commit_segment(root, stage, segment, step, data.lineage, storage_options)
            segment.clear()

        summary = train(cfg, train_texts, eval_texts or None, out_dir, resume=True, on_metrics=on_metrics, device=device,
                        on_documents=on_documents, on_segment_end=on_segment_end, lineage=data.lineage)
    return {**summary, "out_dir": out_dir, "checkpoint": os.path.join(out_dir, "checkpoint"), "steps_logged": logged,
            **{k: v for k, v in data.lineage.items() if v is not None}}


@dataclass
class Segment:
    """What the steps since the last checkpoint produced: metrics rows and (document id, first step)."""

    metrics: list[dict] = field(default_factory=list)
    documents: list[tuple[str, int]] = field(default_factory=list)

    def clear(self) -> None:
        self.metrics, self.documents = [], []


def commit_segment(root: str, stage: TrainStageConfig, segment: Segment, checkpoint_step: int, lineage: dict,
                   storage_options: StorageOptions | None = None) -> None:
    """One committed unit per segment (named by its steps, so a redone segment is found committed)."""
    if not segment.metrics:
        return
    import pyarrow as pa

    metrics = segment.metrics
    first, last = metrics[0].get("step", 0), metrics[-1].get("step", 0)
    run = f"{stage.name}-{stage.model}"
    key = UnitKey(f"train-{run}", f"{run}-steps-{first:07d}-{last:07d}", config_hash(stage.model_dump(mode="json")))
    trained = pa.Table.from_pylist([{"run": run, "checkpoint_step": checkpoint_step, "release": lineage.get("release"),
                                     "version": lineage.get("version"), "id": doc_id, "first_step": step}
                                    for doc_id, step in segment.documents], schema=TRAINED_ON)
    rows = [{"run": run, "model": stage.model, "step": int(m.get("step", 0)), "metrics": json.dumps(m, sort_keys=True, default=float),
             "loss": _num(m.get("loss")), "bits_per_byte": _num(m.get("bits_per_byte")), "eval_loss": _num(m.get("eval_loss")),
             "eval_bits_per_byte": _num(m.get("eval_bits_per_byte")), "units_per_s": _num(m.get("units_per_s")),
             "mfu": _num(m.get("mfu"))} for m in metrics]

    def write(unit) -> dict:
        unit.write("metrics", pa.Table.from_pylist(rows, schema=METRICS))
        unit.write("trained_on", trained)
        return {"steps": len(rows), "first": first, "last": last, "documents": trained.num_rows, **lineage}

    ShardStore(root, storage_options).run_unit(key, ["metrics", "trained_on"], write, schemas={"trained_on": TRAINED_ON})


def _num(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


_MAX_FORWARDED_CHARS = 50_000  # the tail of a rank's output that is forwarded


def run_ray_train(root: str, stage: TrainStageConfig, storage_options: StorageOptions | None, address: str | None) -> dict:
    """The same trainer inside a Ray Train ``TorchTrainer``: ``num_workers`` DDP ranks (gloo on CPU, NCCL
    on GPU), each with ``cpus_per_worker`` CPUs (and a GPU with ``use_gpu``)."""
    import ray
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    ensure_ray(RayConfig(address=address))
    use_gpu = stage.use_gpu if stage.use_gpu is not None else cluster_has_gpus()

    output_dir = os.path.abspath(stage.run_dir(root) + "-ray")

    def loop(payload: dict) -> None:
        import contextlib
        import io

        from ray import train as ray_train
        from ray.train.torch import get_device

        # What each rank prints goes to a file beside the run (the run dir is on a shared path), which
        # the driver forwards into its own (the flow run's) logs, also when the rank failed.
        printed = io.StringIO()
        rank = ray_train.get_context().get_world_rank()
        try:
            with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
                result = run_training(payload["root"], TrainStageConfig.model_validate(payload["stage"]),
                                      payload["storage_options"], device=get_device())
        finally:
            os.makedirs(payload["output_dir"], exist_ok=True)
            with open(os.path.join(payload["output_dir"], f"output-rank{rank}.txt"), "w") as handle:
                handle.write(printed.getvalue()[-_MAX_FORWARDED_CHARS:])
        ray_train.report({k: v for k, v in result.items() if isinstance(v, (int, float, str))})

    for stale in glob.glob(os.path.join(output_dir, "output-rank*.txt")):
        os.remove(stale)  # a resumed run's earlier output was forwarded by its own driver
    trainer = TorchTrainer(
        loop,
        train_loop_config={"root": root, "stage": stage.model_dump(mode="json"), "storage_options": storage_options or {},
                           "output_dir": output_dir},
        scaling_config=ScalingConfig(num_workers=stage.num_workers, use_gpu=use_gpu,
                                     resources_per_worker={"CPU": stage.cpus_per_worker, **({"GPU": 1} if use_gpu else {})}),
        run_config=RunConfig(name=f"kurate-{stage.name}-{stage.model}", storage_path=output_dir),
    )
    try:
        result = trainer.fit()
    finally:
        for path in sorted(glob.glob(os.path.join(output_dir, "output-rank*.txt"))):
            with open(path) as handle:
                rank_name = os.path.basename(path)[len("output-"):-len(".txt")]
                forward_output(handle.read(), f"train {stage.name}-{stage.model} {rank_name}")
    return dict(result.metrics or {})


# --- Ray Job submission (the Prefect flow) ------------------------------------------------------------

def submission_id(root: str, stage: TrainStageConfig) -> str:
    return f"kurate-train-{stage.name}-{stage.model}-{config_hash([os.path.abspath(root) if '://' not in root else root, stage.model_dump(mode='json')])}"


def job_client(address: str | None, key: str = "train.job_address"):
    """Ray Jobs client for a dashboard address (else $RAY_JOB_ADDRESS / $RAY_ADDRESS)."""
    from ray.job_submission import JobSubmissionClient

    address = address or os.environ.get("RAY_JOB_ADDRESS") or os.environ.get("RAY_ADDRESS")
    if not address:
        raise RuntimeError(f"this flow submits a Ray Job: set {key} (http://HEAD:8265) or $RAY_ADDRESS")
    return JobSubmissionClient(address if "://" in address else f"http://{address}")


def _job_client(stage: TrainStageConfig):
    return job_client(stage.job_address)


def stop_jobs(client, base: str, tag: str) -> None:
    """Stop every running Ray Job whose submission id starts with `base`."""
    for job in client.list_jobs():
        if (job.submission_id or "").startswith(base) and not job.status.is_terminal():
            client.stop_job(job.submission_id)
            print(f"[{tag}] stopped Ray Job {job.submission_id}")


def _stop_job_on_cancel(flow, flow_run, state) -> None:
    """Prefect cancellation hook: stop the Ray Job this flow run submitted."""
    config = PipelineConfig.model_validate(flow_run.parameters["config"])
    stop_jobs(_job_client(config.train), submission_id(config.root, config.train), "train")


@task(name="submit-train-job")
def submit_and_follow(config_json: str, root: str, stage: TrainStageConfig) -> dict:
    return run_ray_job(_job_client(stage), submission_id(root, stage), config_json,
                       Path(stage.run_dir(root) + ".job.json"), "kurate.flows.train_job", "train")


def run_ray_job(client, base: str, config_json: str, spec: Path, module: str, tag: str) -> dict:
    """Submit `python -m MODULE SPEC` as Ray Job `base` (or attach to it), forward its logs, wait.

    A job with this id that is running or succeeded is attached to (a retried flow run does not
    train twice); after a failed one, `base-retryN` resubmits (the job resumes from its checkpoint)."""
    from ray.job_submission import JobStatus

    jobs = sorted((j for j in client.list_jobs() if (j.submission_id or "").startswith(base)), key=lambda j: j.submission_id)
    live = [j for j in jobs if not j.status.is_terminal() or j.status == JobStatus.SUCCEEDED]
    if live:
        job_id = live[-1].submission_id
        print(f"[{tag}] attaching to Ray Job {job_id} ({live[-1].status})")
    else:
        job_id = base if not jobs else f"{base}-retry{len(jobs)}"  # the trainer resumes from its checkpoint
        spec.parent.mkdir(parents=True, exist_ok=True)
        spec.write_text(config_json)
        python = sys.executable if _is_local(client) else "python"
        submit_ray_job(client, entrypoint=f"{python} -m {module} {spec.resolve()}", submission_id=job_id,
                runtime_env={"env_vars": worker_env()})
        print(f"[{tag}] submitted Ray Job {job_id}")
    status = follow_ray_job(client, job_id, print, f"[{tag}:job]", poll_s=2.0)
    if status != JobStatus.SUCCEEDED:
        raise RuntimeError(f"Ray Job {job_id} ended {status}: {client.get_job_info(job_id).message}")
    return {"job": job_id, "status": str(status)}


def _is_local(client) -> bool:
    address = getattr(client, "_address", "") or ""
    return "127.0.0.1" in address or "localhost" in address


@flow(name="train", log_prints=True, on_cancellation=[_stop_job_on_cancel])
def train_flow(config: PipelineConfig) -> dict:
    """Submit the training run as a Ray Job, follow its logs, and publish its metrics."""
    job = submit_and_follow(config.model_dump_json(), config.root, config.train)
    publish_metrics(config.root, config.train, config.storage_options)
    return {**job, "checkpoint": os.path.join(config.train.run_dir(config.root), "checkpoint")}


def publish_metrics(root: str, stage: TrainStageConfig, storage_options: StorageOptions | None = None) -> list[dict]:
    """Loss and bits/byte curves (picture) + the last metrics rows (table) from the committed ``metrics`` dataset."""
    run = f"{stage.name}-{stage.model}"
    rows = Catalog(root, storage_options).query(
        "select step, loss, bits_per_byte, eval_loss, eval_bits_per_byte, units_per_s, mfu from metrics "
        "where run = ? order by step", [run]).to_pylist()
    if not rows:
        return rows
    publish_table(root, f"train-{run}", rows[-50:], f"{run}: last metrics rows")
    last = rows[-1]
    evals = [r for r in rows if r["eval_bits_per_byte"] is not None]
    lines = [f"Run `{run}` ({stage.preset} preset): {len(rows)} logged steps, last step {last['step']}: "
             f"loss {cell(last['loss'])}, bits/byte {cell(last['bits_per_byte'])}."]
    if evals:
        lines.append(f"Held-out at step {evals[-1]['step']}: loss {cell(evals[-1]['eval_loss'])}, "
                     f"bits/byte {cell(evals[-1]['eval_bits_per_byte'])}.")
    report = Report(name=f"train-{run}-curves", title=f"train {run}: loss and bits/byte", png=figure_png(training_figure(run, rows)),
                    lines=lines, tables=[Table("Last logged steps", rows[-5:])])
    publish_report(root, report, storage_options, description=f"{run}: loss and bits/byte against the step")
    return rows


@flow(name="train-local", log_prints=True)
def train_local(config: PipelineConfig) -> dict:
    """Train in this process (or with Ray Train when a Ray address is configured) and publish metrics."""
    address = config.ray.address or os.environ.get("RAY_ADDRESS")
    if address and config.ray.executor == "ray":
        result = run_ray_train(config.root, config.train, config.storage_options, address)
    else:
        result = run_training(config.root, config.train, config.storage_options)
    publish_metrics(config.root, config.train, config.storage_options)
    result = {k: v for k, v in result.items() if k != "history"}  # the metrics dataset holds the history
    print(f"[train] {config.train.name}-{config.train.model}: {result}")
    return result


def train_stage(config: PipelineConfig) -> dict:
    """The pipeline's train stage: a Ray Job when a job address is configured, else in-process."""
    if config.train.job_address or os.environ.get("RAY_JOB_ADDRESS"):
        return train_flow(config)
    return train_local(config)
