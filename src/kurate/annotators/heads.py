"""JQL regression heads: a small MLP per judge on frozen document embeddings.

Linear(d, 1000) → ReLU → Linear(1000, 1), AdamW, cosine learning rate, 10% validation split, early
stopping when validation Spearman gains less than ``min_delta`` over ``patience`` epochs (JQL:
lr 5e-4, batch 1024, ≤ 20 epochs, 1e-3 over 5 epochs). The balanced variant oversamples rare
score levels (in practice the high scores 4–5) so every rounded score weighs the same. Training is
seeded and deterministic on CPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from scipy import stats


class HeadConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    width: int = Field(1000, ge=1, description="Hidden width of the head (JQL: 1000).")
    lr: float = Field(5e-4, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    batch_size: int = Field(1024, ge=1)
    max_epochs: int = Field(20, ge=1)
    val_fraction: float = Field(0.1, gt=0, lt=1)
    patience: int = Field(5, ge=1, description="Epochs without a validation Spearman gain of min_delta before stopping.")
    min_delta: float = Field(1e-3, ge=0)
    balanced: bool = Field(False, description="Oversample rare (high) score levels.")
    seed: int = 0


class RegressionHead(torch.nn.Module):
    def __init__(self, dim: int, width: int):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(dim, width), torch.nn.ReLU(), torch.nn.Linear(width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(stats.spearmanr(a, b).statistic)


def kendall(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(stats.kendalltau(a, b).statistic)


def correlations(pred: np.ndarray, target: np.ndarray, languages: np.ndarray | None = None) -> dict:
    """Spearman and Kendall overall and per language (with the number of documents)."""
    out = {"overall": {"n": int(len(pred)), "spearman": spearman(pred, target), "kendall": kendall(pred, target)}}
    if languages is not None:
        out["per_language"] = {
            str(lang): {"n": int(mask.sum()), "spearman": spearman(pred[mask], target[mask]), "kendall": kendall(pred[mask], target[mask])}
            for lang in sorted(set(languages.tolist()))
            for mask in [languages == lang]
        }
    return out


@dataclass
class TrainedHead:
    head: RegressionHead
    epochs: int
    best_val_spearman: float
    history: list[dict]


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    # at least 3 held-out documents once there are 10: Spearman of fewer points is undefined or noise
    n_val = max(3, int(round(n * val_fraction))) if n >= 10 else max(1, n // 5)
    return order[n_val:], order[:n_val]


def train_head(x: np.ndarray, y: np.ndarray, config: HeadConfig) -> TrainedHead:
    """Fit a head on embeddings ``x`` (n, d) and judge scores ``y`` (n,), deterministically."""
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    train_idx, val_idx = split_indices(len(x), config.val_fraction, config.seed)
    xt, yt = torch.from_numpy(x[train_idx]).float(), torch.from_numpy(y[train_idx]).float()
    xv, yv = torch.from_numpy(x[val_idx]).float(), y[val_idx]
    head = RegressionHead(x.shape[1], config.width)
    optimizer = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = max(1, math.ceil(len(train_idx) / config.batch_size))
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps_per_epoch * config.max_epochs)
    if config.balanced:
        levels = np.round(y[train_idx]).astype(int)
        freq = {lvl: (levels == lvl).sum() for lvl in set(levels.tolist())}
        weights = torch.tensor([1.0 / freq[lvl] for lvl in levels], dtype=torch.double)
    best, best_state, history, since_gain = -math.inf, None, [], 0
    reference = -math.inf
    for epoch in range(config.max_epochs):
        head.train()
        if config.balanced:
            order = torch.multinomial(weights, len(train_idx), replacement=True, generator=generator)
        else:
            order = torch.randperm(len(train_idx), generator=generator)
        for start in range(0, len(order), config.batch_size):
            batch = order[start : start + config.batch_size]
            loss = torch.nn.functional.mse_loss(head(xt[batch]), yt[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
        head.eval()
        with torch.no_grad():
            val_pred = head(xv).numpy()
        rho = spearman(val_pred, yv)
        rho = -1.0 if math.isnan(rho) else rho
        history.append({"epoch": epoch + 1, "train_loss": float(loss.detach()), "val_spearman": rho})
        if rho > best:
            best, best_state = rho, {k: v.clone() for k, v in head.state_dict().items()}
        # JQL's rule: stop when validation Spearman gained less than min_delta over `patience` epochs
        if rho >= reference + config.min_delta:
            reference, since_gain = rho, 0
        else:
            since_gain += 1
            if since_gain >= config.patience:
                break
    head.load_state_dict(best_state)
    head.eval()
    return TrainedHead(head, len(history), best, history)


def predict(heads: dict[str, RegressionHead], x: np.ndarray, batch_size: int = 8192) -> dict[str, np.ndarray]:
    """All heads on the same embeddings (one pass over the batch per head)."""
    out = {name: np.empty(len(x), dtype=np.float32) for name in heads}
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            chunk = torch.from_numpy(np.ascontiguousarray(x[start : start + batch_size], dtype=np.float32))
            for name, head in heads.items():
                out[name][start : start + len(chunk)] = head(chunk).numpy()
    return out
