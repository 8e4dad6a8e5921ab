"""Notebook budgets: one checked place for every number that sets how long a chapter runs.

Each chapter has one cell tagged ``parameters`` (papermill reads it) holding plain
assignments such as ``n_test_stores = 1000``. The cell after it calls
:func:`check_parameters` with a :class:`Budget` per name. That call

- rejects a name it does not know (a typo in ``papermill -p n_tset_stores 5`` would
  otherwise be ignored silently and the run would use the default),
- rejects a value outside its allowed range, naming the parameter and the range,
- and, when ``METAECOM_SMOKE=1`` is set, caps each budget at its smoke value so the whole
  notebook runs in seconds (used by the test suite and CI). A value already below the
  cap is kept, so ``papermill -p n_test_stores 7`` still means 7 in smoke mode.
"""

from __future__ import annotations

import os
import types
from dataclasses import dataclass
from typing import Any, Mapping

SMOKE_ENV = "METAECOM_SMOKE"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}
# Names IPython itself puts into a kernel's namespace.
_KERNEL_NAMES = {"In", "Out"}
# The value types papermill can inject.
_PARAMETER_TYPES = (bool, int, float, str, list, dict, tuple, type(None))


def smoke_mode() -> bool:
    """True when ``METAECOM_SMOKE`` asks for tiny budgets (``1``/``true``/``yes``/``on``)."""
    value = os.environ.get(SMOKE_ENV, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{SMOKE_ENV}={value!r} is not understood: use 1 (smoke run) or 0 (full run)")


@dataclass(frozen=True)
class Budget:
    """The rules for one notebook parameter.

    ``low``/``high`` bound the value (inclusive); ``smoke`` is the cap applied in smoke
    mode (None: the parameter is not a budget, e.g. a seed or a learning rate).
    ``kind`` is ``int`` or ``float``.
    """

    low: float
    high: float
    smoke: float | None = None
    kind: type = int

    def describe(self, name: str) -> str:
        return f"{name} ({self.kind.__name__}, {self.low} <= {name} <= {self.high})"


class Parameters(Mapping[str, Any]):
    """The parameters in effect, readable as attributes (``p.n_test_stores``) or by key.

    Its text form is a small table a notebook shows, so the stored output says which
    budgets produced the numbers below it.
    """

    def __init__(self, values: dict[str, Any], requested: dict[str, Any], smoke: bool):
        self._values = dict(values)
        self._requested = dict(requested)
        self.smoke = smoke

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(f"no parameter named {name!r}; have: {', '.join(self.__dict__['_values'])}") from None

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        mode = f"smoke run ({SMOKE_ENV}=1: budgets capped)" if self.smoke else "full run"
        width = max(len(name) for name in self._values) if self._values else 0
        lines = [f"parameters — {mode}"]
        for name, value in self._values.items():
            note = "" if value == self._requested[name] else f"   (capped from {self._requested[name]})"
            lines.append(f"  {name:<{width}} = {value!r}{note}")
        return "\n".join(lines)


def check_parameters(namespace: Mapping[str, Any], budgets: Mapping[str, Budget]) -> Parameters:
    """Check a notebook's parameters against their budgets and apply smoke mode.

    ``namespace`` is the notebook's ``globals()`` right after the parameters cell (and the
    cell papermill injects after it). Every public variable of a papermill-injectable type
    must be a known parameter, so a misspelt injected name is an error, not a no-op.
    Raises ``ValueError`` naming the parameter and its allowed range.
    """
    smoke = smoke_mode()
    unknown = sorted(
        name
        for name, value in namespace.items()
        if not name.startswith("_")
        and name not in _KERNEL_NAMES
        and name not in budgets
        and isinstance(value, _PARAMETER_TYPES)
        and not isinstance(value, types.ModuleType)
    )
    accepted = "; ".join(rule.describe(name) for name, rule in budgets.items())
    if unknown:
        raise ValueError(f"unknown parameter {', '.join(map(repr, unknown))}. This notebook accepts: {accepted}")
    values: dict[str, Any] = {}
    requested: dict[str, Any] = {}
    for name, rule in budgets.items():
        if name not in namespace:
            raise ValueError(f"parameter {name!r} is missing from the parameters cell; expected {rule.describe(name)}")
        value = namespace[name]
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not numeric or (rule.kind is int and not isinstance(value, int)):
            raise ValueError(f"parameter {name!r} = {value!r} has the wrong type; expected {rule.describe(name)}")
        if not rule.low <= value <= rule.high:
            raise ValueError(f"parameter {name!r} = {value!r} is out of range; allowed: {rule.low} <= {name} <= {rule.high}")
        requested[name] = value
        values[name] = min(value, rule.smoke) if smoke and rule.smoke is not None else value
    return Parameters(values, requested, smoke)
