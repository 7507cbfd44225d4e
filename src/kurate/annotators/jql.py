"""JQL annotators as committed units: embed once, distill heads, score the corpus.

* ``embed_shard`` (per curated shard): document embeddings → ``embeddings`` (float16). Every later
  distill and score run reuses them.
* ``distill`` (per judge): judge labels ⋈ embeddings → a head per judge (and a balanced variant),
  evaluated per language on held-out labels (or cross-lingually), stored under the root (``head_store``).
* ``score_shard`` (per curated shard): all heads on the stored embeddings → ``head_scores``;
  ``commit_thresholds`` (once): each head's quantile over the scored corpus (optionally per
  language) → ``thresholds``; ``finalize_scores`` (per curated shard): one column per head + the
  keep decision → ``scores``.
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from kurate.errors import InputError, PreconditionError
from kurate.annotators.embedder import Embedder, EmbedderConfig
from kurate.annotators.heads import HeadConfig, TrainedHead, correlations, predict, spearman, split_indices, train_head
from kurate.annotators.head_store import list_annotators, load_annotator, save_annotator
from kurate.storage.catalog import Catalog
from kurate.storage.fs import StorageOptions
from kurate.storage.schemas import EMBEDDINGS, HEAD_SCORES, SCORES
from kurate.storage.shards import Manifest, ShardStore, UnitKey, UnitWriter, config_hash

STAGE_EMBED = "embed"
STAGE_SCORE_RAW = "score-raw"
STAGE_THRESHOLDS = "thresholds"
STAGE_SCORE = "score"
# Spearman needs three documents (heads.spearman); a language with fewer in the validation split is
# evaluated out of fold instead (see held_out_predictions).
MIN_EVAL_DOCS = 3
CV_FOLDS = 5


class DistillConfig(BaseModel):
    """Which judges get a head, how heads train, and how they are evaluated."""

    model_config = ConfigDict(extra="forbid")

    judges: list[str] = Field(default_factory=list, description="Judges to distill (empty: every judge with labels).")
    head: HeadConfig = Field(default_factory=HeadConfig)
    balanced_variant: bool = Field(True, description="Also train a head that oversamples high scores (name suffix -balanced).")
    train_languages: list[str] = Field(
        default_factory=list, description="Cross-lingual mode: train only on these languages, evaluate on the others."
    )
    target: Literal["expected", "score"] = Field("expected", description="Label column to regress on.")


class ScoreConfig(BaseModel):
    """Which heads score the corpus and what is kept."""

    model_config = ConfigDict(extra="forbid")

    annotators: list[str] = Field(default_factory=list, description="Registered annotators to apply (empty: all).")
    quantile: float = Field(0.6, gt=0, lt=1, description="Per-head threshold quantile over the scored corpus (JQL: 0.6 or 0.7).")
    per_language: bool = Field(False, description="Thresholds per language instead of corpus-wide.")
    keep: Literal["all", "any"] = Field("all", description="all: every head at or above its threshold; any: at least one.")


@functools.lru_cache(maxsize=2)
def _embedder(config_json: str) -> Embedder:
    return Embedder(EmbedderConfig.model_validate_json(config_json))


def embedder_for(config: EmbedderConfig) -> Embedder:
    """One loaded embedder per config per process (Ray workers keep it between tasks)."""
    return _embedder(config.model_dump_json())


def curated_units(store: ShardStore) -> list[Manifest]:
    return [m for m in store.current_manifests() if any(o.dataset == "curated" for o in m.outputs)]


def _output(store: ShardStore, manifest: Manifest, dataset: str) -> str:
    return store.url(next(o.path for o in manifest.outputs if o.dataset == dataset))


def _read(store: ShardStore, url: str, columns: list[str] | None = None) -> pa.Table:
    with store.fs.open(url, "rb") as handle:
        return pq.read_table(handle, columns=columns)


def embed_key(curated_unit: str, config: EmbedderConfig) -> UnitKey:
    return UnitKey(STAGE_EMBED, curated_unit, config_hash(config.model_dump(mode="json", exclude={"batch_size"})))


def embed_shard(curated_unit: str, root: str, config: EmbedderConfig, storage_options: StorageOptions | None = None) -> dict:
    """Embed one curated shard (exactly once per embedder config)."""
    store = ShardStore(root, storage_options)

    def write(unit: UnitWriter) -> dict:
        manifest = next(m for m in curated_units(store) if m.unit == curated_unit)
        docs = _read(store, _output(store, manifest, "curated"), ["id", "text"])
        embedder = embedder_for(config)
        vectors = embedder.embed(docs.column("text").to_pylist()) if docs.num_rows else np.zeros((0, 1), np.float32)
        unit.write("embeddings", pa.table(
            {"id": docs.column("id"), "embedder": pa.array([embedder.name] * docs.num_rows, pa.string()),
             "vector": pa.array(list(vectors.astype(np.float16)), type=pa.list_(pa.float16()))},
            schema=EMBEDDINGS,
        ))
        return {"docs": docs.num_rows, "dim": int(vectors.shape[1]), "embedder": embedder.name}

    run = store.run_unit(embed_key(curated_unit, config), ["embeddings"], write)
    return {"unit": curated_unit, "skipped": run.skipped, **run.counts}


def embedding_files(store: ShardStore, config: EmbedderConfig) -> list[str]:
    files = []
    for manifest in curated_units(store):
        committed = store.manifest(embed_key(manifest.unit, config))
        if committed is None:
            raise PreconditionError(f"curated shard {manifest.unit} has no committed embeddings for this embedder: run the embed step")
        files.append(_output(store, committed, "embeddings"))
    return files


def labelled_embeddings(root: str, judge: str, config: EmbedderConfig, target: str,
                        storage_options: StorageOptions | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(x, y, languages, ids) for a judge's valid labels that have stored embeddings."""
    catalog = Catalog(root, storage_options)
    con = catalog.connect()
    try:
        files = embedding_files(catalog.store, config)
        rows = con.execute(f"""
            select l.id, l.language, l.{target} as y, e.vector
            from labels l join read_parquet(?) e using (id)
            where l.judge = ? and l.valid and l.{target} is not null
            -- one row per document: a second label (another judge config) or embedding of the same id
            -- would be trained on twice, and a copy on each side of the split leaks held-out data
            qualify row_number() over (partition by l.id order by l.prompt_version desc, l.raw_output, y) = 1
            order by l.id""", [files, judge]).fetch_arrow_table()
    finally:
        con.close()
    x = np.stack(rows.column("vector").to_numpy(zero_copy_only=False)).astype(np.float32) if rows.num_rows else np.zeros((0, 0), np.float32)
    return x, rows.column("y").to_numpy().astype(np.float32), np.array(rows.column("language").to_pylist()), rows.column("id").to_pylist()


def distill(root: str, judge: str, embedder: EmbedderConfig, config: DistillConfig,
            storage_options: StorageOptions | None = None) -> list[dict]:
    """Train (and register) the head(s) for one judge; returns their cards."""
    x, y, languages, ids = labelled_embeddings(root, judge, embedder, config.target, storage_options)
    if len(y) < 10:
        raise PreconditionError(f"judge {judge!r} has {len(y)} labelled documents with embeddings; need at least 10 to train a head")
    labels_hash = hashlib.sha256(json.dumps([ids, y.round(4).tolist()]).encode()).hexdigest()[:16]
    con = Catalog(root, storage_options).connect()
    try:
        prompt_version = con.execute("select any_value(prompt_version) from labels where judge = ?", [judge]).fetchone()[0]
    finally:
        con.close()
    if config.train_languages:
        train_mask = np.isin(languages, config.train_languages)
        if not train_mask.any() or train_mask.all():
            raise PreconditionError(f"cross-lingual mode needs labels both in and outside {config.train_languages}")
    else:
        train_mask = np.ones(len(y), dtype=bool)
    cards = []
    variants = [("", config.head)] + ([("-balanced", config.head.model_copy(update={"balanced": True}))] if config.balanced_variant else [])
    for suffix, head_config in variants:
        trained = train_head(x[train_mask], y[train_mask], head_config)
        if config.train_languages:
            held_out = ~train_mask
            evaluation = {"mode": "cross-lingual", "train_languages": config.train_languages}
            pred = predict({"h": trained.head}, x[held_out])["h"]
        else:
            evaluation, held_out, pred = held_out_predictions(x, y, languages, trained, head_config)
        metrics = correlations(pred, y[held_out], languages[held_out])
        name = f"{judge}__{embedder_for(embedder).name}{suffix}"
        card = {
            "judge": judge, "prompt_version": prompt_version, "embedder": embedder.model_dump(mode="json"),
            "embedder_name": embedder_for(embedder).name, "training_labels": int(train_mask.sum()),
            "training_data_hash": labels_hash, "head": head_config.model_dump(mode="json"), "epochs": trained.epochs,
            "best_val_spearman": trained.best_val_spearman, "evaluation": {**evaluation, **metrics}, "history": trained.history,
        }
        save_annotator(root, name, trained.head, card, storage_options)
        cards.append({"name": name, **card})
    return cards


def held_out_predictions(x: np.ndarray, y: np.ndarray, languages: np.ndarray, trained: TrainedHead, head_config: HeadConfig
                         ) -> tuple[dict, np.ndarray, np.ndarray]:
    """Predictions on documents the head did not train on: (evaluation mode, mask of those documents, predictions).

    The head's own validation split when it holds ``MIN_EVAL_DOCS`` of every language that has that
    many labels; otherwise (a small sample: 12 demo labels leave 1–2 per language in a 10% split, where
    Spearman is undefined) every document is predicted by a head trained without its fold (k-fold).
    """
    _, val_idx = split_indices(len(y), head_config.val_fraction, head_config.seed)
    held_out = np.zeros(len(y), dtype=bool)
    held_out[val_idx] = True
    present, total = np.unique(languages, return_counts=True)
    short = [lang for lang, n in zip(present, total) if n >= MIN_EVAL_DOCS and (languages[held_out] == lang).sum() < MIN_EVAL_DOCS]
    if not short or len(y) < 2 * CV_FOLDS:
        return {"mode": "held-out validation split"}, held_out, predict({"h": trained.head}, x[held_out])["h"]
    order = np.random.default_rng(head_config.seed).permutation(len(y))
    pred = np.empty(len(y), dtype=np.float32)
    for fold in np.array_split(order, CV_FOLDS):
        rest = np.setdiff1d(order, fold)
        pred[fold] = predict({"h": train_head(x[rest], y[rest], head_config).head}, x[fold])["h"]
    mode = f"{CV_FOLDS}-fold cross-validation (validation split under {MIN_EVAL_DOCS} documents for {', '.join(map(str, short))})"
    return {"mode": mode}, np.ones(len(y), dtype=bool), pred


def head_agreement(root: str, names: list[str], embedder: EmbedderConfig, storage_options: StorageOptions | None = None,
                   limit: int = 20000) -> list[dict]:
    """Spearman between every pair of heads on (up to ``limit``) stored embeddings."""
    store = ShardStore(root, storage_options)
    vectors = []
    for path in embedding_files(store, embedder):
        vectors.extend(_read(store, path, ["vector"]).column("vector").to_numpy(zero_copy_only=False))
        if len(vectors) >= limit:
            break
    if len(names) < 2 or not vectors:
        return []
    x = np.stack(vectors[:limit]).astype(np.float32)
    preds = predict({n: load_annotator(root, n, storage_options).head for n in names}, x)
    return [{"a": a, "b": b, "spearman": spearman(preds[a], preds[b])} for i, a in enumerate(names) for b in names[i + 1:]]


def score_hash(names: list[str], root: str, storage_options: StorageOptions | None) -> str:
    cards = [load_annotator(root, n, storage_options).card for n in names]
    return config_hash([[c["name"], c["saved_at"], c["training_data_hash"]] for c in cards])


def score_shard(curated_unit: str, root: str, names: list[str], embedder: EmbedderConfig, heads_hash: str,
                storage_options: StorageOptions | None = None) -> dict:
    """All heads on one curated shard's stored embeddings → ``head_scores`` (long format)."""
    store = ShardStore(root, storage_options)

    def write(unit: UnitWriter) -> dict:
        curated = next(m for m in curated_units(store) if m.unit == curated_unit)
        languages = dict(zip(*[c.to_pylist() for c in _read(store, _output(store, curated, "curated"), ["id", "language"]).columns]))
        embedded = store.manifest(embed_key(curated_unit, embedder))
        table = _read(store, _output(store, embedded, "embeddings"), ["id", "vector"])
        ids = table.column("id").to_pylist()
        x = np.stack(table.column("vector").to_numpy(zero_copy_only=False)).astype(np.float32) if ids else np.zeros((0, 1), np.float32)
        heads = {n: load_annotator(root, n, storage_options).head for n in names}
        scores = predict(heads, x) if ids else {n: np.zeros(0, np.float32) for n in names}
        unit.write("head_scores", pa.table({
            "id": pa.array([i for _ in names for i in ids], pa.string()),
            "language": pa.array([languages.get(i) for _ in names for i in ids], pa.string()),
            "annotator": pa.array([n for n in names for _ in ids], pa.string()),
            "score": pa.array(np.concatenate([scores[n] for n in names]) if ids else [], pa.float32()),
        }, schema=HEAD_SCORES))
        return {"docs": len(ids), "annotators": names}

    run = store.run_unit(UnitKey(STAGE_SCORE_RAW, curated_unit, heads_hash), ["head_scores"], write)
    return {"unit": curated_unit, "skipped": run.skipped, **run.counts}


def commit_thresholds(root: str, raw_units: list[UnitKey], config: ScoreConfig, storage_options: StorageOptions | None = None) -> UnitKey:
    """Each head's ``quantile`` over the scored corpus (per language if configured) → ``thresholds``."""
    store = ShardStore(root, storage_options)
    files = [_output(store, store.manifest(k), "head_scores") for k in raw_units]
    version = config_hash([sorted(k.name for k in raw_units), config.model_dump(mode="json")])
    key = UnitKey(STAGE_THRESHOLDS, f"scores-{version}", version)

    def write(unit: UnitWriter) -> dict:
        con = Catalog(root, storage_options).connect()
        try:
            group = "language" if config.per_language else "'*'"
            table = con.execute(f"""
                select annotator, {group} as language, ?::double as quantile,
                       quantile_cont(score, ?)::double as value, ?::varchar as version
                from read_parquet(?)
                group by all order by all""", [config.quantile, config.quantile, version, files]).fetch_arrow_table()
        finally:
            con.close()
        unit.write("thresholds", table)
        return {"thresholds": table.num_rows, "version": version}

    store.run_unit(key, ["thresholds"], write)
    return key


def finalize_scores(curated_unit: str, root: str, names: list[str], heads_hash: str, thresholds_key: UnitKey,
                    config: ScoreConfig, storage_options: StorageOptions | None = None) -> dict:
    """One column per head + ``kept`` for one curated shard → ``scores``."""
    store = ShardStore(root, storage_options)
    key = UnitKey(STAGE_SCORE, curated_unit, config_hash([heads_hash, thresholds_key.name]))
    schema = pa.schema(list(SCORES) + [pa.field(n, pa.float32()) for n in names])

    def write(unit: UnitWriter) -> dict:
        thresholds = _read(store, _output(store, store.manifest(thresholds_key), "thresholds")).to_pylist()
        limit = {(t["annotator"], t["language"]): t["value"] for t in thresholds}
        raw = _read(store, _output(store, store.manifest(UnitKey(STAGE_SCORE_RAW, curated_unit, heads_hash)), "head_scores"))
        wide: dict[str, dict] = {}
        for row in raw.to_pylist():
            doc = wide.setdefault(row["id"], {"id": row["id"], "language": row["language"]})
            doc[row["annotator"]] = row["score"]
        rows = []
        for doc in wide.values():
            above = [doc[n] >= limit.get((n, doc["language"] if config.per_language else "*"), float("inf")) for n in names]
            rows.append({**doc, "kept": all(above) if config.keep == "all" else any(above), "thresholds_version": thresholds_key.config_hash})
        unit.write("scores", pa.Table.from_pylist(rows, schema=schema))
        return {"docs": len(rows), "kept": sum(r["kept"] for r in rows)}

    run = store.run_unit(key, ["scores"], write, schemas={"scores": schema})
    return {"unit": curated_unit, "skipped": run.skipped, **run.counts}


def registered(root: str, wanted: list[str], storage_options: StorageOptions | None = None) -> list[str]:
    known = list_annotators(root, storage_options)
    missing = sorted(set(wanted) - set(known))
    if missing:
        raise InputError(f"unknown annotators {missing}; registered under {root}: {known}")
    names = wanted or known
    if not names:
        raise PreconditionError(f"no annotators registered under {root}: run `kurate distill` first")
    return sorted(names)
