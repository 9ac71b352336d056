"""Calibration metrics: ECE by hand, a calibrated sampler, and temperature scaling."""

import numpy as np
import pytest

from causalpert.metrics import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    reliability_curve,
)


def test_ece_by_hand():
    # bin [0.2, 0.3): p = 0.2 four times, one true → |0.2 − 0.25| = 0.05, weight 4/6;
    # bin [0.9, 1.0]: p = 0.9, 1.0, both true → |0.95 − 1| = 0.05, weight 2/6
    p = [0.2, 0.2, 0.2, 0.2, 0.9, 1.0]
    y = [1, 0, 0, 0, 1, 1]
    assert expected_calibration_error(p, y) == pytest.approx(0.05)
    curve = reliability_curve(p, y)
    assert curve["count"].tolist() == [0, 0, 4, 0, 0, 0, 0, 0, 0, 2]
    assert curve["mean_p"][9] == pytest.approx(0.95)


def test_calibrated_probabilities_have_small_ece_and_temperature_one():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=20_000)
    y = rng.uniform(size=p.size) < p
    assert expected_calibration_error(p, y) < 0.02
    assert fit_temperature(p, y) == pytest.approx(1.0, abs=0.05)


def test_temperature_repairs_overconfident_probabilities():
    """Probabilities sharpened as σ(3 logit q) of calibrated q: T ≈ 3 undoes it."""
    rng = np.random.default_rng(1)
    q = rng.uniform(0.02, 0.98, size=20_000)
    y = rng.uniform(size=q.size) < q
    sharp = apply_temperature(q, 1 / 3)
    T = fit_temperature(sharp, y)
    assert T == pytest.approx(3.0, rel=0.1)
    before = expected_calibration_error(sharp, y)
    after = expected_calibration_error(apply_temperature(sharp, T), y)
    assert before > 0.1 and after < 0.02, (before, after)


def test_bad_inputs_are_one_line_errors():
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        expected_calibration_error([0.5, 1.5], [0, 1])
    with pytest.raises(ValueError, match="temperature must be > 0"):
        apply_temperature([0.5], 0.0)
    with pytest.raises(ValueError, match="shape"):
        expected_calibration_error([0.5, 0.5], [0, 1, 1])
