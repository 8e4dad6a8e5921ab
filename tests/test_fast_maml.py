"""The fast MAML paths (vmap, and tasks as channel groups): the same meta-gradient as the per-task loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from metaecom.methods import ANIL, FOMAML, MAML, MetaSGD, Reptile, squared_error
from metaecom.methods.fast_maml import (PlainBatchNorm, batch_norm_free_model, grouped_forward, grouped_meta_gradient,
                                        layer_chain, stacked_tasks, vmap_meta_gradient)
from metaecom.methods.functional import functional_forward
from metaecom.models import Conv4


# --- vmap -------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [MAML, FOMAML, ANIL, MetaSGD])
def test_vectorized_meta_gradient_equals_the_per_task_loop_with_batch_norm(cls):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3)).double()
    method = cls(model, n_way=3, k_shot=2, n_query=2, inner_steps=2, inner_lr=0.3, device="cpu")
    rng = np.random.default_rng(1)
    tasks = [(rng.normal(size=(6, 6)), np.repeat(np.arange(3), 2), rng.normal(size=(6, 6)), np.repeat(np.arange(3), 2))
             for _ in range(3)]
    loop = method.meta_gradient(tasks)
    value, vectorized = vmap_meta_gradient(method, tasks)
    assert value == pytest.approx(method.meta_loss(tasks).item(), rel=1e-12)
    a = torch.cat([loop[n].flatten() for n in loop])
    b = torch.cat([vectorized[n].flatten() for n in loop])
    assert ((a - b).norm() / a.norm()).item() < 1e-10


def test_vectorized_meta_training_follows_the_same_path_as_the_loop():
    def train(vectorize):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)).double()
        method = MAML(model, n_way=3, k_shot=2, n_query=2, inner_steps=1, tasks_per_step=3, device="cpu",
                      vectorize=vectorize)
        rng = np.random.default_rng(2)
        x, y = rng.normal(size=(60, 6)), np.repeat(np.arange(6), 10)
        return method.meta_train(x, y, meta_steps=4).history

    np.testing.assert_allclose(train(True), train(False), rtol=1e-10)


def test_vectorized_path_rejects_tasks_of_different_shapes_and_reptile():
    torch.manual_seed(0)
    method = MAML(nn.Sequential(nn.Linear(4, 2)).double(), n_way=2, k_shot=1, n_query=1, device="cpu")
    a = (np.zeros((2, 4)), np.arange(2), np.zeros((2, 4)), np.arange(2))
    b = (np.zeros((4, 4)), np.repeat(np.arange(2), 2), np.zeros((2, 4)), np.arange(2))
    with pytest.raises(ValueError, match="identical shapes"):
        vmap_meta_gradient(method, [a, b])
    with pytest.raises(ValueError, match="identical shapes"):
        stacked_tasks(method, [a, b])
    # only the MAML family has a vectorized path: Reptile takes no vectorize argument
    with pytest.raises(TypeError, match="vectorize"):
        Reptile(nn.Sequential(nn.Linear(4, 2)), n_way=2, k_shot=1, n_query=1, vectorize=True)


def test_the_vmap_model_swaps_batch_norm_for_the_plain_formula():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3)).double()
    method = MAML(model, n_way=3, device="cpu")
    clone = batch_norm_free_model(method)
    assert batch_norm_free_model(method) is clone  # made once per method
    assert isinstance(clone[1], PlainBatchNorm) and isinstance(method.model[1], nn.BatchNorm1d)
    assert [n for n, _ in clone.named_parameters()] == [n for n, _ in model.named_parameters()]
    x = torch.randn(10, 8, dtype=torch.float64)
    expected = torch.nn.functional.batch_norm(x, None, None, model[1].weight, model[1].bias, training=True,
                                              eps=model[1].eps)
    torch.testing.assert_close(clone[1](x), expected, rtol=1e-12, atol=1e-12)


# --- tasks as channel groups -------------------------------------------------------------

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
    value, grouped = grouped_meta_gradient(method, tasks)
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
    method = MAML(model, inner_steps=2, inner_lr=0.05, loss_fn=squared_error, device="cpu")
    rng = np.random.default_rng(0)
    tasks = [(rng.normal(size=(5, 2)), rng.normal(size=5), rng.normal(size=(7, 2)), rng.normal(size=7))
             for _ in range(3)]
    value, grouped = grouped_meta_gradient(method, tasks)
    assert value == pytest.approx(method.meta_loss(tasks).item(), rel=1e-12)
    assert _relative(method.meta_gradient(tasks), grouped) < 1e-10


def test_meta_training_through_groups_follows_the_loop():
    def train(vectorize):
        method = MAML(_conv_model(), n_way=3, k_shot=1, n_query=2, tasks_per_step=3, inner_lr=0.3, device="cpu",
                      vectorize=vectorize)
        rng = np.random.default_rng(2)
        x, y = rng.random(size=(60, 1, 28, 28)), np.repeat(np.arange(6), 10)
        return method.meta_train(x, y, meta_steps=3).history

    np.testing.assert_allclose(train("groups"), train(False), rtol=1e-10)


def test_unsupported_layers_and_options_are_named():
    torch.manual_seed(0)
    tanh = MAML(nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2)).double(), n_way=2, k_shot=1, n_query=1,
                device="cpu", vectorize="groups")
    task = (np.zeros((2, 4)), np.arange(2), np.zeros((2, 4)), np.arange(2))
    with pytest.raises(ValueError, match="layer '1' \\(Tanh\\)"):
        grouped_meta_gradient(tanh, [task, task])
    with pytest.raises(ValueError, match="identical shapes"):
        grouped_meta_gradient(tanh, [task, (np.zeros((4, 4)), np.repeat(np.arange(2), 2), np.zeros((2, 4)), np.arange(2))])
    with pytest.raises(ValueError, match="ungrouped"):
        layer_chain(nn.Sequential(nn.Conv2d(4, 4, 3, groups=2)))
    with pytest.raises(ValueError, match="vectorize must be"):
        MAML(nn.Sequential(nn.Linear(4, 2)), n_way=2, vectorize="fast")


def test_moving_a_vmap_maml_rebuilds_its_model_copy_on_the_new_device():
    torch.manual_seed(0)
    method = MAML(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)), n_way=3, k_shot=1, n_query=2,
                  tasks_per_step=2, vectorize="vmap", device="cpu")
    rng = np.random.default_rng(0)
    task = (rng.normal(size=(3, 4)), np.arange(3), rng.normal(size=(6, 4)), np.repeat(np.arange(3), 2))
    method.meta_train_tasks([task, task], meta_steps=1)
    assert "_vmap_model" in method.__dict__        # the vmap path keeps a copy of the model
    method.to("cpu")
    assert "_vmap_model" not in method.__dict__    # dropped, so the next step builds it on the new device
    method.meta_train_tasks([task, task], meta_steps=1)
    assert all(t.device.type == "cpu" for t in method.__dict__["_vmap_model"].parameters())
