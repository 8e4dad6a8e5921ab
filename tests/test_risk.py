"""Risk scores at a review budget: what the top of the ranking catches, and calibration."""

from __future__ import annotations

import numpy as np
import pytest

from metaecom.cases.risk import calibration_table, caught_at_budget


def test_a_perfect_ranking_catches_everything_it_has_room_for():
    labels = np.array([0] * 90 + [1] * 10)
    perfect = labels + 0.01 * np.arange(100) / 100
    assert caught_at_budget(perfect, labels, 0.10) == 1.0
    assert caught_at_budget(perfect, labels, 0.05) == 0.5  # 5 reviews for 10 bad orders
    assert caught_at_budget(-perfect, labels, 0.10) == 0.0


def test_a_random_ranking_catches_about_its_budget_and_ties_are_pessimistic():
    rng = np.random.default_rng(0)
    labels = (rng.random(20_000) < 0.1).astype(int)
    assert caught_at_budget(rng.random(20_000), labels, 0.2) == pytest.approx(0.2, abs=0.03)
    assert caught_at_budget(np.zeros(20_000), labels, 0.2) == 0.0  # all tied: no luck
    assert np.isnan(caught_at_budget([0.3, 0.2], [0, 0], 0.5))
    with pytest.raises(ValueError, match="budget must be in"):
        caught_at_budget([0.1], [1], 0.0)
    with pytest.raises(ValueError, match="labels must be 0"):
        caught_at_budget([0.1, 0.2], [1, 2], 0.5)


def test_calibration_table_matches_a_calibrated_score():
    rng = np.random.default_rng(1)
    scores = rng.random(50_000)
    labels = (rng.random(50_000) < scores).astype(int)  # calibrated by construction
    table = calibration_table(scores, labels, bins=5)
    assert table["orders"].sum() == 50_000
    np.testing.assert_allclose(table["observed rate"], table["mean score"], atol=0.02)
    overconfident = calibration_table(np.clip(2 * scores - 0.5, 0, 1), labels, bins=5)
    assert abs(overconfident["observed rate"].iloc[0] - overconfident["mean score"].iloc[0]) > 0.05
