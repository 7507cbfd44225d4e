"""The dataset card of a release version: ``README.md`` with Hugging Face YAML front matter
(configs, languages, license, size) and the statistics a data team reads first — documents and
words per language and source, the retention funnel from the crawl to the release, and JQL score
histograms (``images/scores.png``)."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.compute as pc
import yaml


def size_category(n: int) -> str:
    for bound, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                         (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M")):
        if n < bound:
            return label
    return "n>100M"


def breakdown(table: pa.Table) -> list[dict]:
    """Documents and words per (language, source, split)."""
    if table.num_rows == 0:
        return []
    grouped = table.group_by(["language", "source", "split"]).aggregate([("id", "count"), ("words", "sum")])
    rows = [{"language": r["language"] or "und", "source": r["source"], "split": r["split"], "documents": r["id_count"],
             "words": r["words_sum"]} for r in grouped.to_pylist()]
    return sorted(rows, key=lambda r: (r["language"], r["source"], r["split"]))


def score_histogram_png(table: pa.Table, scored: pa.Table | None = None) -> bytes | None:
    """One histogram per JQL head: every scored curated document (grey, ``scored``: id + one column per
    head) and the released ones (blue, ``table``'s ``score_<head>`` columns); None without scores."""
    heads = sorted(c.removeprefix("score_") for c in table.column_names if c.startswith("score_"))
    released = {h: [v for v in table.column("score_" + h).to_pylist() if v is not None] for h in heads}
    everything = {h: [v for v in scored.column(h).to_pylist() if v is not None] if scored is not None and h in scored.column_names
                  else [] for h in heads}
    heads = [h for h in heads if released[h] or everything[h]]
    if not heads:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(heads), figsize=(4.5 * len(heads), 3), squeeze=False)
    for ax, head in zip(axes[0], heads):
        values = everything[head] + released[head]
        bins = 20 if len(set(values)) > 1 else 1
        edges = [min(values) + (max(values) - min(values)) * i / bins for i in range(bins + 1)] if bins > 1 else bins
        if everything[head]:
            ax.hist(everything[head], bins=edges, color="#bbbbbb", label="scored (curated)")
        if released[head]:
            ax.hist(released[head], bins=edges, color="#4477aa", label="in the release")
        ax.set_title(head, fontsize=8)
        ax.set_xlabel("head score")
        ax.set_ylabel("documents")
        ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def render_card(name: str, version: int, table: pa.Table, funnel: list[dict], files: dict[str, list[str]],
                license: str, license_note: str, content_hash: str, has_histogram: bool) -> str:
    languages = sorted({lang for lang in table.column("language").to_pylist() if lang})
    front = {
        "pretty_name": f"kurate release {name} v{version}",
        "license": license,
        "language": languages,
        "size_categories": [size_category(table.num_rows)],
        "task_categories": ["text-generation"],
        "configs": [{"config_name": "default",
                     "data_files": [{"split": split, "path": f"data/{split}-*"} for split in files]}],
    }
    words = int(pc.sum(table.column("words")).as_py() or 0) if table.num_rows else 0
    lines = ["---", yaml.safe_dump(front, sort_keys=False).rstrip(), "---", "",
             f"# {name} v{version}", "",
             f"{table.num_rows} documents, {words} words, languages: {', '.join(languages) or 'none'}. "
             f"Content hash `{content_hash}` (same config and inputs: same version).", "",
             "```python", "from datasets import load_dataset",
             f'ds = load_dataset("parquet", data_dir="releases/{name}/v{version}/data")', "```", "",
             "## License", "", license_note, "",
             "## Documents and words", "", "| language | source | split | documents | words |", "|---|---|---|---:|---:|"]
    lines += [f"| {r['language']} | {r['source']} | {r['split']} | {r['documents']} | {r['words']} |" for r in breakdown(table)]
    lines += ["", "## Retention funnel", "", "| step | documents |", "|---|---:|"]
    lines += [f"| {r['step']} | {r['documents']} |" for r in funnel]
    if has_histogram:
        lines += ["", "## JQL scores of the released curated documents", "", "![scores](images/scores.png)"]
    lines += ["", "## Files", ""] + [f"- `{path}`" for split in files for path in files[split]]
    return "\n".join(lines) + "\n"
