"""JQL's headline effect, small: do regression heads on frozen embeddings reproduce their judges?

    .venv/bin/python bench/jql_agreement.py [--quick] [--second prompt|model] [--seeds 3] [--docs 240]

JQL (arXiv 2505.22232) distils LLM judges into regression heads on a multilingual embedder and
reports heads about as good as their teachers, with Spearman > 0.87 between heads. Here, on
../shared/data (German prose documents of 8 paragraphs, and the sample's pages in de/en/fr,
extracted and language-identified by kurate):

* judge A: the embedded judge (SmolLM2-135M-Instruct) with the FineWeb-Edu prompt, logits mode;
* judge B (``--second``): ``prompt`` — the same model with the GermanWeb quality prompt (three
  criteria, minimum); ``model`` — embedded gemma-3-270m (base) with the FineWeb-Edu prompt;
* one head per judge (JQL's Linear(d,1000)-ReLU-Linear(1000,1), JQL's training rule) on the
  embedded multilingual-e5-small embeddings, trained on 70% of the documents and evaluated on the
  other 30%, for each of ``--seeds`` splits.

Printed per language (mean ± spread over seeds, test documents only): head-vs-own-judge Spearman
next to judge-vs-judge Spearman (the named baseline: how much two judges agree with each other),
their ratio, head-vs-head Spearman, and the overlap of the heads' 0.6-quantile keep sets (the top
40% by each head; by chance 40%, the baseline measured here with shuffled scores). The judges are
tiny, so their labels are noisy: this checks the machinery and the direction of the effect, not
JQL's numbers. The machine is shared; figures were measured with other work running. Not run by
pytest.
"""

from __future__ import annotations

import argparse
import gzip
import random
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO / "src"))

from kurate.annotators.embedder import Embedder, EmbedderConfig  # noqa: E402
from kurate.annotators.heads import HeadConfig, predict, spearman, train_head  # noqa: E402
from kurate.annotators.judge import Judge, JudgeConfig  # noqa: E402

KEEP_QUANTILE = 0.6


def documents(n_prose: int, n_web: int) -> list[dict]:
    """German prose documents plus the sample's de/en/fr pages (seeded choice)."""
    from kurate.tasks.ingest import IngestConfig, ingest_records
    from kurate.tasks.langid import default_identifier

    lines = [line.strip() for line in gzip.open(DATA / "german-prose.txt.gz", "rt", encoding="utf-8") if line.strip()]
    rng = random.Random(0)
    starts = rng.sample(range(0, len(lines) - 8, 8), n_prose)
    docs = [{"id": f"prose-{s}", "language": "de", "text": "\n".join(lines[s : s + 8])} for s in starts]
    pages = [o.curated for o in ingest_records(str(DATA / "web-sample.warc.gz"), IngestConfig()) if o.curated]
    languages = default_identifier().predict([p["text"] for p in pages])
    web = [{"id": p["id"], "language": lang, "text": p["text"]} for p, (lang, _) in zip(pages, languages) if lang in ("de", "en", "fr")]
    rng.shuffle(web)
    return docs + web[:n_web]


def judge_scores(config: JudgeConfig, docs: list[dict]) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    rows = Judge(config).label(docs)
    scores = np.array([r["expected"] if r["valid"] else np.nan for r in rows], dtype=np.float64)
    return scores, time.perf_counter() - start


def keep_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Share of documents kept by head a (above its 0.6 quantile) that head b keeps too."""
    keep_a, keep_b = a > np.quantile(a, KEEP_QUANTILE), b > np.quantile(b, KEEP_QUANTILE)
    return float((keep_a & keep_b).sum() / max(1, keep_a.sum()))


def fmt(values: list[float]) -> str:
    arr = np.array([v for v in values if not np.isnan(v)])
    if not len(arr):
        return "     n/a     "
    return f"{arr.mean():5.2f} ± {(arr.max() - arr.min()) / 2:4.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="90 prose documents + 40 pages, 256-token documents")
    parser.add_argument("--second", choices=["prompt", "model"], default="prompt")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--docs", type=int, default=240, help="German prose documents (plus up to 100 pages)")
    args = parser.parse_args()
    n_prose, n_web, doc_tokens = (90, 40, 256) if args.quick else (args.docs, 100, 512)

    docs = documents(n_prose, n_web)
    langs = np.array([d["language"] for d in docs])
    print(f"{len(docs)} documents: " + ", ".join(f"{lang} {int((langs == lang).sum())}" for lang in sorted(set(langs))))
    judge_a = JudgeConfig(name="edu", prompt="fineweb_edu", mode="logits", max_doc_tokens=doc_tokens)
    if args.second == "prompt":
        judge_b = JudgeConfig(name="quality", prompt="germanweb_quality", mode="logits", max_doc_tokens=doc_tokens)
    else:
        judge_b = JudgeConfig(name="gemma", model="embedded:gemma-3-270m", prompt="fineweb_edu", mode="logits",
                              max_doc_tokens=doc_tokens)
    y_a, t_a = judge_scores(judge_a, docs)
    y_b, t_b = judge_scores(judge_b, docs)
    print(f"judge A {judge_a.model} / {judge_a.prompt}: {t_a:.0f} s; judge B {judge_b.model} / {judge_b.prompt}: {t_b:.0f} s")
    start = time.perf_counter()
    x = Embedder(EmbedderConfig()).embed([d["text"] for d in docs])
    print(f"embedded {len(docs)} documents with {EmbedderConfig().model} in {time.perf_counter() - start:.0f} s")

    valid = ~(np.isnan(y_a) | np.isnan(y_b))
    x, y_a, y_b, langs = x[valid], y_a[valid], y_b[valid], langs[valid]
    groups = ["all", *sorted(set(langs.tolist()))]
    metrics: dict[str, dict[str, list[float]]] = {g: {} for g in groups}
    for seed in range(args.seeds):
        order = np.random.default_rng(seed).permutation(len(x))
        n_test = int(round(0.3 * len(x)))
        test, train = order[:n_test], order[n_test:]
        heads = {}
        for name, y in (("a", y_a), ("b", y_b)):
            heads[name] = train_head(x[train], y[train], HeadConfig(seed=seed, batch_size=64, max_epochs=20)).head
        pred = predict(heads, x[test])
        shuffled = np.random.default_rng(100 + seed).permutation(pred["b"])
        for group in groups:
            mask = np.ones(len(test), bool) if group == "all" else langs[test] == group
            m = metrics[group]
            ja, jb, ha, hb = y_a[test][mask], y_b[test][mask], pred["a"][mask], pred["b"][mask]
            for key, value in (
                ("head A vs judge A", spearman(ha, ja)), ("head B vs judge B", spearman(hb, jb)),
                ("judge A vs judge B", spearman(ja, jb)), ("head A vs head B", spearman(ha, hb)),
                ("keep overlap A/B", keep_overlap(ha, hb) if len(ha) >= 5 else np.nan),
                ("keep overlap, shuffled", keep_overlap(ha, shuffled[mask]) if len(ha) >= 5 else np.nan),
            ):
                m.setdefault(key, []).append(value)
            m.setdefault("n test", []).append(float(mask.sum()))

    keys = ["n test", "head A vs judge A", "head B vs judge B", "judge A vs judge B", "head A vs head B",
            "keep overlap A/B", "keep overlap, shuffled"]
    print(f"\n{'':24}" + "".join(f"{g:>15}" for g in groups))
    for key in keys:
        print(f"{key:<24}" + "".join(f"{fmt(metrics[g][key]):>15}" for g in groups))
    for group in groups:
        m = metrics[group]
        ratios = [a / b for a, b in zip(m["head A vs judge A"], m["judge A vs judge B"]) if b and not np.isnan(a / b)]
        print(f"ratio head A–judge A / judge A–judge B ({group}): {fmt(ratios)}")


if __name__ == "__main__":
    main()
