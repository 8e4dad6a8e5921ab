"""Tasks as channel groups: the grouped meta-gradient equals the per-task loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from metaecom.methods.optimization import ANIL, FOMAML, MAML, MetaSGD, functional_forward
from metaecom.methods.task_groups import grouped_forward, layer_chain
from metaecom.models import Conv4


def _conv_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(Conv4(hidden=8), nn.Linear(8, 3)).double()


def _image_tasks(n: int, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(6, 1, 28, 28, generator=g, dtype=torch.float64), torch.arange(3).repeat(2),
             torch.rand(9, 1, 28, 28, generator=g, dtype=torch.float64), torch.arange(3).repeat(3))
            for _ in range(n)]


def _relative(a: dict, b: dict) -> float:
    x = torch.cat([a[n].flatten() for n in a])
    y = torch.cat([b[n].flatten() for n in a])
    return ((x - y).norm() / x.norm()).item()


@pytest.mark.parametrize("cls,steps", [(MAML, 1), (MAML, 3), (FOMAML, 2), (ANIL, 2), (MetaSGD, 1)])
def test_grouped_meta_gradient_equals_the_per_task_loop_on_conv4(cls, steps):
    method = cls(_conv_model(), n_way=3, inner_steps=steps, inner_lr=0.3, device="cpu")
    tasks = _image_tasks(4)
    loop = method.meta_gradient(tasks)
    value, grouped = method.grouped_meta_gradient(tasks)
    assert value == pytest.approx(method.meta_loss(tasks).item(), rel=1e-12)
    assert set(grouped) == set(loop)
    assert _relative(loop, grouped) < 1e-10


def test_each_group_computes_its_own_tasks_network_with_its_own_batch_statistics():
    model = _conv_model()
    chain = layer_chain(model)
    params = dict(model.named_parameters())
    torch.manual_seed(3)
    weights = {n: torch.stack([p + 0.1 * t * torch.randn_like(p) for t in range(3)]) for n, p in params.items()}
    x = torch.rand(3, 5, 1, 28, 28, dtype=torch.float64)
    out = grouped_forward(chain, weights, x)
    assert out.shape == (3, 5, 3)
    for t in range(3):
        expected = functional_forward(model, {n: w[t] for n, w in weights.items()}, dict(model.named_buffers()), x[t])
        torch.testing.assert_close(out[t], expected, rtol=1e-10, atol=1e-12)


def test_grouped_regression_on_a_multilayer_perceptron():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 1)).double()
    method = MAML(model, inner_steps=2, inner_lr=0.05, task="regression", device="cpu")
    rng = np.random.default_rng(0)
    tasks = [(rng.normal(size=(5, 2)), rng.normal(size=5), rng.normal(size=(7, 2)), rng.normal(size=7))
             for _ in range(3)]
    value, grouped = method.grouped_meta_gradient(tasks)
    assert value == pytest.approx(method.meta_loss(tasks).item(), rel=1e-12)
    assert _relative(method.meta_gradient(tasks), grouped) < 1e-10


def test_meta_training_through_groups_follows_the_loop():
    def train(vectorize):
        method = MAML(_conv_model(), n_way=3, k_shot=1, n_query=2, meta_batch=3, inner_lr=0.3, device="cpu",
                      vectorize=vectorize)
        rng = np.random.default_rng(2)
        x, y = rng.random(size=(60, 1, 28, 28)), np.repeat(np.arange(6), 10)
        return method.meta_train(x, y, episodes=3).history

    np.testing.assert_allclose(train("groups"), train(False), rtol=1e-10)


def test_unsupported_layers_and_options_are_named():
    torch.manual_seed(0)
    tanh = MAML(nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2)).double(), n_way=2, k_shot=1, n_query=1,
                device="cpu", vectorize="groups")
    task = (np.zeros((2, 4)), np.arange(2), np.zeros((2, 4)), np.arange(2))
    with pytest.raises(ValueError, match="layer '1' \\(Tanh\\)"):
        tanh.grouped_meta_gradient([task, task])
    with pytest.raises(ValueError, match="identical shapes"):
        tanh.grouped_meta_gradient([task, (np.zeros((4, 4)), np.repeat(np.arange(2), 2), np.zeros((2, 4)), np.arange(2))])
    with pytest.raises(ValueError, match="ungrouped"):
        layer_chain(nn.Sequential(nn.Conv2d(4, 4, 3, groups=2)))
    with pytest.raises(ValueError, match="vectorize must be"):
        MAML(nn.Sequential(nn.Linear(4, 2)), n_way=2, vectorize="fast")
