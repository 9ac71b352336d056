"""Benchmark executors: the registry, job order, and Ray runs matching local runs."""

import sys
import time

import pandas as pd
import pytest
from typer.testing import CliRunner

from causalpert.benchmark.runner import run_benchmark
from causalpert.cli import app
from causalpert.data import SyntheticDesign
from causalpert.executors import EXECUTORS, get_executor, run_local

TINY = SyntheticDesign(d=6, n_features=8, n_train_perturbations=8, n_ood_perturbations=3,
                       n_control=200, n_test_cells=40)


@pytest.fixture(scope="module")
def ray_instance():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    yield ray
    ray.shutdown()


def test_registry_and_errors(monkeypatch, tmp_path):
    assert set(EXECUTORS) == {"local", "ray"}
    with pytest.raises(ValueError, match="unknown executor 'dask'"):
        get_executor("dask")
    with pytest.raises(ValueError, match="--address is for the ray executor"):
        run_local(str, [1], address="ray://head:10001")
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(ImportError, match=r'pip install "causalpert\[ray\]"'):
        get_executor("ray")(str, [1])
    res = CliRunner().invoke(app, ["benchmark", "--executor", "dask", "--methods", "control",
                                   "--seeds", "0", "--out", str(tmp_path)])
    assert res.exit_code == 1 and "unknown executor 'dask'" in res.output


def test_ray_returns_results_in_job_order(ray_instance):
    def slow_square(job):  # later jobs finish first
        time.sleep(0.3 * (3 - job))
        return job * job

    done = []
    out = get_executor("ray")(slow_square, [0, 1, 2, 3],
                              on_done=lambda job, res: done.append((job, res)))
    assert out == [0, 1, 4, 9]
    assert sorted(done) == [(0, 0), (1, 1), (2, 4), (3, 9)]


def test_ray_benchmark_matches_local(ray_instance, tmp_path):
    kwargs = dict(protocol="paper-synthetic", sim="linear", methods=["gim", "additive"],
                  seeds=[0, 1], design=TINY, progress=False,
                  overrides={"gim": {"steps": 30, "refit_steps": 10}})
    local, _ = run_benchmark(out=tmp_path / "local", **kwargs)
    ray, _ = run_benchmark(out=tmp_path / "ray", executor="ray", **kwargs)

    def values(run: str) -> pd.DataFrame:
        summary = pd.read_csv(tmp_path / run / "summary.csv")
        return summary[~summary["metric"].str.endswith("fit_seconds")].reset_index(drop=True)

    assert len(values("local")) > 20
    pd.testing.assert_frame_equal(values("ray"), values("local"), check_exact=True)
    # rows come in job order (seeds, then methods) whatever order the tasks finished in
    assert ray[["seed", "method", "split", "context", "metric"]].equals(
        local[["seed", "method", "split", "context", "metric"]])
