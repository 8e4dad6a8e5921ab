"""Memory-based methods: attention reads, the MANN's memory operations, CNPs, short training runs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from metaecom.methods import accuracy
from metaecom.methods.memory import (CNP, MANN, AttentionMemory, CNPClassifier, CNPRegressor, MANNClassifier,
                                     accuracy_by_instance, attention_read, attention_weights, content_weights,
                                     gaussian_nll, labels_one_step_late, least_used, lrua_write, update_usage)
from metaecom.methods.metric import MatchingNet
from metaecom.tasks import FewShotSampler

from conftest import clustered_classes

X, Y = clustered_classes()
TRAIN, TEST = np.arange(20), np.arange(20, 30)
IN_TRAIN = np.isin(Y, TRAIN)


def _tiny_mann(n_way: int = 5, seed: int = 0, **kwargs) -> MANN:
    torch.manual_seed(seed)
    settings = dict(controller=32, memory_slots=16, memory_width=16, read_heads=1, encoder_dim=16)
    return MANN(32, n_way, **{**settings, **kwargs})


# --- attention over a key-value memory -------------------------------------------------

def test_attention_read_equals_a_hand_computed_softmax():
    query = torch.tensor([[1.0, 0.0]])
    keys = torch.tensor([[2.0, 0.0], [1.0, 1.0]])      # cosines with the query: 1 and 1/sqrt(2)
    values = torch.tensor([[10.0, 0.0], [0.0, 4.0]])
    a, b = math.exp(1 / 0.5), math.exp(1 / math.sqrt(2) / 0.5)
    expected = torch.tensor([[10 * a / (a + b), 4 * b / (a + b)]])
    torch.testing.assert_close(attention_read(query, keys, values, temperature=0.5), expected)
    # dot-product similarity: softmax of (2, 1) / temperature
    a, b = math.exp(2 / 0.5), math.exp(1 / 0.5)
    torch.testing.assert_close(attention_read(query, keys, values, temperature=0.5, similarity="dot"),
                               torch.tensor([[10 * a / (a + b), 4 * b / (a + b)]]))


def test_attention_read_shapes_with_and_without_a_batch_dimension():
    q, k, v = torch.randn(3, 4, 8), torch.randn(3, 6, 8), torch.randn(3, 6, 5)
    out = attention_read(q, k, v)
    assert out.shape == (3, 4, 5)
    for i in range(3):
        torch.testing.assert_close(out[i], attention_read(q[i], k[i], v[i]))
    assert attention_weights(q[0], k[0]).shape == (4, 6)
    with pytest.raises(ValueError, match="query keys have width 7 but memory keys have width 8"):
        attention_read(torch.randn(4, 7), k[0], v[0])
    with pytest.raises(ValueError, match="memory has 6 keys but 5 values"):
        attention_read(q[0], k[0], v[0, :5])
    with pytest.raises(ValueError, match="with a leading batch dimension"):
        attention_read(q, k[0], v[0])
    with pytest.raises(ValueError, match="batch sizes differ"):
        attention_read(q, k[:2], v[:2])
    with pytest.raises(ValueError, match="similarity must be one of"):
        attention_read(q[0], k[0], v[0], similarity="euclidean")


def test_attention_memory_write_read_round_trip():
    memory = AttentionMemory(temperature=0.01)
    with pytest.raises(ValueError, match="the memory is empty"):
        memory.read(torch.randn(1, 4))
    keys = torch.eye(4)[:3] * torch.tensor([[2.0], [0.5], [3.0]])  # orthogonal keys of different lengths
    values = torch.randn(3, 6)
    memory.write(keys[:2], values[:2]).write(keys[2:], values[2:])
    assert len(memory) == 3
    # a query matching one key (cosine 1 vs 0, temperature 0.01) reads back that key's value
    torch.testing.assert_close(memory.read(torch.eye(4)[[2, 0]] * 7), values[[2, 0]])
    with pytest.raises(ValueError, match="the memory holds keys of width 4"):
        memory.write(torch.randn(1, 5), torch.randn(1, 6))
    with pytest.raises(ValueError, match="the same n"):
        memory.write(torch.randn(2, 4), torch.randn(3, 6))
    assert len(memory.clear()) == 0


def test_matching_net_reads_its_support_set_as_a_memory():
    method = MatchingNet(nn.Linear(8, 8), temperature=0.2, device="cpu")
    support_z, query_z, support_y = torch.randn(10, 8), torch.randn(4, 8), torch.arange(5).repeat(2)
    cosine = F.normalize(query_z, dim=1) @ F.normalize(support_z, dim=1).T
    expected = torch.softmax(cosine / 0.2, dim=1) @ F.one_hot(support_y, 5).float()
    assert torch.equal(method.probabilities(support_z, support_y, query_z, 5), expected)


# --- the MANN's memory operations --------------------------------------------------------

def test_least_used_and_usage_update():
    usage = torch.tensor([[0.5, 0.1, 0.9, 0.1], [0.0, 2.0, 1.0, 3.0]])
    assert least_used(usage, 1).tolist() == [[0, 1, 0, 0], [1, 0, 0, 0]]  # ties: the lower slot
    assert least_used(usage, 2).tolist() == [[0, 1, 0, 1], [1, 0, 1, 0]]
    with pytest.raises(ValueError, match="n must be between 1"):
        least_used(usage, 5)
    read, write = torch.rand(2, 3, 4), torch.rand(2, 3, 4)
    torch.testing.assert_close(update_usage(usage, read, write, 0.9), 0.9 * usage + read.sum(1) + write.sum(1))


def test_lrua_erases_and_writes_the_least_used_slot():
    memory = torch.arange(12.0).view(1, 4, 3) + 1
    usage = torch.tensor([[0.5, 0.1, 0.9, 0.7]])  # slot 1 is least used
    previous_read = torch.tensor([[[0.0, 0.0, 1.0, 0.0]]])
    key = torch.tensor([[[1.0, -2.0, 0.5]]])
    # gate closed (sigmoid(-inf) = 0): everything goes to the least-used slot, which is erased first
    new, weights = lrua_write(memory, usage, previous_read, key, torch.tensor([[-math.inf]]))
    assert weights.tolist() == [[[0.0, 1.0, 0.0, 0.0]]]
    expected = memory.clone()
    expected[0, 1] = key[0, 0]
    assert torch.equal(new, expected)
    # gate open: the key is added where the last read went; the least-used slot is still erased
    new, weights = lrua_write(memory, usage, previous_read, key, torch.tensor([[math.inf]]))
    assert weights.tolist() == [[[0.0, 0.0, 1.0, 0.0]]]
    assert torch.equal(new[0, 2], memory[0, 2] + key[0, 0]) and torch.equal(new[0, 1], torch.zeros(3))
    # half open: sigmoid(0) = 0.5 to each
    _, weights = lrua_write(memory, usage, previous_read, key, torch.zeros(1, 1))
    assert weights.tolist() == [[[0.0, 0.5, 0.5, 0.0]]]


def test_mann_memory_round_trip_write_then_content_read():
    memory = torch.full((2, 5, 4), 1e-6)
    memory[:, 0] = torch.tensor([1.0, 1.0, 0.0, 0.0])  # something else already stored
    usage = torch.tensor([[1.0, 0.2, 0.3, 0.0, 0.4], [1.0, 0.5, 0.0, 0.3, 0.4]])
    vectors = torch.tensor([[[0.3, -0.7, 0.2, 0.9]], [[-0.5, 0.1, 0.8, -0.2]]])
    memory, weights = lrua_write(memory, usage, torch.zeros(2, 1, 5), vectors, torch.full((2, 1), -math.inf))
    assert weights[0, 0].argmax() == 3 and weights[1, 0].argmax() == 2
    read_weights = content_weights(vectors, memory, strength=1000.0)
    reads = read_weights @ memory
    torch.testing.assert_close(reads, vectors)
    # the plain (strength 1) softmax of cosines still favours the matching slot
    assert (content_weights(vectors, memory).argmax(dim=2).squeeze(1) == torch.tensor([3, 2])).all()


def test_labels_arrive_one_step_late():
    late = labels_one_step_late(torch.tensor([[2, 0, 1], [1, 1, 0]]), 3)
    assert late.shape == (2, 3, 3)
    assert late[0].tolist() == [[0, 0, 0], [0, 0, 1], [1, 0, 0]]
    assert late[1].tolist() == [[0, 0, 0], [0, 1, 0], [0, 1, 0]]


# --- the MANN network and method -----------------------------------------------------------

def test_mann_shapes_and_bad_input():
    model = _tiny_mann(read_heads=2)
    labels = torch.randint(0, 5, (3, 7))
    logits, state = model.run(torch.randn(3, 7, 32), labels_one_step_late(labels, 5))
    assert logits.shape == (3, 7, 5)
    assert state.memory.shape == (3, 16, 16) and state.usage.shape == (3, 16)
    assert state.read_weights.shape == (3, 2, 16) and state.reads.shape == (3, 32)
    torch.testing.assert_close(state.read_weights.sum(dim=2), torch.ones(3, 2))
    with pytest.raises(ValueError, match=r"x_seq must be \[batch, steps, \*\(32,\)\]"):
        model(torch.randn(3, 7, 31), labels_one_step_late(labels, 5))
    with pytest.raises(ValueError, match="previous_labels must be one-hot"):
        model(torch.randn(3, 7, 32), torch.zeros(3, 7, 4))
    # a user-given encoder: its output width is found by a dry run
    conv = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                         nn.Flatten())
    images = MANN((1, 8, 8), 3, controller=16, memory_slots=8, memory_width=8, read_heads=1, encoder=conv)
    assert images.encoder_dim == 16
    assert images(torch.randn(2, 4, 1, 8, 8), labels_one_step_late(torch.randint(0, 3, (2, 4)), 3)).shape == (2, 4, 3)
    with pytest.raises(ValueError, match="read_heads"):
        MANN(32, 5, memory_slots=2, read_heads=3)
    with pytest.raises(ValueError, match="n_way must be a positive integer"):
        MANN(32, 0)


def test_mann_adapt_reads_the_support_set_and_branches_per_query():
    method = MANNClassifier(_tiny_mann(), instances=2, device="cpu")
    episode = FewShotSampler(Y, 5, 2, 3, classes=TEST, seed=3).sample()
    adapted = method.adapt(X[episode.support], episode.support_y)
    proba = adapted.predict_proba(X[episode.query])
    assert proba.shape == (15, 5)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    # each query is scored from the saved state on its own: alone or in a batch, the same
    np.testing.assert_allclose(adapted.predict_proba(X[episode.query[4:5]]), proba[4:5], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(adapted.predict_proba(X[episode.query[::-1]]), proba[::-1], rtol=1e-5, atol=1e-6)
    # adapting to another task does not disturb this one (one memory per adapted task)
    method.adapt(X[episode.query], episode.query_y)
    np.testing.assert_array_equal(adapted.predict_proba(X[episode.query]), proba)
    with pytest.raises(ValueError, match="adapts to 5-way tasks; the support set has 3 classes"):
        method.adapt(X[:6], np.array([0, 1, 2, 0, 1, 2]))
    with pytest.raises(ValueError, match=r"support labels must be 0..N-1"):
        method.adapt(X[:5], np.array([0, 1, 2, 3, 5]))
    with pytest.raises(ValueError, match="one label per support example"):
        method.adapt(X[:5], np.arange(4))
    with pytest.raises(ValueError, match="the support set is empty"):
        method.adapt(X[:0], np.arange(0))
    with pytest.raises(ValueError, match=r"feature shape \(31,\) but the MANN was built for \(32,\)"):
        method.adapt(X[:5, :31], np.arange(5))
    with pytest.raises(ValueError, match="feature shape"):
        adapted.predict(X[:2, :31])


def test_accuracy_by_instance_shape():
    result = accuracy_by_instance(_tiny_mann(), X, Y, classes=TEST, n_way=5, instances=3, sequences=7, seed=0,
                                  batch_size=4)
    assert result.shape == (7, 3) and np.isfinite(result).all()
    assert ((result >= 0) & (result <= 1)).all()
    # each entry is a share of the 5 classes
    np.testing.assert_allclose(result * 5, np.round(result * 5), atol=1e-9)


def test_mann_learns_to_recall_labels_of_new_classes():
    # Calibrated: a MANN sits for a long while on a plateau where it only learns which labels
    # a sequence has not used yet (about 0.47 on the 2nd+ instance of 3-way sequences); large
    # batches and lr 1e-2 get this tiny one past it within 200 steps (0.68-0.78 over four seeds).
    method = MANNClassifier(_tiny_mann(n_way=3), instances=4, batch_size=128, lr=1e-2, seed=0, device="cpu")
    method.meta_train(X[IN_TRAIN], Y[IN_TRAIN], episodes=200)
    assert len(method.history) == 200 and method.episodes_seen == 128 * 200
    by_instance = accuracy_by_instance(method, X, Y, classes=TEST, instances=4, sequences=200, seed=1).mean(axis=0)
    assert by_instance[1:].mean() > 0.6, f"accuracy by instance {np.round(by_instance, 2)} (chance 0.33)"
    # the common interface: read a 3-way 3-shot support set, then label queries
    episodes = FewShotSampler(Y, 3, 3, 5, classes=TEST, seed=2).episodes(20)
    scores = [accuracy(method.adapt(X[e.support], e.support_y), X[e.query], e.query_y) for e in episodes]
    assert np.mean(scores) > 0.55, f"{np.mean(scores):.2f} on 3-way 3-shot tasks (chance 0.33)"


def test_mann_non_finite_loss_names_the_step():
    method = MANNClassifier(_tiny_mann(), instances=2, batch_size=2, device="cpu")
    with pytest.raises(FloatingPointError, match="at training step 1"):
        method.meta_train(np.full_like(X, np.nan), Y, episodes=3)
    with pytest.raises(ValueError, match="one label per row of x"):
        method.meta_train(X, Y[:-1], episodes=1)
    with pytest.raises(ValueError, match=r"feature shape \(31,\)"):
        method.meta_train(X[:, :31], Y, episodes=1)
    with pytest.raises(ValueError, match="asked for 5-way episodes"):
        method.meta_train(X[:80], Y[:80], episodes=1)


# --- Conditional Neural Processes -----------------------------------------------------------

def _linear_task(rng: np.random.Generator, support: int = 5, query: int = 10):
    a, b = rng.uniform(-2, 2, size=2)
    x = rng.uniform(-2, 2, size=(support + query, 1)).astype(np.float32)
    y = (a * x[:, 0] + b).astype(np.float32)
    return x[:support], y[:support], x[support:], y[support:]


def test_cnp_shapes_and_bounded_sigma():
    torch.manual_seed(0)
    model = CNPRegressor(x_dim=2, hidden=16, r_dim=8)
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
    method = CNP(CNPRegressor(x_dim=1, hidden=32, r_dim=32), lr=3e-3, batch_size=16, seed=0, device="cpu")
    method.meta_train_tasks(_linear_task, steps=250)
    assert len(method.history) == 250 and method.tasks_seen == 250 * 16
    assert np.mean(method.history[-25:]) < np.mean(method.history[:25]) - 0.5, method.history[::25]
    sx, sy, qx, qy = _linear_task(np.random.default_rng(123))
    adapted = method.adapt_regression(sx, sy)
    mean, sigma = adapted.predict_distribution(qx)
    assert mean.shape == sigma.shape == (10,) and (sigma >= 0.1).all()
    prior_error = np.mean((method.adapt_regression(sx[:0], sy[:0]).predict(qx) - qy) ** 2)
    assert np.mean((mean - qy) ** 2) < prior_error  # conditioning on the support set helps
    order = np.random.default_rng(0).permutation(len(sx))
    permuted = method.adapt_regression(sx[order], sy[order])
    assert torch.allclose(torch.as_tensor(permuted.predict(qx)), torch.as_tensor(adapted.predict(qx)), atol=1e-6)


def test_cnp_task_sources_and_bad_input():
    method = CNP(CNPRegressor(x_dim=1, hidden=8, r_dim=8), batch_size=2, device="cpu")
    rng = np.random.default_rng(0)
    tasks = [_linear_task(rng, support=s) for s in (1, 3, 5)]  # support sizes differ: padded with a mask
    method.meta_train_tasks(tasks, steps=3)
    method.meta_train_tasks(iter(tasks * 2), steps=3, batch_size=2)
    method.meta_train_tasks((t for t in tasks), steps=1, batch_size=3)
    assert len(method.history) == 7
    with pytest.raises(ValueError, match="the task iterator ran out"):
        method.meta_train_tasks(iter(tasks), steps=2)
    with pytest.raises(ValueError, match="the sequence of tasks is empty"):
        method.meta_train_tasks([], steps=1)
    with pytest.raises(ValueError, match=r"a task is a tuple \(support_x, support_y, query_x, query_y\)"):
        method.meta_train_tasks([tasks[0][:3]], steps=1)
    with pytest.raises(ValueError, match="support_y must be 1-D with one target per example"):
        method.adapt_regression(np.zeros((3, 1)), np.zeros(2))
    with pytest.raises(ValueError, match=r"support_x must be \[examples, 1\]"):
        method.adapt_regression(np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(ValueError, match=r"query_x must be \[examples, 1\]"):
        method.adapt_regression(np.zeros((3, 1)), np.zeros(3)).predict(np.zeros(4))
    with pytest.raises(ValueError, match="use adapt_regression"):
        method.adapt(X[:5], np.arange(5))
    with pytest.raises(ValueError, match="query_x is empty"):
        method.meta_train_tasks([(tasks[0][0], tasks[0][1], np.zeros((0, 1)), np.zeros(0))], steps=1)
    bad = (tasks[0][0], tasks[0][1] * np.nan, tasks[0][2], tasks[0][3])
    assert len(method.history) == 8  # the iterator that ran out still gave one full step
    with pytest.raises(FloatingPointError, match="at step 9"):
        method.meta_train_tasks([bad], steps=2)
    # an empty support set is defined: r = 0, the learned prior
    assert method.adapt_regression(np.zeros((0, 1)), np.zeros(0)).predict(np.zeros((4, 1))).shape == (4,)


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
    method.meta_train(X[IN_TRAIN], Y[IN_TRAIN], episodes=200)
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
    with pytest.raises(FloatingPointError, match="at episode 1"):
        _cnp_classifier().meta_train(np.full_like(X, np.nan), Y, episodes=2)
    with pytest.raises(ValueError, match="pair_features must be one of"):
        _cnp_classifier(pair_features="sum")
