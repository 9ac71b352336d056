"""Benchmark sweeps on Ray give the same results as the local executor."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from common import Config, Section, fmt_s, log


def _values(path: Path):
    import pandas as pd

    summary = pd.read_csv(path / "summary.csv")
    return summary[~summary["metric"].str.endswith("fit_seconds")].reset_index(drop=True)


def bench_ray_matches_local(cfg: Config) -> Section:
    import torch

    from causalpert.benchmark.runner import run_benchmark
    from causalpert.data import SyntheticDesign

    design = SyntheticDesign(d=6, n_features=8, n_train_perturbations=8, n_ood_perturbations=3,
                             n_control=200, n_test_cells=40)
    kwargs = dict(protocol="paper-synthetic", sim="linear", methods=["gim", "additive"],
                  seeds=[0, 1], design=design, progress=False,
                  overrides={"gim": {"steps": 30, "refit_steps": 10}})
    s = Section()
    try:
        import ray
    except ImportError:
        s.results = {"ray_matches_local": None}
        s.rows = [("ray matches local", "—", 'ray not installed: pip install "causalpert[ray]"')]
        s.notes.append("ray_matches_local: ray is not installed; null.")
        return s
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        log("[ray_matches_local] tiny benchmark (gim 30 + 10 refit steps, additive; 2 seeds)")
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as every Ray task does
        try:
            t0 = time.perf_counter()
            run_benchmark(out=out / "local", **kwargs)
            t_local = time.perf_counter() - t0
        finally:
            torch.set_num_threads(threads)
        log("[ray_matches_local] the same on a local Ray instance (2 CPUs)")
        t0 = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
        t_init = time.perf_counter() - t0
        try:
            t0 = time.perf_counter()
            run_benchmark(out=out / "ray", executor="ray", **kwargs)
            t_ray = time.perf_counter() - t0
        finally:
            ray.shutdown()
        local, remote = _values(out / "local"), _values(out / "ray")
    matches = bool(local.equals(remote))
    s.results = {"ray_matches_local": matches, "ray_version": ray.__version__,
                 "ray_tiny_local_s": t_local, "ray_tiny_ray_s": t_ray, "ray_init_s": t_init,
                 "ray_compared_values": len(local)}
    s.rows = [("ray matches local", "yes" if matches else "NO",
               f"{len(local)} summary values (fit times excluded), bit for bit"),
              ("tiny benchmark, local serial", fmt_s(t_local), "4 jobs, one thread"),
              ("tiny benchmark, ray (2 CPUs)", fmt_s(t_ray), f"+ {fmt_s(t_init)} ray.init")]
    if not matches:
        s.notes.append("WARNING ray_matches_local: the Ray summary differs from the local one.")
    return s
