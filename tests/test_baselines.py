"""The per-unit regression baselines (metaecom.baselines): what each recovers, and when."""

from __future__ import annotations

import numpy as np
import pytest

from metaecom.baselines import (ItemMean, PartialPooling, PerUnitRidge, PooledRidge, UnitBaseline, unit_rows,
                                user_offset)


def linear_units(n_units, rows, slopes, intercepts, noise=0.0, seed=0):
    """Units y = slope_j * x + intercept_j (+ noise), x ~ N(0, 1), one feature."""
    rng = np.random.default_rng(seed)
    units = []
    for j in range(n_units):
        x = rng.normal(size=(rows, 1))
        units.append((x, slopes[j] * x[:, 0] + intercepts[j] + noise * rng.normal(size=rows)))
    return units


def split(unit, k):
    x, y = unit
    return x[:k], y[:k], x[k:], y[k:]


def test_per_unit_ridge_recovers_each_units_line_where_pooling_cannot():
    rng = np.random.default_rng(1)
    slopes, intercepts = rng.choice([-3.0, 3.0], size=40), rng.normal(0, 2, size=40)
    units = linear_units(40, 25, slopes, intercepts)
    train, test = units[:20], units[20:]
    per_unit = PerUnitRidge(alpha=1e-6).fit(train)
    pooled = PooledRidge(alpha=1e-6).fit(train)
    errors = {"per unit": [], "pooled": []}
    for unit in test:
        sx, sy, qx, qy = split(unit, 4)           # four points of a noiseless line
        errors["per unit"].append(np.mean((per_unit.predict(sx, sy, qx) - qy) ** 2))
        errors["pooled"].append(np.mean((pooled.predict(sx, sy, qx) - qy) ** 2))
    assert np.mean(errors["per unit"]) < 1e-6      # the line itself, from 4 points
    assert np.mean(errors["pooled"]) > 5.0         # one line for slopes of -3 and +3 fits neither
    assert per_unit.name == "ridge on the support set" and pooled.name == "pooled ridge"


def test_pooled_ridge_wins_when_units_share_the_relation_and_support_is_tiny():
    units = linear_units(60, 20, np.full(60, 2.0), np.full(60, 1.0), noise=0.5, seed=2)
    per_unit, pooled = PerUnitRidge(alpha=1.0), PooledRidge(alpha=1.0).fit(units[:30])
    errors = {"per unit": [], "pooled": []}
    for unit in units[30:]:
        sx, sy, qx, qy = split(unit, 2)
        errors["per unit"].append(np.mean((per_unit.predict(sx, sy, qx) - qy) ** 2))
        errors["pooled"].append(np.mean((pooled.predict(sx, sy, qx) - qy) ** 2))
    assert np.mean(errors["pooled"]) < 0.5 * np.mean(errors["per unit"])
    np.testing.assert_allclose(pooled.model.coef_, [2.0], atol=0.1)


def test_per_unit_ridge_is_the_closed_form_with_an_unpenalised_intercept():
    # the memory-based chapter's inline ridge: (X'X + alpha * diag(1.., 0))^-1 X'y with a column of ones
    rng = np.random.default_rng(3)
    sx, sy, qx = rng.normal(size=(6, 3)), rng.normal(size=6), rng.normal(size=(5, 3))
    design = np.hstack([sx, np.ones((6, 1))])
    w = np.linalg.solve(design.T @ design + 2.5 * np.diag([1.0, 1.0, 1.0, 0.0]), design.T @ sy)
    expected = np.hstack([qx, np.ones((5, 1))]) @ w
    np.testing.assert_allclose(PerUnitRidge(alpha=2.5).predict(sx, sy, qx), expected, rtol=1e-8)
    # one support row: the intercept takes its value, the slope is shrunk to nothing
    np.testing.assert_allclose(PerUnitRidge().predict(sx[:1], sy[:1], qx), np.full(5, sy[0]))


def test_per_unit_ridge_chooses_alpha_on_validation_tasks():
    rng = np.random.default_rng(4)
    noiseless = [split(u, 5) for u in linear_units(10, 15, rng.normal(0, 3, 10), rng.normal(0, 1, 10), seed=4)]
    chosen = PerUnitRidge(alphas=[1e-4, 1.0, 1e4]).fit(noiseless)
    assert chosen.alpha == 1e-4 and list(chosen.validation_["alpha"]) == [1e-4, 1.0, 1e4]
    assert chosen.validation_["mse"].is_monotonic_increasing
    # pure noise around one common mean: a strong penalty (predict the support mean) is best
    noise = [(rng.normal(size=(3, 4)), rng.normal(size=3), rng.normal(size=(10, 4)), rng.normal(size=10))
             for _ in range(60)]
    assert PerUnitRidge(alphas=[1e-4, 1e4]).fit(noise).alpha == 1e4
    with pytest.raises(ValueError, match="validation tasks"):
        PerUnitRidge(alphas=[1.0]).fit([(np.zeros((3, 1)), np.zeros(3))])


def hierarchical_units(n_units, rows, mu, tau, sigma, seed):
    rng = np.random.default_rng(seed)
    means = rng.normal(mu, tau, size=n_units)
    return means, [(np.zeros((rows, 1)), m + sigma * rng.normal(size=rows)) for m in means]


def test_partial_pooling_estimates_the_variances_and_shrinks_by_the_formula():
    _, train = hierarchical_units(800, 20, mu=3.0, tau=1.0, sigma=2.0, seed=5)
    pooling = PartialPooling().fit(train)
    assert pooling.mean_ == pytest.approx(3.0, abs=0.15)
    assert pooling.within_var_ == pytest.approx(4.0, rel=0.05)
    assert pooling.between_var_ == pytest.approx(1.0, rel=0.2)
    ratio = pooling.within_var_ / pooling.between_var_
    for n in (1, 3, 10):
        assert pooling.shrinkage(n) == pytest.approx(n / (n + ratio), rel=1e-12)
    sy = np.array([7.0, 5.0, 6.0])
    expected = pooling.mean_ + 3 / (3 + ratio) * (6.0 - pooling.mean_)
    np.testing.assert_allclose(pooling.predict(np.zeros((3, 1)), sy, np.zeros((4, 1))), np.full(4, expected))
    assert pooling.shrinkage(0) == 0.0
    np.testing.assert_allclose(pooling.predict(np.zeros((0, 1)), np.zeros(0), np.zeros((2, 1))), pooling.mean_)


def test_partial_pooling_beats_both_extremes_on_hierarchical_data():
    _, train = hierarchical_units(500, 20, mu=3.0, tau=1.0, sigma=2.0, seed=6)
    means, test = hierarchical_units(2000, 3, mu=3.0, tau=1.0, sigma=2.0, seed=7)
    pooling = PartialPooling().fit(train)
    predicted = {"pooled mean": [], "support mean": [], "partial pooling": []}
    for x, y in test:                      # three support rows per new unit; score against its true mean
        predicted["pooled mean"].append(pooling.mean_)
        predicted["support mean"].append(y.mean())
        predicted["partial pooling"].append(pooling.predict(x, y, x[:1])[0])
    error = {name: np.mean((np.array(values) - means) ** 2) for name, values in predicted.items()}
    # theory: tau^2 = 1, sigma^2/n = 4/3, shrunk 1 * (4/3) / (1 + 4/3) = 0.57
    assert error["partial pooling"] < 0.8 * min(error["pooled mean"], error["support mean"])
    assert error["partial pooling"] == pytest.approx(4 / 7, rel=0.15)


def test_partial_pooling_with_identical_units_predicts_the_pooled_mean():
    rng = np.random.default_rng(8)
    units = [(np.zeros((10, 1)), 5.0 + rng.normal(size=10)) for _ in range(200)]
    pooling = PartialPooling().fit(units)
    # the unit means vary no more than noise explains: tau^2 is 0 or tiny, so the support barely counts
    assert pooling.shrinkage(3) < 0.1
    same_means = [(np.zeros((2, 1)), np.array([0.0, 10.0])), (np.zeros((2, 1)), np.array([1.0, 9.0]))]
    floored = PartialPooling().fit(same_means)  # both means are 5: the estimate var - sigma^2/n < 0 is floored
    assert floored.between_var_ == 0.0 and floored.shrinkage(3) == 0.0
    np.testing.assert_array_equal(floored.predict(np.zeros((3, 1)), np.array([100.0] * 3), np.zeros((2, 1))), [5, 5])
    with pytest.raises(ValueError, match="at least 2"):
        PartialPooling().fit(units[:1])
    with pytest.raises(ValueError, match="single row"):
        PartialPooling().fit([(np.zeros((1, 1)), np.ones(1)), (np.zeros((1, 1)), np.zeros(1))])
    with pytest.raises(RuntimeError, match="fit"):
        PartialPooling().predict(np.zeros((1, 1)), np.ones(1), np.zeros((1, 1)))


def test_item_mean_lives_in_baselines_and_the_chapter_import_is_the_same_class():
    from metaecom.cases import recommendation

    assert recommendation.ItemMean is ItemMean
    assert ItemMean().name == "item mean" and ItemMean(user_offset=True).name == "item mean + user offset"
    items, ratings = np.array([10, 11, 10, 11, 10]), np.array([5.0, 1.0, 5.0, 1.0, 5.0])
    rows = ItemMean(prior=1.0, user_offset=True).fit(items, ratings)
    as_units = ItemMean(prior=1.0, user_offset=True).fit([(items[:2], ratings[:2]), (items[2:], ratings[2:])])
    assert rows.means == as_units.means
    prediction = rows.predict([11], [2.0], [10, 99])
    offset = (2.0 - rows.means[11]) / (1 + 1.0)
    np.testing.assert_allclose(prediction, [rows.means[10] + offset, rows.global_mean + offset])
    np.testing.assert_allclose(rows.adapt([11], [2.0]).predict(np.array([10, 99])), prediction)


def test_user_offset_is_the_shrunk_mean_residual():
    # the Amazon section's prior_offset: residual.sum() / (len(residual) + weight)
    prior, ratings = np.array([4.0, 3.5, 4.5]), np.array([5.0, 5.0, 3.0])
    assert user_offset(prior, ratings, 5.0) == pytest.approx((1.0 + 1.5 - 1.5) / 8)
    assert user_offset([], [], 5.0) == 0.0
    with pytest.raises(ValueError, match="weight"):
        user_offset(prior, ratings, -1.0)


def test_the_shared_interface_and_its_errors():
    units = linear_units(3, 6, [1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    for baseline in [PerUnitRidge(), PooledRidge().fit(units), PartialPooling().fit(units)]:
        assert isinstance(baseline, UnitBaseline)
        sx, sy, qx, _ = split(units[0], 3)
        np.testing.assert_array_equal(baseline.adapt(sx, sy).predict(qx), baseline.predict(sx, sy, qx))
        with pytest.raises(ValueError, match="features"):
            baseline.adapt(sx, sy).predict(np.zeros((2, 5)))
        with pytest.raises(ValueError, match="one target per row"):
            baseline.predict(sx, sy[:2], qx)
    with pytest.raises(ValueError, match="at least one support row"):
        PerUnitRidge().predict(np.zeros((0, 1)), np.zeros(0), np.zeros((2, 1)))
    with pytest.raises(RuntimeError, match="fit"):
        PooledRidge().predict(np.zeros((1, 1)), np.zeros(1), np.zeros((1, 1)))
    with pytest.raises(ValueError, match="alpha"):
        PerUnitRidge(alpha=0.0)
    # a task's support and query rows are both training rows of a meta-training unit
    (x, y), = unit_rows([split(units[1], 2)])
    np.testing.assert_array_equal(x, units[1][0])
    np.testing.assert_array_equal(y, units[1][1])
    with pytest.raises(ValueError, match="single unit"):
        unit_rows(units[0])
    with pytest.raises(ValueError, match="no meta-training units"):
        PooledRidge().fit([])
