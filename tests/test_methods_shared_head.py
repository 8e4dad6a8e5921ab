"""A shared head (UNICORN-MAML): one meta-learned start for every class, any number of classes."""

import numpy as np
import pytest
import torch
from torch import nn

from conftest import clustered_classes
from metaecom.methods import ANIL, MAML, FOMAML, MetaSGD, Reptile, accuracy, squared_error
from metaecom.models import SharedHead
from metaecom.tasks import FewShotSampler


def body_and_head(seed=0, dim=32, hidden=16):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), SharedHead(hidden))


def test_meta_gradient_equals_the_sum_over_per_class_copies():
    # the same network with an ordinary N-row head whose rows all start equal to the shared
    # vector: its meta-gradient, summed over the rows, is the shared head's meta-gradient
    x, y = clustered_classes(n_classes=8, per_class=12, dim=32, seed=1)
    episode = FewShotSampler(y, 4, 2, 3, seed=0).sample()
    task = (x[episode.support], episode.support_y, x[episode.query], episode.query_y)
    shared = body_and_head().double()
    copies = nn.Sequential(nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 4)).double()
    with torch.no_grad():
        copies[0].load_state_dict(shared[0].state_dict())
        copies[2].weight.copy_(shared[2].weight.expand(4, -1))
        copies[2].bias.copy_(shared[2].bias.expand(4))
    g_shared = MAML(shared, n_way=4, inner_steps=2, inner_lr=0.3, device="cpu").meta_gradient([task])
    g_copies = MAML(copies, n_way=4, inner_steps=2, inner_lr=0.3, device="cpu").meta_gradient([task])
    torch.testing.assert_close(g_shared["2.weight"], g_copies["2.weight"].sum(dim=0, keepdim=True))
    torch.testing.assert_close(g_shared["2.bias"], g_copies["2.bias"].sum(dim=0, keepdim=True))
    torch.testing.assert_close(g_shared["0.weight"], g_copies["0.weight"])


def held_out_accuracy(method, x, y, classes, n_way):
    scores = []
    for episode in FewShotSampler(y, n_way, 2, 5, classes=classes, seed=n_way).episodes(10):
        adapted = method.adapt(x[episode.support], episode.support_y)
        assert adapted.predict_proba(x[episode.query]).shape == (len(episode.query), n_way)
        scores.append(accuracy(adapted, x[episode.query], episode.query_y))
    return float(np.mean(scores))


@pytest.mark.parametrize("cls", [MAML, ANIL, MetaSGD])
def test_meta_trained_on_5_way_tasks_it_beats_its_untrained_start_at_any_number_of_classes(cls):
    x, y = clustered_classes(n_classes=40, per_class=20, dim=32, seed=0)
    train, test = np.arange(25), np.arange(25, 40)
    rows = np.isin(y, train)

    def build():
        return cls(body_and_head(), n_way=5, k_shot=1, n_query=5, inner_steps=2, inner_lr=0.5,
                   meta_lr=3e-3, tasks_per_step=4, device="cpu")

    control, method = build(), build().meta_train(x[rows], y[rows], meta_steps=150)
    for n_way in (3, 12):
        trained, untrained = (held_out_accuracy(m, x, y, test, n_way) for m in (method, control))
        assert trained > untrained + 0.05, f"{cls.__name__} {n_way}-way: {trained:.2f} vs {untrained:.2f}"


@pytest.mark.parametrize("cls", [MAML, FOMAML])
def test_the_shared_vector_gets_no_meta_gradient_at_any_order(cls):
    # moving the shared vector moves every class's copy alike, which shifts all logits by
    # the same amount: the softmax, the inner steps and the query loss do not change. So
    # its meta-gradient is zero, first and second order; what meta-training learns is the
    # body (and Meta-SGD's step sizes), and the head's start is "all classes equal".
    x, y = clustered_classes(n_classes=8, per_class=12, dim=32, seed=1)
    episode = FewShotSampler(y, 4, 2, 3, seed=0).sample()
    task = (x[episode.support], episode.support_y, x[episode.query], episode.query_y)
    grads = cls(body_and_head().double(), n_way=4, inner_steps=2, inner_lr=0.3, device="cpu").meta_gradient([task])
    assert grads["2.weight"].abs().max() < 1e-12 and grads["2.bias"].abs().max() < 1e-12
    assert grads["0.weight"].abs().max() > 1e-4  # the body does learn


def test_what_a_shared_head_cannot_do_is_refused_at_construction():
    with pytest.raises(ValueError, match="Reptile moves the initialisation"):
        Reptile(body_and_head(), device="cpu")
    with pytest.raises(ValueError, match="vectorized paths need one head shape"):
        MAML(body_and_head(), vectorize=True, device="cpu")
    with pytest.raises(ValueError, match="SharedHead is a classification head"):
        MAML(body_and_head(), loss_fn=squared_error, device="cpu")
