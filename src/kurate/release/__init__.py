"""Releases: the pipeline's product — a named, versioned mix of committed documents in the Hugging
Face Parquet layout, with a dataset card and lineage datasets (docs/ARCHITECTURE.md, README "Releases").

    config.py   ReleaseConfig / ReleaseSource (the `release:` config section)
    select.py   each source's filter as one catalog query (curated ⋈ scores, synthetic, any dataset)
    mix.py      pure Arrow: seeded order, dedup across sources, fraction and word quotas, splits, shards
    card.py     the dataset card (YAML front matter, statistics, score histograms)
    publish.py  build_release: the version key, the files, the commit record; resolve a NAME@vK
    export.py   copy a version to any fsspec URL as Parquet or JSON Lines
"""
