"""Points and status, decided in the grader's own process from two executed notebooks.

**Points.** For each test cell, the student's records (from the hidden tests run after the
student's cells) are compared with the reference records (the same hidden tests after
the teacher's solution, same parameters): same number of values, same shapes, and no number
further from the reference than ``atol + rtol * max|reference|`` (the book's relative
error), with the tolerances the *teacher's* run recorded. A match earns the test's
points, anything else earns none. Only outputs of the grader's own last cell that carry
this run's token are read; what the student's cells print or write is never looked at.

**Status** says how the run went, the first that applies (the feedback says which cell
did what):

- ``invalid-notebook``: the file is not a readable notebook; 0 points
- ``grader-error``: the grader or the teacher's reference failed (not the student's fault)
- ``timeout``: the submission ran past its time limit and was stopped; 0 points
- ``kernel-died``: the Python kernel crashed or was killed; 0 points
- ``memory-limit``: a cell ran out of memory (``MemoryError``); the other cells ran
- ``cell-timeout``: a cell ran past its time limit and was interrupted; the others ran
- ``not-attempted``: every answer cell is exactly as released
- ``missing-cells``: an answer cell (by ``grade_id``) is not in the submission
- ``cell-error``: a cell raised an exception; the other cells still ran
- ``incomplete``: some answer cells still hold the stub (``raise NotImplementedError()``)
- ``ok``: none of the above.

Errors in the public test cells (a failed self-check) do not change the status; they
appear in the feedback.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

import numpy as np

from metaecom.assignments.assemble import HIDDEN_CELL_ID, Layout
from metaecom.assignments.harness import MIME
from metaecom.assignments.markers import Test

__all__ = ["TestResult", "CellProblem", "hidden_payloads", "compare", "score_test", "cell_problems", "status_of",
           "stopped_at", "ReferenceFailed"]

STATUSES = ("ok", "incomplete", "not-attempted", "missing-cells", "cell-error", "cell-timeout", "memory-limit",
            "timeout", "kernel-died", "invalid-notebook", "grader-error")


class ReferenceFailed(RuntimeError):
    """The teacher's reference run did not produce a test's values: fix the assignment."""


@dataclass
class TestResult:
    grade_id: str
    points: float
    earned: float
    reasons: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.earned == self.points


@dataclass
class CellProblem:
    """An exception in one executed cell: which cell, of what kind, and the message."""

    cell: str
    origin: str
    ename: str
    evalue: str

    @property
    def kind(self) -> str:
        text = f"{self.ename} {self.evalue}"
        if "MemoryError" in self.ename or "can't allocate memory" in text or "out of memory" in text.lower():
            return "memory"
        if self.ename == "KeyboardInterrupt":
            return "timeout"
        if self.ename == "NotImplementedError":
            return "unanswered"
        return "error"


def hidden_payloads(notebook, token: str) -> dict[str, dict]:
    """The records of each test, read from the grader's last cell, only if they carry ``token``."""
    if notebook is None or not notebook.cells:
        return {}
    last = notebook.cells[-1]
    if last.get("metadata", {}).get("metaecom", {}).get("origin") != HIDDEN_CELL_ID:
        return {}
    found: dict[str, dict] = {}
    for output in last.get("outputs", []):
        data = output.get("data", {}).get(MIME)
        if not isinstance(data, dict) or data.get("token") != token:
            continue
        try:
            payload = json.loads(data["payload"])
            found.setdefault(str(payload["grade_id"]), payload)
        except (ValueError, KeyError, TypeError):
            continue
    return found


def _floats(data: list) -> np.ndarray:
    return np.array([float(x) for x in data], dtype=float)


def _describe(value: dict) -> str:
    kind = value.get("kind")
    if kind == "array":
        return f"an array of shape {tuple(value['shape'])}"
    if kind == "tuple":
        return f"{len(value['items'])} values"
    return f"{kind} {value.get('value')!r}"[:200]


def compare(expected: dict, got: dict, rtol: float, atol: float) -> str | None:
    """None when ``got`` matches ``expected`` (both from :func:`~.harness.to_data`), else why not."""
    if got.get("kind") == "unreadable":
        return f"the value is not numbers ({got.get('value')})"
    if expected["kind"] in ("array", "number") and got.get("kind") in ("array", "number"):
        want = _floats(expected["data"]).reshape(expected["shape"]) if expected["kind"] == "array" else \
            np.array(float(expected["value"]))
        have = _floats(got["data"]).reshape(got["shape"]) if got["kind"] == "array" else np.array(float(got["value"]))
        if want.shape != have.shape:
            return f"expected shape {want.shape}, got shape {have.shape}"
        if want.size == 0:
            return None
        difference = np.abs(have - want)
        allowed = atol + rtol * float(np.nanmax(np.abs(want), initial=0.0))
        if not np.isfinite(have).all() and np.isfinite(want).all():
            return "got NaN or infinity where the reference is finite"
        if float(np.nanmax(difference, initial=0.0)) <= allowed and (np.isnan(have) == np.isnan(want)).all():
            return None
        index = np.unravel_index(int(np.nanargmax(difference)), want.shape) if want.ndim else ()
        where = f" at index {tuple(int(i) for i in index)}" if want.ndim else ""
        return (f"{np.count_nonzero(~(difference <= allowed))} of {want.size} numbers are off; the one furthest "
                f"off is {have[index]:.6g} instead of {want[index]:.6g}{where} (allowed difference: {allowed:.2g}, "
                f"{rtol:g} of the largest expected value)")
    if expected["kind"] == "tuple" and got.get("kind") == "tuple":
        if len(expected["items"]) != len(got["items"]):
            return f"expected {len(expected['items'])} values, got {len(got['items'])}"
        for number, (want, have) in enumerate(zip(expected["items"], got["items"]), start=1):
            reason = compare(want, have, rtol, atol)
            if reason:
                return f"value {number} of {len(expected['items'])}: {reason}"
        return None
    if expected["kind"] == got.get("kind") and expected.get("value") == got.get("value"):
        return None
    return f"expected {_describe(expected)}, got {_describe(got)}"


def _explain_error(error: dict, seconds: float) -> str:
    ename, evalue = error.get("ename", ""), error.get("evalue", "")
    if ename == "NameError":
        name = re.search(r"name '([^']+)' is not defined", evalue)
        what = f"`{name.group(1)}`" if name else "a name the test uses"
        return (f"{what} is not defined when the tests run: was it renamed, did its cell raise an exception, "
                "or was the cell deleted? Keep the function names given in the answer cells")
    if ename == "NotImplementedError":
        return "not answered yet: the answer still raises NotImplementedError"
    if ename == "HiddenTestTimeout":
        return f"your code took longer than the {seconds:g} s a test may take (an endless loop?)"
    return f"calling your code raised {error.get('line') or ename}"


def score_test(test: Test, reference: dict | None, student: dict | None, seconds: float) -> TestResult:
    """Points for one test cell from the reference and student payloads."""
    if reference is None or reference.get("error"):
        why = (reference or {}).get("error") or "no values"
        raise ReferenceFailed(f"the teacher's solution did not pass hidden test {test.grade_id}: {why}")
    result = TestResult(test.grade_id, test.points, 0.0)
    if student is None:
        result.reasons.append("the hidden tests did not run: the notebook stopped before them")
    elif student.get("error"):
        result.reasons.append(_explain_error(student["error"], seconds))
    elif len(student["records"]) != len(reference["records"]):
        result.reasons.append(f"the test recorded {len(student['records'])} values, expected "
                              f"{len(reference['records'])}")
    else:
        for want, have in zip(reference["records"], student["records"]):
            reason = compare(want["value"], have["value"], want["rtol"], want["atol"])
            if reason:
                hint = f" Hint: {want['hint']}" if want.get("hint") else ""
                result.reasons.append(f"{want['label']}: {reason}.{hint}")
    if not result.reasons:
        result.earned = test.points
    return result


def _cell_name(cell) -> tuple[str, str]:
    origin = cell.get("metadata", {}).get("metaecom", {}).get("origin", "teacher")
    grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
    first = next((line for line in cell.source.splitlines() if line.strip()), "")[:60]
    names = {"answer": f"answer cell {grade_id}", "test": f"public check {grade_id}",
             "added": f"a cell you added (starting `{first}`)", HIDDEN_CELL_ID: "the grader's hidden tests"}
    return names.get(origin, f"cell {grade_id}"), origin


def cell_problems(notebook) -> list[CellProblem]:
    """Every exception in the executed notebook, cell by cell."""
    problems = []
    for cell in notebook.cells if notebook is not None else []:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                name, origin = _cell_name(cell)
                problems.append(CellProblem(name, origin, output.get("ename", ""), str(output.get("evalue", ""))[:500]))
    return problems


def stopped_at(notebook) -> str | None:
    """Where a stopped run was: the cell papermill marked as running, else the first code
    cell that never finished (papermill saves the notebook as cells start)."""
    cells = [c for c in (notebook.cells if notebook is not None else []) if c.cell_type == "code"]
    for cell in cells:
        if cell.get("metadata", {}).get("papermill", {}).get("status") == "running":
            return _cell_name(cell)[0]
    for cell in cells:
        if cell.get("execution_count") is None and cell.source.strip():
            return _cell_name(cell)[0]
    return None


def status_of(outcome: str, problems: list[CellProblem], layout: Layout, n_answers: int) -> str:
    """The submission's status from the run's outcome, its cell problems and its layout."""
    if outcome in ("timeout", "kernel-died"):
        return outcome
    if outcome != "completed":
        return "grader-error"
    kinds = {p.kind for p in problems}
    if "memory" in kinds:
        return "memory-limit"
    if "timeout" in kinds:
        return "cell-timeout"
    answers = n_answers - len(layout.missing)
    if answers > 0 and len(set(layout.untouched)) >= answers:
        return "not-attempted"
    if layout.missing:
        return "missing-cells"
    if any(p.kind == "error" and p.origin not in ("test", HIDDEN_CELL_ID) for p in problems):
        return "cell-error"
    if layout.stubbed:
        return "incomplete"
    return "ok"


def total(results: list[TestResult]) -> float:
    return math.fsum(r.earned for r in results)
