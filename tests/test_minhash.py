"""MinHash signatures: normalisation, stability across processes, accuracy against the true Jaccard."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kurate.tasks.minhash import EMPTY_VALUE, MinHashConfig, MinHasher, exact_hash, jaccard_estimate, normalize_text

REPO = Path(__file__).resolve().parents[1]

GERMAN = """Hochwasser an der Elbe: Pegel steigt weiter
Nach tagelangem Regen ist der Pegel der Elbe in Dresden am Mittwochmorgen auf über sechs Meter
gestiegen. Die Feuerwehr hat in den Stadtteilen am Ufer Sandsäcke verteilt, und mehrere Straßen
in der Altstadt sind seit der Nacht gesperrt. Der Krisenstab der Stadt rechnet damit, dass der
Scheitel erst am Freitag erreicht wird. Anwohner werden gebeten, Keller zu räumen und Autos aus
den tief gelegenen Straßen zu entfernen. Die Straßenbahnlinien über die Augustusbrücke fahren
bis auf Weiteres nicht. Auch flussaufwärts in Tschechien bleibt die Lage angespannt, weil die
Talsperren kaum noch Wasser aufnehmen können. Meteorologen erwarten für das Wochenende zwar
trockeneres Wetter, warnen aber vor neuen Gewittern in den Mittelgebirgen. Wer Hilfe beim
Füllen der Sandsäcke leisten möchte, kann sich bei der Koordinierungsstelle im Rathaus melden.
Viele ältere Bewohner erinnern sich noch gut an das Jahrhunderthochwasser von 2002, als das Wasser
bis in den Zwinger und die Semperoper vordrang. Seitdem hat die Stadt mobile Schutzwände
angeschafft, die nun an mehreren Stellen aufgebaut werden. Ein Sprecher des Umweltamtes sagte,
die Wände hätten sich bereits 2013 bewährt und könnten einen Pegel von bis zu neun Metern
abhalten. Kritik kommt dagegen von Naturschutzverbänden, die seit Jahren mehr Raum für den Fluss
fordern: Alte Auenwälder und Überschwemmungsflächen seien der beste Schutz, weil sie das Wasser
aufnehmen, bevor es die Stadt erreicht. Die Landesregierung kündigte an, nach dem Hochwasser über
neue Deichrückverlegungen zu beraten und die betroffenen Betriebe mit einem Soforthilfeprogramm zu
unterstützen."""

ENGLISH = """Library reopens after two-year renovation
The central library on Market Street reopened its doors on Saturday after a renovation that took
almost two years and cost the city eleven million pounds. Visitors found a new reading room under
the restored glass roof, a children's floor with its own entrance and a workshop where anyone can
borrow tools, sewing machines and a small laser cutter. The building, which opened in 1906, had
suffered from a leaking roof and outdated heating for decades. Librarians say the number of
registered readers has already doubled since the online sign-up started in spring. Opening hours
are now longer on weekdays, and the café on the ground floor stays open until nine in the evening.
The council hopes the library will bring more people back to the old town centre.
Not everyone was convinced at first. When the plans were presented, some residents argued that the
money should have gone to the swimming pool or to repairing roads, and a petition against the
workshop collected several hundred signatures. The head librarian, who has worked in the building
for more than twenty years, says the mood has changed since the first open days. Pensioners come
in the morning to read newspapers from all over the world, students fill the long tables in the
afternoon, and on Thursday evenings a repair café meets in the workshop to fix bicycles, lamps and
toasters for free. A local historian has also put together a small exhibition about the people
who built the library more than a century ago, with photographs that were found in the attic
during the renovation and had not been seen since the nineteen thirties."""

# A small vocabulary for synthetic documents with a known overlap.
WORDS = (
    "haus baum wasser stadt fluss brücke straße schule kind zeit jahr woche abend morgen arbeit "
    "garten fenster tür licht stein berg wald feld wind regen sonne mond stern weg platz markt "
    "river town bridge school child time year week evening morning work garden window door light "
    "stone hill forest field wind rain sun moon star road square market green quiet early late "
).split()


def synthetic(rng: np.random.Generator, n_words: int) -> list[str]:
    return list(rng.choice(WORDS, n_words))


def true_jaccard(a: str, b: str, n: int = 5) -> float:
    def grams(text: str) -> set[tuple[str, ...]]:
        words = normalize_text(text).split()
        return {tuple(words[i : i + n]) for i in range(max(len(words) - n + 1, 1))}

    ga, gb = grams(a), grams(b)
    return len(ga & gb) / len(ga | gb)


def test_normalize_text():
    assert normalize_text("  Hello,\tWORLD!!  \n") == "hello world"
    assert normalize_text("„Grüß Gott“ — sagte sie…") == "grüss gott sagte sie"  # case folding: ß → ss
    assert normalize_text("ﬁnden ＡＢＣ") == "finden abc"  # NFKC: ligature, full-width letters
    assert normalize_text("Bei\u00adspiel\u200b") == "beispiel"  # soft hyphen, zero-width space removed
    assert normalize_text("e-mail_adresse 3,5 € + 20 %") == "e mail adresse 3 5 20"
    assert normalize_text("नमस्ते दुनिया") == "नमस्ते दुनिया"  # combining vowel signs are part of words
    assert normalize_text(" .,;! ") == ""


def test_exact_hash_ignores_case_whitespace_and_punctuation():
    a = exact_hash(GERMAN)
    assert a == exact_hash("  " + GERMAN.upper().replace("\n", " \n\n ").replace(",", " ,"))  # ß → SS → ss
    assert exact_hash("Straße") == exact_hash("STRASSE")  # case-folded
    assert a != exact_hash(GERMAN.replace("Dresden", "Magdeburg"))
    assert 0 <= a < 2**64 and isinstance(a, int)


def test_golden_values_are_stable():
    # Signatures are stored and compared across runs: these values must never change silently.
    assert exact_hash("Hallo Welt") == GOLDEN_EXACT
    sig = MinHasher().signatures(["Der schnelle braune Fuchs springt über den faulen Hund."])
    assert sig[0, :4].tolist() == GOLDEN_SIGNATURE


GOLDEN_EXACT = 1608632573782585581
GOLDEN_SIGNATURE = [549226502, 65550440, 2672482673, 583414504]


def test_config_validation_and_s_curve():
    with pytest.raises(ValueError, match="bands × rows"):
        MinHashConfig(num_perm=100, bands=14, rows=8)
    with pytest.raises(ValueError, match="ngram"):
        MinHashConfig(ngram=0)
    config = MinHashConfig()
    assert config.num_perm == 112 and config.lsh_threshold == pytest.approx(0.719, abs=1e-3)
    assert config.candidate_probability(0.8) == pytest.approx(0.924, abs=1e-3)
    assert config.candidate_probability(0.5) < 0.06 < 0.99 < config.candidate_probability(0.9)


def test_signature_shape_and_empty_and_short_documents():
    hasher = MinHasher()
    sig = hasher.signatures([GERMAN, "", "  ...  ", "nur drei Wörter", "Nur drei Wörter!", ENGLISH])
    assert sig.shape == (6, 112) and sig.dtype == np.uint32
    assert (sig[1] == EMPTY_VALUE).all() and (sig[2] == EMPTY_VALUE).all()
    assert (sig[[0, 3, 5]] != EMPTY_VALUE).any(axis=1).all()
    assert (sig[3] == sig[4]).all()  # a short document is one shingle of all its words
    assert jaccard_estimate(sig[0], sig[5]) < 0.05
    assert hasher.signatures([]).shape == (0, 112)
    keys = hasher.band_keys(sig)
    assert keys.shape == (6, 14) and keys.dtype == np.uint64
    assert not set(keys[1].tolist()) & set(keys[[0, 3, 5]].ravel().tolist())


def test_deterministic_across_instances_batches_and_processes():
    texts = [GERMAN, ENGLISH, "kurz", ""]
    first = MinHasher(MinHashConfig()).signatures(texts)
    second = MinHasher(MinHashConfig()).signatures(texts)
    assert (first == second).all()
    one_by_one = np.vstack([MinHasher().signatures([t]) for t in texts])
    assert (first == one_by_one).all()
    assert not (MinHasher(MinHashConfig(seed=2)).signatures(texts[:1]) == first[:1]).all()
    many = [f"Nummer {i}: " + ENGLISH[: 40 + i % 400] for i in range(5000)]  # more than one internal block
    hasher = MinHasher()
    assert (hasher.signatures(many) == np.vstack([hasher.signatures(many[i : i + 700]) for i in range(0, 5000, 700)])).all()

    code = (
        "import json, sys; from kurate.tasks.minhash import MinHasher; "
        "texts = json.load(sys.stdin); h = MinHasher(); s = h.signatures(texts); "
        "print(json.dumps([s.tolist(), h.band_keys(s).tolist()]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # differs from this process: hash() must not matter
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(texts), capture_output=True, text=True,
                         cwd=REPO, env=env, check=True).stdout
    sigs, keys = json.loads(out)
    assert sigs == first.tolist()
    assert keys == MinHasher().band_keys(first).tolist()


def test_vectorised_signature_matches_a_plain_python_reference():
    """The batched min over chunks equals min_x ((a·x + b) mod 2^64) >> 32, also across chunk borders."""
    rng = np.random.default_rng(7)
    texts = [" ".join(synthetic(rng, 9000)), "ein kurzer Text mit genau acht Wörtern darin", " ".join(synthetic(rng, 300))]
    hasher = MinHasher(MinHashConfig(num_perm=8, bands=2, rows=4))
    keys, counts = hasher.shingle_hashes(texts)
    assert counts.tolist() == [8996, 4, 296] and int(keys.max()) < 2**32
    sig = hasher.signatures(texts)
    a, b = [int(v) for v in hasher._a], [int(v) for v in hasher._b]
    start = 0
    for d, count in enumerate(counts.tolist()):
        xs = [int(x) for x in keys[start : start + count]]
        start += count
        expected = [min(((ai * x + bi) % 2**64) >> 32 for x in xs) for ai, bi in zip(a, b)]
        assert sig[d].tolist() == expected


def test_jaccard_estimate_tracks_true_jaccard_and_datasketch():
    from datasketch import MinHash

    rng = np.random.default_rng(3)
    pairs = []
    for replaced in [2, 5, 10, 20, 35, 60]:
        for _ in range(3):
            words = synthetic(rng, 200)
            edited = list(words)
            for i in rng.choice(len(words), replaced, replace=False):
                edited[i] = "ersetzt" + str(i)
            pairs.append((" ".join(words), " ".join(edited)))
    truth = np.array([true_jaccard(a, b) for a, b in pairs])
    assert truth.min() < 0.2 and truth.max() > 0.9  # the pairs span the range

    def datasketch_estimate(config: MinHashConfig, a: str, b: str) -> float:
        sketches = []
        for text in (a, b):
            words = normalize_text(text).split()
            m = MinHash(num_perm=config.num_perm, seed=config.seed)
            m.update_batch([" ".join(words[i : i + 5]).encode() for i in range(len(words) - 4)])
            sketches.append(m)
        return sketches[0].jaccard(sketches[1])

    # With 448 hash functions the standard error is ≤ 0.024, so ±0.08 holds for every pair.
    wide = MinHashConfig(num_perm=448, bands=56, rows=8)
    ours = _estimates(MinHasher(wide), pairs)
    theirs = np.array([datasketch_estimate(wide, a, b) for a, b in pairs])
    assert np.abs(ours - truth).max() <= 0.08
    assert np.abs(theirs - ours).max() <= 0.1 and np.abs(theirs - ours).mean() <= 0.04
    # The default 112 hash functions: unbiased, error ≈ 0.04 per pair.
    default = _estimates(MinHasher(), pairs)
    assert np.abs(default - truth).mean() <= 0.04 and abs((default - truth).mean()) <= 0.02


def _estimates(hasher: MinHasher, pairs: list[tuple[str, str]]) -> np.ndarray:
    sig = hasher.signatures([t for pair in pairs for t in pair])
    return np.array([jaccard_estimate(sig[2 * i], sig[2 * i + 1]) for i in range(len(pairs))])


def test_near_duplicates_share_bands_and_unrelated_texts_do_not():
    hasher = MinHasher()
    edited = GERMAN.replace("Mittwochmorgen", "Donnerstagmorgen").replace("2013", "2012")
    rewritten_header = "Elbe-Hochwasser: Lage in Dresden spitzt sich zu\n" + ENGLISH.split("\n", 1)[1]
    texts = [GERMAN, edited, ENGLISH, ENGLISH.split("\n", 1)[1], rewritten_header]
    sig = hasher.signatures(texts)
    keys = hasher.band_keys(sig)
    assert true_jaccard(GERMAN, edited) > 0.9 and jaccard_estimate(sig[0], sig[1]) >= 0.85
    assert (keys[0] == keys[1]).any() and (keys[2] == keys[3]).any() and (keys[3] == keys[4]).any()
    assert not (keys[0] == keys[2]).any() and not (keys[1] == keys[4]).any()
    with pytest.raises(ValueError):
        jaccard_estimate(sig[0], sig[1][:10])
    with pytest.raises(ValueError):
        hasher.band_keys(sig[:, :100])
