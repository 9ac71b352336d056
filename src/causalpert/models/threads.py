"""How many CPU threads torch uses while causalpert fits and predicts.

Default 1 (override with the environment variable ``CAUSALPERT_THREADS``): the tensors of a
training step are small (about a thousand cells), and intra-op threading costs more than it
gains — on a 2-core machine, GIM steps took 20× longer with 2 threads than with 1 at d = 20
and 9× longer at d = 1,000 (``bench/`` measures with one thread). The caller's setting is
restored afterwards.
"""

from __future__ import annotations

import contextlib
import os

import torch


def default_threads() -> int:
    """``CAUSALPERT_THREADS`` as a positive integer (default 1)."""
    raw = os.environ.get("CAUSALPERT_THREADS", "1")
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"CAUSALPERT_THREADS must be a positive integer, got {raw!r}")
    return n


@contextlib.contextmanager
def torch_threads(n: int | None = None):
    """Run the block with torch on ``n`` threads (default ``default_threads()``)."""
    n = default_threads() if n is None else n
    old = torch.get_num_threads()
    if n != old:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n != old:
            torch.set_num_threads(old)
