import pytest
import torch
from torch import nn

from metaecom.cost import Cost, measure, saved_tensor_peak
from metaecom.methods import FOMAML, MAML, squared_error

N = 1000
BYTES = N * 4  # one float32 vector of N entries


def test_a_product_saves_both_factors():
    x = torch.randn(N, requires_grad=True)
    y = torch.randn(N, requires_grad=True)
    out, peak = saved_tensor_peak(lambda: x * y)
    assert peak == 2 * BYTES
    out.sum().backward()  # the graph is still usable: unpacking returns the saved tensors
    torch.testing.assert_close(x.grad, y.detach())


def test_nothing_is_saved_without_grad():
    x = torch.randn(N, requires_grad=True)
    y = torch.randn(N, requires_grad=True)

    def product():
        with torch.no_grad():
            return x * y

    assert saved_tensor_peak(product)[1] == 0
    # inputs that need no gradient are not saved either
    assert saved_tensor_peak(lambda: torch.randn(N) * torch.randn(N))[1] == 0


def test_only_what_backward_needs_is_saved():
    x = torch.randn(N, requires_grad=True)
    y = torch.randn(N)  # constant: x * y needs only y to differentiate in x
    assert saved_tensor_peak(lambda: x * y)[1] == BYTES
    assert saved_tensor_peak(lambda: x + y)[1] == 0  # addition saves nothing


def test_the_peak_is_not_the_sum_when_graphs_are_freed_in_between():
    x = torch.randn(N, requires_grad=True)
    y = torch.randn(N, requires_grad=True)

    def two_passes():
        (x * y).sum().backward()        # saves 2 vectors, freed by its backward
        (x * y * x).sum().backward()    # saves 4 vectors at most, freed again

    _, peak = saved_tensor_peak(two_passes)
    assert peak == 4 * BYTES            # the larger of the two, not 6
    # with the first graph kept alive, they add up
    def kept():
        first = (x * y).sum()
        (x * y * x).sum().backward()
        return first

    first, peak = saved_tensor_peak(kept)
    assert peak == 6 * BYTES
    del first


def test_a_freed_graph_leaves_the_count():
    x = torch.randn(N, requires_grad=True)

    def build_and_drop():
        for _ in range(5):
            _ = (x * x).sum()  # each graph is freed when the next replaces it

    assert saved_tensor_peak(build_and_drop)[1] == 2 * BYTES


def _regression_tasks(n=4, k=5):
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(k, 1, generator=g), torch.randn(k, generator=g),
             torch.randn(k, 1, generator=g), torch.randn(k, generator=g)) for _ in range(n)]


def test_maml_keeps_more_than_first_order_and_grows_with_inner_steps():
    torch.manual_seed(0)
    tasks = _regression_tasks()
    saved = {}
    for cls in (MAML, FOMAML):
        for steps in (1, 3):
            model = nn.Sequential(nn.Linear(1, 16), nn.ReLU(), nn.Linear(16, 1))
            method = cls(model, loss_fn=squared_error, inner_steps=steps, inner_lr=0.01, device="cpu")
            saved[cls.name, steps] = measure(lambda: method.meta_gradient(tasks), repeats=1).saved_bytes
    assert saved["MAML", 1] > saved["FOMAML", 1]
    assert saved["MAML", 3] > saved["MAML", 1]
    assert saved["FOMAML", 3] == saved["FOMAML", 1]  # first-order: each step's graph is freed


def test_measure_times_and_counts():
    x = torch.randn(200, 200, requires_grad=True)
    calls = []

    def fn():
        calls.append(1)
        (x @ x).sum().backward()

    cost = measure(fn, repeats=3)
    assert isinstance(cost, Cost)
    assert len(calls) == 4  # one warm-up, three timed
    assert cost.seconds > 0 and len(cost.runs_s) == 3 and all(t > 0 for t in cost.runs_s)
    assert cost.seconds == sorted(cost.runs_s)[1]  # the median
    assert cost.saved_bytes == 2 * 200 * 200 * 4  # x saved as both factors of the product
    assert cost.saved_mib == pytest.approx(cost.saved_bytes / 2**20)


def test_torch_func_is_timed_without_memory():
    x = torch.randn(50)
    cost = measure(lambda: torch.func.grad(lambda v: (v.sin() * v).sum())(x), repeats=2)
    assert cost.saved_bytes is None and cost.saved_mib is None
    assert cost.seconds > 0


def test_measure_bad_input():
    with pytest.raises(ValueError, match="repeats"):
        measure(lambda: None, repeats=0)
    with pytest.raises(ZeroDivisionError):  # errors of fn itself pass through
        measure(lambda: 1 / 0)
