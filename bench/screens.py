"""Section ``screen_fits``: wall time of one default GIM fit per real-screen protocol.

Issue target: every fit of the papalexi2021 / norman2019 protocols ≤ 5 minutes on this
machine. One fit each, default settings (3,000 + 1,000 + 500 steps), one torch thread; the
benchmark tables time the same fits while other jobs share the cores, so these are the clean
figures.
"""

from __future__ import annotations

import time

from common import Config, Section, fmt_s, log


def bench_screen_fits(cfg: Config) -> Section:
    from causalpert.benchmark.protocols import load_protocol
    from causalpert.models import GIM
    from causalpert.models.threads import torch_threads

    s = Section()
    knobs = {"steps": 300, "refit_steps": 100} if cfg.quick else {}
    for name, split in (("papalexi2021", "train"), ("norman2019", "train")):
        data = load_protocol(name, seed=0)
        cells = getattr(data, split)
        log(f"[screen_fits] {name}: GIM on {cells.n_obs:,} cells × {cells.n_vars} genes")
        model = GIM(seed=0, **knobs)
        with torch_threads():
            t0 = time.perf_counter()
            model.fit(cells, progress=False, **data.fit_kwargs)
            seconds = time.perf_counter() - t0
        steps = model.config.steps + model.config.refit_steps * 3 // 2
        key = f"{name}_gim_fit_s"
        s.results |= {key: seconds, f"{name}_cells": cells.n_obs, f"{name}_genes": cells.n_vars,
                      f"{name}_steps": steps}
        s.rows.append((key, fmt_s(seconds), f"d = {cells.n_vars}, {cells.n_obs:,} cells, "
                       f"{steps:,} steps (target ≤ 300 s)"))
    return s
