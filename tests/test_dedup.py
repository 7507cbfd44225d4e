"""Cross-shard dedup in DuckDB over signature Parquet files: planted duplicates, references, ranks, scale."""

from __future__ import annotations

import time

import duckdb
import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute
import pyarrow.parquet as pq
import pytest

from kurate.tasks.dedup import DUPLICATE_SCHEMA, SIGNATURE_SCHEMA, find_duplicates, signature_table
from kurate.tasks.dedup_partitioned import find_duplicates_partitioned
from kurate.tasks.minhash import MinHasher, exact_hash, jaccard_estimate

ARTICLE_DE = """Neue Radwege für die Innenstadt
Der Stadtrat hat am Dienstagabend mit knapper Mehrheit beschlossen, in den kommenden drei Jahren
zwölf Kilometer neue Radwege in der Innenstadt zu bauen. Auf der Hauptstraße soll dafür eine der
beiden Autospuren in jede Richtung wegfallen, und an den großen Kreuzungen werden eigene Ampeln für
Radfahrer eingerichtet. Die Kosten von rund achtzehn Millionen Euro trägt zu einem großen Teil das
Land, das ein Förderprogramm für den Radverkehr aufgelegt hat. Der Einzelhandel sieht die Pläne
kritisch: Viele Kunden kämen aus dem Umland mit dem Auto, und jeder Parkplatz, der wegfalle,
koste Umsatz. Die Verwaltung verweist dagegen auf Zählungen, nach denen schon heute an manchen
Tagen mehr Fahrräder als Autos über die Marktbrücke fahren. In anderen Städten habe sich gezeigt,
dass sichere Radwege mehr Menschen zum Umsteigen bewegen, auch ältere Leute und Familien mit
Kindern. Die Bauarbeiten sollen im Frühjahr am Bahnhof beginnen, wo die Stadt zugleich ein
Parkhaus für dreihundert Fahrräder errichten will. Während der Arbeiten wird es Umleitungen für den
Busverkehr geben. Anwohner können sich am kommenden Samstag im Rathaus über die Pläne informieren
und Vorschläge einbringen; die Entwürfe hängen außerdem zwei Wochen lang in der Stadtbibliothek
aus. Die Opposition will das Thema dennoch nicht ruhen lassen und hat angekündigt, ein
Bürgerbegehren zu prüfen. Ihr Fraktionsvorsitzender sagte, man sei nicht gegen Radwege, wohl aber
gegen den Wegfall der Autospuren auf der wichtigsten Einfallstraße der Stadt. Eine Studie der
Hochschule soll in zwei Jahren zeigen, wie sich der Verkehr tatsächlich verändert hat."""

ARTICLE_EN = """Village bakery celebrates one hundred years
When Margaret Hale took over her grandfather's bakery on the corner of Church Lane, she promised
him two things: that the ovens would be lit before five every morning, and that the seed cake would
never leave the counter. Forty years later she has kept both promises, and this weekend the whole
village is invited to celebrate the shop's hundredth birthday with free tea and a brass band on
the green. The bakery has survived two world wars, a fire in the sixties and the arrival of a
supermarket on the edge of town, which at the time many people thought would close every small
shop in the high street. Instead, Margaret says, customers came back once they had tasted the
difference between bread baked overnight and bread baked in a factory. Today the shop employs nine
people, supplies three cafés in the neighbouring towns and runs a weekly class for children who
want to learn how to shape rolls and plait loaves. Her nephew, who joined the business last year,
has added sourdough and a few vegan cakes to the shelves, but the recipes in the old notebook
behind the till have not changed. On Saturday the first hundred visitors will receive a small loaf
baked to the original recipe from nineteen twenty-five, and the local history society will show
photographs of the shop, the delivery bicycle and the horse that pulled the bread cart until the
war."""

UNRELATED = [
    """Die Wetteraussichten für das Wochenende: Am Samstag ziehen von Westen dichte Wolken auf, am
    Nachmittag regnet es im Bergland kräftig. Der Sonntag beginnt neblig, später lockert es auf und
    die Temperaturen steigen auf bis zu zwanzig Grad.""",
    """Rezept für einen einfachen Apfelkuchen: Butter, Zucker und Eier schaumig rühren, Mehl und
    Backpulver unterheben und den Teig in eine Springform füllen. Die Äpfel schälen, in Spalten
    schneiden und dicht auf den Teig legen. Bei hundertachtzig Grad etwa fünfzig Minuten backen.""",
    """How to repot a houseplant: water the plant a day before, choose a pot that is only slightly
    larger, loosen the roots gently and fill the gaps with fresh compost. Keep it out of direct
    sunlight for a week while the roots settle.""",
]


def change_words(text: str, changes: dict[int, str]) -> str:
    words = text.split(" ")
    for position, word in changes.items():
        words[position] = word
    return " ".join(words)


def write(path, docs: list[tuple[str, str, str]], hasher: MinHasher | None = None) -> str:
    """Write (id, rank, text) documents as one signature Parquet file; returns its path."""
    ids, ranks, texts = zip(*docs) if docs else ((), (), ())
    pq.write_table(signature_table(list(ids), list(ranks), list(texts), hasher or MinHasher()), str(path))
    return str(path)


def as_dict(result) -> dict[str, tuple[str, str, float]]:
    return {r["id"]: (r["duplicate_of"], r["kind"], r["similarity"]) for r in result.to_pylist()}


def test_signature_table_rows():
    table = signature_table(["a", "b"], ["1", "0"], [ARTICLE_DE, ""], MinHasher())
    assert table.schema == SIGNATURE_SCHEMA
    row = table.to_pylist()[0]
    assert row["exact_hash"] == exact_hash(ARTICLE_DE)
    assert len(row["minhash"]) == 112 and len(row["bands"]) == 14
    with pytest.raises(ValueError, match="differ in length"):
        signature_table(["a"], [], ["x"], MinHasher())


def test_planted_near_duplicates_found_and_unrelated_not(tmp_path):
    one_word = change_words(ARTICLE_DE, {40: "Fahrradwege"})
    three_words = change_words(ARTICLE_DE, {12: "Stadtparlament", 90: "Kundschaft", 150: "Bürgerentscheid"})
    new_header = "Bakery on Church Lane turns 100\n" + ARTICLE_EN.split("\n", 1)[1]
    docs = [("de", "0", ARTICLE_DE), ("de-1", "1", one_word), ("de-3", "2", three_words), ("en", "3", ARTICLE_EN),
            ("en-header", "4", new_header)] + [(f"other-{i}", f"5{i}", t) for i, t in enumerate(UNRELATED)]
    half = len(docs) // 2
    files = [write(tmp_path / "a.parquet", docs[:half]), write(tmp_path / "b.parquet", docs[half:])]

    result = find_duplicates(files)
    assert result.schema == DUPLICATE_SCHEMA
    found = as_dict(result)
    assert {k: v[:2] for k, v in found.items()} == {
        "de-1": ("de", "near"),
        "de-3": ("de", "near"),
        "en-header": ("en", "near"),
    }
    sig = MinHasher().signatures([ARTICLE_DE, three_words])
    assert found["de-3"][2] == pytest.approx(jaccard_estimate(sig[0], sig[1]))
    assert all(0.8 <= v[2] < 1 for v in found.values())
    assert result.column("id").to_pylist() == sorted(found)


def test_exact_duplicates_after_whitespace_and_case_changes(tmp_path):
    shouting = ARTICLE_EN.upper().replace("\n", "  \n\t")
    spaced = "  " + ARTICLE_EN.replace(", ", " , ").replace(". ", ".   ")
    near = change_words(ARTICLE_EN, {30: "loaf"})
    files = [
        write(tmp_path / "a.parquet", [("x-shout", "2", shouting), ("x-orig", "1", ARTICLE_EN)]),
        write(tmp_path / "b.parquet", [("x-spaced", "3", spaced), ("x-near", "4", near)]),
        write(tmp_path / "c.parquet", [("x-near-copy", "0", near.lower())]),
    ]
    found = as_dict(find_duplicates(files))
    assert found["x-shout"] == ("x-orig", "exact", 1.0)
    assert found["x-spaced"] == ("x-orig", "exact", 1.0)
    # Exact losers take no part in the near step: x-near loses to x-near-copy (rank 0), which then
    # wins against x-orig as a near duplicate because its rank is lower.
    assert found["x-near"] == ("x-near-copy", "exact", 1.0)
    assert found["x-orig"][:2] == ("x-near-copy", "near")
    assert set(found) == {"x-shout", "x-spaced", "x-near", "x-orig"}


def test_reference_documents_always_win_and_are_never_reported(tmp_path):
    ref_copy = change_words(ARTICLE_DE, {60: "Stadtmitte"})  # the reference itself holds a near pair
    reference = [write(tmp_path / "ref.parquet", [("r-de", "2", ARTICLE_DE), ("r-de-copy", "0", ref_copy),
                                                    ("r-de-exact", "1", ARTICLE_DE.lower())])]
    near = change_words(ARTICLE_DE, {99: "Pendler"})
    new = [write(tmp_path / "new.parquet", [("n-de", "0", ARTICLE_DE + " "), ("n-de-near", "1", near), ("n-en", "2", ARTICLE_EN)])]
    found = as_dict(find_duplicates(new, reference))
    assert set(found) == {"n-de", "n-de-near"}
    assert found["n-de"] == ("r-de-exact", "exact", 1.0)  # among references, too, the lower rank is the winner
    assert found["n-de-near"][:2] == ("r-de-copy", "near")  # the best reference of its component
    assert find_duplicates(reference).num_rows == 2  # the same file as *new* data does report its duplicates


def test_reference_exclude_leaves_out_the_references_own_dropped_documents(tmp_path):
    """A finalized shard's signature file still holds the documents its dedup run dropped; those are
    not curated, so with their ranks excluded they can no longer win against new documents."""
    reference = [write(tmp_path / "ref.parquet", [("r-kept", "ref\x1f0", ARTICLE_EN), ("r-dropped", "ref\x1f1", ARTICLE_DE)])]
    dropped = tmp_path / "dropped.parquet"
    pq.write_table(DUPLICATE_SCHEMA.empty_table().from_pylist(
        [{"id": "r-dropped", "rank": "ref\x1f1", "duplicate_of": "elsewhere", "kind": "exact", "similarity": 1.0}],
        schema=DUPLICATE_SCHEMA), str(dropped))
    new = [write(tmp_path / "new.parquet", [("n-de", "new\x1f0", ARTICLE_DE), ("n-en", "new\x1f1", ARTICLE_EN)])]
    assert set(as_dict(find_duplicates(new, reference))) == {"n-de", "n-en"}
    found = as_dict(find_duplicates(new, reference, reference_exclude=[str(dropped)]))
    assert found == {"n-en": ("r-kept", "exact", 1.0)}  # n-de is kept: its only copy was never curated


def test_rank_decides_the_winner_then_id(tmp_path):
    near = change_words(ARTICLE_EN, {70: "bakers"})
    docs = [("a", "2", ARTICLE_EN), ("b", "1", near), ("c", "1", ARTICLE_EN), ("d", "0", UNRELATED[0])]
    found = as_dict(find_duplicates([write(tmp_path / "s.parquet", docs)]))
    assert found["a"] == ("c", "exact", 1.0)
    assert found["c"][:2] == ("b", "near")  # b and c tie on rank "1": the smaller id wins
    assert set(found) == {"a", "c"}


def test_exact_and_fuzzy_switches(tmp_path):
    near = change_words(ARTICLE_DE, {5: "Gemeinderat"})
    files = [write(tmp_path / "s.parquet", [("a", "0", ARTICLE_DE), ("b", "1", ARTICLE_DE.upper()), ("c", "2", near)])]
    assert as_dict(find_duplicates(files, fuzzy=False)) == {"b": ("a", "exact", 1.0)}
    only_near = as_dict(find_duplicates(files, exact=False))
    assert only_near["b"] == ("a", "near", 1.0) and only_near["c"][:2] == ("a", "near")
    assert find_duplicates(files, exact=False, fuzzy=False).num_rows == 0
    assert find_duplicates([]).schema == DUPLICATE_SCHEMA
    with pytest.raises(ValueError, match="threshold"):
        find_duplicates(files, threshold=0)


def test_chained_component_reports_similarity_to_its_winner(tmp_path):
    words = ARTICLE_DE.split(" ")
    b = change_words(ARTICLE_DE, {i: f"x{i}" for i in (20, 60)})
    c = change_words(b, {i: f"y{i}" for i in (100, 140, 180)})
    files = [write(tmp_path / "s.parquet", [("a", "0", ARTICLE_DE), ("b", "1", b), ("c", "2", c)])]
    found = as_dict(find_duplicates(files, threshold=0.75))
    sig = MinHasher().signatures([ARTICLE_DE, b, c])
    assert len(words) > 200
    assert found["b"] == ("a", "near", pytest.approx(jaccard_estimate(sig[0], sig[1])))
    assert found["c"] == ("a", "near", pytest.approx(jaccard_estimate(sig[0], sig[2])))


def test_reads_through_a_registered_fsspec_filesystem(tmp_path):
    memory = fsspec.filesystem("memory")
    docs = [("a", "0", ARTICLE_EN), ("b", "1", ARTICLE_EN.lower()), ("c", "2", change_words(ARTICLE_EN, {10: "oven"}))]
    with memory.open("/dedup-test/s.parquet", "wb") as handle:
        pq.write_table(signature_table(*map(list, zip(*docs)), MinHasher()), handle)
    con = duckdb.connect()
    con.register_filesystem(memory)
    objects = "SELECT (SELECT count(*) FROM duckdb_tables()) + (SELECT count(*) FROM duckdb_views())"
    before = con.execute(objects).fetchall()
    try:
        found = as_dict(find_duplicates(["memory://dedup-test/s.parquet"], con=con))
        assert found == as_dict(find_duplicates([write(tmp_path / "s.parquet", docs)]))
        assert set(found) == {"b", "c"}
        assert con.execute(objects).fetchall() == before  # no temporary tables or views left behind
    finally:
        con.close()
        memory.rm("/dedup-test", recursive=True)


def test_huge_bucket_stays_linear(tmp_path):
    # 3,000 copies of one text land in the same bucket of every band: all-pairs would be 4.5M pairs.
    docs = [(f"d{i:05d}", f"{i:05d}", ARTICLE_EN) for i in range(3000)]
    path = write(tmp_path / "s.parquet", docs)
    started = time.perf_counter()
    result = find_duplicates([path], exact=False)
    assert time.perf_counter() - started < 10
    assert result.num_rows == 2999
    assert set(result.column("duplicate_of").to_pylist()) == {"d00000"}
    assert set(result.column("similarity").to_pylist()) == {1.0}


VOCAB_DE = """der die das und ist nicht ein eine mit auf für von zu im den dem sich auch es wird
sind war aber noch nach bei aus wie nur oder wenn schon mehr sehr dann heute immer hier jetzt Stadt Land Haus
Wasser Straße Schule Kinder Arbeit Zeit Jahr Woche Abend Morgen Garten Fenster Licht Berg Wald Feld Wetter
Regen Sonne Markt Brücke Fluss Bahnhof Zug Rathaus Bürger Polizei Kirche Museum Buch Zeitung Geld Preis
Woche Familie Freund Nachbar Wagen Weg Platz groß klein alt neu gut schnell langsam früh spät""".split()
VOCAB_EN = """the and is not a with on for of to in it will are was but still after at from how only
or if already more very then today always here now city country house water street school children
work time year week evening morning garden window light hill forest field weather rain sun market
bridge river station train council police church museum book paper money price family friend
neighbour car road square big small old new good fast slow early late""".split()


def test_synthetic_corpus_across_four_files(tmp_path):
    rng = np.random.default_rng(2024)
    n_docs, n_planted = 20_000, 1_000
    texts = []
    for i in range(n_docs - n_planted):
        vocab = VOCAB_DE if i % 2 else VOCAB_EN
        texts.append(" ".join(rng.choice(vocab, int(rng.integers(150, 250)))))
    originals = rng.choice(len(texts), n_planted, replace=False)
    for source in originals:
        words = texts[source].split(" ")
        for position in rng.choice(len(words), int(rng.integers(1, 3)), replace=False):
            words[position] = "geändert" + str(position)
        texts.append(" ".join(words))
    ids = [f"doc{i:05d}" for i in range(n_docs)]
    ranks = [f"{r:06d}" for r in rng.permutation(n_docs)]
    # Each planted pair: the document with the higher rank is the duplicate of the other.
    truth = {}
    for k, source in enumerate(originals):
        copy = n_docs - n_planted + k
        loser, winner = (copy, source) if ranks[copy] > ranks[source] else (source, copy)
        truth[ids[loser]] = ids[winner]

    hasher = MinHasher()
    order = rng.permutation(n_docs)
    files = []
    for part, chunk in enumerate(np.array_split(order, 4)):
        table = signature_table([ids[i] for i in chunk], [ranks[i] for i in chunk], [texts[i] for i in chunk], hasher)
        pq.write_table(table, tmp_path / f"part-{part}.parquet")
        files.append(str(tmp_path / f"part-{part}.parquet"))

    started = time.perf_counter()
    result = find_duplicates(files)
    seconds = time.perf_counter() - started
    found = as_dict(result)
    correct = sum(1 for doc, (winner, kind, _) in found.items() if truth.get(doc) == winner and kind == "near")
    recall, precision = correct / len(truth), correct / max(len(found), 1)
    print(f"recall {recall:.4f} precision {precision:.4f} dedup {seconds:.2f}s")
    assert recall >= 0.9 and precision >= 0.95, (recall, precision)
    assert seconds < 10, seconds


# --- partitioned dedup (tasks/dedup_partitioned.py) must decide exactly as find_duplicates -------------


def random_signature_files(tmp_path, seed: int, n_docs: int = 600, n_files: int = 5, n_ref_files: int = 2) -> dict:
    """Random signatures with planted exact duplicates, near duplicates, chains (A≈B≈C, A≉C), tied ranks,
    repeated ids, reference files (one of them also given as new) and excluded reference ranks."""
    rng = np.random.default_rng(seed)
    hasher = MinHasher()
    width = hasher.config.num_perm
    minhash = rng.integers(0, 2**32, (n_docs, width), dtype=np.uint64).astype(np.uint32)
    exact = rng.integers(0, 2**63, n_docs, dtype=np.uint64)
    for i in rng.choice(n_docs, n_docs // 3, replace=False):  # near or exact copies of an earlier document
        j = int(rng.integers(0, n_docs))
        minhash[i] = minhash[j]
        kind = rng.random()
        if kind < 0.3:
            exact[i] = exact[j]  # exact duplicate
        else:
            changed = rng.choice(width, int(rng.integers(0, 30)), replace=False)
            minhash[i, changed] = rng.integers(0, 2**32, len(changed), dtype=np.uint64).astype(np.uint32)
    for start in rng.choice(n_docs - 3, 10, replace=False):  # chains: each step ~0.87, ends ~0.75
        for k in (1, 2):
            minhash[start + k] = minhash[start + k - 1]
            changed = rng.choice(width, 14, replace=False)
            minhash[start + k, changed] = rng.integers(0, 2**32, 14, dtype=np.uint64).astype(np.uint32)
    bands = hasher.band_keys(minhash)
    ids = [f"d{int(x):04d}" for x in rng.integers(0, int(n_docs * 0.9), n_docs)]  # some ids repeat
    ranks = [f"r{int(x):03d}" for x in rng.integers(0, n_docs // 2, n_docs)]  # many ties
    owner = rng.integers(0, n_files + n_ref_files, n_docs)

    def table(rows):
        offsets = pa.array(np.arange(0, (len(rows) + 1) * width, width, dtype=np.int32))
        band_offsets = pa.array(np.arange(0, (len(rows) + 1) * bands.shape[1], bands.shape[1], dtype=np.int32))
        return pa.Table.from_arrays([
            pa.array([ids[i] for i in rows], pa.string()), pa.array([ranks[i] for i in rows], pa.string()),
            pa.array(exact[rows], pa.uint64()),
            pa.ListArray.from_arrays(offsets, pa.array(minhash[rows].reshape(-1), pa.uint32())),
            pa.ListArray.from_arrays(band_offsets, pa.array(bands[rows].reshape(-1), pa.uint64())),
        ], schema=SIGNATURE_SCHEMA)

    paths = []
    for f in range(n_files + n_ref_files):
        rows = np.flatnonzero(owner == f)
        path = tmp_path / f"sig-{seed}-{f}.parquet"
        pq.write_table(table(rows), path, row_group_size=64)
        paths.append(str(path))
    new, ref = paths[:n_files], paths[n_files:] + paths[:1]  # the first new file is also a reference
    dropped_ranks = sorted(set(ranks[i] for i in np.flatnonzero(owner >= n_files)))[::4]
    exclude = tmp_path / f"dropped-{seed}.parquet"
    pq.write_table(pa.Table.from_pylist([{"id": "x", "rank": r, "duplicate_of": "y", "kind": "exact", "similarity": 1.0}
                                         for r in dropped_ranks], schema=DUPLICATE_SCHEMA), exclude)
    return {"new": new, "ref": ref, "exclude": [str(exclude)]}


@pytest.mark.parametrize("partitions,seed", [(1, 1), (2, 2), (3, 3), (7, 4)])
def test_partitioned_equals_single_process(tmp_path, partitions, seed):
    files = random_signature_files(tmp_path, seed)
    for refs in (False, True):
        kwargs = {"reference_exclude": files["exclude"]} if refs else {}
        args = (files["new"], files["ref"] if refs else [])
        expected = find_duplicates(*args, **kwargs)
        kinds = set(expected.column("kind").to_pylist())
        assert kinds == {"exact", "near"} and expected.num_rows > 50
        assert find_duplicates_partitioned(*args, partitions=partitions, **kwargs).equals(expected), refs


def test_partitioned_switches_threshold_and_chains(tmp_path):
    files = random_signature_files(tmp_path, 4)
    args = (files["new"], files["ref"])
    for options in ({"exact": False}, {"fuzzy": False}, {"threshold": 0.7}, {"threshold": 0.95}):
        expected = find_duplicates(*args, **options)
        assert expected.num_rows > 0
        assert find_duplicates_partitioned(*args, partitions=3, **options).equals(expected), options
    # chains: some near duplicates are further from their winner than the threshold, as in find_duplicates
    result = find_duplicates(*args)
    near = result.filter(pa.compute.equal(result.column("kind"), "near"))
    assert pa.compute.min(near.column("similarity")).as_py() < 0.8
    assert find_duplicates_partitioned([], partitions=2).equals(DUPLICATE_SCHEMA.empty_table())
    empty = tmp_path / "empty.parquet"  # a shard whose documents were all filtered out
    pq.write_table(SIGNATURE_SCHEMA.empty_table(), empty)
    for new in ([str(empty)], [str(empty), *files["new"]]):
        assert find_duplicates_partitioned(new, files["ref"], partitions=2).equals(find_duplicates(new, files["ref"]))
    with pytest.raises(ValueError, match="threshold"):
        find_duplicates_partitioned(*args, threshold=1.5)


def test_how_dedup_is_split_is_not_in_the_unit_hash():
    from kurate.tasks.curate import CurateHashes, DedupConfig
    from kurate.tasks.ingest import IngestConfig
    from kurate.tasks.quality import QualityConfig

    base = CurateHashes.of(IngestConfig(), QualityConfig(), DedupConfig())
    split = DedupConfig(partitions=5, docs_per_task=10, task_memory_mb=256)
    assert set(DedupConfig.SCALING) == {"partitions", "docs_per_task", "task_memory_mb"}
    assert CurateHashes.of(IngestConfig(), QualityConfig(), split) == base


@pytest.mark.e2e
def test_partitioned_on_ray_tasks_equals_single_process(tmp_path, ray_local):
    """Through the flow's own task runner (flows/curate.py: dedup tasks as Ray tasks via run_per_shard)."""
    from kurate.flows.config import PipelineConfig
    from kurate.flows.curate import _dedup_tasks

    files = random_signature_files(tmp_path, 5)
    config = PipelineConfig(root=str(tmp_path / "root"))
    assert config.ray.executor == "ray"
    steps = []

    def on_ray(fn, items, args):
        steps.append((fn.__name__, len(items)))
        return _dedup_tasks(config)(fn, items, args)

    expected = find_duplicates(files["new"], files["ref"], reference_exclude=files["exclude"])
    found = find_duplicates_partitioned(files["new"], files["ref"], reference_exclude=files["exclude"], partitions=2,
                                        scratch=str(tmp_path / "scratch"), fs=fsspec.filesystem("file"), map_tasks=on_ray)
    assert found.equals(expected)
    assert [s for s, _ in steps][:4] == ["exact_task", "lsh_task", "verify_task", "components_task"]
    assert (tmp_path / "scratch" / "pairs-1.parquet").exists()
