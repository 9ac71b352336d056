"""A self-contained HTML report: ``index.html`` plus one PNG per figure, all written atomically.

``write_report(out_dir, title=..., command=..., sections=[...])``: a section is a ``Section``
or a tuple ``(heading, text, figure_or_table[, caption])``: a matplotlib Figure (saved as a PNG
next to ``index.html``, linked by a relative path, captioned) or a DataFrame (an HTML table).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from .._io import atomic_write

STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222;
padding:0 1em}table{border-collapse:collapse;font-size:13px;margin:.5em 0}td,th{border:1px solid
#ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}img{max-width:100%;border:1px solid
#eee}.caption{color:#555;font-size:13px;margin-top:.2em}code,pre{background:#f3f3f3;padding:1px
4px}pre{padding:.6em;white-space:pre-wrap}nav li{margin:.1em 0}"""
_FIGURE = re.compile(r"fig\d{2}-.*\.png")


@dataclass
class Section:
    """One block of the report: ``figure`` (matplotlib Figure) and/or ``table`` (DataFrame).

    ``caption`` tells the reader how to read the figure.
    """

    heading: str
    text: str = ""
    figure: object | None = None
    table: pd.DataFrame | None = None
    caption: str = ""


def as_section(section) -> Section:
    """A ``Section`` from a ``Section`` or ``(heading, text, figure or DataFrame[, caption])``."""
    if isinstance(section, Section):
        return section
    if not isinstance(section, tuple | list) or len(section) not in (3, 4):
        raise ValueError("a section is a Section or (heading, text, figure or DataFrame"
                         f"[, caption]), got {type(section).__name__}")
    heading, text, obj, *caption = section
    caption = caption[0] if caption else ""
    if isinstance(obj, pd.DataFrame):
        return Section(str(heading), str(text), table=obj, caption=caption)
    if obj is None or hasattr(obj, "savefig"):
        return Section(str(heading), str(text), figure=obj, caption=caption)
    raise ValueError(f"section {heading!r}: the third item must be a matplotlib Figure or a "
                     f"DataFrame, got {type(obj).__name__}")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:50] or "figure"


def _table_html(table: pd.DataFrame) -> str:
    return table.to_html(border=0, float_format=lambda v: f"{v:.3f}", na_rep="—")


def write_report(out_dir, *, title: str, command: str, sections, intro: str = "") -> Path:
    """Write ``out_dir/index.html`` and its PNGs (figures are closed after saving).

    Args:
        out_dir: directory (created); earlier ``figNN-*.png`` files in it are replaced.
        title: page title.
        command: the command that reproduces the report (shown under "What was run").
        sections: ``Section`` objects or tuples ``(heading, text, figure or DataFrame
            [, caption])``.
        intro: extra sentences under "What was run" (e.g. what was left out to save time).

    Returns:
        The path of ``index.html``.
    """
    import matplotlib.pyplot as plt

    from .. import __version__

    secs = [as_section(s) for s in sections]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = [f"<h1>{html.escape(title)}</h1>", "<h2>What was run</h2>",
            f"<pre>{html.escape(command)}</pre>",
            f"<p>causalpert {__version__}, {when}.</p>"]
    if intro:
        body.append(f"<p>{html.escape(intro)}</p>")
    body.append("<nav><ol>" + "".join(f'<li><a href="#s{i}">{html.escape(s.heading)}</a></li>'
                                      for i, s in enumerate(secs)) + "</ol></nav>")
    written = set()
    for i, sec in enumerate(secs):
        body.append(f'<h2 id="s{i}">{html.escape(sec.heading)}</h2>')
        if sec.text:
            body.append(f"<p>{html.escape(sec.text)}</p>")
        if sec.figure is not None:
            name = f"fig{i:02d}-{_slug(sec.heading)}.png"
            with atomic_write(out / name, "wb") as fh:
                sec.figure.savefig(fh, format="png", dpi=110, bbox_inches="tight")
            plt.close(sec.figure)
            written.add(name)
            alt = sec.caption or sec.heading
            body.append(f'<figure><img src="{name}" alt="{html.escape(alt)}">')
            if sec.caption:
                body.append(f'<figcaption class="caption">{html.escape(sec.caption)}'
                            "</figcaption>")
            body.append("</figure>")
        if sec.table is not None:
            body.append(_table_html(sec.table))
    page = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width'><title>{html.escape(title)}"
            f"</title><style>{STYLE}</style></head><body>{''.join(body)}</body></html>")
    index = out / "index.html"
    with atomic_write(index) as fh:
        fh.write(page)
    for stale in out.iterdir():  # figures of an earlier, longer report
        if _FIGURE.fullmatch(stale.name) and stale.name not in written:
            stale.unlink()
    return index


_READ = {"edist_rel": "dashed line at 1 = predicting no effect (the control cells); below 1 "
                      "beats it",
         "target_rank": "rank of the intended target among all genes (1 = found)",
         "target_top2": "fraction of reagents whose intended target is in the top 2",
         "graph_auprc": "area under the precision-recall curve of the edge scores against the "
                        "reference network"}


def _direction(metric: str) -> str:
    from ..plotting import higher_is_better

    higher = higher_is_better(metric)
    return "" if higher is None else ("higher is better" if higher else "lower is better")


def summary_sections(summary: pd.DataFrame, *, name: str, grid: bool = False) -> list[Section]:
    """The headline table and bar charts of the headline (split, metric) pairs in ``summary``:
    one figure per pair, or with ``grid`` one figure with a panel per pair."""
    import matplotlib.pyplot as plt

    from ..plotting import benchmark_bars
    from .report import HEADLINE, headline_table

    if summary.empty:
        raise ValueError(f"the summary of {name} is empty: no results to report")
    secs = [Section(f"{name}: headline table",
                    "One row per method; mean ± sd over seeds (a single number for one seed). "
                    "'—' = the method does not give this output.",
                    table=headline_table(summary))]
    present = set(zip(summary["split"], summary["metric"], strict=True))
    pairs = [(s, m) for s, m in HEADLINE if (s, m) in present and s != "train"]
    if not pairs:
        return secs
    if grid:
        ncol = min(3, len(pairs))
        nrow = -(-len(pairs) // ncol)
        fig, axes = plt.subplots(nrow, ncol, figsize=(4.6 * ncol, 3.4 * nrow), squeeze=False)
        for ax, (split, metric) in zip(axes.flat, pairs, strict=False):
            benchmark_bars(summary, metric=metric, split=split, ax=ax)
            ax.set_title(f"{metric} on split {split}", fontsize=9)
        for ax in axes.flat[len(pairs):]:
            ax.set_visible(False)
        fig.tight_layout()
        notes = "; ".join(f"{m} ({_direction(m)}{', ' + _READ[m] if m in _READ else ''})"
                          for m in dict.fromkeys(m for _, m in pairs))
        secs.append(Section(f"{name}: bar charts", figure=fig,
                            caption="One panel per headline metric and split, one bar per "
                                    "method (GIM variants in purple), mean ± sd over seeds, "
                                    f"best first. {notes}."))
        return secs
    for split, metric in pairs:
        fig, ax = plt.subplots(figsize=(5.5, 3.2))
        benchmark_bars(summary, metric=metric, split=split, ax=ax)
        ax.set_title(f"{name}: {metric} on split {split}", fontsize=9)
        how = "; ".join(x for x in (_direction(metric), _READ.get(metric, "")) if x)
        secs.append(Section(f"{name}: {metric} ({split})", figure=fig,
                            caption=f"{metric} on the {split} split, one bar per method (GIM "
                                    f"variants in purple), mean ± sd over seeds, best first"
                                    f"{': ' + how if how else ''}."))
    return secs
