"""Reports as pictures: one plot per report, shown in the Prefect UI and written under ``<root>/reports/``.

A report is a title, a PNG, a few lines of text and tables. ``publish_report`` turns it into

- a Prefect *markdown* artifact with the PNG embedded as ``![title](data:image/png;base64,…)``:
  Prefect 3.8's UI (the default one and ``/v2``) renders a markdown image as an ``<img>`` and
  accepts a ``data:`` source, so the picture travels inside the artifact and shows for every root
  (local, ``s3://``, ``memory://``) without a file server. An *image* artifact
  (``create_image_artifact``) also shows a ``data:`` URL but prints the whole URL as link text under
  the picture, so we do not use it. Both were checked with headless Chromium against a real server
  (the screenshots are in ``docs/images/``);
- ``<root>/reports/<name>.png`` and ``<root>/reports/<name>.html`` (the same picture and tables).

Artifact keys carry the root (``artifact_key``): the UI's Artifacts page shows the latest artifact
per key, so two roots must never share one. Where things live: docs/ARCHITECTURE.md (the flows are
the Prefect edge; the plots themselves are built in ``flows/plots.py``).
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import math
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from kurate.storage.fs import StorageOptions
from kurate.storage.shards import ShardStore

if TYPE_CHECKING:
    from matplotlib.figure import Figure

REPORTS_DIR = "reports"
_SLUG_CHARS = 24


def root_key(root: str) -> str:
    """A short artifact-key prefix for a root: its last path component as a slug + 8 hex of its full path.

    ``/data/runs/demo`` → ``demo-1f0c…``; the hash keeps ``/a/demo`` and ``/b/demo`` apart.
    """
    canonical = root.rstrip("/") if "://" in root else os.path.abspath(os.path.expanduser(root))
    name = canonical.rstrip("/").rsplit("/", 1)[-1].split("://")[-1]
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:_SLUG_CHARS].strip("-") or "root"
    return f"{slug}-{hashlib.sha256(canonical.encode()).hexdigest()[:8]}"


def artifact_key(root: str, *parts: str) -> str:
    """The Prefect artifact key for ``parts`` of this root (lowercase letters, digits and dashes only)."""
    tail = "-".join(re.sub(r"[^a-z0-9]+", "-", p.lower()).strip("-") for p in parts)
    return f"{root_key(root)}-{tail}"


def figure_png(fig: "Figure", dpi: int = 100) -> bytes:
    """The figure as PNG bytes (and closed, so long runs do not accumulate figures)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


@dataclass
class Table:
    title: str
    rows: list[dict]


@dataclass
class Report:
    """One picture with its context; ``name`` is the file stem under ``<root>/reports/`` and the key's tail."""

    name: str
    title: str
    png: bytes
    lines: list[str] = field(default_factory=list)  # markdown paragraphs (plain text with `code` at most)
    tables: list[Table] = field(default_factory=list)


def cell(value: Any) -> str:
    """A table cell: floats to 4 significant digits, NaN/None as an en dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def to_markdown(report: Report) -> str:
    parts = [f"# {report.title}", "", f"![{report.title}]({_data_uri(report.png)})", ""]
    for line in report.lines:
        parts += [line, ""]
    for table in report.tables:
        if not table.rows:
            continue
        columns = list(table.rows[0])
        parts += [f"## {table.title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        parts += ["| " + " | ".join(cell(row.get(c)).replace("|", "\\|") for c in columns) + " |" for row in table.rows]
        parts.append("")
    return "\n".join(parts)


def to_html(report: Report) -> str:
    def table(t: Table) -> str:
        columns = list(t.rows[0])
        head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(cell(r.get(c)))}</td>" for c in columns) + "</tr>" for r in t.rows)
        return f"<h2>{html.escape(t.title)}</h2>\n<table border=1 cellpadding=4><tr>{head}</tr>{body}</table>"

    title = html.escape(report.title)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>kurate: {title}</title></head><body>",
             f"<h1>{title}</h1>", f"<img alt='{title}' src='{report.name}.png'/>"]
    parts += [f"<p>{html.escape(line)}</p>" for line in report.lines]
    parts += [table(t) for t in report.tables if t.rows]
    parts.append("</body></html>")
    return "\n".join(parts)


def publish_report(root: str, report: Report, storage_options: StorageOptions | None = None,
                   description: str | None = None) -> dict:
    """Write ``<root>/reports/<name>.{png,html}`` and publish the report as a markdown artifact with the picture.

    Returns the artifact key and the URLs of both files.
    """
    store = ShardStore(root, storage_options)
    store.fs.makedirs(f"{store.path}/{REPORTS_DIR}", exist_ok=True)
    store.fs.pipe_file(f"{store.path}/{REPORTS_DIR}/{report.name}.png", report.png)
    store.fs.pipe_file(f"{store.path}/{REPORTS_DIR}/{report.name}.html", to_html(report).encode())
    key = artifact_key(root, report.name)
    create_markdown_artifact(to_markdown(report), key=key, description=description or report.title)
    return {"key": key, "png": store.url(REPORTS_DIR, f"{report.name}.png"), "html": store.url(REPORTS_DIR, f"{report.name}.html")}


def publish_table(root: str, name: str, rows: list[dict], description: str) -> UUID:
    """A Prefect table artifact under this root's key for ``name``."""
    return create_table_artifact(rows, key=artifact_key(root, name), description=description)


def publish_markdown(root: str, name: str, markdown: str, description: str) -> UUID:
    """A Prefect markdown artifact under this root's key for ``name``."""
    return create_markdown_artifact(markdown, key=artifact_key(root, name), description=description)
