"""Generated demo pages: any number of distinct German or English local-news pages.

For tests that need a file which takes a few seconds to process.  Sentences are assembled from
``bulk_vocabulary.json`` (see :mod:`kurate.demo.pages`) as subject + verb + [modifier] + object,
the verb agreeing with the subject (``sg``/``pl``).  Subjects start with a capitalised article
or adjective, so that lower-casing their first letter lets them follow an opener with
verb-second word order.
"""

from __future__ import annotations

import hashlib
import html
import random
from typing import Iterator
from urllib.parse import urlsplit

from kurate.demo.pages import DemoPage, bulk_vocabulary

__all__ = ["bulk_pages"]

_BULK_SITES = {
    "de": ("https://www.example-lokalanzeiger.de", "https://www.example-stadtnachrichten.de",
           "https://blog.example-quartier.de"),
    "en": ("https://local.example.com", "https://www.example-herald.org",
           "https://news.example.net"),
}


def _bulk_sentence(rng: random.Random, vocab: dict[str, list], lang: str) -> str:
    subject, number = rng.choice(vocab["subjects"])
    verb = rng.choice(vocab["verbs"])[0 if number == "sg" else 1]
    obj = rng.choice(vocab["objects"])
    shape = rng.random()
    if shape < 0.45:
        modifier = rng.choice(vocab["modifiers"])
        # German puts the adverbial before the object, English after it.
        if lang == "de":
            return f"{subject} {verb} {modifier} {obj}."
        return f"{subject} {verb} {obj} {modifier}."
    if shape < 0.75:
        opener = rng.choice(vocab["openers"])
        lowered = subject[0].lower() + subject[1:]
        # German: verb second, so the verb comes straight after the opener.
        if lang == "de":
            return f"{opener} {verb} {lowered} {obj}."
        return f"{opener} {lowered} {verb} {obj}."
    reason = rng.choice(vocab["reasons"])
    return f"{subject} {verb} {obj}, {vocab['because'][0]} {reason}."


def _bulk_page(rng: random.Random, vocabulary: dict[str, dict[str, list]], number: int) -> DemoPage:
    lang = "de" if rng.random() < 0.6 else "en"
    vocab = vocabulary[lang]
    paragraphs = []
    for _ in range(rng.randint(4, 7)):
        sentences = (_bulk_sentence(rng, vocab, lang) for _ in range(rng.randint(4, 6)))
        paragraphs.append(" ".join(sentences))
    first = paragraphs[0].split(".")[0]
    title = f"{rng.choice(vocab['title_prefix'])}: {first} ({number})"
    base = rng.choice(_BULK_SITES[lang])
    url = f"{base}/{2026 - number % 3}/{number:06d}-{rng.getrandbits(32):08x}.html"
    nav = "".join(f'<li><a href="/{item.lower()}/">{item}</a></li>' for item in vocab["nav"])
    footer = " | ".join(f'<a href="/{item.lower().replace(" ", "-")}">{item}</a>'
                        for item in vocab["footer"])
    body = (
        f'<!DOCTYPE html>\n<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title, quote=False)}</title>\n</head>\n<body>\n"
        f'<header><a href="/">{urlsplit(base).hostname}</a><nav><ul>{nav}</ul></nav></header>\n'
        "<main>\n<article>\n"
        f"<h1>{html.escape(title, quote=False)}</h1>\n"
        + "".join(f"<p>{html.escape(p, quote=False)}</p>\n" for p in paragraphs)
        + "</article>\n</main>\n"
        f"<footer>{footer} | © 2026</footer>\n</body>\n</html>\n"
    )
    return DemoPage(url, body.encode("utf-8"), kind=f"bulk-{lang}", lang=lang,
                    main_text="\n\n".join(paragraphs))


def bulk_pages(n_pages: int, seed: int = 0) -> Iterator[DemoPage]:
    """*n_pages* generated pages (German or English), deterministic in *seed*.

    Every page has a different main text (a repeat is regenerated) and is about 2-5 KB.
    """
    rng = random.Random(seed)
    vocabulary = bulk_vocabulary()
    seen: set[bytes] = set()
    for number in range(n_pages):
        while True:
            page = _bulk_page(rng, vocabulary, number)
            key = hashlib.sha1(page.main_text.encode("utf-8")).digest()
            if key not in seen:
                seen.add(key)
                break
        yield page
