"""Training loops shared across the book.

- :func:`fit_regression` -- plain gradient training of a (batched) regressor, with
  predictions at checkpoints. Used for the three non-meta-learning baselines of the
  first chapter: a model trained from scratch on a new task, a model pooled over many
  tasks, and that pooled model fine-tuned on a new task. Recording predictions at
  several step counts in one run lets a chapter pick the number of steps on validation
  tasks without retraining.
- :func:`run_meta_steps` -- the outer loop of meta-learners trained on explicit tasks
  (MAML and kin, neural processes): steps, a progress bar, a time budget, the clock.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable

import numpy as np
import torch

from metaecom.progress import progress


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


def run_meta_steps(learner, next_tasks: Callable[[], list], steps: int, desc: str | None = None,
                   max_seconds: float | None = None):
    """Call ``learner.meta_step(next_tasks())`` ``steps`` times; returns ``learner``.

    Seeds torch with ``learner.seed`` first, shows a progress bar when ``desc`` is given,
    stops early once ``max_seconds`` of wall time have passed, and adds the time spent to
    ``learner.train_seconds`` (also when a step raises).
    """
    torch.manual_seed(learner.seed)
    started = time.perf_counter()
    try:
        for _ in progress(range(steps), desc=desc, disable=desc is None):
            if max_seconds is not None and time.perf_counter() - started > max_seconds:
                break
            learner.meta_step(next_tasks())
    finally:
        learner.train_seconds += time.perf_counter() - started
    return learner
