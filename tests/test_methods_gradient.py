"""Gradient-based methods (MAML, FOMAML, ANIL, Meta-SGD, Reptile): exact meta-gradients, the update
rules, and short training runs. The vectorized MAML paths are tested in test_fast_maml.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from metaecom.methods import ANIL, FOMAML, MAML, MetaSGD, RegressionAdapted, Reptile, accuracy, squared_error
from metaecom.methods.functional import functional_forward, head_parameter_names, inner_adapt
from metaecom.models import Conv4
from metaecom.tasks import FewShotSampler

from conftest import clustered_classes

X, Y = clustered_classes()
X = X / X.std()  # unit scale, so one inner learning rate suits every method
TRAIN, TEST = np.arange(20), np.arange(20, 30)
IS_TRAIN = np.isin(Y, TRAIN)


# --- small float64 problems for the exact checks -------------------------------------------

def _tiny(seed: int = 0, batch_norm: bool = False) -> nn.Module:
    """4 -> 6 -> 3, tanh (smooth, so second-order terms are non-trivial), float64."""
    torch.manual_seed(seed)
    layers = [nn.Linear(4, 6)] + ([nn.BatchNorm1d(6)] if batch_norm else []) + [nn.Tanh(), nn.Linear(6, 3)]
    return nn.Sequential(*layers).double()


def _tasks(n: int, seed: int = 0, k: int = 2, q: int = 4):
    """``n`` random 3-way tasks ``(support_x, support_y, query_x, query_y)`` in float64."""
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(3 * k, 4)), np.repeat(np.arange(3), k), rng.normal(size=(3 * q, 4)),
             np.repeat(np.arange(3), q)) for _ in range(n)]


def _forward(w: dict, x: torch.Tensor) -> torch.Tensor:
    """The tiny model's forward pass written out by hand (no batch norm)."""
    return torch.tanh(x @ w["0.weight"].T + w["0.bias"]) @ w["2.weight"].T + w["2.bias"]


def _loss(w: dict, x, y) -> torch.Tensor:
    return F.cross_entropy(_forward(w, torch.as_tensor(x)), torch.as_tensor(y))


def _sgd(w: dict, x, y, lr: float, steps: int) -> dict:
    """``steps`` plain SGD steps, by hand, detached (no second-order graph)."""
    w = {n: p.detach().clone() for n, p in w.items()}
    for _ in range(steps):
        w = {n: p.requires_grad_(True) for n, p in w.items()}
        grads = torch.autograd.grad(_loss(w, x, y), list(w.values()))
        w = {n: (p - lr * g).detach() for (n, p), g in zip(w.items(), grads)}
    return w


def _directional_fd(method, tasks, direction: dict, h: float = 1e-6) -> float:
    """Central finite difference of the post-adaptation query loss along ``direction``."""
    params = dict(method.model.named_parameters())
    values = []
    with torch.no_grad():
        for sign in (1, -1):
            for n, p in params.items():
                p.add_(direction[n], alpha=sign * h)
            with torch.enable_grad():
                values.append(method.meta_loss(tasks).item())
            for n, p in params.items():
                p.sub_(direction[n], alpha=sign * h)
    return (values[0] - values[1]) / (2 * h)


@pytest.mark.parametrize("steps", [1, 3])
@pytest.mark.parametrize("batch_norm", [False, True])
def test_maml_meta_gradient_matches_finite_differences(steps, batch_norm):
    method = MAML(_tiny(batch_norm=batch_norm), n_way=3, k_shot=2, n_query=4, inner_steps=steps, inner_lr=0.5,
                  device="cpu")
    tasks = _tasks(2)
    grad = method.meta_gradient(tasks)
    params = dict(method.model.named_parameters())
    assert set(grad) == set(params)
    generator = torch.Generator().manual_seed(1)
    for _ in range(2):  # two random directions through all weights
        direction = {n: torch.randn(p.shape, generator=generator, dtype=p.dtype) for n, p in params.items()}
        analytic = sum((grad[n] * direction[n]).sum() for n in params).item()
        assert analytic == pytest.approx(_directional_fd(method, tasks, direction), rel=1e-5, abs=1e-9)
    coordinates = [("0.weight", (2, 1)), (method.head_names[1], (0,))] + ([("1.weight", (3,))] if batch_norm else [])
    for name, index in coordinates:  # and single coordinates (the head's bias; batch norm's scale)
        direction = {n: torch.zeros_like(p) for n, p in params.items()}
        direction[name][index] = 1.0
        assert grad[name][index].item() == pytest.approx(_directional_fd(method, tasks, direction), rel=1e-5, abs=1e-9)


@pytest.mark.parametrize("steps", [1, 2])
def test_first_order_maml_is_the_query_gradient_at_the_adapted_weights(steps):
    tasks = _tasks(2, seed=3)
    maml = MAML(_tiny(), n_way=3, k_shot=2, n_query=4, inner_steps=steps, inner_lr=0.5, device="cpu")
    fomaml = FOMAML(_tiny(), n_way=3, k_shot=2, n_query=4, inner_steps=steps, inner_lr=0.5, device="cpu")
    assert fomaml.name == "FOMAML" and fomaml.first_order and not maml.first_order
    theta = dict(fomaml.model.named_parameters())
    expected = {n: torch.zeros_like(p) for n, p in theta.items()}
    for sx, sy, qx, qy in tasks:  # by hand: SGD on the support set, then ∇_φ L_query(φ)
        phi = {n: p.requires_grad_(True) for n, p in _sgd(theta, sx, sy, 0.5, steps).items()}
        for n, g in zip(phi, torch.autograd.grad(_loss(phi, qx, qy), list(phi.values()))):
            expected[n] += g / len(tasks)
    first, second = fomaml.meta_gradient(tasks), maml.meta_gradient(tasks)
    for n in theta:
        torch.testing.assert_close(first[n], expected[n], rtol=1e-10, atol=1e-12)
    difference = max((first[n] - second[n]).abs().max().item() for n in theta)
    scale = max(second[n].abs().max().item() for n in theta)
    assert difference > 1e-3 * scale, "the Hessian term of full MAML should matter here"


def test_reptile_one_sgd_step_is_a_scaled_gradient_step_on_the_pooled_task():
    alpha, epsilon = 0.3, 0.5
    method = Reptile(_tiny(), n_way=3, k_shot=2, n_query=4, inner_steps=1, inner_lr=alpha, meta_lr=epsilon,
                     inner_optimizer="sgd", tasks_per_step=1, device="cpu")
    theta = {n: p.detach().clone().requires_grad_(True) for n, p in method.model.named_parameters()}
    (sx, sy, qx, qy), = tasks = _tasks(1, seed=5)
    pooled_x, pooled_y = np.concatenate([sx, qx]), np.concatenate([sy, qy])
    grads = dict(zip(theta, torch.autograd.grad(_loss(theta, pooled_x, pooled_y), list(theta.values()))))
    assert method.meta_lr == epsilon  # meta_lr is Reptile's outer step size ε
    method.meta_step(tasks)
    for n, p in method.model.named_parameters():
        torch.testing.assert_close(p.detach(), theta[n].detach() - epsilon * alpha * grads[n], rtol=1e-12, atol=1e-14)
    assert len(method.history) == 1 and method.tasks_seen == 1
    # the paper's inner Adam (β1 = 0): its first step is α · g / (|g| + 1e-8), elementwise
    method = Reptile(_tiny(), n_way=3, k_shot=2, n_query=4, inner_steps=1, inner_lr=alpha, meta_lr=epsilon,
                     tasks_per_step=1, device="cpu")
    assert method.inner_optimizer == "adam"
    method.meta_step(tasks)
    for n, p in method.model.named_parameters():
        expected = theta[n].detach() - epsilon * alpha * grads[n] / (grads[n].abs() + 1e-8)
        torch.testing.assert_close(p.detach(), expected, rtol=1e-12, atol=1e-14)


def test_reptile_minibatches_cover_the_pool_once_per_pass_and_change_the_update():
    method = Reptile(_tiny(), n_way=3, k_shot=2, n_query=4, inner_steps=3, inner_batch=6, test_inner_batch=2,
                     tasks_per_step=1, device="cpu")
    batches = method._minibatches(18, 6)
    for _ in range(2):  # every pass over the pool is a permutation cut into three minibatches
        seen = torch.cat([next(batches) for _ in range(3)])
        assert sorted(seen.tolist()) == list(range(18))
    assert next(method._minibatches(5, None)) is None and next(method._minibatches(5, 8)) is None
    tasks = _tasks(1, seed=5)
    full = Reptile(_tiny(), n_way=3, k_shot=2, n_query=4, inner_steps=3, tasks_per_step=1, device="cpu")
    method.meta_step(tasks)
    full.meta_step(tasks)
    assert any(not torch.allclose(a, b) for a, b in zip(method.model.parameters(), full.model.parameters()))
    # one full-size minibatch is the full-batch update
    same = Reptile(_tiny(), n_way=3, k_shot=2, n_query=4, inner_steps=3, inner_batch=18, tasks_per_step=1, device="cpu")
    again = Reptile(_tiny(), n_way=3, k_shot=2, n_query=4, inner_steps=3, tasks_per_step=1, device="cpu")
    same.meta_step(tasks)
    again.meta_step(tasks)
    for a, b in zip(same.model.parameters(), again.model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    sx, sy, qx, qy = tasks[0]
    assert method.adapt(sx, sy).predict_proba(qx).shape == (len(qx), 3)
    with pytest.raises(ValueError, match="inner_batch"):
        Reptile(_tiny(), n_way=3, inner_optimizer="sgd", inner_batch=4)
    with pytest.raises(ValueError, match="inner_batch"):
        Reptile(_tiny(), n_way=3, inner_batch=0)


def test_reptile_moves_towards_the_mean_of_the_task_weights():
    method = Reptile(_tiny(), n_way=3, k_shot=2, n_query=4, inner_steps=3, inner_lr=0.2, meta_lr=0.25,
                     inner_optimizer="sgd", tasks_per_step=2, device="cpu")
    theta = {n: p.detach().clone() for n, p in method.model.named_parameters()}
    tasks = _tasks(2, seed=6)
    phis = [_sgd(theta, np.concatenate([sx, qx]), np.concatenate([sy, qy]), 0.2, 3) for sx, sy, qx, qy in tasks]
    direction = method.meta_gradient(tasks)
    method.meta_train_tasks(tasks, meta_steps=1)  # a sequence of 2 tasks, tasks_per_step 2: both, in some order
    for n, p in method.model.named_parameters():
        mean_phi = (phis[0][n] + phis[1][n]) / 2
        torch.testing.assert_close(direction[n], theta[n] - mean_phi, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(p.detach(), theta[n] + 0.25 * (mean_phi - theta[n]), rtol=1e-10, atol=1e-12)


def test_anil_adapts_only_the_head():
    method = ANIL(_tiny(), n_way=3, k_shot=2, n_query=4, inner_steps=2, inner_lr=0.5, device="cpu")
    assert method.head_names == ["2.weight", "2.bias"] == head_parameter_names(method.model)
    params = dict(method.model.named_parameters())
    sx, sy, _, _ = _tasks(1)[0]
    x, y = torch.as_tensor(sx), torch.as_tensor(sy)
    adapted = inner_adapt(method.model, params, {}, x, y, method.loss_fn, 2, 0.5, adapt_names=method.head_names)
    assert adapted["0.weight"] is params["0.weight"] and adapted["0.bias"] is params["0.bias"]
    assert not torch.equal(adapted["2.weight"], params["2.weight"])
    after = method.adapt(sx, sy).params  # the same through the public interface
    torch.testing.assert_close(after["0.weight"], params["0.weight"].detach(), rtol=0, atol=0)
    assert not torch.allclose(after["2.bias"], params["2.bias"].detach())
    # ...while the outer loop still trains the body
    assert method.meta_gradient(_tasks(2)).get("0.weight").abs().max() > 0
    with pytest.raises(ValueError, match="head_names"):
        ANIL(_tiny(), n_way=3, head_names=["nonexistent.weight"], device="cpu")
    assert ANIL(_tiny(), n_way=3, head_names=["2.bias"], device="cpu").adapt_names() == ["2.bias"]


def test_meta_sgd_learns_its_inner_learning_rates():
    tasks = _tasks(2, seed=8)
    method = MetaSGD(_tiny(), n_way=3, k_shot=2, n_query=4, inner_lr=0.3, meta_lr=1e-2, device="cpu")
    meta = method.meta_parameters()
    rates = {n: r for n, r in meta.items() if n.startswith("inner_lr[")}
    assert sorted(rates) == [f"inner_lr[{n}]" for n in sorted(dict(method.model.named_parameters()))]
    assert all(isinstance(r, nn.Parameter) and r.requires_grad for r in rates.values())
    assert all(torch.equal(r, torch.full_like(r, 0.3)) for r in rates.values())
    grad = method.meta_gradient(tasks)
    # at initialisation (every rate = inner_lr) the weights' meta-gradient is MAML's
    maml = MAML(_tiny(), n_way=3, k_shot=2, n_query=4, inner_lr=0.3, device="cpu").meta_gradient(tasks)
    for n in maml:
        torch.testing.assert_close(grad[n], maml[n], rtol=1e-10, atol=1e-12)
    # and, with one step φ = θ - α ⊙ g(θ), dL/dα = -g(θ) ⊙ ∇_φ L(φ) for each task (averaged)
    theta = dict(method.model.named_parameters())
    expected = {n: torch.zeros_like(p) for n, p in theta.items()}
    for sx, sy, qx, qy in tasks:
        w = {n: p.detach().clone().requires_grad_(True) for n, p in theta.items()}
        g = dict(zip(w, torch.autograd.grad(_loss(w, sx, sy), list(w.values()))))
        phi = {n: (w[n] - 0.3 * g[n]).detach().requires_grad_(True) for n in w}
        for n, gq in zip(phi, torch.autograd.grad(_loss(phi, qx, qy), list(phi.values()))):
            expected[n] += -g[n] * gq / len(tasks)
    for n in theta:
        torch.testing.assert_close(grad[f"inner_lr[{n}]"], expected[n], rtol=1e-10, atol=1e-12)
    method.meta_train_tasks(tasks, meta_steps=5)
    assert any(not torch.allclose(r, torch.full_like(r, 0.3)) for r in method.inner_lrs().values())


def test_batch_norm_uses_the_batch_statistics_and_leaves_running_averages_alone():
    method = MAML(_tiny(batch_norm=True), n_way=3, k_shot=2, n_query=4, inner_lr=0.5, device="cpu")
    buffers = {n: b.clone() for n, b in method.model.named_buffers()}
    method.meta_train_tasks(_tasks(4), meta_steps=3)
    sx, sy, qx, _ = _tasks(1, seed=9)[0]
    adapted = method.adapt(sx, sy)
    whole = adapted.predict_proba(qx)
    for n, b in method.model.named_buffers():
        torch.testing.assert_close(b, buffers[n], rtol=0, atol=0)
    # transductive: a query's probabilities depend on the batch it comes in
    assert not np.allclose(whole[:6], adapted.predict_proba(qx[:6]))
    np.testing.assert_allclose(whole.sum(axis=1), 1.0)
    # equal to the model itself in training mode on the query batch
    model = method.model.train()
    manual = functional_forward(model, adapted.params, {n: b.clone() for n, b in model.named_buffers()},
                                torch.as_tensor(qx))
    np.testing.assert_allclose(whole, torch.softmax(manual, dim=1).detach().numpy(), rtol=1e-12)


def test_non_finite_loss_stops_meta_training_naming_the_step():
    method = MAML(_tiny(), n_way=3, k_shot=2, n_query=4, device="cpu")
    before = {n: p.detach().clone() for n, p in method.model.named_parameters()}
    sx, sy, qx, qy = _tasks(1)[0]
    bad = (sx, sy, np.full_like(qx, np.nan), qy)
    with pytest.raises(FloatingPointError, match=r"MAML: meta-training loss became nan at meta-step 1"):
        method.meta_train_tasks([bad], meta_steps=3)
    for n, p in method.model.named_parameters():  # nothing was updated
        torch.testing.assert_close(p.detach(), before[n], rtol=0, atol=0)
    # a sane start that fails later: the message names that step
    method = FOMAML(_tiny(), n_way=3, k_shot=2, n_query=4, tasks_per_step=1, device="cpu")
    with pytest.raises(FloatingPointError, match=r"FOMAML: meta-training loss became nan at meta-step 3"):
        method.meta_train_tasks(iter(_tasks(2) + [bad]), meta_steps=3)  # an iterator of tasks
    assert len(method.history) == 2
    nan_x = np.full_like(X[:800], np.nan)
    with pytest.raises(FloatingPointError, match="Reptile: meta-training loss became nan at meta-step 1"):
        Reptile(_tiny(), n_way=3, device="cpu").meta_train(nan_x[:, :4].astype(np.float64), Y[:800], meta_steps=2)


# --- short meta-training on the clustered classes (float32, the default) ---------------------

def _mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 5))


COMMON = dict(n_way=5, k_shot=1, n_query=5, tasks_per_step=2, device="cpu")
METHODS = {
    "MAML": lambda: MAML(_mlp(), inner_lr=0.5, meta_lr=3e-3, **COMMON),
    "FOMAML": lambda: FOMAML(_mlp(), inner_lr=0.5, meta_lr=3e-3, **COMMON),
    "ANIL": lambda: ANIL(_mlp(), inner_lr=0.5, meta_lr=3e-3, **COMMON),
    "MetaSGD": lambda: MetaSGD(_mlp(), inner_lr=0.5, meta_lr=3e-3, **COMMON),
    "Reptile": lambda: Reptile(_mlp(), inner_steps=5, inner_lr=0.1, inner_optimizer="sgd", meta_lr=1.0, **COMMON),
}


def _test_accuracy(method, episodes: int = 30) -> float:
    sampler = FewShotSampler(Y, n_way=5, k_shot=1, n_query=10, classes=TEST, seed=7)
    return float(np.mean([accuracy(method.adapt(X[e.support], e.support_y), X[e.query], e.query_y)
                          for e in sampler.episodes(episodes)]))


@pytest.mark.parametrize("name", sorted(METHODS))
def test_short_meta_training_beats_chance_on_new_classes(name):
    method = METHODS[name]()
    assert method.name == name
    before = _test_accuracy(method)
    method.meta_train(X[IS_TRAIN], Y[IS_TRAIN], meta_steps=100)
    after = _test_accuracy(method)
    assert after > 0.5, f"{name}: {after:.2f} after meta-training (chance 0.2)"
    assert after >= before - 0.05, f"{name}: {before:.2f} before, {after:.2f} after"
    assert len(method.history) == 100 and np.all(np.isfinite(method.history))
    assert method.tasks_seen == 200 and method.train_seconds > 0


SEEDED = {"MAML": METHODS["MAML"], "MetaSGD": METHODS["MetaSGD"],
          "Reptile-adam": lambda: Reptile(_mlp(), inner_steps=3, inner_lr=1e-2, **COMMON)}


@pytest.mark.parametrize("name", sorted(SEEDED))
def test_same_seed_same_result(name):
    a = SEEDED[name]().meta_train(X[:800], Y[:800], meta_steps=5)
    b = SEEDED[name]().meta_train(X[:800], Y[:800], meta_steps=5)
    assert a.history == b.history
    episode = FewShotSampler(Y, 5, 1, 5, classes=TEST, seed=1).sample()
    np.testing.assert_array_equal(a.adapt(X[episode.support], episode.support_y).predict_proba(X[episode.query]),
                                  b.adapt(X[episode.support], episode.support_y).predict_proba(X[episode.query]))


def test_bad_input():
    method = METHODS["MAML"]()
    adapted = method.adapt(X[:5], np.arange(5))
    with pytest.raises(ValueError, match=r"query labels \[7\] are not among the support classes 0..4"):
        accuracy(adapted, X[5:7], np.array([0, 7]))
    with pytest.raises(ValueError, match=r"feature shape \(16,\) but the support set had \(32,\)"):
        adapted.predict(X[5:7, :16])
    with pytest.raises(ValueError, match="one label per support example"):
        method.adapt(X[:4], np.array([0, 1]))
    with pytest.raises(ValueError, match="adapts to 5-way tasks; the support set has 2 classes"):
        method.adapt(X[:4], np.array([0, 0, 1, 1]))
    with pytest.raises(ValueError, match="asked for 5-way episodes"):
        method.meta_train(X[:80], Y[:80], meta_steps=1)  # only 2 classes there
    with pytest.raises(ValueError, match="must output"):
        MAML(_mlp(), n_way=3, device="cpu").meta_gradient([(X[:3], np.arange(3), X[3:6], np.arange(3))])
    def ranking_loss(output, target):
        return output.sum()

    ranking_loss.targets = "ranks"
    with pytest.raises(ValueError, match="a loss's targets attribute must be 'classes' or 'values', got 'ranks'"):
        MAML(_mlp(), loss_fn=ranking_loss)
    assert method.targets == "classes"
    regression = MAML(nn.Linear(32, 1), loss_fn=squared_error, device="cpu")
    assert regression.targets == "values"
    with pytest.raises(ValueError, match="predicts values, not class probabilities: use predict"):
        regression.adapt(X[:5], np.arange(5)).predict_proba(X[5:7])
    with pytest.raises(ValueError, match="first-order by definition"):
        FOMAML(_mlp(), first_order=False)
    with pytest.raises(ValueError, match="inner_optimizer"):
        Reptile(_mlp(), inner_optimizer="lbfgs")


def test_maml_on_a_small_image_model_with_batch_norm():
    torch.manual_seed(0)
    model = nn.Sequential(Conv4(hidden=8), nn.Linear(8, 4))
    x = np.random.default_rng(0).random((40, 1, 28, 28), dtype=np.float32)
    y = np.repeat(np.arange(8), 5)
    method = MAML(model, n_way=4, k_shot=1, n_query=2, inner_lr=0.1, tasks_per_step=2, device="cpu")
    method.meta_train(x, y, meta_steps=2)
    assert len(method.history) == 2
    proba = method.adapt(x[[0, 5, 10, 15]], np.arange(4)).predict_proba(x[20:26])
    assert proba.shape == (6, 4) and proba.dtype == np.float32


# --- regression ---------------------------------------------------------------------------

def _linear_task(rng, k: int = 5, q: int = 10):
    """y = a x + b with a random slope and intercept per task."""
    a, b = rng.uniform(-3, 3), rng.uniform(-2, 2)
    x = rng.uniform(-2, 2, size=(k + q, 1))
    y = a * x[:, 0] + b
    return x[:k], y[:k], x[k:], y[k:]


def test_maml_regression_learns_an_initialisation_that_adapts():
    def build():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 1)).double()
        return MAML(model, inner_steps=2, inner_lr=0.1, meta_lr=1e-2, tasks_per_step=4, loss_fn=squared_error,
                    device="cpu")

    rng = np.random.default_rng(123)
    new_tasks = [_linear_task(rng) for _ in range(30)]

    def mse(method, steps=None):
        if steps is not None:
            method.test_inner_steps = steps
        errors = [np.mean((method.adapt(sx, sy).predict(qx) - qy) ** 2) for sx, sy, qx, qy in new_tasks]
        method.test_inner_steps = method.inner_steps
        return float(np.mean(errors))

    method = build()
    from_scratch = mse(method)  # the random initialisation, adapted
    method.meta_train_tasks(_linear_task, meta_steps=150)  # a callable: rng -> task
    unadapted, adapted = mse(method, steps=0), mse(method)
    assert adapted < 0.25 * unadapted, (adapted, unadapted)
    assert adapted < 0.5 * from_scratch, (adapted, from_scratch)
    regressor = method.adapt(*new_tasks[0][:2])  # a regression loss: adapt gives a regressor
    assert isinstance(regressor, RegressionAdapted)
    prediction = regressor.predict(new_tasks[0][2])
    assert prediction.shape == (10,) and prediction.dtype == np.float64
    assert len(method.history) == 150 and method.tasks_seen == 600
    with pytest.raises(ValueError, match="one target per support example"):
        method.adapt(new_tasks[0][0], new_tasks[0][1][:3])
    with pytest.raises(ValueError, match="use meta_train_tasks"):
        method.meta_train(X[:100], Y[:100], meta_steps=1)
    # the same tasks as a fixed list, sampled with the method's seed, are reproducible
    a = build().meta_train_tasks(new_tasks, meta_steps=3).history
    assert a == build().meta_train_tasks(new_tasks, meta_steps=3).history


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("name", sorted(METHODS))
def test_runs_on_cuda(name):
    method = METHODS[name]()
    method.to("cuda")
    method.meta_train(X, Y, meta_steps=3)
    assert method.adapt(X[:5], np.arange(5)).predict_proba(X[5:8]).shape == (3, 5)
    grad = method.meta_gradient([(X[:5], np.arange(5), X[5:10], np.arange(5))])
    assert all(g.device.type == "cuda" for g in grad.values())


@pytest.mark.parametrize("module_name", ["gradient", "metric"])
def test_a_second_meta_train_call_continues_with_new_episodes(monkeypatch, module_name):
    import importlib

    from metaecom.methods.metric import ProtoNet

    module = importlib.import_module(f"metaecom.methods.{module_name}")
    drawn = []

    class Recording(FewShotSampler):
        def sample(self):
            episode = super().sample()
            drawn.append(tuple(episode.support))
            return episode

    monkeypatch.setattr(module, "FewShotSampler", Recording)
    if module_name == "gradient":
        method = ANIL(nn.Linear(32, 5), n_way=5, k_shot=1, n_query=2, tasks_per_step=1, device="cpu")
    else:
        method = ProtoNet(nn.Linear(32, 8), n_way=5, k_shot=1, n_query=2, device="cpu")
    method.meta_train(X[IS_TRAIN], Y[IS_TRAIN], meta_steps=2)
    first_call = list(drawn)
    method.meta_train(X[IS_TRAIN], Y[IS_TRAIN], meta_steps=2)
    assert len(drawn) == 4 and drawn[2:] != first_call  # no replay of the first call's episodes
    drawn.clear()
    fresh = type(method)(method.encoder if module_name == "metric" else nn.Linear(32, 5), n_way=5, k_shot=1,
                         n_query=2, device="cpu", **({"tasks_per_step": 1} if module_name == "gradient" else {}))
    fresh.meta_train(X[IS_TRAIN], Y[IS_TRAIN], meta_steps=2)
    assert drawn == first_call  # the first call is unchanged: same seed, same episodes


def _regressor(cls=MAML, inner_lr=0.05, **kwargs):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(1, 16), nn.Tanh(), nn.Linear(16, 1)).double()
    return cls(model, inner_lr=inner_lr, loss_fn=squared_error, device="cpu", **kwargs)


@pytest.mark.parametrize("cls,kwargs", [(MAML, {}), (ANIL, {}), (MetaSGD, {}),
                                        (Reptile, {"inner_optimizer": "sgd"}),
                                        (Reptile, {"inner_optimizer": "adam"})])
def test_adapted_after_equals_adapting_once_per_step_count(cls, kwargs):
    method = _regressor(cls, **kwargs)
    sx, sy, qx, _ = _linear_task(np.random.default_rng(5))
    snapshots = method.adapted_after(sx, sy, [5, 0, 2])
    assert sorted(snapshots) == [0, 2, 5] and method.test_inner_steps == method.inner_steps
    for steps, adapted in snapshots.items():
        method.test_inner_steps = steps
        np.testing.assert_allclose(adapted.predict(qx), method.adapt(sx, sy).predict(qx), atol=1e-10)
    assert not np.allclose(snapshots[0].predict(qx), snapshots[5].predict(qx))
    with pytest.raises(ValueError, match="steps is empty"):
        method.adapted_after(sx, sy, [])


def test_adapted_after_on_a_classifier_gives_classifiers():
    torch.manual_seed(0)
    method = MAML(nn.Sequential(nn.Linear(4, 3)), n_way=3, inner_lr=0.5, device="cpu")
    rng = np.random.default_rng(0)
    sx, sy = rng.normal(size=(6, 4)).astype(np.float32), np.repeat(np.arange(3), 2)
    snapshots = method.adapted_after(sx, sy, [0, 3])
    method.test_inner_steps = 3
    np.testing.assert_allclose(snapshots[3].predict_proba(sx), method.adapt(sx, sy).predict_proba(sx),
                               atol=1e-6)


def test_choose_test_steps_picks_the_count_with_the_lowest_median_validation_error():
    from metaecom.methods import choose_test_steps
    rng = np.random.default_rng(1)
    tasks = [_linear_task(rng) for _ in range(8)]
    method = _regressor()
    scores = choose_test_steps(method, tasks, choices=(0, 1, 20))
    assert sorted(scores) == [0, 1, 20]
    assert method.test_inner_steps == min(scores, key=scores.get) == 20  # from a random start, more helps
    # by hand: the median over tasks of the RMSE after 1 step
    method.test_inner_steps = 1
    by_hand = np.median([np.sqrt(np.mean((method.adapt(sx, sy).predict(qx) - qy) ** 2))
                         for sx, sy, qx, qy in tasks])
    assert scores[1] == pytest.approx(by_hand)
    # a diverging step size: the larger counts score infinitely badly, never chosen
    wild = _regressor(inner_lr=50.0)
    assert choose_test_steps(wild, tasks, choices=(0, 20)) and wild.test_inner_steps == 0
    with pytest.raises(ValueError, match="at least one validation task"):
        choose_test_steps(method, [])


@pytest.mark.parametrize("cls,kwargs", [(MAML, {}), (ANIL, {}), (MetaSGD, {}),
                                        (Reptile, {"inner_optimizer": "adam"})])
def test_an_empty_support_set_predicts_with_the_start(cls, kwargs):
    # K = 0 (a product with no sales yet): nothing to adapt to, so every step count gives
    # the meta-learned start itself
    method = _regressor(cls, **kwargs)
    sx, sy, qx, _ = _linear_task(np.random.default_rng(6))
    empty_x, empty_y = sx[:0], sy[:0]
    start = method.adapt(empty_x, empty_y).predict(qx)
    method.test_inner_steps = 0
    np.testing.assert_allclose(start, method.adapt(sx, sy).predict(qx), atol=1e-10)
    for adapted in method.adapted_after(empty_x, empty_y, [0, 3]).values():
        np.testing.assert_allclose(adapted.predict(qx), start)
    with pytest.raises(ValueError, match="support_x must be an array"):
        method.adapt(np.zeros(0), np.zeros(0))


def test_choose_test_steps_by_the_mean_lets_the_large_errors_decide():
    from metaecom.methods import choose_test_steps
    rng = np.random.default_rng(3)
    small = [_linear_task(rng) for _ in range(5)]
    # three tasks whose targets are 100 times larger: adapting matters most there
    large = [(sx, 100 * sy, qx, 100 * qy) for sx, sy, qx, qy in (_linear_task(rng) for _ in range(3))]
    method = _regressor()
    by_mean = choose_test_steps(method, small + large, choices=(0, 1), statistic="mean")
    method.test_inner_steps = 1
    errors = [np.sqrt(np.mean((method.adapt(sx, sy).predict(qx) - qy) ** 2)) for sx, sy, qx, qy in small + large]
    assert by_mean[1] == pytest.approx(np.mean(errors))
    with pytest.raises(ValueError, match='statistic must be "median" or "mean"'):
        choose_test_steps(method, small, statistic="max")


def test_maml_meta_trains_on_empty_support_sets_by_the_loop_and_the_vectorised_path_alike():
    # K = 0: no inner step, so the meta-gradient trains the start itself to forecast
    def tasks(seed):
        rng = np.random.default_rng(seed)
        while True:
            x = rng.random((8, 3)).astype(np.float32)
            yield x[:0], x[:0, 0], x, (x.sum(axis=1) + 2).astype(np.float32)

    probe = next(tasks(1))
    results = []
    for vectorize in (False, True):
        torch.manual_seed(0)
        method = MAML(torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1)),
                      inner_lr=0.1, inner_steps=2, tasks_per_step=5, vectorize=vectorize, meta_lr=0.01,
                      loss_fn=squared_error)
        before = np.mean((method.adapt(probe[0], probe[1]).predict(probe[2]) - probe[3]) ** 2)
        method.meta_train_tasks(tasks(0), meta_steps=100)
        results.append(method.adapt(probe[0], probe[1]).predict(probe[2]))
        after = np.mean((results[-1] - probe[3]) ** 2)
        assert after < before / 4
    np.testing.assert_allclose(results[0], results[1], rtol=1e-4, atol=1e-5)
