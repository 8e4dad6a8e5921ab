"""Notebook budgets: one checked place for every number that sets how long a chapter runs.

Each chapter has one cell tagged ``parameters`` (papermill reads it) holding plain
assignments such as ``n_test_stores = 1000``. The cell after it calls
:func:`check_parameters` with a :class:`Budget` per name. That call

- rejects a name it does not know (a typo in ``papermill -p n_tset_stores 5`` would
  otherwise be ignored silently and the run would use the default). In a notebook it
  reads the names from the cells themselves -- the parameters cell and the cell papermill
  injects after it -- so re-running the parameters cell after the whole notebook has run
  checks the same names as the first time, not every variable the kernel now holds,
- rejects a value outside its allowed range, naming the parameter and the range,
- and, when ``METAECOM_SMOKE=1`` is set, caps each budget at its smoke value so the whole
  notebook runs in seconds (used by the test suite and CI). A value already below the
  cap is kept, so ``papermill -p n_test_stores 7`` still means 7 in smoke mode.
"""

from __future__ import annotations

import ast
import difflib
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


class ParameterError(ValueError):
    """A notebook parameter that is unknown, missing, of the wrong type or out of range.

    In Jupyter (and so in papermill's output) it shows as its message alone: the first
    lines of a failed run say which parameter to fix and how, not a traceback through
    this module.
    """

    def _render_traceback_(self) -> list[str]:  # IPython's hook for a custom traceback
        return [f"{type(self).__name__}: {self}"]


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

    def __init__(self, values: dict[str, Any], requested: dict[str, Any], smoke: bool,
                 injected: tuple[str, ...] = ()):
        self._values = dict(values)
        self._requested = dict(requested)
        self.smoke = smoke
        self.injected = tuple(injected)  # the names papermill injected (-p name value)

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
            if name in self.injected:
                note += "   (injected)"
            lines.append(f"  {name:<{width}} = {value!r}{note}")
        return "\n".join(lines)


# The first line of the cell papermill injects after the parameters cell.
_INJECTED_HEADER = "# Parameters"
# The parameters most recently checked in this process, for the run record.
last_checked: "Parameters | None" = None


def _assigned_names(source: str) -> list[str] | None:
    """The names a cell assigns at top level, or None if the cell is not only assignments."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    names = []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign) else None
        if targets is None or not all(isinstance(target, ast.Name) for target in targets):
            return None
        names += [target.id for target in targets]
    return names


def _cell_parameters(namespace: Mapping[str, Any], budgets) -> tuple[set[str], set[str]] | None:
    """In a notebook: the names the parameters cell assigns and the names papermill injected,
    read from the kernel's input history (the cells run just before this check). None when
    there is no history (a plain dict, as in the tests)."""
    history = namespace.get("In")
    if not isinstance(history, list) or len(history) < 2:
        return None
    previous, earlier = history[-2], history[-3] if len(history) >= 3 else ""
    injected: set[str] = set()
    if previous.lstrip().startswith(_INJECTED_HEADER):
        injected = set(_assigned_names(previous) or [])
        previous = earlier
    names = _assigned_names(previous) or []
    # only a cell of plain assignments that sets at least one budget is the parameters cell
    own = set(names) if any(name in budgets for name in names) else set()
    return own | injected, injected


def _accepted(budgets: Mapping[str, Budget]) -> str:
    return "This notebook accepts:\n" + "\n".join(f"  {rule.describe(name)}" for name, rule in budgets.items())


def check_parameters(namespace: Mapping[str, Any], budgets: Mapping[str, Budget]) -> Parameters:
    """Check a notebook's parameters against their budgets and apply smoke mode.

    ``namespace`` is the notebook's ``globals()`` right after the parameters cell (and the
    cell papermill injects after it). In a notebook the names to check are those the
    parameters cell and papermill's cell assign; elsewhere (a plain dict) every public
    variable of a papermill-injectable type must be a known parameter. Either way a
    misspelt injected name is an error, not a no-op. Raises :class:`ParameterError` (a
    ``ValueError``) whose first line says what to fix (the parameter, its allowed range,
    the likely intended name).
    """
    global last_checked
    smoke = smoke_mode()
    from_cells = _cell_parameters(namespace, budgets)
    if from_cells is not None:
        candidates, injected = from_cells
    else:
        injected = set()
        candidates = {
            name
            for name, value in namespace.items()
            if not name.startswith("_")
            and name not in _KERNEL_NAMES
            and isinstance(value, _PARAMETER_TYPES)
            and not isinstance(value, types.ModuleType)
        }
    unknown = sorted(name for name in candidates if name not in budgets)
    if unknown:
        hints = [f"did you mean {close[0]!r} instead of {name!r}?" for name in unknown
                 for close in [difflib.get_close_matches(name, list(budgets), n=1)] if close]
        raise ParameterError(f"unknown parameter {', '.join(map(repr, unknown))}"
                         + (f" ({'; '.join(hints)})" if hints else "") + ". " + _accepted(budgets))
    values: dict[str, Any] = {}
    requested: dict[str, Any] = {}
    for name, rule in budgets.items():
        if name not in namespace:
            raise ParameterError(f"parameter {name!r} is missing from the parameters cell; expected {rule.describe(name)}")
        value = namespace[name]
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not numeric or (rule.kind is int and not isinstance(value, int)):
            raise ParameterError(f"parameter {name!r} = {value!r} has the wrong type; expected {rule.describe(name)}")
        if not rule.low <= value <= rule.high:
            raise ParameterError(f"parameter {name!r} = {value!r} is out of range; allowed: {rule.low} <= {name} <= {rule.high}")
        requested[name] = value
        values[name] = min(value, rule.smoke) if smoke and rule.smoke is not None else value
    last_checked = Parameters(values, requested, smoke, tuple(sorted(injected & set(budgets))))
    return last_checked
