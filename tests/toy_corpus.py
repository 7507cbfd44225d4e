"""A small German corpus built from word lists, for the CPU tests (test-only; no files needed).

    german_paragraphs(300, seed=0)  →  300 paragraphs of 2–5 grammatical German sentences
"""

from __future__ import annotations

import random

_SUBJECTS = [
    ("Der alte Müller", "er"), ("Die junge Ärztin", "sie"), ("Unser Nachbar", "er"), ("Die Bäckerin", "sie"),
    ("Der Bürgermeister", "er"), ("Meine Großmutter", "sie"), ("Das kleine Mädchen", "es"), ("Der Förster", "er"),
    ("Die Lehrerin", "sie"), ("Ein müder Wanderer", "er"), ("Die Schülerin", "sie"), ("Der Gärtner", "er"),
]
_VERBS = ["kauft", "sucht", "findet", "verkauft", "bringt", "trägt", "repariert", "bemalt", "zählt", "wäscht"]
_OBJECTS = [
    "frische Äpfel", "einen schweren Koffer", "das rote Fahrrad", "alte Bücher", "eine Tüte Brötchen",
    "den grünen Schlüssel", "zwölf Körbe Kartoffeln", "die Zeitung von gestern", "ein Glas Honig",
    "drei Stühle", "den Brief an Jürgen", "warme Socken",
]
_PLACES = [
    "auf dem Markt", "im Garten", "am Bahnhof", "in der Küche", "hinter der Kirche", "an der Brücke",
    "im Rathaus", "auf dem Dachboden", "neben dem Brunnen", "in Köln", "in München", "am Seeufer",
]
_TIMES = ["am Morgen", "im Frühling", "jeden Samstag", "nach dem Regen", "um 7 Uhr", "heute", "im Jahr 1998",
          "gegen Mittag", "übermorgen", "im Winter"]
_REASONS = ["weil es regnet", "weil der Laden schließt", "obwohl niemand hilft", "damit alle satt werden",
            "weil die Straße gesperrt ist", "obwohl es schon spät ist"]
_FEELINGS = ["freut sich", "ärgert sich", "lacht laut", "schweigt", "wundert sich", "seufzt"]


def german_sentence(rng: random.Random) -> str:
    subj, pron = rng.choice(_SUBJECTS)
    verb, obj = rng.choice(_VERBS), rng.choice(_OBJECTS)
    kind = rng.randrange(4)
    if kind == 0:
        return f"{subj} {verb} {rng.choice(_TIMES)} {obj} {rng.choice(_PLACES)}."
    if kind == 1:
        return f"{rng.choice(_TIMES).capitalize()} {verb} {subj[0].lower() + subj[1:]} {obj}, {rng.choice(_REASONS)}."
    if kind == 2:
        return f"{subj} {verb} {obj} {rng.choice(_PLACES)}, und {pron} {rng.choice(_FEELINGS)}."
    return f"„Wo ist {obj.split(' ', 1)[-1]}?“, fragt {subj[0].lower() + subj[1:]} {rng.choice(_PLACES)}."


def german_paragraphs(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(german_sentence(rng) for _ in range(rng.randint(2, 5))) for _ in range(n)]
