"""Seeding every random number generator a chapter touches, in one call.

Reproducible numbers are a promise of this book: the same seed on the same machine and
library versions gives the same tables. GPUs may still differ in the last digits
(non-deterministic kernels); the chapters report confidence intervals that dwarf that.
"""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python's ``random``, NumPy's global state and torch (CPU and CUDA).

    Returns a fresh ``numpy.random.Generator`` seeded with the same value, which is what
    new code should draw from.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__} {seed!r}")
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in 0 .. 2**32-1, got {seed}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return np.random.default_rng(seed)


def stream(seed: int, *keys: int) -> np.random.Generator:
    """A random stream of its own for one purpose: ``default_rng([seed, *keys])``.

    Chapters give each use of randomness (training stores, test stores, an evaluation...)
    its own keys, so that changing one budget does not move the draws of the others.
    """
    return np.random.default_rng([seed, *keys])
