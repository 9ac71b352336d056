"""The HTML report: a page with relative PNG links, tables as HTML, nothing half-written."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from typer.testing import CliRunner

from causalpert.benchmark.html_report import Section, write_report
from causalpert.cli import app


def _fake_run(run_dir):
    """A summary.csv as the runner writes it for a 2-seed sachs run of three methods."""
    table = []
    for method, base in (("gim", 0.2), ("mlp", 0.1), ("control", 1.0)):
        metrics = [("id", "edist_rel", base), ("id", "edist", 2 * base),
                   ("train", "fit_seconds", 3.0)]
        if method != "control":
            metrics += [("targets", "target_rank", 10 * base), ("targets", "target_top2", 0.5),
                        ("graph", "graph_auprc", base)]
        table += [{"protocol": "sachs", "method": method, "split": s, "metric": m, "mean": v,
                   "sd": 0.01, "n_seeds": 2} for s, m, v in metrics]
    run_dir.mkdir(parents=True)
    pd.DataFrame(table).to_csv(run_dir / "summary.csv", index=False)
    return run_dir


def test_report_html_on_a_fake_run(tmp_path):
    run = _fake_run(tmp_path / "run")
    res = CliRunner().invoke(app, ["report", str(run), "--html"])
    assert res.exit_code == 0, res.output
    assert "edist_rel" in res.output  # the text table is still printed
    out = run / "report"
    page = (out / "index.html").read_text()
    pngs = sorted(out.glob("*.png"))
    # id edist_rel, id edist, targets target_rank, target_top2, graph graph_auprc
    assert len(pngs) == 5 and all(p.stat().st_size > 5000 for p in pngs)
    assert all(f'src="{p.name}"' in page for p in pngs)  # relative paths
    assert "<table" in page and "causalpert report" in page
    assert page.count("<figcaption") == 5
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files
    res = CliRunner().invoke(app, ["report", str(run), "--markdown"])
    assert res.exit_code == 0 and res.output.startswith("| method |")


def test_write_report_accepts_tuples_and_replaces_old_figures(tmp_path):
    def fig():
        f, ax = plt.subplots()
        ax.plot([0, 1], [1, 0])
        return f

    table = pd.DataFrame({"x": [1.23456]}, index=["a"])
    index = write_report(tmp_path, title="T <1>", command="cmd --x", intro="dropped: nothing",
                         sections=[("A", "text a", fig(), "read me"), ("B", "text b", table),
                                   Section("C", figure=fig())])
    page = index.read_text()
    assert "T &lt;1&gt;" in page and "read me" in page and "1.235" in page
    assert "dropped: nothing" in page
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["fig00-a.png", "fig02-c.png"]
    write_report(tmp_path, title="T", command="c", sections=[("A", "", fig())])
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["fig00-a.png"]
    assert not plt.get_fignums()  # figures are closed once saved
    with pytest.raises(ValueError, match="Figure or a DataFrame"):
        write_report(tmp_path, title="T", command="c", sections=[("A", "", 3)])
