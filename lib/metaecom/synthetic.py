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

PRICE_LOW, PRICE_HIGH = 1.0, 10.0
SIZE = (40.0, 160.0)
REFERENCE_PRICE = (3.0, 8.0)
SENSITIVITY = (0.5, 2.0)

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
