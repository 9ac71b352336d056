"""``mlp`` baseline: the unstructured black box, MLP(γ, c) → mean shift and per-gene log-scale."""

from __future__ import annotations

import anndata as ad
import torch
from torch import nn

from ...data.contexts import Contexts
from .. import register
from ..base import PerturbationModel
from ..training import train
from .control import sample_control

ACTIVATIONS = {"relu": nn.ReLU, "silu": nn.SiLU, "tanh": nn.Tanh}


def energy_distance(x_pred: torch.Tensor, x_obs: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Differentiable energy distance per batch element (plain Euclidean, like ``metrics.edist``).

    E = 2·mean_{a,b}‖x̂_a − x_b‖ − mean_{a≠a'}‖x̂_a − x̂_a'‖ − mean_{b≠b'}‖x_b − x_b'‖,
    with ‖v‖ computed as sqrt(‖v‖² + eps) so the gradient is finite at v = 0.

    Args:
        x_pred: predicted cells [B, n, d], n ≥ 2.
        x_obs: observed cells [B, m, d], m ≥ 2.

    Returns:
        [B] energy distances.
    """
    def mean_dist(a, b, same: bool) -> torch.Tensor:
        sq = (a * a).sum(-1)[:, :, None] + (b * b).sum(-1)[:, None, :] - 2 * a @ b.transpose(1, 2)
        dist = torch.sqrt(sq.clamp_min(0) + eps)
        if not same:
            return dist.mean((1, 2))
        n = a.shape[1]
        return (dist.sum((1, 2)) - n * eps**0.5) / (n * (n - 1))

    return (2 * mean_dist(x_pred, x_obs, False) - mean_dist(x_pred, x_pred, True)
            - mean_dist(x_obs, x_obs, True))


@register
class MLPBaseline(PerturbationModel):
    """MLP from (features, dose) to a per-gene mean shift and log-scale, applied to control cells.

    With standardised inputs z = ([γ, c] − m) / s and control moments μ₀, s₀ [d], the network
    gives (δ, s) = MLP(z) [d] each, Δμ = s₀ ⊙ δ, and a control cell x₀ becomes
    x̂ = μ₀ + Δμ + (x₀ − μ₀) ⊙ exp(s). The last layer is zero-initialised ("no effect" at
    step 0). Training minimises the mean energy distance (``energy_distance``) between predicted
    cells (from fresh control cells) and observed cells over minibatches of ``batch_contexts``
    training contexts × ``cells_per_context`` cells, with Adam (``models.training.train``).
    Prediction transforms n_cells control cells drawn with replacement; ``mode`` is ignored.

    Target score (``target_probabilities``): |Δμ(γ, c_max)| / s₀ = |δ(γ, c_max)|, c_max the
    largest training dose — a score, not a probability.

    Args:
        seed: seeds initialisation, minibatches and ``predict`` sampling.
        hidden: units per hidden layer.
        layers: number of hidden layers.
        activation: ``"relu"``, ``"silu"`` or ``"tanh"``.
        steps: Adam steps.
        lr: Adam learning rate (cosine-decayed to lr/10).
        weight_decay: decoupled L2 weight decay.
        batch_contexts: training contexts per step.
        cells_per_context: cells per context per step (observed: at most the smallest context).
        log_every: record the loss every this many steps (``history_``).
    """

    name = "mlp"
    has_target_scores = True

    def __init__(self, *, seed: int = 0, hidden: int = 128, layers: int = 2,
                 activation: str = "silu", steps: int = 2000, lr: float = 3e-3,
                 weight_decay: float = 1e-4, batch_contexts: int = 16,
                 cells_per_context: int = 64, log_every: int = 50):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        for key, v in {"hidden": hidden, "layers": layers, "steps": steps,
                       "batch_contexts": batch_contexts}.items():
            if v < 1:
                raise ValueError(f"{key} must be ≥ 1, got {v}")
        if cells_per_context < 2:
            raise ValueError(f"cells_per_context must be ≥ 2, got {cells_per_context}")
        super().__init__(seed=seed, hidden=hidden, layers=layers, activation=activation,
                         steps=steps, lr=lr, weight_decay=weight_decay,
                         batch_contexts=batch_contexts, cells_per_context=cells_per_context,
                         log_every=log_every)

    def _build(self, p: int, d: int) -> None:
        o = self.options  # initialised from the global RNG, which fit() seeds
        mods, width = [], p + 1
        for _ in range(o["layers"]):
            mods += [nn.Linear(width, o["hidden"]), ACTIVATIONS[o["activation"]]()]
            width = o["hidden"]
        last = nn.Linear(width, 2 * d)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(*mods, last)

    def _heads(self, F: torch.Tensor, doses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(Δμ [P, d] in data units, log-scale s [P, d]) for features [P, p] and doses [P]."""
        z = (torch.cat([F, doses[:, None]], 1).float() - self.in_mean_) / self.in_sd_
        delta, s = self.net(z).chunk(2, dim=-1)
        return delta * self.s0_, s

    def _transform(self, x0: torch.Tensor, F: torch.Tensor, doses: torch.Tensor) -> torch.Tensor:
        """x̂ = μ₀ + Δμ + (x₀ − μ₀) ⊙ exp(s) for control cells x₀ [P, n, d]."""
        shift, s = self._heads(F, doses)
        return self.mu0_ + shift[:, None] + (x0 - self.mu0_) * torch.exp(s)[:, None]

    def _fit(self, contexts: Contexts, *, adata: ad.AnnData, progress: bool | None) -> None:
        o = self.options
        pert = torch.tensor([k for k in range(contexts.n_contexts) if k != contexts.control])
        self._require_perturbed(len(pert))
        self.mu0_, self.s0_ = contexts.control_moments()
        inputs = torch.cat([contexts.features, contexts.doses[:, None]], 1).float()
        self.in_mean_ = inputs[pert].mean(0)
        self.in_sd_ = inputs[pert].std(0).nan_to_num(1.0)
        self.in_sd_ = torch.where(self.in_sd_ > 1e-6, self.in_sd_, torch.ones_like(self.in_sd_))
        self.max_dose_ = float(contexts.doses[pert].max())
        self._build(contexts.features.shape[1], contexts.n_genes)
        F, doses = contexts.features.float(), contexts.doses.float()
        g = torch.Generator().manual_seed(self.seed)
        B = min(o["batch_contexts"], len(pert))
        n_obs = min(o["cells_per_context"], int(contexts.sizes[pert].min()))
        ctrl = torch.full((B,), contexts.control)

        def loss_fn(step: int) -> dict[str, torch.Tensor]:
            idx = pert[torch.randperm(len(pert), generator=g)[:B]]
            x_obs = contexts.sample(idx, n_obs, generator=g)
            x0 = contexts.sample(ctrl, o["cells_per_context"], generator=g)
            x_hat = self._transform(x0, F[idx], doses[idx])
            return {"loss": energy_distance(x_hat, x_obs).mean()}

        groups = [{"params": list(self.net.parameters()), "weight_decay": o["weight_decay"]}]
        self.history_ = train(groups, loss_fn, steps=o["steps"], lr=o["lr"],
                              log_every=o["log_every"], progress=progress,
                              description="fitting MLP baseline")
        self.net.eval()

    def _predict(self, F, doses, n_cells, mode, generator) -> torch.Tensor:
        x0 = sample_control(self.control_cells_, len(F), n_cells, generator)
        return self._transform(x0, F, doses)

    def _target_scores(self, F, perturbations) -> torch.Tensor:
        shift, _ = self._heads(F, torch.full((len(F),), self.max_dose_))
        return shift.abs() / self.s0_

    def _state(self):
        tensors = {f"net.{k}": v for k, v in self.net.state_dict().items()}
        tensors |= {"mu0": self.mu0_, "s0": self.s0_, "in_mean": self.in_mean_,
                    "in_sd": self.in_sd_}
        return tensors, {"max_dose": self.max_dose_, "history": self.history_.to_dict()}

    def _load_state(self, tensors, extra) -> None:
        self.mu0_, self.s0_ = tensors["mu0"], tensors["s0"]
        self.in_mean_, self.in_sd_ = tensors["in_mean"], tensors["in_sd"]
        self.max_dose_ = float(extra["max_dose"])
        self._build(len(self.in_mean_) - 1, len(self.mu0_))
        self.net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
        self.net.eval()
