"""Hill dose response H(c; K, n) = cⁿ / (Kⁿ + cⁿ): monotone, H(0) = 0, saturating at 1."""

from __future__ import annotations

import torch


def hill(dose: torch.Tensor, ec50: torch.Tensor, coeff: torch.Tensor) -> torch.Tensor:
    """H(c) for doses c ≥ 0, EC50 K > 0 and Hill coefficients n > 0 (broadcasting).

    Written as sigmoid(n (log c − log K)), which is exact and stable for c → 0 (H → 0).
    """
    logc = torch.log(dose.clamp_min(1e-12))
    h = torch.sigmoid(coeff * (logc - torch.log(ec50)))
    return torch.where(dose > 0, h, torch.zeros_like(h))
