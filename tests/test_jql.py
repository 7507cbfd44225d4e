"""JQL end to end on the embedded multilingual embedder: embed once, distill heads from labels whose
score is a planted function of the text, score the corpus, keep above per-head thresholds."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest

from kurate.flows.config import load_config
from kurate.storage.catalog import Catalog
from kurate.storage.schemas import CURATED, LABELS
from kurate.storage.shards import ShardStore, UnitKey

SCIENCE = {
    "de": ["Die Photosynthese wandelt Lichtenergie in chemische Energie um.", "Ein Atom besteht aus Kern und Elektronenhülle.",
           "Die Erde umkreist die Sonne in etwa 365 Tagen.", "Wasser siedet auf Meereshöhe bei hundert Grad Celsius.",
           "Zellen teilen sich durch Mitose und vermehren so das Gewebe.", "Die Schwerkraft beschleunigt fallende Körper gleichmäßig.",
           "Enzyme senken die Aktivierungsenergie chemischer Reaktionen.", "Der Satz des Pythagoras gilt in rechtwinkligen Dreiecken.",
           "Vulkane entstehen, wo Magma aus dem Erdmantel aufsteigt.", "Die DNA speichert die Erbinformation aller Lebewesen."],
    "en": ["Photosynthesis converts light energy into chemical energy.", "An atom consists of a nucleus and an electron shell.",
           "The Earth orbits the Sun in about 365 days.", "At sea level water boils at one hundred degrees Celsius.",
           "Cells divide by mitosis and so the tissue grows.", "Gravity accelerates falling bodies uniformly.",
           "Enzymes lower the activation energy of chemical reactions.", "The Pythagorean theorem holds in right triangles.",
           "Volcanoes form where magma rises from the mantle.", "DNA stores the genetic information of all living things."],
}
CASUAL = {
    "de": ["Heute gibt es Schuhe im Angebot, nur solange der Vorrat reicht!", "Jetzt klicken und tolle Preise sichern.",
           "Mein Wochenende war super, wir waren grillen.", "Folge uns auf allen Kanälen für mehr Gewinnspiele.",
           "Der Kaffee im neuen Café schmeckt wirklich gut.", "Gratis Versand ab dem ersten Einkauf, gleich bestellen.",
           "Wir haben gestern lange Serien geschaut.", "Melde dich jetzt zum Newsletter an und spare zehn Prozent.",
           "Das Wetter war heute eher durchwachsen.", "Unser Team freut sich auf deinen Besuch im Laden."],
    "en": ["Shoes on sale today, only while stocks last!", "Click now and grab these great prices.",
           "My weekend was great, we had a barbecue.", "Follow us on every channel for more giveaways.",
           "The coffee at the new cafe tastes really good.", "Free shipping on your first order, buy now.",
           "We binge-watched a series last night.", "Sign up for our newsletter and save ten percent.",
           "The weather was rather mixed today.", "Our team looks forward to your visit in the shop."],
}


def _corpus(n_per_language: int, seed: int = 0):
    rng = random.Random(seed)
    docs = []
    for language in ("de", "en"):
        for i in range(n_per_language):
            k = rng.randint(0, 6)
            sentences = rng.sample(SCIENCE[language], k) + rng.sample(CASUAL[language], 6 - k)
            rng.shuffle(sentences)
            docs.append({"id": f"{language}-{i:04d}", "language": language, "text": " ".join(sentences), "score": k * 5 / 6})
    return docs


def _commit(root: str, docs: list[dict]) -> None:
    """Curated shards and judge labels, committed the way curate and annotate commit them."""
    store = ShardStore(root)
    for shard in range(2):
        part = docs[shard::2]
        with store.open_unit(UnitKey("curate", f"synthetic-{shard}.warc.gz", "planted"), ["curated", "rejects"]) as unit:
            unit.write("curated", pa.Table.from_pylist(
                [{"id": d["id"], "url": f"https://e.test/{d['id']}", "text": d["text"], "language": d["language"]} for d in part],
                schema=CURATED))
    labelled = [d for d in docs if int(d["id"][-4:]) % 4 != 3]  # a quarter stays unlabelled, as in a real sample
    with store.open_unit(UnitKey("annotate-planted", "sample#00000", "planted"), ["labels"]) as unit:
        unit.write("labels", pa.Table.from_pylist(
            [{"id": d["id"], "language": d["language"], "judge": "planted", "mode": "logits", "score": round(d["score"]),
              "expected": d["score"], "valid": True, "prompt_version": "planted-v1"} for d in labelled], schema=LABELS))


@pytest.fixture(scope="module")
def jql_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("jql") / "root")
    _commit(root, _corpus(160))
    return root


def _config(root: str, **extra):
    return load_config(None, [], {"root": root, "ray": {"executor": "local"},
                                  "jql": {"distill": {"head": {"width": 256, "lr": 2e-3, "batch_size": 64, "max_epochs": 40}},
                                          "score": {"quantile": 0.6}, **extra}})


@pytest.mark.e2e
def test_distill_then_score(prefect_server, jql_root):
    from kurate.flows.jql import distill, score

    config = _config(jql_root)
    result = distill(config)
    assert result["annotators"] == ["planted__multilingual-e5-small", "planted__multilingual-e5-small-balanced"]
    overall = {r["annotator"]: r["spearman"] for r in result["evaluation"] if r["language"] == "overall"}
    assert overall["planted__multilingual-e5-small"] > 0.9
    per_language = [r for r in result["evaluation"] if r["language"] in ("de", "en")]
    assert len(per_language) == 4 and all(r["spearman"] > 0.8 for r in per_language)
    assert result["agreement"] and result["agreement"][0]["spearman"] > 0.87

    scored = score(config)
    catalog = Catalog(jql_root)
    assert catalog.query("select count(*) n from scores").to_pylist() == [{"n": 320}]
    # every kept document has every head at or above that head's stored threshold
    violations = catalog.query("""
        select count(*) as n from scores s, thresholds t
        where s.kept and t.version = s.thresholds_version
          and ((t.annotator = 'planted__multilingual-e5-small' and s."planted__multilingual-e5-small" < t.value)
            or (t.annotator = 'planted__multilingual-e5-small-balanced' and s."planted__multilingual-e5-small-balanced" < t.value))
    """).to_pylist()
    assert violations == [{"n": 0}]
    share = {r["language"]: r["share_kept"] for r in catalog.query(
        "select language, avg(kept::int) as share_kept from scores group by 1").to_pylist()}
    assert set(share) == {"de", "en"} and 0.2 < np.mean(list(share.values())) < 0.5
    # kept documents carry more planted science than dropped ones
    kept_ids = {r["id"] for r in catalog.query("select id from scores where kept").to_pylist()}
    docs = {d["id"]: d["score"] for d in _corpus(160)}
    assert np.mean([docs[i] for i in kept_ids]) > np.mean([s for i, s in docs.items() if i not in kept_ids]) + 1.0

    again = score(config)
    assert again["thresholds_version"] == scored["thresholds_version"]
    assert catalog.query("select count(*) n from scores").to_pylist() == [{"n": 320}]
    assert len(ShardStore(jql_root).manifests("embed")) == 2  # embedded once, reused by distill and both score runs


@pytest.mark.e2e
def test_cross_lingual_distill_evaluates_on_unseen_languages(prefect_server, jql_root):
    from kurate.flows.jql import distill

    result = distill(_config(jql_root, distill={"train_languages": ["de"], "balanced_variant": False,
                                                "head": {"width": 256, "lr": 2e-3, "batch_size": 64, "max_epochs": 40}}))
    rows = {r["language"]: r for r in result["evaluation"]}
    assert set(rows) == {"overall", "en"}  # evaluated only on the language it never saw
    assert rows["en"]["spearman"] > 0.7
