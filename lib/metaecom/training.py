"""Training: the one meta-training loop, plain supervised training, and early stopping.

- :class:`MetaLearner` -- what every meta-learner in :mod:`metaecom.methods` inherits: a
  method defines its meta-loss on a list of tasks (:meth:`MetaLearner.meta_loss`) and
  gets the rest from here -- the outer optimiser (Adam with ``meta_lr``), seeding, a
  progress bar, a time budget (``max_seconds``), a non-finite loss stopping the run with
  the meta-step named before any weight changes, optional gradient clipping, the loss
  ``history``, ``tasks_seen`` and ``train_seconds``.
- :func:`fit_regression` -- plain gradient training of a (batched) regressor, with
  predictions at checkpoints: the non-meta-learning baselines of the first chapters.
- :func:`train_with_early_stopping` -- train in rounds, score on validation tasks after
  each, keep the best round's weights, and return the whole curve: the one early-stopping
  loop, for any training that can be run a given number of steps at a time; the weights
  it keeps are :class:`BestCheck`'s, which a loop the package does not drive can use too.
- :func:`meta_train_with_early_stopping` -- that loop for any :class:`MetaLearner` (MAML,
  ANIL, Reptile, ProtoNet, CNP, MANN, ...): validation before meta-training and after
  every ``every`` meta-steps, the best weights restored, and an
  :class:`EarlyStoppingResult` saying which step was kept and whether meta-training
  improved on the starting weights at all.

One name per concept, used by every method: ``meta_steps`` (outer updates),
``tasks_per_step`` (tasks per outer update), ``meta_lr`` (outer learning rate),
``inner_lr`` / ``inner_steps`` (adaptation, where a method has an inner loop) and
``tasks_seen`` (tasks trained on so far).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from metaecom.checks import check_count, check_positive
from metaecom.device import get_device
from metaecom.progress import progress
from metaecom.tasks.episodes import task_batches


class MetaLearner:
    """The one meta-training loop; a method supplies :meth:`meta_loss` and :meth:`modules`.

    Subclasses call :meth:`_start_training` in their constructor. Each
    :meth:`meta_step` evaluates the meta-loss on a list of tasks, stops with a
    ``FloatingPointError`` naming the step if it is not finite, back-propagates, clips
    the gradient norm at ``clip_norm`` (when set) and takes one optimiser step.
    :meth:`meta_train_tasks` (explicit tasks) and a method's own ``meta_train`` (tasks
    sampled from labelled data) both run :meth:`_run`, which seeds torch, shows a progress
    bar, honours a time budget and adds the wall time to ``train_seconds``.

    The outer optimiser is Adam on :meth:`meta_parameters`, made on first use and kept
    across calls, unless ``fresh_optimizer_per_call`` (the metric methods: each
    ``meta_train`` call starts a new Adam and learning-rate schedule).
    """

    name = "meta-learner"
    clip_norm: float | None = None
    fresh_optimizer_per_call = False

    def _start_training(self, meta_lr: float, tasks_per_step: int, seed: int, device) -> None:
        """Check and store the settings every meta-learner has; start the counters."""
        self.meta_lr = check_positive("meta_lr", meta_lr)
        self.tasks_per_step = check_count("tasks_per_step", tasks_per_step, 1)
        self.seed = seed
        self.device = torch.device(device) if device is not None else get_device()
        self.history: list[float] = []   # meta-loss of every meta-step
        self.tasks_seen = 0              # tasks trained on, tasks_per_step per meta-step
        self.train_seconds = 0.0         # wall time spent meta-training
        self._optimizer: torch.optim.Optimizer | None = None
        self._schedule = None

    # --- what a method defines ----------------------------------------------------------
    def meta_loss(self, tasks: Sequence) -> torch.Tensor:
        """The loss the outer loop minimises on a list of tasks (differentiable)."""
        raise NotImplementedError

    def modules(self) -> list[nn.Module]:
        """Every module holding meta-parameters."""
        raise NotImplementedError

    def meta_parameters(self) -> dict[str, torch.Tensor]:
        """The tensors the outer loop learns, by name (default: every parameter of
        :meth:`modules`, prefixed by the module's position when there are several)."""
        modules = self.modules()
        if len(modules) == 1:
            return dict(modules[0].named_parameters())
        return {f"{i}.{name}": p for i, module in enumerate(modules) for name, p in module.named_parameters()}

    def make_optimizer(self) -> torch.optim.Optimizer:
        """The outer optimiser: Adam with ``meta_lr`` on :meth:`meta_parameters`."""
        return torch.optim.Adam(list(self.meta_parameters().values()), lr=self.meta_lr)

    def training_seed(self) -> int:
        """The torch seed set at the start of every training call."""
        return self.seed

    # --- the loop ----------------------------------------------------------------------
    def to(self, device) -> "MetaLearner":
        """Move every module to ``device``; the outer optimiser's state is dropped."""
        self.device = torch.device(device)
        for module in self.modules():
            module.to(self.device)
        self._optimizer = None
        return self

    def check_finite(self, value: float, what: str = "loss became") -> None:
        """Stop with a ``FloatingPointError`` naming the meta-step if ``value`` is not finite."""
        if not math.isfinite(value):
            raise FloatingPointError(f"{self.name}: meta-training {what} {value} at meta-step "
                                     f"{len(self.history) + 1}")

    def meta_gradients(self, tasks: Sequence) -> float:
        """Fill ``.grad`` of every meta-parameter with the meta-loss gradient; return the loss."""
        with torch.enable_grad():
            loss = self.meta_loss(tasks)
            value = loss.item()
            self.check_finite(value)
            self._optimizer.zero_grad(set_to_none=True)
            loss.backward()
        return value

    def meta_step(self, tasks: Sequence, reduce: Callable | None = None) -> float:
        """One outer update on ``tasks``; returns and records the meta-loss.

        ``reduce(method, loss, n_tasks) -> (loss, n_tasks)``, when given, runs after the
        gradients are filled and before the update: data-parallel training
        (:mod:`metaecom.distributed`) averages them across processes there, so every
        process takes the step of the whole meta-batch.
        """
        if len(tasks) == 0:
            raise ValueError("meta_step needs at least one task")
        if self._optimizer is None:
            self._optimizer = self.make_optimizer()
        value = self.meta_gradients(tasks)
        seen = len(tasks)
        if reduce is not None:
            value, seen = reduce(self, value, seen)
        if self.clip_norm is not None:
            nn.utils.clip_grad_norm_(list(self.meta_parameters().values()), self.clip_norm)
        self._optimizer.step()
        if self._schedule is not None:
            self._schedule.step()
        self.history.append(value)
        self.tasks_seen += seen
        return value

    def _run(self, next_tasks: Callable[[], list], meta_steps: int, desc: str | None = None,
             max_seconds: float | None = None) -> "MetaLearner":
        """``meta_steps`` calls of ``meta_step(next_tasks())``, stopping early after ``max_seconds``."""
        meta_steps = check_count("meta_steps", meta_steps, 0)
        if self.fresh_optimizer_per_call:
            self._optimizer = None
        torch.manual_seed(self.training_seed())
        for module in self.modules():
            module.train()
        started = time.perf_counter()
        try:
            for _ in progress(range(meta_steps), desc=desc, disable=desc is None):
                if max_seconds is not None and time.perf_counter() - started > max_seconds:
                    break
                self.meta_step(next_tasks())
        finally:
            self.train_seconds += time.perf_counter() - started
            for module in self.modules():
                module.eval()
        return self

    def meta_train_tasks(self, tasks, meta_steps: int, desc: str | None = None,
                         max_seconds: float | None = None) -> "MetaLearner":
        """Meta-train for ``meta_steps`` steps of ``tasks_per_step`` explicitly given tasks.

        ``tasks`` is one of: a callable ``tasks(rng) -> task`` (a NumPy generator seeded by
        ``seed``); a sequence of tasks, from which ``tasks_per_step`` are drawn at random
        each step (without replacement when there are enough); or an iterator yielding
        tasks (running out before the last step is an error). A task is ``(support_x,
        support_y, query_x, query_y)``. ``max_seconds`` stops earlier.
        """
        next_tasks = task_batches(tasks, self.tasks_per_step, np.random.default_rng(self.seed))
        return self._run(next_tasks, meta_steps, desc, max_seconds)


def fit_regression(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    lr: float,
    checkpoints: Iterable[int] = (),
    x_eval: torch.Tensor | None = None,
    desc: str | None = None,
) -> dict[int, np.ndarray]:
    """Train ``model`` on ``(x, y)`` with Adam and full-batch mean squared error.

    ``x``/``y`` are ``[n_models, batch, features]`` (see :class:`metaecom.models.BatchedMLP`);
    the loss is the per-model mean squared error summed over models, so models train
    independently. At each step count in ``checkpoints`` (0 means before any update) the
    model's predictions on ``x_eval`` are stored; the returned dict maps step -> NumPy
    array. Raises ``FloatingPointError`` naming the step if the loss stops being finite.
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if x.shape[:2] != y.shape[:2]:
        raise ValueError(f"x and y disagree on [n_models, batch]: {list(x.shape)} vs {list(y.shape)}")
    if x.shape[1] == 0:
        raise ValueError("cannot train on an empty batch (0 examples per model)")
    checkpoints = sorted(set(int(c) for c in checkpoints))
    if checkpoints and not 0 <= checkpoints[0] <= checkpoints[-1] <= steps:
        raise ValueError(f"checkpoints must lie in 0..steps={steps}, got {checkpoints}")
    if checkpoints and x_eval is None:
        raise ValueError("checkpoints were asked for but x_eval is None")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    predictions: dict[int, np.ndarray] = {}

    def record(step: int) -> None:
        if step in checkpoints:
            with torch.no_grad():
                predictions[step] = model(x_eval).cpu().numpy()

    record(0)
    for step in progress(range(1, steps + 1), desc=desc, disable=desc is None):
        optimizer.zero_grad(set_to_none=True)
        loss = ((model(x) - y) ** 2).mean(dim=(1, 2)).sum()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training loss became {loss.item()} at step {step} of {steps} (lr={lr})")
        loss.backward()
        optimizer.step()
        record(step)
    return predictions


class BestCheck:
    """The best of a run's validation checks, and a copy of ``modules``' weights at it.

    :meth:`check` records a score at a step and copies every module's ``state_dict``
    (parameters and buffers) when the score is strictly better than every earlier one, so
    a tie keeps the earlier step; :meth:`restore` loads the copy back. Call it first with
    the starting weights (step 0): "never improved" then restores the start exactly. Lower
    is better unless ``higher_is_better``. This is the one keep-best mechanism of the
    package: :func:`train_with_early_stopping` uses it, and so does a loop the package does
    not drive (sentence-transformers' trainer, through a callback).
    """

    def __init__(self, modules: Sequence[nn.Module], higher_is_better: bool = False):
        if not modules:
            raise ValueError("modules must name the module(s) whose weights early stopping restores")
        self.modules, self.sign = list(modules), -1.0 if higher_is_better else 1.0
        self.best_step: int | None = None
        self.best_score = float("nan")
        self._state = None

    def check(self, step: int, score: float) -> None:
        score = float(score)
        if self._state is None or self.sign * score < self.sign * self.best_score:
            self.best_step, self.best_score = int(step), score
            self._state = [copy.deepcopy(module.state_dict()) for module in self.modules]

    def restore(self) -> None:
        if self._state is None:
            raise RuntimeError("no check was recorded, so there are no weights to restore")
        for module, state in zip(self.modules, self._state):
            module.load_state_dict(state)


def train_with_early_stopping(train: Callable[[int], float], validate: Callable[[], float],
                              modules: Sequence[nn.Module], max_steps: int, every: int,
                              higher_is_better: bool = False, desc: str | None = None) -> pd.DataFrame:
    """Call ``train(steps)`` in rounds of ``every`` steps, up to ``max_steps``, scoring with
    ``validate()`` before the first round and after each; restore ``modules`` to the best round.

    ``train(steps)`` trains for that many steps and returns the mean training loss of the
    round; ``validate()`` returns a score, lower is better unless ``higher_is_better``.
    Returns one row per round: ``step``, ``train_loss`` (NaN for step 0) and ``validation``;
    the attribute ``best_step`` of the returned frame names the round that was kept, and
    ``improved`` says whether it is later than step 0. Only a strictly better score moves
    the kept round, so a tie keeps the earlier (shorter) one; ``best_step == 0`` means
    training did not improve on the starting weights, which are then restored exactly.
    For a :class:`MetaLearner`, :func:`meta_train_with_early_stopping` builds ``train`` and
    ``modules`` for you.
    """
    if every < 1 or max_steps < 0:
        raise ValueError(f"every must be >= 1 and max_steps >= 0, got {every} and {max_steps}")
    best = BestCheck(modules, higher_is_better)
    rows = [{"step": 0, "train_loss": float("nan"), "validation": float(validate())}]
    best.check(0, rows[0]["validation"])
    for _ in progress(range(-(-max_steps // every)), desc=desc, disable=desc is None):
        steps = min(every, max_steps - rows[-1]["step"])
        loss = float(train(steps))
        score = float(validate())
        rows.append({"step": rows[-1]["step"] + steps, "train_loss": loss, "validation": score})
        if not np.isfinite(score):
            raise FloatingPointError(f"the validation score became {score} after {rows[-1]['step']} steps")
        best.check(rows[-1]["step"], score)
    best.restore()
    curve = pd.DataFrame(rows)
    curve.attrs["best_step"] = best.best_step
    curve.attrs["improved"] = best.best_step > 0
    return curve


@dataclass
class EarlyStoppingResult:
    """What :func:`meta_train_with_early_stopping` kept, and the curve it chose from.

    - ``kept_step``: the number of meta-steps behind the weights the method now has.
      **0 means meta-training did not improve the validation score over the starting
      weights**; the method was restored to exactly those weights and should be reported
      as "not improved by meta-training", not as a meta-trained model.
    - ``improved``: ``kept_step > 0``.
    - ``start_score`` / ``kept_score``: the validation score before meta-training and at
      the kept step.
    - ``trained_steps``: meta-steps run in all, over ``len(curve) - 1`` rounds; the method's
      ``history`` and ``tasks_seen`` count all of them, not only those up to the kept step.
    - ``curve``: one row per validation check -- ``step``, ``train_loss`` (mean meta-loss
      of the round; NaN at step 0) and ``validation``.
    """

    kept_step: int
    improved: bool
    start_score: float
    kept_score: float
    trained_steps: int
    higher_is_better: bool
    curve: pd.DataFrame

    def __str__(self) -> str:
        if not self.improved:
            return (f"kept step 0: not improved by meta-training (validation {self.start_score:.4g} before; "
                    f"{self.trained_steps} meta-steps tried)")
        return (f"kept step {self.kept_step} of {self.trained_steps}: validation {self.start_score:.4g} before "
                f"meta-training, {self.kept_score:.4g} at the kept step")


def _continuing(tasks, batch_size: int, seed: int):
    """The tasks that one uninterrupted ``meta_train_tasks(tasks, ...)`` call would draw, as an
    endless iterator, so meta-training in rounds draws them in the same order (a later
    round continues where the previous one stopped instead of replaying its draws)."""
    next_batch = task_batches(tasks, batch_size, np.random.default_rng(seed))
    while True:
        yield from next_batch()


def meta_train_with_early_stopping(method: MetaLearner, validate: Callable[[], float], max_steps: int,
                                   every: int, *, tasks=None, x=None, y=None, higher_is_better: bool = False,
                                   desc: str | None = None) -> EarlyStoppingResult:
    """Meta-train any :class:`MetaLearner` with its meta-training budget chosen on validation.

    Meta-trains ``method`` in rounds of ``every`` meta-steps, up to ``max_steps``; calls
    ``validate()`` (a number: e.g. the mean accuracy or error on validation tasks that are
    not meta-trained on) before any meta-training and after every round; at the end
    restores the weights of every module of ``method.modules()`` (Meta-SGD's learned rates
    and batch-norm statistics included) to the best-scoring check. Lower is better unless
    ``higher_is_better``. The meta-training data is either ``tasks`` (anything
    :meth:`MetaLearner.meta_train_tasks` takes: a sequence, a callable ``tasks(rng)`` or an
    iterator) or labelled data ``x, y`` for the method's own ``meta_train(x, y,
    meta_steps=...)``, which draws fresh episodes each round.

    With ``tasks``, the rounds draw the tasks one uninterrupted ``meta_train_tasks`` call
    would draw, in the same order (restarting the draws every round would train every
    round on the same ``every`` batches of tasks). What is *not* carried over
    between rounds is the torch random state (each training call reseeds it) and, for the
    metric methods, Adam's state and learning-rate schedule (they restart every call).

    Returns an :class:`EarlyStoppingResult`. Its ``kept_step`` is the meta-step of the kept
    weights: **``kept_step == 0`` means meta-training never beat the starting weights on
    validation; the method then has exactly its starting weights and should be reported as
    "not improved by meta-training".** Ties keep the earlier step.
    """
    if (tasks is None) == (x is None):
        raise ValueError("pass the meta-training data either as tasks=... or as x=..., y=... (exactly one)")
    if x is not None and y is None:
        raise ValueError("x was given without its labels y")
    if not isinstance(method, MetaLearner):
        raise TypeError(f"{type(method).__name__} is not a MetaLearner: use train_with_early_stopping with a "
                        "train(steps) function and the modules to restore")
    if tasks is not None:
        tasks = _continuing(tasks, method.tasks_per_step, method.seed)

    def train(steps: int) -> float:
        if tasks is not None:
            method.meta_train_tasks(tasks, meta_steps=steps)
        else:
            method.meta_train(x, y, meta_steps=steps)
        return float(np.mean(method.history[-steps:]))

    curve = train_with_early_stopping(train, validate, method.modules(), max_steps, every,
                                      higher_is_better=higher_is_better, desc=desc)
    kept = int(curve.attrs["best_step"])
    scores = curve.set_index("step")["validation"]
    return EarlyStoppingResult(kept_step=kept, improved=kept > 0, start_score=float(scores.loc[0]),
                               kept_score=float(scores.loc[kept]), trained_steps=int(curve["step"].iloc[-1]),
                               higher_is_better=higher_is_better, curve=curve)
