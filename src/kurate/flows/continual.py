"""Continual flow: keep learning from new data without forgetting the old, with a core-tokenset
replay buffer (arXiv 2410.05800; models/coretokens.py, models/continual.py).

    kurate continual --root runs/demo --release default@v1..v2 --checkpoint runs/demo/checkpoints/demo-v1-hat
    kurate continual --root runs/demo --checkpoint runs/demo/checkpoints/demo-hat --new synthetic --budget 0.01
    python -m kurate.flows.continual SPEC.json        # the Ray Job entry point (SPEC: a PipelineConfig as JSON)

Data: ``continual.data: {release: NAME, old_version: K, new_version: K|latest}`` — the old version's
train split is the replay candidates and its validation split the old held-out set; the new
version's train and validation documents that the old version does not hold (``new_only``, the
default) are the new data and the new held-out set. Without it, the raw datasets ``continual.old``
and ``continual.new`` are split by id hash (experiments). A checkpoint that records a release
(flows/train.py) must have been trained on the old version. A `kurate.release.published` event of
v ≥ 2 starts the served continual deployment on old = v − 1, new = v (flows/deployments.py).

1. The checkpoint scores a seeded sample of its old training documents (the old release's train
   split, or `continual.old`'s), selects the most informative ones and keeps their most relevant units, each span with
   only those units (`continual.replay: kept`, the default; `context`: each span also with up to
   `continual.context_units` units of masked context): the buffer is committed as the
   `coretokens` dataset with each row's stored bytes (one unit per run and config; a re-run reuses it).
2. The checkpoint is continued on the new dataset mixed with the buffer (masked replay: buffer
   documents count only their kept units) — the same trainer, checkpoints and exact resume as
   `kurate train`. Like train's, each segment (the steps up to a checkpoint) commits its `metrics`
   rows and its `trained_on` rows (flows/train.py `commit_segment`: run `<name>-<model>`, the new
   release and version, each new document and each replayed one the new version holds, at its
   first step) right before its checkpoint is written. The last segment also carries the held-out
   figures: it is kept in `<run dir>/final-segment.json` before the last checkpoint and committed
   after the evaluation (a run killed in between commits it on its re-run).
3. Bits/byte on the held-out old and new documents before and after (retention and gain); with
   `continual.compare` also the baselines (no replay, random and selected full-document coresets
   storing 1× and k× the core tokenset's bytes), published as a Prefect table and a plot.

Runs in-process (`continual-local`), or as a Ray Job (`continual`, when `continual.job_address`
or $RAY_JOB_ADDRESS is set) through the train flow's job machinery: deterministic submission id,
log forwarding, stop on cancel.
"""

from __future__ import annotations

import json
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path

from prefect import flow, task

from kurate.errors import PreconditionError
from kurate.flows.artifacts import Report, Table, figure_png, publish_markdown, publish_report, publish_table
from kurate.flows.config import PipelineConfig, TrainStageConfig, load_config
from kurate.flows.train import Segment, commit_segment, job_client, run_ray_job, stop_jobs
from kurate.storage.fs import StorageOptions
from kurate.storage.shards import ShardStore, UnitKey, config_hash


def checkpoint_of(config: PipelineConfig) -> str:
    return config.continual.checkpoint or os.path.join(config.train.run_dir(config.root), "checkpoint")


def run_stage(config: PipelineConfig, model: str) -> TrainStageConfig:
    """The continued run as a train stage: its checkpoint directory and its `metrics` run name."""
    c = config.continual
    return TrainStageConfig(name=c.name, model=model, overrides=c.overrides.given(), checkpoint_dir=config.train.checkpoint_dir)


@dataclass(frozen=True)
class ContinualInputs:
    """What a continual run reads: replay candidates, new training documents (DocText: they carry
    their ids for `trained_on`), the old and new held-out texts, and the lineage of the new data."""

    old: list[tuple[str, str]]
    new: list
    old_eval: list[str]
    new_eval: list[str]
    lineage: dict  # {"release", "version", "content_hash"} of the new data; empty values for raw datasets
    old_ref: str  # what the buffer rows' `source` says: the dataset, or NAME@vK
    new_ids: frozenset[str] | None  # ids a trained_on row may name (the new version's); None: any


def _release_docs(store: ShardStore, manifest, split: str) -> list[tuple[str, str, str]]:
    """(id, text, language) of one split of a committed release version."""
    import pyarrow.parquet as pq

    from kurate.release.publish import release_files

    docs = []
    for url in release_files(store, manifest, split):
        with store.fs.open(url, "rb") as f:
            table = pq.read_table(f, columns=["id", "text", "language"])
        for doc_id, text, lang in zip(*(table.column(c).to_pylist() for c in ("id", "text", "language"))):
            if text:
                docs.append((doc_id, text, lang))
    return docs


def continual_inputs(config: PipelineConfig, ckpt: str, out_dir: str) -> ContinualInputs:
    """The old and new documents of ``continual.data`` (two versions of a release), else of the raw datasets."""
    from kurate.models.checkpoint import checkpoint_info
    from kurate.models.data import DocText

    c, root, so = config.continual, config.root, config.storage_options
    if c.data is None:
        old = read_docs(root, c.old, c.old_languages, "train", c.eval_fraction, so)
        return ContinualInputs(
            old, [DocText(t, i) for i, t in read_docs(root, c.new, c.new_languages, "train", c.eval_fraction, so)],
            [t for _, t in read_docs(root, c.old, c.old_languages, "eval", c.eval_fraction, so)],
            [t for _, t in read_docs(root, c.new, c.new_languages, "eval", c.eval_fraction, so)],
            {"release": None, "version": None, "content_hash": None}, c.old, None)
    from kurate.release.publish import resolve

    d = c.data
    trained = (checkpoint_info(ckpt) or {}).get("data") or {}
    if trained.get("release") and (trained["release"], trained.get("version")) != (d.release, d.old_version):
        raise PreconditionError(f"the checkpoint {ckpt} was trained on release {trained['release']}@v{trained.get('version')}, "
                                f"continual.data names {d.release}@v{d.old_version} as its old data",
                                "continue the checkpoint of the old version's train run (train.name <name>-v<old>) "
                                "or set continual.data.old_version to the version it was trained on")
    store = ShardStore(root, so)
    new_version = d.new_version
    resumed = (checkpoint_info(out_dir) or {}).get("data") or {}
    if new_version == "latest" and resumed.get("release") == d.release:
        new_version = resumed["version"]  # a resumed run keeps the version it started on
    old_m, new_m = resolve(store, d.release, d.old_version), resolve(store, d.release, new_version)
    if new_m.counts["version"] <= d.old_version:
        raise PreconditionError(f"continual.data: the new version v{new_m.counts['version']} of {d.release!r} is not "
                                f"newer than the old one v{d.old_version}", "publish a new version first, or name one")
    old_train, old_validation, new_train, new_validation = (
        _release_docs(store, m, split) for m in (old_m, new_m) for split in ("train", "validation"))
    held = {i for i, *_ in old_train + old_validation} if d.new_only else set()

    def pick(docs, languages, skip=frozenset()):
        return [(i, t) for i, t, lang in docs if i not in skip and (not languages or lang in languages)]

    old, old_eval = pick(old_train, c.old_languages), pick(old_validation, c.old_languages)
    new, new_eval = pick(new_train, c.new_languages, held), pick(new_validation, c.new_languages, held)
    in_new = frozenset(i for i, *_ in new_train + new_validation)
    return ContinualInputs(old, [DocText(t, i) for i, t in new], [t for _, t in old_eval], [t for _, t in new_eval],
                           {"release": d.release, "version": new_m.counts["version"], "content_hash": new_m.config_hash},
                           f"{d.release}@v{d.old_version}", in_new)


def read_docs(root: str, dataset: str, languages: list[str], split: str, eval_fraction: float,
              storage_options: StorageOptions | None = None) -> list[tuple[str, str]]:
    """(id, text) of the committed shards of `dataset` in one split (held out by id hash, as in training)."""
    import pyarrow.parquet as pq

    from kurate.models.data import is_heldout

    store = ShardStore(root, storage_options)
    files = [o.path for m in store.current_manifests() for o in m.outputs if o.dataset == dataset and o.rows]
    if not files:
        raise PreconditionError(f"no committed {dataset!r} shards under {root}", "run the stage that makes them first")
    docs = []
    for path in files:
        with store.fs.open(store.url(path), "rb") as f:
            table = pq.read_table(f)
        names = table.column_names
        ids = table.column("id").to_pylist()
        texts = table.column("text").to_pylist()
        langs = table.column("language").to_pylist() if "language" in names else [None] * len(ids)
        for doc_id, text, lang in zip(ids, texts, langs):
            if text and (not languages or lang in languages) and is_heldout(doc_id, eval_fraction) == (split == "eval"):
                docs.append((doc_id, text))
    return docs


def _buffer(config: PipelineConfig, ckpt: str, model, codec, cfg, candidates: list[tuple[str, str]], source: str) -> list[dict]:
    """The committed `coretokens` unit of this run (built and committed first if missing)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from kurate.models.coretokens import build_buffer
    from kurate.storage.schemas import CORETOKENS

    c = config.continual
    with open(os.path.join(ckpt, "config.json")) as f:
        step = json.load(f).get("step")
    key = UnitKey("coretokens", f"{c.name}-{cfg.model}",
                  config_hash([os.path.abspath(ckpt), step, source, c.old_languages, c.candidates, c.budget,
                               c.token_fraction, c.selection, c.attribution, c.seed, c.eval_fraction,
                               c.replay, c.context_units, c.suppression]))
    built: list[dict] = []

    def write(unit) -> dict:
        built.extend(build_buffer(model, codec, candidates, c.budget, c.token_fraction, c.selection, c.attribution,
                                  window=cfg.seq_len + 1, seed=c.seed, context_units=c.context_units,
                                  replay=c.replay, suppression=c.suppression))
        for r in built:
            r.update(source=source, model=cfg.model, checkpoint=os.path.abspath(ckpt))
        unit.write("coretokens", pa.Table.from_pylist(built, schema=CORETOKENS))
        return {"candidates": len(candidates), "documents": len(built), "kept_units": sum(r["kept_units"] for r in built),
                "stored_bytes": sum(r["stored_bytes"] for r in built)}

    store = ShardStore(config.root, config.storage_options)
    run = store.run_unit(key, ["coretokens"], write)
    if run.skipped:
        out = next(o for o in run.manifest.outputs if o.dataset == "coretokens")
        with store.fs.open(store.url(out.path), "rb") as f:
            rows = pq.read_table(f).to_pylist()
        print(f"[continual] replay buffer already committed: {len(rows)} documents")
        return rows
    rows = built
    print(f"[continual] replay buffer: {len(rows)} of {len(candidates)} documents, "
          f"{sum(r['kept_units'] for r in rows)} kept units, {sum(r['stored_bytes'] for r in rows)} stored bytes "
          f"({c.selection} + {c.attribution}, replay {c.replay})")
    return rows


def _bpb(model, codec, texts: list[str], seq_len: int, batches: int) -> float | None:
    from kurate.models.continual import bits_per_byte

    if not texts:
        return None  # too little held-out text (tiny demo roots)
    try:
        return bits_per_byte(model, codec, texts, seq_len, max_batches=batches)
    except ValueError:
        return None


def _seen_ids(config: PipelineConfig, run: str) -> set[str]:
    """Document ids already committed to `trained_on` for this run (a resumed run records each once)."""
    from kurate.storage.catalog import Catalog

    return set(Catalog(config.root, config.storage_options).query(
        "select distinct id from trained_on where run = ?", [run]).column(0).to_pylist())  # an empty view on a new root


def run_continual(config: PipelineConfig) -> dict:
    """Buffer → continued training → old/new bits/byte (and the comparison); see the module docstring."""
    from kurate.models.continual import compare_replay, continue_training
    from kurate.models.coretokens import replay_texts
    from kurate.models.checkpoint import checkpoint_info, load_checkpoint

    c, root, so = config.continual, config.root, config.storage_options
    ckpt = checkpoint_of(config)
    if not os.path.exists(os.path.join(ckpt, "config.json")):
        raise PreconditionError(f"no checkpoint at {ckpt}", "run `kurate train` first or pass --checkpoint")
    model, codec, cfg = load_checkpoint(ckpt)
    step = (checkpoint_info(ckpt) or {}).get("step")
    if c.data is not None and step is not None and step < cfg.max_steps:
        # a release-triggered run must continue the finished training of the old version, not a
        # checkpoint it saved on the way (the run would count as done and never be redone)
        raise PreconditionError(f"the checkpoint at {ckpt} is at step {step} of {cfg.max_steps}: its training has not finished",
                                "wait for (or resume) that train run, then re-run this continual run")
    stage = run_stage(config, cfg.model)
    out_dir = stage.run_dir(root)
    inputs = continual_inputs(config, ckpt, out_dir)
    candidates = sorted(random.Random(c.seed).sample(inputs.old, min(c.candidates, len(inputs.old))))
    old_eval, new, new_eval = inputs.old_eval, inputs.new, inputs.new_eval
    if not new:
        where = (f"release {c.data.release}@v{inputs.lineage['version']} (beyond v{c.data.old_version})" if c.data
                 else f"{c.new!r}")
        raise PreconditionError(f"no new training documents in {where} under {root} (languages: {c.new_languages or 'all'})",
                                "publish a version with new documents, or widen continual.new_languages")
    rows = _buffer(config, ckpt, model, codec, cfg, candidates, inputs.old_ref)

    before = {"old": _bpb(model, codec, old_eval, cfg.seq_len, c.eval_batches),
              "new": _bpb(model, codec, new_eval, cfg.seq_len, c.eval_batches)}
    replay = []
    for row in rows:
        texts = replay_texts([row])
        if texts and (inputs.new_ids is None or row["id"] in inputs.new_ids):
            texts[0].doc_id = row["id"]  # a replayed document is trained on too (noted once, at its first step)
        replay += texts

    # per segment: metrics + trained_on committed before its checkpoint (flows/train.py); the last one waits for the
    # held-out figures in final-segment.json, which is written before the last checkpoint makes its steps final
    run, final_steps = f"{stage.name}-{cfg.model}", cfg.replace(**c.overrides.given()).max_steps
    held_path = Path(out_dir, "final-segment.json")
    segment, seen = Segment(), _seen_ids(config, run)

    def on_documents(step: int, ids: list[str]) -> None:
        for doc_id in ids:
            if doc_id not in seen:
                seen.add(doc_id)
                segment.documents.append((doc_id, step))

    def on_segment_end(step: int) -> None:
        if step >= final_steps and segment.metrics:
            held_path.write_text(json.dumps({"step": step, "metrics": segment.metrics, "documents": segment.documents},
                                            default=float))
        else:
            commit_segment(root, stage, segment, step, inputs.lineage, so)
        segment.clear()

    summary = continue_training(ckpt, new, replay, out_dir, c.overrides.given(), c.replay_share,
                                on_metrics=lambda m: segment.metrics.append(m), on_documents=on_documents,
                                on_segment_end=on_segment_end, lineage=inputs.lineage)
    model, codec, _ = load_checkpoint(os.path.join(out_dir, "checkpoint"))
    after = {"old": _bpb(model, codec, old_eval, cfg.seq_len, c.eval_batches),
             "new": _bpb(model, codec, new_eval, cfg.seq_len, c.eval_batches)}
    if held_path.exists():  # the held-out figures ride on the run's last metrics row
        held = json.loads(held_path.read_text())
        last = held["metrics"][-1]
        last.update({f"{k}_bits_per_byte_before": v for k, v in before.items()})
        last.update({f"{k}_bits_per_byte": v for k, v in after.items()})
        commit_segment(root, stage, Segment(held["metrics"], [tuple(d) for d in held["documents"]]), held["step"],
                       inputs.lineage, so)
        held_path.unlink()
    result = {"run": f"{stage.name}-{cfg.model}", "checkpoint": os.path.join(out_dir, "checkpoint"),
              "steps": summary["steps"], "buffer_docs": len(rows), "kept_units": sum(r["kept_units"] for r in rows),
              "stored_bytes": sum(r["stored_bytes"] or 0 for r in rows),
              "old_bpb_before": before["old"], "old_bpb_after": after["old"],
              "new_bpb_before": before["new"], "new_bpb_after": after["new"]}
    result.update({k: v for k, v in inputs.lineage.items() if v is not None})
    result.update(old_data=inputs.old_ref, new_data=(f"{c.data.release}@v{inputs.lineage['version']}" if c.data else c.new))
    if c.data is not None:
        result["old_version"] = c.data.old_version
    if c.compare:
        short = [name for name, bpb in (("old", before["old"]), ("new", before["new"])) if bpb is None]
        if short:
            raise PreconditionError(f"continual.compare: too little held-out {' and '.join(short)} text for one "
                                    f"sequence of {cfg.seq_len} units under {root}",
                                    "raise continual.eval_fraction or add documents")
        table = compare_replay(ckpt, candidates, [str(t) for t in new], old_eval, new_eval, out_dir + "-compare", budget=c.budget,
                               token_fraction=c.token_fraction, selection=c.selection, attribution=c.attribution,
                               multiples=c.multiples, overrides=c.overrides.given(), replay_share=c.replay_share,
                               eval_batches=c.eval_batches, suppression=c.suppression,
                               context_units=[c.context_units] if c.replay == "context" else [])
        result["comparison"] = table
    Path(out_dir + ".result.json").write_text(json.dumps(result, indent=1))
    return result


def publish(config: PipelineConfig, result: dict) -> None:
    """Prefect artifacts: the run's summary, and the comparison picture + table when there is one."""
    from kurate.models.continual import plot_comparison

    run = f"continual-{result['run']}"
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
    lines = [f"# continual {result['run']}", "",
             f"Replay buffer: {result['buffer_docs']} documents, {result['kept_units']} kept units, "
             f"{result['stored_bytes']} stored bytes ({config.continual.selection} + {config.continual.attribution}, "
             f"budget {config.continual.budget}, replay {config.continual.replay}).", "",
             "| held-out | bits/byte before | after |", "|---|---:|---:|",
             f"| old ({result.get('old_data', config.continual.old)}) | {fmt(result['old_bpb_before'])} | {fmt(result['old_bpb_after'])} |",
             f"| new ({result.get('new_data', config.continual.new)}) | {fmt(result['new_bpb_before'])} | {fmt(result['new_bpb_after'])} |"]
    if result.get("comparison"):
        table = [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in result["comparison"]]
        publish_table(config.root, f"{run}-compare-table", table, "Replay arms: old/new bits/byte and change vs the checkpoint")
        report = Report(name=f"{run}-compare", title=f"continual {result['run']}: replay arms compared",
                        png=figure_png(plot_comparison(result["comparison"])),
                        lines=[f"Each arm continues the same checkpoint on `{result.get('new_data', config.continual.new)}` with the same steps and seed; "
                               "Δ is held-out bits/byte after minus before (old domain up = forgetting)."],
                        tables=[Table("Arms", table)])
        published = publish_report(config.root, report, config.storage_options, description="Continual training: replay arms compared")
        lines += ["", f"Comparison: artifact `{published['key']}`, `{published['html']}`"]
    publish_markdown(config.root, run, "\n".join(lines), "Continual training summary")


@flow(name="continual-local", log_prints=True)
def continual_local(config: PipelineConfig) -> dict:
    """Build the replay buffer and continue the checkpoint in this process; publish the results."""
    result = run_continual(config)
    publish(config, result)
    print(f"[continual] {json.dumps({k: v for k, v in result.items() if k != 'comparison'})}")
    return result


def submission_id(config: PipelineConfig) -> str:
    root = config.root if "://" in config.root else os.path.abspath(config.root)
    return f"kurate-continual-{config.continual.name}-{config_hash([root, config.continual.model_dump(mode='json'), checkpoint_of(config)])}"


def _stop_job_on_cancel(flow, flow_run, state) -> None:
    config = PipelineConfig.model_validate(flow_run.parameters["config"])
    stop_jobs(job_client(config.continual.job_address, "continual.job_address"), submission_id(config), "continual")


@task(name="submit-continual-job")
def submit_continual_job(config: PipelineConfig) -> dict:
    spec = Path(config.train.run_dir(config.root)).parent / f"{config.continual.name}.job.json"
    return run_ray_job(job_client(config.continual.job_address, "continual.job_address"), submission_id(config),
                       config.model_dump_json(), spec, "kurate.flows.continual", "continual")


@flow(name="continual", log_prints=True, on_cancellation=[_stop_job_on_cancel])
def continual_flow(config: PipelineConfig) -> dict:
    """Run the continual job as a Ray Job, follow its logs, publish its results."""
    job = submit_continual_job(config)
    model = json.loads(Path(checkpoint_of(config), "config.json").read_text())["train"]["model"]
    result = json.loads(Path(run_stage(config, model).run_dir(config.root) + ".result.json").read_text())
    publish(config, result)
    return {**job, **{k: v for k, v in result.items() if k != "comparison"}}


def continual_stage(config: PipelineConfig) -> dict:
    """The pipeline's continual stage: a Ray Job when a job address is configured, else in-process."""
    if config.continual.job_address or os.environ.get("RAY_JOB_ADDRESS"):
        return continual_flow(config)
    return continual_local(config)


def main(spec: str) -> None:
    """Ray Job entry point: run the job in this process (no Prefect flow run of its own)."""
    config = load_config(None, [], json.loads(Path(spec).read_text()))
    result = run_continual(config)
    print(json.dumps({k: v for k, v in result.items() if k != "comparison"}, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1])
