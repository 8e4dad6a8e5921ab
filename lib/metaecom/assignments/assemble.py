"""The notebook the grader executes: the teacher's cells, the student's answers, by ``grade_id``.

A submission is never executed as it arrives. The grader rebuilds it:

- in the **teacher's order**, every locked cell, parameters cell and public test cell is
  the *teacher's* version (so edited checks, a changed seed or a deleted setup cell change
  nothing);
- each **solution cell** is the submission's cell with the same ``grade_id``, wherever
  the student moved it (two cells with one id, as when a cell is copied, both run, in the
  student's order); a solution cell that is missing is recorded, and its questions score
  what the rest of the code earns (usually nothing);
- a **cell the student added** (no known ``grade_id``) runs right after the known cell it
  followed in the submission, so helper functions the student wrote still count;
- every code cell is tagged ``raises-exception``, so an exception in one cell is recorded
  and the next cell still runs;
- the last cell calls :func:`~metaecom.assignments.harness.run_hidden` with the hidden tests
  and the run's random token. It exists only in memory and in the grader's private
  folder, never where the student's code can read it.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from metaecom.assignments.markers import CODE_STUB, Assignment, cell_info
from metaecom.assignments.release import student_version

__all__ = ["Layout", "read_submission", "assemble", "HIDDEN_CELL_ID"]

HIDDEN_CELL_ID = "__hidden_tests__"


@dataclass
class Layout:
    """What the rebuild found: answer cells missing or doubled, cells added, order changed."""

    missing: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    added_cells: int = 0
    reordered: bool = False
    untouched: list[str] = field(default_factory=list)   # answer cells exactly as released
    stubbed: list[str] = field(default_factory=list)     # answer cells that still hold the stub

    def notes(self) -> list[str]:
        out = [f"missing answer cell {grade_id}" for grade_id in self.missing]
        out += [f"answer cell {grade_id} appears more than once" for grade_id in self.duplicated]
        if self.added_cells:
            out.append(f"{self.added_cells} added code cell(s)")
        if self.reordered:
            out.append("cells reordered (fine: cells are matched by id)")
        if self.stubbed:
            out.append(f"not answered: {', '.join(self.stubbed)}")
        return out


def read_submission(path: str | Path) -> tuple[nbformat.NotebookNode | None, str | None]:
    """The submitted notebook, or ``(None, why it cannot be read)``; never raises."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return None, f"the file cannot be read as text ({error})"
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        return None, (f"the file is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg}); "
                      "it was probably edited outside Jupyter or cut short")
    try:
        notebook = nbformat.reads(text, as_version=4)
        cells = notebook.cells
        if not isinstance(cells, list) or not all(isinstance(c, dict) and "cell_type" in c for c in cells):
            raise ValueError("its 'cells' are not a list of cells")
        for cell in cells:
            cell.source = cell.get("source", "")
            if not isinstance(cell.source, str):
                raise ValueError("a cell's source is not text")
    except Exception as error:   # nbformat raises many kinds; all mean "not a notebook"
        return None, f"the file is JSON but not a Jupyter notebook ({type(error).__name__}: {error})"
    return notebook, None


def _code_cell(source: str, metadata: dict) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata.update(copy.deepcopy(metadata))
    tags = [t for t in cell.metadata.get("tags", []) if t != "raises-exception"]
    cell.metadata["tags"] = [*tags, "raises-exception"]
    return cell


def assemble(assignment: Assignment, submission: nbformat.NotebookNode, token: str) -> tuple[
        nbformat.NotebookNode, Layout]:
    """The notebook to execute for ``submission`` (see the module docstring), and its :class:`Layout`."""
    teacher = assignment.notebook
    known = {cell_info(c).get("grade_id") for c in teacher.cells} - {None}
    solutions = set(assignment.solutions)
    answers: dict[str, list] = {}
    added: dict[str | None, list] = {}
    order, anchor = [], None
    for cell in submission.cells:
        grade_id = cell_info(cell).get("grade_id")
        if grade_id in known:
            order.append(grade_id)
            anchor = grade_id
            if grade_id in solutions:
                answers.setdefault(grade_id, []).append(cell)
        elif cell.get("cell_type") == "code" and cell.source.strip():
            added.setdefault(anchor, []).append(cell)
    # a cell added right after the parameters cell runs after the cell that checks them
    code_ids = [cell_info(c).get("grade_id") for c in teacher.cells if c.cell_type == "code"]
    for here, after in zip(code_ids, code_ids[1:]):
        cell = next(c for c in teacher.cells if cell_info(c).get("grade_id") == here)
        if "parameters" in cell.get("metadata", {}).get("tags", []) and here in added:
            added.setdefault(after, [])[:0] = added.pop(here)
    layout = Layout(added_cells=sum(map(len, added.values())))
    released = {cell_info(c).get("grade_id"): c.source for c in student_version(teacher).cells}
    stub = [line.strip() for line in CODE_STUB.splitlines()]
    for grade_id, cells_of in answers.items():
        lines = [[line.strip() for line in c.source.splitlines()] for c in cells_of]
        if any(c.source.strip() == released.get(grade_id, "").strip() for c in cells_of):
            layout.untouched.append(grade_id)
        if any(any(ls[i:i + len(stub)] == stub for i in range(len(ls))) for ls in lines):
            layout.stubbed.append(grade_id)
    teacher_order = [g for g in (cell_info(c).get("grade_id") for c in teacher.cells) if g in set(order)]
    layout.reordered = list(dict.fromkeys(order)) != teacher_order

    cells = []

    def add_student(cell, origin):
        cells.append(_code_cell(cell.source, {**cell.get("metadata", {}), "metaecom": {"origin": origin}}))

    for cell in added.get(None, []):
        add_student(cell, "added")
    tests = {test.grade_id: test for test in assignment.tests}
    for cell in teacher.cells:
        info = cell_info(cell)
        grade_id = info.get("grade_id")
        if info.get("solution"):
            found = answers.get(grade_id, [])
            if not found:
                layout.missing.append(grade_id)
            if len(found) > 1:
                layout.duplicated.append(grade_id)
            for answer in found:
                if cell.cell_type == "code":
                    add_student(answer, "answer")
        elif cell.cell_type == "code":
            source = tests[grade_id].public if grade_id in tests else cell.source
            origin = "test" if grade_id in tests else "teacher"
            cells.append(_code_cell(source, {**cell.metadata, "metaecom": {"origin": origin}}))
        else:
            cells.append(copy.deepcopy(cell))
        for extra in added.get(grade_id, []) if grade_id else []:
            add_student(extra, "added")
    hidden = [(test.grade_id, test.hidden) for test in assignment.tests]
    source = ("# Added by the grader: the hidden tests. Their values go to the grader.\n"
              "import metaecom.assignments.harness as _grader_harness\n"
              f"_grader_harness.run_hidden(globals(), {token!r}, {hidden!r}, {assignment.helpers!r}, "
              f"{assignment.limit('test_time_limit_s')!r})\n")
    cells.append(_code_cell(source, {"metaecom": {"origin": HIDDEN_CELL_ID}}))
    notebook = nbformat.v4.new_notebook(cells=cells, metadata=copy.deepcopy(teacher.metadata))
    return notebook, layout
