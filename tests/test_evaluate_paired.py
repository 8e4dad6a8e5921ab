"""Many methods on the same units: per-method summaries and paired tables (metaecom.evaluate)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from metaecom.evaluate import (ci_table, episode_accuracies, episode_scores, format_ci, mean_ci, method_summary,
                               paired_table)

T_975_3 = 3.182446305284263  # Student's t, 97.5% quantile, 3 degrees of freedom (4 units)


def long_table():
    # four units; B - A = [1, 2, 0, 3], C - A = [-2, -2, -3, -1]
    scores = {"A": [10.0, 20.0, 30.0, 40.0], "B": [11.0, 22.0, 30.0, 43.0], "C": [8.0, 18.0, 27.0, 39.0]}
    return pd.DataFrame([{"episode": unit, "method": m, "score": v[unit]}
                         for m, v in scores.items() for unit in range(4)])


def test_paired_table_against_a_reference_matches_a_hand_computation():
    table = paired_table(long_table(), reference="A").set_index("method")
    assert list(table.index) == ["B", "C"] and set(table["reference"]) == {"A"}
    b = table.loc["B"]
    sd_b = np.sqrt(((1 - 1.5) ** 2 + (2 - 1.5) ** 2 + (0 - 1.5) ** 2 + (3 - 1.5) ** 2) / 3)
    assert b["mean"] == pytest.approx(1.5)
    assert b["ci"] == pytest.approx(T_975_3 * sd_b / 2)          # 2.054
    assert (b["low"], b["high"]) == pytest.approx((1.5 - b["ci"], 1.5 + b["ci"]))
    assert (b["units"], b["wins"], b["ties"], b["losses"]) == (4, 3, 1, 0)
    assert b["verdict"] == "ties with"                             # the interval covers 0
    c = table.loc["C"]
    assert c["mean"] == pytest.approx(-2.0)
    assert c["ci"] == pytest.approx(T_975_3 * np.sqrt(2 / 3) / 2)   # 1.299
    assert (c["wins"], c["ties"], c["losses"], c["verdict"]) == (0, 0, 4, "loses to")


def test_lower_is_better_turns_wins_into_losses_and_a_tolerance_makes_ties():
    table = paired_table(long_table(), reference="A", higher_is_better=False).set_index("method")
    assert (table.loc["C", "wins"], table.loc["C", "verdict"]) == (4, "beats")
    assert tuple(table.loc["B", ["wins", "ties", "losses"]]) == (0, 1, 3)
    tolerant = paired_table(long_table(), reference="A", tolerance=1.0).set_index("method")
    assert tuple(tolerant.loc["B", ["wins", "ties", "losses"]]) == (2, 2, 0)   # differences 1 and 0 tie


def test_all_pairs_and_groups():
    table = paired_table(long_table())
    assert list(zip(table["method"], table["reference"])) == [("A", "B"), ("A", "C"), ("B", "C")]
    assert table["mean"].tolist() == pytest.approx([-1.5, 2.0, 3.5])
    two = pd.concat([long_table().assign(shots=1), long_table().assign(shots=5, score=lambda t: -t["score"])])
    grouped = paired_table(two, reference="A", by="shots").set_index(["shots", "method"])
    assert grouped.loc[(1, "B"), "mean"] == pytest.approx(1.5) and grouped.loc[(5, "B"), "mean"] == pytest.approx(-1.5)
    only = paired_table(long_table(), reference="A", methods=["C"])
    assert only["method"].tolist() == ["C"]


def test_method_summary_is_mean_ci_per_method_and_feeds_ci_table():
    summary = method_summary(long_table()).set_index("method")
    for name, values in {"A": [10, 20, 30, 40], "B": [11, 22, 30, 43]}.items():
        mean, half = mean_ci(values)
        assert (summary.loc[name, "mean"], summary.loc[name, "ci"]) == pytest.approx((mean, half))
        assert summary.loc[name, "units"] == 4
    two = pd.concat([long_table().assign(shots=1), long_table().assign(shots=5)])
    table = ci_table(method_summary(two, by="shots"), index="method", columns="shots", digits=1)
    assert table.loc["B", 5] == format_ci(*mean_ci([11, 22, 30, 43]), digits=1)
    differences = ci_table(paired_table(two, reference="A", by="shots"), index="method", columns="shots",
                           digits=1, signed=True)
    assert differences.loc["B", 1] == "+1.5 ± 2.1" and differences.loc["C", 1] == "-2.0 ± 1.3"


def test_missing_units_are_named_not_dropped():
    scores = long_table()
    scores = scores[~((scores["method"] == "B") & (scores["episode"] == 3))]
    scores = scores[~((scores["method"] == "C") & scores["episode"].isin([0, 2]))]
    for call in (lambda: paired_table(scores, reference="A"), lambda: method_summary(scores)):
        with pytest.raises(ValueError, match=r"'B' lacks 1 unit\(s\): 3; 'C' lacks 2 unit\(s\): 0, 2"):
            call()
    grouped = pd.concat([long_table().assign(shots=1), scores.assign(shots=5)])
    with pytest.raises(ValueError, match=r"for \{'shots': 5\}.*'B' lacks"):
        paired_table(grouped, reference="A", by="shots")
    # a summary may describe each method on its own units, and says how many
    own = method_summary(scores, same_units=False).set_index("method")["units"]
    assert own.to_dict() == {"A": 4, "B": 3, "C": 2}
    # comparing only methods that share their units is fine
    assert len(paired_table(long_table()[long_table()["method"] != "C"], reference="A")) == 1


def test_bad_tables_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="repeat a .*average repeated runs"):
        paired_table(pd.concat([long_table(), long_table()]), reference="A")
    nan = long_table().assign(score=lambda t: t["score"].where(t.index != 5))
    with pytest.raises(ValueError, match="1 score"):
        method_summary(nan)
    with pytest.raises(ValueError, match="lacks column"):
        method_summary(long_table().rename(columns={"episode": "user"}))
    assert method_summary(long_table().rename(columns={"episode": "user"}), unit="user")["units"].tolist() == [4] * 3
    with pytest.raises(ValueError, match=r"\['D'\] have no scores"):
        paired_table(long_table(), reference="D")


def test_episode_accuracies_moved_and_episode_scores_labels_rows_by_method_name():
    from torch import nn

    import metaecom.reproduction
    from metaecom.methods import FrozenPrototypes, NearestNeighbour

    from conftest import clustered_classes

    assert metaecom.reproduction.episode_accuracies is episode_accuracies
    x, y = clustered_classes()
    methods = [NearestNeighbour(), FrozenPrototypes(), FrozenPrototypes(nn.Identity(), name="prototypes, again")]
    scores = episode_scores(methods, x, y, n_way=5, shots=[1, 3], n_query=4, episodes=5, seed={1: 3, 3: 4})
    assert scores.groupby("shots")["method"].unique()[1].tolist() == ["nearest neighbour", "prototypes, frozen",
                                                                       "prototypes, again"]
    expected = episode_accuracies(methods[0], x, y, 5, 3, n_query=4, episodes=5, seed=4)
    got = scores.query("shots == 3 and method == 'nearest neighbour'")["score"].to_numpy()
    np.testing.assert_array_equal(got, expected)
    # the same rule on the same episodes: every paired difference is exactly 0
    same = paired_table(scores, reference="prototypes, frozen", by="shots", methods=["prototypes, again"])
    assert (same["mean"] == 0).all() and (same["ties"] == 5).all()
    with pytest.raises(ValueError, match="several methods are named"):
        episode_scores([NearestNeighbour(), NearestNeighbour()], x, y, 5, 1, episodes=2)
