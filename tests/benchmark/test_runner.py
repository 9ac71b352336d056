"""The benchmark runner: tidy rows, summaries over seeds, files on disk, the CLI."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from causalpert.benchmark.runner import run_benchmark, summarise
from causalpert.cli import app
from causalpert.data import SyntheticDesign

SMALL = SyntheticDesign(d=6, n_features=8, n_train_perturbations=8, n_ood_perturbations=3,
                        n_control=200, n_test_cells=40)


def test_runner_writes_tidy_results_and_oracle_is_the_ceiling(tmp_path):
    results, summary = run_benchmark(
        protocol="paper-synthetic", sim="linear", methods=["control", "additive", "de", "oracle"],
        seeds=[0, 1], out=tmp_path, design=SMALL, progress=False)
    assert set(results.columns) == {"protocol", "method", "seed", "split", "context", "metric",
                                    "value"}
    for f in ("results.csv", "results.json", "summary.csv"):
        assert (tmp_path / f).stat().st_size > 0
    assert len(json.loads((tmp_path / "results.json").read_text())) == len(results)
    s = summary.set_index(["method", "split", "metric"])
    assert s.loc[("oracle", "id", "edist"), "n_seeds"] == 2
    # the truth beats "no effect" everywhere and scores targets and graph perfectly
    for split in ("id", "partial_ood", "full_ood"):
        assert s.loc[("oracle", split, "edist"), "mean"] < 0.2 * s.loc[("control", split,
                                                                         "edist"), "mean"]
    assert s.loc[("oracle", "full_ood", "target_auroc"), "mean"] == 1.0
    assert s.loc[("oracle", "graph", "graph_auprc"), "mean"] == 1.0
    assert ("de", "id", "target_auroc") in s.index and ("de", "id", "edist") not in s.index
    assert (results.query("metric == 'fit_seconds'")["value"] >= 0).all()
    res = CliRunner().invoke(app, ["report", str(tmp_path), "--markdown"])
    assert res.exit_code == 0 and res.output.startswith("| method |")
    assert "| oracle |" in res.output and "1.000" in res.output


def test_summary_averages_contexts_then_seeds():
    rows = pd.DataFrame({
        "protocol": "p", "method": "m", "split": "id", "metric": "edist",
        "seed": [0, 0, 1, 1], "context": ["a", "b", "a", "b"], "value": [1.0, 3.0, 5.0, 7.0]})
    out = summarise(rows).iloc[0]
    assert out["mean"] == 4.0 and out["sd"] == pytest.approx(2.8284271) and out["n_seeds"] == 2


def test_cli_benchmark_rejects_unknown_method(tmp_path):
    res = CliRunner().invoke(app, ["benchmark", "--methods", "gim,magic", "--seeds", "0",
                                   "--out", str(tmp_path)])
    assert res.exit_code == 1 and "unknown method 'magic'" in res.output


def test_target_rank_table_averages_seeds_and_sorts_by_rank():
    import pandas as pd

    from causalpert.benchmark.report import target_rank_table

    rows = [("gim", 0, "a", 1.0), ("gim", 1, "a", 2.0), ("de", 0, "a", 4.0), ("de", 1, "a", 4.0),
            ("gim", 0, "b", 1.0), ("gim", 1, "b", 1.0), ("de", 0, "b", 1.0), ("de", 1, "b", 1.0)]
    res = pd.DataFrame(rows, columns=["method", "seed", "context", "value"])
    res["metric"] = "target_rank"
    table = target_rank_table(pd.concat([res, res.assign(metric="target_auroc")]))
    assert list(table.index) == ["b", "a"]
    assert table.loc["a", "gim"] == 1.5 and table.loc["a", "de"] == 4.0
    assert target_rank_table(res.assign(metric="edist")) is None
