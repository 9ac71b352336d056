"""Splits of a drug screen: a held-out dose (partial OOD), held-out perturbations (full OOD)
and held-out cells of the training contexts (ID)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def dose_and_drug_split(
    obs: pd.DataFrame,
    *,
    perturbation_key: str = "perturbation",
    dose_key: str = "dose",
    control: str = "control",
    held_out_dose: float | None = None,
    ood_fraction: float = 0.2,
    id_fraction: float = 0.0,
    seed: int = 0,
) -> pd.Series:
    """Label each cell ``"train"``, ``"id"``, ``"partial_ood"`` or ``"full_ood"``.

    - ``full_ood``: every cell of round(ood_fraction · P) perturbations (at least 1 when
      ood_fraction > 0, at most P − 1), drawn without replacement with
      ``numpy.random.default_rng(seed)`` from the P sorted perturbation names;
    - ``partial_ood``: the remaining perturbations at ``held_out_dose`` (default: the highest
      dose, so the partial-OOD test asks for extrapolation to the strongest treatment);
    - ``id``: round(id_fraction · n) random cells of every remaining perturbed context
      (perturbation, dose) of n cells, leaving at least 2 to train on (seeded as above);
    - ``train``: everything else, control cells included.

    Args:
        obs: cell annotations with ``perturbation_key`` and ``dose_key`` columns.
        held_out_dose: a dose present in ``obs[dose_key]``, in its units.
        ood_fraction: fraction of perturbations held out entirely, in [0, 1).
        id_fraction: fraction of the cells of each training context held out, in [0, 1).

    Returns:
        categorical Series indexed like ``obs``.
    """
    for key in (perturbation_key, dose_key):
        if key not in obs:
            raise ValueError(f"obs key {key!r} not found; available columns: {list(obs.columns)}")
    for name, frac in (("ood_fraction", ood_fraction), ("id_fraction", id_fraction)):
        if not 0 <= frac < 1:
            raise ValueError(f"{name} must be in [0, 1), got {frac}")
    pert = obs[perturbation_key].astype(str).to_numpy()
    dose = obs[dose_key].to_numpy(dtype=np.float64)
    treated = pert != control
    names = np.unique(pert[treated])
    doses = np.unique(dose[treated])
    if len(names) < 2 or len(doses) < 2:
        raise ValueError(f"OOD splits need ≥ 2 perturbations and ≥ 2 doses, got {len(names)} "
                         f"and {len(doses)}: use a larger data set")
    if held_out_dose is None:
        held_out_dose = float(doses.max())
    elif not np.isclose(doses, held_out_dose).any():
        raise ValueError(f"held_out_dose {held_out_dose:g} is not a dose of the data: pass one "
                         f"of {doses.tolist()}")
    n_ood = min(max(round(ood_fraction * len(names)), int(ood_fraction > 0)), len(names) - 1)
    rng = np.random.default_rng(seed)
    ood = rng.choice(names, size=n_ood, replace=False)
    split = np.full(len(obs), "train", dtype=object)
    split[treated & np.isclose(dose, held_out_dose)] = "partial_ood"
    split[np.isin(pert, ood)] = "full_ood"
    if id_fraction > 0:
        train = treated & (split == "train")
        rows = np.flatnonzero(train)
        groups = pd.Series(rows).groupby([pert[rows], dose[rows]], sort=True).indices
        for idx in groups.values():  # positions in rows, one array per (perturbation, dose)
            n_id = min(round(id_fraction * len(idx)), len(idx) - 2)
            if n_id > 0:
                split[rng.choice(rows[idx], size=n_id, replace=False)] = "id"
    categories = ["train", "id", "partial_ood", "full_ood"]
    return pd.Series(pd.Categorical(split, categories=categories), index=obs.index, name="split")
