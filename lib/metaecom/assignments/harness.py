"""What runs inside the notebook's kernel: hidden tests *record values*, they do not judge.

A hidden test in the teacher's notebook computes things with the student's functions
and passes each result to :func:`record`::

    ### BEGIN HIDDEN TESTS
    logits = probe_logits(seed, 7, 5)
    record("gradient, 7 products x 5 categories", cross_entropy_grad(logits, labels),
           rtol=1e-8, hint="divide by the number of products: the loss is a mean")
    ### END HIDDEN TESTS

The grader runs the same hidden code twice with the same parameters: once after the
student's cells, in the student's (sandboxed) kernel, and once after the teacher's
solution, in a trusted kernel. It compares the two lists of records in its own process
(:mod:`.score`). So no expected value is ever written in a test, a student's kernel never
sees one, and nothing the student's code prints or writes decides a grade.

:func:`run_hidden` is what the grader appends as the last cell. For each graded test it
makes a fresh namespace from the notebook's globals, defines the teacher's helper cells
again (so a student who edited a check helper changes nothing), runs the hidden code under
a time limit, and sends the records back as one ``display_data`` output of the type
:data:`MIME`, carrying the run's random token. Values travel as JSON text (arrays as
nested lists), so what arrives at the grader is plain data, not objects the student's
code could have rigged.
"""

from __future__ import annotations

import json
import math
import numbers
import signal
import time
import traceback
from typing import Any, Callable

__all__ = ["MIME", "record", "run_hidden", "to_data", "autograd_used"]

MIME = "application/vnd.metaecom.hidden-test+json"
MAX_ELEMENTS = 100_000


class HiddenTestTimeout(Exception):
    """A hidden test ran past its time limit."""


def _number(x) -> float | str:
    x = float(x)
    return x if math.isfinite(x) else repr(x)   # JSON has no NaN or infinity


def to_data(value: Any) -> dict:
    """``value`` as plain JSON data: arrays (numpy, torch, nested lists of numbers) become
    ``{"kind": "array", "shape", "data"}``; numbers, booleans, strings and None keep their
    kind; a tuple or list holding arrays or tensors (such as ``(dW, db)``) becomes
    ``{"kind": "tuple", "items"}``."""
    if value is None or isinstance(value, (bool, str)):
        return {"kind": type(value).__name__, "value": value}
    if isinstance(value, numbers.Real):   # Python and NumPy scalars
        return {"kind": "number", "value": _number(value)}
    if hasattr(value, "detach"):   # a torch tensor
        value = value.detach().cpu().numpy()
    if isinstance(value, (tuple, list)) and any(hasattr(v, "shape") for v in value):
        return {"kind": "tuple", "items": [to_data(v) for v in value]}
    import numpy as np

    array = np.asarray(value)
    if array.dtype == bool:
        array = array.astype(float)
    if array.dtype.kind not in "iuf":
        raise TypeError(f"cannot record a value of type {type(value).__name__} "
                        f"(dtype {array.dtype}); record numbers, arrays or tensors")
    if array.size > MAX_ELEMENTS:
        raise ValueError(f"a recorded value has {array.size} elements; at most {MAX_ELEMENTS}")
    return {"kind": "array", "shape": list(array.shape),
            "data": [_number(x) for x in array.astype(float).reshape(-1)]}


def _recorder(records: list) -> Callable:
    def record(label: str, value: Any, *, rtol: float = 1e-7, atol: float = 1e-10, hint: str = ""):
        """Record one value of a hidden test (see the module docstring)."""
        entry = {"label": str(label), "rtol": float(rtol), "atol": float(atol), "hint": str(hint)}
        try:
            entry["value"] = to_data(value)
        except Exception as error:   # the student's value is not data: a failed check
            entry["value"] = {"kind": "unreadable", "value": f"{type(value).__name__}: {error}"}
        records.append(entry)
    return record


# In the teacher's own runs the hidden code executes in place: records are checked for
# being data, then dropped.
record = _recorder([])


def autograd_used(fn: Callable, *args, **kwargs) -> bool:
    """Whether calling ``fn`` made torch record a graph for autograd (``backward``,
    ``torch.autograd.grad`` or ``torch.func`` inside it). For "by hand" questions."""
    import torch

    used = []

    def pack(tensor):
        used.append(True)
        return tensor

    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            out = fn(*args, **kwargs)
    except RuntimeError as error:
        if "saved tensor hooks" in str(error) or "saved_tensors_hooks" in str(error):
            return True   # torch.func refuses to run under the hooks
        raise
    tensors = out if isinstance(out, (tuple, list)) else [out]
    return bool(used) or any(getattr(t, "requires_grad", False) for t in tensors)


def _on_alarm(signum, frame):
    raise HiddenTestTimeout("the hidden test ran past its time limit")


def run_hidden(namespace: dict, token: str, tests: list, helpers: str = "", seconds: float = 30) -> None:
    """Run each ``(grade_id, code)`` of ``tests`` and display its records (module docstring)."""
    from IPython.display import display

    for grade_id, code in tests:
        records: list = []
        scope = dict(namespace)
        error, started = None, time.perf_counter()
        previous = signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            exec(compile(helpers, "<the assignment's helper cells>", "exec"), scope)
            scope["record"] = _recorder(records)
            exec(compile(code, f"<hidden tests of {grade_id}>", "exec"), scope)
        except (Exception, SystemExit) as exc:
            lines = traceback.format_exception_only(type(exc), exc)
            error = {"ename": type(exc).__name__, "evalue": str(exc)[:2000],
                     "line": lines[-1].strip()[:2000]}
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        payload = {"grade_id": grade_id, "records": records, "error": error,
                   "seconds": round(time.perf_counter() - started, 3)}
        display({MIME: {"token": token, "payload": json.dumps(payload)}}, raw=True)
        print(f"hidden test {grade_id}: ran ({len(records)} values sent to the grader)")
