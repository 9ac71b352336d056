"""The CLI: help for newcomers, simulate writes AnnData, errors are one line."""

import anndata as ad
import numpy as np
from typer.testing import CliRunner

from causalpert.cli import _load_model, app

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


def test_demo_writes_report_with_figures(tmp_path):
    """The main job end to end with 20 training steps per model (a smoke test of the wiring;
    `make demo` runs the real thing)."""
    out = tmp_path / "report"
    res = runner.invoke(app, ["demo", "--steps", "20", "--workers", "1", "--out", str(out)],
                        env={"CAUSALPERT_PROGRESS": "0"})
    assert res.exit_code == 0, res.output
    assert "target_rank" in res.output and "graph_auprc" in res.output
    page = (out / "index.html").read_text()
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) >= 4 and all(p.stat().st_size > 5000 for p in pngs)
    assert all(p.name in page for p in pngs)
    assert (out / "runs" / "sachs" / "summary.csv").exists()
    # one answer: the Sachs target ranks printed first are those of the sachs benchmark's gim
    import pandas as pd

    res_csv = pd.read_csv(out / "runs" / "sachs" / "results.csv")
    bench = res_csv[(res_csv["method"] == "gim") & (res_csv["metric"] == "target_rank")]
    printed = {cells[0]: float(cells[2]) for ln in res.output.splitlines()
               if ln.startswith("│") and len(cells := [c.strip() for c in ln.split("│")[1:-1]])
               == 6 and cells[0] in set(bench["context"])}
    assert printed == dict(zip(bench["context"], bench["value"], strict=True))
    res = runner.invoke(app, ["report", str(out / "runs" / "sachs"), "--html"])
    assert res.exit_code == 0 and (out / "runs" / "sachs" / "report" / "index.html").exists()


def _tiny_data(tmp_path):
    from causalpert.data import SyntheticDesign, simulate

    design = SyntheticDesign(d=5, n_features=6, n_train_perturbations=5, n_ood_perturbations=2,
                             n_control=120, n_test_cells=20)
    adata = simulate("paper-synthetic", seed=0, design=design)
    path = tmp_path / "cells.h5ad"
    adata[adata.obs["split"] == "train"].copy().write_h5ad(path)
    return path


def test_fit_predict_targets_graph(tmp_path):
    import pandas as pd

    data = _tiny_data(tmp_path)
    model = tmp_path / "model"
    env = {"CAUSALPERT_PROGRESS": "0"}
    res = runner.invoke(app, ["fit", str(data), "--out", str(model), "--steps", "30",
                              "--refit-steps", "10"], env=env)
    assert res.exit_code == 0, res.output
    assert "fitted gim" in res.output and (model / "model.safetensors").exists()
    pred = tmp_path / "pred.h5ad"
    res = runner.invoke(app, ["predict", str(model), "--perturbation", "pert_00",
                              "--perturbation", "pert_01", "--dose", "1.5", "--n-cells", "12",
                              "--out", str(pred)])
    assert res.exit_code == 0, res.output
    p = ad.read_h5ad(pred)
    assert p.shape == (24, 5) and set(p.obs["perturbation"]) == {"pert_00", "pert_01"}
    assert (p.obs["dose"] == 1.5).all() and np.isfinite(p.X).all()
    csv = tmp_path / "t.csv"
    res = runner.invoke(app, ["targets", str(model), "--top", "2", "--out", str(csv)])
    assert res.exit_code == 0 and "pert_04" in res.output
    probs = pd.read_csv(csv, index_col=0)
    assert probs.shape == (7, 5) and probs.to_numpy().max() <= 1  # 5 seen + 2 by features
    # the printed rows: best first by the score that orders them, π beside it
    rows = [[c.strip() for c in ln.split("│")[1:-1]] for ln in res.output.splitlines()
            if ln.startswith("│")]
    assert len(rows) == 14 and "score" in res.output and "π (probability)" in res.output
    fitted = _load_model(model)
    scores = fitted.target_scores()
    for k, name in enumerate(scores.index):
        (p1, r1, g1, s1, pi1), (p2, r2, g2, s2, pi2) = rows[2 * k], rows[2 * k + 1]
        assert float(pi2) == round(probs.loc[name, g2], 3)
        assert (p1, r1, r2, p2) == (name, "1", "2", "")
        assert [g1, g2] == list(scores.loc[name].sort_values(ascending=False).index[:2])
        assert float(s1) >= float(s2) and float(s1) == round(scores.loc[name].max(), 3)
        assert float(pi1) == round(probs.loc[name, g1], 3)
    res = runner.invoke(app, ["graph", str(model), "--top", "3"])
    assert res.exit_code == 0 and "strongest edges" in res.output
    # errors: unknown perturbation, no name, missing model, model without target scores
    res = runner.invoke(app, ["predict", str(model), "--perturbation", "nope", "--out",
                              str(tmp_path / "x.h5ad")])
    assert res.exit_code == 1 and "unknown perturbation 'nope'" in res.output
    res = runner.invoke(app, ["predict", str(model), "--out", str(tmp_path / "x.h5ad")])
    assert res.exit_code == 1 and "give --perturbation NAME or --smiles" in res.output
    assert not (tmp_path / "x.h5ad").exists()
    res = runner.invoke(app, ["targets", str(tmp_path / "missing")])
    assert res.exit_code == 1 and "not a causalpert checkpoint" in res.output
    ctrl = tmp_path / "ctrl"
    assert runner.invoke(app, ["fit", str(data), "--model", "control", "--out",
                               str(ctrl)]).exit_code == 0
    res = runner.invoke(app, ["targets", str(ctrl)])
    assert res.exit_code == 1 and "gives no target scores" in res.output


def test_fit_an_ensemble_and_rank_experiments(tmp_path):
    """`fit --members 2 --subsample 0.6` writes a cp.Ensemble whose members saw distinct
    subsamples; `design` ranks experiments from it; the options' misuse is one line."""
    from causalpert.models import Ensemble

    data = _tiny_data(tmp_path)
    env = {"CAUSALPERT_PROGRESS": "0"}
    ens_dir = tmp_path / "ens"
    res = runner.invoke(app, ["fit", str(data), "--out", str(ens_dir), "--steps", "20",
                              "--refit-steps", "5", "--members", "2", "--subsample", "0.6",
                              "--seed", "3"], env=env)
    assert res.exit_code == 0, res.output
    assert "fitted an ensemble of 2 × gim" in res.output
    ens = _load_model(ens_dir)
    assert isinstance(ens, Ensemble) and [m.seed for m in ens.members_] == [3, 4]
    assert ens.options["subsample"] == 0.6
    control = [len(m.control_cells_) for m in ens.members_]  # 60 % of the 120 control cells
    assert control == [72, 72]
    (tmp_path / "names.txt").write_text("pert_00\npert_03\n")
    res = runner.invoke(app, ["design", str(ens_dir), "--candidates",
                              str(tmp_path / "names.txt"), "--top", "1"], env=env)
    assert res.exit_code == 0, res.output
    for args, msg in ((["--subsample", "0.5"], "add --members K"),
                      (["--members", "0"], "--members must be ≥ 1"),
                      (["--members", "2", "--backed"], "drop --backed"),
                      (["--members", "2", "--subsample", "2"], "subsample must be a fraction")):
        res = runner.invoke(app, ["fit", str(data), "--out", str(tmp_path / "bad"), *args],
                            env=env)
        lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
        assert res.exit_code == 1 and len(lines) == 1 and msg in lines[0], res.output
        assert not (tmp_path / "bad").exists()


def test_fit_backed_and_bad_inputs(tmp_path):
    data = _tiny_data(tmp_path)
    env = {"CAUSALPERT_PROGRESS": "0"}
    res = runner.invoke(app, ["fit", str(data), "--backed", "--model", "additive", "--out",
                              str(tmp_path / "m")], env=env)
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["fit", str(tmp_path / "nope.h5ad"), "--out", str(tmp_path / "m2")])
    assert res.exit_code == 1 and "nope.h5ad not found" in res.output
    fake = tmp_path / "data.h5ad"
    fake.write_text("gene,cell1\nA,1\n")
    for flag in ([], ["--backed"]):
        res = runner.invoke(app, ["fit", str(fake), *flag, "--out", str(tmp_path / "m5")])
        lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
        assert res.exit_code == 1 and len(lines) == 1, res.output
        assert "data.h5ad is not an HDF5/AnnData file (a text file" in lines[0]
        assert "pass an .h5ad written by AnnData.write_h5ad" in lines[0]
        assert "Traceback" not in res.output and not (tmp_path / "m5").exists()
    res = runner.invoke(app, ["fit", str(data), "--model", "magic", "--out", str(tmp_path / "m3")])
    assert res.exit_code == 1 and "unknown model 'magic'" in res.output
    res = runner.invoke(app, ["fit", str(data), "--control", "DMSO", "--out", str(tmp_path / "m4")])
    assert res.exit_code == 1 and "no control cells" in res.output
    res = runner.invoke(app, ["fit", str(data), "--reselect-steps", "-1", "--out",
                              str(tmp_path / "m6")])
    assert res.exit_code == 1 and "reselect_steps must be ≥ 0" in res.output
    res = runner.invoke(app, ["fit", str(data), "--steps", "20", "--refit-steps", "5",
                              "--reselect-steps", "5", "--out", str(tmp_path / "m7")], env=env)
    assert res.exit_code == 0, res.output
    from causalpert.models import PerturbationModel

    fitted = PerturbationModel.load(tmp_path / "m7")
    assert fitted.config.reselect_steps == 5


def test_knockout_screen_fit_and_rank_genes_to_knock_out(tmp_path):
    """The quick tour's knockout loop: an ensemble fitted on half the knockouts of a
    knockout-screen (intended targets read from uns, no dose) ranks the other genes as
    knockouts to run next; `simulate --protocol knockout-screen` writes such a screen."""
    import pandas as pd

    from causalpert.data import SyntheticDesign, simulate

    full = simulate("knockout-screen", seed=0, design=SyntheticDesign(
        n_knockout_genes=6, n_control=120, n_knockout_cells=40))
    seen = ["control", "g00", "g02", "g04"]
    full[full.obs["perturbation"].isin(seen)].copy().write_h5ad(tmp_path / "ko.h5ad")
    env = {"CAUSALPERT_PROGRESS": "0"}
    res = runner.invoke(app, ["fit", str(tmp_path / "ko.h5ad"), "--dose-key", "none",
                              "--members", "2", "--steps", "20", "--refit-steps", "5",
                              "--out", str(tmp_path / "ens")], env=env)
    assert res.exit_code == 0, res.output
    (tmp_path / "genes.txt").write_text("g01\ng03\ng05\n")
    res = runner.invoke(app, ["design", str(tmp_path / "ens"), "--candidates",
                              str(tmp_path / "genes.txt"), "--top", "2", "--out",
                              str(tmp_path / "ranked.csv")], env=env)
    assert res.exit_code == 0, res.output
    ranked = pd.read_csv(tmp_path / "ranked.csv")
    assert sorted(ranked["candidate"]) == ["g01", "g03", "g05"]
    assert ranked["selected"].sum() == 2 and ranked["edge_gain"].notna().all()
    res = runner.invoke(app, ["simulate", "--protocol", "knockout-screen", "--out",
                              str(tmp_path / "sim.h5ad")])
    assert res.exit_code == 0, res.output
    sim = ad.read_h5ad(tmp_path / "sim.h5ad")
    assert sim.n_vars == 40 and sim.uns["intended_targets"]["g07"] == "g07"
