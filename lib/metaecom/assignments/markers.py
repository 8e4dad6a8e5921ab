"""How a teacher's notebook marks solutions and tests: nbgrader's conventions.

An assignment has **one source**, the teacher's notebook, in which

- a **solution cell** has the cell metadata ``nbgrader: {solution: true, grade_id: ...}``.
  The lines between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` are the teacher's
  answer; the released student version has ``# YOUR CODE HERE`` and
  ``raise NotImplementedError()`` in their place, indented like the marker (a markdown
  solution cell gets ``YOUR ANSWER HERE``). Without markers the whole cell is replaced.
- a **test cell** has ``nbgrader: {grade: true, grade_id: ..., points: N}``. Its code
  before ``### BEGIN HIDDEN TESTS`` is the *public* self-check, kept in the student version;
  the lines between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS`` are the hidden
  test, removed from the student version and run only by the grader. Hidden code records
  values with :func:`~metaecom.assignments.harness.record`; the grader compares them with the
  teacher's (see :mod:`.harness`). A test cell earns all its points or none, as in nbgrader:
  give a question several test cells for partial credit.
- a cell tagged ``helpers`` defines functions that tests use; the grader runs the
  teacher's version again before the hidden tests.
- every other code cell should carry ``nbgrader: {locked: true, grade_id: ...}``: the grader
  always runs the teacher's version of a locked cell, whatever the submission holds.

The notebook's own metadata, ``metaecom_assignment``, names the assignment and its
grading settings: ``id``, ``title``, ``grading_parameters`` (values papermill injects when
grading, besides the per-student ``seed``), ``time_limit_s`` (a whole submission),
``cell_time_limit_s``, ``test_time_limit_s`` (one hidden test) and ``memory_mb``.

Cells are matched by ``grade_id``, never by position. These are nbgrader's own metadata
keys and markers, so a notebook written for nbgrader needs only the ``metaecom_assignment``
block and hidden tests that record values instead of asserting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nbformat

__all__ = ["BEGIN_SOLUTION", "END_SOLUTION", "BEGIN_HIDDEN", "END_HIDDEN", "CODE_STUB", "MARKDOWN_STUB",
           "HELPERS_TAG", "Assignment", "Test", "MarkerError", "cell_info", "replace_regions", "regions",
           "load_assignment"]

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
MARKDOWN_STUB = "YOUR ANSWER HERE"
HELPERS_TAG = "helpers"
DEFAULTS = {"time_limit_s": 300, "cell_time_limit_s": 120, "test_time_limit_s": 30, "memory_mb": 2048}


class MarkerError(ValueError):
    """A teacher's notebook whose markers or metadata are inconsistent."""


def cell_info(cell) -> dict:
    """The cell's nbgrader metadata (an empty dict when it has none)."""
    info = cell.get("metadata", {}).get("nbgrader", {})
    return info if isinstance(info, dict) else {}


def regions(source: str, begin: str, end: str, where: str = "a cell") -> list[tuple[int, int]]:
    """Line ranges ``(begin_line, end_line)`` of every ``begin`` ... ``end`` region, markers included."""
    found, start = [], None
    for number, line in enumerate(source.splitlines()):
        text = line.strip()
        if text == begin:
            if start is not None:
                raise MarkerError(f"{where}: '{begin}' on line {number + 1} before the '{end}' of line {start + 1}")
            start = number
        elif text == end:
            if start is None:
                raise MarkerError(f"{where}: '{end}' on line {number + 1} has no '{begin}' before it")
            found.append((start, number))
            start = None
    if start is not None:
        raise MarkerError(f"{where}: '{begin}' on line {start + 1} is never closed by '{end}'")
    return found


def replace_regions(source: str, begin: str, end: str, stub: str | None, where: str = "a cell") -> str:
    """``source`` with each region replaced by ``stub`` (indented like its begin marker) or removed."""
    lines = source.splitlines()
    for first, last in reversed(regions(source, begin, end, where)):
        indent = lines[first][: len(lines[first]) - len(lines[first].lstrip())]
        lines[first:last + 1] = [indent + s for s in stub.splitlines()] if stub is not None else []
    return "\n".join(lines).rstrip() + ("\n" if source.endswith("\n") else "")


def inside_regions(source: str, begin: str, end: str, where: str = "a cell") -> str:
    """The code between the markers of every region, dedented to the begin marker."""
    lines, parts = source.splitlines(), []
    for first, last in regions(source, begin, end, where):
        indent = len(lines[first]) - len(lines[first].lstrip())
        parts += [line[indent:] if line[:indent].strip() == "" else line for line in lines[first + 1:last]]
    return "\n".join(parts)


@dataclass(frozen=True)
class Test:
    """One graded test cell: its id, points, public code and hidden code."""

    grade_id: str
    points: float
    public: str
    hidden: str


@dataclass
class Assignment:
    """A teacher's notebook, parsed: see the module docstring."""

    path: Path
    notebook: nbformat.NotebookNode
    id: str
    title: str
    tests: list[Test]
    solutions: list[str]
    helpers: str
    settings: dict = field(default_factory=dict)

    @property
    def max_points(self) -> float:
        return sum(test.points for test in self.tests)

    @property
    def grading_parameters(self) -> dict:
        return dict(self.settings.get("grading_parameters", {}))

    def limit(self, name: str) -> float:
        return float(self.settings.get(name, DEFAULTS[name]))


def load_assignment(path: str | Path) -> Assignment:
    """Read and check a teacher's notebook (raises :class:`MarkerError` naming the problem)."""
    path = Path(path)
    notebook = nbformat.read(str(path), as_version=4)
    meta = notebook.metadata.get("metaecom_assignment")
    if not isinstance(meta, dict) or not meta.get("id"):
        raise MarkerError(f"{path.name}: the notebook metadata has no 'metaecom_assignment' with an 'id'")
    ids, tests, solutions, helpers = set(), [], [], []
    for number, cell in enumerate(notebook.cells, start=1):
        info = cell_info(cell)
        where = f"{path.name}, cell {number}"
        grade_id = info.get("grade_id")
        if grade_id is not None:
            if grade_id in ids:
                raise MarkerError(f"{where}: grade_id {grade_id!r} is used twice")
            ids.add(grade_id)
        if cell.cell_type == "code" and not grade_id:
            raise MarkerError(f"{where}: every code cell needs nbgrader metadata with a grade_id "
                              "(locked: true for a cell students should not change)")
        if info.get("solution") or info.get("grade"):
            if not grade_id:
                raise MarkerError(f"{where}: a solution or test cell needs a grade_id")
        if info.get("solution"):
            regions(cell.source, BEGIN_SOLUTION, END_SOLUTION, where)
            solutions.append(grade_id)
        if info.get("grade"):
            if cell.cell_type != "code":
                raise MarkerError(f"{where}: test cell {grade_id!r} must be a code cell")
            points = info.get("points")
            if not isinstance(points, (int, float)) or isinstance(points, bool) or points <= 0:
                raise MarkerError(f"{where}: test cell {grade_id!r} needs points > 0, has {points!r}")
            hidden = inside_regions(cell.source, BEGIN_HIDDEN, END_HIDDEN, where)
            if not hidden.strip():
                raise MarkerError(f"{where}: test cell {grade_id!r} has no hidden test: the grader scores "
                                  "only hidden tests (### BEGIN HIDDEN TESTS ... ### END HIDDEN TESTS)")
            public = replace_regions(cell.source, BEGIN_HIDDEN, END_HIDDEN, None, where)
            tests.append(Test(grade_id, float(points), public, hidden))
        elif BEGIN_HIDDEN in cell.source:
            raise MarkerError(f"{where}: hidden tests outside a test cell (nbgrader.grade is not true)")
        if BEGIN_SOLUTION in cell.source and not info.get("solution"):
            raise MarkerError(f"{where}: solution markers outside a solution cell (nbgrader.solution is not true)")
        if HELPERS_TAG in cell.get("metadata", {}).get("tags", []):
            helpers.append(cell.source)
    if not tests:
        raise MarkerError(f"{path.name}: no test cell (nbgrader.grade: true)")
    return Assignment(path=path, notebook=notebook, id=str(meta["id"]), title=str(meta.get("title", meta["id"])),
                      tests=tests, solutions=solutions, helpers="\n\n".join(helpers), settings=dict(meta))
