"""The one meta-training loop (metaecom.training.MetaLearner) that every meta-learner inherits."""

import numpy as np
import pytest
import torch
from torch import nn

from metaecom.methods import CNP, MAML, MANN, ProtoNet, Reptile, squared_error
from metaecom.methods.mann import MANNNetwork
from metaecom.models import CNPNetwork
from metaecom.training import MetaLearner


class Mean(MetaLearner):
    """A toy meta-learner: learns one number, the mean of the tasks' query targets."""

    name = "Mean"

    def __init__(self, meta_lr=0.1, tasks_per_step=2, seed=0):
        self.centre = nn.Linear(1, 1, bias=False)
        self._start_training(meta_lr, tasks_per_step, seed, "cpu")

    def modules(self):
        return [self.centre]

    def meta_loss(self, tasks):
        targets = torch.as_tensor(np.concatenate([t[3] for t in tasks]), dtype=torch.float32)
        return ((self.centre.weight[0, 0] - targets) ** 2).mean()


def constant_tasks(value):
    return lambda rng: (np.zeros((1, 1)), np.zeros(1), np.zeros((2, 1)), np.full(2, value, dtype=np.float32))


def test_the_loop_learns_counts_tasks_and_records_history():
    learner = Mean(meta_lr=0.1, tasks_per_step=3)
    learner.meta_train_tasks(constant_tasks(2.0), meta_steps=200)
    assert learner.centre.weight.item() == pytest.approx(2.0, abs=1e-2)
    assert len(learner.history) == 200 and learner.tasks_seen == 600
    assert learner.history[-1] < learner.history[0]
    assert learner.train_seconds > 0
    assert not learner.centre.training  # the loop leaves its modules in eval mode


def test_a_non_finite_loss_names_the_meta_step_and_changes_no_weight():
    learner = Mean()
    learner.meta_train_tasks(constant_tasks(1.0), meta_steps=3)
    before = learner.centre.weight.detach().clone()
    with pytest.raises(FloatingPointError, match=r"Mean: meta-training loss became nan at meta-step 4"):
        learner.meta_train_tasks(constant_tasks(float("nan")), meta_steps=2)
    assert torch.equal(learner.centre.weight.detach(), before)
    assert len(learner.history) == 3


def test_a_time_budget_stops_the_loop_early():
    learner = Mean()
    learner.meta_train_tasks(constant_tasks(1.0), meta_steps=10**6, max_seconds=0.2)
    assert 0 < len(learner.history) < 10**6


def test_bad_settings_are_refused_before_any_work():
    with pytest.raises(ValueError, match="meta_lr must be a positive number"):
        Mean(meta_lr=0)
    with pytest.raises(ValueError, match="tasks_per_step must be an integer >= 1"):
        Mean(tasks_per_step=0)
    with pytest.raises(ValueError, match="meta_steps must be an integer >= 0"):
        Mean().meta_train_tasks(constant_tasks(1.0), meta_steps=-1)
    with pytest.raises(ValueError, match="meta_step needs at least one task"):
        Mean().meta_step([])


def test_every_meta_learner_shares_the_names_of_the_loop():
    def task(rng):
        x = rng.normal(size=(6, 2)).astype(np.float32)
        return x[:3], x[:3, 0], x[3:], x[3:, 0]

    learners = [
        MAML(nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1)), loss_fn=squared_error,
             tasks_per_step=3, device="cpu"),
        Reptile(nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1)), loss_fn=squared_error,
                tasks_per_step=3, meta_lr=0.5, device="cpu"),
        CNP(CNPNetwork(x_dim=2, hidden=8, r_dim=8), tasks_per_step=3, device="cpu"),
    ]
    for learner in learners:
        assert isinstance(learner, MetaLearner)
        learner.meta_train_tasks(task, meta_steps=2)
        assert (len(learner.history), learner.tasks_seen) == (2, 6), learner.name
        prediction = learner.adapt(*task(np.random.default_rng(1))[:2]).predict(np.zeros((4, 2), np.float32))
        assert prediction.shape == (4,)
    x = np.random.default_rng(0).normal(size=(60, 4)).astype(np.float32)
    y = np.repeat(np.arange(6), 10)
    for learner in [ProtoNet(nn.Linear(4, 4), n_way=3, k_shot=1, n_query=2, tasks_per_step=2, device="cpu"),
                    MANN(MANNNetwork((4,), n_way=3, controller=8, memory_slots=4, memory_width=4, read_heads=1),
                         instances=2, tasks_per_step=2, device="cpu")]:
        learner.meta_train(x, y, meta_steps=2)
        assert (len(learner.history), learner.tasks_seen) == (2, 4), learner.name


def test_the_public_api_lists_every_method():
    import metaecom.methods as methods

    for name in ["MAML", "FOMAML", "ANIL", "MetaSGD", "Reptile", "ProtoNet", "MatchingNet", "RelationNet",
                 "SiameseNet", "MANN", "CNP", "CNPClassifier", "LinearProbe", "FineTune", "EncoderFineTune"]:
        assert name in methods.__all__ and hasattr(methods, name)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_meta_learner_moved_to_the_gpu_trains_there():
    learner = ProtoNet(nn.Linear(4, 4), n_way=3, k_shot=1, n_query=2, device="cpu").to("cuda")
    assert learner.device.type == "cuda"
    x = np.random.default_rng(0).normal(size=(60, 4)).astype(np.float32)
    learner.meta_train(x, np.repeat(np.arange(6), 10), meta_steps=2)
    assert next(learner.encoder.parameters()).device.type == "cuda"
