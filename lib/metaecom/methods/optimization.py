"""Optimization-based meta-learning: learn an initialisation (and, for Meta-SGD, step
sizes) from which a few gradient steps on a new task's support set give a good model.

Every method here shares one functional inner loop, :func:`inner_adapt`, written with
``torch.func.functional_call`` and ``torch.autograd.grad``: the network's weights are an
ordinary dictionary of tensors, so the adapted weights of a task are a differentiable
function of the meta-parameters, and the meta-gradient flows back through the inner
steps. No third-party meta-learning library (learn2learn, higher) is used.

- :class:`MAML` (Finn et al. 2017): adapt all weights by ``inner_steps`` SGD steps on the
  support loss, meta-learn the initialisation on the query loss after adaptation. The
  meta-gradient is exact: it includes the second-order (Hessian-vector) terms, because
  the inner gradients are taken with ``create_graph=True``.
- :class:`FOMAML`: first-order MAML; the inner gradients are treated as constants, so the
  meta-gradient is simply the query-loss gradient at the adapted weights.
- :class:`ANIL` (Raghu et al. 2020): MAML whose inner loop adapts only the head (the last
  linear layer, or ``head_names``); the body is learned by the outer loop alone.
- :class:`MetaSGD` (Li et al. 2017): MAML with a learned inner learning rate per weight
  (a tensor shaped like each parameter, initialised to ``inner_lr`` everywhere rather
  than at random as in the paper) meta-learned with the weights; one inner step by default.
- :class:`Reptile` (Nichol et al. 2018): no second-order terms and no query loss: train a
  copy of the weights on each task by ``inner_steps`` steps of SGD or Adam, then move the
  initialisation towards the result, ``θ ← θ + ε · mean_tasks(φ_task − θ)``. As in the
  paper, a task's support *and* query examples are pooled for this inner training (the
  query set is not needed for a held-out loss); the inner loop is full-batch on the pool,
  and an inner Adam (β1 = 0 as in the paper) starts fresh for every task. At test time
  only the support set is used.

**Batch normalisation** follows MAML's reference implementation on purpose: it *always*
normalises with the statistics of the current batch — the task's support set during
inner steps, its query set when scoring the query — in meta-training and at test time
alike ("transductive" per-task batch statistics). Running averages are neither used nor
updated: every forward pass runs the model in training mode on *copies* of its buffers,
which are thrown away. Predictions therefore depend on the whole batch passed to
``predict_proba`` (give it the task's query set, not single examples), and dropout, if
the model has any, is active too.

**Classification and regression.** ``task="classification"`` (default): cross-entropy,
model output ``[n, n_way]`` with column ``i`` the score of episode label ``i``; train with
:meth:`GradientMethod.meta_train` on labelled data and adapt with ``adapt``.
``task="regression"``: mean squared error, model output ``[n, 1]``, float targets; train
with :meth:`GradientMethod.meta_train_tasks` on explicit tasks and adapt with
``adapt_regression``. A *task* is a tuple ``(support_x, support_y, query_x, query_y)`` of
arrays (or tensors); :meth:`GradientMethod.meta_gradient` and ``meta_step`` take lists of them.

Everything runs on the CPU or on CUDA (``device``, default :func:`metaecom.device.get_device`)
in the model's floating-point type (float32 usually; float64 works when the model is float64).
"""

from __future__ import annotations

import contextlib
import math
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from metaecom.device import get_device
from metaecom.methods.base import Adapted, Method, check_query, check_support, to_numpy as _numpy
from metaecom.tasks import FewShotSampler, _check_count, task_batches
from metaecom.train import run_meta_steps

__all__ = ["inner_adapt", "functional_forward", "head_parameter_names", "GradientMethod", "MAML", "FOMAML",
           "ANIL", "MetaSGD", "Reptile", "RegressionAdapted"]

TASK_KINDS = ("classification", "regression")


# ---------------------------------------------------------------------------------------
# The functional building blocks
# ---------------------------------------------------------------------------------------

@contextlib.contextmanager
def _training_mode(model: nn.Module):
    """Run ``model`` in training mode (batch statistics), then restore its mode."""
    was_training = model.training
    model.train()
    try:
        yield
    finally:
        model.train(was_training)


def functional_forward(model: nn.Module, params: dict, buffers: dict, x: torch.Tensor) -> torch.Tensor:
    """``model(x)`` with the weights ``params``, batch norm on the batch's own statistics.

    The model runs in training mode on *copies* of ``buffers``, so batch norm normalises
    with the statistics of ``x`` and its running averages are left untouched.
    """
    copies = {name: b.clone() for name, b in buffers.items()}
    with _training_mode(model):
        return functional_call(model, (params, copies), (x,))


def inner_adapt(model: nn.Module, params: dict, buffers: dict, support_x: torch.Tensor, support_y: torch.Tensor,
                loss_fn: Callable, steps: int, inner_lr: float, first_order: bool = False,
                adapt_names: Iterable[str] | None = None, per_param_lr: dict | None = None) -> dict:
    """Take ``steps`` SGD steps on ``loss_fn(model(support_x), support_y)``; return the adapted weights.

    ``params`` maps parameter names to tensors (e.g. ``dict(model.named_parameters())``);
    the result is a new dictionary, ``params`` is not changed. Only the names in
    ``adapt_names`` are adapted (all when None; ANIL passes the head's); the other entries
    of the result are the very tensors of ``params``. Each step is
    ``w ← w − lr_w · ∂loss/∂w`` with ``lr_w = per_param_lr[name]`` when given (Meta-SGD,
    a tensor shaped like ``w``) and ``inner_lr`` otherwise.

    With ``first_order=False`` the inner gradients keep their graph (``create_graph=True``),
    so differentiating a loss at the adapted weights with respect to ``params`` (and to
    ``per_param_lr``) includes the second-order terms. With ``first_order=True`` the inner
    gradients are detached: the adapted weights depend on ``params`` only through the
    identity path (and on ``per_param_lr`` linearly).
    """
    adapted = dict(params)
    names = list(adapted) if adapt_names is None else list(adapt_names)
    unknown = [n for n in names if n not in adapted]
    if unknown:
        raise ValueError(f"adapt_names {unknown} are not among the parameters {list(adapted)}")
    for _ in range(steps):
        loss = loss_fn(functional_forward(model, adapted, buffers, support_x), support_y)
        grads = torch.autograd.grad(loss, [adapted[n] for n in names], create_graph=not first_order,
                                    allow_unused=True)
        for name, grad in zip(names, grads):
            if grad is None:  # the parameter does not affect the loss
                continue
            if first_order:
                grad = grad.detach()
            lr = per_param_lr[name] if per_param_lr is not None else inner_lr
            adapted[name] = adapted[name] - lr * grad
    return adapted


def head_parameter_names(model: nn.Module, head_names: Iterable[str] | None = None) -> list[str]:
    """The names of the head's parameters: ``head_names`` checked, or the last ``nn.Linear``'s."""
    all_names = [n for n, _ in model.named_parameters()]
    if head_names is not None:
        names = list(head_names)
        unknown = [n for n in names if n not in all_names]
        if unknown or not names:
            raise ValueError(f"head_names {names} must be parameter names of the model; it has {all_names}")
        return names
    linear = [(prefix, m) for prefix, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linear:
        raise ValueError("the model has no nn.Linear layer to serve as the head; pass head_names")
    prefix, _ = linear[-1]
    return [f"{prefix}.{n}" if prefix else n for n, _ in linear[-1][1].named_parameters()]


def _check_positive(name: str, value) -> float:
    if not (isinstance(value, (int, float, np.floating)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


class _PlainBatchNorm(nn.Module):
    """Batch normalisation with the current batch's statistics, written with plain tensor
    operations so that every order of derivative is exact under ``torch.func``."""

    def __init__(self, batch_norm: nn.modules.batchnorm._BatchNorm):
        super().__init__()
        if not batch_norm.affine:
            raise ValueError("only affine batch norm layers are supported")
        self.weight = nn.Parameter(batch_norm.weight.detach().clone())
        self.bias = nn.Parameter(batch_norm.bias.detach().clone())
        self.eps = batch_norm.eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = [0, *range(2, x.dim())]
        mean = x.mean(dim=dims, keepdim=True)
        var = x.var(dim=dims, unbiased=False, keepdim=True)
        shape = [1, -1] + [1] * (x.dim() - 2)
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight.view(shape) + self.bias.view(shape)


class _LearnedRates(nn.Module):
    """Meta-SGD's per-weight inner learning rates, one tensor per model parameter."""

    def __init__(self, params: dict, init: float):
        super().__init__()
        self.names = list(params)
        self.rates = nn.ParameterList([nn.Parameter(torch.full_like(p.detach(), init)) for p in params.values()])

    def as_dict(self) -> dict:
        return dict(zip(self.names, self.rates))


# ---------------------------------------------------------------------------------------
# The shared machinery
# ---------------------------------------------------------------------------------------

class GradientMethod(Method):
    """Episodic meta-training through a differentiable inner loop, shared by MAML and kin.

    ``model`` is any ``nn.Module`` mapping a batch of inputs to ``[n, n_way]`` scores
    (classification) or ``[n, 1]`` predictions (regression). Each meta-step draws
    ``meta_batch`` tasks, adapts a functional copy of the weights to each support set
    with ``inner_steps`` SGD steps of size ``inner_lr``, averages the query losses at the
    adapted weights, and takes one Adam step (``meta_lr``) on the meta-parameters (the
    model's weights, plus Meta-SGD's learning rates). ``adapt`` runs the same inner loop
    for ``test_inner_steps`` steps (default ``inner_steps``) without a second-order graph.

    ``episodes`` counts *meta-steps* (MAML's meta-iterations), each on ``meta_batch``
    episodes. ``history`` holds the meta-loss of every meta-step, ``episodes_seen`` the
    number of tasks trained on, ``train_seconds`` the wall time spent in meta-training.
    The outer Adam optimizer is made on first use and keeps its state across calls.
    """

    name = "GradientMethod"
    first_order_default = False

    def __init__(self, model: nn.Module, n_way: int = 5, k_shot: int = 1, n_query: int = 15, inner_steps: int = 1,
                 inner_lr: float = 0.4, meta_lr: float = 1e-3, meta_batch: int = 4, first_order: bool | None = None,
                 episodes: int = 1000, seed: int = 0, device=None, test_inner_steps: int | None = None,
                 task: str = "classification", head_names: Iterable[str] | None = None,
                 vectorize: bool | str = False):
        if task not in TASK_KINDS:
            raise ValueError(f"task must be one of {TASK_KINDS}, got {task!r}")
        if not any(True for _ in model.parameters()):
            raise ValueError("the model has no parameters to meta-learn")
        self.model, self.task = model, task
        self.n_way = _check_count("n_way", n_way, 1)
        self.k_shot = _check_count("k_shot", k_shot, 1)
        self.n_query = _check_count("n_query", n_query, 1)
        self.inner_steps = _check_count("inner_steps", inner_steps, 0)
        self.test_inner_steps = (self.inner_steps if test_inner_steps is None
                                 else _check_count("test_inner_steps", test_inner_steps, 0))
        self.inner_lr = _check_positive("inner_lr", inner_lr)
        self.meta_lr = _check_positive("meta_lr", meta_lr)
        self.meta_batch = _check_count("meta_batch", meta_batch, 1)
        self.episodes = _check_count("episodes", episodes, 0)
        if self.first_order_default and first_order is False:
            raise ValueError(f"{self.name} is first-order by definition; use MAML for second-order meta-gradients")
        self.first_order = self.first_order_default if first_order is None else bool(first_order)
        self.seed = seed
        if vectorize not in (False, True, "vmap", "groups"):
            raise ValueError(f"vectorize must be False, True (= 'vmap') or 'groups', got {vectorize!r}")
        # meta-steps through vectorized_meta_gradient (torch.func.vmap) or grouped_meta_gradient
        self.vectorize = "vmap" if vectorize is True else vectorize
        self.head_names = head_parameter_names(model, head_names)
        self.device = torch.device(device) if device is not None else get_device()
        self.model.to(self.device)
        self.dtype = next(model.parameters()).dtype
        self.history: list[float] = []  # meta-loss per meta-step
        self.episodes_seen = 0          # tasks (episodes) trained on, meta_batch per meta-step
        self.train_seconds = 0.0        # wall time spent in meta-training
        self._optimizer: torch.optim.Optimizer | None = None
        self._setup()

    def _setup(self) -> None:
        """Hook for subclasses that add meta-parameters (Meta-SGD's learning rates)."""

    # --- what subclasses change -------------------------------------------------------
    def adapt_names(self) -> list[str] | None:
        """The parameters the inner loop adapts; None means all of them."""
        return None

    def inner_lrs(self) -> dict | None:
        """Per-parameter inner learning rates (Meta-SGD), or None for the scalar ``inner_lr``."""
        return None

    # --- parameters, devices, tensors ---------------------------------------------------
    def modules(self) -> list[nn.Module]:
        """Every module holding meta-parameters (the model; Meta-SGD adds its learning rates)."""
        return [self.model]

    def to(self, device) -> "GradientMethod":
        self.device = torch.device(device)
        for module in self.modules():
            module.to(self.device)
        self._optimizer = None  # its state lived on the old device
        return self

    def meta_parameters(self) -> dict[str, torch.Tensor]:
        """The tensors the outer loop learns, by name: the model's weights, and for Meta-SGD
        ``inner_lr[<weight name>]`` for each learned learning rate."""
        found = dict(self.model.named_parameters())
        rates = self.inner_lrs()
        if rates is not None:
            found.update({f"inner_lr[{name}]": rate for name, rate in rates.items()})
        return found

    def _buffers(self) -> dict:
        return dict(self.model.named_buffers())

    def _x(self, x) -> torch.Tensor:
        return torch.as_tensor(_numpy(x), dtype=self.dtype, device=self.device)

    def _y(self, y) -> torch.Tensor:
        if self.task == "classification":
            return torch.as_tensor(_numpy(y), dtype=torch.long, device=self.device)
        return torch.as_tensor(_numpy(y), dtype=self.dtype, device=self.device)

    def _task_tensors(self, task) -> tuple[torch.Tensor, ...]:
        if len(task) != 4:
            raise ValueError("a task is a tuple (support_x, support_y, query_x, query_y); "
                             f"got a {type(task).__name__} of length {len(task)}")
        sx, sy, qx, qy = task
        return self._x(sx), self._y(sy), self._x(qx), self._y(qy)

    # --- the losses -------------------------------------------------------------------
    def loss_fn(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Cross-entropy on ``[n, n_way]`` scores, or mean squared error on ``[n, 1]`` predictions."""
        if self.task == "classification":
            if output.dim() != 2 or output.shape[1] != self.n_way:
                raise ValueError(f"{self.name}: the model must output [n, n_way={self.n_way}] scores, "
                                 f"got shape {list(output.shape)}")
            return F.cross_entropy(output, target)
        if output.dim() == 2 and output.shape[1] == 1:
            output = output.squeeze(1)
        if output.shape != target.shape:
            raise ValueError(f"{self.name}: a regression model must output [n, 1] predictions for {len(target)} "
                             f"targets, got shape {list(output.shape)}")
        return F.mse_loss(output, target)

    def _adapt(self, params: dict, x: torch.Tensor, y: torch.Tensor, steps: int, first_order: bool) -> dict:
        return inner_adapt(self.model, params, self._buffers(), x, y, self.loss_fn, steps, self.inner_lr,
                           first_order=first_order, adapt_names=self.adapt_names(), per_param_lr=self.inner_lrs())

    def meta_loss(self, tasks: Sequence) -> torch.Tensor:
        """Mean over ``tasks`` of the query loss after inner adaptation, differentiable in
        the meta-parameters (second-order unless ``first_order``)."""
        if len(tasks) == 0:
            raise ValueError("meta_loss needs at least one task")
        params = dict(self.model.named_parameters())
        total = 0.0
        for task in tasks:
            sx, sy, qx, qy = self._task_tensors(task)
            adapted = self._adapt(params, sx, sy, self.inner_steps, self.first_order)
            total = total + self.loss_fn(functional_forward(self.model, adapted, self._buffers(), qx), qy)
        return total / len(tasks)

    def _batch_norm_free_model(self) -> nn.Module:
        """A copy of the model for ``torch.func.vmap``, its batch norm layers replaced by
        :class:`_PlainBatchNorm` (same parameter names, batch statistics only). vmap cannot
        update one running-statistics buffer from many tasks at once, and in this torch
        version the second derivative of the built-in batch norm under ``torch.func``
        transforms differs from autograd's (measured: 6% relative on a small MLP), while
        the plain formula is differentiated exactly. The copy's own weights are unused:
        :meth:`vectorized_meta_gradient` passes the model's."""
        if getattr(self, "_vmap_model", None) is None:
            import copy

            clone = copy.deepcopy(self.model)
            for parent in list(clone.modules()):
                for child_name, child in parent.named_children():
                    if isinstance(child, nn.modules.batchnorm._BatchNorm):
                        setattr(parent, child_name, _PlainBatchNorm(child))
                if getattr(parent, "channels_last", False):  # vmap cannot query memory formats
                    parent.channels_last = False
            self._vmap_model = clone
        return self._vmap_model

    def vectorized_meta_gradient(self, tasks: Sequence) -> tuple[float, dict[str, torch.Tensor]]:
        """The meta-loss and :meth:`meta_gradient`, computed for all tasks at once with
        ``torch.func.vmap`` — a purely functional path: ``torch.func.grad`` of the mean over
        a ``vmap`` over tasks of the query loss after an inner loop of ``torch.func.grad``
        steps (regular autograd cannot differentiate through functorch's inner transforms).

        All tasks must have the same shapes (N-way K-shot episodes do). vmap turns the
        tasks' convolutions into one grouped convolution, which pays off most on a GPU.
        Same value and gradient as the per-task loop, up to floating-point rounding.
        """
        sx, sy, qx, qy = self._stacked_tasks(tasks)
        model = self._batch_norm_free_model()
        meta = {n: p.detach() for n, p in self.meta_parameters().items()}
        weight_names = [n for n, _ in self.model.named_parameters()]
        names = weight_names if self.adapt_names() is None else list(self.adapt_names())
        steps, first_order, loss_fn, lr = self.inner_steps, self.first_order, self.loss_fn, self.inner_lr
        has_rates = self.inner_lrs() is not None

        def task_loss(meta, sx, sy, qx, qy):
            weights = {n: meta[n] for n in weight_names}

            def support_loss(fast):
                return loss_fn(functional_call(model, {**weights, **fast}, (sx,)), sy)

            fast = {n: weights[n] for n in names}
            for _ in range(steps):
                grads = torch.func.grad(support_loss)(fast)
                fast = {n: fast[n] - (meta[f"inner_lr[{n}]"] if has_rates else lr)
                        * (grads[n].detach() if first_order else grads[n]) for n in names}
            return loss_fn(functional_call(model, {**weights, **fast}, (qx,)), qy)

        def mean_loss(meta):
            losses = torch.func.vmap(task_loss, in_dims=(None, 0, 0, 0, 0), randomness="same")(meta, sx, sy, qx, qy)
            return losses.mean()

        grads, loss = torch.func.grad_and_value(mean_loss)(meta)
        return loss.item(), grads

    def _stacked_tasks(self, tasks: Sequence) -> list[torch.Tensor]:
        """The tasks' support and query tensors stacked along a leading task axis."""
        if len(tasks) == 0:
            raise ValueError("meta_gradient needs at least one task")
        tensors = [self._task_tensors(task) for task in tasks]
        if len({tuple(tuple(t.shape) for t in task) for task in tensors}) != 1:
            raise ValueError("the vectorized path needs tasks of identical shapes (same N, K and query count)")
        return [torch.stack(parts) for parts in zip(*tensors)]

    def grouped_meta_gradient(self, tasks: Sequence) -> tuple[float, dict[str, torch.Tensor]]:
        """The meta-loss and :meth:`meta_gradient`, with all tasks run as channel groups of one
        network (:mod:`metaecom.methods.task_groups`): one grouped convolution per layer for
        the whole meta-batch instead of one convolution per task. For chains of conv, batch
        norm, ReLU, max-pool and linear layers (e.g. Conv4 + a linear head); all tasks must
        have the same shapes. Same value and gradient as the loop up to rounding."""
        from metaecom.methods.task_groups import grouped_meta_loss

        sx, sy, qx, qy = self._stacked_tasks(tasks)
        meta = self.meta_parameters()
        weights = {n: p for n, p in self.model.named_parameters()}
        with torch.enable_grad():
            loss = grouped_meta_loss(self.model, weights, sx, sy, qx, qy, self.loss_fn, self.inner_steps,
                                     self.inner_lr, self.first_order, self.adapt_names(), self.inner_lrs())
            grads = torch.autograd.grad(loss, list(meta.values()), allow_unused=True)
        return loss.item(), {name: (torch.zeros_like(p) if g is None else g.detach())
                             for (name, p), g in zip(meta.items(), grads)}

    def meta_gradient(self, tasks: Sequence) -> dict[str, torch.Tensor]:
        """The gradient of :meth:`meta_loss` over ``tasks`` with respect to each meta-parameter
        (keys as in :meth:`meta_parameters`); nothing is updated."""
        meta = self.meta_parameters()
        with torch.enable_grad():
            loss = self.meta_loss(tasks)
            grads = torch.autograd.grad(loss, list(meta.values()), allow_unused=True)
        return {name: (torch.zeros_like(p) if g is None else g.detach())
                for (name, p), g in zip(meta.items(), grads)}

    # --- meta-training ----------------------------------------------------------------
    def _outer_optimizer(self) -> torch.optim.Optimizer:
        if self._optimizer is None:
            self._optimizer = torch.optim.Adam(list(self.meta_parameters().values()), lr=self.meta_lr)
        return self._optimizer

    def _fail(self, step: int, what: str):
        raise FloatingPointError(f"{self.name}: meta-training {what} at step {step}")

    def meta_step(self, tasks: Sequence) -> float:
        """One meta-update on ``tasks`` (a list of task tuples); returns and records the meta-loss.

        A non-finite meta-loss raises ``FloatingPointError`` naming the step, before any
        weight is changed.
        """
        optimizer = self._outer_optimizer()
        if self.vectorize:
            gradient = self.vectorized_meta_gradient if self.vectorize == "vmap" else self.grouped_meta_gradient
            value, grads = gradient(tasks)
            if not math.isfinite(value):
                self._fail(len(self.history) + 1, f"loss became {value}")
            for name, parameter in self.meta_parameters().items():
                parameter.grad = grads[name]
        else:
            with torch.enable_grad():
                loss = self.meta_loss(tasks)
                value = loss.item()
                if not math.isfinite(value):
                    self._fail(len(self.history) + 1, f"loss became {value}")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
        optimizer.step()
        self.history.append(value)
        self.episodes_seen += len(tasks)
        return value

    def _loop(self, next_tasks: Callable[[], list], steps: int, desc: str | None, max_seconds: float | None):
        return run_meta_steps(self, next_tasks, steps, desc, max_seconds)

    def meta_train(self, x, y, episodes: int | None = None, desc: str | None = None,
                   max_seconds: float | None = None) -> "GradientMethod":
        """Classification: ``episodes`` meta-steps (default: the constructor's), each on
        ``meta_batch`` N-way K-shot episodes drawn from the classes in ``y``.

        Note that ``episodes`` counts meta-steps (MAML's "meta-iterations"), so
        ``len(history) == episodes`` and ``episodes_seen == episodes * meta_batch``.
        ``max_seconds`` stops earlier once that much wall time has passed.
        """
        if self.task != "classification":
            raise ValueError(f"{self.name} was built for task={self.task!r}: use meta_train_tasks")
        y = np.asarray(y)
        # a later call continues with fresh episodes instead of replaying the first call's
        seed = self.seed if not self.history else [self.seed, len(self.history)]
        sampler = FewShotSampler(y, self.n_way, self.k_shot, self.n_query, seed=seed)
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} rows but y has {len(y)}")

        def next_tasks():
            tasks = []
            for episode in sampler.episodes(self.meta_batch):
                tasks.append((x[episode.support], episode.support_y, x[episode.query], episode.query_y))
            return tasks

        steps = episodes if episodes is not None else self.episodes
        return self._loop(next_tasks, _check_count("episodes", steps, 0), desc, max_seconds)

    def meta_train_tasks(self, tasks, steps: int, desc: str | None = None,
                         max_seconds: float | None = None) -> "GradientMethod":
        """Meta-train for ``steps`` meta-steps on explicitly given tasks (regression, or any task source).

        ``tasks`` is one of: a callable ``tasks(rng) -> task`` called ``meta_batch`` times
        per step with a NumPy generator seeded by ``seed``; a sequence of tasks, from which
        ``meta_batch`` are drawn at random (without replacement when there are enough) each
        step; or an iterator yielding tasks. A task is ``(support_x, support_y, query_x, query_y)``.
        """
        next_tasks = task_batches(tasks, self.meta_batch, np.random.default_rng(self.seed))
        return self._loop(next_tasks, _check_count("steps", steps, 0), desc, max_seconds)

    # --- adaptation -------------------------------------------------------------------
    def adapted_parameters(self, support_x: torch.Tensor, support_y: torch.Tensor,
                           steps: int | None = None) -> dict[str, torch.Tensor]:
        """The weights after ``steps`` (default ``test_inner_steps``) inner steps on a
        support set given as tensors; detached, no second-order graph."""
        steps = self.test_inner_steps if steps is None else steps
        adapt = set(self.adapt_names() or [n for n, _ in self.model.named_parameters()])
        params = {n: (p.detach().requires_grad_(True) if n in adapt else p.detach())
                  for n, p in self.model.named_parameters()}
        with torch.enable_grad():
            adapted = self._test_adapt(params, support_x, support_y, steps)
        return {n: p.detach() for n, p in adapted.items()}

    def _test_adapt(self, params: dict, x: torch.Tensor, y: torch.Tensor, steps: int) -> dict:
        """The inner loop as run at test time (no second-order graph)."""
        return self._adapt(params, x, y, steps, first_order=True)

    def adapt(self, support_x, support_y) -> Adapted:
        """Classification: inner steps on the support set; a predictor with the adapted weights."""
        if self.task != "classification":
            raise ValueError(f"{self.name} was built for task={self.task!r}: use adapt_regression")
        x, y, n = check_support(support_x, support_y)
        if n != self.n_way:
            raise ValueError(f"{self.name}'s model has {self.n_way} outputs, so it adapts to {self.n_way}-way "
                             f"tasks; the support set has {n} classes")
        params = self.adapted_parameters(self._x(support_x), self._y(y))
        return _GradientAdapted(self, params, n, x.shape[1:])

    def adapt_regression(self, support_x, support_y) -> "RegressionAdapted":
        """Regression: inner steps on the support set; an object whose ``predict(x)`` gives ``[n]`` values."""
        if self.task != "regression":
            raise ValueError(f"{self.name} was built for task={self.task!r}: use adapt")
        x = _numpy(support_x)
        y = _numpy(support_y)
        if x.ndim < 2 or len(x) == 0:
            raise ValueError(f"support_x must be a non-empty array [examples, features...], got shape {x.shape}")
        if y.ndim != 1 or len(y) != len(x):
            raise ValueError(f"support_y must be 1-D with one target per support example; got {y.shape} "
                             f"for {len(x)} examples")
        if not np.issubdtype(y.dtype, np.number):
            raise ValueError(f"support targets must be numbers, got dtype {y.dtype}")
        params = self.adapted_parameters(self._x(x), self._y(y))
        return RegressionAdapted(self, params, x.shape[1:])


class _GradientAdapted(Adapted):
    def __init__(self, method: GradientMethod, params: dict, n_classes: int, feature_shape):
        self.method, self.params = method, params
        self.n_classes, self.feature_shape = n_classes, tuple(feature_shape)

    def predict_proba(self, query_x) -> np.ndarray:
        check_query(query_x, self.feature_shape)
        return self._proba(_numpy(query_x))  # keep the caller's precision (float64 stays float64)

    def _proba(self, x):
        m = self.method
        with torch.no_grad():
            logits = functional_forward(m.model, self.params, m._buffers(), m._x(x))
            return torch.softmax(logits, dim=1).cpu().numpy()


class RegressionAdapted:
    """A regression model adapted to one task: ``predict(x)`` returns a NumPy array ``[n]``.

    Batch norm, if any, uses the statistics of the batch passed to ``predict``.
    """

    def __init__(self, method: GradientMethod, params: dict, feature_shape):
        self.method, self.params, self.feature_shape = method, params, tuple(feature_shape)

    def predict(self, x) -> np.ndarray:
        x = _numpy(x)
        if x.ndim < 2 or x.shape[1:] != self.feature_shape:
            raise ValueError(f"x has feature shape {x.shape[1:]} but the support set had {self.feature_shape}")
        m = self.method
        with torch.no_grad():
            out = functional_forward(m.model, self.params, m._buffers(), m._x(x))
        return out.reshape(len(x)).cpu().numpy()


# ---------------------------------------------------------------------------------------
# The methods
# ---------------------------------------------------------------------------------------

class MAML(GradientMethod):
    """Model-Agnostic Meta-Learning (Finn et al. 2017), second-order unless ``first_order=True``.

    ``MAML(model, n_way, k_shot, n_query, inner_steps=1, inner_lr=0.4, meta_lr=1e-3,
    meta_batch=4, first_order=False, episodes=1000, seed=0, device=None,
    test_inner_steps=None, task="classification", head_names=None)``
    """

    name = "MAML"


class FOMAML(MAML):
    """First-order MAML: the meta-gradient is the query-loss gradient at the adapted weights."""

    name = "FOMAML"
    first_order_default = True


class ANIL(MAML):
    """Almost No Inner Loop (Raghu et al. 2020): the inner loop adapts only the head
    (``head_names``, default the last ``nn.Linear``); the body is learned by the outer loop."""

    name = "ANIL"

    def adapt_names(self):
        return self.head_names


class MetaSGD(MAML):
    """Meta-SGD (Li et al. 2017): ``φ = θ − α ⊙ ∇L_support(θ)`` with a learned rate ``α`` per weight.

    The rates start at ``inner_lr`` everywhere (the paper draws them at random) and are
    meta-learned by the same Adam step as the weights; they are not constrained to stay
    positive. One inner step by default, as in the paper.
    """

    name = "MetaSGD"

    def _setup(self):
        self.rates = _LearnedRates(dict(self.model.named_parameters()), self.inner_lr).to(self.device)

    def modules(self):
        return [self.model, self.rates]

    def inner_lrs(self):
        return self.rates.as_dict()


class Reptile(GradientMethod):
    """Reptile (Nichol et al. 2018): ``θ ← θ + ε · mean_tasks(φ_task − θ)``, φ trained from θ on each task.

    ``Reptile(model, n_way, k_shot, n_query, inner_steps=5, inner_lr=1e-3, meta_step=1.0,
    inner_optimizer="adam", inner_batch=None, test_inner_batch=None, meta_batch=4,
    episodes=1000, seed=0, device=None, test_inner_steps=None, task="classification",
    head_names=None)``

    The inner training uses the task's support and query examples pooled, with
    ``inner_optimizer`` ``"adam"`` (β1 = 0, β2 = 0.999, fresh per task; the paper's choice)
    or ``"sgd"``. Each inner step uses the whole pool (``inner_batch=None``) or, as in the
    paper, a minibatch of ``inner_batch`` examples: the pool is shuffled and cut into
    consecutive minibatches, reshuffled when used up, so 5 steps of 10 on a pool of 50
    see every example once. ``test_inner_batch`` does the same for the support set at test
    time (default: the whole support set). ``meta_step`` is the outer step size ε (the
    paper anneals it linearly to zero; here it is constant unless the caller changes
    ``meta_step_size`` between calls). ``history`` records the mean pooled loss after the inner
    training; :meth:`meta_gradient` returns the update direction ``θ − mean(φ)`` (not the
    gradient of any loss). At test time the inner training sees the support set only.
    """

    name = "Reptile"

    def __init__(self, model: nn.Module, n_way: int = 5, k_shot: int = 1, n_query: int = 15, inner_steps: int = 5,
                 inner_lr: float = 1e-3, meta_step: float = 1.0, inner_optimizer: str = "adam",
                 inner_batch: int | None = None, test_inner_batch: int | None = None, **kwargs):
        if inner_optimizer not in ("adam", "sgd"):
            raise ValueError(f"inner_optimizer must be 'adam' or 'sgd', got {inner_optimizer!r}")
        if kwargs.get("first_order") is False:
            raise ValueError("Reptile is first-order by construction; do not pass first_order=False")
        if kwargs.get("vectorize"):
            raise ValueError("Reptile trains each task with its own optimizer state; it has no vectorized path")
        if "meta_lr" in kwargs:
            raise ValueError("Reptile has no outer optimizer: its outer step size is meta_step, not meta_lr")
        kwargs.pop("first_order", None)
        self.meta_step_size = _check_positive("meta_step", meta_step)
        self.inner_optimizer = inner_optimizer
        if (inner_batch is not None or test_inner_batch is not None) and inner_optimizer != "adam":
            raise ValueError("inner_batch and test_inner_batch need inner_optimizer='adam'")
        self.inner_batch = None if inner_batch is None else _check_count("inner_batch", inner_batch, 1)
        self.test_inner_batch = None if test_inner_batch is None else _check_count("test_inner_batch",
                                                                                   test_inner_batch, 1)
        self._batch_rng = torch.Generator().manual_seed(kwargs.get("seed", 0))
        super().__init__(model, n_way=n_way, k_shot=k_shot, n_query=n_query, inner_steps=inner_steps,
                         inner_lr=inner_lr, first_order=True, **kwargs)

    def _adapt(self, params, x, y, steps, first_order=True, batch: int | None = None):
        if self.inner_optimizer == "sgd":
            return super()._adapt(params, x, y, steps, first_order=True)
        return self._adam(params, x, y, steps, batch)

    def _test_adapt(self, params, x, y, steps):
        """At test time the support set only, in minibatches of ``test_inner_batch``."""
        return self._adapt(params, x, y, steps, batch=self.test_inner_batch)

    def _minibatches(self, n: int, batch: int | None):
        """Index tensors of consecutive minibatches of a shuffled pool of ``n``, reshuffled when used up."""
        if batch is None or batch >= n:
            while True:
                yield None
        while True:
            order = torch.randperm(n, generator=self._batch_rng)
            for start in range(0, n - batch + 1, batch):
                yield order[start:start + batch]

    def _adam(self, params: dict, x, y, steps: int, batch: int | None = None, beta2: float = 0.999,
              eps: float = 1e-8) -> dict:
        """Adam with β1 = 0 (RMSprop with bias correction), functional, no graph; full-batch
        or on minibatches of ``batch`` examples."""
        names = list(params) if self.adapt_names() is None else list(self.adapt_names())
        adapted = {n: p.detach() for n, p in params.items()}
        second = {n: torch.zeros_like(adapted[n]) for n in names}
        buffers = self._buffers()
        batches = self._minibatches(len(x), batch)
        for t in range(1, steps + 1):
            for n in names:
                adapted[n].requires_grad_(True)
            rows = next(batches)
            xb, yb = (x, y) if rows is None else (x[rows.to(x.device)], y[rows.to(y.device)])
            loss = self.loss_fn(functional_forward(self.model, adapted, buffers, xb), yb)
            grads = torch.autograd.grad(loss, [adapted[n] for n in names], allow_unused=True)
            with torch.no_grad():
                for n, g in zip(names, grads):
                    if g is None:
                        continue
                    second[n].mul_(beta2).addcmul_(g, g, value=1 - beta2)
                    denom = (second[n] / (1 - beta2**t)).sqrt().add_(eps)
                    adapted[n] = (adapted[n] - self.inner_lr * g / denom).detach()
        return {n: p.detach() for n, p in adapted.items()}

    def _pooled(self, task):
        sx, sy, qx, qy = self._task_tensors(task)
        return torch.cat([sx, qx]), torch.cat([sy, qy])

    def _task_weights(self, tasks) -> tuple[list[dict], float]:
        """The weights trained on each task's pooled data, and their mean final pooled loss."""
        theta = {n: p.detach().requires_grad_(True) for n, p in self.model.named_parameters()}
        results, total = [], 0.0
        with torch.enable_grad():
            for task in tasks:
                x, y = self._pooled(task)
                phi = {n: p.detach() for n, p in self._adapt(theta, x, y, self.inner_steps,
                                                             batch=self.inner_batch).items()}
                with torch.no_grad():
                    total += self.loss_fn(functional_forward(self.model, phi, self._buffers(), x), y).item()
                results.append(phi)
        return results, total / len(tasks)

    def meta_loss(self, tasks):
        """Mean over ``tasks`` of the pooled loss after the inner training (a number, no graph)."""
        return torch.tensor(self._task_weights(tasks)[1])

    def meta_gradient(self, tasks) -> dict[str, torch.Tensor]:
        """The Reptile direction ``θ − mean_tasks(φ_task)``; the update is ``θ ← θ − ε · direction``."""
        if len(tasks) == 0:
            raise ValueError("meta_gradient needs at least one task")
        phis, _ = self._task_weights(tasks)
        return {n: (p.detach() - torch.stack([phi[n] for phi in phis]).mean(dim=0))
                for n, p in self.model.named_parameters()}

    def meta_step(self, tasks) -> float:
        """``θ ← θ + ε · mean_tasks(φ_task − θ)``; returns and records the mean pooled loss."""
        if len(tasks) == 0:
            raise ValueError("meta_step needs at least one task")
        phis, value = self._task_weights(tasks)
        step = len(self.history) + 1
        finite = all(torch.isfinite(phi[n]).all() for phi in phis for n in phi)
        if not math.isfinite(value):
            self._fail(step, f"loss became {value}")
        if not finite:
            self._fail(step, "produced non-finite weights")
        with torch.no_grad():
            for n, p in self.model.named_parameters():
                p.add_(torch.stack([phi[n] for phi in phis]).mean(dim=0) - p, alpha=self.meta_step_size)
        self.history.append(value)
        self.episodes_seen += len(tasks)
        return value
