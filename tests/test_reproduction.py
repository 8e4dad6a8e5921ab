"""Reproduction results files: evaluation on shared episodes, the file round trip, the table."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from metaecom.methods.metric import ProtoNet
from metaecom.models import Conv4
from metaecom.scripts.reproduce_omniglot import build, build_gradient, train_within_budget
from metaecom.reproduction import (OMNIGLOT_SETTINGS, PUBLISHED_OMNIGLOT, comparison_table, episode_accuracies,
                                   evaluate_settings, read_results, read_training, write_run)

from conftest import clustered_classes

X, Y = clustered_classes()


def _protonet(seed=0):
    torch.manual_seed(seed)
    encoder = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 16))
    return ProtoNet(encoder, n_way=5, k_shot=1, n_query=5, device="cpu", seed=seed)


def test_every_method_sees_the_same_test_episodes():
    # Two different models, same seed: the per-episode scores are paired, so a method
    # that is better on every episode is better everywhere.
    a, b = _protonet(0), _protonet(1)
    sa = episode_accuracies(a, X, Y, n_way=5, k_shot=1, n_query=4, episodes=6, seed=3)
    again = episode_accuracies(a, X, Y, n_way=5, k_shot=1, n_query=4, episodes=6, seed=3)
    np.testing.assert_array_equal(sa, again)
    # The untrained cluster data is easy: prototypes of the raw encoder already work.
    assert sa.mean() > 50
    sb = episode_accuracies(b, X, Y, n_way=5, k_shot=1, n_query=4, episodes=6, seed=3)
    assert sa.shape == sb.shape == (6,)


def test_results_file_round_trip_and_rerun_replaces_the_method(tmp_path):
    path = tmp_path / "results" / "omniglot.json"
    method = _protonet()
    rows = evaluate_settings(method, X, Y, settings=((5, 1), (5, 5)), n_query=3, episodes=5)
    assert [(r["n_way"], r["k_shot"]) for r in rows] == [(5, 1), (5, 5)]
    assert all(0 <= r["accuracy"] <= 100 and r["ci"] >= 0 and r["episodes"] == 5 for r in rows)
    write_run(path, "ProtoNet", {"episodes": 10, "device": "cpu"}, rows, ["a deviation"], protocol="p")
    write_run(path, "MatchingNet", {"episodes": 3, "device": "cpu"}, rows[:1])
    write_run(path, "ProtoNet", {"episodes": 20, "device": "cpu"}, rows)  # rerun: replaces, keeps the other
    content = json.loads(path.read_text())
    assert list(content["runs"]) == ["ProtoNet", "MatchingNet"]
    assert content["runs"]["ProtoNet"]["training"]["episodes"] == 20
    assert content["protocol"] == "p"
    table = read_results(path)
    assert len(table) == 3 and set(table["setting"]) == {"5-way 1-shot", "5-way 5-shot"}
    assert read_training(path).loc["MatchingNet", "episodes"] == 3


def test_results_file_of_another_benchmark_is_not_overwritten(tmp_path):
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"benchmark": "miniimagenet", "runs": {}}))
    with pytest.raises(ValueError, match="miniimagenet"):
        write_run(path, "ProtoNet", {}, [])


def test_comparison_table_puts_ours_beside_the_paper():
    import pandas as pd

    results = pd.DataFrame([
        {"method": "ProtoNet", "setting": "5-way 1-shot", "accuracy": 97.24, "ci": 0.31},
        {"method": "ANIL", "setting": "20-way 1-shot", "accuracy": 90.0, "ci": 0.5},
    ])
    table = comparison_table(results)
    assert table.loc["ProtoNet", ("5-way 1-shot", "ours")] == "97.2 ± 0.3"
    assert table.loc["ProtoNet", ("5-way 1-shot", "paper")] == "98.8"
    assert table.loc["ProtoNet", ("20-way 5-shot", "ours")] == "—"
    assert table.loc["ANIL", ("5-way 1-shot", "paper")] == "—"  # the ANIL paper reports 20-way only
    assert table.loc["ANIL", ("20-way 1-shot", "paper")] == "96.2"
    assert len(PUBLISHED_OMNIGLOT["MAML"][0]) == len(OMNIGLOT_SETTINGS)


def test_a_method_with_one_model_per_way_fills_one_row_of_the_comparison(tmp_path):
    path = tmp_path / "omniglot_maml.json"
    five = [{"n_way": 5, "k_shot": k, "accuracy": a, "ci": 0.4, "episodes": 10, "n_query": 15}
            for k, a in ((1, 91.0), (5, 97.0))]
    twenty = [{"n_way": 20, "k_shot": k, "accuracy": a, "ci": 0.3, "episodes": 10, "n_query": 15}
              for k, a in ((1, 80.0), (5, 93.0))]
    write_run(path, "MAML/5-way", {"episodes": 7}, five)
    write_run(path, "MAML/20-way", {"episodes": 3}, twenty)
    results = read_results(path)
    assert set(results["method"]) == {"MAML"} and set(results["run"]) == {"MAML/5-way", "MAML/20-way"}
    table = comparison_table(results)
    assert list(table.index) == ["MAML"]
    assert table.loc["MAML", ("5-way 5-shot", "ours")] == "97.0 ± 0.4"
    assert table.loc["MAML", ("20-way 1-shot", "ours")] == "80.0 ± 0.3"
    assert table.loc["MAML", ("20-way 1-shot", "paper")] == "95.8"
    assert list(read_training(path)["episodes"]) == [7, 3]
    write_run(path, "MAML/other", {"episodes": 1}, five[:1])  # a second 5-way 1-shot result for MAML
    with pytest.raises(ValueError, match="MAML has 2 results for 5-way 1-shot"):
        comparison_table(read_results(path))


def test_training_stops_at_the_time_budget():
    method = _protonet()
    method.meta_train(X, Y, meta_steps=100_000, max_seconds=0.5)
    assert 0 < len(method.history) < 100_000
    assert method.train_seconds < 5


def test_learning_rate_is_halved_on_schedule():
    method = _protonet()
    method.meta_lr_halving_every = 3
    seen = []
    original = torch.optim.Adam.step

    def spy(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return original(self, *args, **kwargs)

    torch.optim.Adam.step = spy
    try:
        method.meta_train(X, Y, meta_steps=7)
    finally:
        torch.optim.Adam.step = original
    assert seen == pytest.approx([1e-3] * 3 + [5e-4] * 3 + [2.5e-4])


def test_channels_last_conv4_computes_the_same_embedding():
    torch.manual_seed(0)
    plain = Conv4(channels_last=False).eval()
    fast = Conv4(channels_last=True).eval()
    fast.load_state_dict(plain.state_dict())
    x = torch.rand(6, 1, 28, 28)
    torch.testing.assert_close(fast(x), plain(x), rtol=1e-4, atol=1e-5)


def test_reproduction_builds_each_method_with_its_papers_episode_shape():
    proto = build("ProtoNet", seed=0, device="cpu")
    assert (proto.n_way, proto.k_shot, proto.n_query) == (60, 1, 5)
    assert build("RelationNet", seed=0, device="cpu").relation is not None
    with pytest.raises(ValueError, match="unknown method"):
        build("MAMLish", seed=0, device="cpu")


def test_gradient_methods_get_their_papers_settings_per_way():
    maml5, maml20 = build_gradient("MAML", 5, seed=0, device="cpu"), build_gradient("MAML", 20, seed=0, device="cpu")
    assert (maml5.n_way, maml5.tasks_per_step, maml5.inner_steps, maml5.inner_lr) == (5, 32, 1, 0.4)
    assert (maml20.n_way, maml20.tasks_per_step, maml20.inner_steps, maml20.inner_lr) == (20, 16, 5, 0.1)
    assert maml5.model(torch.zeros(2, 1, 28, 28)).shape == (2, 5) and maml5.test_inner_steps == 10
    assert build_gradient("FOMAML", 5, seed=0, device="cpu").first_order
    anil = build_gradient("ANIL", 20, seed=0, device="cpu")
    assert anil.adapt_names() == ["1.weight", "1.bias"]  # the linear head after Conv4
    reptile = build_gradient("Reptile", 20, seed=0, device="cpu")
    assert (reptile.k_shot + reptile.n_query, reptile.inner_batch, reptile.inner_steps) == (10, 20, 10)
    with pytest.raises(ValueError, match="unknown gradient method"):
        build_gradient("ProtoNet", 5, seed=0, device="cpu")
    with pytest.raises(ValueError, match="5, 20"):
        build_gradient("MAML", 10, seed=0, device="cpu")


def test_reptile_outer_step_is_annealed_over_the_budget():
    from metaecom.methods import Reptile

    method = Reptile(nn.Sequential(nn.Linear(32, 5)), n_way=5, k_shot=1, n_query=2, tasks_per_step=2, device="cpu")
    train_within_budget(method, X, Y, minutes=1.0, max_steps=4, desc=None)
    # 4 steps allowed: all in the first of the 10 pieces (6 seconds per piece is plenty)
    assert method.meta_lr == pytest.approx(0.95) and len(method.history) == 4
    calls = []
    method.meta_train = lambda x, y, meta_steps, desc, max_seconds: calls.append((method.meta_lr, max_seconds))
    train_within_budget(method, X, Y, minutes=2.0, max_steps=100, desc=None)
    assert [size for size, _ in calls] == pytest.approx([0.95 - 0.1 * i for i in range(10)])
    assert all(seconds == pytest.approx(12.0) for _, seconds in calls)
