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
                 "SiameseNet", "MANN", "CNP", "CNPClassifier", "LogisticRegressionHead", "FrozenPrototypes",
                 "FineTune", "EncoderFineTune"]:
        assert name in methods.__all__ and hasattr(methods, name)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_meta_learner_moved_to_the_gpu_trains_there():
    learner = ProtoNet(nn.Linear(4, 4), n_way=3, k_shot=1, n_query=2, device="cpu").to("cuda")
    assert learner.device.type == "cuda"
    x = np.random.default_rng(0).normal(size=(60, 4)).astype(np.float32)
    learner.meta_train(x, np.repeat(np.arange(6), 10), meta_steps=2)
    assert next(learner.encoder.parameters()).device.type == "cuda"


# --- early stopping on validation, for any meta-learner (training.meta_train_with_early_stopping) ---------

def valued_tasks(values):
    """One task per value: its query targets all equal that value."""
    return [(np.zeros((1, 1)), np.zeros(1), np.zeros((2, 1)), np.full(2, v, dtype=np.float32)) for v in values]


def test_early_stopping_when_validation_only_gets_worse_keeps_step_0_and_the_starting_weights_exactly():
    from metaecom.training import meta_train_with_early_stopping

    learner = Mean(meta_lr=0.1)
    start = {k: v.clone() for k, v in learner.centre.state_dict().items()}
    # meta-training pulls the centre towards 2; validation wants it at its starting value
    initial = learner.centre.weight.item()
    result = meta_train_with_early_stopping(learner, lambda: abs(learner.centre.weight.item() - initial),
                                            max_steps=9, every=3, tasks=constant_tasks(2.0))
    assert result.kept_step == 0 and not result.improved
    assert "not improved by meta-training" in str(result)
    assert result.curve["step"].tolist() == [0, 3, 6, 9] and result.trained_steps == 9
    assert result.curve["validation"].is_monotonic_increasing          # it really got worse
    assert len(learner.history) == 9                                   # training happened, then was undone
    for name, value in learner.centre.state_dict().items():
        assert torch.equal(value, start[name])                         # bit for bit


def test_early_stopping_when_validation_improves_keeps_a_later_step_and_its_weights():
    from metaecom.training import meta_train_with_early_stopping

    learner = Mean(meta_lr=0.1)
    weights = {}

    def validate():  # distance to 2 until step 6, then worse (a validation set that disagrees later)
        step = len(learner.history)
        weights[step] = learner.centre.weight.detach().clone()
        return abs(learner.centre.weight.item() - 2.0) + (10.0 if step > 6 else 0.0)

    result = meta_train_with_early_stopping(learner, validate, max_steps=10, every=2, tasks=constant_tasks(2.0))
    assert result.improved and result.kept_step == 6
    assert result.kept_score < result.start_score
    assert torch.equal(learner.centre.weight.detach(), weights[6])
    assert result.curve.attrs["best_step"] == 6 and "kept step 6 of 10" in str(result)


def test_rounds_draw_the_tasks_of_one_uninterrupted_call():
    from metaecom.training import meta_train_with_early_stopping

    class Recording(Mean):
        def meta_loss(self, tasks):
            self.drawn = getattr(self, "drawn", []) + [[float(t[3][0]) for t in tasks]]
            return super().meta_loss(tasks)

    def fresh():
        torch.manual_seed(0)  # the same starting weight for every copy
        return Recording(meta_lr=0.1, tasks_per_step=2, seed=3)

    tasks = valued_tasks(np.arange(12.0))
    whole = fresh()
    whole.meta_train_tasks(tasks, meta_steps=12)
    chunked = fresh()
    # a validation that improves every round keeps the last one, so the weights are the trained ones
    meta_train_with_early_stopping(chunked, lambda: -len(chunked.history), max_steps=12, every=4, tasks=tasks)
    assert chunked.drawn == whole.drawn and len(set(map(tuple, whole.drawn))) > 4
    assert chunked.history == whole.history
    assert torch.equal(chunked.centre.weight, whole.centre.weight)
    # restarting the draws every round (what the cold-start chapter once did) trains on the same batches
    replayed = fresh()
    for _ in range(3):
        replayed.meta_train_tasks(tasks, meta_steps=4)
    assert replayed.drawn[:4] == replayed.drawn[4:8] == whole.drawn[:4] and replayed.history != whole.history


def test_early_stopping_on_labelled_data_and_meta_sgd_rates_are_restored():
    from metaecom.methods import MetaSGD
    from metaecom.training import meta_train_with_early_stopping

    x = np.random.default_rng(0).normal(size=(60, 4)).astype(np.float32)
    y = np.repeat(np.arange(6), 10)
    torch.manual_seed(0)
    protonet = ProtoNet(nn.Linear(4, 4), n_way=3, k_shot=1, n_query=2, device="cpu")
    result = meta_train_with_early_stopping(protonet, lambda: float(len(protonet.history)), max_steps=4, every=2,
                                            x=x, y=y)
    assert result.kept_step == 0 and len(protonet.history) == 4 and protonet.tasks_seen == 4
    meta_sgd = MetaSGD(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)), n_way=3, k_shot=1, n_query=2,
                       tasks_per_step=2, meta_lr=0.05, device="cpu")
    rates = [r.detach().clone() for r in meta_sgd.rates.rates]
    meta_train_with_early_stopping(meta_sgd, lambda: float(len(meta_sgd.history)), max_steps=3, every=1, x=x, y=y)
    assert all(torch.equal(now, before) for now, before in zip(meta_sgd.rates.rates, rates))


def test_early_stopping_refuses_ambiguous_data_and_non_meta_learners():
    from metaecom.methods import NearestNeighbour
    from metaecom.training import meta_train_with_early_stopping

    with pytest.raises(ValueError, match="exactly one"):
        meta_train_with_early_stopping(Mean(), lambda: 0.0, 2, 1)
    with pytest.raises(ValueError, match="exactly one"):
        meta_train_with_early_stopping(Mean(), lambda: 0.0, 2, 1, tasks=constant_tasks(1.0), x=np.zeros((2, 1)))
    with pytest.raises(TypeError, match="not a MetaLearner"):
        meta_train_with_early_stopping(NearestNeighbour(), lambda: 0.0, 2, 1, tasks=constant_tasks(1.0))
