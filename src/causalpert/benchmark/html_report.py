"""A self-contained HTML report: ``index.html`` plus one PNG per figure, all written atomically.

``write_report(out_dir, title=..., command=..., sections=[Section(...), ...])``: a section has
a heading, a sentence or two, and a matplotlib figure (saved as PNG, captioned) or a DataFrame
(an HTML table).
"""

from __future__ import annotations

import html
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

STYLE = """body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right}th{background:#f3f3f3}img{max-width:100%;border:1px solid #eee}
.caption{color:#555;font-size:13px}code{background:#f3f3f3;padding:1px 4px}"""


@dataclass
class Section:
    """One block of the report: ``figure`` (matplotlib Figure) or ``table`` (DataFrame)."""

    heading: str
    text: str = ""
    figure: object | None = None
    table: pd.DataFrame | None = None
    caption: str = ""


def _atomic_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "figure"


def write_report(out_dir, *, title: str, command: str, sections: list[Section]) -> Path:
    """Write ``out_dir/index.html`` and its PNGs; returns the path of index.html."""
    import io

    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    body = [f"<h1>{html.escape(title)}</h1>",
            f"<p>Reproduce with <code>{html.escape(command)}</code></p>"]
    for i, sec in enumerate(sections):
        body.append(f"<h2>{html.escape(sec.heading)}</h2>")
        if sec.text:
            body.append(f"<p>{html.escape(sec.text)}</p>")
        if sec.figure is not None:
            name = f"fig{i:02d}-{_slug(sec.heading)}.png"
            buf = io.BytesIO()
            sec.figure.savefig(buf, format="png", dpi=110, bbox_inches="tight")
            plt.close(sec.figure)
            _atomic_bytes(out / name, buf.getvalue())
            body.append(f'<img src="{name}" alt="{html.escape(sec.heading)}">')
            if sec.caption:
                body.append(f'<p class="caption">{html.escape(sec.caption)}</p>')
        if sec.table is not None:
            body.append(sec.table.to_html(border=0, float_format=lambda v: f"{v:.3f}"))
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{STYLE}</style></head><body>{''.join(body)}</body></html>")
    index = out / "index.html"
    _atomic_bytes(index, page.encode())
    return index


def summary_sections(summary: pd.DataFrame, *, name: str) -> list[Section]:
    """The headline table and one bar chart per headline (split, metric) present."""
    import matplotlib.pyplot as plt

    from ..plotting import benchmark_bars
    from .report import HEADLINE, headline_table

    secs = [Section(f"{name}: headline table", "Mean ± sd over seeds (sd omitted for one seed).",
                    table=headline_table(summary))]
    present = set(zip(summary["split"], summary["metric"], strict=True))
    for split, metric in HEADLINE:
        if (split, metric) in present and metric != "fit_seconds" and split != "train":
            fig, ax = plt.subplots(figsize=(5, 3))
            benchmark_bars(summary, metric=metric, split=split, ax=ax)
            better = "lower" if metric in ("edist", "edist_rel", "target_rank") else "higher"
            secs.append(Section(f"{name}: {split} {metric}", figure=fig,
                                caption=f"{metric} on the {split} split per method, mean ± sd "
                                        f"over seeds; {better} is better."))
    return secs
