"""Arrow schemas of the datasets kurate commits. One entry per dataset; the catalog makes one view each."""

from __future__ import annotations

import pyarrow as pa

CURATED = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),  # stable: hash of WARC-Record-ID (or URL + payload digest)
        pa.field("url", pa.string()),
        pa.field("warc_record_id", pa.string()),
        pa.field("warc_date", pa.timestamp("s", tz="UTC")),
        pa.field("source", pa.string()),  # the input shard URL
        pa.field("content_type", pa.string()),
        pa.field("charset", pa.string()),  # the encoding the payload was decoded with
        pa.field("text", pa.string()),
    ]
)

# One row per document that did not reach `curated`: the first stage that dropped it and why.
REJECTS = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("url", pa.string()),
        pa.field("warc_record_id", pa.string()),
        pa.field("source", pa.string()),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("value", pa.float64()),  # the measured value behind the decision (status code, byte size, …)
        pa.field("detail", pa.string()),  # free text: header snippet, byte offset, exception message
    ]
)

DATASETS: dict[str, pa.Schema] = {"curated": CURATED, "rejects": REJECTS}


def schema_of(dataset: str) -> pa.Schema:
    try:
        return DATASETS[dataset]
    except KeyError:
        raise KeyError(f"unknown dataset {dataset!r}; known: {', '.join(sorted(DATASETS))}") from None
