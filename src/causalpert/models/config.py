"""``FitConfig``: every training knob in one place (each knob has exactly one home)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class FitConfig:
    """Training settings for the causal model (and, later, the GIM).

    Attributes:
        steps: Adam steps.
        lr: Adam learning rate.
        batch_contexts: perturbed contexts per step (the control context is added every step).
        cells_per_context: cells drawn per perturbed context per step.
        control_cells: cells drawn from the control context per step.
        control_weight: w₀, weight of the control KDS relative to the mean over the batch.
        bandwidth: RBF bandwidth h, or ``"median"``: median pairwise distance of control cells.
        estimator: KDS estimator, ``"u"`` (default), ``"v"`` or ``"linear"``.
        lambda_graph: λ_G, weight of the group-lasso sparsity on the graph.
        hidden: hidden units per mechanism (MLP drift).
        activation: MLP drift activation.
        learn_scales: learn per-context log noise-scale changes ℓ on targets.
        warm_start: start shifts at the mean differences and b, σ at the control moments.
        log_every: record the loss history every this many steps.
        lambda_targets: λ_T, weight of the mean target probability Σ_j π_j / d (GIM).
        target_prior: initial target probability of every gene (GIM).
        mask_estimator: how GIM averages over Bernoulli targets: ``"exact"`` (closed-form
            expectation of the KDS, ``core.kds_bernoulli``) or ``"concrete"`` (relaxed
            Bernoulli samples with temperature annealed from ``tau_start`` to ``tau_end``).
        head: GIM effect head, ``"hill"`` (u = a(γ) · H(c; K(γ), n(γ))) or ``"mlp"``
            (u = MLP(γ, c), the ablation).
        gim_hidden: hidden units of the GIM trunk on the features (0: heads linear in γ).
        weight_decay: L2 weight decay of the GIM network (AdamW-style, decoupled).
        stability_margin: keep max Re eig(W) ≤ −margin (linear model) ...
        stability_weight: ... through the penalty weight · relu(max Re eig(W) + margin)².
        standardize: fit in control-standardised coordinates (x − μ₀)/s₀ (GIM).
        lr_gim: learning rate of the GIM network (θ uses ``lr``).
        variant: GIM training scheme: ``"latent"`` (variant A: free Hill-tied interventions per
            training perturbation through the KDS, then the feature heads fitted to them by
            ridge with leave-one-perturbation-out CV) or ``"joint"`` (the feature network
            trained end to end through the KDS).
        moment_weight: weight of the mean-matching term mean_k ‖μ_k(θ, E[s_k]) − x̄_k‖² / d
            with the exact stationary mean μ_k = −W⁻¹(b + π ⊙ u) (linear model only; KDS
            constrains slow modes of the mean only weakly), in stage 1 and in the refit (there
            with the frozen targets m ⊙ u). 10 is the ``gim-moments`` benchmark method.
        lambda_shift: L1 weight on free per-context shifts, mean_k Σ_j |u_kj| / d
            (``fit_causal``; the free-causal baseline).
        refit_steps: steps of the refit stage of variant A (``GIM._refit``): targets frozen
            at m = 1[π > 0.5], drift and Hill parameters re-estimated without the target
            penalty (and without the L1 on a linear graph), as in a relaxed lasso; 0: off.
        reselect_steps: steps of a re-selection stage after the refit (variant A;
            ``GIM._reselect``): stage 1's loss again from the refitted state, with the refit's
            graph penalty (none for a linear model) and the target logits clamped to ±2; then
            the refit runs again on the re-selected targets. It drops targets that stage 1's
            edge L1 made a drug "need" (children of a true target whose edge was shrunk).
            The drugs' EC50 and Hill stay at the first refit's values through both stages.
            Needs variant A with ``refit_steps`` > 0. 0: off (the default; fits took 1.6–1.8×
            as long in the paper-synthetic benchmark).
        refit_support: a linear refit that makes W unstable (two refreshes of the stability
            penalty in a row find max Re eig > 0, the second no lower) starts again from
            stage 1, dropping the L1 only on the edges whose stage-1 |weight| is ≥ this
            (control-sd units); the others keep
            stage 1's edge L1, so they stay near 0 unless the data pull them out
            (``GIM._refit``). Adam moves every weight by ~lr per step whatever the size of
            its gradient, so a refit without L1 random-walks the d² weights that have no
            signal: at d = 500–1,000 W fills with noise weights and turns unstable (max Re
            eig +4 on a random screen). 0.01: an effect of 1 % of a sd per sd, below what
            ~10³ cells per context resolve (a slope's standard error ≈ 1/√n ≈ 0.03). 0: never
            (the edges are then scaled after the fit if W is unstable, ``_ensure_stable``).
        feature_head: how variant A maps features to a new perturbation's intervention:
            ``"ridge"``, ``"rbf"`` (kernel ridge) or ``"cv"`` (each head the one with the lower
            leave-one-perturbation-out error; ``models.heads``). Both give a predictive
            variance (``GIM.head_uncertainty``).
        device: where GIM trains (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``); cells move
            there per minibatch, the fitted model comes back to the CPU.
        evidence_cells: block size for the target evidence after the fit
            (``GIM.target_evidence``): all cells of each training perturbation's top-dose
            context count, in disjoint blocks of ≤ this many (≈ 0.2 s per block at d = 1,000
            and 512 cells); 0 skips it and ``target_scores`` falls back to π.
        refit_graph_l1: keep the graph's L1 in the refit of a *linear* model too (the MLP model
            always keeps it). Off by default: on paper-synthetic it costs id edist 0.11 → 0.36
            and graph AUPRC 0.91 → 0.81; on Sachs it raises graph AUPRC 0.36 → 0.42 (README).
        calibrated_targets: after the refit, π ← sigmoid(w |π ⊙ a| + b) (logistic fit of π
            on the refitted expected amplitude) and ``refit_steps // 2`` more refit steps.
        activity: targets may also change their *activity* (variant A): target j scales its
            outgoing edges by exp(κ_j), κ Hill-tied to the dose like the shift — for drugs
            that inhibit or activate a protein's activity rather than its level.
        noise_calibration: after the fit of a *linear* model, set the noise scales σ so that
            the model's stationary control variances equal the control cells' variances
            (``core.match_stationary_variance``; the drift is unchanged). The KDS pins σ only
            loosely where the kernel bandwidth is large against a gene's sd (hundreds of genes,
            median-heuristic h ≈ √(2d)): on Papalexi 2021 the fitted control sds came out
            1.3× the data's.
        sampler: how a *linear* GIM predicts cells: ``"control"`` moves the training control
            cells by the exact map from the model's control law to the intervened one
            (``core.transport_cells``; a shift moves every cell by the model's Δμ), keeping
            the data's non-Gaussian shape; ``"gaussian"`` samples the model's stationary
            Gaussian. The MLP model samples by Euler–Maruyama either way.
        intended_prior: initial target probability of a perturbation's modelled intended genes
            (genetic perturbations, variant A); they are exempt from the target penalty λ_T,
            so the data can still switch them off (a guide that fails) and add other targets.
        genetic_head: what else a genetic perturbation never seen in training moves directly
            (besides its intended gene): ``"cv"`` predicts the other genes' effects from where
            its gene sits in the control cells' co-expression (an RBF head with prior mean 0,
            fitted on the seen genetic perturbations' fitted effects) when that beats "nothing
            else" in leave-one-perturbation-out CV on the seen ones; ``"off"``: nothing else.
    """

    steps: int = 3000
    lr: float = 0.01
    batch_contexts: int = 16
    cells_per_context: int = 48
    control_cells: int = 256
    control_weight: float = 1.0
    bandwidth: float | str = "median"
    estimator: str = "u"
    lambda_graph: float = 0.02
    hidden: int = 8
    activation: str = "tanh"
    learn_scales: bool = False
    warm_start: bool = True
    log_every: int = 50
    lambda_targets: float = 0.05
    target_prior: float = 0.1
    mask_estimator: str = "concrete"
    tau_start: float = 1.0
    tau_end: float = 0.1
    head: str = "hill"
    gim_hidden: int = 0
    weight_decay: float = 1e-3
    stability_margin: float = 0.05
    stability_weight: float = 10.0
    standardize: bool = True
    lr_gim: float = 0.05
    lambda_shift: float = 0.0
    moment_weight: float = 0.0
    variant: str = "latent"
    refit_steps: int = 1000
    reselect_steps: int = 0
    calibrated_targets: bool = True
    refit_graph_l1: bool = False
    refit_support: float = 0.01
    feature_head: str = "cv"
    evidence_cells: int = 512
    device: str = "cpu"
    activity: bool = False
    intended_prior: float = 0.9
    genetic_head: str = "cv"
    noise_calibration: bool = True
    sampler: str = "control"

    def __post_init__(self):
        if self.estimator not in ("u", "v", "linear"):
            raise ValueError(f"estimator must be 'u', 'v' or 'linear', got {self.estimator!r}")
        if isinstance(self.bandwidth, str) and self.bandwidth != "median":
            raise ValueError(f"bandwidth must be a positive number or 'median', got "
                             f"{self.bandwidth!r}")
        if self.mask_estimator not in ("exact", "concrete"):
            raise ValueError(f"mask_estimator must be 'exact' or 'concrete', got "
                             f"{self.mask_estimator!r}")
        if self.variant not in ("latent", "joint"):
            raise ValueError(f"variant must be 'latent' or 'joint', got {self.variant!r}")
        if self.variant == "latent" and self.head != "hill":
            raise ValueError("variant='latent' uses the Hill head; use variant='joint' for "
                             "head='mlp'")
        if self.activity and (self.variant != "latent" or self.mask_estimator != "concrete"):
            raise ValueError("activity=True needs variant='latent' and mask_estimator="
                             "'concrete'; set activity=False for the other variants")
        if self.head not in ("hill", "mlp"):
            raise ValueError(f"head must be 'hill' or 'mlp', got {self.head!r}")
        if self.evidence_cells < 0 or self.evidence_cells == 1:
            raise ValueError(f"evidence_cells must be 0 (off) or ≥ 2, got {self.evidence_cells}")
        if self.sampler not in ("control", "gaussian"):
            raise ValueError(f"sampler must be 'control' or 'gaussian', got {self.sampler!r}")
        if not 0 < self.intended_prior < 1:
            raise ValueError(f"intended_prior must be in (0, 1), got {self.intended_prior}")
        if not 0 < self.target_prior < 1:
            raise ValueError(f"target_prior must be in (0, 1), got {self.target_prior}")
        if self.genetic_head not in ("cv", "off"):
            raise ValueError(f"genetic_head must be 'cv' or 'off', got {self.genetic_head!r}")
        if self.feature_head not in ("ridge", "rbf", "cv"):
            raise ValueError(f"feature_head must be 'ridge', 'rbf' or 'cv', got "
                             f"{self.feature_head!r}")
        if self.refit_support < 0:
            raise ValueError(f"refit_support must be ≥ 0, got {self.refit_support}")
        if self.reselect_steps < 0:
            raise ValueError(f"reselect_steps must be ≥ 0, got {self.reselect_steps}")
        if self.reselect_steps and (self.variant != "latent" or self.refit_steps == 0):
            raise ValueError("reselect_steps re-selects after the refit: it needs "
                             "variant='latent' and refit_steps > 0 (or set reselect_steps=0)")
        for name in ("steps", "batch_contexts", "cells_per_context", "control_cells"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FitConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown FitConfig keys {sorted(unknown)}")
        return cls(**d)

    def replace(self, **changes) -> FitConfig:
        return FitConfig(**{**self.to_dict(), **changes})
