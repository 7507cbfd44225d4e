"""The synthesize stage: every quality gate forced on hand-written German texts, chunking and the
seeded prompt-type mix, and the whole stage on a small curated root with a tiny generator whose
output is forced (tests/tiny_generators.py): synthetic rows with provenance joined back to curated,
rejects with stage synthesize, scores' kept flag honoured, re-runs adding nothing."""

from __future__ import annotations

import json
from collections import Counter

import pyarrow as pa
import pytest

from kurate.annotators.synthesis import (
    GateConfig, Gates, PROMPT_TYPES, SynthesizeConfig, SynthWorker, assign_type, check_filters, check_language,
    check_length, check_meta, check_similarity, chunk_document, cut_at_stop, load_synth_prompt, plan_units, stage_of,
)
from kurate.storage.catalog import Catalog
from kurate.storage.schemas import CURATED, SCORES
from kurate.storage.shards import ShardStore, UnitKey
from tiny_generators import build_tiny_generator

# What the tiny generator writes, whatever it is asked: a plausible German encyclopaedic passage.
FORCED = [
    "Die Donau ist mit einer Länge von rund 2850 Kilometern der zweitlängste Fluss Europas.",
    "Sie entspringt im Schwarzwald und mündet in Rumänien in das Schwarze Meer.",
    "Auf ihrem Weg fließt sie durch zehn Staaten und mehrere Hauptstädte, darunter Wien und Budapest.",
    "Seit der Römerzeit ist der Fluss ein wichtiger Handelsweg für Waren und Menschen.",
    "Heute verkehren auf der Donau Frachtschiffe, Fähren und zahlreiche Ausflugsdampfer.",
    "Das Donaudelta an der Mündung gehört zu den artenreichsten Feuchtgebieten des Kontinents.",
    "Dort leben viele seltene Vögel, Fische und Pflanzen, die unter besonderem Schutz stehen.",
    "Für die Anwohner ist der Strom zugleich Lebensgrundlage und Gefahr, denn Hochwasser sind häufig.",
]
FORCED_TEXT = " ".join(FORCED)

SOURCES = {
    "de-bahn": ("Die Eisenbahn veränderte im neunzehnten Jahrhundert das Leben in Deutschland grundlegend. Die erste Strecke "
                "zwischen Nürnberg und Fürth wurde im Jahr 1835 eröffnet und war nur wenige Kilometer lang.\n\n"
                "In den folgenden Jahrzehnten entstand ein dichtes Netz, das Städte und Regionen miteinander verband. Waren "
                "konnten schneller und billiger transportiert werden, und viele Menschen zogen in die wachsenden Industriestädte.\n\n"
                "Auch der Alltag änderte sich, denn mit der Bahn kam eine einheitliche Zeit, nach der sich Fahrpläne und Arbeit richteten."),
    "de-wald": ("Der Wald bedeckt etwa ein Drittel der Fläche Deutschlands und ist Lebensraum für unzählige Tiere und Pflanzen. "
                "Buchen, Eichen, Fichten und Kiefern sind die häufigsten Baumarten.\n\n"
                "Wälder speichern Kohlenstoff, filtern Wasser und schützen den Boden vor Erosion. Gleichzeitig liefern sie Holz, "
                "das als Baustoff und Energieträger genutzt wird.\n\n"
                "Durch trockene Sommer und Schädlinge wie den Borkenkäfer sind viele Bestände geschwächt, weshalb Förster auf "
                "Mischwälder mit widerstandsfähigen Arten setzen."),
    "de-brot": ("Brot gehört in Deutschland zu den wichtigsten Grundnahrungsmitteln, und es gibt mehrere tausend Sorten. "
                "Roggen, Weizen und Dinkel werden zu Mehl vermahlen und mit Wasser, Salz und Sauerteig oder Hefe verarbeitet.\n\n"
                "Die deutsche Brotkultur wurde sogar in das Verzeichnis des immateriellen Kulturerbes aufgenommen. Viele kleine "
                "Bäckereien pflegen alte Rezepte, während Großbetriebe einen wachsenden Teil des Marktes beliefern."),
    "de-copy": FORCED_TEXT,  # the generator's output is a copy of this source: near_copy
    "de-unkept": ("Der Bodensee liegt zwischen Deutschland, Österreich und der Schweiz und ist ein beliebtes Reiseziel. "
                  "Im Sommer baden viele Menschen im klaren Wasser, und auf dem See fahren Segelboote und Fähren. "
                  "Die Insel Mainau ist für ihre Blumen und Gärten bekannt und zieht jedes Jahr viele Besucher an."),
    "en-rail": ("The railway transformed life in nineteenth-century Germany. The first line between Nuremberg and Fürth opened "
                "in 1835 and was only a few kilometres long. Over the following decades a dense network connected cities."),
}
LANGUAGE = {k: k.split("-")[0] for k in SOURCES}


def _commit_root(root: str, with_scores: bool = True) -> None:
    """Curated shards (and scores) committed the way curate and score commit them."""
    store = ShardStore(root)
    ids = sorted(SOURCES)
    for shard in range(2):
        with store.open_unit(UnitKey("curate", f"shard-{shard}.warc.gz", "planted"), ["curated", "rejects"]) as unit:
            unit.write("curated", pa.Table.from_pylist(
                [{"id": i, "url": f"https://e.test/{i}", "text": SOURCES[i], "language": LANGUAGE[i], "language_score": 0.99}
                 for i in ids[shard::2]], schema=CURATED))
    if with_scores:
        with store.open_unit(UnitKey("score", "scores-planted", "planted"), ["scores"]) as unit:
            unit.write("scores", pa.Table.from_pylist(
                [{"id": i, "language": LANGUAGE[i], "kept": i != "de-unkept", "thresholds_version": "v"} for i in ids], schema=SCORES))


@pytest.fixture(scope="module")
def generator(tmp_path_factory):
    return build_tiny_generator(tmp_path_factory.mktemp("gen") / "m", FORCED)


@pytest.fixture(scope="module")
def gates():
    return Gates(GateConfig())


def _config(model: str, **extra) -> SynthesizeConfig:
    body = {"name": "tiny", "generator": {"model": model, "batch_size": 4}, "style": "chat",
            "sampling": {"max_new_tokens": 24, "temperature": 0.7, "stop": ["###"]},
            "chunking": {"max_tokens": 64, "min_chars": 200}, "docs_per_unit": 2,
            # the forced passage is ~700 chars and about the Danube whatever the chunk: let every type be up to
            # 5× its source, and turn the off-topic gate off
            "gates": {"length_ratio": {t: (0.05, 5.0) for t in PROMPT_TYPES}, "min_source_words": 0}}
    body.update(extra)
    return SynthesizeConfig.model_validate(body)


# --- gates as pure functions, each one forced ------------------------------------------------------

GOOD = ("Die Eisenbahn hat das Leben in Deutschland im neunzehnten Jahrhundert stark verändert. Die erste Strecke führte "
        "im Jahr 1835 von Nürnberg nach Fürth und war nur wenige Kilometer lang. Danach wuchs das Netz schnell, und es "
        "verband bald viele Städte miteinander. Mit der Bahn wurden Waren billiger, und viele Menschen zogen in die "
        "Industriestädte, wo sie Arbeit fanden. Außerdem brauchte man nun eine gemeinsame Zeit für alle Fahrpläne.")


def test_each_gate_rejects_with_its_reason(gates):
    g = GateConfig()
    source = SOURCES["de-bahn"]
    summary = load_synth_prompt("summary")
    # length: absolute bounds and relative to the source
    assert check_length("", source, "summary", g).reason == "empty"
    assert check_length("Zu kurz.", source, "summary", g).reason == "too_short"
    assert check_length(GOOD * 3, source, "summary", GateConfig(max_chars=1000)).reason == "too_long"
    assert check_length(GOOD * 4, source, "summary", g).reason == "length_ratio_high"  # a "summary" longer than its source
    assert check_length(GOOD[:160], source * 10, "wikipedia", g).reason == "length_ratio_low"
    assert check_length(GOOD, source, "summary", g) is None
    # refusal / meta text / prompt echo
    assert check_meta("Als KI kann ich diesen Text leider nicht umschreiben.", summary, g).reason == "refusal"
    assert check_meta("I cannot help with that request. " + GOOD, summary, g).reason == "refusal"
    meta = check_meta("Hier ist eine Zusammenfassung des Textes:\n" + GOOD, summary, g)
    assert meta.reason == "meta_text" and "hier ist" in meta.detail
    assert check_meta("Zusammenfassung:\n" + GOOD, summary, g).reason == "meta_text"
    assert check_meta(GOOD + " Ich hoffe, das hilft dir weiter!", summary, g).reason == "meta_text"
    echo = check_meta("Fasse den folgenden Text in wenigen vollständigen Sätzen zusammen. " + GOOD, summary, g)
    assert echo.reason == "prompt_echo" and "fasse den folgenden text" in echo.detail
    assert check_meta(GOOD, summary, g) is None
    assert check_meta("Frage: Wann fuhr die erste Bahn?\nAntwort: Im Jahr 1835.", load_synth_prompt("qa"), g) is None
    # language
    rejection, language, score = check_language(SOURCES["en-rail"] * 2, gates.identifier, g)
    assert rejection.reason == "language:en" and language == "en" and rejection.value == score
    assert check_language(GOOD, gates.identifier, g)[0] is None
    # the curate stage's repetition and quality filters
    repeated = "\n".join(["Jetzt kaufen und sparen, nur heute im Angebot für alle Kunden!"] * 12)
    assert check_filters(repeated, gates.filters, "de").reason.startswith("gopher_repetition:")
    few_words = "Die Eisenbahn kam im Jahr 1835 nach Deutschland und veränderte das Leben der Menschen sehr."
    quality = check_filters(few_words, gates.filters, "de")
    # datatrove's top n-gram statistic counts a once-occurring n-gram, so a text this short can stop at
    # the repetition filter (gopher_repetition:top_3gram_char_frac) before the quality filter sees it
    assert quality.reason in {"gopher_quality:too_few_words", "gopher_repetition:top_3gram_char_frac"}
    assert check_filters(GOOD, gates.filters, "de") is None
    # MinHash similarity band against the source
    near, similarity = check_similarity(source, source, "wikipedia", gates.hasher, g)
    assert near.reason == "near_copy" and similarity == 1.0
    assert check_similarity(GOOD, source, "wikipedia", gates.hasher, g)[0] is None
    far, low = check_similarity(FORCED_TEXT, source, "simple", gates.hasher, GateConfig(min_jaccard=0.3))
    assert far.reason == "too_dissimilar" and low < 0.3
    assert check_similarity(FORCED_TEXT, source, "summary", gates.hasher, GateConfig(min_jaccard=0.3, min_source_words=0))[0] is None  # not a rephrasing type
    # a fluent German text about something else: hardly any of its content words are in the source
    off, _ = check_similarity(FORCED_TEXT, source, "summary", gates.hasher, g)
    assert off.reason == "off_topic" and off.value < g.min_source_words
    # a copied paragraph of a long source: low Jaccard, but its n-grams are all in the source
    long_source = "\n\n".join(SOURCES[k] for k in ("de-bahn", "de-wald", "de-brot", "de-unkept"))
    paragraph = SOURCES["de-wald"].split("\n\n")[1]
    copied, jaccard = check_similarity(paragraph, long_source, "summary", gates.hasher, g)
    assert jaccard < g.max_jaccard and copied.reason == "near_copy" and copied.value == 1.0 and "5-grams" in copied.detail
    # a base model copying the prompt's worked example instead of rewriting the document
    example = summary.examples[0][1]
    copied_example = check_meta(example + " " + GOOD[:120], summary, g)
    assert copied_example.reason == "prompt_echo" and copied_example.value >= g.max_example_overlap and "worked example 1" in copied_example.detail
    # all gates together: the first failing one decides, a good rewrite passes
    assert gates.check(GOOD, source, "summary", summary).accepted
    assert gates.check(source, source, "wikipedia", summary).rejection.reason == "near_copy"
    assert gates.check("Hier sind die wichtigsten Punkte:\n" + GOOD, source, "list", summary).rejection.reason == "meta_text"


# --- chunking, type mix, stop strings ---------------------------------------------------------------


def test_chunks_are_paragraph_aligned_bounded_and_overlap():
    count = lambda t: len(t.split())  # noqa: E731 - words as tokens
    paragraphs = [" ".join(f"p{i}w{j}" for j in range(n)) for i, n in enumerate([10, 12, 8, 30, 5])]
    text = "\n\n".join(paragraphs)
    chunks = chunk_document(text, count, 25)
    assert all(count(c) <= 25 for c in chunks)
    assert chunks[0] == "\n\n".join(paragraphs[:2])  # whole paragraphs, packed greedily
    assert " ".join(chunks).split() == text.split()  # no overlap: every word exactly once, in order
    overlapping = chunk_document(text, count, 25, overlap_paragraphs=1)
    assert overlapping[1].startswith(paragraphs[1]) and all(count(c) <= 25 for c in overlapping)
    long_sentences = " ".join(f"Satz {i} hat genau sechs Wörter." for i in range(20))  # one paragraph of 120 words
    split = chunk_document(long_sentences, count, 20)
    assert len(split) >= 6 and all(count(c) <= 20 for c in split) and all(c.endswith(".") for c in split)
    assert chunk_document("", count, 20) == []
    assert cut_at_stop("Antwort.\n###\nText:", ["###", "Text:"]) == "Antwort.\n" and cut_at_stop("ganz", ["###"]) == "ganz"


def test_type_mix_is_seeded_deterministic_and_proportional():
    mix = SynthesizeConfig().active_mix()
    assert list(mix) == list(PROMPT_TYPES) and abs(sum(mix.values()) - 1) < 1e-9
    drawn = Counter(assign_type(f"chunk-{i}", mix, 0) for i in range(4000))
    for prompt_type, share in mix.items():
        assert abs(drawn[prompt_type] / 4000 - share) < 0.03
    assert [assign_type(f"c{i}", mix, 0) for i in range(50)] == [assign_type(f"c{i}", mix, 0) for i in range(50)]
    assert [assign_type(f"c{i}", mix, 0) for i in range(50)] != [assign_type(f"c{i}", mix, 1) for i in range(50)]
    only = SynthesizeConfig(types=["qa", "summary"]).active_mix()
    assert only == {"summary": 0.5, "qa": 0.5}
    with pytest.raises(ValueError, match="unknown prompt type"):
        SynthesizeConfig(mix={"poem": 1.0})
    for prompt_type in PROMPT_TYPES:  # the built-in prompts load and render for both styles
        spec = load_synth_prompt(prompt_type)
        assert "{document}" not in spec.fewshot("DOK") and "DOK" in spec.messages("DOK")[-1]["content"]


# --- the stage on a small curated root ---------------------------------------------------------------


def _run_all(root: str, config: SynthesizeConfig, worker: SynthWorker | None = None) -> list[dict]:
    worker = worker or SynthWorker(config)
    return [worker.synthesize_unit(root, unit) for unit in plan_units(root, config)]


def test_stage_commits_synthetic_with_provenance_and_resumes(tmp_path, generator):
    root = str(tmp_path / "root")
    _commit_root(root)
    config = _config(generator)
    units = plan_units(root, config)
    planned = sorted(i for u in units for i in u.ids)
    assert planned == ["de-bahn", "de-brot", "de-copy", "de-wald"]  # German, kept (scores exist), long enough
    assert [u.ids for u in plan_units(root, config.model_copy(update={"max_docs": 2}))] == [units[0].ids]  # a prefix of the same order

    worker = SynthWorker(config)
    first = [worker.synthesize_unit(root, unit) for unit in units]
    assert not any(r["skipped"] for r in first)
    catalog = Catalog(root)
    rows = catalog.query("select * from synthetic order by id").to_pylist()
    assert rows and all(r["text"] == FORCED_TEXT and r["language"] == "de" and r["language_score"] > 0.65 for r in rows)
    assert all(r["prompt_type"] in PROMPT_TYPES and r["model"] == generator and r["prompt_tokens"] > 0 and r["completion_tokens"] > 0
               for r in rows)
    params = json.loads(rows[0]["generation_params"])
    assert params["temperature"] == 0.7 and params["max_new_tokens"] == 24 and params["stop"] == ["###"] and params["top_p"] == 0.9
    assert len({r["id"] for r in rows}) == len(rows)
    # provenance: every synthetic row joins back to its curated source
    joined = catalog.query("""select s.source_id, c.url, count(*) as n from synthetic s join curated c on c.id = s.source_id
                              group by all order by 1""").to_pylist()
    assert {j["source_id"] for j in joined} == {"de-bahn", "de-brot", "de-wald"}
    assert sum(j["n"] for j in joined) == len(rows) and all(j["url"] == f"https://e.test/{j['source_id']}" for j in joined)
    # the source the generator copies is rejected as a near copy, with stage synthesize and provenance
    rejects = catalog.query("select * from rejects where stage = 'synthesize'").to_pylist()
    assert [r["reason"] for r in rejects] == ["near_copy"] and rejects[0]["source"] == "de-copy"
    assert json.loads(rejects[0]["detail"])["source_id"] == "de-copy" and rejects[0]["value"] >= 0.8
    counted = sum(r["generated"] for r in first)
    assert counted == len(rows) + len(rejects) and sum(r["chunks"] for r in first) == counted
    # chunks fit the budget and types follow the seeded assignment
    rewriter = worker.rewriter
    chunks = [c for doc in [{"id": i, "text": SOURCES[i]} for i in planned] for c in rewriter.chunks(doc)]
    assert all(rewriter.count_tokens(c["text"]) <= rewriter.chunk_tokens for c in chunks)
    assert {(r["source_id"], r["chunk_index"], r["prompt_type"]) for r in rows} <= {(c["source_id"], c["chunk_index"], c["prompt_type"]) for c in chunks}

    # a re-run skips every committed unit and adds nothing
    again = [worker.synthesize_unit(root, unit) for unit in units]
    assert all(r["skipped"] for r in again)
    assert catalog.query("select count(*) as n from synthetic").to_pylist() == [{"n": len(rows)}]
    assert catalog.query("select count(*) as n from rejects where stage = 'synthesize'").to_pylist() == [{"n": 1}]
    assert len(ShardStore(root).manifests(stage_of("tiny"))) == len(units)


def test_transformers_backend_stops_early_at_a_stop_string(generator):
    from kurate.annotators.backends.hf_transformers import TransformersBackend

    backend = TransformersBackend(generator, "fp32", batch_size=2)
    prompts = ["Text: Die Donau.\n\nZusammenfassung:", "Text: Der Rhein.\n\nZusammenfassung:"]
    full = backend.generate(prompts, 1, 40, 0.0, 0)
    stopped = backend.generate(prompts, 1, 40, 0.0, 0, top_p=0.9, repetition_penalty=1.0, stop=[FORCED[2]])
    for whole, early in zip(full, stopped):
        assert FORCED[-1] in whole.texts[0]
        assert FORCED[2] in early.texts[0] and FORCED[3] not in early.texts[0]  # generation ended at the stop string, not max tokens


def test_a_failed_request_becomes_a_typed_reject_per_sample(tmp_path):
    """A generator server that cannot be reached: every sample of every chunk is a reject whose reason
    names the failure kind, and the unit still commits (a re-run with a new config redoes it)."""
    from tiny_models import free_port

    root = str(tmp_path / "root")
    _commit_root(root)
    config = _config("tiny", generator={"backend": "openai", "base_url": f"http://127.0.0.1:{free_port()}", "model": "tiny",
                                        "retries": 0, "timeout_s": 2, "context_tokens": 2048},
                     sampling={"max_new_tokens": 24, "samples": 2}, max_docs=1)
    (unit,) = plan_units(root, config)
    result = SynthWorker(config).synthesize_unit(root, unit)
    assert result["accepted"] == 0 and result["generated"] == 2 * result["chunks"] > 0
    assert result["reasons"] == {"generation_error:unreachable": result["generated"]}
    rejects = Catalog(root).query("select reason, detail from rejects where stage = 'synthesize'").to_pylist()
    assert len(rejects) == result["generated"] and "ConnectError" in json.loads(rejects[0]["detail"])["why"]


def test_every_type_rewrites_each_chunk_in_all_types(tmp_path, generator):
    root = str(tmp_path / "root")
    _commit_root(root, with_scores=False)
    config = _config(generator, style="fewshot", every_type=True, max_docs=1, chunking={"max_tokens": 4000, "min_chars": 200})
    worker = SynthWorker(config)
    assert {"\nText:", "\nZusammenfassung:", "\nWichtige Punkte:"} <= set(worker.rewriter.stops)  # a base model's next example is cut
    results = _run_all(root, config, worker)
    rows = Catalog(root).query("select source_id, chunk_id, prompt_type from synthetic").to_pylist()
    assert sorted(r["prompt_type"] for r in rows) == sorted(PROMPT_TYPES) and len({r["chunk_id"] for r in rows}) == 1
    assert results[0]["chunks"] == 1 and results[0]["generated"] == len(PROMPT_TYPES)


def test_without_scores_all_german_docs_and_fewshot_style(tmp_path, generator):
    root = str(tmp_path / "root")
    _commit_root(root, with_scores=False)
    config = _config(generator, style="fewshot", types=["summary"], chunking={"max_tokens": 4000, "min_chars": 200})
    units = plan_units(root, config)
    assert sorted(i for u in units for i in u.ids) == ["de-bahn", "de-brot", "de-copy", "de-unkept", "de-wald"]
    results = _run_all(root, config)
    rows = Catalog(root).query("select source_id, prompt_type, chunk_index, generation_params from synthetic order by 1").to_pylist()
    assert [(r["source_id"], r["prompt_type"], r["chunk_index"]) for r in rows] == [
        (d, "summary", 0) for d in ["de-bahn", "de-brot", "de-unkept", "de-wald"]]  # one chunk per doc at 4000 tokens
    assert json.loads(rows[0]["generation_params"])["style"] == "fewshot"
    assert sum(r["per_type"]["summary"]["accepted"] for r in results) == 4


@pytest.mark.e2e
def test_synthesize_flow_on_ray(prefect_server, ray_local, tmp_path, generator):
    from kurate.flows.config import PipelineConfig
    from kurate.flows.synthesize import synthesize

    root = str(tmp_path / "root")
    _commit_root(root)
    body = {"root": root, "ray": {"executor": "ray"}, "synthesize": _config(generator).model_dump()}
    config = PipelineConfig.model_validate(body)
    summary = synthesize(config)
    assert summary["units"] == 2 and summary["skipped_units"] == 0 and summary["reasons"] == {"near_copy": 1}
    assert summary["accepted"] == summary["generated"] - 1 > 0
    assert {t["prompt_type"] for t in summary["per_type"]} <= set(PROMPT_TYPES)
    n = Catalog(root).query("select count(*) as n from synthetic").to_pylist()[0]["n"]
    assert n == summary["accepted"]
    again = synthesize(config)
    assert again["skipped_units"] == 2 and again["generated_now"] == 0
    assert Catalog(root).query("select count(*) as n from synthetic").to_pylist()[0]["n"] == n


def test_embedded_generator_gguf_assembles_from_its_chunk_wheels(tmp_path):
    """The default generator's GGUF is assembled (and sha256-checked by the wheel) from four chunk
    wheels; converting it to a transformers folder is left to the demo (~1.5 min)."""
    from kurate.annotators.models import EMBEDDED, gguf_location
    from kurate.annotators.synthesis import EMBEDDED_GENERATOR_MODEL

    directory, filename = gguf_location(EMBEDDED[EMBEDDED_GENERATOR_MODEL], tmp_path)
    path = directory / filename
    assert path.parent == tmp_path and path.stat().st_size > 200_000_000
    with open(path, "rb") as f:
        assert f.read(4) == b"GGUF"


def test_prompts_get_the_bos_their_tokenizer_always_adds(generator):
    """Gemma-style tokenizers start every text with BOS and the model needs it; prompts are tokenized
    without special tokens (chat templates write their own), so the backend adds BOS once."""
    from tokenizers.processors import TemplateProcessing
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from kurate.annotators.backends.hf_transformers import TransformersBackend

    plain = TransformersBackend(generator, "fp32")
    assert plain.bos_prefix == ""  # this tokenizer adds no BOS: prompts stay as they are
    tokenizer = AutoTokenizer.from_pretrained(generator)
    bos = tokenizer.bos_token_id
    tokenizer._tokenizer.post_processor = TemplateProcessing(single="<s> $A", special_tokens=[("<s>", bos)])
    backend = TransformersBackend.from_loaded(AutoModelForCausalLM.from_pretrained(generator), tokenizer)
    assert backend.bos_prefix == "<s>"
    ids = backend._tokenize(["Text: Die Donau.", "<s>Text: Der Rhein."])["input_ids"]
    assert [int(row[row != tokenizer.pad_token_id][0]) for row in ids] == [bos, bos]
    assert [int((row == bos).sum()) for row in ids] == [1, 1]
    assert FORCED[0] in backend.generate(["Zusammenfassung:"], 1, 4, 0.0, 0)[0].texts[0]
