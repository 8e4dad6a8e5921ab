import numpy as np
import pytest

from metaecom.evaluate import format_ci, mean_ci, rmse


def test_mean_ci_matches_the_t_formula():
    values = np.array([1.0, 2.0, 4.0, 7.0])
    mean, half = mean_ci(values)
    assert mean == pytest.approx(3.5)
    # t_{0.975, 3} = 3.182446305284263; s = sqrt(7) ...
    assert half == pytest.approx(3.182446305284263 * values.std(ddof=1) / 2)


def test_mean_ci_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    covered = 0
    for _ in range(2000):
        mean, half = mean_ci(rng.normal(5.0, 2.0, size=8))
        covered += abs(mean - 5.0) <= half
    assert 0.93 < covered / 2000 < 0.97


def test_mean_ci_edge_cases():
    assert np.isnan(mean_ci([3.0])[1])
    with pytest.raises(ValueError, match="empty"):
        mean_ci([])
    with pytest.raises(ValueError, match="non-finite"):
        mean_ci([1.0, np.nan])
    with pytest.raises(ValueError, match="confidence"):
        mean_ci([1.0, 2.0], confidence=95)


def test_rmse_per_task_and_shape_check():
    np.testing.assert_allclose(rmse([[0, 0], [1, 1]], [[3, 4], [1, 1]]), [np.sqrt(12.5), 0.0])
    with pytest.raises(ValueError, match="shapes differ"):
        rmse([1, 2], [1, 2, 3])


def test_format_ci():
    assert format_ci(12.345, 0.5, 1) == "12.3 ± 0.5"


def test_ci_table_pivots_and_orders():
    import pandas as pd

    from metaecom.evaluate import ci_table

    long = pd.DataFrame({"method": ["a", "b", "a", "b"], "shots": [1, 1, 5, 5],
                         "mean": [1.0, 2.0, 3.0, 4.0], "ci": [0.1, 0.2, 0.3, 0.4]})
    table = ci_table(long, index="shots", columns="method", digits=1, order=["b", "a"])
    assert list(table.columns) == ["b", "a"] and list(table.index) == [1, 5]
    assert table.loc[5, "a"] == "3.0 ± 0.3"
    with pytest.raises(ValueError, match="lacks columns"):
        ci_table(long.drop(columns="ci"), index="shots", columns="method")
