"""causalpert benchmarks: ratios measured in this run, with absolute figures for context.

    python bench/run.py --out bench-results.json        # full run
    python bench/run.py --quick                         # smaller sizes
    python bench/run.py --only kds_closed_vs_autodiff   # some sections only

Every section is a function ``Config -> Section`` registered in ``SECTIONS`` (this file,
``training.py``, ``reference.py``, ``sweeps.py``; shared pieces in ``common.py``); its
``results`` are flat, section-prefixed keys that go into the JSON under ``"results"`` (see
bench/README.md). Times are wall-clock (``time.perf_counter``), best of the stated repetitions
after one warm-up call (training-loop sections: one timed loop after a warm-up fit); torch keeps
its default thread count.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

import causalpert
from causalpert._io import atomic_write
from causalpert.core import LinearDrift, MLPDrift, kds, kds_autodiff, sample_stationary
from causalpert.data.ground_truth import random_drift
from causalpert.metrics import mmd
from common import Config, Section, best_of, default_dtype, fmt_s, fmt_x, log
from reference import bench_reference_task
from screens import bench_screen_fits
from sweeps import bench_ray_matches_local
from training import bench_fit_scaling, bench_gim_full_fit, bench_gim_speed

# piped output (CI logs, `make bench | tee`) gets a table wide enough to stay readable
console = Console(width=None if sys.stdout.isatty() else 140)


# ---------------------------------------------------------------------------------------------
# 1. exact stationary Gaussian sampler vs Euler–Maruyama at matched MMD


def bench_exact_vs_em(cfg: Config) -> Section:
    d, K = 20, 10
    n = 400 if cfg.quick else 2000  # cells per context, both samplers
    n_ref = 800 if cfg.quick else 3000  # exact reference cells per context
    n_control = 10_000  # observational exact cells: the MMD bandwidth (median) reference
    reps_exact, reps_em = (5, 1) if cfg.quick else (20, 2)
    # Euler–Maruyama: one draw per chain (chains = n), started at the deterministic fixed point
    # (sample_stationary's noise-free relaxation), then burn_in·dt = 10 time units of noise:
    # ≥ 2.4 relaxation times of the slowest mode (max Re eig W = −0.245). Cheapest setting we
    # found whose MMD stays within noise of the exact sampler's (in trials, 500 chains × thin 50
    # was slower and outside the noise band; dt = 0.1, burn-in 100 was at or past its edge).
    em = {"chains": n, "dt": 0.05, "burn_in": 200, "thin": 1, "relax_steps": 200}

    drift, _ = random_drift(d, "linear", np.random.default_rng(0))
    rng = np.random.default_rng(1)
    amp = np.zeros((K, d))
    for k in range(K):  # 1–3 shifted variables, ±U[2, 5], as in data/simulate.py
        t = rng.choice(d, size=rng.integers(1, 4), replace=False)
        amp[k, t] = rng.choice([-1.0, 1.0], size=len(t)) * rng.uniform(2, 5, size=len(t))
    shift = torch.from_numpy(amp)
    log_sigma = drift.log_sigma.detach().expand(K, -1)
    g = torch.Generator().manual_seed(0)

    control = sample_stationary(drift, torch.zeros(1, d), log_sigma[:1], n_control,
                                method="exact", generator=g)[0].numpy()
    ref = sample_stationary(drift, shift, log_sigma, n_ref, method="exact", generator=g).numpy()

    def exact():
        return sample_stationary(drift, shift, log_sigma, n, method="exact", generator=g)

    def euler():
        return sample_stationary(drift, shift, log_sigma, n, method="euler", generator=g, **em)

    log(f"[exact_vs_em] exact sampler, {K} contexts × {n} cells, best of {reps_exact}")
    exact()  # warm-up
    t_exact, x_exact = best_of(exact, reps_exact)
    log(f"[exact_vs_em] Euler–Maruyama {em}, best of {reps_em}")
    t_em, x_em = best_of(euler, reps_em)
    log(f"[exact_vs_em] MMD of both against {n_ref} exact reference cells per context")
    mmd_exact = np.array([mmd(x_exact[k].numpy(), ref[k], x_control=control) for k in range(K)])
    mmd_em = np.array([mmd(x_em[k].numpy(), ref[k], x_control=control) for k in range(K)])
    diff = mmd_em - mmd_exact  # paired by context: both against the same reference cells
    noise = 2 * diff.std(ddof=1) / math.sqrt(K)
    matched = bool(abs(diff.mean()) <= noise)
    speedup = t_em / t_exact

    s = Section()
    s.results = {
        "exact_vs_em_speedup": speedup,
        "exact_sample_s": t_exact,
        "em_sample_s": t_em,
        "exact_mmd": float(mmd_exact.mean()),
        "em_mmd": float(mmd_em.mean()),
        "exact_vs_em_mmd_noise": float(noise),
        "exact_vs_em_mmd_matched": matched,
        "exact_vs_em_d": d,
        "exact_vs_em_contexts": K,
        "exact_vs_em_cells_per_context": n,
        "exact_vs_em_reference_cells_per_context": n_ref,
        "em_settings": em,
    }
    cells = K * n
    s.rows = [
        ("speedup, exact vs Euler–Maruyama", fmt_x(speedup),
         f"same {K}×{n:,} cells, d = {d}; MMD matched: {'yes' if matched else 'NO'}"),
        ("MMD², exact / EM", f"{mmd_exact.mean():.1e} / {mmd_em.mean():.1e}",
         f"mean over contexts vs {n_ref:,} exact ref. cells; noise ±{noise:.1e} (2 s.e.)"),
        ("exact sampler", fmt_s(t_exact), f"{cells / t_exact:,.0f} cells/s (Lyapunov + Cholesky)"),
        ("Euler–Maruyama", fmt_s(t_em),
         f"{cells / t_em:,.0f} cells/s; dt {em['dt']}, burn-in {em['burn_in']}, "
         f"{em['chains']} chains/context"),
    ]
    if not matched:
        s.notes.append(
            f"WARNING exact_vs_em: the Euler–Maruyama MMD differs from the exact sampler's by "
            f"{diff.mean():.1e} > {noise:.1e} (2 s.e.): the speedup is not at matched MMD."
        )
    return s


# ---------------------------------------------------------------------------------------------
# 2. closed-form KDS vs automatic differentiation of the kernel


AUTODIFF_BUDGET_S = 60.0


def _kds_step(drift, x: torch.Tensor, h: float, *, closed: bool):
    """KDS value and its gradient wrt every drift parameter (incl. log σ), forward + backward."""
    drift.zero_grad(set_to_none=True)
    sigma2 = (2 * drift.log_sigma).exp()
    if closed:
        val = kds(x[None], drift(x)[None], sigma2[None], bandwidth=h)[0]
    else:
        val = kds_autodiff(x, drift, sigma2, bandwidth=h)
    val.backward()
    return val.detach(), [p.grad.detach().clone() for p in drift.parameters()]


def _rel_err(a, b) -> tuple[float, float]:
    """Relative error of the value and the largest one over parameter gradients (b = reference)."""
    (va, ga), (vb, gb) = a, b
    v = float((va - vb).abs() / vb.abs())
    gr = max(float((x - y).abs().max() / y.abs().max()) for x, y in zip(ga, gb, strict=True))
    return v, gr


def bench_kds(cfg: Config) -> Section:
    d, N = 100, 256
    n_small = 4 if cfg.quick else 8  # autodiff batch when N is out of budget
    reps_closed, reps_auto = (5, 1) if cfg.quick else (20, 3)
    s = Section()
    with default_dtype(torch.float64):
        g = torch.Generator().manual_seed(0)
        x = torch.randn(N, d, generator=g)
        h = float(torch.pdist(x).median())  # median heuristic bandwidth
        models = {
            "linear": LinearDrift(d, init_scale=0.1, generator=g),
            "mlp": MLPDrift(d, hidden=8, init_scale=0.5, generator=g),
        }
        for m in models.values():
            with torch.no_grad():
                m.b.normal_(generator=g)
                m.log_sigma.uniform_(-1.0, 0.0, generator=g)

        per = {}
        for name, drift in models.items():
            log(f"[kds] {name}: closed form at n = {N}, best of {reps_closed}")
            _kds_step(drift, x, h, closed=True)  # warm-up
            t_closed, _ = best_of(lambda drift=drift: _kds_step(drift, x, h, closed=True),
                                  reps_closed)
            log(f"[kds] {name}: autodiff warm-up (n = 2), then n = {n_small}, "
                      f"best of {reps_auto}")
            _kds_step(drift, x[:2], h, closed=False)  # warm-up
            xs = x[:n_small]
            t_small, auto = best_of(lambda drift=drift, xs=xs: _kds_step(drift, xs, h,
                                                                         closed=False), reps_auto)
            t_full_est = t_small * (N / n_small) ** 2
            if t_full_est <= AUTODIFF_BUDGET_S:  # affordable: measure at the full batch
                log(f"[kds] {name}: autodiff at n = {N} (≈ {fmt_s(t_full_est)})")
                xs = x
                t_auto, auto = best_of(lambda drift=drift: _kds_step(drift, x, h, closed=False),
                                       1)
                n_auto, extrapolated = N, False
            else:
                t_auto, n_auto, extrapolated = t_full_est, n_small, True
            v_err, g_err = _rel_err(_kds_step(drift, xs, h, closed=True), auto)
            per[name] = {"closed": t_closed, "auto": t_auto, "auto_measured": t_small,
                         "n_auto": n_auto, "extrapolated": extrapolated,
                         "v_err": v_err, "g_err": g_err}

    speed = {k: v["auto"] / v["closed"] for k, v in per.items()}
    extrapolated = any(v["extrapolated"] for v in per.values())
    s.results = {
        "kds_closed_vs_autodiff_speedup": min(speed.values()),
        "kds_max_rel_err": max(v["v_err"] for v in per.values()),
        "kds_grad_max_rel_err": max(v["g_err"] for v in per.values()),
        "kds_autodiff_extrapolated": extrapolated,
        "kds_d": d,
        "kds_batch": N,
        "kds_autodiff_measured_batch": min(v["n_auto"] for v in per.values()),
        "kds_bandwidth": h,
        "kds_dtype": "float64",
    }
    for name, v in per.items():
        s.results |= {
            f"kds_{name}_speedup": speed[name],
            f"kds_{name}_closed_s": v["closed"],
            f"kds_{name}_autodiff_s": v["auto"],
            f"kds_{name}_autodiff_measured_s": v["auto_measured"],
        }
    est = " (extrapolated)" if extrapolated else ""
    s.rows.append((
        "speedup, closed-form KDS vs autodiff", fmt_x(min(speed.values())),
        f"smaller of the 2 models{est}; forward + backward, d = {d}, {N} cells, float64",
    ))
    s.rows.append((
        "max rel. error, value / gradient",
        f"{s.results['kds_max_rel_err']:.1e} / {s.results['kds_grad_max_rel_err']:.1e}",
        f"closed form vs autodiff at n = {min(v['n_auto'] for v in per.values())}, float64",
    ))
    for name, v in per.items():
        label = "LinearDrift" if name == "linear" else "MLPDrift (hidden 8)"
        s.rows.append((f"  {label}: speedup", fmt_x(speed[name]), ""))
        s.rows.append((f"  {label}: closed form", fmt_s(v["closed"]),
                       f"best of {reps_closed}, n = {N}"))
        if v["extrapolated"]:
            ctx = (f"≈ {fmt_s(v['auto_measured'])} measured at n = {v['n_auto']} "
                   f"× ({N}/{v['n_auto']})²")
        else:
            ctx = f"measured at n = {N}"
        s.rows.append((f"  {label}: autodiff", fmt_s(v["auto"]), ctx))
    if extrapolated:
        s.notes.append(
            f"kds_closed_vs_autodiff: autodiff at {N} cells would take longer than "
            f"{AUTODIFF_BUDGET_S:.0f} s (and its memory also grows ∝ n²: every one of the n² "
            f"pairs holds d×d(×d) derivative tensors), so it was timed at {n_small} cells and "
            f"extrapolated quadratically (kds_autodiff_extrapolated: true)."
        )
    return s


# ---------------------------------------------------------------------------------------------

SECTIONS: dict[str, Callable[[Config], Section]] = {
    "exact_vs_em": bench_exact_vs_em,
    "kds_closed_vs_autodiff": bench_kds,
    "gim_speed": bench_gim_speed,
    "fit_scaling": bench_fit_scaling,
    "gim_full_fit": bench_gim_full_fit,
    "reference_task": bench_reference_task,
    "ray_matches_local": bench_ray_matches_local,
    "screen_fits": bench_screen_fits,
}


def machine_info(cfg: Config, names: list[str]) -> dict[str, object]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "causalpert": causalpert.__version__,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "torch_threads": torch.get_num_threads(),
        "loadavg_1min_start": os.getloadavg()[0],
        "quick": cfg.quick,
        "sections": names,
        "started_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the results to this JSON file")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (< 1 min)")
    parser.add_argument("--only", metavar="NAME[,NAME]",
                        help=f"run only these sections: {', '.join(SECTIONS)}")
    args = parser.parse_args(argv)
    names = list(SECTIONS)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in SECTIONS]
        if unknown or not names:
            parser.error(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")

    cfg = Config(quick=args.quick)
    meta = machine_info(cfg, names)
    results: dict[str, object] = {}
    notes: list[str] = []
    table = Table(title="causalpert benchmarks" + (" (--quick)" if cfg.quick else ""))
    for col in ("section", "metric", "value", "context"):
        table.add_column(col, justify="right" if col == "value" else "left")
    t_start = time.perf_counter()
    for i, name in enumerate(names):
        t0 = time.perf_counter()
        sec = SECTIONS[name](cfg)
        elapsed = time.perf_counter() - t0
        log(f"[{name}] done in {fmt_s(elapsed)}")
        results |= sec.results
        results[f"{name}_elapsed_s"] = elapsed
        notes += sec.notes
        if i:
            table.add_section()
        for j, (metric, value, context) in enumerate(sec.rows):
            table.add_row(name if j == 0 else "", metric, value, context)
    meta["elapsed_s"] = time.perf_counter() - t_start
    meta["loadavg_1min_end"] = os.getloadavg()[0]

    if args.out:  # before printing, so a closed stdout (`| head`) cannot lose the results
        with atomic_write(args.out) as f:
            json.dump({"meta": meta, "results": results, "notes": notes}, f, indent=2,
                      ensure_ascii=False)
            f.write("\n")
    console.print(table)
    console.print(
        f"python {meta['python']}, torch {meta['torch']}, {meta['cpu_count']} cores "
        f"({meta['torch_threads']} torch threads), 1-min load {meta['loadavg_1min_start']:.1f} → "
        f"{meta['loadavg_1min_end']:.1f}; total {fmt_s(meta['elapsed_s'])}. Times: wall clock, "
        "best of the stated repetitions after a warm-up."
    )
    for note in notes:
        console.print(f"note: {note}")
    if args.out:
        console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
