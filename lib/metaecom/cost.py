"""What a computation costs: wall time, and the memory autograd keeps for the backward pass.

Meta-gradients are expensive because the outer backward pass must revisit every inner
step: MAML keeps the activations (and, being second-order, the inner gradients' own
graphs) of all inner steps alive until the meta-gradient is taken, while first-order
methods let them go step by step. :func:`measure` reports both sides of that trade:

- the **median wall time** of ``fn()`` over ``repeats`` runs, after one untimed warm-up
  run (CUDA work is synchronised before the clock is read);
- the **peak bytes of tensors saved for backward** while ``fn()`` runs, tracked with
  :func:`torch.autograd.graph.saved_tensors_hooks`: every tensor autograd saves for a
  backward pass is wrapped in a small holder that adds its size to a live counter when
  it is saved and subtracts it when autograd lets it go (the holder is freed); the
  largest value the counter reaches is the peak. This depends only on the computation,
  not on the device or allocator, so a CPU run and a GPU run report the same number.

Caveats, all of which make it a *measure of the graph*, not of the process's memory:

- a tensor saved twice (by two operations, or twice by one) counts twice, although it
  occupies memory once; a saved view counts its own size, not its base's;
- tensors that exist anyway but are saved (a layer's weights, the input batch) count in
  full, while memory that is not saved for backward — parameters, optimiser state,
  activations no backward needs, gradients, temporary buffers of the kernels — is not
  counted at all;
- ``torch.func`` transforms (``grad``, ``vmap`` ...) refuse saved-tensor hooks: for such a
  function :func:`measure` times it and reports the memory as ``None``;
- the counter sees the calling thread (and the autograd engine's threads, which inherit
  the hooks); memory saved by other threads is missed.
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable, NamedTuple

import torch

__all__ = ["Cost", "measure", "saved_tensor_peak"]


class _Counter:
    """Live and peak bytes of the tensors currently saved for backward."""

    def __init__(self) -> None:
        self.live = 0
        self.peak = 0
        self.saved = 0  # how many tensors were saved in all


class _Held:
    """A saved tensor and its size; the size leaves the live count when autograd drops it."""

    __slots__ = ("tensor", "nbytes", "counter")

    def __init__(self, tensor: torch.Tensor, counter: _Counter) -> None:
        self.tensor = tensor
        self.nbytes = tensor.numel() * tensor.element_size()
        self.counter = counter
        counter.live += self.nbytes
        counter.saved += 1
        counter.peak = max(counter.peak, counter.live)

    def __del__(self) -> None:
        self.counter.live -= self.nbytes


def saved_tensor_peak(fn: Callable[[], Any]) -> tuple[Any, int]:
    """Run ``fn()`` once; return its result and the peak bytes of tensors saved for backward.

    The peak is over the whole call, including any backward passes inside ``fn`` (a graph
    freed by its backward pass no longer counts). Graphs still alive when ``fn`` returns
    (for example a loss returned without calling backward) count until they are freed.
    Raises ``RuntimeError`` for functions that use ``torch.func`` transforms, which do not
    support saved-tensor hooks. See the module's caveats.
    """
    counter = _Counter()
    with torch.autograd.graph.saved_tensors_hooks(lambda t: _Held(t, counter), lambda held: held.tensor):
        result = fn()
    return result, counter.peak


def _synchronize() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


class Cost(NamedTuple):
    """The result of :func:`measure`."""

    seconds: float                   # median wall time of one call
    saved_bytes: int | None          # peak bytes saved for backward (None: not measurable)
    runs_s: tuple[float, ...]        # the timed runs, in seconds

    @property
    def saved_mib(self) -> float | None:
        """``saved_bytes`` in MiB (2**20 bytes)."""
        return None if self.saved_bytes is None else self.saved_bytes / 2**20


def measure(fn: Callable[[], Any], repeats: int = 5) -> Cost:
    """Median wall time of ``fn()`` over ``repeats`` runs and its peak saved-for-backward bytes.

    The first, untimed run is the warm-up; it is also the run whose saved tensors are
    counted (the hooks cost a little Python per saved tensor, which is kept out of the
    timed runs). If ``fn`` uses ``torch.func`` transforms, which refuse the hooks, the
    warm-up runs without them and ``saved_bytes`` is None. See the module's caveats.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be an integer >= 1, got {repeats!r}")
    try:
        _, peak = saved_tensor_peak(fn)
    except RuntimeError as error:
        if "saved tensor hooks" not in str(error):
            raise
        peak = None
        fn()
    times = []
    for _ in range(repeats):
        _synchronize()
        start = time.perf_counter()
        fn()
        _synchronize()
        times.append(time.perf_counter() - start)
    return Cost(statistics.median(times), peak, tuple(times))
