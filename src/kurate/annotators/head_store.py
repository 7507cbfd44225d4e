"""Distilled JQL heads stored under a root: ``<root>/annotators/<name>/{head.safetensors, card.json}``.

An *annotator* is one such head with its card; ``kurate score`` applies the stored ones by name.

A card says what the head was trained from (embedder, judge, prompt version, a hash of the
training labels) and how well it does (Spearman/Kendall per language). Heads are safetensors, so
loading never unpickles anything. The card is strict JSON: a metric that is undefined (Spearman of a
constant prediction is NaN) is written as null, since NaN/Infinity are not JSON and most parsers
outside Python reject them.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass

import numpy as np

from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from kurate.annotators.heads import RegressionHead
from kurate.storage import KURATE_VERSION
from kurate.storage.fs import StorageOptions, join
from kurate.storage.shards import ShardStore

FOLDER = "annotators"


@dataclass
class Annotator:
    name: str
    head: RegressionHead
    card: dict


def json_safe(value):
    """``value`` with every non-finite float (NaN, ±inf) as None and numpy scalars as Python numbers."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def save_annotator(root: str, name: str, head: RegressionHead, card: dict, storage_options: StorageOptions | None = None) -> str:
    """Write head + card (card last: an annotator without a card is not listed)."""
    store = ShardStore(root, storage_options)
    folder = join(store.path, FOLDER, name)
    store.fs.makedirs(folder, exist_ok=True)
    store.fs.pipe_file(join(folder, "head.safetensors"), save_safetensors({k: v.contiguous() for k, v in head.state_dict().items()}))
    full = {**card, "name": name, "kurate_version": KURATE_VERSION, "saved_at": time.time(),
            "dim": head.net[0].in_features, "width": head.net[0].out_features}
    text = json.dumps(json_safe(full), indent=1, sort_keys=True, default=str, allow_nan=False)
    store.fs.pipe_file(join(folder, "card.json"), text.encode())
    return store.url(FOLDER, name)


def list_annotators(root: str, storage_options: StorageOptions | None = None) -> list[str]:
    store = ShardStore(root, storage_options)
    store.fs.invalidate_cache()
    cards = store.fs.glob(join(store.path, FOLDER, "*", "card.json"))
    return sorted(c.rstrip("/").split("/")[-2] for c in cards)


def load_annotator(root: str, name: str, storage_options: StorageOptions | None = None) -> Annotator:
    store = ShardStore(root, storage_options)
    folder = join(store.path, FOLDER, name)
    try:
        card = json.loads(store.fs.cat_file(join(folder, "card.json")))
    except FileNotFoundError:
        raise FileNotFoundError(f"no annotator {name!r} under {root} (known: {list_annotators(root, storage_options)})") from None
    head = RegressionHead(card["dim"], card["width"])
    head.load_state_dict(load_safetensors(store.fs.cat_file(join(folder, "head.safetensors"))))
    head.eval()
    return Annotator(name, head, card)
