"""The one interface every few-shot method in the book follows.

A method goes through three stages, so chapters can compare any methods side by side:

1. ``meta_train(x, y)`` -- learn from the meta-training classes (features ``x`` and labels
   ``y``). A transfer baseline pretrains a network on them; a meta-learner samples
   episodes from them. Methods that need no such stage (a linear probe on frozen
   features) simply return themselves.
2. ``adapt(support_x, support_y) -> Adapted`` -- turn one task's support set (episode
   labels ``0..N-1``, every class present; or numeric targets for a regression method)
   into a task-specific predictor. The method itself is not changed, so it can adapt to
   many tasks in turn.
3. ``Adapted.predict_proba(query_x)`` -- class probabilities for the query set, shape
   ``[n_query, N]``; ``predict`` gives the arg-max labels, or for a regression method
   (:class:`RegressionAdapted`) the predicted values ``[n_query]``.

Inputs are arrays whose first axis indexes examples: feature vectors ``[n, d]`` or images
``[n, channels, height, width]``. The checks here give every method the same clear errors
on bad input.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch
from torch.nn import functional as F


def _as_array(x, what: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"{what} must be an array [examples, features...] (2-D or more), got shape {x.shape}")
    return x


def to_numpy(x) -> np.ndarray:
    """A tensor (any device, detached) or array-like as a NumPy array, without copying an array."""
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def as_tensor(x, dtype=torch.float32, device=None) -> torch.Tensor:
    """An array, tensor or nested list as a tensor of ``dtype`` on ``device`` (no copy when it
    already is one)."""
    return torch.as_tensor(to_numpy(x), dtype=dtype, device=device)


def check_support(support_x, support_y) -> tuple[np.ndarray, np.ndarray, int]:
    """Validate a support set; return (x float32, y int64, number of classes N)."""
    x = _as_array(support_x, "support_x")
    y = np.asarray(support_y)
    if len(x) == 0:
        raise ValueError("the support set is empty: a method needs at least one labelled example per class")
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"support_y must be 1-D with one label per support example; got {y.shape} for {len(x)} examples")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"support labels must be integer episode labels 0..N-1, got dtype {y.dtype}")
    classes = np.unique(y)
    if classes[0] != 0 or classes[-1] != len(classes) - 1:
        raise ValueError(f"support labels must be 0..N-1 with every class present; got {classes.tolist()}")
    return x.astype(np.float32), y.astype(np.int64), len(classes)


def check_query(query_x, feature_shape, query_y=None, n_classes: int | None = None) -> np.ndarray:
    """Validate a query set against the adapted task (feature shape; labels among the support classes)."""
    x = _as_array(query_x, "query_x")
    feature_shape = tuple(int(v) for v in np.atleast_1d(feature_shape))
    if x.shape[1:] != feature_shape:
        raise ValueError(f"query_x has feature shape {x.shape[1:]} but the support set had {feature_shape}")
    if query_y is not None:
        y = np.asarray(query_y)
        outside = sorted(set(y.tolist()) - set(range(n_classes)))
        if outside:
            raise ValueError(f"query labels {outside} are not among the support classes 0..{n_classes - 1}")
    return x.astype(np.float32)


class Adapted(ABC):
    """A predictor for one task, made by :meth:`Method.adapt`."""

    feature_shape: tuple
    n_classes: int

    @abstractmethod
    def _proba(self, x: np.ndarray) -> np.ndarray: ...

    def predict_proba(self, query_x) -> np.ndarray:
        """Class probabilities ``[n_query, N]`` (rows sum to one)."""
        return self._proba(check_query(query_x, self.feature_shape))

    def predict(self, query_x) -> np.ndarray:
        return self.predict_proba(query_x).argmax(axis=1)


class RegressionAdapted(Adapted):
    """A regression model adapted to one task: ``predict(query_x)`` gives one value per row.

    Regression methods (MAML and kin with a squared-error loss, the CNP) return this from
    ``adapt``, so they are used exactly like the classifiers. The query keeps its
    floating-point type (a float64 model predicts in float64).
    """

    n_classes = None

    @abstractmethod
    def _values(self, x: np.ndarray) -> np.ndarray: ...

    def _proba(self, x):
        raise ValueError("a regression model predicts values, not class probabilities: use predict")

    def predict(self, query_x) -> np.ndarray:
        """Predictions ``[n_query]`` (NumPy)."""
        x = to_numpy(query_x)
        if x.ndim < 2 or x.shape[1:] != tuple(self.feature_shape):
            raise ValueError(f"query_x has feature shape {x.shape[1:]} but the support set had "
                             f"{tuple(self.feature_shape)}")
        return self._values(x)


def check_values(support_x, support_y) -> tuple[np.ndarray, np.ndarray]:
    """Validate a regression support set (may be empty only where a method allows it):
    ``x`` ``[n, features...]`` and one numeric target per row; returned unconverted."""
    x, y = to_numpy(support_x), to_numpy(support_y)
    if x.ndim < 2:
        raise ValueError(f"support_x must be an array [examples, features...], got shape {x.shape}")
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"support_y must be 1-D with one target per support example; got {y.shape} "
                         f"for {len(x)} examples")
    if not np.issubdtype(y.dtype, np.number):
        raise ValueError(f"support targets must be numbers, got dtype {y.dtype}")
    return x, y


class Method(ABC):
    """A few-shot method: ``meta_train`` once, then ``adapt`` to each new task."""

    name: str = "method"

    def meta_train(self, x, y) -> "Method":
        """Learn from the meta-training classes; the default does nothing."""
        return self

    @abstractmethod
    def adapt(self, support_x, support_y) -> Adapted: ...

    def __repr__(self) -> str:
        return self.name


def accuracy(adapted: Adapted, query_x, query_y) -> float:
    """Share of query examples classified correctly (query labels must be support classes)."""
    check_query(query_x, adapted.feature_shape, query_y, adapted.n_classes)
    return float(np.mean(adapted.predict(query_x) == np.asarray(query_y)))


def cross_entropy(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Classification loss: cross-entropy of scores ``[n, classes]`` against labels ``[n]``."""
    if output.dim() != 2:
        raise ValueError(f"a classifier must output scores [n, classes], got shape {list(output.shape)}")
    return F.cross_entropy(output, target)


def _one_value_each(output: torch.Tensor, target: torch.Tensor, what: str) -> torch.Tensor:
    """``output`` as ``[n]``, one value per target (a ``[n, 1]`` output is squeezed)."""
    if output.dim() == 2 and output.shape[1] == 1:
        output = output.squeeze(1)
    if output.shape != target.shape:
        raise ValueError(f"{what} must output [n] or [n, 1] values for {len(target)} targets, "
                         f"got shape {list(output.shape)}")
    return output


def squared_error(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Regression loss: mean squared error of predictions ``[n]`` or ``[n, 1]`` against targets ``[n]``."""
    return F.mse_loss(_one_value_each(output, target, "a regression model"), target)


# What the targets of each loss are: episode labels, or numbers. A gradient method adapts
# and predicts accordingly; a loss of your own is a classification loss unless it says
# ``my_loss.targets = "values"``.
cross_entropy.targets = "classes"
squared_error.targets = "values"


def binary_log_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Loss for a yes/no outcome: binary cross-entropy of logits ``[n]`` or ``[n, 1]``
    against targets 0/1. A regression method with this loss predicts logits; the
    probability is ``1 / (1 + exp(-logit))``."""
    return F.binary_cross_entropy_with_logits(_one_value_each(output, target, "a yes/no model (logits)"),
                                              target)


binary_log_loss.targets = "values"


def targets_of(loss_fn) -> str:
    """``"classes"`` or ``"values"``: what ``loss_fn`` compares the model's outputs with."""
    kind = getattr(loss_fn, "targets", "classes")
    if kind not in ("classes", "values"):
        raise ValueError(f"a loss's targets attribute must be 'classes' or 'values', got {kind!r}")
    return kind
