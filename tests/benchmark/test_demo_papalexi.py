"""The Papalexi 2021 page of the demo: two short GIM fits give figures and a 9-row rank table."""

import contextlib

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

from causalpert.benchmark.demo_papalexi import papalexi_gim
from causalpert.benchmark.html_report import write_report


def _one_blas_thread():
    """numpy/scipy BLAS on one thread (conftest sets torch's): the fits' small dense solves
    run about 3× slower when BLAS threads compete for 2 shared cores."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # not a dependency of causalpert: only slower without it
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def test_papalexi_gim_sections_and_ranks(tmp_path):
    with _one_blas_thread():
        res = papalexi_gim(seed=0, options={"steps": 60, "refit_steps": 20,
                                            "evidence_cells": 0}, progress=False)
    assert set(res.seconds) == {"all", "train"} and all(s > 0 for s in res.seconds.values())
    ranks = res.ranks
    assert len(ranks) == 9
    assert sorted(ranks["knocked-out gene"]) == sorted(
        ["CMTM6", "IFNGR2", "JAK2", "NFKBIA", "STAT1", "STAT2", "STAT3", "TNFRSF14", "UBE2L6"])
    assert ranks.index.str.startswith("ko_").all()  # the blind fit saw opaque labels only
    r = ranks["rank (of 162)"].to_numpy(dtype=float)
    assert np.all((r >= 1) & (r <= 162))
    assert all(len(top.split(", ")) == 3 for top in ranks["GIM top 3"])

    figures = [s for s in res.sections if s.figure is not None]
    assert len(figures) == 2 and all(s.caption for s in figures)
    scatter = figures[0].figure.axes
    assert len(scatter) == 3  # STAT1, IFNGR2 held out; JAK2 never seen
    for ax, gene in zip(scatter, ("STAT1", "IFNGR2", "JAK2"), strict=True):
        assert ax.get_title().startswith(gene) and "Pearson r = " in ax.get_title()
        assert ax.collections[0].get_offsets().shape == (162, 2)  # one point per gene
    assert "never seen" in scatter[2].get_title()
    assert set(res.pearson) == {"STAT1", "IFNGR2", "JAK2"}
    assert all(-1 <= v <= 1 for v in res.pearson.values())
    tables = [s for s in res.sections if s.table is not None]
    assert len(tables) == 1 and tables[0].table is ranks

    index = write_report(tmp_path, title="papalexi", command="test", sections=res.sections)
    pngs = sorted(tmp_path.glob("*.png"))
    assert len(pngs) == 2 and all(p.stat().st_size > 5000 for p in pngs)
    page = index.read_text()
    assert all(p.name in page for p in pngs) and "JAK2" in page
    plt.close("all")
