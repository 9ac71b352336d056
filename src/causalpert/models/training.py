"""The one training loop: Adam on a loss closure that returns named terms (all logged)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch

from .._progress import progress_bar
from .threads import torch_threads


class FitDivergedError(RuntimeError):
    """The loss became NaN or inf during fitting."""


@dataclass
class History:
    """Loss terms recorded every ``log_every`` steps, plus wall time."""

    step: list[int] = field(default_factory=list)
    terms: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0

    def record(self, step: int, terms: dict[str, torch.Tensor]) -> None:
        self.step.append(step)
        for k, v in terms.items():
            self.terms.setdefault(k, []).append(float(v))

    def to_dict(self) -> dict:
        return {"step": self.step, "seconds": self.seconds, **self.terms}

    @classmethod
    def from_dict(cls, d: dict) -> History:
        """The inverse of ``to_dict`` (what a checkpoint stores)."""
        terms = {k: list(v) for k, v in d.items() if k not in ("step", "seconds")}
        return cls(step=list(d["step"]), terms=terms, seconds=float(d["seconds"]))


def train(
    params: Iterable[torch.nn.Parameter] | list[dict],
    loss_fn: Callable[[int], dict[str, torch.Tensor]],
    *,
    steps: int,
    lr: float,
    log_every: int = 50,
    description: str = "fitting",
    progress: bool | None = None,
    lr_decay: float = 0.1,
) -> History:
    """Minimise ``loss_fn(step)["loss"]`` with AdamW and a cosine decay to ``lr · lr_decay``.

    ``params`` is a list of parameters or of AdamW parameter groups (dicts with their own
    ``lr`` / ``weight_decay``; weight decay defaults to 0). ``loss_fn`` returns a dict of scalar
    tensors; ``"loss"`` is optimised, every term is logged.
    Raises ``FitDivergedError`` with the step and the terms if the loss is not finite.
    Runs torch on ``threads.default_threads()`` threads (1 unless ``CAUSALPERT_THREADS``).
    """
    params = list(params)
    if params and isinstance(params[0], dict):
        groups = [{"weight_decay": 0.0, **g, "params": [p for p in g["params"] if p.requires_grad]}
                  for g in params]
    else:
        groups = [{"params": [p for p in params if p.requires_grad], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda t: lr_decay + (1 - lr_decay) * 0.5 * (1 + math.cos(math.pi * t / steps))
    )
    hist = History()
    t0 = time.perf_counter()
    with torch_threads(), progress_bar(description, steps, enabled=progress) as advance:
        for step in range(steps):
            terms = loss_fn(step)
            loss = terms["loss"]
            if not torch.isfinite(loss):
                shown = ", ".join(f"{k}={float(v.detach()):.3g}" for k, v in terms.items())
                raise FitDivergedError(
                    f"loss is not finite at step {step} ({shown}): lower the learning rate or "
                    "check the data scale"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            status = ""
            if step % log_every == 0 or step == steps - 1:
                hist.record(step, {k: v.detach() for k, v in terms.items()})
                status = f"loss {loss.item():.4g}"
            advance(1, status=status or None)
    hist.seconds = time.perf_counter() - t0
    return hist
