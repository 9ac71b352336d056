"""Does GIM's free refit stay stable on the real screens, or does it fall back to the stage-1
support (``FitConfig.refit_support``)? One default fit each, seed 0, one JSON line per screen:

    OMP_NUM_THREADS=1 python bench/refit_fallback.py

Reports ``refit_on_support_``, the largest max Re eig(W) found at any refresh of the stability
penalty (stage 1 and refit), and ``stability_scale_``. Session 8: Papalexi 2021 (d = 162,
``gim``) and Norman 2019 (d = 200, ``gim-moments``) both kept the free refit; session 9 added
Sachs 2005 (d = 11, ``gim``: the eigenvalue is exact at every step there, so "two refreshes in
a row" means two steps).
"""

from __future__ import annotations

import json
import time

import causalpert as cp
from causalpert.benchmark.protocols import norman2019, papalexi2021, sachs
from causalpert.models import gim


def main() -> None:
    peak = {"lam": float("-inf")}
    call = gim._StabilityPenalty.__call__

    def watch(self, drift):
        out = call(self, drift)
        peak["lam"] = max(peak["lam"], self.leading.value)
        return out

    gim._StabilityPenalty.__call__ = watch
    screens = (("sachs", sachs, {}),
               ("papalexi2021", papalexi2021, {}),
               ("norman2019", norman2019, {"estimator": "v", "moment_weight": 10.0}))
    for name, protocol, options in screens:
        pdata = protocol(seed=0)
        peak["lam"] = float("-inf")
        t0 = time.perf_counter()
        m = cp.GIM(causal="linear", seed=0, **options).fit(pdata.train, progress=False,
                                                           **pdata.fit_kwargs)
        print(json.dumps({"data": name, "d": len(m.genes_),
                          "refit_on_support": m.refit_on_support_,
                          "max_lambda_at_refresh": peak["lam"],
                          "stability_scale": m.stability_scale_,
                          "seconds": time.perf_counter() - t0}), flush=True)


if __name__ == "__main__":
    main()
