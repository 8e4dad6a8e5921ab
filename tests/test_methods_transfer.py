"""The transfer baselines on a small synthetic problem with a shared structure: classes
are clusters in a low-dimensional subspace, so pretraining on some classes helps with
new ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from metaecom.methods import accuracy, check_query, check_support
from metaecom.methods import Distillation, Ensemble, FineTune, LinearProbe, ParameterAveraging, Scratch, pretrain
from metaecom.models import MLP
from metaecom.tasks import FewShotSampler

from conftest import clustered_classes


X, Y = clustered_classes()
SOURCE = Y < 20


@pytest.fixture(scope="module")
def pretrained():
    return pretrain(X[SOURCE], Y[SOURCE], hidden=32, steps=200, lr=1e-2)


def _mean_accuracy(method, episodes=20, k_shot=5, seed=1, **adapt_kwargs):
    sampler = FewShotSampler(Y, n_way=5, k_shot=k_shot, n_query=10, classes=np.arange(20, 30), seed=seed)
    scores = []
    for episode in sampler.episodes(episodes):
        adapted = method.adapt(X[episode.support], episode.support_y, **adapt_kwargs)
        scores.append(accuracy(adapted, X[episode.query], episode.query_y))
    return float(np.mean(scores))


@pytest.mark.parametrize("make", [
    lambda pre: Scratch(hidden=32, steps=50),
    lambda pre: FineTune(pre, "all", steps=30),
    lambda pre: FineTune(pre, "head", steps=30),
    lambda pre: LinearProbe(),
    lambda pre: LinearProbe(body=pre.body),
    lambda pre: Ensemble([LinearProbe(), FineTune(pre, "head", steps=30)]),
    lambda pre: ParameterAveraging(pre, n_models=3, steps=30),
    lambda pre: Distillation(LinearProbe(), hidden=8, steps=50),
], ids=["scratch", "finetune-all", "finetune-head", "probe", "feature-transfer", "ensemble", "soup", "distill"])
def test_every_method_beats_chance_on_new_classes_and_returns_probabilities(pretrained, make):
    method = make(pretrained)
    assert _mean_accuracy(method) > 0.5  # chance is 0.2
    adapted = method.adapt(X[:10], np.repeat(np.arange(2), 5))
    proba = adapted.predict_proba(X[:7])
    assert proba.shape == (7, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


def test_pretraining_on_source_classes_helps_at_one_shot(pretrained):
    transfer = _mean_accuracy(LinearProbe(body=pretrained.body), k_shot=1, episodes=40)
    scratch = _mean_accuracy(Scratch(hidden=32, steps=50), k_shot=1, episodes=40)
    assert transfer > scratch


def test_fine_tuning_the_head_leaves_the_body_unchanged(pretrained):
    before = [p.clone() for p in pretrained.body.parameters()]
    adapted = FineTune(pretrained, "head", steps=20).adapt(X[:10], np.repeat(np.arange(2), 5))
    for old, new in zip(before, adapted.model.body.parameters()):
        torch.testing.assert_close(old, new)
    moved = FineTune(pretrained, "all", steps=20).adapt(X[:10], np.repeat(np.arange(2), 5))
    assert any(not torch.equal(old, new) for old, new in zip(before, moved.model.body.parameters()))
    for old, new in zip(before, pretrained.body.parameters()):
        torch.testing.assert_close(old, new)  # adapting never changes the pretrained model


def test_parameter_averaging_is_the_mean_of_the_runs(pretrained):
    soup = ParameterAveraging(pretrained, n_models=2, steps=10)
    x, y = X[:10], np.repeat(np.arange(2), 5)
    averaged = soup.adapt(x, y).model
    runs = [run.adapt(x, y).model for run in soup.runs]
    torch.testing.assert_close(averaged.head.weight, (runs[0].head.weight + runs[1].head.weight) / 2)


def test_distillation_uses_the_unlabeled_pool(pretrained):
    teacher = FineTune(pretrained, "all", steps=30)
    with_pool = _mean_accuracy(Distillation(teacher, hidden=8, steps=100), k_shot=1, episodes=20)
    student_alone = _mean_accuracy(Scratch(hidden=8, steps=100), k_shot=1, episodes=20)
    assert with_pool >= student_alone - 0.05  # sanity: not worse than the student alone
    sampler = FewShotSampler(Y, n_way=5, k_shot=1, n_query=10, classes=np.arange(20, 30), seed=3)
    episode = sampler.sample()
    pool = X[episode.query]
    adapted = Distillation(teacher, hidden=8, steps=50).adapt(X[episode.support], episode.support_y, unlabeled_x=pool)
    assert adapted.predict_proba(pool).shape == (len(pool), 5)


def test_same_seed_same_predictions(pretrained):
    x, y = X[:10], np.repeat(np.arange(2), 5)
    a = FineTune(pretrained, "all", steps=20, seed=4).adapt(x, y).predict_proba(X[10:20])
    b = FineTune(pretrained, "all", steps=20, seed=4).adapt(x, y).predict_proba(X[10:20])
    np.testing.assert_array_equal(a, b)


def test_bad_input_gives_clear_errors(pretrained):
    with pytest.raises(ValueError, match="support set is empty"):
        LinearProbe().adapt(np.zeros((0, 32)), np.zeros(0, dtype=int))
    with pytest.raises(ValueError, match=r"0..N-1 with every class present; got \[0, 2\]"):
        Scratch().adapt(X[:4], np.array([0, 0, 2, 2]))
    with pytest.raises(ValueError, match="one label per support example"):
        check_support(X[:4], np.array([0, 1]))
    with pytest.raises(ValueError, match="integer episode labels"):
        check_support(X[:2], np.array([0.0, 1.0]))
    adapted = LinearProbe().adapt(X[:4], np.array([0, 0, 1, 1]))
    with pytest.raises(ValueError, match=r"query labels \[7\] are not among the support classes 0..1"):
        accuracy(adapted, X[:3], np.array([0, 1, 7]))
    with pytest.raises(ValueError, match=r"query_x has feature shape \(5,\) but the support set had \(32,\)"):
        adapted.predict(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="2-D or more"):
        check_query(np.zeros(32), 32)
    with pytest.raises(ValueError, match="the pretrained model expects 32"):
        FineTune(pretrained).adapt(np.zeros((2, 5)), np.array([0, 1]))
    with pytest.raises(RuntimeError, match="call meta_train first"):
        FineTune().adapt(X[:2], np.array([0, 1]))
    with pytest.raises(ValueError, match="layers must be"):
        FineTune(pretrained, layers="middle")


def test_meta_train_pretrains(pretrained):
    method = FineTune(pretrain_steps=20).meta_train(X[SOURCE], Y[SOURCE])
    assert isinstance(method.pretrained, MLP) and method.pretrained.head.out_features == 20


def test_reusing_adapted_members_gives_the_same_predictions(pretrained):
    x, y = X[:10], np.repeat(np.arange(2), 5)
    members = [LinearProbe(), FineTune(pretrained, "head", steps=10)]
    direct = Ensemble(members).adapt(x, y).predict_proba(X[10:20])
    combined = Ensemble.combine([m.adapt(x, y) for m in members]).predict_proba(X[10:20])
    np.testing.assert_allclose(direct, combined)
    student = Distillation(members[0], hidden=8, steps=20)
    a = student.adapt(x, y, unlabeled_x=X[10:20]).predict_proba(X[20:25])
    b = student.adapt(x, y, unlabeled_x=X[10:20], teacher=members[0].adapt(x, y)).predict_proba(X[20:25])
    np.testing.assert_allclose(a, b)
    with pytest.raises(ValueError, match="the adapted teacher has 2 classes, the support set 3"):
        student.adapt(X[:9], np.repeat(np.arange(3), 3), teacher=members[0].adapt(x, y))
    with pytest.raises(ValueError, match="at least one adapted model"):
        Ensemble.combine([])


def test_logistic_regression_head_carries_the_tables_name_and_linear_probe_is_the_same_class():
    from metaecom.methods import LogisticRegressionHead

    assert LinearProbe is LogisticRegressionHead
    assert LogisticRegressionHead().name == "logistic regression"
    assert LogisticRegressionHead(body=nn.Identity()).name == "feature-based transfer"
    assert LogisticRegressionHead(name="LR").name == "LR"
    support_y = np.array([0, 0, 1, 1])
    adapted = LogisticRegressionHead(C=0.5).adapt(X[:4], support_y)
    from sklearn.linear_model import LogisticRegression
    reference = LogisticRegression(C=0.5, max_iter=1000).fit(X[:4], support_y)
    np.testing.assert_allclose(adapted.predict_proba(X[4:9]), reference.predict_proba(X[4:9]), rtol=1e-6)
