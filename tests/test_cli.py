"""The CLI: help for newcomers, simulate writes AnnData, errors are one line."""

import anndata as ad
import numpy as np
from typer.testing import CliRunner

from causalpert.cli import app

runner = CliRunner()


def test_help_lists_commands():
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    assert "simulate" in res.output and "demo" in res.output


def test_simulate_writes_the_protocol(tmp_path):
    out = tmp_path / "sub" / "X.h5ad"
    res = runner.invoke(app, ["simulate", "--protocol", "paper-synthetic", "--seed", "0",
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    adata = ad.read_h5ad(out)
    assert (adata.obs["split"] == "train").sum() == 8800
    assert adata.uns["perturbation_features"].shape == (60, 32)
    assert list(tmp_path.joinpath("sub").iterdir()) == [out]  # no temporary files left
    again = tmp_path / "Y.h5ad"
    runner.invoke(app, ["simulate", "--seed", "0", "--out", str(again)])
    np.testing.assert_array_equal(ad.read_h5ad(again).X, adata.X)


def test_unknown_protocol_is_one_line_error(tmp_path):
    out = tmp_path / "X.h5ad"
    res = runner.invoke(app, ["simulate", "--protocol", "nope", "--out", str(out)])
    assert res.exit_code == 1
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "unknown protocol 'nope'" in lines[0]
    assert "Traceback" not in res.output and not out.exists()


def test_demo_prints_recovered_graph_auprc():
    res = runner.invoke(app, ["demo", "--steps", "100", "--no-gim"],
                        env={"CAUSALPERT_PROGRESS": "0"})
    assert res.exit_code == 0, res.output
    assert "graph_auprc" in res.output
