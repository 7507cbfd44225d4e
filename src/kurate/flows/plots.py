"""The reports' pictures: plain functions from rows (as the catalog returns them) to a matplotlib figure.

No Prefect and no storage here: ``flows/artifacts.py`` publishes what these draw. Every function
draws only finite values and says so in the picture where a value is missing (too few documents),
so a plot is never an empty frame.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MAX_LANGUAGES = 8  # more lines or panels than this stop being readable


def pyplot():
    """matplotlib's pyplot on the Agg backend (flows run headless, in workers and Ray jobs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def funnel_figure(data: dict) -> "Figure":
    """Documents remaining after each curate stage, overall (bars) and per language (lines)."""
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5))
    stages = [r["stage"] for r in data["overall"]]
    remaining = [r["remaining"] for r in data["overall"]]
    bars = left.bar(range(len(stages)), remaining, color="#3b6ea5")
    left.bar_label(bars, [str(n) for n in remaining], fontsize=8)
    left.set_xticks(range(len(stages)), stages, rotation=35, ha="right")
    left.set_ylabel("documents remaining")
    left.set_title(f"Retention after each stage ({data['total']} records)")
    top = sorted(data["languages"].items(), key=lambda kv: -kv[1]["identified"])[:MAX_LANGUAGES]
    for language, info in top:
        rows = info["funnel"]
        right.plot([r["stage"] for r in rows], [r["remaining"] for r in rows], marker="o",
                   label=f"{language} ({info['identified']} identified, {info['curated']} curated)")
    right.set_title("Per language, from language ID on")
    right.tick_params(axis="x", rotation=35)
    right.set_ylabel("documents remaining")
    if top:
        right.legend(fontsize=8)
    else:
        right.text(0.5, 0.5, "no document reached language ID", ha="center", transform=right.transAxes)
    fig.tight_layout()
    return fig


def label_distribution_figure(rows: list[dict]) -> "Figure":
    """Per judge: how many valid labels took each score, one bar colour per language.

    ``rows``: ``judge, language, score (int), docs``.
    """
    plt = pyplot()
    judges = sorted({r["judge"] for r in rows})
    fig, axes = plt.subplots(1, max(len(judges), 1), figsize=(6.5 * max(len(judges), 1), 3.8), squeeze=False)
    for ax, judge in zip(axes[0], judges or [None]):
        mine = [r for r in rows if r["judge"] == judge]
        if not mine:
            ax.text(0.5, 0.5, "no valid labels", ha="center", transform=ax.transAxes)
            continue
        languages = sorted({r["language"] or "?" for r in mine})[:MAX_LANGUAGES]
        present = [r["score"] for r in mine]
        scores = list(range(min(present), max(present) + 1))  # the whole scale between, so gaps show as gaps
        width = 0.8 / len(languages)
        counts = {(r["language"] or "?", r["score"]): r["docs"] for r in mine}
        for i, language in enumerate(languages):
            ax.bar([s - 0.4 + (i + 0.5) * width for s in scores], [counts.get((language, s), 0) for s in scores], width,
                   label=f"{language} ({sum(counts.get((language, s), 0) for s in scores)})")
        ax.set_xticks(scores, [str(s) for s in scores])
        ax.set_xlabel("score")
        ax.set_ylabel("documents")
        ax.set_title(f"{judge}: valid labels per score")
        ax.legend(fontsize=8, title="language (labels)", title_fontsize=8)
    fig.tight_layout()
    return fig


def spearman_figure(cards: list[dict]) -> "Figure":
    """Held-out Spearman per language and overall, one bar per head; missing values are written as such."""
    plt = pyplot()
    languages = sorted({lang for c in cards for lang in c["evaluation"].get("per_language", {})})
    groups = languages + ["overall"]
    fig, ax = plt.subplots(figsize=(max(7, 1.6 * len(groups) * max(len(cards), 1) ** 0.5), 3.8))
    width = 0.8 / max(len(cards), 1)
    for i, card in enumerate(cards):
        per = {**card["evaluation"].get("per_language", {}), "overall": card["evaluation"]["overall"]}
        xs = [j - 0.4 + (i + 0.5) * width for j in range(len(groups))]
        values = [per.get(g, {}).get("spearman") for g in groups]
        bars = ax.bar([x for x, v in zip(xs, values) if finite(v)], [v for v in values if finite(v)], width, label=card["name"])
        ax.bar_label(bars, [f"{v:.2f}" for v in values if finite(v)], fontsize=7)
        for x, g, v in zip(xs, groups, values):
            if not finite(v):
                ax.text(x, 0.02, f"n/a (n={per.get(g, {}).get('n', 0)})", rotation=90, ha="center", va="bottom", fontsize=7)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylim(min(-0.1, ax.get_ylim()[0]), 1.05)
    ax.set_ylabel("held-out Spearman ρ")
    ax.set_title("Heads vs the judge's labels on held-out documents")
    if cards:
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def score_histogram_figure(values: dict[tuple[str, str], list[float]], thresholds: dict[tuple[str, str], float]) -> "Figure":
    """Score histograms: one row per head, one column per language, the keep threshold as a red line.

    ``values[(head, language)]``: the head's scores on that language's documents;
    ``thresholds[(head, language)]``: the threshold, with language ``"*"`` for a corpus-wide one.
    """
    plt = pyplot()
    heads = sorted({h for h, _ in values})
    counts = {}
    for (_, language), v in values.items():
        counts[language] = max(counts.get(language, 0), len(v))
    languages = sorted(counts, key=lambda lang: (-counts[lang], lang))[:MAX_LANGUAGES]
    fig, axes = plt.subplots(max(len(heads), 1), max(len(languages), 1), figsize=(3.2 * max(len(languages), 1) + 0.8,
                             2.4 * max(len(heads), 1) + 0.6), squeeze=False)
    for r, head in enumerate(heads):
        # one x range per head (its scores in every language and its thresholds), so columns compare
        span = [v for lang in languages for v in values.get((head, lang), []) if finite(v)]
        span += [t for (h, _), t in thresholds.items() if h == head and finite(t)]
        low, high = (min(span), max(span)) if span else (0.0, 1.0)
        pad = (high - low) * 0.05 or 0.5
        for c, language in enumerate(languages):
            ax = axes[r][c]
            ax.set_xlim(low - pad, high + pad)
            scores = [v for v in values.get((head, language), []) if finite(v)]
            if scores:
                ax.hist(scores, bins=min(30, max(5, len(scores) // 2)), range=(low, high), color="#3b6ea5")
            limit = thresholds.get((head, language), thresholds.get((head, "*")))
            if finite(limit):
                kept = sum(1 for v in scores if v >= limit)
                ax.axvline(limit, color="#c0392b", lw=1.5, label=f"threshold {limit:.2f}: {kept}/{len(scores)} kept")
                ax.legend(fontsize=6, loc="upper left")
            if r == 0:
                ax.set_title(f"{language} ({len(scores)} docs)", fontsize=9)
            if c == 0:
                ax.set_ylabel(head.replace("__", "\n"), fontsize=7)  # judge / embedder[-variant] on two lines
            ax.tick_params(labelsize=7)
    fig.suptitle("Head scores per language (red: keep threshold)", fontsize=10)
    fig.tight_layout()
    return fig


def training_figure(run: str, rows: list[dict]) -> "Figure":
    """Loss and bits/byte against the step: train (line) and held-out eval (points)."""
    plt = pyplot()
    fig, (loss_ax, bpb_ax) = plt.subplots(1, 2, figsize=(12, 3.8))
    for ax, train, evaluation, label in ((loss_ax, "loss", "eval_loss", "loss (nats/unit)"),
                                         (bpb_ax, "bits_per_byte", "eval_bits_per_byte", "bits/byte")):
        points = [(r["step"], r[train]) for r in rows if finite(r.get(train))]
        evals = [(r["step"], r[evaluation]) for r in rows if finite(r.get(evaluation))]
        if points:
            ax.plot(*zip(*points), label=f"train {label}")
        if evals:
            ax.plot(*zip(*evals), "o-", label=f"eval {label}")
        if not points and not evals:
            ax.text(0.5, 0.5, f"no finite {label} logged", ha="center", transform=ax.transAxes)
        else:
            ax.legend(fontsize=8)
        ax.set_xlabel("step")
        ax.set_ylabel(label)
    loss_ax.set_title(f"{run}: loss")
    bpb_ax.set_title(f"{run}: bits per byte")
    fig.tight_layout()
    return fig
