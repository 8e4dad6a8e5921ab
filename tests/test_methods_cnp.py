"""Conditional Neural Processes: the network, regression by conditioning on a support set,
task sources, and the classifier trained on episodes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from metaecom.methods import CNP, CNPClassifier, RegressionAdapted, accuracy
from metaecom.methods.cnp import CNPAdapted, gaussian_nll
from metaecom.models import CNPNetwork
from metaecom.tasks import FewShotSampler

from conftest import clustered_classes

X, Y = clustered_classes()
TRAIN, TEST = np.arange(20), np.arange(20, 30)
IN_TRAIN = np.isin(Y, TRAIN)


def _linear_task(rng: np.random.Generator, support: int = 5, query: int = 10):
    a, b = rng.uniform(-2, 2, size=2)
    x = rng.uniform(-2, 2, size=(support + query, 1)).astype(np.float32)
    y = (a * x[:, 0] + b).astype(np.float32)
    return x[:support], y[:support], x[support:], y[support:]


def test_cnp_shapes_and_bounded_sigma():
    torch.manual_seed(0)
    model = CNPNetwork(x_dim=2, hidden=16, r_dim=8)
    mean, sigma = model(torch.randn(3, 5, 2), torch.randn(3, 5), torch.randn(3, 7, 2))
    assert mean.shape == sigma.shape == (3, 7)
    assert (sigma > 0.1).all() and torch.isfinite(mean).all()
    # a mask averages over the real points only: padding changes nothing
    cx, cy, tx = torch.randn(1, 3, 2), torch.randn(1, 3), torch.randn(1, 4, 2)
    padded_x, padded_y = torch.cat([cx, torch.randn(1, 2, 2)], 1), torch.cat([cy, torch.randn(1, 2)], 1)
    mask = torch.tensor([[1.0, 1, 1, 0, 0]])
    torch.testing.assert_close(model(padded_x, padded_y, tx, mask)[0], model(cx, cy, tx)[0])
    with pytest.raises(ValueError, match="context_y must be"):
        model(torch.randn(3, 5, 2), torch.randn(3, 4), torch.randn(3, 7, 2))
    with pytest.raises(ValueError, match=r"expected context_x \[b, n, 2\]"):
        model(torch.randn(3, 5, 3), torch.randn(3, 5), torch.randn(3, 7, 3))
    nll = gaussian_nll(torch.zeros(4), torch.ones(4), torch.ones(4))
    torch.testing.assert_close(nll, torch.tensor(0.5 + 0.5 * math.log(2 * math.pi)))


def test_cnp_regression_loss_falls_and_prediction_ignores_support_order():
    torch.manual_seed(0)
    method = CNP(CNPNetwork(x_dim=1, hidden=32, r_dim=32), meta_lr=3e-3, tasks_per_step=16, seed=0, device="cpu")
    method.meta_train_tasks(_linear_task, meta_steps=250)
    assert len(method.history) == 250 and method.tasks_seen == 250 * 16
    assert np.mean(method.history[-25:]) < np.mean(method.history[:25]) - 0.5, method.history[::25]
    sx, sy, qx, qy = _linear_task(np.random.default_rng(123))
    adapted = method.adapt(sx, sy)
    assert isinstance(adapted, CNPAdapted) and isinstance(adapted, RegressionAdapted)
    mean, sigma = adapted.predict_distribution(qx)
    assert mean.shape == sigma.shape == (10,) and (sigma >= 0.1).all()
    prior_error = np.mean((method.adapt(sx[:0], sy[:0]).predict(qx) - qy) ** 2)
    assert np.mean((mean - qy) ** 2) < prior_error  # conditioning on the support set helps
    order = np.random.default_rng(0).permutation(len(sx))
    permuted = method.adapt(sx[order], sy[order])
    assert torch.allclose(torch.as_tensor(permuted.predict(qx)), torch.as_tensor(adapted.predict(qx)), atol=1e-6)


def test_cnp_task_sources_and_bad_input():
    method = CNP(CNPNetwork(x_dim=1, hidden=8, r_dim=8), tasks_per_step=2, device="cpu")
    rng = np.random.default_rng(0)
    tasks = [_linear_task(rng, support=s) for s in (1, 3, 5)]  # support sizes differ: padded with a mask
    method.meta_train_tasks(tasks, meta_steps=3)
    method.meta_train_tasks(iter(tasks * 2), meta_steps=3)
    method.meta_train_tasks((t for t in tasks), meta_steps=1)
    assert len(method.history) == 7 and method.tasks_seen == 7 * 2  # tasks_per_step tasks per meta-step
    with pytest.raises(ValueError, match="the task iterator ran out"):
        method.meta_train_tasks(iter(tasks), meta_steps=2)
    with pytest.raises(ValueError, match="the sequence of tasks is empty"):
        method.meta_train_tasks([], meta_steps=1)
    with pytest.raises(ValueError, match=r"a task is a tuple \(support_x, support_y, query_x, query_y\)"):
        method.meta_train_tasks([tasks[0][:3]], meta_steps=1)
    with pytest.raises(ValueError, match="support_y must be 1-D with one target per example"):
        method.adapt(np.zeros((3, 1)), np.zeros(2))
    with pytest.raises(ValueError, match=r"support_x must be \[examples, 1\]"):
        method.adapt(np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(ValueError, match=r"query_x must be \[examples, 1\]"):
        method.adapt(np.zeros((3, 1)), np.zeros(3)).predict(np.zeros(4))
    with pytest.raises(ValueError, match="predicts values, not class probabilities: use predict"):
        method.adapt(np.zeros((5, 1)), np.arange(5)).predict_proba(np.zeros((2, 1)))
    with pytest.raises(ValueError, match="query_x is empty"):
        method.meta_train_tasks([(tasks[0][0], tasks[0][1], np.zeros((0, 1)), np.zeros(0))], meta_steps=1)
    bad = (tasks[0][0], tasks[0][1] * np.nan, tasks[0][2], tasks[0][3])
    assert len(method.history) == 8  # the iterator that ran out still gave one full step
    with pytest.raises(FloatingPointError, match="CNP: meta-training loss became nan at meta-step 9"):
        method.meta_train_tasks([bad], meta_steps=2)
    # an empty support set is defined: r = 0, the learned prior
    assert method.adapt(np.zeros((0, 1)), np.zeros(0)).predict(np.zeros((4, 1))).shape == (4,)


def _cnp_classifier(seed: int = 0, pair_features: str = "concat") -> CNPClassifier:
    torch.manual_seed(seed)
    encoder = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 16))
    return CNPClassifier(encoder, embedding_dim=16, hidden=32, r_dim=16, n_way=5, k_shot=1, n_query=5, device="cpu",
                         pair_features=pair_features)


@pytest.mark.parametrize("pair_features", ["concat", "interaction"])
def test_cnp_classifier_is_permutation_invariant_and_learns(pair_features):
    method = _cnp_classifier(pair_features=pair_features)
    scores = method.scores(torch.randn(10, 16), torch.arange(5).repeat(2), torch.randn(3, 16), 5)
    assert scores.shape == (3, 5)
    method.meta_train(X[IN_TRAIN], Y[IN_TRAIN], meta_steps=200)
    assert len(method.history) == 200 and np.all(np.isfinite(method.history))
    sampler = FewShotSampler(Y, 5, 2, 10, classes=TEST, seed=7)
    episodes = sampler.episodes(30)
    accuracies = [accuracy(method.adapt(X[e.support], e.support_y), X[e.query], e.query_y) for e in episodes]
    assert np.mean(accuracies) > 0.8, f"{np.mean(accuracies):.2f} (chance 0.2; 0.97 when calibrated)"
    e = episodes[0]
    order = np.random.default_rng(0).permutation(len(e.support))
    a = method.adapt(X[e.support], e.support_y).predict_proba(X[e.query])
    b = method.adapt(X[e.support[order]], e.support_y[order]).predict_proba(X[e.query])
    assert torch.allclose(torch.as_tensor(a), torch.as_tensor(b), atol=1e-6)
    with pytest.raises(ValueError, match="support labels must be 0..N-1"):
        method.adapt(X[:3], np.array([0, 2, 2]))
    with pytest.raises(FloatingPointError, match="CNP: meta-training loss became nan at meta-step 1"):
        _cnp_classifier().meta_train(np.full_like(X, np.nan), Y, meta_steps=2)
    with pytest.raises(ValueError, match="pair_features must be one of"):
        _cnp_classifier(pair_features="sum")
