"""JQL heads: training is deterministic, early-stops, the balanced variant oversamples, and a head
recovers a planted score function of its inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from kurate.annotators.heads import HeadConfig, correlations, predict, train_head
from kurate.annotators.head_store import list_annotators, load_annotator, save_annotator


def _data(n=600, d=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    w = rng.normal(size=d)
    y = np.clip(np.round(2.5 + 3 * np.tanh(x @ w)), 0, 5).astype(np.float32)  # a planted 0–5 score
    return x, y


def test_head_recovers_a_planted_score():
    x, y = _data()
    trained = train_head(x[:500], y[:500], HeadConfig(width=64, lr=3e-3, batch_size=64, max_epochs=30))
    pred = predict({"h": trained.head}, x[500:])["h"]
    assert correlations(pred, y[500:])["overall"]["spearman"] > 0.9


def test_training_is_deterministic_and_stops_early():
    x, y = _data(n=300)
    config = HeadConfig(width=32, lr=1e-2, batch_size=32, max_epochs=40, patience=3, min_delta=0.05)
    a, b = train_head(x, y, config), train_head(x, y, config)
    assert a.history == b.history
    assert all(torch.equal(p, q) for p, q in zip(a.head.state_dict().values(), b.head.state_dict().values()))
    assert a.epochs < 40


def test_balanced_variant_trains_and_differs():
    x, y = _data(n=300)
    plain = train_head(x, y, HeadConfig(width=32, batch_size=32, max_epochs=5))
    balanced = train_head(x, y, HeadConfig(width=32, batch_size=32, max_epochs=5, balanced=True))
    assert plain.history != balanced.history


def test_per_language_correlations():
    pred = np.array([1, 2, 3, 4, 5, 1, 2, 3, 4, 5], dtype=float)
    target = np.array([1, 2, 3, 4, 5, 5, 4, 3, 2, 1], dtype=float)
    langs = np.array(["de"] * 5 + ["fr"] * 5)
    out = correlations(pred, target, langs)
    assert out["per_language"]["de"]["spearman"] == pytest.approx(1.0)
    assert out["per_language"]["fr"]["spearman"] == pytest.approx(-1.0)
    assert out["per_language"]["de"]["kendall"] == pytest.approx(1.0)


def test_registry_round_trip_without_pickle(tmp_path):
    x, y = _data(n=100)
    trained = train_head(x, y, HeadConfig(width=16, max_epochs=2))
    save_annotator(str(tmp_path), "edu__e5", trained.head, {"judge": "edu", "training_data_hash": "abc"})
    assert list_annotators(str(tmp_path)) == ["edu__e5"]
    loaded = load_annotator(str(tmp_path), "edu__e5")
    assert loaded.card["judge"] == "edu" and loaded.card["dim"] == 32
    assert np.allclose(predict({"a": loaded.head}, x)["a"], predict({"b": trained.head}, x)["b"])
    with pytest.raises(FileNotFoundError, match="no annotator"):
        load_annotator(str(tmp_path), "missing")


def _strict_json(text: str):
    """json.loads that rejects NaN/Infinity, as JSON parsers outside Python do."""
    def reject(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=reject)


def test_card_is_strict_json_when_a_metric_is_nan(tmp_path):
    x, _ = _data(n=80)
    constant = np.full(len(x), 3.0, dtype=np.float32)  # a judge that gives every document the same label
    trained = train_head(x, constant, HeadConfig(width=16, max_epochs=2))
    metrics = correlations(np.full(len(x), 3.0), constant, np.array(["de"] * 40 + ["fr"] * 40))
    assert np.isnan(metrics["overall"]["spearman"])  # undefined for a constant: the case to store
    card = {"judge": "flat", "metrics": metrics, "loss": np.float32("nan"), "epochs": np.int64(trained.epochs),
            "history": [float("inf"), 0.5]}
    save_annotator(str(tmp_path), "flat__e5", trained.head, card)
    parsed = _strict_json((tmp_path / "annotators" / "flat__e5" / "card.json").read_text())
    assert parsed["metrics"]["overall"]["spearman"] is None
    assert parsed["metrics"]["per_language"]["de"]["spearman"] is None
    assert parsed["loss"] is None and parsed["history"] == [None, 0.5] and parsed["epochs"] == trained.epochs
    assert load_annotator(str(tmp_path), "flat__e5").card["judge"] == "flat"
