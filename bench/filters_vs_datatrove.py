"""Per-document agreement of kurate's heuristic filters with datatrove's, before and after a change.

    .venv/bin/python bench/filters_vs_datatrove.py [--quick] [--before /tmp/fresh/src] \
        [--datatrove-python /tmp/dtvenv/bin/python] [--prose-docs 2000]

FineWeb and FineWeb 2 tuned their filter thresholds on datatrove's statistics, so kurate's filters
should give the verdicts datatrove gives with the same thresholds. This script decides the same
texts four ways and prints, per filter, how often kurate and datatrove agree (keep/reject):

* kurate "after": the source tree this script lives in (``src/``), with its filter_params.yaml;
* kurate "before": another source tree (``--before``, e.g. an older checkout), with its own table;
* datatrove, once with each side's thresholds (mapped onto datatrove's constructor arguments),
  each filter run alone on each document with the document's language (spaCy's blank tokenizer
  for de/en/fr, as FineWeb 2 runs datatrove per language).

Texts: the sample's pages (../shared/data/web-sample.warc.gz, extracted by kurate, language by
kurate's fastText model), German prose documents (../shared/data/german-prose.txt.gz, 8 lines
each) and constructed bad pages (lists, repetition, code, boilerplate; seeded). Languages other
than de/en/fr are left out (datatrove's tokenizers for them need more packages).

datatrove is not a kurate dependency: make its venv once with
``python3.11 -m venv /tmp/dtvenv && /tmp/dtvenv/bin/pip install datatrove==0.10.1 spacy``.
Not run by pytest. The machine is shared, so timings are not reported; agreement is exact.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
FILTERS = ["gopher_repetition", "gopher_quality", "c4", "fineweb"]
LANGUAGES = ("de", "en", "fr")

# Runs in kurate's venv with the chosen source tree first on sys.path: verdicts and parameters.
KURATE_RUNNER = r"""
import json, sys
import kurate
from kurate.tasks.filters import build_filters, load_filter_params
texts = json.load(open(sys.argv[1]))
params = load_filter_params()
filters = build_filters(%r, params)
out = {"source": kurate.__file__, "verdicts": [], "params": {}}
for doc in texts:
    out["verdicts"].append({f.name: (lambda v: [v.keep, v.reason])(f.check(doc["text"], doc["language"])) for f in filters})
for lang in sorted({d["language"] for d in texts}):
    section = params.for_language(lang)
    for settings in section.values():
        for key, value in list(settings.items()):
            if isinstance(value, (set, frozenset, tuple)):
                settings[key] = sorted(value) if isinstance(value, (set, frozenset)) else list(value)
    out["params"][lang] = section
json.dump(out, open(sys.argv[2], "w"), default=str)
""" % (FILTERS,)

# Runs in datatrove's venv: each filter alone, with the thresholds kurate's table gives.
DATATROVE_RUNNER = r"""
import json, sys
from datatrove.data import Document
from datatrove.pipeline.filters import C4QualityFilter, FineWebQualityFilter, GopherQualityFilter, GopherRepetitionFilter
texts, params = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))

def kw(section, mapping):
    return {dt: section[k] for k, dt in mapping.items() if k in section}

def ngrams(d):
    return tuple((int(n), float(f)) for n, f in sorted(d.items(), key=lambda kv: int(kv[0])))

def build(lang):
    p = params[lang]
    g = p["gopher_quality"]
    gq = kw(g, {"min_words": "min_doc_words", "max_words": "max_doc_words",
                "min_mean_word_length": "min_avg_word_length", "max_mean_word_length": "max_avg_word_length",
                "max_hash_word_ratio": "max_symbol_word_ratio", "max_bullet_line_frac": "max_bullet_lines_ratio",
                "max_ellipsis_line_frac": "max_ellipsis_lines_ratio",
                "min_alpha_word_frac": "max_non_alpha_words_ratio", "min_stop_words": "min_stop_words"})
    if g.get("stop_words"):
        gq["stop_words"] = list(g["stop_words"])
    else:  # kurate skips the check without a list; datatrove would use its English default
        gq["min_stop_words"] = 0
    r = p["gopher_repetition"]
    gr = kw(r, {"max_dup_line_frac": "dup_line_frac", "max_dup_para_frac": "dup_para_frac",
                "max_dup_line_char_frac": "dup_line_char_frac", "max_dup_para_char_frac": "dup_para_char_frac"})
    gr["top_n_grams"] = ngrams(r.get("max_top_ngram_char_frac", {}))
    gr["dup_n_grams"] = ngrams(r.get("max_dup_ngram_char_frac", {}))
    c = p["c4"]
    c4 = kw(c, {"min_sentences": "min_num_sentences", "min_words_per_line": "min_words_per_line",
                "require_terminal_punct": "filter_no_terminal_punct", "remove_citations": "remove_citations",
                "max_word_length": "max_word_length", "reject_lorem_ipsum": "filter_lorem_ipsum",
                "reject_curly_bracket": "filter_curly_bracket", "drop_javascript_lines": "filter_javascript",
                "drop_policy_lines": "filter_policy"})
    f = p["fineweb"]
    fw = kw(f, {"min_line_punct_frac": "line_punct_thr", "short_line_length": "short_line_length",
                "max_short_line_frac": "short_line_thr", "max_dup_line_char_frac": "char_duplicates_ratio",
                "max_new_line_ratio": "new_line_ratio"})
    return {"gopher_repetition": GopherRepetitionFilter(language=lang, **gr),
            "gopher_quality": GopherQualityFilter(language=lang, **gq),
            "c4": C4QualityFilter(language=lang, **c4),
            "fineweb": FineWebQualityFilter(language=lang, **fw)}

built, out = {}, []
for doc in texts:
    lang = doc["language"]
    filters = built.setdefault(lang, build(lang))
    row = {}
    for name, f in filters.items():
        try:
            result = f.filter(Document(text=doc["text"], id="x"))
        except ZeroDivisionError:
            result = (False, "zero_division")
        row[name] = [result, None] if result is True else [False, result[1]]
    out.append(row)
json.dump(out, open(sys.argv[3], "w"))
"""


def web_pages() -> list[dict]:
    """The sample's pages, extracted and language-identified by kurate."""
    sys.path.insert(0, str(REPO / "src"))
    from kurate.tasks.ingest import IngestConfig, ingest_records
    from kurate.tasks.langid import default_identifier

    texts = [o.curated["text"] for o in ingest_records(str(DATA / "web-sample.warc.gz"), IngestConfig()) if o.curated]
    languages = default_identifier().predict(texts)
    return [{"set": "web", "language": lang, "text": t} for t, (lang, _) in zip(texts, languages)]


def prose_documents(n: int) -> list[dict]:
    lines = [line.strip() for line in gzip.open(DATA / "german-prose.txt.gz", "rt", encoding="utf-8") if line.strip()]
    return [{"set": "prose", "language": "de", "text": "\n".join(lines[i : i + 8])} for i in range(0, 8 * n, 8)]


def bad_pages(words: list[str], n: int, seed: int = 0) -> list[dict]:
    """Constructed pages of the kinds the filters exist for, in German (seeded)."""
    rng = random.Random(seed)

    def sentence(k: int = 10) -> str:
        return " ".join(rng.choice(words) for _ in range(k)).capitalize() + "."

    kinds = {
        "menu": lambda: "\n".join(rng.choice(words).capitalize() for _ in range(rng.randint(8, 30))),
        "repeated_lines": lambda: "\n".join([sentence()] * rng.randint(3, 8) + [sentence() for _ in range(4)]),
        "repeated_ngrams": lambda: " ".join([" ".join(rng.sample(words, 6))] * rng.randint(4, 12)) + " " + sentence(30),
        "bullets": lambda: "\n".join(f"- {sentence(5)}" for _ in range(rng.randint(6, 20))),
        "code": lambda: "\n".join([sentence(12), "function f(x) { return x + 1; }", sentence(12), sentence(12)]),
        "lorem": lambda: sentence(20) + "\nLorem ipsum dolor sit amet, consectetur adipiscing elit.\n" + sentence(20),
        "numbers": lambda: "\n".join(" ".join(str(rng.randint(0, 9999)) for _ in range(8)) for _ in range(10)),
        "hashtags": lambda: " ".join(f"#{rng.choice(words)}" for _ in range(60)),
        "teasers": lambda: "\n".join(f"{sentence(8)[:-1]} ..." for _ in range(rng.randint(5, 12))),
        "cookie_banner": lambda: "Diese Website verwendet Cookies.\nWeitere Informationen in der Datenschutzerklärung.\nAkzeptieren",
        "short": lambda: sentence(rng.randint(3, 30)),
        "prose_with_code_line": lambda: "\n".join(sentence(15) for _ in range(8)) + "\nvar x = {a: 1};",
    }
    names = sorted(kinds)
    return [{"set": "bad", "language": "de", "text": kinds[names[i % len(names)]]()} for i in range(n)]


def run(cmd: list[str], env: dict | None = None) -> None:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{cmd[0]} failed:\n{done.stderr[-3000:]}")


def kurate_side(src: Path, texts_path: Path, out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src)}
    run([sys.executable, "-c", KURATE_RUNNER, str(texts_path), str(out)], env)
    return json.loads(out.read_text())


def datatrove_side(python: str, texts_path: Path, params: dict, work: Path, tag: str) -> list[dict]:
    params_path, out = work / f"params-{tag}.json", work / f"datatrove-{tag}.json"
    params_path.write_text(json.dumps(params))
    run([python, "-c", DATATROVE_RUNNER, str(texts_path), str(params_path), str(out)])
    return json.loads(out.read_text())


def agreement(kurate: list[dict], datatrove: list[dict], texts: list[dict], name: str, subset: str | None = None) -> tuple:
    rows = [(k[name][0], d[name][0]) for k, d, t in zip(kurate, datatrove, texts) if subset in (None, t["set"])]
    same = sum(a == b for a, b in rows)
    return same / len(rows), sum(not a for a, _ in rows), sum(not b for _, b in rows), len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="500 prose documents and 100 bad pages")
    parser.add_argument("--before", type=Path, default=Path("/tmp/fresh/src"), help="source tree of the baseline")
    parser.add_argument("--datatrove-python", default="/tmp/dtvenv/bin/python")
    parser.add_argument("--prose-docs", type=int, default=2000)
    parser.add_argument("--bad-docs", type=int, default=330)
    args = parser.parse_args()
    n_prose, n_bad = (500, 100) if args.quick else (args.prose_docs, args.bad_docs)

    prose = prose_documents(n_prose)
    vocabulary = sorted({w for d in prose[:200] for w in d["text"].split() if w.isalpha()})
    texts = [t for t in web_pages() + prose + bad_pages(vocabulary, n_bad) if t["language"] in LANGUAGES]
    print(f"{len(texts)} texts: " + ", ".join(f"{k} {v}" for k, v in sorted(Counter(t["set"] for t in texts).items())))

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        texts_path = work / "texts.json"
        texts_path.write_text(json.dumps(texts))
        sides = {"before": args.before, "after": REPO / "src"}
        results = {}
        for tag, src in sides.items():
            if not (src / "kurate").is_dir():
                print(f"skipping {tag}: no kurate package under {src}")
                continue
            k = kurate_side(src, texts_path, work / f"kurate-{tag}.json")
            d = datatrove_side(args.datatrove_python, texts_path, k["params"], work, tag)
            results[tag] = (k["verdicts"], d)

    print("\nagreement with datatrove 0.10.1 (same thresholds), all texts; drops kurate/datatrove")
    print(f"{'filter':<18}" + "".join(f"{tag:>26}" for tag in results))
    for name in FILTERS:
        cells = []
        for kurate, datatrove in results.values():
            share, k_drop, d_drop, n = agreement(kurate, datatrove, texts, name)
            cells.append(f"{share:8.1%} ({k_drop:4d}/{d_drop:4d} of {n})")
        print(f"{name:<18}" + "".join(f"{c:>26}" for c in cells))
    for subset in ("web", "prose", "bad"):
        print(f"\n  {subset} only")
        for name in FILTERS:
            cells = []
            for kurate, datatrove in results.values():
                share, k_drop, d_drop, n = agreement(kurate, datatrove, texts, name, subset)
                cells.append(f"{share:8.1%} ({k_drop:4d}/{d_drop:4d} of {n})")
            print(f"  {name:<16}" + "".join(f"{c:>26}" for c in cells))
    if "after" in results:
        kurate, datatrove = results["after"]
        print("\nafter: where kurate and datatrove disagree, by kurate's reason / datatrove's reason")
        for name in FILTERS:
            diff = Counter(f"{k[name][1]} / {d[name][1]}" for k, d in zip(kurate, datatrove) if k[name][0] != d[name][0])
            if diff:
                print(f"  {name}: " + "; ".join(f"{key} ×{v}" for key, v in diff.most_common(6)))


if __name__ == "__main__":
    main()
