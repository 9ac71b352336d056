"""GIM training speed vs d, and fit time / peak memory vs the number of cells at d = 1,000.

Both time the model's own training loop: ``GIM(..., steps=S).fit(adata)`` and then
``model.history_.seconds``, the wall time of ``models.training.train`` (minibatch sampling,
loss, backward, AdamW step, loss logging every ``log_every`` steps). The rest of ``fit``
(``prepare``, standardising, bandwidth, head fitting) is reported as setup = fit wall time −
loop time. Data are random Gaussian cells with 1–3 shifted genes per perturbation (cheap at any
size; the step cost does not depend on the values), not the simulator.

Run as a script, this file is the subprocess that ``fit_scaling`` starts for each size (so that
peak RSS is per size): ``python bench/training.py --child N D --bursts ROUNDS STEPS [--backed
PATH]``; it pauses between bursts of steps so that the parent can time the sizes in turns.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import Config, Section, best_of, fmt_s, fmt_x, log


def random_screen(d: int, *, n_perturbations: int, doses: tuple[float, ...],
                  cells_per_context: int, n_control: int, n_features: int = 8, seed: int = 0):
    """AnnData of Gaussian cells: control N(0, I); perturbation p at dose c shifts 1–3 genes by
    c · ±U[2, 5]. X is float32, filled in place (one [N, d] allocation); ``uns`` holds
    ``perturbation_features`` [P, n_features] ~ N(0, 1)."""
    import anndata as ad
    import pandas as pd

    rng = np.random.default_rng(seed)
    names = [f"p{p:03d}" for p in range(n_perturbations)]
    ctx = [("control", 0.0, n_control)] + [(p, c, cells_per_context) for p in names
                                           for c in doses]
    n = sum(k[2] for k in ctx)
    x = np.empty((n, d), dtype=np.float32)
    targets = {p: rng.choice(d, size=rng.integers(1, 4), replace=False) for p in names}
    amp = {p: rng.choice([-1.0, 1.0], len(t)) * rng.uniform(2, 5, len(t))
           for p, t in targets.items()}
    start = 0
    for p, c, m in ctx:
        block = x[start:start + m]
        rng.standard_normal(out=block, dtype=np.float32)
        if p != "control":
            block[:, targets[p]] += (c * amp[p]).astype(np.float32)
        start += m
    obs = pd.DataFrame({
        "perturbation": pd.Categorical(np.repeat([k[0] for k in ctx], [k[2] for k in ctx])),
        "dose": np.repeat([k[1] for k in ctx], [k[2] for k in ctx]),
    }, index=np.arange(n).astype(str))
    adata = ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=[f"g{j}" for j in range(d)]))
    adata.uns["perturbation_features"] = pd.DataFrame(
        rng.standard_normal((n_perturbations, n_features)), index=names,
        columns=[f"f{i}" for i in range(n_features)])
    return adata


def paper_sized_screen(d: int, seed: int = 0):
    """The paper-synthetic training split's sizes: 800 control cells + 40 perturbations × 4
    doses × 50 cells (8,800 cells)."""
    return random_screen(d, n_perturbations=40, doses=(0.5, 1.0, 1.5, 2.0), cells_per_context=50,
                         n_control=800, seed=seed)


def time_fit(adata, *, causal: str, steps: int, seed: int = 0) -> dict[str, float]:
    """Fit GIM for ``steps`` steps; loop time, setup time and the cells one step processes."""
    import causalpert as cp

    model = cp.GIM(causal=causal, seed=seed, steps=steps, refit_steps=0)  # stage 1 only
    t0 = time.perf_counter()
    model.fit(adata, progress=False)
    total = time.perf_counter() - t0
    cfg = model.config
    loop = model.history_.seconds
    return {"loop_s": loop, "setup_s": total - loop, "step_s": loop / steps,
            "cells_per_step": cfg.control_cells + cfg.batch_contexts * cfg.cells_per_context,
            "model": model}


def stability_penalty_s(drift, reps: int = 3) -> float:
    """Forward + backward of the linear GIM's stability penalty as it runs in training
    (``models.gim._StabilityPenalty``: an O(d³) eigenvector refresh every d / 20 calls, an O(d²)
    Rayleigh quotient otherwise), amortised over one refresh period; best of ``reps``."""
    from causalpert.models.gim import _StabilityPenalty

    pen = _StabilityPenalty(drift.d, 0.05)
    period = pen.leading.refresh_every

    def one_period():
        for _ in range(period):
            drift.zero_grad(set_to_none=True)
            pen(drift).backward()

    one_period()
    return best_of(one_period, reps)[0] / period


# ---------------------------------------------------------------------------------------------
# GIM training steps/s and cells/s vs d


def bench_gim_speed(cfg: Config) -> Section:
    few = 3 if cfg.quick else 100  # steps at d = 1,000 (two eigenvector refreshes)
    many = 50 if cfg.quick else 200  # steps at d ≤ 100
    runs = [("linear", 20), ("linear", 100), ("linear", 1000), ("mlp", 20), ("mlp", 100)]
    s = Section()
    per = {}
    for causal, d in runs:
        steps = few if d >= 1000 else many
        adata = paper_sized_screen(d)
        log(f"[gim_speed] {causal} d = {d}: warm-up fit (2 steps), then {steps} steps")
        time_fit(adata, causal=causal, steps=2)
        r = time_fit(adata, causal=causal, steps=steps)
        r["steps"] = steps
        r["stability_s"] = stability_penalty_s(r.pop("model").drift) if causal == "linear" else 0
        per[(causal, d)] = r
        key = f"gim_{causal}_d{d}"
        s.results |= {
            f"{key}_steps_per_s": 1 / r["step_s"],
            f"{key}_cells_per_s": r["cells_per_step"] / r["step_s"],
            f"{key}_step_s": r["step_s"],
            f"{key}_setup_s": r["setup_s"],
            f"{key}_steps_timed": steps,
            f"{key}_default_fit_s_est": r["setup_s"] + 3000 * r["step_s"],
        }
        if causal == "linear":
            s.results[f"{key}_stability_penalty_share"] = r["stability_s"] / r["step_s"]
    cells = per[("linear", 20)]["cells_per_step"]
    s.results["gim_cells_per_step"] = cells
    lin = {d: per[("linear", d)] for d in (20, 100, 1000)}
    s.results["gim_step_time_ratio_d1000_vs_d20"] = lin[1000]["step_s"] / lin[20]["step_s"]
    s.results["gim_step_time_ratio_mlp_vs_linear_d100"] = (per[("mlp", 100)]["step_s"]
                                                           / lin[100]["step_s"])
    s.results["gim_d1000_extrapolated"] = True
    s.rows = [
        ("step time, d = 1,000 vs d = 20 (linear)",
         fmt_x(s.results["gim_step_time_ratio_d1000_vs_d20"]), f"{cells:,} cells per step"),
        ("step time, MLP vs linear, d = 100",
         fmt_x(s.results["gim_step_time_ratio_mlp_vs_linear_d100"]), ""),
    ]
    for d in (100, 1000):
        share = s.results[f"gim_linear_d{d}_stability_penalty_share"]
        s.rows.append((f"stability penalty share of a step, d = {d:,}", f"{share:.0%}",
                       "penalty forward + backward (amortised refreshes) / measured step"))
    for (causal, d), r in per.items():
        s.rows.append((f"{causal} d = {d:,}", f"{1 / r['step_s']:,.1f} steps/s",
                       f"{r['cells_per_step'] / r['step_s']:,.0f} cells/s; "
                       f"{fmt_s(r['step_s'])}/step over {r['steps']} steps; setup "
                       f"{fmt_s(r['setup_s'])}; 3,000-step fit ≈ "
                       f"{fmt_s(r['setup_s'] + 3000 * r['step_s'])}"))
    s.notes.append(
        f"gim_speed: d = 1,000 was timed over {few} steps and the 3,000-step fit time "
        "(gim_*_default_fit_s_est, every size) is setup + 3,000 × the measured step time "
        "(stage 1 only; the refit stage adds 1,500 steps of the same cost).")
    return s


# ---------------------------------------------------------------------------------------------
# fit time and peak memory vs the number of cells, d = 1,000, one subprocess per size


SCALING_D = 1000
SCALING_CONTEXTS = 50  # control + 49 perturbations at dose 1


def _scaling_adata(n: int, d: int):
    per = n // SCALING_CONTEXTS
    return random_screen(d, n_perturbations=SCALING_CONTEXTS - 1, doses=(1.0,),
                         cells_per_context=per, n_control=n - per * (SCALING_CONTEXTS - 1))


def _peak_rss() -> tuple[float, str]:
    """This process's own peak RSS in GB, and where it comes from.

    VmHWM belongs to the address space, which exec replaces, so a child reports only its own
    peak. ``ru_maxrss`` is the fallback where /proc is missing: Linux carries it over fork +
    exec, so a child reports its parent's peak whenever that was higher.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / 1e9, "VmHWM"  # kB
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss * (1 if sys.platform == "darwin" else 1024) / 1e9, "ru_maxrss"


_PROTOCOL = sys.stdout  # the child's messages to the parent; main() sends other prints to stderr


def _send(msg: dict) -> None:
    _PROTOCOL.write(json.dumps(msg) + "\n")
    _PROTOCOL.flush()


class _Pacer:
    """Optimizer step hook for the training loop's AdamW: after every ``burst`` steps it sends
    the burst's wall time and waits for a line on stdin. The parent resumes the sizes in turn,
    so load from other processes hits every size alike."""

    def __init__(self, burst: int):
        self.burst, self.steps, self.t0 = burst, 0, time.perf_counter()

    def __call__(self, opt, args, kwargs) -> None:
        import torch

        if not isinstance(opt, torch.optim.AdamW):  # only the training loop's optimizer
            return
        self.steps += 1
        if self.steps % self.burst == 0:
            _send({"burst_s": time.perf_counter() - self.t0})
            sys.stdin.readline()
            self.t0 = time.perf_counter()


def _child(n: int, d: int, *, rounds: int, burst: int, backed: str | None,
           write: str | None) -> dict:
    from torch.optim.optimizer import register_optimizer_step_post_hook

    from causalpert.core.linalg import LeadingEigenvalue
    from causalpert.models.gim import _StabilityPenalty

    t0 = time.perf_counter()
    if backed:
        import anndata as ad

        adata = ad.read_h5ad(backed, backed="r")
    else:
        adata = _scaling_adata(n, d)
    if write:
        adata.write_h5ad(write)
        return {"write_s": time.perf_counter() - t0}
    out = {"data_s": time.perf_counter() - t0, "data_rss_gb": _peak_rss()[0]}
    # a warm-up burst (its time, setup included, is not used), then one burst per round
    register_optimizer_step_post_hook(_Pacer(burst))
    r = time_fit(adata, causal="linear", steps=(rounds + 1) * burst)
    peak, source = _peak_rss()
    # the stability penalty's eigenvector refresh (every refresh_every steps) is too rare to
    # fall in the short bursts; time one for the extrapolation to 1,000 steps
    W = r.pop("model").drift.W.detach()
    t1 = time.perf_counter()
    LeadingEigenvalue().refresh(W)
    refresh_s = time.perf_counter() - t1
    return out | {"setup_s": r["setup_s"], "cells_per_step": r["cells_per_step"],
                  "refresh_s": refresh_s,
                  "refresh_every": _StabilityPenalty(d, 0.0).leading.refresh_every,
                  "peak_rss_gb": peak, "rss_source": source, "n_cells": adata.n_obs}


class _Child:
    """A ``python bench/training.py --child ...`` subprocess; its stderr goes to ours."""

    def __init__(self, label: str, *args: str):
        self.label = label
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", *args]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=os.environ.copy())

    def recv(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.label} child exited with {self.proc.wait()} "
                               "(its error is in the log above)")
        return json.loads(line)

    def resume(self) -> dict:
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        return self.recv()


def _run_child(label: str, *args: str) -> dict:
    child = _Child(label, *args)
    out = child.recv()
    child.proc.wait()
    return out


def _interleaved(runs: dict[str, list[str]], rounds: int, burst: int) -> dict[str, dict]:
    """Run each ``--child`` in ``runs`` paced by ``_Pacer``: start them one after another (each
    prepares its data and fits a warm-up burst while the others wait), then ``rounds`` times
    resume each for one burst, in turn. Returns each child's report plus ``step_s``, the median
    over its bursts of the time per step."""
    children: dict[str, _Child] = {}
    try:
        for label, args in runs.items():
            log(f"[fit_scaling] {label}: prepare + warm-up burst of {burst} steps (subprocess)")
            children[label] = child = _Child(label, *args, "--bursts", str(rounds), str(burst))
            child.recv()
        log(f"[fit_scaling] {rounds} rounds of one {burst}-step burst per run, interleaved")
        times = {label: [] for label in runs}
        for _ in range(rounds):
            for label, child in children.items():
                times[label].append(child.resume()["burst_s"] / burst)
        out = {label: child.resume() for label, child in children.items()}
        for label, r in out.items():
            r |= {"step_s": float(np.median(times[label])), "burst_step_s": times[label]}
        return out
    finally:
        for child in children.values():  # they have reported and are exiting, unless one failed
            child.proc.kill()
            child.proc.wait()


def _key(n: int) -> str:
    return f"fit_scaling_{n:.0e}".replace("+0", "")


def bench_fit_scaling(cfg: Config) -> Section:
    d = SCALING_D
    # (rounds + 1) · burst ≤ 50 steps: the timed bursts hold no eigenvector refresh (d = 1,000)
    rounds, burst = (5, 2) if cfg.quick else (9, 5)
    sizes = [10_000, 100_000] if cfg.quick else [10_000, 100_000, 1_000_000]
    s = Section()
    runs = {f"{n:,} cells × {d:,} genes": [str(n), str(d)] for n in sizes}
    per = dict(zip(sizes, _interleaved(runs, rounds, burst).values(), strict=True))
    big = sizes[-1]
    backed = None
    if not cfg.quick:
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMPDIR")) as tmp:
            path = str(Path(tmp) / "cells.h5ad")
            log(f"[fit_scaling] writing {big:,} cells to a temporary .h5ad (subprocess)")
            wrote = _run_child("write", str(big), str(d), "--write", path)
            try:
                backed = _interleaved({"backed .h5ad": [str(big), str(d), "--backed", path]},
                                      rounds, burst)["backed .h5ad"]
                backed["write_s"] = wrote["write_s"]
            except RuntimeError as exc:
                s.notes.append(f"fit_scaling: fitting on backed AnnData failed ({exc}); "
                               "d1000_1e6_backed_peak_rss_gb is null.")
    r5 = per[100_000]
    refreshes = math.ceil(1000 / r5["refresh_every"])
    sources = {r["rss_source"] for r in [*per.values(), *([backed] if backed else [])]}
    s.results = {
        "d1000_1e5_steps1000_s": r5["setup_s"] + 1000 * r5["step_s"]
                                 + refreshes * r5["refresh_s"],
        "d1000_1e5_peak_rss_gb": r5["peak_rss_gb"],
        "step_time_ratio_1e6_vs_1e4": (per[1_000_000]["step_s"] / per[10_000]["step_s"]
                                       if 1_000_000 in per else None),
        "d1000_1e6_backed_peak_rss_gb": backed["peak_rss_gb"] if backed else None,
        "fit_scaling_d": d,
        "fit_scaling_contexts": SCALING_CONTEXTS,
        "fit_scaling_rounds": rounds,
        "fit_scaling_burst_steps": burst,
        "fit_scaling_steps_timed": rounds * burst,
        "fit_scaling_peak_rss_source": "+".join(sorted(sources)),
        "fit_scaling_extrapolated": True,
    }
    for n, r in per.items():
        s.results |= {f"{_key(n)}_{k}": r[k] for k in (
            "step_s", "burst_step_s", "setup_s", "data_s", "data_rss_gb", "peak_rss_gb")}
    s.results["fit_scaling_refresh_s"] = r5["refresh_s"]
    if backed:
        s.results |= {"fit_scaling_1e6_backed_step_s": backed["step_s"],
                      "fit_scaling_1e6_backed_burst_step_s": backed["burst_step_s"],
                      "fit_scaling_1e6_backed_setup_s": backed["setup_s"],
                      "fit_scaling_1e6_backed_open_s": backed["data_s"]}
    timing = f"median of {rounds} interleaved bursts of {burst} steps, d = {d:,}"
    ratio = s.results["step_time_ratio_1e6_vs_1e4"]
    if ratio:
        s.rows = [("step time, 1e6 vs 1e4 cells", fmt_x(ratio), timing)]
    else:
        s.rows = [("step time, 1e5 vs 1e4 cells",
                   fmt_x(per[100_000]["step_s"] / per[10_000]["step_s"]), f"{timing} (--quick)")]
    s.rows.append(("1e5 cells: 1,000-step fit", fmt_s(s.results["d1000_1e5_steps1000_s"]),
                   f"setup {fmt_s(r5['setup_s'])} + 1,000 × {fmt_s(r5['step_s'])} + "
                   f"{refreshes} eigenvector refreshes × {fmt_s(r5['refresh_s'])} (extrapolated)"))
    for n, r in per.items():
        s.rows.append((f"{n:,} cells: peak RSS", f"{r['peak_rss_gb']:.2f} GB",
                       f"data alone {r['data_rss_gb']:.2f} GB (generated in the process); "
                       f"setup {fmt_s(r['setup_s'])}, step {fmt_s(r['step_s'])}"))
    if backed:
        s.rows.append((f"{big:,} cells, backed .h5ad: peak RSS",
                       f"{backed['peak_rss_gb']:.2f} GB",
                       f"open {fmt_s(backed['data_s'])}, setup {fmt_s(backed['setup_s'])}, "
                       f"step {fmt_s(backed['step_s'])}"))
        s.notes.append(
            "fit_scaling: the backed fit keeps X on disk (data.backed.BackedRows): each step "
            "reads the rows of its minibatch, context means take one sequential pass.")
    peaks = [per[n]["peak_rss_gb"] for n in sizes]
    if peaks != sorted(peaks) or (backed and backed["peak_rss_gb"] >= peaks[-1]):
        s.notes.append("WARNING fit_scaling: peak RSS does not rise with the number of cells "
                       "(or the backed fit is not below the in-memory one).")
    if cfg.quick:
        s.notes.append("fit_scaling (--quick): 1e6 cells and the backed file are skipped (null).")
    how = ("VmHWM from /proc/self/status" if sources == {"VmHWM"} else
           "ru_maxrss (no /proc here: it includes the parent's peak if that was higher)")
    s.notes.append(f"fit_scaling: every size ran in its own subprocess; peak RSS is its own "
                   f"{how}, data generation included. Step times: {timing}, the runs taking "
                   "turns; 1,000-step times extrapolated.")
    return s


# ---------------------------------------------------------------------------------------------
# full default GIM fits (all stages) at d = 1,000 and 2,000, one subprocess each


FULL_FIT_N = 100_000


def _full_fit_child(n: int, d: int) -> dict:
    """``bench/full_fit.py`` in its own process: its peak RSS is its own (VmHWM)."""
    cmd = [sys.executable, str(Path(__file__).with_name("full_fit.py")), "--n", str(n),
           "--d", str(d)]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=os.environ.copy(),
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_gim_full_fit(cfg: Config) -> Section:
    """Wall time of ``cp.GIM(causal="linear").fit`` with every default (3,000 steps, the
    1,000 + 500-step refit, noise calibration, heads, target evidence) on 10⁵ cells."""
    s = Section()
    if cfg.quick:
        s.results |= {"gim_d1000_full_fit_s": None, "gim_d2000_full_fit_s": None,
                      "gim_d1000_stability_share": None}
        s.notes.append("gim_full_fit (--quick): skipped (two full fits take ≈ 30 min).")
        return s
    per = {}
    for d in (1000, 2000):
        log(f"[gim_full_fit] d = {d:,}, {FULL_FIT_N:,} cells: one full default fit (subprocess)")
        per[d] = r = _full_fit_child(FULL_FIT_N, d)
        key = f"gim_d{d}"
        s.results |= {
            f"{key}_full_fit_s": r["fit_s"],
            f"{key}_full_fit_loop_s": r["loop_s"],
            f"{key}_full_fit_steps": r["steps"],
            f"{key}_full_fit_step_s": r["step_s"],
            f"{key}_full_fit_other_s": r["other_s"],
            f"{key}_full_fit_peak_rss_gb": r["peak_rss_gb"],
            f"{key}_full_fit_max_real_eig": r["max_real_eigenvalue"],
            f"{key}_full_fit_stability_scale": r["stability_scale"],
            f"{key}_stability_share": r["stability_share"],
            f"{key}_stability_refreshes": r["stability_refreshes"],
        }
        s.rows.append((f"full default fit, d = {d:,}, {r['n_cells']:,} cells", fmt_s(r["fit_s"]),
                       f"{r['steps']:,} steps × {fmt_s(r['step_s'])} + {fmt_s(r['other_s'])} "
                       f"setup, calibration, heads, evidence; peak RSS "
                       f"{r['peak_rss_gb']:.2f} GB; max Re eig(W) "
                       f"{r['max_real_eigenvalue']:.3f} (scale {r['stability_scale']:.3g})"))
        s.rows.append((f"stability penalty share of the training loops, d = {d:,}",
                       f"{r['stability_share']:.1%}",
                       f"{r['stability_refreshes']} eigenvector refreshes, timed inside the "
                       "loops"))
    s.notes.append(
        "gim_full_fit: each fit runs in its own subprocess (bench/full_fit.py) on "
        f"fit_scaling's random screen ({FULL_FIT_N:,} cells, 50 contexts); times are wall "
        "clock on one torch thread, not extrapolated; peak RSS is the child's own VmHWM.")
    return s


def main(argv: list[str] | None = None) -> int:
    global _PROTOCOL
    parser = argparse.ArgumentParser(description="fit_scaling subprocess (one size)")
    parser.add_argument("--child", nargs=2, type=int, metavar=("N", "D"), required=True)
    parser.add_argument("--bursts", nargs=2, type=int, metavar=("ROUNDS", "STEPS"),
                        default=(0, 1), help="pace the fit (see _Pacer)")
    parser.add_argument("--backed", help="fit on this .h5ad opened with backed='r'")
    parser.add_argument("--write", help="only generate the cells and write them here")
    args = parser.parse_args(argv)
    _PROTOCOL, sys.stdout = sys.stdout, sys.stderr
    n, d = args.child
    rounds, burst = args.bursts
    _send(_child(n, d, rounds=rounds, burst=burst, backed=args.backed, write=args.write))
    return 0


if __name__ == "__main__":
    sys.exit(main())
