"""A family of synthetic e-commerce tasks with known ground truth: store demand curves.

Each *store* (one task) sells the same product at prices between ``PRICE_LOW`` and
``PRICE_HIGH``. Its expected daily demand at price p follows a logistic curve

    d(p) = size / (1 + exp(sensitivity * (p - reference_price)))

— ``size`` customers are interested, and the share who buy falls from about all of them
to none as the price crosses the store's ``reference_price``, more sharply the higher
the ``sensitivity``. Stores draw these three numbers independently and uniformly from
``SIZE``, ``REFERENCE_PRICE`` and ``SENSITIVITY``. Observed sales are Poisson counts around
d(p), so noise grows with demand as it does for real counts.

Because d(p) is known, a model's error can be measured against the truth itself rather
than against noisy held-out sales. The theory chapters use this family; it never stands
in for real data in a case study.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from metaecom.device import get_device
from metaecom.models import BatchedMLP
from metaecom.training import fit_regression

PRICE_LOW, PRICE_HIGH = 1.0, 10.0
SIZE = (40.0, 160.0)
REFERENCE_PRICE = (3.0, 8.0)
SENSITIVITY = (0.5, 2.0)

#: The network of the store chapters: price -> two hidden layers of 40 ReLU units -> demand.
STORE_NETWORK = (1, 40, 40, 1)

# Fixed affine scalings that put prices and demands near [-1, 1] for neural networks.
PRICE_CENTER, PRICE_SCALE = 5.5, 2.6
DEMAND_SCALE = 100.0


@dataclass(frozen=True)
class DemandCurves:
    """The true demand curves of ``n`` stores (arrays of shape ``[n]``)."""

    size: np.ndarray
    reference_price: np.ndarray
    sensitivity: np.ndarray

    def __len__(self) -> int:
        return len(self.size)

    def __getitem__(self, index) -> "DemandCurves":
        pick = np.atleast_1d(np.arange(len(self))[index])
        return DemandCurves(self.size[pick], self.reference_price[pick], self.sensitivity[pick])

    def mean_demand(self, prices) -> np.ndarray:
        """Expected demand; ``prices`` of shape ``[m]`` (shared) or ``[n, m]`` (per store)."""
        prices = np.asarray(prices, dtype=float)
        if prices.ndim == 1:
            prices = np.broadcast_to(prices, (len(self), prices.size))
        if prices.ndim != 2 or prices.shape[0] != len(self):
            raise ValueError(f"prices must have shape [m] or [{len(self)}, m], got {prices.shape}")
        z = self.sensitivity[:, None] * (prices - self.reference_price[:, None])
        return self.size[:, None] * 0.5 * (1.0 - np.tanh(z / 2.0))  # = size / (1 + e^z), overflow-free

    def observe(self, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``k`` random (price, units sold) observations per store: arrays of shape ``[n, k]``."""
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        prices = rng.uniform(PRICE_LOW, PRICE_HIGH, size=(len(self), k))
        sales = rng.poisson(self.mean_demand(prices)).astype(float)
        return prices, sales


def sample_stores(n: int, rng: np.random.Generator) -> DemandCurves:
    """Draw ``n`` stores' true demand curves from the task distribution.

    Store i's three numbers come from the i-th row of one ``[n, 3]`` uniform draw, so the
    first stores are the same whatever ``n`` is (a smaller run sees a prefix of a larger one).
    """
    if n < 1:
        raise ValueError(f"need at least one store, got n={n}")
    low, high = np.array([SIZE, REFERENCE_PRICE, SENSITIVITY]).T
    values = low + (high - low) * rng.uniform(size=(n, 3))
    return DemandCurves(size=values[:, 0], reference_price=values[:, 1], sensitivity=values[:, 2])


def price_features(prices) -> np.ndarray:
    """Prices scaled to about [-1.7, 1.7], shaped ``[..., 1]`` for a network input."""
    return ((np.asarray(prices, dtype=float) - PRICE_CENTER) / PRICE_SCALE)[..., None]


def demand_target(demand) -> np.ndarray:
    """Demand in hundreds of units, shaped ``[..., 1]`` for a network target."""
    return (np.asarray(demand, dtype=float) / DEMAND_SCALE)[..., None]


def demand_from_output(output) -> np.ndarray:
    """Inverse of :func:`demand_target`: network output ``[..., 1]`` back to units."""
    return np.asarray(output, dtype=float)[..., 0] * DEMAND_SCALE


# ---------------------------------------------------------------------------------------
# Sinusoids: the toy regression family of the MAML paper (Finn et al. 2017, section 5.1)
# ---------------------------------------------------------------------------------------

SINE_AMPLITUDE = (0.1, 5.0)
SINE_PHASE = (0.0, float(np.pi))
SINE_X = (-5.0, 5.0)


def sinusoid(x, amplitude, phase) -> np.ndarray:
    """The true curve of a sinusoid task, ``amplitude * sin(x - phase)`` (broadcasting)."""
    return np.asarray(amplitude, dtype=float) * np.sin(np.asarray(x, dtype=float) - np.asarray(phase, dtype=float))


def _draw(value, rng: np.random.Generator, size, name: str) -> np.ndarray:
    """``value`` itself (a number: fixed) or uniform draws from it (a ``(low, high)`` range)."""
    if np.ndim(value) == 0:
        return np.full(size, float(value))
    low, high = (float(v) for v in value)
    if not low <= high:
        raise ValueError(f"{name} range must be (low, high) with low <= high, got {value!r}")
    return rng.uniform(low, high, size=size)


def sample_sinusoids(n: int, rng: np.random.Generator, amplitude=SINE_AMPLITUDE,
                     phase=SINE_PHASE) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` sinusoid tasks: arrays ``(amplitudes [n], phases [n])``, uniform in the ranges."""
    if n < 1:
        raise ValueError(f"need at least one sinusoid, got n={n}")
    return _draw(amplitude, rng, n, "amplitude"), _draw(phase, rng, n, "phase")


def sinusoid_task(rng: np.random.Generator, k_shot: int, n_query: int, amplitude=SINE_AMPLITUDE,
                  phase=SINE_PHASE, x_range=SINE_X) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One sinusoid regression task ``(support_x [k, 1], support_y [k], query_x [q, 1], query_y [q])``.

    ``amplitude`` and ``phase`` are either ``(low, high)`` ranges, from which the task's
    values are drawn uniformly (the MAML paper's task distribution by default), or numbers,
    which fix the task (e.g. values from :func:`sample_sinusoids`, to know its true curve).
    The ``k_shot + n_query`` inputs are drawn uniformly from ``x_range``; the targets are
    noise-free, ``y = amplitude * sin(x - phase)``. The tuple is what
    :meth:`metaecom.training.MetaLearner.meta_train_tasks` takes as a task,
    so ``lambda rng: sinusoid_task(rng, 10, 10)`` is a task source.
    """
    if isinstance(k_shot, bool) or int(k_shot) != k_shot or k_shot < 1:
        raise ValueError(f"k_shot must be an integer >= 1, got {k_shot!r}")
    if isinstance(n_query, bool) or int(n_query) != n_query or n_query < 0:
        raise ValueError(f"n_query must be an integer >= 0, got {n_query!r}")
    low, high = (float(v) for v in x_range)
    if not low < high:
        raise ValueError(f"x_range must be (low, high) with low < high, got {x_range!r}")
    a = _draw(amplitude, rng, 1, "amplitude")[0]
    b = _draw(phase, rng, 1, "phase")[0]
    x = rng.uniform(low, high, size=(int(k_shot) + int(n_query), 1))
    y = sinusoid(x[:, 0], a, b)
    return x[:k_shot], y[:k_shot], x[k_shot:], y[k_shot:]


def pooled_store_model(prices, sales, steps: int, lr: float, device=None, desc: str | None = None):
    """The pooled model of the store chapters: one :data:`STORE_NETWORK` trained with Adam on
    every observation of every store at once (``prices`` and ``sales`` ``[stores, obs]``).

    It learns the *average* store; the chapters fine-tune copies of it (``replicate``).
    Returns the trained :class:`~metaecom.models.BatchedMLP` with one model.
    """
    device = get_device() if device is None else torch.device(device)
    prices, sales = np.asarray(prices), np.asarray(sales)
    if prices.shape != sales.shape or prices.size == 0:
        raise ValueError(f"prices and sales must be non-empty arrays of one shape, got {prices.shape} "
                         f"and {sales.shape}")
    x = torch.as_tensor(price_features(prices.reshape(1, -1)), dtype=torch.float32, device=device)
    y = torch.as_tensor(demand_target(sales.reshape(1, -1)), dtype=torch.float32, device=device)
    model = BatchedMLP(1, STORE_NETWORK).to(device)
    fit_regression(model, x, y, steps=steps, lr=lr, desc=desc)
    return model
