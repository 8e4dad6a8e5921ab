"""What every gradient-based meta-learner shares: a model adapted by gradient steps.

:class:`GradientMethod` holds the model, the inner-loop settings and the loss, turns task
arrays into tensors, draws N-way K-shot episodes for :meth:`GradientMethod.meta_train`,
and adapts to a new task's support set with the functional inner loop of
:mod:`metaecom.methods.functional`. The outer loop is the one of
:class:`metaecom.training.MetaLearner`. What differs between the algorithms is the
meta-loss, and it lives in their own files: :mod:`metaecom.methods.maml` (MAML, FOMAML,
ANIL, Meta-SGD) and :mod:`metaecom.methods.reptile`.

**Classification or regression** is decided by the loss function passed in, not by a
flag: :func:`~metaecom.methods.base.cross_entropy` (the default; model output
``[n, n_way]``, episode labels) or :func:`~metaecom.methods.base.squared_error` (model
output ``[n, 1]``, numeric targets). ``adapt`` returns a classifier or a
:class:`~metaecom.methods.base.RegressionAdapted` accordingly. A *task* is
``(support_x, support_y, query_x, query_y)``. Everything runs on the CPU or on CUDA
(``device``, default :func:`metaecom.device.get_device`) in the model's floating-point
type (float32 usually; float64 works when the model is float64).
"""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import torch
from torch import nn

from metaecom.checks import check_count, check_positive
from metaecom.evaluate import rmse
from metaecom.methods.base import (Adapted, Method, RegressionAdapted, as_tensor, check_query, check_support,
                                   check_values,
                                   cross_entropy, targets_of, to_numpy)
from metaecom.methods.functional import (copies_per_class, functional_forward, head_parameter_names, inner_adapt,
                                         shared_head_names)
from metaecom.tasks.episodes import FewShotSampler, episode_tasks
from metaecom.training import MetaLearner


class GradientMethod(MetaLearner, Method):
    """A model that adapts to a task by ``inner_steps`` SGD steps of size ``inner_lr``.

    ``model`` maps a batch of inputs to ``[n, n_way]`` scores (classification) or
    ``[n, 1]`` predictions (regression, ``loss_fn=squared_error``). A model whose head is a
    :class:`~metaecom.models.SharedHead` adapts to tasks with any number of classes (MAML,
    FOMAML, ANIL, Meta-SGD; ``n_way`` then only sets the episodes of :meth:`meta_train`). ``adapt`` runs the
    inner loop for ``test_inner_steps`` steps (default ``inner_steps``) without a
    second-order graph. ``meta_steps`` is the default length of :meth:`meta_train`, each
    meta-step on ``tasks_per_step`` tasks; ``history`` holds the meta-loss per meta-step.
    """

    name = "GradientMethod"
    first_order_default = False
    vectorize: bool | str = False  # the MAML family can compute a meta-batch at once (fast_maml)

    def __init__(self, model: nn.Module, n_way: int = 5, k_shot: int = 1, n_query: int = 15, inner_steps: int = 1,
                 inner_lr: float = 0.4, meta_lr: float = 1e-3, tasks_per_step: int = 4,
                 first_order: bool | None = None, meta_steps: int = 1000, seed: int = 0, device=None,
                 test_inner_steps: int | None = None, loss_fn: Callable = cross_entropy,
                 head_names: Iterable[str] | None = None):
        if not any(True for _ in model.parameters()):
            raise ValueError("the model has no parameters to meta-learn")
        self.model = model
        self.targets = targets_of(loss_fn)
        self._loss_fn = loss_fn
        self.n_way = check_count("n_way", n_way, 1)
        self.k_shot = check_count("k_shot", k_shot, 1)
        self.n_query = check_count("n_query", n_query, 1)
        self.inner_steps = check_count("inner_steps", inner_steps, 0)
        self.test_inner_steps = (self.inner_steps if test_inner_steps is None
                                 else check_count("test_inner_steps", test_inner_steps, 0))
        self.inner_lr = check_positive("inner_lr", inner_lr)
        self.meta_steps = check_count("meta_steps", meta_steps, 0)
        if self.first_order_default and first_order is False:
            raise ValueError(f"{self.name} is first-order by definition; use MAML for second-order meta-gradients")
        self.first_order = self.first_order_default if first_order is None else bool(first_order)
        self.head_names = head_parameter_names(model, head_names)
        # a SharedHead (UNICORN-MAML) gives every task one copy per class: any number of classes
        self.shared_head = shared_head_names(model)
        if self.shared_head and self.targets != "classes":
            raise ValueError("a SharedHead is a classification head; this method has a regression loss")
        self._start_training(meta_lr, tasks_per_step, seed, device)
        self.model.to(self.device)
        self.dtype = next(model.parameters()).dtype

    # --- what subclasses change -------------------------------------------------------
    def adapt_names(self) -> list[str] | None:
        """The parameters the inner loop adapts; None means all of them."""
        return None

    def inner_lrs(self) -> dict | None:
        """Per-parameter inner learning rates (Meta-SGD), or None for the scalar ``inner_lr``."""
        return None

    # --- parameters, tensors, the loss ---------------------------------------------------
    def modules(self) -> list[nn.Module]:
        """Every module holding meta-parameters (the model; Meta-SGD adds its learning rates)."""
        return [self.model]

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
        return as_tensor(x, dtype=self.dtype, device=self.device)

    def _y(self, y) -> torch.Tensor:
        return as_tensor(y, dtype=torch.long if self.targets == "classes" else self.dtype, device=self.device)

    def _task_tensors(self, task) -> tuple[torch.Tensor, ...]:
        if len(task) != 4:
            raise ValueError("a task is a tuple (support_x, support_y, query_x, query_y); "
                             f"got a {type(task).__name__} of length {len(task)}")
        sx, sy, qx, qy = task
        return self._x(sx), self._y(sy), self._x(qx), self._y(qy)

    def task_parameters(self, params: dict, y: torch.Tensor) -> dict:
        """The weights a task starts from: ``params``, with a shared head copied once per class
        of the task's labels ``y`` (episode labels ``0..N-1``)."""
        return copies_per_class(params, self.shared_head, int(y.max()) + 1 if self.shared_head else 0)

    def loss_fn(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss passed in, after checking a classifier's output has ``n_way`` columns
        (one per class of the task, with a shared head)."""
        if self.targets == "classes" and self.shared_head:
            if output.dim() != 2 or output.shape[1] <= int(target.max()):
                raise ValueError(f"{self.name}: the model must output one score per class, got shape "
                                 f"{list(output.shape)} for labels up to {int(target.max())}")
        elif self.targets == "classes" and (output.dim() != 2 or output.shape[1] != self.n_way):
            raise ValueError(f"{self.name}: the model must output [n, n_way={self.n_way}] scores, "
                             f"got shape {list(output.shape)}")
        return self._loss_fn(output, target)

    def _adapt(self, params: dict, x: torch.Tensor, y: torch.Tensor, steps: int, first_order: bool) -> dict:
        """The inner loop: ``steps`` SGD steps from ``params`` on ``(x, y)``."""
        return inner_adapt(self.model, params, self._buffers(), x, y, self.loss_fn, steps, self.inner_lr,
                           first_order=first_order, adapt_names=self.adapt_names(), per_param_lr=self.inner_lrs())

    def meta_gradient(self, tasks) -> dict[str, torch.Tensor]:
        """The gradient of :meth:`meta_loss` over ``tasks`` with respect to each meta-parameter
        (keys as in :meth:`meta_parameters`); nothing is updated."""
        meta = self.meta_parameters()
        with torch.enable_grad():
            loss = self.meta_loss(tasks)
            grads = torch.autograd.grad(loss, list(meta.values()), allow_unused=True)
        return {name: (torch.zeros_like(p) if g is None else g.detach())
                for (name, p), g in zip(meta.items(), grads)}

    # --- meta-training on labelled data ---------------------------------------------------
    def meta_train(self, x, y, meta_steps: int | None = None, desc: str | None = None,
                   max_seconds: float | None = None) -> "GradientMethod":
        """Classification: ``meta_steps`` meta-steps (default: the constructor's), each on
        ``tasks_per_step`` N-way K-shot episodes drawn from the classes in ``y``.
        ``max_seconds`` stops earlier once that much wall time has passed."""
        if self.targets != "classes":
            raise ValueError(f"{self.name} has a regression loss: use meta_train_tasks with explicit tasks")
        y = np.asarray(y)
        # a later call continues with fresh episodes instead of replaying the first call's
        seed = self.seed if not self.history else [self.seed, len(self.history)]
        sampler = FewShotSampler(y, self.n_way, self.k_shot, self.n_query, seed=seed)
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} rows but y has {len(y)}")
        return self._run(lambda: episode_tasks(x, sampler, self.tasks_per_step),
                         self.meta_steps if meta_steps is None else meta_steps, desc, max_seconds)

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
            adapted = self._test_adapt(self.task_parameters(params, support_y), support_x, support_y, steps)
        return {n: p.detach() for n, p in adapted.items()}

    def _test_adapt(self, params: dict, x: torch.Tensor, y: torch.Tensor, steps: int) -> dict:
        """The inner loop as run at test time (no second-order graph)."""
        return self._adapt(params, x, y, steps, first_order=True)

    # whether k steps then m more equal k + m steps from the start (plain SGD: yes; an
    # optimiser with state, such as Reptile's Adam, restarts its moments: no)
    resumable_adaptation = True

    def adapted_after(self, support_x, support_y, steps: Iterable[int]) -> dict[int, Adapted]:
        """``{s: the task's predictor after s inner steps}`` for every count in ``steps``.

        Equivalent to setting ``test_inner_steps = s`` and calling :meth:`adapt` once per
        count, but when adaptation can be resumed (SGD) it runs ``max(steps)`` steps once
        and keeps a snapshot at each count: what choosing the number of test-time steps on
        validation tasks needs, and what a plot of error against steps needs.
        """
        counts = sorted({check_count("steps", s, 0) for s in steps})
        if not counts:
            raise ValueError("steps is empty: give at least one number of inner steps")
        kept, out = self.test_inner_steps, {}
        try:
            if self.targets == "values" and len(np.asarray(support_x)) == 0:
                start = self.adapt(support_x, support_y)  # K = 0: the start, whatever the count
                return {s: start for s in counts}
            if not self.resumable_adaptation:
                for s in counts:
                    self.test_inner_steps = s
                    out[s] = self.adapt(support_x, support_y)
                return out
            self.test_inner_steps = 0
            start = self.adapt(support_x, support_y)
            x, y = self._x(support_x), self._y(np.asarray(support_y))
            params, done = start.params, 0
            for s in counts:
                if s > done:
                    adapt = set(self.adapt_names() or [n for n, _ in self.model.named_parameters()])
                    fresh = {n: (p.detach().requires_grad_(True) if n in adapt else p.detach())
                             for n, p in params.items()}
                    with torch.enable_grad():
                        params = {n: p.detach() for n, p in
                                  self._test_adapt(fresh, x, y, s - done).items()}
                    done = s
                out[s] = start.with_params(params)
            return out
        finally:
            self.test_inner_steps = kept

    def adapt(self, support_x, support_y) -> Adapted:
        """Inner steps on the support set; a classifier, or a regressor for a regression loss."""
        if self.targets == "values":
            x, y = check_values(support_x, support_y)
            if len(x) == 0:  # K = 0: nothing to adapt to, the start itself predicts
                start = {n: p.detach() for n, p in self.task_parameters(
                    dict(self.model.named_parameters()), self._y(y)).items()}
                return _GradientRegression(self, start, x.shape[1:])
            return _GradientRegression(self, self.adapted_parameters(self._x(x), self._y(y)), x.shape[1:])
        x, y, n = check_support(support_x, support_y)
        if n != self.n_way and not self.shared_head:
            raise ValueError(f"{self.name}'s model has {self.n_way} outputs, so it adapts to {self.n_way}-way "
                             f"tasks; the support set has {n} classes (a SharedHead adapts to any number)")
        params = self.adapted_parameters(self._x(support_x), self._y(y))
        return _GradientClassifier(self, params, n, x.shape[1:])

    def _forward(self, params: dict, x) -> np.ndarray:
        with torch.no_grad():
            return functional_forward(self.model, params, self._buffers(), self._x(x))


class _GradientClassifier(Adapted):
    def __init__(self, method: GradientMethod, params: dict, n_classes: int, feature_shape):
        self.method, self.params = method, params
        self.n_classes, self.feature_shape = n_classes, tuple(feature_shape)

    def with_params(self, params: dict) -> "_GradientClassifier":
        return _GradientClassifier(self.method, params, self.n_classes, self.feature_shape)

    def predict_proba(self, query_x) -> np.ndarray:
        check_query(query_x, self.feature_shape)
        return self._proba(to_numpy(query_x))  # keep the caller's precision (float64 stays float64)

    def _proba(self, x):
        return torch.softmax(self.method._forward(self.params, x), dim=1).cpu().numpy()


class _GradientRegression(RegressionAdapted):
    """Batch norm, if any, uses the statistics of the batch passed to ``predict``."""

    def __init__(self, method: GradientMethod, params: dict, feature_shape):
        self.method, self.params, self.feature_shape = method, params, tuple(feature_shape)

    def with_params(self, params: dict) -> "_GradientRegression":
        return _GradientRegression(self.method, params, self.feature_shape)

    def _values(self, x):
        return self.method._forward(self.params, x).reshape(len(x)).cpu().numpy()


def choose_test_steps(method: GradientMethod, tasks, choices=(1, 2, 5, 10),
                      error: Callable | None = None, statistic: str = "median") -> dict[int, float]:
    """Choose ``method.test_inner_steps`` on validation tasks, and return every choice's score.

    Each count in ``choices`` is scored by the median over ``tasks`` (``(support_x,
    support_y, query_x, query_y)`` tuples) of ``error(predictions, query_y)`` -- by default
    the RMSE for a regression loss and the error rate (1 - accuracy) for a classifier --
    and the lowest wins (ties: the fewer steps). The median, so that one task on which
    adaptation diverges cannot decide. A non-finite error counts as infinitely bad.
    ``statistic="mean"`` scores by the mean instead: right when the tasks' errors differ
    in scale and the large ones matter (a median over products, most of which barely
    sell, can prefer not adapting at all); a count that diverges on any task then scores
    inf.

    The number of test-time steps is a hyperparameter like any other: fix it on the
    meta-validation tasks, for the baselines (fine-tuning, a network from its random
    start) as for the meta-learners, never on the test tasks.
    """
    tasks = list(tasks)
    if not tasks:
        raise ValueError("choose_test_steps needs at least one validation task")
    if statistic not in ("median", "mean"):
        raise ValueError(f'statistic must be "median" or "mean", got {statistic!r}')
    choices = sorted({check_count("choices", c, 0) for c in choices})
    if not choices:
        raise ValueError("choices is empty: give the numbers of inner steps to choose from")
    if error is None:
        if method.targets == "values":
            def error(predicted, target):
                return float(rmse(predicted, target))
        else:
            def error(predicted, target):
                return float(np.mean(np.asarray(predicted) != np.asarray(target)))
    scores = np.empty((len(tasks), len(choices)))
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging count scores inf, quietly
        for i, (sx, sy, qx, qy) in enumerate(tasks):
            adapted = method.adapted_after(sx, sy, choices)
            scores[i] = [error(adapted[c].predict(qx), qy) for c in choices]
    scores = np.where(np.isfinite(scores), scores, np.inf)
    summary = np.median(scores, axis=0) if statistic == "median" else scores.mean(axis=0)
    method.test_inner_steps = choices[int(np.argmin(summary))]
    return dict(zip(choices, summary.tolist()))
