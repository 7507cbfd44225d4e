"""Does filtering pay off? Two releases of the same curated German at equal size — heuristics only, and
heuristics + the JQL keep rule — the same tiny model trained on each for the same number of tokens,
held-out bits/byte on clean German prose and on German web pages.

    .venv/bin/python bench/release_quality.py [--quick] [--seeds 3] [--prose-docs 1200] [--steps 400]

Data (../shared/data): German prose documents (8 consecutive lines each) and the real web sample's
pages. Held out before anything runs, and never in either release (checked by text hash at the end):
``--eval-prose`` prose documents and a third of the sample's German pages (identified by kurate's
extractor and language ID). The rest goes into two WARC files (the prose as one HTML page per
document) that the real kurate stages process on a temporary root, in-process:

1. the pipeline flow: curate (extraction, language ID keeping German, the heuristic filters, exact +
   fuzzy dedup) → annotate (the embedded judge, SmolLM2-135M-Instruct with the FineWeb-Edu prompt,
   labels a sample of ``--judge-docs`` curated documents) → distill (JQL heads on the embedded
   multilingual-e5-small) → score (every curated document; JQL's rule keeps those above every
   head's 0.6 quantile);
2. the release flow twice: ``jql`` = curated German kept by the JQL rule; ``heuristics`` = curated
   German regardless of scores, with a word quota equal to ``jql``'s word count (seeded order), so
   both releases hold the same number of words;
3. per seed and release, the train stage's in-process trainer (flows/train.py ``run_training``) on
   the release (train.data) with the same model, steps, batch and sequence length, so both see the
   same number of tokens; then held-out bits/byte of the final checkpoint on both evaluation sets.

The judge is tiny (its labels are weak: bench/jql_agreement.py) and the corpora are small, so this
measures what the pipeline's filter does to a small model here, not GermanWeb's result. Printed:
each release's size, the bits/byte per evaluation set as mean ± spread (max − min)/2 over seeds, and
the paired difference (jql − heuristics; negative: the filtered release is better). Not run by pytest.
"""

from __future__ import annotations

import argparse
import copy
import gzip
import hashlib
import json
import os
import random
import sys
import tempfile
import time
import zlib
from html import escape
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO / "src"))


def text_key(text: str) -> str:
    return hashlib.blake2b(" ".join(text.split()).encode(), digest_size=16).hexdigest()


def prose_documents(n_train: int, n_eval: int, seed: int) -> tuple[list[str], list[str]]:
    """Disjoint seeded draws of 8-line German prose documents."""
    lines = [line.strip() for line in gzip.open(DATA / "german-prose.txt.gz", "rt", encoding="utf-8") if line.strip()]
    starts = random.Random(seed).sample(range(0, len(lines) - 8, 8), n_train + n_eval)
    docs = ["\n".join(lines[s: s + 8]) for s in starts]
    return docs[:n_train], docs[n_train:]


def german_web_pages(seed: int) -> tuple[set[str], list[str]]:
    """(URLs of the held-out German pages, their extracted texts): a third of the sample's German pages."""
    from kurate.tasks.ingest import IngestConfig, ingest_records
    from kurate.tasks.langid import default_identifier

    pages = [o.curated for o in ingest_records(str(DATA / "web-sample.warc.gz"), IngestConfig()) if o.curated]
    languages = default_identifier().predict([p["text"] for p in pages])
    german = sorted((p for p, (lang, _) in zip(pages, languages) if lang == "de"), key=lambda p: p["url"])
    random.Random(seed).shuffle(german)
    held = german[: len(german) // 3]
    return {p["url"] for p in held}, [p["text"] for p in held]


def _members(data: bytes):
    """The gzip members of a Common Crawl style WARC file (one record each), as raw bytes."""
    pos = 0
    while pos < len(data):
        d = zlib.decompressobj(31)
        record = d.decompress(data[pos:])
        end = len(data) - len(d.unused_data)
        yield data[pos:end], record
        pos = end


def write_inputs(folder: Path, prose: list[str], held_urls: set[str]) -> list[str]:
    """prose.warc.gz (one HTML page per prose document) and web.warc.gz (the sample without the held-out pages)."""
    from kurate.demo.pages import DemoPage
    from kurate.demo.records import page_records, write_warc

    folder.mkdir(parents=True, exist_ok=True)
    pages = []
    for i, doc in enumerate(prose):
        body = "".join(f"<p>{escape(line)}</p>\n" for line in doc.split("\n"))
        html = (f"<!doctype html><html lang=\"de\"><head><meta charset=\"utf-8\"><title>Text {i}</title></head>"
                f"<body><article>\n{body}</article></body></html>")
        pages.append(DemoPage(url=f"https://prosa.example.de/text/{i}", body=html.encode(), kind="article", lang="de"))
    write_warc(folder / "prose.warc.gz", [r for i, p in enumerate(pages) for r in page_records(p, i)])
    kept, dropped = [], 0
    for raw, record in _members((DATA / "web-sample.warc.gz").read_bytes()):
        header = record.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
        uri = next((line.split(":", 1)[1].strip() for line in header.split("\r\n") if line.startswith("WARC-Target-URI:")), None)
        if uri in held_urls:
            dropped += 1
            continue
        kept.append(raw)
    (folder / "web.warc.gz").write_bytes(b"".join(kept))
    print(f"[data] {len(prose)} prose pages; web sample without {dropped} records of {len(held_urls)} held-out pages")
    return [str(folder / "prose.warc.gz"), str(folder / "web.warc.gz")]


def pipeline_config(root: str, inputs: list[str], judge_docs: int, embed_len: int, judge_tokens: int):
    """configs/demo.yaml's annotate/jql settings on this root: German only, in-process stages."""
    from kurate.flows.config import load_config

    tree = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    tree = {key: copy.deepcopy(tree[key]) for key in ("curate", "annotate", "jql")}
    tree["curate"]["inputs"] = inputs
    tree["curate"]["language"]["keep"] = ["de"]
    tree["annotate"]["sample"] = {"per_language": judge_docs, "seed": 0, "languages": ["de"]}
    tree["annotate"]["judges"][0]["max_doc_tokens"] = judge_tokens
    tree["jql"]["embedder"]["max_length"] = embed_len
    tree.update(root=root, stages=["curate", "annotate", "distill", "score"], ray={"executor": "local"})
    return load_config(None, [], tree)


def spread(values: list[float]) -> str:
    arr = np.array(values, dtype=float)
    return f"{arr.mean():.4f} ± {(arr.max() - arr.min()) / 2:.4f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small corpus, judge sample and training (≤ 20 min on 2 cores)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--prose-docs", type=int, default=1200, help="prose documents in the crawl")
    parser.add_argument("--eval-prose", type=int, default=120, help="held-out prose documents")
    parser.add_argument("--judge-docs", type=int, default=120, help="curated documents the judge labels")
    parser.add_argument("--steps", type=int, default=400, help="training steps per run (same for both releases)")
    parser.add_argument("--work", default=None, help="keep the root here (default: a temporary folder)")
    args = parser.parse_args(argv)
    if args.quick:
        args.prose_docs, args.eval_prose, args.judge_docs, args.steps = 360, 60, 32, 120
    embed_len, judge_tokens = (256, 192) if args.quick else (512, 512)
    model_options = ({"vocab_size": 1024, "d_model": 96, "n_layer": 2, "n_head": 4} if args.quick else
                     {"vocab_size": 2048, "d_model": 128, "n_layer": 2, "n_head": 4})

    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    from kurate.flows.config import TrainStageConfig
    from kurate.flows.pipeline import pipeline
    from kurate.flows.release import release
    from kurate.flows.train import run_training
    from kurate.models.checkpoint import load_checkpoint
    from kurate.models.continual import bits_per_byte
    from kurate.release.config import ReleaseConfig
    from kurate.storage.catalog import Catalog

    t0 = time.perf_counter()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="kurate-release-quality-"))
    root = str(work / "root")
    prose, eval_prose = prose_documents(args.prose_docs, args.eval_prose, seed=0)
    held_urls, eval_web = german_web_pages(seed=0)
    inputs = write_inputs(work / "inputs", prose, held_urls)
    config = pipeline_config(root, inputs, args.judge_docs, embed_len, judge_tokens)
    timings = {}
    start = time.perf_counter()
    pipeline(config)
    timings["curate → score"] = time.perf_counter() - start
    catalog = Catalog(root)
    funnel = catalog.query("select count(*) curated, count(*) filter (where s.kept) kept from curated c "
                           "left join scores s using (id) where c.language = 'de'").to_pylist()[0]
    labelled = catalog.query("select count(*) n from labels").to_pylist()[0]["n"]
    print(f"[pipeline] {funnel['curated']} curated German documents, {labelled} judge labels, "
          f"{funnel['kept']} kept by the JQL rule ({timings['curate → score']:.0f} s)")

    def publish(name: str, source: dict) -> dict:
        cfg = config.model_copy(update={"release": ReleaseConfig(name=name, sources=[source], validation_fraction=0.0)})
        return release(cfg)

    start = time.perf_counter()
    jql = publish("jql", {"dataset": "curated", "jql": "kept", "languages": ["de"]})
    heur = publish("heuristics", {"dataset": "curated", "jql": "all", "languages": ["de"], "max_words": jql["words"]})
    timings["releases"] = time.perf_counter() - start
    releases = {"heuristics": heur, "jql": jql}
    # held-out texts are in neither release
    released = {text_key(t) for t in catalog.query(
        "select c.text from release_documents r join curated c using (id)").column("text").to_pylist()}
    leaked = [t for t in eval_prose + eval_web if text_key(t) in released]
    assert not leaked, f"{len(leaked)} held-out texts are in a release"
    prose_in = catalog.query("select count(*) filter (where r.name = 'jql' and c.url like 'https://prosa.%') jql_prose, "
                             "count(*) filter (where r.name = 'heuristics' and c.url like 'https://prosa.%') heur_prose "
                             "from release_documents r join curated c using (id)").to_pylist()[0]

    overrides = {"max_steps": args.steps, "warmup_steps": 10, "log_every": 0, "checkpoint_every": args.steps,
                 "batch_size": 8, "seq_len": 128,
                 "model_options": model_options}
    results: dict[str, dict[str, list[float]]] = {name: {"prose": [], "web": [], "bytes": []} for name in releases}
    start = time.perf_counter()
    for seed in range(args.seeds):
        for name in releases:
            stage = TrainStageConfig(name=f"{name}-s{seed}", model="bpe", preset="tiny",
                                     overrides={**overrides, "seed": seed}, data={"release": name, "version": 1})
            summary = run_training(root, stage)
            model, codec, cfg = load_checkpoint(summary["checkpoint"])
            results[name]["prose"].append(bits_per_byte(model, codec, eval_prose, cfg.seq_len, max_batches=16))
            results[name]["web"].append(bits_per_byte(model, codec, eval_web, cfg.seq_len, max_batches=16))
            results[name]["bytes"].append(sum(m["bytes_per_unit"] * cfg.batch_size * cfg.seq_len for m in summary["history"]))
            print(f"[train] {name} seed {seed}: prose {results[name]['prose'][-1]:.4f}, web {results[name]['web'][-1]:.4f} bits/byte")
    timings["training + eval"] = time.perf_counter() - start

    print()
    print(f"| release | documents | words | of them prose docs | bytes trained (mean) | clean prose bits/byte | web German bits/byte |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, rel in releases.items():
        r = results[name]
        prose_docs = prose_in["jql_prose" if name == "jql" else "heur_prose"]
        print(f"| {name} | {rel['documents']} | {rel['words']} | {prose_docs} | {np.mean(r['bytes']):,.0f} | "
              f"{spread(r['prose'])} | {spread(r['web'])} |")
    for held in ("prose", "web"):
        diff = [a - b for a, b in zip(results["jql"][held], results["heuristics"][held])]
        wins = sum(d < 0 for d in diff)
        print(f"| jql − heuristics ({held}, paired by seed) | | | | | {spread(diff) if held == 'prose' else ''} | "
              f"{spread(diff) if held == 'web' else ''} |  ← jql better in {wins}/{len(diff)} seeds")
    print()
    print(f"held out: {len(eval_prose)} prose documents, {len(eval_web)} German web pages (none in either release); "
          f"seeds {args.seeds}, {args.steps} steps × 8 × 128 BPE tokens per run, BPE model {model_options}")
    print("timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()) + f"; total {time.perf_counter() - t0:.0f} s")
    print(json.dumps({"results": results, "releases": {k: {"documents": v["documents"], "words": v["words"]}
                                                       for k, v in releases.items()}}, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
