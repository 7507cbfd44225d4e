"""kurate's demo crawl: hand-written pages shipped as data files, and the WARC builder.

Real crawl files are large, belong to someone else and change over time, so ``make demo`` and
the tests read WARCs built here instead (``python -m kurate.demo.warc OUT.warc.gz``).  Nothing
in the pipeline imports this package.

* :mod:`kurate.demo.pages` — the pages (``pages/*.html`` + ``pages/pages.json``),
* :mod:`kurate.demo.bulk` — generated pages for files that take a few seconds to process,
* :mod:`kurate.demo.records` — a minimal, byte-reproducible WARC/1.1 writer,
* :mod:`kurate.demo.warc` — the demo and bulk WARCs and the command line.
"""
