"""From the teacher's notebook to the student's: solutions stubbed, hidden tests removed.

``python -m metaecom.assignments release <teacher.ipynb> <out_dir>`` writes
``<out_dir>/<same name>.ipynb``. The student version keeps every cell, its order and its
nbgrader metadata (the grader matches cells by ``grade_id``), and the public self-checks;
it loses the solutions (replaced by a stub that raises ``NotImplementedError``), the
hidden tests and every output. It is checked before it is written: no solution or
hidden-test marker may survive (the tests also check that no solution line does).
"""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat

from metaecom.assignments.markers import (BEGIN_HIDDEN, BEGIN_SOLUTION, CODE_STUB, END_HIDDEN, END_SOLUTION,
                                          MARKDOWN_STUB, cell_info, load_assignment,
                                          replace_regions)

__all__ = ["student_version", "release"]


def student_version(teacher: nbformat.NotebookNode, name: str = "the notebook") -> nbformat.NotebookNode:
    """The student version of a teacher's notebook (a new notebook; ``teacher`` is unchanged)."""
    student = copy.deepcopy(teacher)
    for number, cell in enumerate(student.cells, start=1):
        where = f"{name}, cell {number}"
        info = cell_info(cell)
        source = cell.source
        if info.get("solution"):
            stub = CODE_STUB if cell.cell_type == "code" else MARKDOWN_STUB
            if BEGIN_SOLUTION in source:
                source = replace_regions(source, BEGIN_SOLUTION, END_SOLUTION, stub, where)
            else:
                source = stub
        if info.get("grade"):
            source = replace_regions(source, BEGIN_HIDDEN, END_HIDDEN, None, where)
        cell.source = source
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
        cell.metadata.pop("papermill", None)
    student.metadata.pop("papermill", None)
    _check(student, name)
    return student


def _check(student, name: str) -> None:
    """Fail if a solution or hidden-test marker is still in the student version."""
    for number, cell in enumerate(student.cells, start=1):
        for marker in (BEGIN_SOLUTION, END_SOLUTION, BEGIN_HIDDEN, END_HIDDEN):
            if marker in cell.source:
                raise AssertionError(f"{name}, cell {number}: '{marker}' is still in the student version")


def release(teacher_path: str | Path, out_dir: str | Path) -> Path:
    """Write the student version of ``teacher_path`` into ``out_dir``; return its path."""
    assignment = load_assignment(teacher_path)   # checks markers and metadata first
    student = student_version(assignment.notebook, Path(teacher_path).name)
    nbformat.validate(student)
    out = Path(out_dir) / Path(teacher_path).name
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(student, str(out))
    return out
