"""Early stopping for meta-training: train in rounds, score on held-out tasks, keep the best.

A meta-learner with few training tasks (a few hundred users, a few dozen intents) keeps
lowering its training loss long after it has stopped getting better on tasks it has not
seen: it starts to memorise the training tasks. Validation tasks -- users, intents or
classes that are in neither the training nor the test split -- say when that happens.
:func:`train_with_early_stopping` trains in rounds, scores after each round, and at the
end restores the weights of the best round, so the reader also gets the whole curve.
"""

from __future__ import annotations

import copy
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from torch import nn

from metaecom.progress import progress


def train_with_early_stopping(train: Callable[[int], float], validate: Callable[[], float],
                              modules: Sequence[nn.Module], max_steps: int, every: int,
                              higher_is_better: bool = False, desc: str | None = None) -> pd.DataFrame:
    """Call ``train(steps)`` in rounds of ``every`` steps, up to ``max_steps``, scoring with
    ``validate()`` before the first round and after each; restore ``modules`` to the best round.

    ``train(steps)`` trains for that many steps and returns the mean training loss of the
    round; ``validate()`` returns a score, lower is better unless ``higher_is_better``.
    Returns one row per round: ``step``, ``train_loss`` (NaN for step 0) and ``validation``;
    the attribute ``best_step`` of the returned frame names the round that was kept.
    """
    if every < 1 or max_steps < 0:
        raise ValueError(f"every must be >= 1 and max_steps >= 0, got {every} and {max_steps}")
    if not modules:
        raise ValueError("modules must name the module(s) whose weights early stopping restores")
    sign = -1.0 if higher_is_better else 1.0

    def snapshot():
        return [copy.deepcopy(module.state_dict()) for module in modules]

    rows = [{"step": 0, "train_loss": float("nan"), "validation": float(validate())}]
    best_score, best_step, best_state = sign * rows[0]["validation"], 0, snapshot()
    for _ in progress(range(-(-max_steps // every)), desc=desc, disable=desc is None):
        steps = min(every, max_steps - rows[-1]["step"])
        loss = float(train(steps))
        score = float(validate())
        rows.append({"step": rows[-1]["step"] + steps, "train_loss": loss, "validation": score})
        if not np.isfinite(score):
            raise FloatingPointError(f"the validation score became {score} after {rows[-1]['step']} steps")
        if sign * score < best_score:
            best_score, best_step, best_state = sign * score, rows[-1]["step"], snapshot()
    for module, state in zip(modules, best_state):
        module.load_state_dict(state)
    curve = pd.DataFrame(rows)
    curve.attrs["best_step"] = best_step
    return curve
