"""Protocol ``design`` (``benchmark.design_protocol``, ``causalpert benchmark --protocol
design``) on a tiny paper-synthetic problem: d = 5, a pool of 6 perturbations, start 2, one
round of 2, K = 2 GIM members at 60 + 20 steps. The numbers mean nothing at this size; the
tests check the protocol's bookkeeping: rows, the shared start set, the chosen sets, k-center,
the acquisition's batch rule, resuming from job files, and the CLI's files."""

import functools
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import causalpert as cp
from causalpert.benchmark import design_protocol as dp
from causalpert.cli import app
from causalpert.data import SyntheticDesign

TINY = SyntheticDesign(d=5, n_features=6, n_train_perturbations=6, n_ood_perturbations=2,
                       n_control=100, n_train_cells=20, n_id_cells=5, n_test_cells=30,
                       n_combo_pairs=0)
SIZES = {"start": 2, "rounds": 1, "batch": 2}
STEPS = 60  # GIM 60 + 20 steps (dp.steps_options(60))


def _jobs(out):
    return {p.name: json.loads(p.read_text()) for p in sorted((out / "jobs").glob("*.json"))}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("design")
    calls = []
    res = dp.run_design_benchmark(seed=0, members=2, gim_options=dp.steps_options(STEPS),
                                  out=out, design=TINY, on_job=lambda *a: calls.append(a),
                                  **SIZES)
    return res, out, calls


def test_rows_have_one_value_per_strategy_round_metric_and_auc_rows(run):
    res, _, calls = run
    assert list(res.columns) == list(dp.COLUMNS)
    curves = res[res["round"].notna()]
    assert len(curves) == 3 * 2 * len(dp.METRICS)  # strategies × rounds 0..1 × metrics
    assert set(curves["metric"]) == set(dp.METRICS)
    assert not curves.duplicated(["strategy", "round", "metric"]).any()
    assert (curves.groupby("round")["n_perturbations"].unique().map(list).to_dict()
            == {0: [2], 1: [4]})
    assert curves["value"].notna().all() and (curves["fit_seconds"] > 0).all()
    auc = res[res["round"].isna()]
    assert sorted(auc["metric"].unique()) == sorted(f"{m}_auc" for m in dp.METRICS)
    for (s, m), g in curves.groupby(["strategy", "metric"]):  # one round: the mean height
        v = g.sort_values("round")["value"].to_numpy()
        got = auc.loc[(auc["strategy"] == s) & (auc["metric"] == f"{m}_auc"), "value"]
        assert got.item() == pytest.approx(v.mean())
    assert [c[:2] for c in calls] == [(s, r) for s in dp.DEFAULT_STRATEGIES for r in (0, 1)]
    assert not any(c[2] for c in calls)  # nothing to reuse on a first run


def test_strategies_share_the_start_set_and_its_fit(run):
    res, out, _ = run
    jobs = _jobs(out)
    starts = [jobs[f"design-linear-seed0-{s}-round0.json"]["chosen"] for s in dp.DEFAULT_STRATEGIES]
    assert starts[0] == starts[1] == starts[2] == dp.start_set(
        [f"pert_{i:02d}" for i in range(6)], 2, 0)
    r0 = res[res["round"] == 0].pivot_table(index="metric", columns="strategy",
                                            values="value")
    assert (r0.nunique(axis=1) == 1).all()  # one fit, scored once
    assert res.loc[res["round"] == 0, "fit_seconds"].nunique() == 1


def test_chosen_sets_grow_by_batch_without_repeats(run):
    _, out, _ = run
    jobs = _jobs(out)
    pool = {f"pert_{i:02d}" for i in range(6)}
    for s in dp.DEFAULT_STRATEGIES:
        j0, j1 = (jobs[f"design-linear-seed0-{s}-round{r}.json"] for r in (0, 1))
        assert len(j0["next"]) == 2 and not set(j0["next"]) & set(j0["chosen"])
        assert j1["chosen"] == j0["chosen"] + j0["next"]
        assert len(set(j1["chosen"])) == 4 and set(j1["chosen"]) <= pool
        assert j1["next"] is None  # the last round picks nothing


def test_kcenter_picks_the_farthest_point():
    F = pd.DataFrame({"x": [0.0, 1.0, 10.0, 4.0, -3.0], "y": 0.0},
                     index=["a", "b", "c", "d", "e"])
    # from {a}: c (10 away); then d is 4 from a and 6 from c, e is 3 from a: d
    assert dp.kcenter(F, ["a"], 2) == ["c", "d"]
    assert dp.kcenter(F, ["a", "c"], 1) == ["d"]
    assert dp.kcenter(F, [], 2) == ["a", "c"]  # nothing chosen: the first row, then farthest
    tie = pd.DataFrame({"x": [0.0, 2.0, -2.0]}, index=["o", "p", "q"])
    assert dp.kcenter(tie, ["o"], 1) == ["p"]  # ties: the earlier row
    with pytest.raises(ValueError, match="only 1 left"):
        dp.kcenter(tie, ["o", "p"], 2)
    z = dp.standardise(pd.DataFrame({"u": [1.0, 3.0], "c": [5.0, 5.0]}))
    assert z["u"].tolist() == [-1.0, 1.0] and z["c"].tolist() == [0.0, 0.0]


def test_acquisition_batch_takes_distinct_perturbations_in_rank_order():
    ranked = pd.DataFrame({"rank": [1, 2, 3, 4, 5],
                           "candidate": ["p3", "p3", "p1", "p7", "p1"]})
    assert dp.acquisition_batch(ranked, 2) == ["p3", "p1"]
    assert dp.acquisition_batch(ranked.iloc[::-1], 3) == ["p3", "p1", "p7"]


def test_random_batch_and_start_set_are_seeded():
    pool = [f"p{i}" for i in range(20)]
    a = dp.random_batch(pool, 8, 0, 1)
    assert a == dp.random_batch(pool, 8, 0, 1) and len(set(a)) == 8
    assert a != dp.random_batch(pool, 8, 0, 2) and a != dp.random_batch(pool, 8, 1, 1)
    assert dp.random_batch(pool, 8, 0, 1, 0) == a  # draw 0 is the `random` strategy
    b = dp.random_batch(pool, 8, 0, 1, 2)
    assert b == dp.random_batch(pool, 8, 0, 1, 2) and b != a != dp.random_batch(pool, 8, 0, 1, 1)
    assert [dp.random_draw(s) for s in ("random", "random-2", "kcenter", "acquisition-cells")] \
        == [0, 2, None, None]
    assert dp.start_set(pool, 8, 3) == dp.start_set(pool, 8, 3)
    assert dp.area_under_curve([1.0, 3.0, 5.0], 2) == pytest.approx(3.0)


def test_resumed_run_reuses_job_files_and_reruns_only_the_missing(run, tmp_path):
    res, out, _ = run
    shutil.copytree(out / "jobs", tmp_path / "jobs")
    for r in (0, 1):  # as if killed before k-center's jobs were written
        (tmp_path / "jobs" / f"design-linear-seed0-kcenter-round{r}.json").unlink()
    calls = []
    again = dp.run_design_benchmark(seed=0, members=2, gim_options=dp.steps_options(STEPS),
                                    out=tmp_path, design=TINY,
                                    on_job=lambda *a: calls.append(a), **SIZES)
    assert [c[2] for c in calls] == [True, True, True, True, False, False]
    cols = ["strategy", "round", "metric", "value"]
    pd.testing.assert_frame_equal(again[cols], res[cols], check_exact=False, rtol=1e-6)
    # a file is reused only for its own key and chosen set
    path = tmp_path / "jobs" / "design-linear-seed0-random-round1.json"
    job = json.loads(path.read_text())
    assert job["key"]["members"] == 2
    assert job["key"]["gim_options"] == {"steps": 60, "refit_steps": 20}
    assert dp._load_job(path, job["key"], job["chosen"]) is not None
    assert dp._load_job(path, {**job["key"], "members": 3}, job["chosen"]) is None
    assert dp._load_job(path, job["key"], job["chosen"][::-1]) is None
    path.write_text("{half a fi")  # an unreadable file is rerun, not an error
    assert dp._load_job(path, job["key"], job["chosen"]) is None


def test_input_checks():
    with pytest.raises(ValueError, match="strategies"):
        dp.run_design_benchmark(strategies=("acquisition", "greedy"), design=TINY)
    with pytest.raises(ValueError, match="members"):
        dp.run_design_benchmark(members=1, design=TINY)
    with pytest.raises(ValueError, match="exceeds the pool"):
        dp.run_design_benchmark(design=TINY)  # 8 + 4 × 8 > 6
    with pytest.raises(ValueError, match="steps"):
        dp.steps_options(0)
    assert dp.steps_options(None) == {} and dp.steps_options(3000)["refit_steps"] == 1000


def test_design_curves_one_line_per_strategy_and_panel(run):
    import matplotlib.pyplot as plt

    res, _, _ = run
    axes = cp.pl.design_curves(res)
    assert len(axes) == 3
    assert all(len(a.get_lines()) == 3 for a in axes)
    assert axes[0].get_lines()[0].get_xdata().tolist() == [2.0, 4.0]
    with pytest.raises(ValueError, match="3 Axes"):
        cp.pl.design_curves(res, ax=axes[:2])
    with pytest.raises(ValueError, match="several ground truths"):
        cp.pl.design_curves(pd.concat([res, res.assign(sim="mlp")]))
    plt.close("all")


def test_cli_benchmark_design_writes_results_summary_and_figure(run, tmp_path, monkeypatch):
    _, out, _ = run
    shutil.copytree(out / "jobs", tmp_path / "jobs")  # every job reused: no fit here
    monkeypatch.setattr(dp, "run_design", functools.partial(dp.run_design, design=TINY,
                                                            **SIZES))
    res = CliRunner().invoke(app, ["benchmark", "--protocol", "design", "--sim", "linear",
                                   "--seeds", "0", "--members", "2", "--steps", str(STEPS),
                                   "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "acquisition" in res.output and "design_curves.png" in res.output
    results = pd.read_csv(tmp_path / "results.csv")
    M = len(dp.METRICS)  # rows: curves (3 strategies × 2 rounds), areas, the validated copy
    assert list(results.columns) == list(dp.COLUMNS) and len(results) == 6 * M + 3 * M + M
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert len(summary) == 4 * M and (summary["n_seeds"] == 1).all()
    # one acquisition variant ran, so the validation half chose it
    chosen = pd.read_csv(tmp_path / "validated.csv")
    assert chosen["chosen"].tolist() == ["acquisition"]
    acq = summary["strategy"] == "acquisition"
    assert summary.loc[acq, "margin_mean"].isna().all()
    assert summary.loc[~acq, "margin_mean"].notna().all()
    assert (tmp_path / "design_curves.png").read_bytes()[:4] == b"\x89PNG"
    html = (tmp_path / "report" / "index.html").read_text()
    pngs = list((tmp_path / "report").glob("*.png"))
    assert len(pngs) == 1 and pngs[0].name in html and "area under each curve" in html


def test_summary_margin_is_paired_by_seed():
    rows = pd.DataFrame({"sim": "linear", "seed": [0, 0, 1, 1], "metric": "edist_auc",
                         "strategy": ["acquisition", "random"] * 2,
                         "value": [1.0, 3.0, 2.0, 3.0]})
    s = dp.summarise_design(rows).set_index("strategy")
    assert s.loc["random", "margin_mean"] == pytest.approx(-1.5)
    assert s.loc["random", "margin_sd"] == pytest.approx(np.std([-2.0, -1.0], ddof=1))
    assert s.loc["acquisition", "sd"] == pytest.approx(np.std([1.0, 2.0], ddof=1))


def test_random_mean_averages_the_draws_per_seed_and_enters_the_margins():
    rows = pd.DataFrame({"sim": "linear", "seed": [0, 0, 0, 1, 1, 1], "metric": "edist_auc",
                         "strategy": ["acquisition", "random", "random-1"] * 2,
                         "round": pd.NA, "n_perturbations": pd.NA,
                         "value": [1.0, 3.0, 5.0, 2.0, 3.0, 2.0], "fit_seconds": 1.0})
    out = dp.add_random_mean(rows)
    got = out[out["strategy"] == dp.RANDOM_MEAN].set_index("seed")["value"]
    assert got.to_dict() == {0: 4.0, 1: 2.5} and len(out) == len(rows) + 2
    s = dp.summarise_design(out).set_index("strategy")
    assert s.loc[dp.RANDOM_MEAN, "margin_mean"] == pytest.approx(np.mean([1 - 4, 2 - 2.5]))
    one = rows[rows["strategy"] != "random-1"]  # a single draw: nothing to average
    assert len(dp.add_random_mean(one)) == len(one)


def test_a_random_draw_reuses_the_scores_of_sets_other_jobs_fitted(tmp_path, monkeypatch):
    """random-1 starts from the shared start set and ends on the whole pool (2 + 2 × 2 = 6):
    those rounds take random's job files' scores; only its middle round is fitted."""
    from causalpert.models import Ensemble

    fitted = []
    fit = Ensemble.fit

    def counting(self, adata, *a, **k):
        fitted.append(adata.obs["perturbation"].nunique() - 1)
        return fit(self, adata, *a, **k)

    monkeypatch.setattr(Ensemble, "fit", counting)
    res = dp.run_design_benchmark(seed=0, members=2, out=tmp_path, design=TINY,
                                  gim_options=dp.steps_options(STEPS), start=2, rounds=2,
                                  batch=2, strategies=("random", "random-1"))
    jobs = {k: v for k, v in _jobs(tmp_path).items() if "random-1" in k}
    assert fitted == [2, 4, 6, 4], fitted  # random: rounds 0-2; random-1: round 1 only
    for r in (0, 2):
        assert (jobs[f"design-linear-seed0-random-1-round{r}.json"]["scores"]
                == _jobs(tmp_path)[f"design-linear-seed0-random-round{r}.json"]["scores"])
    assert not any(v["failed"] for v in jobs.values())
    assert (jobs["design-linear-seed0-random-1-round1.json"]["chosen"]
            != _jobs(tmp_path)["design-linear-seed0-random-round1.json"]["chosen"])
    drawn = res[(res["strategy"] == "random-1") & res["round"].notna()]
    assert len(drawn) == 3 * len(dp.METRICS) and drawn["value"].notna().all()


def test_a_failed_fit_ends_the_curve_with_nan_and_no_area(tmp_path, monkeypatch):
    from causalpert.models import Ensemble, FitDivergedError

    def diverge(self, *a, **k):
        raise FitDivergedError("loss is NaN at step 3")

    monkeypatch.setattr(Ensemble, "fit", diverge)
    res = dp.run_design_benchmark(seed=0, members=2, out=tmp_path, design=TINY, **SIZES)
    curves = res[res["round"].notna()]
    assert set(curves["round"]) == {0} and curves["value"].isna().all()
    assert res.loc[res["round"].isna(), "value"].isna().all()
    assert _jobs(tmp_path)["design-linear-seed0-random-round0.json"]["failed"] is True


def test_validation_split_halves_the_unseen_perturbations_by_seed():
    ood = [f"pert_{i}" for i in range(40, 60)]
    val, test = dp.validation_split(ood, 0)
    assert len(val) == len(test) == 10 and sorted(val + test) == ood
    assert val == sorted(val) and test == sorted(test)  # each in ood order
    assert dp.validation_split(ood, 0) == (val, test)
    assert dp.validation_split(ood, 1)[0] != val


def test_validated_choice_looks_at_the_validation_area_only():
    """Per seed the acquisition variant with the smaller edist_validation area is copied
    (all its areas), whatever its test area; random is never a candidate."""
    rows = []
    for seed, (v_acq, v_cells) in enumerate([(2.0, 1.0), (1.0, 3.0)]):
        for strategy, v_val, v_test in (("acquisition", v_acq, 5.0),
                                        ("acquisition-cells", v_cells, 9.0),
                                        ("random", 0.1, 0.1)):
            rows += [{"sim": "linear", "seed": seed, "strategy": strategy, "round": pd.NA,
                      "n_perturbations": pd.NA, "metric": m, "value": v, "fit_seconds": 1.0}
                     for m, v in (("edist_validation_auc", v_val), ("edist_test_auc", v_test))]
    out, choices = dp.add_validated(pd.DataFrame(rows))
    assert choices["chosen"].tolist() == ["acquisition-cells", "acquisition"]
    got = out[out["strategy"] == dp.VALIDATED].set_index(["seed", "metric"])["value"]
    assert got[(0, "edist_test_auc")] == 9.0 and got[(1, "edist_test_auc")] == 5.0
    assert len(out) == len(rows) + 4


KO = SyntheticDesign(n_knockout_genes=8, n_control=150, n_knockout_cells=40)


def test_knockout_pool_keeps_its_test_genes_out_and_scores_edist_and_graph(tmp_path):
    """pool="knockouts": 2 of 8 genes are the test (never chosen), the 6 others the pool;
    every strategy starts from the same 2 knockouts, the acquisition ranks the remaining
    genes as knockout candidates; rows carry edist and graph_auprc only."""
    genes = [f"g{j:02d}" for j in range(8)]
    pool, test = dp.knockout_split(genes, 0)
    assert len(test) == 2 and sorted(pool + test) == genes
    assert dp.knockout_split(genes, 0) == (pool, test) != dp.knockout_split(genes, 1)
    res = dp.run_design_benchmark(sim="linear", seed=0, members=2, pool="knockouts",
                                  gim_options=dp.steps_options(STEPS), out=tmp_path, design=KO,
                                  start=2, batch=2, rounds=1)
    assert set(res["strategy"]) == set(dp.KNOCKOUT_STRATEGIES)
    assert set(res["metric"]) == {*dp.KNOCKOUT_METRICS, "edist_auc", "graph_auprc_auc"}
    assert res["value"].notna().all()
    jobs = _jobs(tmp_path)
    assert len(jobs) == 2 * len(dp.KNOCKOUT_STRATEGIES)
    for s in dp.KNOCKOUT_STRATEGIES:
        j0 = jobs[f"design-linear-knockouts-seed0-{s}-round0.json"]
        assert j0["chosen"] == dp.start_set(pool, 2, 0) and j0["key"]["pool"] == "knockouts"
        assert len(set(j0["next"])) == 2 and set(j0["next"]) <= set(pool) - set(j0["chosen"])
    # run_design on the same jobs (all reused, no fit): files, two panels, the pool's command
    import matplotlib.pyplot as plt

    again, summary = dp.run_design(out=tmp_path, sim="linear", seeds=(0,), members=2,
                                   steps=STEPS, pool="knockouts", design=KO, start=2, batch=2,
                                   rounds=1)
    plt.close("all")
    cols = ["strategy", "round", "metric", "value"]
    pd.testing.assert_frame_equal(again.loc[again["strategy"] != dp.RANDOM_MEAN, cols]
                                  .reset_index(drop=True), res[cols])
    assert set(summary["strategy"]) == {*dp.KNOCKOUT_STRATEGIES, dp.RANDOM_MEAN}
    assert (tmp_path / "design_curves.png").read_bytes()[:4] == b"\x89PNG"
    assert "--pool knockouts" in (tmp_path / "report" / "index.html").read_text()
    with pytest.raises(ValueError, match="kcenter needs perturbation features"):
        dp.run_design_benchmark(pool="knockouts", strategies=("kcenter",), design=KO)
    with pytest.raises(ValueError, match="unknown pool"):
        dp.run_design_benchmark(pool="genes", design=KO)
