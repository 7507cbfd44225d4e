"""Continual training: continue a checkpoint on new data mixed with a replay buffer, and compare
replay strategies on retention (old domain) and gain (new domain).

    summary = continue_training("runs/r/checkpoints/demo-hat", new_texts, replay, "runs/r/checkpoints/c",
                                {"max_steps": 100}, replay_share=0.25)
    bpb = bits_per_byte(model, codec, old_eval, seq_len=64)

The continued run is the ordinary trainer (`models/train.py`) with `init_from` = the checkpoint:
the checkpoint's TrainConfig with `overrides` (TrainConfig fields: lr, max_steps …;
models/train_config.py), the same codec and weights, a fresh optimizer and schedule, its own
checkpoint directory (so a killed continual job resumes exactly). Replay documents are `MaskedText`s: they count only their kept
units (core tokenset) or all of them (sample coresets).

`ReplayMix` interleaves the buffer (cycled in order) with the new documents so that replay_share
of the *loss-bearing units* — the units the model is trained to predict — come from the buffer,
whatever the buffer's size and however many of its documents' units are masked. A new document
bears all its units plus its BOS (the previous document's last unit predicts it); a replay
`MaskedText` bears only its kept units (a core-tokenset document ≈ token_fraction of its units, a
full-document coreset document all of them; the masked context before a kept unit is input only).
A core-tokenset row replays as one `KeptSpans` (replay "kept": [BOS] + its kept units at their
original positions, a BOS placeholder before each span) or, replay "context", one `MaskedText` per
segment: [BOS] + at most `context_units` context units + its kept span(s) (models/coretokens.py).
Rule: before each new document, buffer documents are emitted while the replayed loss-bearing units
R are below replay_share / (1 − replay_share) × the new loss-bearing units N including that
document, so at every point of the stream R / (R + N) is replay_share up to one buffer document.
Deterministic (no draws), so a resumed run re-iterates exactly the same stream. Since steps are
packed sequences of that stream, a step's expected share of replayed loss-bearing units is
replay_share in every arm. What differs between arms at equal token budget is which tokens the
buffer stores (its kept units); a masked arm also spends sequence positions on masked context
(bounded by context_units per span), so it sees fewer new units per step than a full-document arm
at the same share.

`compare_replay` continues the same checkpoint once per arm, with the same steps, seed and new
data, and reports each arm's old/new bits/byte: no replay; the core tokenset that stores only its
kept units (replay "kept", the default: only they are packed, at their original positions); optional
core tokensets that also replay masked context (one arm per `context_units` value, stored text up
to the last kept unit); and, matched by *stored* bytes, a random-sample and a selected
full-document coreset storing 1× and k× (`multiples`) the kept-units core tokenset's bytes.
"""

from __future__ import annotations

import contextlib
import os
from typing import Callable, Iterable, Sequence

import numpy as np

from kurate.models.coretokens import ATMAN_SUPPRESSION, build_buffer, encode_docs, replay_texts, score_documents
from kurate.models.checkpoint import load_checkpoint
from kurate.models.packing import MaskedText, Packer
from kurate.models.train import evaluate, train


def loss_units(codec) -> Callable[[str], int]:
    """text → its loss-bearing units in training: kept units of a MaskedText/KeptSpans, else all units + BOS."""

    def count(text: str) -> int:
        return sum(text.packed(codec)[1]) if isinstance(text, MaskedText) else len(codec.encode(text)) + 1

    return count


class ReplayMix:
    """Re-iterable stream: the new documents with buffer documents interleaved so that replay_share
    of the loss-bearing units (counted by `units`, e.g. loss_units(codec)) are replayed; see the
    module docstring."""

    def __init__(self, new: Iterable[str], buffer: Sequence[str], replay_share: float,
                 units: Callable[[str], int]):
        assert 0 <= replay_share < 1, "replay_share must be in [0, 1)"
        self.new, self.share, self.units = new, replay_share, units
        weighed = [(t, units(t)) for t in buffer] if replay_share > 0 else []
        self.buffer = [(t, w) for t, w in weighed if w > 0]  # a document with no kept unit replays nothing

    def __iter__(self):
        ratio = self.share / (1 - self.share)
        replayed, new, k = 0, 0, 0
        for text in self.new:
            new += self.units(text) if self.buffer else 0
            while self.buffer and replayed < ratio * new:
                doc, w = self.buffer[k % len(self.buffer)]
                yield doc
                replayed, k = replayed + w, k + 1
            yield text


def bits_per_byte(model, codec, texts: list[str], seq_len: int, batch_size: int = 8, max_batches: int = 16) -> float:
    """Held-out bits/byte of texts, packed like training (T-FREE: calibrated on the first batch).
    Little text (a demo root) evaluates on as many whole sequences as it holds, in smaller batches."""
    units = sum(len(codec.encode(t)) + 1 for t in texts)
    sequences = (units - 1) // seq_len  # consecutive sequences share one unit
    if sequences < 1:
        raise ValueError(f"not enough held-out text for one sequence of {seq_len} units ({units} units)")
    batch_size = min(batch_size, sequences)
    packer = Packer(list(texts), codec, seq_len, cycle=False)
    batches = []
    with contextlib.suppress(StopIteration):
        for _ in range(max_batches):
            batches.append(packer.next_batch(batch_size))
    device = next(model.parameters()).device
    res = evaluate(model, batches, device, contextlib.nullcontext, calibration=batches[0])
    model.eval()
    return res["eval_bits_per_byte"]


def continue_training(checkpoint: str, new_texts: Iterable[str], replay: Sequence[str], out_dir: str,
                      overrides: dict | None = None, replay_share: float = 0.25,
                      on_metrics: Callable[[dict], None] | None = None,
                      on_documents: Callable[[int, list[str]], None] | None = None,
                      on_segment_end: Callable[[int], None] | None = None, lineage: dict | None = None) -> dict:
    """Train from `checkpoint` on new_texts mixed with replay documents; resumes from out_dir.
    on_documents / on_segment_end / lineage: as in models/train.py `train` (documents that carry a
    `doc_id` — new DocTexts, tagged replay documents — are reported at the step that first draws them)."""
    _, codec, cfg = load_checkpoint(checkpoint)
    cfg = cfg.replace(**(overrides or {}), init_from=os.path.abspath(checkpoint))
    stream = ReplayMix(new_texts, replay, replay_share if replay else 0.0, loss_units(codec))
    return train(cfg, stream, None, out_dir, resume=True, on_metrics=on_metrics, on_documents=on_documents,
                 on_segment_end=on_segment_end, lineage=lineage)


def _evaluate(checkpoint: str, evals: dict[str, list[str]], seq_len: int, batches: int) -> dict[str, float]:
    model, codec, _ = load_checkpoint(checkpoint)
    return {name: bits_per_byte(model, codec, texts, seq_len, max_batches=batches) for name, texts in evals.items()}


def compare_replay(checkpoint: str, old_docs: list[tuple[str, str]], new_texts: Sequence[str],
                   old_eval: list[str], new_eval: list[str], out_dir: str, *, budget: float = 0.01,
                   token_fraction: float = 0.1, selection: str = "craig", attribution: str = "atman",
                   multiples: Sequence[int] = (2, 5, 10), overrides: dict | None = None,
                   replay_share: float = 0.25, eval_batches: int = 16,
                   context_units: Sequence[int | None] = (), suppression: float = ATMAN_SUPPRESSION,
                   seed: int = 0, log: Callable[[str], None] = print) -> list[dict]:
    """One continued run per replay arm, coresets matched by stored bytes; rows: arm, buffer
    docs/units/stored bytes, old/new bits/byte, Δ vs start (see the module docstring). seed: the
    random coresets' draw."""
    model, codec, cfg = load_checkpoint(checkpoint)
    window = cfg.seq_len + 1
    units = encode_docs(codec, [t for _, t in old_docs], window)
    scores = score_documents(model, codec, units)
    total = int(scores.units.sum())
    total_bytes = sum(codec.unit_bytes(x) for u in units for x in u)
    core = build_buffer(model, codec, old_docs, budget, token_fraction, selection, attribution, window=window,
                        units=units, scores=scores, replay="kept", suppression=suppression)
    stored = sum(r["stored_bytes"] for r in core)
    arms: list[tuple[str, list[dict]]] = [("no replay", []),
                                          (f"core tokenset ({selection} + {attribution}, kept units only)", core)]
    for c in context_units:
        ctx = "whole prefix" if c is None else f"context {c}"
        arms.append((f"core tokenset ({selection} + {attribution}, {ctx})",
                     build_buffer(model, codec, old_docs, budget, token_fraction, selection, attribution,
                                  window=window, units=units, scores=scores, context_units=c, replay="context",
                                  suppression=suppression)))
    for k in (1, *multiples):
        for method in ("random", selection):
            arms.append((f"{method} coreset {k}× storage",
                         build_buffer(model, codec, old_docs, budget, selection=method, attribution="full",
                                      window=window, units=units, scores=scores, byte_budget=k * stored,
                                      seed=seed)))
    evals = {"old": old_eval, "new": new_eval}
    start = _evaluate(checkpoint, evals, cfg.seq_len, eval_batches)
    log(f"[continual] start: old {start['old']:.4f} bits/byte, new {start['new']:.4f}; "
        f"{len(old_docs)} old candidates, {total} units, {total_bytes} bytes; core tokenset stores {stored} bytes")
    rows = []
    for i, (arm, rows_) in enumerate(arms):
        run_dir = os.path.join(out_dir, f"arm{i:02d}")
        replay = replay_texts(rows_)
        continue_training(checkpoint, new_texts, replay, run_dir, overrides, replay_share)
        bpb = _evaluate(os.path.join(run_dir, "checkpoint"), evals, cfg.seq_len, eval_batches)
        kept = sum(r["kept_units"] for r in rows_)
        arm_bytes = sum(r["stored_bytes"] for r in rows_)
        # sequence positions per replayed loss-bearing unit (context, placeholders) → replayed share of positions
        packed = [t.packed(codec)[1] for t in replay]
        per = sum(map(len, packed)) / max(1, sum(map(sum, packed)))
        positions = replay_share * per / (replay_share * per + 1 - replay_share) if rows_ else 0.0
        row = {"arm": arm, "buffer_docs": len(rows_), "kept_units": kept, "kept_share": kept / max(1, total),
               "stored_bytes": arm_bytes, "stored_share": arm_bytes / max(1, total_bytes),
               "storage_vs_core": arm_bytes / max(1, stored), "replay_positions": positions,
               "old_bpb": bpb["old"], "new_bpb": bpb["new"],
               "old_delta": bpb["old"] - start["old"], "new_delta": bpb["new"] - start["new"]}
        log(f"[continual] {arm}: {len(rows_)} docs, {kept} kept units, {arm_bytes} stored bytes; old {bpb['old']:.4f} "
            f"({row['old_delta']:+.4f}), new {bpb['new']:.4f} ({row['new_delta']:+.4f})")
        rows.append(row)
    rows.insert(0, {"arm": "before continuing", "buffer_docs": 0, "kept_units": 0, "kept_share": 0.0,
                    "stored_bytes": 0, "stored_share": 0.0, "storage_vs_core": 0.0, "replay_positions": 0.0,
                    "old_bpb": start["old"], "new_bpb": start["new"], "old_delta": 0.0, "new_delta": 0.0})
    return rows


def plot_comparison(rows: list[dict]):
    """Bar chart of old-domain forgetting and new-domain gain per arm (a matplotlib figure; the flow publishes it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = [r for r in rows if r["arm"] != "before continuing"]
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(arms) + 2.2))
    y = np.arange(len(arms))
    old = ax.barh(y - 0.2, [r["old_delta"] for r in arms], 0.4, label="old domain Δ bits/byte (> 0: forgetting)")
    new = ax.barh(y + 0.2, [r["new_delta"] for r in arms], 0.4, label="new domain Δ bits/byte (< 0: learnt)")
    ax.bar_label(old, [f"{r['old_delta']:+.3f}" for r in arms], fontsize=7, padding=2)
    ax.bar_label(new, [f"{r['new_delta']:+.3f}" for r in arms], fontsize=7, padding=2)
    ax.set_yticks(y, [r["arm"] for r in arms])
    ax.axvline(0, color="k", lw=0.5)
    ax.invert_yaxis()
    ax.set_xlabel("change in held-out bits/byte vs the checkpoint")
    ax.set_title("Continual training: replay arms")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=2, frameon=False)
    fig.tight_layout()
    return fig

