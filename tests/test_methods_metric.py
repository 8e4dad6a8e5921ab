"""Metric-based methods: the math of each scoring rule, and short training runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from metaecom.methods import accuracy
from metaecom.methods.metric import MatchingNet, ProtoNet, RelationNet, SiameseNet, prototypes
from metaecom.models import Conv4
from metaecom.tasks import FewShotSampler

from conftest import clustered_classes

X, Y = clustered_classes()
TRAIN, TEST = np.arange(20), np.arange(20, 30)


def _encoder(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 16))


METHODS = {
    "protonet": lambda: ProtoNet(_encoder(), n_way=5, k_shot=1, n_query=5, device="cpu"),
    "protonet-cosine": lambda: ProtoNet(_encoder(), distance="cosine", n_way=5, k_shot=1, n_query=5, device="cpu"),
    "matching": lambda: MatchingNet(_encoder(), n_way=5, k_shot=1, n_query=5, device="cpu"),
    "relation": lambda: RelationNet(_encoder(), embedding_dim=16, n_way=5, k_shot=1, n_query=5, device="cpu"),
    "siamese": lambda: SiameseNet(_encoder(), embedding_dim=16, n_way=5, k_shot=1, n_query=5, device="cpu"),
}


def _test_accuracy(method, k_shot=1, episodes=30):
    sampler = FewShotSampler(Y, n_way=5, k_shot=k_shot, n_query=10, classes=TEST, seed=7)
    return np.mean([accuracy(method.adapt(X[e.support], e.support_y), X[e.query], e.query_y)
                    for e in sampler.episodes(episodes)])


def test_prototype_is_the_mean_embedding_of_its_class():
    z = torch.randn(12, 4)
    y = torch.tensor([0, 1, 2] * 4)
    centres = prototypes(z, y, 3)
    for k in range(3):
        torch.testing.assert_close(centres[k], z[y == k].mean(dim=0))


def test_protonet_scores_are_negative_squared_distances_to_prototypes():
    method = METHODS["protonet"]()
    support_z, query_z = torch.randn(6, 4), torch.randn(3, 4)
    support_y = torch.tensor([0, 0, 1, 1, 2, 2])
    centres = prototypes(support_z, support_y, 3)
    expected = -((query_z[:, None, :] - centres[None]) ** 2).sum(dim=2)
    torch.testing.assert_close(method.scores(support_z, support_y, query_z, 3), expected)


def test_matching_attention_weights_sum_to_one_per_query():
    method = METHODS["matching"]()
    support_z, query_z = torch.randn(10, 8), torch.randn(4, 8)
    weights = method.attention(support_z, query_z)
    assert weights.shape == (4, 10) and (weights >= 0).all()
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(4))
    support_y = torch.arange(5).repeat(2)
    proba = method.probabilities(support_z, support_y, query_z, 5)
    torch.testing.assert_close(proba.sum(dim=1), torch.ones(4))
    torch.testing.assert_close(proba[:, 0], weights[:, 0] + weights[:, 5])


def test_relation_and_siamese_scores():
    relation = METHODS["relation"]()
    support_z, query_z, support_y = torch.randn(6, 16), torch.randn(3, 16), torch.tensor([0, 0, 1, 1, 2, 2])
    r = relation.relations(support_z, support_y, query_z, 3)
    assert r.shape == (3, 3) and ((r > 0) & (r < 1)).all()
    torch.testing.assert_close(relation.probabilities(support_z, support_y, query_z, 3).sum(dim=1), torch.ones(3))
    siamese = METHODS["siamese"]()
    pair = siamese.pair_logits(support_z, query_z)
    best = siamese.scores(support_z, support_y, query_z, 3)
    torch.testing.assert_close(best[:, 1], torch.maximum(pair[:, 2], pair[:, 3]))


@pytest.mark.parametrize("name", sorted(METHODS))
def test_short_meta_training_beats_chance_on_new_classes(name):
    method = METHODS[name]()
    before = _test_accuracy(method)
    method.meta_train(X[np.isin(Y, TRAIN)], Y[np.isin(Y, TRAIN)], meta_steps=150)
    after = _test_accuracy(method)
    assert after > 0.5, f"{name}: {after:.2f} after meta-training (chance 0.2)"
    assert len(method.history) == 150 and np.all(np.isfinite(method.history))
    assert method.tasks_per_step == 1 and method.tasks_seen == 150 and method.train_seconds > 0
    assert after >= before - 0.05


def test_same_seed_same_result():
    a = METHODS["protonet"]().meta_train(X[:800], Y[:800], meta_steps=20)
    b = METHODS["protonet"]().meta_train(X[:800], Y[:800], meta_steps=20)
    assert a.history == b.history
    episode = FewShotSampler(Y, 5, 1, 5, classes=TEST, seed=1).sample()
    np.testing.assert_array_equal(a.adapt(X[episode.support], episode.support_y).predict_proba(X[episode.query]),
                                  b.adapt(X[episode.support], episode.support_y).predict_proba(X[episode.query]))


def test_conv4_on_omniglot_sized_images():
    torch.manual_seed(0)
    images = torch.rand(10, 1, 28, 28)
    assert Conv4()(images).shape == (10, 64)
    with pytest.raises(ValueError, match=r"images \[batch, channels, height, width\]"):
        Conv4()(torch.rand(10, 28, 28))
    x = np.random.default_rng(0).random((40, 1, 28, 28), dtype=np.float32)
    y = np.repeat(np.arange(8), 5)
    method = ProtoNet(Conv4(), n_way=4, k_shot=1, n_query=2, device="cpu").meta_train(x, y, meta_steps=3)
    adapted = method.adapt(x[[0, 5, 10, 15]], np.arange(4))
    assert adapted.predict_proba(x[20:23]).shape == (3, 4)
    with pytest.raises(ValueError, match=r"feature shape \(1, 32, 32\) but the support set had \(1, 28, 28\)"):
        adapted.predict(np.zeros((2, 1, 32, 32), dtype=np.float32))


def test_bad_input():
    method = METHODS["protonet"]()
    adapted = method.adapt(X[:4], np.array([0, 0, 1, 1]))
    with pytest.raises(ValueError, match=r"query labels \[3\] are not among the support classes 0..1"):
        accuracy(adapted, X[4:6], np.array([0, 3]))
    with pytest.raises(ValueError, match="one label per support example"):
        method.adapt(X[:4], np.array([0, 1]))
    with pytest.raises(ValueError, match="distance must be"):
        ProtoNet(_encoder(), distance="manhattan")
    with pytest.raises(ValueError, match="asked for 5-way episodes"):
        method.meta_train(X[:80], Y[:80], meta_steps=1)  # only 2 classes there
    bad = X[:800].copy()
    bad[0] = np.nan
    with pytest.raises(FloatingPointError, match="ProtoNet: meta-training loss became nan at meta-step 1"):
        METHODS["protonet"]().meta_train(np.full_like(bad, np.nan), Y[:800], meta_steps=5)


def test_several_episodes_per_meta_step():
    method = ProtoNet(_encoder(), n_way=5, k_shot=1, n_query=5, tasks_per_step=3, device="cpu")
    method.meta_train(X[:800], Y[:800], meta_steps=4)
    assert len(method.history) == 4 and method.tasks_seen == 12
    with pytest.raises(ValueError, match="tasks_per_step must be an integer >= 1"):
        ProtoNet(_encoder(), tasks_per_step=0, device="cpu")


def test_moving_the_method_updates_its_device():
    method = ProtoNet(_encoder(), n_way=5, k_shot=1, n_query=5)  # the default device (CUDA when there is one)
    assert method.to("cpu") is method
    assert method.device == torch.device("cpu")
    assert all(p.device.type == "cpu" for p in method.encoder.parameters())
    adapted = method.adapt(X[:5], np.arange(5))  # the support set is sent to the method's device
    assert adapted.predict_proba(X[5:8]).shape == (3, 5)
    method.meta_train(X[:800], Y[:800], meta_steps=2)
    assert len(method.history) == 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_runs_on_cuda():
    method = ProtoNet(_encoder(), n_way=5, k_shot=1, n_query=5, device="cuda").meta_train(X, Y, meta_steps=5)
    assert method.adapt(X[:5], np.arange(5)).predict_proba(X[5:8]).shape == (3, 5)


def test_nearest_neighbour_returns_the_class_of_the_most_similar_support_example():
    from metaecom.methods.metric import NearestNeighbour

    support = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.2]])
    adapted = NearestNeighbour().adapt(support, np.array([0, 1, 2]))
    query = np.array([[2.0, 0.1], [0.1, 3.0], [-5.0, 0.0]])
    np.testing.assert_array_equal(adapted.predict(query), [0, 1, 2])
    np.testing.assert_allclose(adapted.predict_proba(query).sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="feature shape"):
        adapted.predict(np.ones((2, 3)))


def test_embedding_plot_draws_points_and_centres():
    import matplotlib

    matplotlib.use("Agg")
    from metaecom.plots import plot_embeddings_2d

    z = np.random.default_rng(0).normal(size=(30, 8))
    ax = plot_embeddings_2d(z, np.repeat(np.arange(3), 10), centres=z[:3])
    assert len(ax.collections) == 3 + 3  # one scatter per class, one star per centre
    with pytest.raises(ValueError, match="one label per row"):
        plot_embeddings_2d(z, np.zeros(5))


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_frozen_prototypes_is_protonets_rule_without_meta_training(distance):
    from metaecom.methods import FrozenPrototypes

    frozen = FrozenPrototypes(distance=distance)
    assert frozen.name == "prototypes, frozen" and not hasattr(frozen, "meta_steps")
    # what the chapters wrote before: a ProtoNet on nn.Identity() that is never meta-trained
    old = ProtoNet(nn.Identity(), distance=distance, scale=10.0, n_way=10, device="cpu")
    sampler = FewShotSampler(Y, n_way=5, k_shot=3, n_query=4, classes=TEST, seed=2)
    for e in sampler.episodes(3):
        ours = frozen.adapt(X[e.support], e.support_y).predict_proba(X[e.query])
        theirs = old.adapt(X[e.support], e.support_y).predict_proba(X[e.query])
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)
    # nearest class mean, by hand
    support, labels = np.array([[0.0, 0.0], [0.0, 2.0], [10.0, 0.0]]), np.array([0, 0, 1])
    assert FrozenPrototypes().adapt(support, labels).predict(np.array([[1.0, 1.0], [8.0, 1.0]])).tolist() == [0, 1]


def test_frozen_prototypes_on_a_fixed_encoder_and_its_checks():
    from metaecom.methods import FrozenPrototypes

    encoder = _encoder(1)
    before = [p.detach().clone() for p in encoder.parameters()]
    method = FrozenPrototypes(encoder, name="prototypes of a fixed MLP")
    sampler = FewShotSampler(Y, n_way=5, k_shot=2, n_query=3, classes=TEST, seed=4)
    e = sampler.sample()
    with torch.no_grad():
        z = encoder(torch.as_tensor(X[e.support]))
    centres = prototypes(z, torch.as_tensor(e.support_y), 5)
    with torch.no_grad():
        expected = (-torch.cdist(encoder(torch.as_tensor(X[e.query])), centres).pow(2)).argmax(dim=1).numpy()
    np.testing.assert_array_equal(method.adapt(X[e.support], e.support_y).predict(X[e.query]), expected)
    assert method.name == "prototypes of a fixed MLP"
    assert all(torch.equal(a, b) for a, b in zip(encoder.parameters(), before))
    with pytest.raises(ValueError, match="distance must be"):
        FrozenPrototypes(distance="manhattan")
