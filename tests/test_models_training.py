import numpy as np
import pytest
import torch
from torch import nn

from metaecom.models import BatchedMLP
from metaecom.training import fit_regression, train_with_early_stopping


def test_batched_mlp_equals_independent_mlps():
    torch.manual_seed(0)
    model = BatchedMLP(3, (2, 5, 1))
    x = torch.randn(3, 7, 2)
    out = model(x)
    for i in range(3):
        w1, w2 = model.weights[0][i], model.weights[1][i]
        b1, b2 = model.biases[0][i, 0], model.biases[1][i, 0]
        expected = torch.relu(x[i] @ w1 + b1) @ w2 + b2
        torch.testing.assert_close(out[i], expected)


def test_training_models_together_equals_training_each_alone():
    torch.manual_seed(1)
    together = BatchedMLP(2, (1, 8, 1))
    alone = [together.replicate(1, index=i) for i in range(2)]
    x, y = torch.randn(2, 6, 1), torch.randn(2, 6, 1)
    fit_regression(together, x, y, steps=25, lr=0.05)
    for i, model in enumerate(alone):
        fit_regression(model, x[i : i + 1], y[i : i + 1], steps=25, lr=0.05)
        for a, b in zip(model.parameters(), together.parameters()):
            torch.testing.assert_close(a[0], b[i], rtol=1e-5, atol=1e-6)


def test_replicate_copies_one_model():
    torch.manual_seed(2)
    source = BatchedMLP(3, (1, 4, 1))
    copies = source.replicate(5, index=2)
    x = torch.randn(1, 9, 1)
    torch.testing.assert_close(copies(x.expand(5, -1, -1)), source(x.expand(3, -1, -1))[2:3].expand(5, -1, -1))


def test_fit_reduces_error_and_records_checkpoints():
    torch.manual_seed(3)
    x = torch.linspace(-1, 1, 30).reshape(1, 30, 1)
    y = torch.sin(3 * x)
    model = BatchedMLP(1, (1, 32, 32, 1))
    preds = fit_regression(model, x, y, steps=300, lr=0.01, checkpoints=[0, 300], x_eval=x)
    before = np.mean((preds[0] - y.numpy()) ** 2)
    after = np.mean((preds[300] - y.numpy()) ** 2)
    assert set(preds) == {0, 300}
    assert after < 0.05 * before


def test_fit_bad_input():
    model = BatchedMLP(1, (1, 4, 1))
    x, y = torch.zeros(1, 3, 1), torch.zeros(1, 3, 1)
    with pytest.raises(ValueError, match="empty batch"):
        fit_regression(model, x[:, :0], y[:, :0], steps=1, lr=0.1)
    with pytest.raises(ValueError, match="disagree"):
        fit_regression(model, x, torch.zeros(1, 4, 1), steps=1, lr=0.1)
    with pytest.raises(ValueError, match="checkpoints must lie"):
        fit_regression(model, x, y, steps=5, lr=0.1, checkpoints=[10], x_eval=x)
    with pytest.raises(ValueError, match=r"expected input \[n_models=1"):
        model(torch.zeros(2, 3, 1))


def test_non_finite_loss_names_the_step():
    model = BatchedMLP(1, (1, 4, 1))
    x, y = torch.ones(1, 3, 1), torch.full((1, 3, 1), float("inf"))
    with pytest.raises(FloatingPointError, match="at step 1 of 5"):
        fit_regression(model, x, y, steps=5, lr=0.1)


def test_early_stopping_keeps_the_best_round_and_reports_the_curve():
    module = nn.Linear(1, 1, bias=False)
    start = module.weight.item()
    scores = iter([0.5, 0.7, 0.9, 0.6, 0.8])  # before training, then after each round

    def train(steps):
        with torch.no_grad():
            module.weight.add_(float(steps))  # the weight counts the steps trained
        return 1.0 / steps

    curve = train_with_early_stopping(train, lambda: next(scores), [module], max_steps=10, every=3,
                                      higher_is_better=True)
    assert curve["step"].tolist() == [0, 3, 6, 9, 10]
    assert np.isnan(curve["train_loss"][0]) and curve["train_loss"][1] == pytest.approx(1 / 3)
    assert curve.attrs["best_step"] == 6
    assert module.weight.item() == pytest.approx(start + 6)  # restored to the round scored 0.9

    lower = iter([0.5, 0.7, 0.4])
    curve = train_with_early_stopping(train, lambda: next(lower), [module], max_steps=4, every=2)
    assert curve.attrs["best_step"] == 4 and module.weight.item() == pytest.approx(start + 10)

    with pytest.raises(ValueError, match="every must be >= 1"):
        train_with_early_stopping(train, lambda: 0.0, [module], max_steps=3, every=0)
    failing = iter([0.0, float("nan")])
    with pytest.raises(FloatingPointError, match="after 1 steps"):
        train_with_early_stopping(train, lambda: next(failing), [module], max_steps=1, every=1)


def test_best_check_keeps_the_best_check_and_the_start_when_nothing_beats_it():
    from metaecom.training import BestCheck

    module = nn.Linear(3, 1, bias=False)
    best = BestCheck([module], higher_is_better=True)
    for step, score in ((0, 0.5), (10, 0.7), (20, 0.7), (30, 0.6)):
        with torch.no_grad():
            module.weight.fill_(step)
        best.check(step, score)
    best.restore()
    assert best.best_step == 10 and module.weight.tolist() == [[10.0] * 3]  # a tie keeps the earlier step
    start = BestCheck([module])  # lower is better
    start.check(0, 0.1)
    with torch.no_grad():
        module.weight.fill_(-1)
    start.check(5, 0.9)
    start.restore()
    assert start.best_step == 0 and module.weight.tolist() == [[10.0] * 3]
    with pytest.raises(RuntimeError, match="no check"):
        BestCheck([module]).restore()
    with pytest.raises(ValueError, match="modules must name"):
        BestCheck([])
