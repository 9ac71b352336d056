"""``GIM``: a stationary-diffusion causal model learned jointly with a generative intervention
model (method.md §5). The user class is wiring; the math lives in ``core`` and ``gim_module``.

Training objective (control context 0, perturbed contexts k with features γ_k and dose c_k):

    L = w₀ KDS(D₀; θ, ∅) + mean_k E_{m∼B(π(γ_k))} KDS(D_k; θ, (m, u(γ_k, c_k)))
        + λ_G R(θ) + λ_T mean_k Σ_j π_j(γ_k) / d + stability penalty on W (linear model)

The expectation over Bernoulli targets uses relaxed-Bernoulli (binary concrete) samples by
default; its exact closed form (``core.kds_bernoulli``, ``mask_estimator="exact"``) is the
ablation — on 3 seeds of both synthetic truths the relaxed version recovered training targets
better (README, Ablations).
"""

from __future__ import annotations

import contextlib
import copy
import math

import anndata as ad
import numpy as np
import torch

from ..core import (
    Interventions,
    LeadingEigenvalue,
    intervened_drift,
    kds,
    kds_bernoulli,
    kds_shift_gain,
    leading_eigenvalues,
    match_stationary_variance,
    max_real_eigenvalue,
    sample_stationary,
    transport_cells,
)
from ..data.contexts import Contexts
from . import register
from .base import PerturbationModel, broadcast_doses
from .causal import (
    graph_in_data_units,
    make_drift,
    resolve_bandwidth,
    standardise,
    warm_start_drift,
)
from .config import FitConfig
from .gim_module import (
    DOSE_RESPONSE,
    InterventionNet,
    LatentInterventions,
    hill_activity,
    hill_shift,
)
from .heads import (
    LinearHead,
    fit_rbf_cv,
    head_from_checkpoint,
    held_out_predictions,
    select_head,
)
from .ridge import RidgeFit
from .training import History, train


def _fit_logistic(x: torch.Tensor, y: torch.Tensor, steps: int = 200) -> tuple[float, ...]:
    """(w₁, …, w_q, b) minimising the cross-entropy of sigmoid(x w + b) against soft labels
    y ∈ [0, 1]; x [N] or [N, q]."""
    x, y = x.double().reshape(len(y), -1), y.double().clamp(0, 1)
    wb = torch.zeros(x.shape[1] + 1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([wb], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ wb[:-1] + wb[-1], y)
        loss.backward()
        return loss

    opt.step(closure)
    return tuple(float(v) for v in wb.detach())


def _calibrated_logits(effects: list[torch.Tensor], calibration) -> torch.Tensor:
    """w₁|e₁| + … + b: target logits from the expected effects (shift, and activity)."""
    *w, b = calibration
    return sum(wi * e.abs() for wi, e in zip(w, effects, strict=True)) + b


def _intervened_stability(drift, interventions: Interventions | None,
                          margin: float) -> torch.Tensor:
    """mean_k relu(max Re eig(A diag(α_k) − I) + margin)², α_k = exp(m_k ⊙ κ_k): activity
    interventions rescale columns of W, which can make it unstable (O(K d³): activity only)."""
    alpha = None if interventions is None else interventions.activity_factor()
    if alpha is None:
        return torch.zeros((), device=drift.b.device)
    W = drift.intervened_W(alpha)
    return (torch.relu(leading_eigenvalues(W) + margin) ** 2).mean()


def _device(name: str) -> torch.device:
    """``torch.device(name)``, with a one-line error when that device is not available."""
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={name!r} but torch sees no CUDA GPU: use device='cpu'")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={name!r} but MPS is not available: use device='cpu'")
    return dev


#: from this many genes the stability penalty's eigenvector refresh runs in a background thread
ASYNC_REFRESH_D = 500


class _StabilityPenalty:
    """relu(max Re eig(W) + margin)² — keeps the linear drift Hurwitz with a margin. The
    eigenvalue is exact every step for d ≤ 20 and refreshed every d / 20 steps above
    (``core.LeadingEigenvalue``); between refreshes λ ≈ ⟨G, W⟩ = ⟨G ⊙ mask, w_off⟩ − tr G,
    one O(d²) product on the free weights (W itself is not formed)."""

    def __init__(self, d: int, margin: float):
        every = max(1, d // 20)
        # from d = 500 the refresh (≈ 0.1 s there, 0.45 s at 1,000) runs in the background,
        # installed every/5 calls later (≈ 10 steps at d = 1,000, where it takes ≈ 4)
        self.leading = LeadingEigenvalue(refresh_every=every,
                                         lag=every // 5 if d >= ASYNC_REFRESH_D else 0)
        self.margin = margin
        self.refreshed = False  # whether the last call installed new eigenvectors
        self._Gm: torch.Tensor | None = None

    def __call__(self, drift) -> torch.Tensor:
        lead = self.leading
        self.refreshed = lead.update(drift.W)
        if self.refreshed:  # G and the cached G ⊙ mask are set together
            self._Gm, self._trace = lead.G * drift.mask, float(lead.G.diagonal().sum())
        lam = (drift.w_off * self._Gm).sum() - self._trace
        return torch.relu(lam + self.margin) ** 2


class _RefitUnstable(Exception):
    """The free refit made W unstable (``GIM._refit`` then refits on the stage-1 support)."""


def _outside_support(drift, threshold: float) -> torch.Tensor:
    """[d, d] mask of the edges whose stage-1 |w| < ``threshold`` (``FitConfig.refit_support``):
    the refit keeps their L1, so only edges that stage 1 selected are refitted freely."""
    return (drift.w_off.detach().abs() < threshold).to(drift.w_off.dtype) * drift.mask


def _moment_term(drift, shift: torch.Tensor, means: torch.Tensor, control: int,
                 idx: torch.Tensor) -> torch.Tensor:
    """mean_k ‖μ_k − x̄_k‖² / d with the exact stationary means μ_k = −W⁻¹(b + s_k) of the
    control (s = 0) and the contexts ``idx`` [B] with expected shifts ``shift`` [B, d];
    ``means`` [contexts, d] holds every context's x̄."""
    d = shift.shape[1]
    shift = torch.cat([shift.new_zeros(1, d), shift])
    target = means[torch.cat([idx.new_tensor([control]), idx])]
    mu = -torch.linalg.solve(drift.W, (drift.b + shift).T).T
    return ((mu - target) ** 2).sum(-1).mean() / d


def coexpression(x: torch.Tensor, genes) -> np.ndarray:
    """Rows ``genes`` of the correlation matrix of the cells x [n, d], [len(genes), d]: where
    each gene sits in the co-expression of the control cells (a gene constant there: 0)."""
    x = x.double()
    xs = x - x.mean(0)
    sd = xs.pow(2).mean(0).sqrt()
    xs = torch.where(sd > 1e-12, xs / sd.clamp_min(1e-12), torch.zeros_like(xs))
    return (xs[:, list(genes)].T @ xs / len(x)).numpy()


def _top_dose_contexts(pert, pidx, doses) -> dict[int, int]:
    """{perturbation index: its highest-dose context} over the perturbed contexts ``pert``."""
    top: dict[int, int] = {}
    for k in pert.tolist():
        p = int(pidx[k])
        if p not in top or doses[k] > doses[top[p]]:
            top[p] = k
    return top


def _first_occurrences(x: torch.Tensor) -> torch.Tensor:
    """The rows of ``x`` [n, d] without repeats, each at its first occurrence, in order (``x``
    itself when no row repeats). A bootstrap resample repeats cells; they carry no new
    information, and in the pair sums of a score test a repeated cell acts as two
    independent ones (on Papalexi 2021 that moved a member's rank of STAT3 from 6 to 98)."""
    rows = np.ascontiguousarray(x.numpy()).view(np.dtype((np.void, x.shape[1] * x.element_size())))
    _, first = np.unique(rows.ravel(), return_index=True)
    return x if len(first) == len(x) else x[torch.from_numpy(np.sort(first))]


def _evidence_blocks(x: torch.Tensor, n_cells: int, g: torch.Generator) -> torch.Tensor:
    """A context's cells for a pooled score test: its distinct rows (``_first_occurrences``)
    shuffled by ``g`` into ⌈n / n_cells⌉ disjoint near-equal blocks, [blocks, size, d] float64
    (the < blocks cells left over are dropped)."""
    x = _first_occurrences(x)
    blocks = -(-len(x) // n_cells)  # ceil: blocks of ≤ n_cells, near-equal
    size = len(x) // blocks
    x = x[torch.randperm(len(x), generator=g)[:blocks * size]]
    return x.reshape(blocks, size, -1).double()


def knockout_size_rule(P: np.ndarray, e: np.ndarray, z: np.ndarray) -> dict:
    """The size ê_j of an intervention on a new perturbation's intended gene j, from the seen
    ones' e (perturbation ids P, e in control-sd units, z_j = −μ₀_j / s₀_j the gene's distance
    to 0 in control sds). Two rules, chosen by leave-one-perturbation-out absolute error:
    ``constant`` ê_j = median e and ``toward_zero`` ê_j = ρ z_j with ρ = median e / z (a
    knockout takes a fixed share of the way to no expression). Medians and absolute error,
    not means and squares: a handful of knockouts set the size, and one whose own gene also
    falls through feedback (STAT1 on Papalexi 2021: −3.5 sd against −0.3 to −0.6 for most,
    bench/knockout_sizes.py)
    must not set it for all."""

    def fit(mask):
        away = mask & (np.abs(z) > 1e-6)  # a gene at 0 in control says nothing of ρ
        rho = float(np.median(e[away] / z[away])) if away.any() else 0.0
        return {"constant": float(np.median(e[mask])), "toward_zero": rho}

    def predict(rule, params, zj):
        return params["constant"] if rule == "constant" else params["toward_zero"] * zj

    cv = {"constant": 0.0, "toward_zero": 0.0}
    groups = np.unique(P)
    for g in groups if len(groups) > 1 else []:
        params = fit(P != g)
        for rule in cv:
            cv[rule] += float(np.abs(e[P == g] - predict(rule, params, z[P == g])).sum())
    rule = min(cv, key=lambda r: (cv[r], r != "constant"))
    return {"rule": rule, **fit(np.ones(len(e), dtype=bool)), "cv_error": cv}


@register
class GIM(PerturbationModel):
    """Generative intervention model on a stationary-diffusion causal model.

    Args:
        causal: causal model, ``"linear"`` or ``"mlp"``.
        seed: seeds initialisation, minibatches and sampling.
        config: a ``FitConfig`` (or its dict); keyword overrides of its fields are accepted too.

    Examples:
        >>> import causalpert as cp
        >>> adata = cp.simulate("paper-synthetic", seed=0)
        >>> model = cp.GIM(causal="linear", seed=0, steps=200)
        >>> model = model.fit(adata[adata.obs["split"] == "train"], progress=False)
        >>> model.target_probabilities(["pert_45"]).shape
        (1, 20)
    """

    name = "gim"
    has_target_scores = True
    has_graph = True
    predict_uses_names = True
    composes = True
    uses_intended_targets = True

    def __init__(self, *, causal: str = "linear", seed: int = 0,
                 config: FitConfig | dict | None = None, **knobs):
        cfg = config if isinstance(config, FitConfig) else FitConfig.from_dict(config or {})
        cfg = cfg.replace(**knobs) if knobs else cfg
        if causal not in ("linear", "mlp"):
            raise ValueError(f"causal must be 'linear' or 'mlp', got {causal!r}")
        super().__init__(seed=seed, causal=causal, config=cfg.to_dict())
        self.causal, self.config = causal, cfg

    # ---------------------------------------------------------------- build
    def _build(self, d: int, p: int, dose_scale: float, seen: list[str]) -> None:
        cfg = self.config
        g = torch.Generator().manual_seed(self.seed)
        self.drift = make_drift(self.causal, d, cfg, g)
        torch.manual_seed(self.seed)
        if cfg.variant == "latent":
            self.net = LatentInterventions(len(seen), d, dose_scale=dose_scale,
                                           target_prior=cfg.target_prior,
                                           activity=cfg.activity)
        else:
            self.net = InterventionNet(p, d, hidden=cfg.gim_hidden, head=cfg.head,
                                       dose_scale=dose_scale, target_prior=cfg.target_prior)
        self.dose_scale_ = dose_scale
        self.seen_ = list(seen)

    def _fit(self, contexts: Contexts, *, adata: ad.AnnData, progress) -> None:
        cfg = self.config
        if cfg.standardize:
            self.mu0_, self.s0_, z = standardise(contexts, inplace=True)  # fit owns them
        else:
            self.mu0_, self.s0_ = torch.zeros(contexts.n_genes), torch.ones(contexts.n_genes)
            z = contexts
        pert = torch.tensor([k for k in range(z.n_contexts) if k != z.control])
        self._require_perturbed(len(pert))
        F = z.features
        self.f_mean_ = F[pert].mean(0)
        sd = F[pert].std(0) if len(pert) > 1 else torch.ones(F.shape[1])  # one: no spread
        self.f_sd_ = torch.where(sd > 1e-6, sd, torch.ones_like(sd))  # constant bits: 1
        Fz = (F - self.f_mean_) / self.f_sd_
        doses = z.doses
        seen = sorted({z.perturbations[k] for k in pert.tolist()})
        pidx = torch.tensor([seen.index(p) if k != z.control else -1
                             for k, p in enumerate(z.perturbations)])
        self._build(z.n_genes, F.shape[1], float(doses[pert].median()), seen)
        warm_start_drift(self.drift, z.cells(z.control))
        latent = cfg.variant == "latent"
        means = z.means()
        if latent and cfg.warm_start:  # amplitudes start at the mean shift of the top dose
            with torch.no_grad():
                for k in sorted(pert.tolist(), key=lambda j: float(doses[j])):  # top dose last
                    self.net.amplitude[pidx[k]] = means[k] - means[z.control]
        # genetic perturbations: modelled intended genes start likely, free of the λ_T penalty
        penalised = torch.ones(len(seen), z.n_genes)  # joint variant: every gene penalised
        if latent:
            prior = self._intended_mask(seen)
            penalised = 1.0 - prior
            with torch.no_grad():
                p_logit = math.log(cfg.intended_prior / (1 - cfg.intended_prior))
                self.net.logits[prior > 0] = p_logit
        # train on cfg.device (cells move there per minibatch); outputs are computed on the CPU
        dev = _device(cfg.device)
        penalised = penalised.to(dev)
        self.drift.to(dev)
        self.net.to(dev)
        means, doses, Fz, pidx = means.to(dev), doses.to(dev), Fz.to(dev), pidx.to(dev)
        self.bandwidth_ = resolve_bandwidth(z, cfg)
        g = torch.Generator().manual_seed(self.seed)
        loss_fn = self._selection_loss(z, pert, pidx, pidx if latent else Fz, doses, means,
                                       penalised, g, dev, steps=cfg.steps,
                                       tau_start=cfg.tau_start, lambda_graph=cfg.lambda_graph)
        self.history_ = train(self._param_groups(), loss_fn, steps=cfg.steps, lr=cfg.lr,
                              log_every=cfg.log_every, progress=progress,
                              description=f"fitting GIM ({self.causal})")
        if latent and cfg.refit_steps > 0:
            self._refit(z, pert, pidx, g, progress, dev)
            if cfg.reselect_steps > 0:
                self._reselect(z, pert, pidx, doses, means, penalised, g, progress, dev)
                self._refit(z, pert, pidx, g, progress, dev, frozen=DOSE_RESPONSE)
        self.drift.cpu().eval()
        if self.causal == "linear":
            self._ensure_stable()
        if self.causal == "linear" and cfg.noise_calibration:
            self._calibrate_noise(z)
        self.net.cpu().eval()
        if latent:
            self._fit_heads(Fz.cpu(), pidx.cpu())
        self.genetic_ = self._fit_genetic(z, pert, pidx.cpu(), doses.cpu()) if latent else None
        self._fit_target_evidence(z, pert, pidx.cpu(), Fz.cpu(), doses.cpu())

    @property
    def _refit_keeps_l1(self) -> bool:
        """The refit (and re-selection) keep the graph's L1: always for the MLP model (edge
        strength would spread over all pairs), for the linear one with ``refit_graph_l1``."""
        return self.causal == "mlp" or self.config.refit_graph_l1

    def _net_params(self, frozen: tuple[str, ...] = ()) -> list[torch.nn.Parameter]:
        """The GIM's parameters less those named in ``frozen`` (by their top-level name:
        ``"logits"``, ``DOSE_RESPONSE``, or a submodule of the joint variant)."""
        return [p for k, p in self.net.named_parameters() if k.split(".")[0] not in frozen]

    def _param_groups(self, frozen: tuple[str, ...] = ()) -> list[dict]:
        """Stage 1's optimiser groups: the drift at ``lr``; the GIM at ``lr_gim`` with decay,
        less the GIM parameters named in ``frozen``."""
        cfg = self.config
        return [{"params": list(self.drift.parameters()), "lr": cfg.lr},
                {"params": self._net_params(frozen), "lr": cfg.lr_gim,
                 "weight_decay": cfg.weight_decay}]

    def _selection_loss(self, z: Contexts, pert, pidx, inputs, doses, means, penalised, g,
                        dev, *, steps: int, tau_start: float, lambda_graph: float):
        """Stage 1's loss as a function of the step (method.md §5): control KDS + KDS of
        the perturbed contexts under masks m ~ Concrete(π, τ) (τ annealed ``tau_start`` →
        ``tau_end`` over ``steps``; or the exact Bernoulli estimator) + λ_G R(θ)
        + λ_T Σ_j π_j / d (genes in ``penalised``), plus the moment and stability terms.
        ``inputs``: what the GIM reads per context: ``pidx`` (latent variant) or the
        standardised features (joint)."""
        cfg, drift, net, h = self.config, self.drift, self.net, self.bandwidth_
        B = min(cfg.batch_contexts, len(pert))
        d = z.n_genes
        stability = _StabilityPenalty(d, cfg.stability_margin)
        origin = self._activity_origin().to(dev)

        def loss_fn(step: int) -> dict[str, torch.Tensor]:
            k_ctrl, s2, idx, x = self._minibatch(z, pert, g, dev)
            logits, u, kappa = net(inputs[idx], doses[idx])
            pi = torch.sigmoid(logits)
            s2b = s2.expand(B, -1)
            iv = None  # sampled interventions (the exact estimator averages over masks)
            if cfg.mask_estimator == "exact":
                f = drift(x) + (pi * u)[:, None]
                k_pert = kds_bernoulli(x, f, pi * (1 - pi) * u**2, s2b, bandwidth=h,
                                       estimator=cfg.estimator)
            else:
                tau = tau_start * (cfg.tau_end / tau_start) ** (step / steps)
                noise = torch.rand(pi.shape, generator=g).clamp(1e-6, 1 - 1e-6).to(dev)
                m = torch.sigmoid((logits + torch.log(noise) - torch.log1p(-noise)) / tau)
                iv = Interventions(m, u, activity=kappa)
                k_pert = kds(x, intervened_drift(drift, x, iv, origin), s2b,
                             bandwidth=h, estimator=cfg.estimator)
            terms = {"kds_control": k_ctrl, "kds_perturbed": k_pert.mean(),
                     "sparsity": drift.sparsity(),
                     "targets": (pi * penalised[pidx[idx]]).sum(-1).mean() / d}
            loss = (cfg.control_weight * k_ctrl + terms["kds_perturbed"]
                    + lambda_graph * terms["sparsity"] + cfg.lambda_targets * terms["targets"])
            if self.causal == "linear" and cfg.moment_weight > 0:
                terms["moments"] = _moment_term(drift, pi * u, means, z.control, idx)
                loss = loss + cfg.moment_weight * terms["moments"]
            if self.causal == "linear" and cfg.stability_weight > 0:
                terms["stability"] = stability(drift) + _intervened_stability(
                    drift, iv, cfg.stability_margin)
                loss = loss + cfg.stability_weight * terms["stability"]
            return {"loss": loss, **terms}

        return loss_fn

    def _reselect(self, z: Contexts, pert, pidx, doses, means, penalised, g, progress,
                  dev) -> None:
        """Re-selection (``reselect_steps``; variant A): stage 1's loss once more from the
        refitted state, with the refit's graph penalty (none for a linear model) and the
        target logits clamped to ±2 (π ∈ [0.12, 0.88], where λ_T and the KDS can move them).
        Stage 1's edge L1 shrinks a true edge A → B, so a drug hitting A also "needs" B as a
        target; the refit, free of the L1, grows the edge but keeps the frozen target. Here
        the edge can take B's shift over and λ_T drops B. The refit then runs again on the
        new targets. Both keep the drugs' EC50 and Hill at the first refit's values
        (``DOSE_RESPONSE`` frozen): trained on, they drifted where the feature heads could not
        follow (the heads' leave-one-out MSE of log EC50 0.43 → 0.56, of Hill 1.06 → 1.56, and
        new drugs' predictions worse; ``bench/reselect_masks.py``). Measured at d = 20
        (paper-synthetic); at d ≳ 500, where a free refit can turn W unstable
        (``refit_support``), this stage has no fallback of its own (the second refit has, and
        ``_ensure_stable`` runs after the fit)."""
        cfg = self.config
        with torch.no_grad():
            self.net.logits.clamp_(-2.0, 2.0)
        loss_fn = self._selection_loss(
            z, pert, pidx, pidx, doses, means, penalised, g, dev, steps=cfg.reselect_steps,
            tau_start=0.5, lambda_graph=cfg.lambda_graph if self._refit_keeps_l1 else 0.0)
        self.reselect_history_ = train(
            self._param_groups(frozen=DOSE_RESPONSE), loss_fn, steps=cfg.reselect_steps, lr=cfg.lr,
            log_every=cfg.log_every, progress=progress,
            description=f"re-selecting targets ({self.causal})")

    def _ensure_stable(self) -> None:
        """If the fitted W = −I + A is not Hurwitz with the stability margin (the penalty
        tracks the leading eigenvalue only between refreshes; seen on Norman 2019 at d = 200),
        scale the edges A by c = (1 − margin) / max Re λ(A), the largest factor that puts
        max Re eig(W) at −margin. ``stability_scale_`` records c (1: untouched)."""
        margin = self.config.stability_margin
        with torch.no_grad():
            lead = torch.linalg.eigvals(self.drift.W.double() + torch.eye(len(self.drift.b),
                                                                        dtype=torch.float64))
            top = float(lead.real.max())
            self.stability_scale_ = 1.0
            if top > 1 - margin:
                self.stability_scale_ = (1 - margin) / top
                self.drift.w_off.mul_(self.stability_scale_)

    def _calibrate_noise(self, z: Contexts) -> None:
        """σ such that the stationary control variances are 1 in model coordinates, i.e. the
        control cells' variances (s², with s floored for genes silent in control, see
        ``causal.standardise``); linear model, ``FitConfig.noise_calibration``. Shifts do not
        change a linear model's covariance; activity interventions scale W per context, so
        the control W is the one calibrated."""
        with torch.no_grad():  # unit variance in model coordinates: s² in data units
            self.drift.log_sigma.copy_(match_stationary_variance(
                self.drift.W, self.drift.log_sigma, torch.ones(z.n_genes)).float())

    def _intended_mask(self, names) -> torch.Tensor:
        """[P, d] 1 where a perturbation's intended gene is modelled (``intended_targets_``)."""
        M = torch.zeros(len(names), len(self.genes_))
        for i, p in enumerate(names):
            M[i, list(self._intended_genes(p, None) if p in self.intended_targets_ else ())] = 1
        return M

    def _fit_genetic(self, z: Contexts, pert, pidx, doses) -> dict | None:
        """The size of an intervention on a perturbation's intended gene, from the seen ones
        (method.md §7): e_pj = π_pj u_pj at p's top dose, for each seen p and modelled
        intended gene j; the size rule is ``knockout_size_rule``'s. ``hit_rate``, the share
        of intended genes selected (π > 0.5), is the target probability of a new one. None
        when no seen perturbation has a modelled intended gene."""
        prior = self._intended_mask(self.seen_)
        if not prior.any():
            return None
        top = _top_dose_contexts(pert, pidx, doses)
        zero = self._activity_origin().double()
        rows = []  # (perturbation, gene, e, z, selected)
        with torch.no_grad():
            for p, k in sorted(top.items()):
                if not prior[p].any():
                    continue
                logits, u, _ = self.net(torch.tensor([p]), doses[[k]])
                pi = torch.sigmoid(logits[0].double())
                for j in torch.nonzero(prior[p]).flatten().tolist():
                    rows.append((p, j, float(pi[j] * u[0, j]), float(zero[j]),
                                 float(pi[j] > 0.5)))
        P, _, e, zz, sel = (np.array(c) for c in zip(*rows, strict=True))
        info = {**knockout_size_rule(P, e, zz), "hit_rate": float(sel.mean()),
                "n_perturbations": len(np.unique(P))}
        return {**info, **self._fit_genetic_head(z.cells(z.control), prior, top, doses)}

    def _fit_genetic_head(self, x0: torch.Tensor, prior, top, doses) -> dict:
        """What else a new genetic perturbation moves directly (method.md §7): an RBF head
        with prior mean 0 (``fit_rbf_cv(centred=False)``: a gene co-expressed with none of
        the seen ones moves nothing else) from φ_p, the mean over p's intended genes j of
        corr(x_j, x) in the control cells x0 (``coexpression``), to the expected effects
        e_p = π_p ⊙ u_p of the seen genetic perturbations at their top dose, their own
        intended genes set to 0 (``knockout_size_rule`` sizes those). Kept
        (``heads_["genetic"]``) only if its leave-one-perturbation-out squared error beats
        predicting 0 (nothing else moves) — the choice uses the seen perturbations only; π
        of its effects from a logistic fitted on those held-out effects against the seen
        ones' π (as ``target_calibration_``). Needs ≥ 3 seen genetic perturbations."""
        ps = [p for p in sorted(top) if prior[p].any()]
        if self.config.genetic_head == "off" or len(ps) < 3:
            return {"head": False}
        X, Y, PI = [], [], []
        with torch.no_grad():
            for p in ps:
                k = top[p]
                genes = torch.nonzero(prior[p]).flatten().tolist()
                logits, u, _ = self.net(torch.tensor([p]), doses[[k]])
                pi = torch.sigmoid(logits[0].double())
                e = (pi * u[0].double()).numpy()
                e[genes] = 0.0
                X.append(coexpression(x0, genes).mean(0))
                Y.append(e)
                PI.append(np.where(prior[p].numpy() > 0, np.nan, pi.numpy()))
        X, Y, PI = np.stack(X), np.stack(Y), np.stack(PI)
        groups = np.arange(len(ps))
        head = fit_rbf_cv(X, Y, groups, centred=False)
        held = held_out_predictions(head, X, Y, groups)
        cv, cv_none = float(((Y - held) ** 2).mean()), float((Y ** 2).mean())
        info = {"head": bool(cv < cv_none), "head_cv_error": cv, "head_cv_error_none": cv_none}
        if info["head"]:
            self.heads_["genetic"] = head
            keep = ~np.isnan(PI)
            info["head_calibration"] = list(_fit_logistic(
                torch.as_tensor(np.abs(held[keep])), torch.as_tensor(PI[keep])))
        return info

    def _genetic_head(self):
        """The genetic head (``_fit_genetic_head``) if the fit kept it, else None."""
        return getattr(self, "heads_", {}).get("genetic")

    def _genetic_features(self, genes) -> np.ndarray:
        """φ [1, d] of a genetic perturbation aimed at ``genes``: the mean of their rows of
        the control cells' correlation matrix (``coexpression``)."""
        return coexpression(self.control_cells_, list(genes)).mean(0, keepdims=True)

    def _genetic_interventions(self, genes: tuple[int, ...], doses: torch.Tensor,
                               calibration):
        """(logits, u) [d] of a genetic perturbation never seen in training: its modelled
        intended genes get the learned size (``_fit_genetic``), π = the hit rate; the other
        genes no shift, π = the probability of a zero effect under ``calibration`` (its
        intercept; ``_interventions`` passes the one in use)."""
        if self.genetic_ is None:
            raise ValueError("cannot predict a genetic perturbation never seen in training: "
                             "no training perturbation had a modelled intended gene (fit with "
                             "intended_targets={name: [genes]} or uns['intended_targets'])")
        d, gen = len(self.genes_), self.genetic_
        u = torch.zeros(d)
        idx = list(genes)
        zero = self._activity_origin()
        *_, b = calibration
        logits = torch.full((d,), float(b), dtype=torch.float64)
        if self._genetic_head() is not None:  # what else it moves directly
            e = torch.as_tensor(self._head_output("genetic", self._genetic_features(idx))[0])
            logits = _calibrated_logits([e], gen["head_calibration"])
            u = e.float()
        hit = min(max(gen["hit_rate"], 1e-6), 1 - 1e-6)
        u[idx] = (torch.full((len(idx),), gen["constant"]) if gen["rule"] == "constant"
                  else gen["toward_zero"] * zero[idx]).float()
        logits[idx] = math.log(hit / (1 - hit))
        return logits, u * (doses > 0).float()

    def _activity_origin(self) -> torch.Tensor:
        """Zero of the data in model coordinates, −μ₀/s₀: activity interventions scale a
        variable's output around it (``core.drift.activity_inputs``)."""
        return -self.mu0_ / self.s0_

    def _minibatch(self, z: Contexts, pert, g, dev):
        """One step's data: the control KDS (``control_cells`` cells), σ² [1, d], and
        ``batch_contexts`` random perturbed contexts (indices on ``dev``) with their cells
        [B, n, d]."""
        cfg, drift = self.config, self.drift
        x0 = z.sample(torch.tensor([z.control]), cfg.control_cells, generator=g).to(dev)
        s2 = torch.exp(2 * drift.log_sigma)[None]
        k_ctrl = kds(x0, drift(x0), s2, bandwidth=self.bandwidth_,
                     estimator=cfg.estimator).mean()
        idx = pert[torch.randperm(len(pert), generator=g)[:cfg.batch_contexts]]
        x = z.sample(idx, cfg.cells_per_context, generator=g).to(dev)
        return k_ctrl, s2, idx.to(dev), x

    def _refit(self, z: Contexts, pert, pidx, g, progress, dev, *,
               frozen: tuple[str, ...] = ()) -> None:
        """Refit stage (variant A), like the refit of a relaxed lasso: targets frozen at
        m = 1[π > 0.5], no target penalty, the drift and the Hill parameters (a, K, n)
        re-estimated by the KDS. The linear model drops its L1 too (it shrinks the weights, so
        downstream effects come out too small and spurious targets stand in for them); the MLP
        model keeps its group lasso (without it, edge strength spreads over all pairs);
        ``refit_graph_l1`` keeps it for the linear model too (the ablation ``gim-refit-l1``).

        With ``calibrated_targets``, π is then set to sigmoid(w |π ⊙ a| + b), the logistic fit
        of π on the refitted expected amplitude (spurious targets keep a saturated π but lose
        their amplitude), and the refit runs ``refit_steps // 2`` more steps on those targets.

        A linear refit without L1 lets Adam random-walk every weight that has no signal (a
        step of ~lr whatever the gradient's size); with d² of them W can turn unstable faster
        than the penalty's refreshes follow (d ≳ 500). When two refreshes in a row find
        max Re eig(W) > 0 and not falling, the refit starts again from the stage-1 state
        (same minibatches), now keeping stage 1's edge L1 on the edges below
        ``refit_support`` (``refit_on_support_`` = True). ``frozen``: GIM parameters kept
        as they are (the re-selection's second refit: ``DOSE_RESPONSE``).
        """
        cfg = self.config
        fallback = self.causal == "linear" and cfg.refit_support > 0 and not cfg.refit_graph_l1
        start = (copy.deepcopy(self.drift.state_dict()), copy.deepcopy(self.net.state_dict()),
                 g.get_state()) if fallback else None
        self.refit_on_support_ = False
        try:
            self._refit_rounds(z, pert, pidx, g, progress, dev, None, watch=fallback,
                               frozen=frozen)
        except _RefitUnstable:  # redo it from stage 1, freeing only the stage-1 support
            self.drift.load_state_dict(start[0])
            self.net.load_state_dict(start[1])
            g.set_state(start[2])
            self.refit_on_support_ = True
            self._refit_rounds(z, pert, pidx, g, progress, dev,
                               _outside_support(self.drift, cfg.refit_support), watch=False,
                               frozen=frozen)

    def _refit_rounds(self, z: Contexts, pert, pidx, g, progress, dev, outside, *,
                      watch: bool, frozen: tuple[str, ...] = ()) -> None:
        """The refit's rounds; ``outside`` [d, d]: edges that keep stage 1's L1 (None: all
        free). ``watch``: raise ``_RefitUnstable`` when two refreshes of the stability penalty
        in a row find max Re eig(W) > 0, the second no lower (the penalty has lost hold of W;
        on Papalexi 2021, d = 162, the free refit's eigenvalue spikes to +0.31 at the first
        refresh of a round and falls back below 0 within three)."""
        cfg, drift, net, h = self.config, self.drift, self.net, self.bandwidth_
        B = min(cfg.batch_contexts, len(pert))
        keep_l1 = self._refit_keeps_l1
        lambda_graph = cfg.lambda_graph if keep_l1 else 0.0
        stability = _StabilityPenalty(z.n_genes, cfg.stability_margin)
        last = {"lam": -math.inf}  # max Re eig(W) at the last refresh
        masks = {}
        origin = self._activity_origin().to(dev)
        moments = self.causal == "linear" and cfg.moment_weight > 0
        means = z.means().to(dev) if moments else None

        def loss_fn(step: int) -> dict[str, torch.Tensor]:
            k_ctrl, s2, idx, x = self._minibatch(z, pert, g, dev)
            _, u, kappa = net(pidx[idx], z.doses.to(dev)[idx])
            iv = Interventions(masks["M"][pidx[idx]], u, activity=kappa)
            f = intervened_drift(drift, x, iv, origin)
            k_pert = kds(x, f, s2.expand(B, -1), bandwidth=h, estimator=cfg.estimator).mean()
            terms = {"kds_control": k_ctrl, "kds_perturbed": k_pert,
                     "sparsity": drift.sparsity()}
            loss = cfg.control_weight * k_ctrl + k_pert + lambda_graph * terms["sparsity"]
            if outside is not None and not keep_l1:  # stage 1's edge L1, off the support
                terms["sparsity_outside"] = (drift.w_off * outside).abs().sum() / drift.d
                loss = loss + cfg.lambda_graph * terms["sparsity_outside"]
            if moments:  # the same mean-matching term as stage 1, on the frozen targets
                terms["moments"] = _moment_term(drift, masks["M"][pidx[idx]] * u, means,
                                                z.control, idx)
                loss = loss + cfg.moment_weight * terms["moments"]
            if self.causal == "linear" and cfg.stability_weight > 0:
                terms["stability"] = stability(drift) + _intervened_stability(
                    drift, iv, cfg.stability_margin)
                loss = loss + cfg.stability_weight * terms["stability"]
                if watch and stability.refreshed:
                    lam, prev = stability.leading.value, last["lam"]
                    last["lam"] = lam
                    if prev > 0 and lam >= prev:  # unstable, and not recovering
                        raise _RefitUnstable
            return {"loss": loss, **terms}

        groups = [{"params": list(drift.parameters()), "lr": cfg.lr},  # targets stay frozen
                  {"params": self._net_params(("logits", *frozen)), "lr": cfg.lr_gim}]
        rounds = [cfg.refit_steps] + ([max(1, cfg.refit_steps // 2)]
                                      if cfg.calibrated_targets else [])
        for r, steps in enumerate(rounds):
            with torch.no_grad():
                if r == 1:
                    pi = torch.sigmoid(net.logits)
                    effects = self._expected_effects(pi, net.raw(torch.arange(len(pi))))
                    x = torch.stack([e.abs().flatten() for e in effects], -1).cpu()
                    calibration = _fit_logistic(x, pi.flatten().cpu())
                    net.logits.copy_(_calibrated_logits(effects, calibration))
                masks["M"] = (torch.sigmoid(net.logits) > 0.5).float()
            self.refit_history_ = train(
                groups, loss_fn, steps=steps, lr=cfg.lr, log_every=cfg.log_every,
                progress=progress, description=f"refitting GIM ({self.causal}, round {r + 1})")

    def _fit_target_evidence(self, z: Contexts, pert, pidx, Fz, doses) -> None:
        """R [P, d] (``target_evidence_``): for each seen perturbation, at its top-dose context,
        the KDS drop from adding a gene it did not select (π ≤ 0.5) as a target with its best
        constant shift (``core.kds_shift_gain``, a score test); 0 for the selected genes. It
        orders the genes π leaves at ≈ 0. Every cell of the context counts: they are split
        into disjoint blocks of ≤ ``evidence_cells`` and the test pooled over the blocks (cost
        linear in the cells; a single 512-cell subsample let the ranking of weak knockouts'
        genes change with the subsample's seed on Papalexi 2021). A cell that appears more
        than once (a bootstrap resample) counts once (``_evidence_blocks``)."""
        n_cells = self.config.evidence_cells
        if n_cells == 0:
            self.target_evidence_ = None
            return
        g = torch.Generator().manual_seed(self.seed)  # not the training generator
        origin = self._activity_origin()
        estimator = self.config.estimator if self.config.estimator in ("u", "v") else "u"
        top = _top_dose_contexts(pert, pidx, doses)
        R = torch.zeros(len(self.seen_), z.n_genes, dtype=torch.float64)
        drift = copy.deepcopy(self.drift).double()  # float64: C_j is a difference of sums
        latent = isinstance(self.net, LatentInterventions)
        with torch.no_grad():
            for p, k in top.items():
                x = _evidence_blocks(z.cells(k), n_cells, g)
                blocks = len(x)
                logits, u, kappa = self.net(pidx[[k]] if latent else Fz[[k]], doses[[k]])
                m = (torch.sigmoid(logits) > 0.5).double().expand(blocks, -1)
                iv = Interventions(m, u.double().expand(blocks, -1),
                                   activity=None if kappa is None
                                   else kappa.double().expand(blocks, -1))
                f = intervened_drift(drift, x, iv, origin.double())
                s2 = torch.exp(2 * drift.log_sigma)[None].expand(blocks, -1)
                gain, _ = kds_shift_gain(x, f, s2, bandwidth=self.bandwidth_,
                                         estimator=estimator, pooled=True)
                R[p] = torch.where(m[0] > 0, 0.0, gain[0])
        self.target_evidence_ = R

    def target_evidence(self, perturbations=None):
        """KDS evidence for adding each gene as a further target of a *training* perturbation
        (perturbation × gene DataFrame; 0 for the genes it already targets): the drop of its
        top-dose context's KDS with the best constant shift on that gene alone."""
        import pandas as pd

        self._check_fitted()
        if getattr(self, "target_evidence_", None) is None:
            raise ValueError("this model has no target evidence (fitted with evidence_cells=0 "
                             "or saved by an older version): refit it with evidence_cells > 0")
        names = list(self.seen_) if perturbations is None else list(perturbations)
        unseen = [p for p in names if p not in self.seen_]
        if unseen:
            raise ValueError(f"target evidence exists for training perturbations only; "
                             f"{unseen[0]!r} was not in training")
        rows = self.target_evidence_[[self.seen_.index(p) for p in names]]
        return pd.DataFrame(rows.numpy(), index=names, columns=list(self.genes_))

    def target_scores(self, perturbations=None, *, smiles=None, features=None):
        """Ranking score: π for the genes a training perturbation targets (π > 0.5); for the
        others 0.5 · R / max R, its ``target_evidence`` (π orders them by noise), so every
        target ranks first and the rest by evidence. New perturbations: π."""
        scores = self.target_probabilities(perturbations, smiles=smiles, features=features)
        R = getattr(self, "target_evidence_", None)
        if R is None or smiles is not None:
            return scores
        top = float(R.max()) or 1.0
        for name in scores.index:
            if name in self.seen_:
                ev = 0.5 * R[self.seen_.index(name)].numpy() / top
                row = scores.loc[name].to_numpy()
                scores.loc[name] = np.where(row > 0.5, row, ev)
        return scores

    @staticmethod
    def _expected_effects(pi: torch.Tensor, raw: dict) -> list[torch.Tensor]:
        """[π ⊙ a] or [π ⊙ a, π ⊙ r]: the expected shift amplitude and activity parameter."""
        return [pi * raw[k] for k in ("amplitude", "activity") if k in raw]

    @property
    def _head_keys(self) -> tuple[str, ...]:
        """Latent blocks regressed on features: "effect" = π ⊙ a, "activity_effect" = π ⊙ r."""
        act = ("activity_effect",) if self.config.activity else ()
        return ("effect", *act, "log_ec50", "hill_raw")

    def _fit_heads(self, Fz: torch.Tensor, pidx: torch.Tensor) -> None:
        """Variant A, step 2: heads (ridge or RBF kernel ridge, ``FitConfig.feature_head``;
        ``models.heads``) from standardised features to the expected amplitude e = π ⊙ a (and
        activity π ⊙ r), log EC50 and Hill (penalties by leave-one-perturbation-out CV); then
        π = sigmoid(w |e| + b), a logistic calibration of the training perturbations' π on
        their effects (``calibration_``: the mechanism a new perturbation's intervention is
        drawn from). The *reported* target probabilities of new perturbations use the same
        logistic fitted instead on the effects the heads predict for each training
        perturbation held out (``target_calibration_``, ``held_out_predictions``: what an
        unseen perturbation gets; with ``calibration_`` unseen drugs got π 0.40 on average
        where 10 % of genes are targets, ECE 0.33 on paper-synthetic). Like any post-hoc
        calibration it changes the probabilities, not the predictions. (Logits and raw
        amplitudes are poor regression targets: logits saturate and a is unconstrained
        wherever π ≈ 0.)"""
        rows = [int(torch.nonzero(pidx == p)[0]) for p in range(len(self.seen_))]
        X = Fz[rows].double().numpy()
        with torch.no_grad():
            raw = self.net.raw(torch.arange(len(self.seen_)))
        pi = torch.sigmoid(raw["logits"])
        effects = self._expected_effects(pi, raw)
        raw["effect"] = effects[0]
        if self.config.activity:
            raw["activity_effect"] = effects[1]
        self.heads_ = {k: select_head(X, raw[k].double().numpy(), self.seen_,
                                      self.config.feature_head)
                       for k in self._head_keys}
        self.calibration_ = _fit_logistic(
            torch.stack([e.abs().flatten() for e in effects], -1), pi.flatten())
        held_out = [torch.as_tensor(held_out_predictions(self.heads_[k], X,
                                                         raw[k].double().numpy(), self.seen_))
                    for k in self._head_keys[:len(effects)]]
        self.target_calibration_ = _fit_logistic(
            torch.stack([e.abs().flatten() for e in held_out], -1), pi.flatten())

    # ---------------------------------------------------------------- outputs
    def diagnostics(self) -> dict:
        """Fit diagnostics: wall time, last loss terms, largest real eigenvalue of W (linear)."""
        out = {"fit_seconds": self.history_.seconds if hasattr(self, "history_") else None}
        if hasattr(self, "history_"):
            out.update({k: v[-1] for k, v in self.history_.terms.items()})
        if self.causal == "linear":
            out["max_real_eigenvalue"] = max_real_eigenvalue(self.drift.W)
            out["stability_scale"] = getattr(self, "stability_scale_", 1.0)
            out["refit_on_support"] = float(getattr(self, "refit_on_support_", False))
        return out

    def _interventions(self, F: torch.Tensor, doses: torch.Tensor, perturbations,
                       genetic=None, calibration=None):
        """π, u and κ (None without activity) [P, d]: seen perturbations use their fitted
        latent interventions (variant A); new genetic perturbations (``genetic``: modelled
        intended-gene indices per perturbation, without features) an intervention on those
        genes of the learned size; other new ones the feature heads. ``calibration``: the
        logistic from |effect| to π of new perturbations (default ``calibration_``)."""
        Fz = (F - self.f_mean_) / self.f_sd_
        if self.config.variant == "joint":
            logits, u, kappa = self.net(Fz, doses)
            return torch.sigmoid(logits.double()), u, kappa
        X = Fz.double().numpy()
        raw = {k: torch.as_tensor(self._head_output(k, X), dtype=torch.float32)
               for k in self._head_keys}
        raw["amplitude"] = raw.pop("effect")
        if self.config.activity:
            raw["activity"] = raw.pop("activity_effect")
        calibration = self.calibration_ if calibration is None else calibration
        raw["logits"] = _calibrated_logits(self._expected_effects(1.0, raw), calibration)
        seen = [i for i, p in enumerate(perturbations) if p in self.seen_]
        if seen:
            own = self.net.raw(torch.tensor([self.seen_.index(perturbations[i]) for i in seen]))
            for k in self.net.keys:
                raw[k][seen] = own[k]
        # π in float64: calibrated logits reach 20–40, where a float32 sigmoid rounds to
        # exactly 1 and ties every confident target (the ranking lives in the logits)
        logits, u = raw["logits"].double(), hill_shift(raw, doses)
        kappa = hill_activity(raw, doses)
        for i, p in enumerate(perturbations):
            if p not in self.seen_ and genetic and genetic[i]:
                logits[i], u[i] = self._genetic_interventions(genetic[i], doses[i],
                                                              calibration)
                if kappa is not None:
                    kappa[i] = 0.0
        return torch.sigmoid(logits), u, kappa

    def _predict(self, F, doses, n_cells, mode, generator, *, perturbations,
                 genetic=None) -> torch.Tensor:
        return self._predict_composed(F, doses, [[i] for i in range(len(F))], n_cells, mode,
                                      generator, perturbations=perturbations, genetic=genetic)

    def _predict_composed(self, F, doses, groups, n_cells, mode, generator, *, perturbations,
                          genetic=None) -> torch.Tensor:
        """Cells [P, n, d] of P perturbations, each the combination of the parts ``groups[i]``
        (rows of F): masks m_q per part (MAP 1[π > 0.5], the mean π, or Bernoulli samples per
        group of cells), then one intervention per combination — shifts add, Σ_q m_q ⊙ u_q,
        activity factors multiply, exp(Σ_q m_q ⊙ κ_q) — sampled from the intervened model
        (``FitConfig.sampler``: by default a linear model moves resampled control cells)."""
        pi, u, kappa = self._interventions(F, doses, perturbations, genetic)
        Q, d = u.shape
        if mode in ("map", "mean"):  # m = 1[π > 0.5], or the expected m = π
            G, per = 1, n_cells
            m = ((pi > 0.5).double() if mode == "map" else pi)[:, None]
        else:  # a mixture: fresh masks m ~ B(π) for each group of cells
            G = min(n_cells, 10)
            per = -(-n_cells // G)
            m = torch.bernoulli(pi[:, None].expand(Q, G, d), generator=generator)
        m = m.to(self.drift.b.dtype)
        P = len(groups)
        shift = torch.stack([(m[g] * u[g][:, None]).sum(0) for g in groups]).reshape(P * G, d)
        alpha = None if kappa is None else torch.exp(torch.stack(
            [(m[g] * kappa[g][:, None]).sum(0) for g in groups])).reshape(P * G, d)
        log_sigma = self.drift.log_sigma.detach().expand(P * G, -1)
        if self.causal == "linear" and self.config.sampler == "control":
            x0 = self.control_cells_
            idx = torch.randint(len(x0), (P * G, per), generator=generator)
            z = transport_cells(self.drift, shift, log_sigma, (x0[idx] - self.mu0_) / self.s0_,
                                activity=alpha, origin=self._activity_origin())
        else:
            z = sample_stationary(self.drift, shift, log_sigma, per, activity=alpha,
                                  origin=self._activity_origin(), generator=generator)
        z = z.reshape(P, G * per, d)[:, :n_cells].float()
        return z * self.s0_ + self.mu0_

    def _target_scores(self, F, perturbations, genetic=None) -> torch.Tensor:
        """π as reported: new perturbations' from ``target_calibration_`` (``_fit_heads``)."""
        return self._interventions(F, torch.ones(len(F)), perturbations, genetic,
                                   getattr(self, "target_calibration_", None))[0]

    def _compose_scores(self, S, groups) -> torch.Tensor:
        """π of a combination: the probability that any part hits the gene, 1 − Π(1 − π_q)."""
        return torch.stack([1 - (1 - S[g]).prod(0) for g in groups])

    def effects(self, perturbations=None, doses=1.0, *, smiles=None, features=None,
                kind: str = "shift"):
        """Expected intervention per (perturbation, dose) as a DataFrame perturbation × gene
        (``dose`` column first); rows by name or, with ``smiles=``, by SMILES string.

        ``kind="shift"``: E[m ⊙ u] = π ⊙ u, in standardised units of the causal model.
        ``kind="activity"``: E[m ⊙ κ] = π ⊙ κ, the log factor on each gene's outgoing edges
        (< 0: inhibited; a model fitted with ``activity=True``). The κ of a gene without
        outgoing edges changes nothing, so it is not identified: read it with ``graph()``.
        """
        import pandas as pd

        if kind not in ("shift", "activity"):
            raise ValueError(f"kind must be 'shift' or 'activity', got {kind!r}")
        self._check_fitted()
        if kind == "activity" and not self.config.activity:
            raise ValueError("this model has no activity interventions: fit GIM(activity=True) "
                             "or use kind='shift'")
        if smiles is None:
            perturbations = self._default_perturbations(perturbations)
        req = self._inputs(perturbations, smiles, features)
        doses = broadcast_doses(doses, len(req.labels))
        part_doses = req.part_doses(doses)
        with torch.no_grad():
            pi, u, kappa = self._interventions(req.F, part_doses, req.parts, req.genetic)
        effect = pi * (u if kind == "shift" else kappa)  # parts' expected effects add
        effect = torch.stack([effect[g].sum(0) for g in req.groups])
        df = pd.DataFrame(effect.numpy(), index=req.labels, columns=list(self.genes_))
        df.insert(0, "dose", doses)
        return df

    def _head_output(self, key: str, X: np.ndarray) -> np.ndarray:
        """Head ``key`` at standardised features X: its mean, or inside ``head_draws`` a draw
        mean + √v(x̃) z from its posterior (z ~ N(0, 1) per output, one generator per
        block of draws)."""
        head = self.heads_[key]
        mean = head(X)
        rng = getattr(self, "_head_rng", None)
        if rng is None:
            return mean
        v = head.variance(X)
        if v is None:  # a head from a checkpoint that predates variances
            return mean
        return mean + np.sqrt(v)[:, None] * rng.standard_normal(mean.shape)

    @contextlib.contextmanager
    def head_draws(self, seed: int):
        """Within the block, new perturbations' interventions come from one draw of each
        feature head's posterior (mean + √v(x̃) z, ``models.heads``) instead of its mean;
        ``seed`` fixes z, so the same features give the same draw. Seen perturbations keep
        their own fitted interventions (v = 0 there anyway). ``cp.design`` uses this so that
        members disagree where the heads extrapolate, not only where their fits differ."""
        if self.config.variant != "latent":
            raise ValueError("head_draws needs variant='latent' (feature heads)")
        self._head_rng = np.random.default_rng(seed)
        try:
            yield self
        finally:
            self._head_rng = None

    def head_uncertainty(self, perturbations=None, *, smiles=None, features=None):
        """How far each perturbation's predicted intervention rests on the feature heads'
        extrapolation: per perturbation, ``effect_sd`` = √v(x̃) of the expected-effect head
        (``models.heads``: the sd of the head's mean, model units, ≈ 0 next to a training
        perturbation, growing away from them), ``head`` (its kind) and ``seen`` (a training
        perturbation: its own fitted intervention, ``effect_sd`` 0). A genetic perturbation
        never seen: the sd of the genetic head (its other direct effects, from its gene's
        co-expression; NaN when that head is not in use). NaN for heads from older
        checkpoints."""
        import pandas as pd

        self._check_fitted()
        if self.config.variant != "latent":
            raise ValueError("head_uncertainty needs variant='latent' (feature heads)")
        if smiles is None:
            perturbations = self._default_perturbations(perturbations)
        req = self._inputs(perturbations, smiles, features)
        sd, seen = self._head_sd(req)
        return pd.DataFrame({"effect_sd": sd, "head": self.heads_["effect"].kind,
                             "seen": seen}, index=req.labels)

    def _head_sd(self, req) -> tuple[list[float], list[bool]]:
        """``effect_sd`` and ``seen`` per label of a request (``head_uncertainty``); parts of
        a combination add in quadrature."""
        Fz = ((req.F - self.f_mean_) / self.f_sd_).double().numpy()
        v = self.heads_["effect"].variance(Fz)
        v = np.full(len(Fz), np.nan) if v is None else v
        seen = np.array([p in self.seen_ for p in req.parts])
        sd = np.where(seen, 0.0, np.sqrt(v))
        if req.genetic:  # the genetic head's sd where it is in use (its other effects), else NaN
            head = self._genetic_head()
            for i, genes in enumerate(req.genetic):
                if genes and not seen[i]:
                    sd[i] = np.nan if head is None else float(
                        np.sqrt(head.variance(self._genetic_features(genes))[0]))
        return ([float(np.sqrt(np.sum(np.square(sd[g])))) for g in req.groups],
                [bool(seen[g].all()) for g in req.groups])

    def _prediction_obs(self, req) -> dict:
        if self.config.variant != "latent":
            return {}
        return {"effect_sd": self._head_sd(req)[0]}

    def _graph(self) -> torch.Tensor:
        return graph_in_data_units(self.drift, self.s0_)

    # ---------------------------------------------------------------- persistence
    def _state(self):
        tensors = {f"drift.{k}": v for k, v in self.drift.state_dict().items()}
        tensors |= {f"net.{k}": v for k, v in self.net.state_dict().items()}
        tensors |= {"mu0": self.mu0_, "s0": self.s0_, "f_mean": self.f_mean_,
                    "f_sd": self.f_sd_}
        if getattr(self, "target_evidence_", None) is not None:
            tensors["target_evidence"] = self.target_evidence_
        extra = {"bandwidth": self.bandwidth_, "dose_scale": self.dose_scale_,
                 "history": self.history_.to_dict(), "seen": self.seen_, "heads": {},
                 "calibration": list(getattr(self, "calibration_", ())),
                 "target_calibration": list(getattr(self, "target_calibration_", None) or ()),
                 "genetic": getattr(self, "genetic_", None),
                 "stability_scale": getattr(self, "stability_scale_", 1.0),
                 "refit_on_support": getattr(self, "refit_on_support_", False)}
        for k, r in getattr(self, "heads_", {}).items():
            tensors |= r.to_tensors(f"head.{k}")
            extra["heads"][k] = r.meta()
        return tensors, extra

    def _load_state(self, tensors, extra) -> None:
        d, p = len(self.genes_), tensors["f_mean"].shape[0]
        self._build(d, p, extra["dose_scale"], extra["seen"])
        self.drift.load_state_dict({k[6:]: v for k, v in tensors.items()
                                    if k.startswith("drift.")})
        self.net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
        self.mu0_, self.s0_ = tensors["mu0"], tensors["s0"]
        self.f_mean_, self.f_sd_ = tensors["f_mean"], tensors["f_sd"]
        self.bandwidth_ = extra["bandwidth"]
        self.target_evidence_ = tensors.get("target_evidence")  # None: older checkpoints
        if "heads" in extra:
            self.heads_ = {k: head_from_checkpoint(tensors, f"head.{k}", m)
                           for k, m in extra["heads"].items()}
        else:  # older checkpoints: ridge heads without their training inputs (no variance)
            self.heads_ = {k: LinearHead(RidgeFit.from_tensors(tensors, f"head.{k}", a),
                                         None, None)
                           for k, a in extra["alphas"].items()}
        self.calibration_ = tuple(extra["calibration"])
        # older checkpoints: reported π of new perturbations from calibration_, as fitted then
        self.target_calibration_ = tuple(extra.get("target_calibration") or ()) or None
        self.genetic_ = extra.get("genetic")  # None: older checkpoints
        self.history_ = History.from_dict(extra["history"])  # so a loaded model saves again
        self.stability_scale_ = extra.get("stability_scale", 1.0)
        self.refit_on_support_ = extra.get("refit_on_support", False)
        self.drift.eval()
        self.net.eval()
