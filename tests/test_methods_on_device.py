"""Every meta-learner meta-trains and adapts on CUDA, matches its CPU result, and leaves no
tensor on the wrong device.

One helper, :func:`train_and_adapt`, runs a method end to end on a given device: it builds
a tiny model on the CPU with a fixed seed, hands it to the method with ``device=...``
(the ``-moved`` cases build on the CPU and call ``.to(device)`` instead), meta-trains a
few meta-steps on tiny seeded synthetic data (Gaussian classes in 12 dimensions, 16x16
images, or sinusoid regression tasks), adapts to one fixed support set and predicts one
fixed query set. It returns the loss history, the predictions, and the device of every
tensor it can reach (:func:`tensor_devices`): the parameters, buffers and gradients of
the method's modules, the outer optimiser's state, the vmap path's model copy, and every
tensor the adapted predictor holds (``params`` of the gradient methods, the support
embeddings of the metric methods, the memory state of the MANN, the CNP's
representation), found by walking its attributes, so a tensor added later is checked too.

- ``test_method_on_cpu_is_deterministic_and_stays_on_cpu`` runs everywhere: two CPU runs
  are identical, finite, and every tensor is on the CPU (on a CUDA machine this catches a
  method that ignores ``device="cpu"``); ``test_device_report_sees_a_stray_tensor``
  shows the device report does notice a tensor on another device.
- ``test_method_on_cuda_matches_cpu`` (skipped without CUDA; the ``gpu`` tier) runs on
  CUDA and on the CPU: every tensor of the CUDA run is on CUDA, and its history and
  predictions agree with the CPU run's.

**Tolerances**, and why: CUDA kernels sum in another order than the CPU's (blocked
matmuls, tree reductions, cuDNN), so the two runs agree only up to rounding, which a few
Adam steps carry into the weights. TF32 is switched off for the comparison, so float32
means float32. (Adam divides by the gradient's size, so a weight whose gradient is zero
up to rounding -- a bias just before batch norm, or one the loss cannot see -- takes
steps of ``meta_lr`` in a direction set by rounding; the test models have no such bias.)
On the CPU, 1 against 2 threads, the results differ by at most 3e-15 in float64 and
3e-7 in float32; the tolerances leave a wide margin and still catch a real difference
(another seed, another tensor, a dropped step).

- float64 (every gradient method -- MAML, FOMAML, ANIL, Meta-SGD, Reptile, the vmap and
  grouped paths, regression -- computes in its model's dtype): ``rtol=1e-7, atol=1e-9``
  on the histories and on the predictions.
- float32 (the metric methods, CNPClassifier, MANN and CNP convert their inputs to
  float32): ``rtol=1e-4, atol=1e-5`` on the histories, ``rtol=1e-4, atol=1e-4`` on the
  predictions (probabilities, or the CNP's mean and sigma).

Which tolerance applies is decided by the dtype of the predictions, and the CUDA and CPU
predictions must have the same dtype.

**Left out**: ``AttentionMemory`` (a memory read, nothing to train), ``NearestNeighbour``
and ``FrozenPrototypes`` (untrained; no device of their own, they follow their encoder's
and keep embeddings on the CPU), the transfer baselines ``Scratch``, ``FineTune``,
``LogisticRegressionHead``/``LinearProbe``, ``Ensemble``, ``ParameterAveraging`` and
``Distillation`` (they take no device and run on the CPU by design; scikit-learn for the
logistic regression), and ``EncoderFineTune``/``TokenStates`` (they need the sentence
encoder, which is slow to load; tests/test_methods_pretrained.py covers them on the CPU).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from metaecom.methods import (ANIL, CNP, FOMAML, MAML, MANN, CNPClassifier, MatchingNet, MetaSGD, ProtoNet,
                              RelationNet, Reptile, SiameseNet, squared_error)
from metaecom.methods.mann import MANNNetwork
from metaecom.models import CNPNetwork, Conv4

META_STEPS = 3
DIM, N_WAY, K_SHOT, N_QUERY = 12, 3, 2, 3


# --- tiny seeded data --------------------------------------------------------------------

def _classes(images: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian classes (vectors ``[DIM]`` or images ``[1, 16, 16]``): meta-training data from
    classes 0-6, and a 3-way support and query set from the unseen classes 7-9."""
    rng = np.random.default_rng(1 if images else 0)
    shape = (1, 16, 16) if images else (DIM,)
    centres = rng.normal(size=(10, *shape))
    x = np.concatenate([c + 0.5 * rng.normal(size=(12, *shape)) for c in centres]).astype(np.float32)
    y = np.repeat(np.arange(10), 12)
    train = y < 7
    new = [np.flatnonzero(y == c) for c in (7, 8, 9)]
    support = np.concatenate([rows[:K_SHOT] for rows in new])
    query = np.concatenate([rows[K_SHOT:K_SHOT + N_QUERY] for rows in new])
    return (x[train], y[train], x[support], np.repeat(np.arange(N_WAY), K_SHOT), x[query],
            np.repeat(np.arange(N_WAY), N_QUERY))


def _sinusoid(rng: np.random.Generator, support: int = 5, query: int = 10) -> tuple:
    """One regression task ``y = a sin(x + b)``: ``(support_x [5, 1], support_y, query_x [10, 1], query_y)``."""
    a, b = rng.uniform(0.5, 2.0), rng.uniform(0, np.pi)
    x = rng.uniform(-3, 3, size=(support + query, 1))
    y = a * np.sin(x[:, 0] + b)
    return x[:support], y[:support], x[support:], y[support:]


DATA = {"vectors": _classes(images=False), "images": _classes(images=True)}
_RNG = np.random.default_rng(2)
REGRESSION_TASKS = [_sinusoid(_RNG) for _ in range(8)]
NEW_REGRESSION_TASK = _sinusoid(_RNG)


# --- the methods -------------------------------------------------------------------------

def _seeded(build):
    torch.manual_seed(0)
    return build()


def _encoder() -> nn.Module:
    """float32 embedding network with batch norm (running statistics are buffers to check).

    No bias where the loss cannot see it (before batch norm; at the end, where prototype and
    pair distances ignore a common shift): its gradient is zero up to rounding, which Adam
    would blow up to steps of ``meta_lr`` in a random direction, a difference between
    devices that says nothing about the method."""
    return _seeded(lambda: nn.Sequential(nn.Linear(DIM, 16, bias=False), nn.BatchNorm1d(16), nn.ReLU(),
                                         nn.Linear(16, 8, bias=False)))


def _classifier(batch_norm: bool = True) -> nn.Module:
    """float64 ``DIM -> 16 -> N_WAY`` (batch norm unless for the grouped path, which has no BatchNorm1d)."""
    norm = [nn.BatchNorm1d(16)] if batch_norm else []
    return _seeded(lambda: nn.Sequential(nn.Linear(DIM, 16, bias=not batch_norm), *norm, nn.ReLU(),
                                         nn.Linear(16, N_WAY)).double())


def _conv_classifier() -> nn.Module:
    """float64 Conv4 with 4 channels (16x16 images shrink to 1 pixel) and a linear head."""
    return _seeded(lambda: nn.Sequential(Conv4(in_channels=1, hidden=4), nn.Linear(4, N_WAY)).double())


def _regressor() -> nn.Module:
    return _seeded(lambda: nn.Sequential(nn.Linear(1, 16), nn.ReLU(), nn.Linear(16, 1)).double())


EPISODES = dict(n_way=N_WAY, k_shot=K_SHOT, n_query=N_QUERY)
METRIC = dict(EPISODES, meta_lr=1e-2, tasks_per_step=2)
GRADIENT = dict(EPISODES, inner_steps=2, inner_lr=0.3, meta_lr=1e-2, tasks_per_step=2)
REGRESSION = dict(inner_steps=2, inner_lr=0.05, meta_lr=1e-2, tasks_per_step=2, loss_fn=squared_error)
REPTILE = dict(EPISODES, inner_steps=3, inner_lr=1e-2, meta_lr=0.5, tasks_per_step=2)


@dataclasses.dataclass(frozen=True)
class Case:
    """How to build a method on a device and what it trains on: ``"vectors"`` or
    ``"images"`` (``meta_train(x, y)``), or ``"regression"`` (``meta_train_tasks``)."""

    build: object  # device -> method
    data: str = "vectors"


_FAMILY = {"MAML": MAML, "FOMAML": FOMAML, "ANIL": ANIL, "MetaSGD": MetaSGD}

CASES = {
    # metric-based, float32
    "ProtoNet": Case(lambda device: ProtoNet(_encoder(), **METRIC, device=device)),
    "MatchingNet": Case(lambda device: MatchingNet(_encoder(), **METRIC, device=device)),
    # (_encoder() seeds torch, so the relation, verifier and CNP modules these constructors draw next are
    # the same in every run)
    "RelationNet": Case(lambda device: RelationNet(_encoder(), embedding_dim=8, hidden=16, **METRIC, device=device)),
    "SiameseNet": Case(lambda device: SiameseNet(_encoder(), embedding_dim=8, **METRIC, device=device)),
    "CNPClassifier": Case(lambda device: CNPClassifier(_encoder(), embedding_dim=8, hidden=16, r_dim=8, **METRIC,
                                                       device=device)),
    "RelationNet-moved": Case(lambda device: RelationNet(_encoder(), embedding_dim=8, hidden=16, **METRIC,
                                                         device="cpu").to(device)),
    # gradient-based, float64: the per-task loop, vmap, and tasks as channel groups
    **{name: Case(lambda device, cls=cls: cls(_classifier(), **GRADIENT, device=device))
       for name, cls in _FAMILY.items()},
    **{f"{name}-vmap": Case(lambda device, cls=cls: cls(_classifier(), **GRADIENT, device=device, vectorize="vmap"))
       for name, cls in _FAMILY.items()},
    **{f"{name}-groups": Case(lambda device, cls=cls: cls(_classifier(batch_norm=False), **GRADIENT, device=device,
                                                          vectorize="groups"))
       for name, cls in _FAMILY.items()},
    "MetaSGD-moved": Case(lambda device: MetaSGD(_classifier(), **GRADIENT, device="cpu").to(device)),
    "MAML-conv4": Case(lambda device: MAML(_conv_classifier(), **GRADIENT, device=device), "images"),
    "MAML-conv4-vmap": Case(lambda device: MAML(_conv_classifier(), **GRADIENT, device=device, vectorize="vmap"),
                            "images"),
    "MAML-conv4-groups": Case(lambda device: MAML(_conv_classifier(), **GRADIENT, device=device,
                                                  vectorize="groups"), "images"),
    "Reptile": Case(lambda device: Reptile(_classifier(), **REPTILE, device=device)),
    "Reptile-minibatches": Case(lambda device: Reptile(_classifier(), **REPTILE, inner_batch=6, test_inner_batch=3,
                                                       device=device)),
    "MAML-regression": Case(lambda device: MAML(_regressor(), **REGRESSION, device=device), "regression"),
    "MAML-regression-groups": Case(lambda device: MAML(_regressor(), **REGRESSION, device=device,
                                                       vectorize="groups"), "regression"),
    "Reptile-regression": Case(lambda device: Reptile(_regressor(), **{**REGRESSION, "meta_lr": 0.5},
                                                      device=device), "regression"),
    # memory-based, float32
    "MANN": Case(lambda device: MANN(_seeded(lambda: MANNNetwork(DIM, N_WAY, controller=16, memory_slots=8,
                                                                 memory_width=4, read_heads=2, encoder_dim=8)),
                                     instances=2, tasks_per_step=2, meta_lr=1e-2, device=device)),
    "CNP": Case(lambda device: CNP(_seeded(lambda: CNPNetwork(x_dim=1, hidden=16, r_dim=8)), meta_lr=1e-2,
                                   tasks_per_step=4, device=device), "regression"),
}
NAMES = sorted(CASES)


# --- the helper --------------------------------------------------------------------------

def _tensors(value, where: str):
    """``(name, tensor)`` for every tensor in ``value``: a tensor, or a dict, list, tuple or
    dataclass (the MANN's state) holding tensors, at any depth."""
    if isinstance(value, torch.Tensor):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _tensors(item, f"{where}[{key}]")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _tensors(item, f"{where}[{i}]")
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            yield from _tensors(getattr(value, field.name), f"{where}.{field.name}")


def tensor_devices(method, adapted) -> dict[str, str]:
    """The device of every tensor reachable from ``method`` and its adapted predictor, by name.

    The method's device itself; parameters, buffers and gradients of ``method.modules()``;
    the outer optimiser's state (except Adam's ``step`` counter, a CPU scalar by torch's
    design unless the optimiser is capturable or fused); the vmap path's model copy; and
    every tensor held by ``adapted`` (its attributes other than the method, walked through
    dicts, lists and dataclasses).
    """
    found = {"method.device": str(method.device)}
    for i, module in enumerate(method.modules()):
        for name, parameter in module.named_parameters():
            found[f"module{i}.{name}"] = str(parameter.device)
            if parameter.grad is not None:
                found[f"module{i}.{name}.grad"] = str(parameter.grad.device)
        for name, buffer in module.named_buffers():
            found[f"module{i}.buffer.{name}"] = str(buffer.device)
    optimizer = getattr(method, "_optimizer", None)
    if optimizer is not None:
        names = {id(p): name for name, p in method.meta_parameters().items()}
        for parameter, state in optimizer.state.items():
            for key, value in state.items():
                if key == "step" and isinstance(value, torch.Tensor) and value.dim() == 0:
                    continue
                for name, tensor in _tensors(value, f"optimizer[{names.get(id(parameter), '?')}].{key}"):
                    found[name] = str(tensor.device)
    vmap_model = getattr(method, "_vmap_model", None)
    if vmap_model is not None:
        for name, tensor in [*vmap_model.named_parameters(), *vmap_model.named_buffers()]:
            found[f"vmap_model.{name}"] = str(tensor.device)
    for attribute, value in vars(adapted).items():
        if value is not method:
            for name, tensor in _tensors(value, f"adapted.{attribute}"):
                found[name] = str(tensor.device)
    return found


def train_and_adapt(name: str, device: str) -> dict:
    """Meta-train method ``name`` for ``META_STEPS`` meta-steps on ``device``, adapt it to one
    fixed support set and predict one fixed query set.

    Returns ``history`` (the meta-loss per meta-step, floats), ``predictions`` (NumPy: the
    class probabilities ``[9, 3]``, the predicted values ``[10]``, or for the CNP its mean
    and sigma ``[2, 10]``) and ``devices`` (:func:`tensor_devices`).
    """
    case = CASES[name]
    method = case.build(device)
    if case.data == "regression":
        method.meta_train_tasks(REGRESSION_TASKS, meta_steps=META_STEPS)
        support_x, support_y, query_x, _ = NEW_REGRESSION_TASK
        adapted = method.adapt(support_x, support_y)
        predictions = (np.stack(adapted.predict_distribution(query_x)) if hasattr(adapted, "predict_distribution")
                       else adapted.predict(query_x))
    else:
        x, y, support_x, support_y, query_x, _ = DATA[case.data]
        method.meta_train(x, y, meta_steps=META_STEPS)
        adapted = method.adapt(support_x, support_y)
        predictions = adapted.predict_proba(query_x)
    return {"history": [float(v) for v in method.history], "predictions": np.asarray(predictions),
            "devices": tensor_devices(method, adapted)}


def _off_device(devices: dict[str, str], kind: str) -> dict[str, str]:
    return {name: where for name, where in devices.items() if torch.device(where).type != kind}


def _check_report(result: dict) -> None:
    """The run trained, predicted, and the report reached modules and the adapted predictor."""
    assert len(result["history"]) == META_STEPS
    assert np.isfinite(result["history"]).all() and np.isfinite(result["predictions"]).all()
    names = result["devices"]
    assert any(n.startswith("module") for n in names), "no parameter of the method was reported"
    assert any(n.startswith("adapted.") for n in names), "no tensor of the adapted predictor was reported"


# --- the tests ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_method_on_cpu_is_deterministic_and_stays_on_cpu(name):
    first, second = train_and_adapt(name, "cpu"), train_and_adapt(name, "cpu")
    _check_report(first)
    assert first["history"] == second["history"]
    np.testing.assert_array_equal(first["predictions"], second["predictions"])
    assert _off_device(first["devices"], "cpu") == {}
    if not name.startswith("Reptile"):  # Reptile's outer step is its own update, no optimiser
        assert any(n.startswith("optimizer[") for n in first["devices"]), "the optimiser state was not reported"


def test_device_report_sees_a_stray_tensor():
    """A tensor left on another device (here the ``meta`` device) in a module's buffers, the
    optimiser's state or the adapted predictor is reported: the device checks can fail."""
    x, y, support_x, support_y, _, _ = DATA["vectors"]
    method = ProtoNet(_encoder(), **METRIC, device="cpu").meta_train(x, y, meta_steps=1)
    adapted = method.adapt(support_x, support_y)
    assert _off_device(tensor_devices(method, adapted), "cpu") == {}
    method.encoder.register_buffer("stray", torch.zeros(2, device="meta"))
    state = next(iter(method._optimizer.state.values()))
    state["exp_avg"] = state["exp_avg"].to("meta")
    adapted.support_z = {"nested": [adapted.support_z.to("meta")]}
    assert set(_off_device(tensor_devices(method, adapted), "cpu")) == {
        "module0.buffer.stray", "optimizer[0.weight].exp_avg", "adapted.support_z[nested][0]"}


TOLERANCES = {  # dtype of the predictions -> (history rtol, atol), (predictions rtol, atol); see the docstring
    np.dtype(np.float64): ((1e-7, 1e-9), (1e-7, 1e-9)),
    np.dtype(np.float32): ((1e-4, 1e-5), (1e-4, 1e-4)),
}


@pytest.fixture
def no_tf32():
    """float32 matmuls and convolutions in float32, not TF32 (cuDNN convolutions default to TF32)."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("name", NAMES)
def test_method_on_cuda_matches_cpu(name, no_tf32):
    gpu, cpu = train_and_adapt(name, "cuda"), train_and_adapt(name, "cpu")
    _check_report(gpu)
    assert _off_device(gpu["devices"], "cuda") == {}
    assert gpu["predictions"].dtype == cpu["predictions"].dtype
    (history_rtol, history_atol), (rtol, atol) = TOLERANCES[cpu["predictions"].dtype]
    np.testing.assert_allclose(gpu["history"], cpu["history"], rtol=history_rtol, atol=history_atol)
    np.testing.assert_allclose(gpu["predictions"], cpu["predictions"], rtol=rtol, atol=atol)
