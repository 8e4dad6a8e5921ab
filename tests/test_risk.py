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


def test_order_table_marks_orders_a_later_cancellation_undid():
    import pandas as pd
    from metaecom.cases.risk import order_table
    t = pd.Timestamp("2011-03-01 10:00")
    lines = pd.DataFrame({
        "invoice": ["1", "1", "2", "C3", "4", "5"],
        "stock_code": ["A", "B", "A", "B", "A", "A"],
        "quantity": [2, 24, 3, -24, 5, 1],
        "invoice_date": [t, t, t + pd.Timedelta(days=2), t + pd.Timedelta(days=3), t, t],
        "unit_price": [1.0, 0.5, 1.0, 0.5, 2.0, 1.0],
        "customer_id": pd.array([7, 7, 7, 7, 8, pd.NA], dtype="Int32"),
        "country": ["France"] * 6,
    })
    orders = order_table(lines).set_index("invoice")
    assert list(orders.index) == ["1", "4", "2"]            # time order; no customer: not an order
    assert orders.loc["1", "cancelled"] and not orders.loc["2", "cancelled"]
    assert orders.loc["1", "cancelled_at"] == t + pd.Timedelta(days=3)
    assert pd.isna(orders.loc["2", "cancelled_at"])
    assert orders.loc["1", "value"] == 2 * 1.0 + 24 * 0.5 and orders.loc["1", "bulk_share"] == 0.5
    assert orders.loc["2", "order_number"] == 1 and orders.loc["2", "days_since_previous"] == 2.0
    assert np.isnan(orders.loc["4", "days_since_previous"])


def test_binary_log_loss_trains_a_yes_no_model():
    import torch
    from metaecom.methods import MAML, binary_log_loss
    assert binary_log_loss.targets == "values"
    out = torch.tensor([[0.0], [2.0]])
    expected = -(np.log(0.5) + np.log(1 / (1 + np.exp(-2.0)))) / 2
    assert float(binary_log_loss(out, torch.tensor([0.0, 1.0]))) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match=r"yes/no model \(logits\) must output \[n\] or \[n, 1\]"):
        binary_log_loss(torch.zeros(3, 2), torch.zeros(3))
    torch.manual_seed(0)
    method = MAML(torch.nn.Linear(1, 1), loss_fn=binary_log_loss, inner_lr=1.0, test_inner_steps=20,
                  device="cpu")
    x = np.array([[-2.0], [-1.0], [1.0], [2.0]], dtype=np.float32)
    logits = method.adapt(x, np.array([0.0, 0.0, 1.0, 1.0])).predict(x)
    assert logits[0] < 0 < logits[3]  # adapted towards the labels


def test_bootstrap_by_group_resamples_whole_groups_and_pairs_methods():
    from sklearn.metrics import roc_auc_score
    from metaecom.cases.risk import bootstrap_by_group
    rng = np.random.default_rng(2)
    groups = np.repeat(np.arange(200), 5)
    labels = (rng.random(1000) < 0.2).astype(int)
    good = labels + rng.normal(0, 0.8, 1000)
    noise = rng.normal(0, 1, 1000)
    draws = bootstrap_by_group(roc_auc_score, labels, {"good": good, "noise": noise}, groups,
                               resamples=100, seed=0)
    assert draws.shape == (100, 2)
    assert abs(draws["good"].mean() - roc_auc_score(labels, good)) < 0.01
    assert (draws["good"] - draws["noise"]).quantile(0.025) > 0  # paired: clearly better
    # the same seed gives the same resamples
    again = bootstrap_by_group(roc_auc_score, labels, {"good": good}, groups, resamples=100, seed=0)
    np.testing.assert_allclose(again["good"], draws["good"])
    with pytest.raises(ValueError, match="one class only"):
        bootstrap_by_group(roc_auc_score, np.zeros(1000), {"good": good}, groups)
