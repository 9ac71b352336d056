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


# --- resuming an interrupted run from its job files -------------------------------------------

RESUME = dict(protocol="paper-synthetic", sim="linear", methods=["control", "additive"],
              seeds=[0, 1], design=SMALL, progress=False)


def _values(out) -> pd.DataFrame:
    """summary.csv without wall times (they differ between runs)."""
    summary = pd.read_csv(out / "summary.csv")
    return summary[~summary["metric"].str.endswith("seconds")].reset_index(drop=True)


def _stamps(out) -> dict:
    """Job file → (inode, mtime): os.replace of a rewritten file gives a new inode."""
    return {f.name: (f.stat().st_ino, f.stat().st_mtime_ns) for f in (out / "jobs").iterdir()}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    run_benchmark(out=out, **RESUME)
    return out


def test_every_finished_job_is_saved_with_its_key(uninterrupted):
    from causalpert import __version__

    files = sorted(f.name for f in (uninterrupted / "jobs").iterdir())
    assert files == ["additive-seed0.json", "additive-seed1.json", "control-seed0.json",
                     "control-seed1.json"]
    saved = json.loads((uninterrupted / "jobs" / "additive-seed1.json").read_text())
    assert saved["key"] == {"protocol": "paper-synthetic", "sim": "linear", "method": "additive",
                            "seed": 1, "overrides": {}, "design": json.loads(json.dumps(
                                SMALL.__dict__)), "data": {"data": None, "cell_line": "A549"},
                            "causalpert": __version__}
    assert len(saved["key_hash"]) == 64
    results = pd.read_csv(uninterrupted / "results.csv")
    assert len(saved["rows"]) == len(results.query("method == 'additive' and seed == 1"))


def test_a_killed_run_resumes_where_it_stopped(uninterrupted, tmp_path, capsys):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    import causalpert

    # seed 0's jobs run, then seed 1's wait until the process is killed
    script = f"""
import time
from causalpert.benchmark import runner
from causalpert.data import SyntheticDesign
run_job = runner._run_job
def slow(job):
    if job[3] == 1:
        time.sleep(120)
    return run_job(job)
runner._run_job = slow
runner.run_benchmark(out={str(tmp_path)!r}, protocol="paper-synthetic", sim="linear",
                     methods=["control", "additive"], seeds=[0, 1], design={SMALL!r},
                     progress=False)
"""
    src = str(Path(causalpert.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        deadline = time.monotonic() + 120
        while len([f for f in tmp_path.glob("jobs/[!.]*.json")]) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, "no job files"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL and not (tmp_path / "summary.csv").exists()
    before = _stamps(tmp_path)
    assert sorted(before) == ["additive-seed0.json", "control-seed0.json"]

    stale = tmp_path / "jobs" / ".0badc0de.additive-seed1.json"  # as a kill mid-write leaves
    stale.write_text('{"half": ')
    capsys.readouterr()
    run_benchmark(out=tmp_path, workers=2, **RESUME)  # the process pool, this time
    assert "reusing 2 of 4 jobs" in capsys.readouterr().err
    after = _stamps(tmp_path)
    assert len(after) == 4 and all(after[name] == stamp for name, stamp in before.items())
    assert len(_values(uninterrupted)) > 20
    pd.testing.assert_frame_equal(_values(tmp_path), _values(uninterrupted), check_exact=False,
                                  rtol=0, atol=1e-9)
    assert not [f for f in tmp_path.rglob(".*")]  # no temporary files left


def test_changed_overrides_rerun_only_that_method_and_fresh_reruns_all(tmp_path, capsys):
    kwargs = {**RESUME, "seeds": [0]}
    run_benchmark(out=tmp_path, overrides={"additive": {"alphas": [1.0]}}, **kwargs)
    first = _stamps(tmp_path)
    capsys.readouterr()
    run_benchmark(out=tmp_path, overrides={"additive": {"alphas": [10.0]}}, **kwargs)
    assert "reusing 1 of 2 jobs" in capsys.readouterr().err
    second = _stamps(tmp_path)
    assert second["control-seed0.json"] == first["control-seed0.json"]
    assert second["additive-seed0.json"] != first["additive-seed0.json"]
    saved = json.loads((tmp_path / "jobs" / "additive-seed0.json").read_text())
    assert saved["key"]["overrides"] == {"alphas": [10.0]}
    run_benchmark(out=tmp_path, overrides={"additive": {"alphas": [10.0]}}, fresh=True, **kwargs)
    assert "reusing" not in capsys.readouterr().err
    third = _stamps(tmp_path)
    assert all(third[name] != stamp for name, stamp in second.items())


def test_cli_benchmark_reuses_job_files_unless_fresh(tmp_path):
    args = ["benchmark", "--protocol", "sachs", "--methods", "control", "--seeds", "0",
            "--out", str(tmp_path)]
    env = {"CAUSALPERT_PROGRESS": "0"}
    assert CliRunner().invoke(app, args, env=env).exit_code == 0
    first = _stamps(tmp_path)
    res = CliRunner().invoke(app, args, env=env)
    assert res.exit_code == 0 and "reusing 1 of 1 jobs" in res.output
    assert _stamps(tmp_path) == first
    res = CliRunner().invoke(app, [*args, "--fresh"], env=env)
    assert res.exit_code == 0 and "reusing" not in res.output
    assert _stamps(tmp_path) != first


def test_gim_ensemble_method_is_an_ensemble_of_three_default_gims():
    from causalpert.benchmark.runner import make_model
    from causalpert.models import GIM, Ensemble

    m = make_model("gim-ensemble", seed=4, sim="mlp")
    assert isinstance(m, Ensemble) and m.options["n"] == 3 and m.options["bootstrap"]
    assert isinstance(m.template, GIM) and m.template.seed == 4 and m.seed == 4
    assert m.template.options["causal"] == "mlp" and "members" not in m.template.options
    assert m.uses_intended_targets  # unseen knockouts are predicted through the members
    sub = make_model("gim-subbag", seed=4)
    assert sub.options["subsample"] == 0.632 and "subsample" not in sub.template.options
