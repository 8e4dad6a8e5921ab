"""Grade a folder of submissions: several at once, each in its own process and folder.

``python -m metaecom.assignments grade <teacher.ipynb> <submissions_dir> <out_dir>``

**Submissions.** Every ``*.ipynb`` directly in ``submissions_dir`` is one student (the
file name without ``.ipynb`` is the student id), and so is every sub-folder holding
notebooks (the folder name is the id; with several notebooks, the one named like the
assignment is taken). A file that is not a notebook still gets a row and a feedback page.

**Each submission** (threads of a :class:`~concurrent.futures.ThreadPoolExecutor`, each
driving processes) gets a seed derived from the assignment id and the student id (so two
students never share numbers, and a re-run gives the same ones), then

1. the teacher's notebook is run with that seed and the grading parameters, in a trusted
   kernel, to record the expected values of the hidden tests (one run per distinct set
   of parameters, shared by threads);
2. the submission is rebuilt by ``grade_id`` (:mod:`.assemble`) and run by papermill in
   a sandboxed kernel (:mod:`.execute`, :mod:`.sandbox`) under the time and memory limits,
   with a fresh random token;
3. the grader compares the two sets of records and classifies the run (:mod:`.score`).

**Outputs** in ``out_dir``: ``gradebook.csv``, ``feedback/<student>.md``, ``scores.png``
(:mod:`.feedback`), ``executed/<student>.ipynb`` (the run, without the grader's hidden
cell, for the teacher to look into) and ``grading.json`` (settings and timing). One bad
submission never stops the batch: whatever happens to it becomes its status.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from metaecom.assignments import landlock
from metaecom.assignments.assemble import HIDDEN_CELL_ID, assemble, read_submission
from metaecom.assignments.execute import run_notebook
from metaecom.assignments.feedback import feedback_text, plot_scores, write_gradebook
from metaecom.assignments.markers import Assignment, load_assignment
from metaecom.assignments.sandbox import readable_roots
from metaecom.assignments.score import (CellProblem, ReferenceFailed, TestResult, cell_problems, hidden_payloads,
                                        score_test, status_of, stopped_at)
from metaecom.data.registry import cache_dir
from metaecom.progress import progress

__all__ = ["Submission", "find_submissions", "student_seed", "grade"]


@dataclass
class Submission:
    """The grading of one submission."""

    student: str
    path: Path | None
    seed: int
    status: str = "grader-error"
    tests: list[TestResult] = field(default_factory=list)
    problems: list[CellProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    message: str = ""
    seconds: float = 0.0

    @property
    def total(self) -> float:
        return sum(test.earned for test in self.tests)


def student_seed(assignment_id: str, student: str, salt: str = "") -> int:
    """A seed in ``0 .. 2**31 - 1`` from the assignment, the student id and an optional salt."""
    digest = hashlib.sha256(f"{salt}|{assignment_id}|{student}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 2**31


def find_submissions(folder: str | Path, assignment_id: str) -> list[tuple[str, Path]]:
    """``(student id, notebook path)`` of every submission in ``folder`` (module docstring)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no submissions folder {folder}")
    found = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix == ".ipynb":
            found.append((entry.stem, entry))
        elif entry.is_dir():
            notebooks = sorted(p for p in entry.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
            if notebooks:
                named = [p for p in notebooks if p.stem == assignment_id]
                found.append((entry.name, (named or notebooks)[0]))
    students = [student for student, _ in found]
    doubled = {s for s in students if students.count(s) > 1}
    if doubled:
        raise ValueError(f"two submissions claim the same student id: {sorted(doubled)}")
    return found


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:80] or "student"


def _file_names(students: list[str]) -> dict[str, str]:
    """A distinct, filesystem-safe name per student id (for feedback and run folders)."""
    names: dict[str, str] = {}
    for student in students:
        name, number = _safe(student), 2
        while name in names.values():
            name, number = f"{_safe(student)}-{number}", number + 1
        names[student] = name
    return names


class _References:
    """The teacher's expected records, computed once per set of parameters (thread-safe)."""

    def __init__(self, assignment: Assignment, root: Path, limits: dict):
        self.assignment, self.root, self.limits = assignment, root, limits
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[threading.Lock, list, int]] = {}

    def get(self, parameters: dict) -> dict:
        key = json.dumps(parameters, sort_keys=True)
        with self._lock:
            entry = self._cache.setdefault(key, (threading.Lock(), [], len(self._cache)))
        lock, value, number = entry
        with lock:
            if not value:
                value.append(self._compute(parameters, number))
        if isinstance(value[0], Exception):
            raise value[0]
        return value[0]

    def _compute(self, parameters: dict, number: int):
        token = secrets.token_hex(16)
        notebook, _ = assemble(self.assignment, self.assignment.notebook, token)
        folder = self.root / f"reference-{number}"
        run = run_notebook(notebook, folder, parameters, isolate=False, **self.limits)
        payloads = hidden_payloads(run.notebook, token) if run.outcome == "completed" else {}
        if run.outcome != "completed" or not payloads:
            return ReferenceFailed(f"the teacher's notebook did not run with {parameters}: {run.outcome} "
                                   f"{run.message} (see {folder})")
        shutil.rmtree(folder, ignore_errors=True)
        return payloads


def _without_hidden_cell(notebook):
    if notebook is not None and notebook.cells:
        if notebook.cells[-1].get("metadata", {}).get("metaecom", {}).get("origin") == HIDDEN_CELL_ID:
            notebook.cells.pop()
    return notebook


def _grade_one(assignment: Assignment, student: str, name: str, path: Path, seed: int, references: _References,
               root: Path, limits: dict, isolate: bool, read_only: list[str], out: Path) -> Submission:
    result = Submission(student, path, seed)
    started = time.perf_counter()
    submitted, problem = read_submission(path)
    if submitted is None:
        result.status, result.message = "invalid-notebook", problem
        result.tests = [TestResult(t.grade_id, t.points, 0.0, ["no points: the file is not a readable notebook"])
                        for t in assignment.tests]
        return result
    parameters = {**assignment.grading_parameters, "seed": seed}
    try:
        expected = references.get(parameters)
    except ReferenceFailed as error:
        result.message = str(error)
        return result
    token = secrets.token_hex(16)
    notebook, layout = assemble(assignment, submitted, token)
    folder = root / f"student-{name}"
    run = run_notebook(notebook, folder, parameters, isolate=isolate, read_only=read_only, **limits)
    payloads = hidden_payloads(run.notebook, token) if run.outcome == "completed" else {}
    result.problems = cell_problems(run.notebook) if run.outcome == "completed" else []
    try:
        result.tests = [score_test(t, expected.get(t.grade_id), payloads.get(t.grade_id),
                                   assignment.limit("test_time_limit_s")) for t in assignment.tests]
    except ReferenceFailed as error:
        result.tests, result.message = [], str(error)
        return result
    result.status = status_of(run.outcome, result.problems, layout, len(assignment.solutions))
    if run.outcome != "completed":
        where = stopped_at(run.notebook)
        result.message = run.message + (f"; it stopped in {where}" if where else "")
        for test in result.tests:
            test.earned, test.reasons = 0.0, [f"no points: the run ended with '{run.outcome}'"]
    result.notes = layout.notes()
    if run.notebook is not None:
        nbformat.write(_without_hidden_cell(run.notebook), str(out / "executed" / f"{name}.ipynb"))
    result.seconds = time.perf_counter() - started
    return result


def _exposed(protected: list[Path], roots: list[str]) -> list[str]:
    """Protected paths that a sandboxed kernel could still read (they lie under a readable root)."""
    out = []
    for path in protected:
        real = os.path.realpath(path)
        out += [f"{path} (inside {root})" for root in roots if real == root or real.startswith(root.rstrip("/") + "/")]
    return out


def data_folders() -> list[str]:
    """The folders a submission may read data from: the data mirror (if set) and the data
    cache, by default ``data/cache`` in a checkout of the book (see ``cache_dir``)."""
    return [p for p in (os.environ.get("METAECOM_DATA_MIRROR"), str(cache_dir())) if p]


def grade(assignment_path: str | Path, submissions_dir: str | Path, out_dir: str | Path, *, workers: int = 2,
          timeout: float | None = None, cell_timeout: float | None = None, memory_mb: int | None = None,
          isolate: bool | None = None, salt: str = "", keep: bool = False,
          show_progress: bool = True) -> list[Submission]:
    """Grade every submission in ``submissions_dir``; write the outputs to ``out_dir`` (module docstring).

    ``timeout``, ``cell_timeout`` and ``memory_mb`` default to the assignment's settings.
    ``isolate`` (Landlock) defaults to on where the kernel offers it; asking for it where it
    does not is an error. ``keep`` leaves the run folders in the temporary directory.
    """
    started = time.perf_counter()
    assignment = load_assignment(assignment_path)
    submissions = find_submissions(submissions_dir, assignment.id)
    out = Path(out_dir)
    (out / "feedback").mkdir(parents=True, exist_ok=True)
    (out / "executed").mkdir(parents=True, exist_ok=True)
    available = landlock.abi_version() > 0
    if isolate and not available:
        raise RuntimeError("isolation was asked for, but Landlock is not available on this system")
    isolate = available if isolate is None else bool(isolate)
    limits = {"timeout": float(timeout or assignment.limit("time_limit_s")),
              "cell_timeout": float(cell_timeout or assignment.limit("cell_time_limit_s")),
              "memory_mb": int(memory_mb or assignment.limit("memory_mb")),
              "threads": max(1, (os.cpu_count() or 1) // max(workers, 1))}
    read_only = data_folders()
    warnings = []
    if not isolate:
        warnings.append("submissions ran WITHOUT isolation (Landlock unavailable or switched off): a submission "
                        "could read files such as the teacher's notebook")
    else:
        exposed = _exposed([Path(assignment_path), Path(submissions_dir), out], readable_roots(read_only))
        if exposed:
            warnings.append(f"readable by submissions despite the sandbox: {', '.join(exposed)}")
    root = Path(tempfile.mkdtemp(prefix=f"metaecom-grade-{_safe(assignment.id)}-"))
    references = _References(assignment, root, limits)
    results: list[Submission] = []
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            names = _file_names([student for student, _ in submissions])
            futures = {pool.submit(_grade_one, assignment, student, names[student], path,
                                   student_seed(assignment.id, student, salt), references, root, limits,
                                   isolate, read_only, out): (student, path) for student, path in submissions}
            bar = progress(total=len(futures), desc=f"grading {assignment.id}", disable=not show_progress)
            for future in concurrent.futures.as_completed(futures):
                student, path = futures[future]
                try:
                    result = future.result()
                except Exception as error:   # a bug of the grader: still one row, the batch goes on
                    result = Submission(student, path, student_seed(assignment.id, student, salt),
                                        message=f"{type(error).__name__}: {error}")
                result.notes += warnings
                results.append(result)
                (out / "feedback" / f"{names[student]}.md").write_text(feedback_text(assignment, result),
                                                                       encoding="utf-8")
                bar.update(1)
            bar.close()
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    results.sort(key=lambda r: r.student)
    write_gradebook(out / "gradebook.csv", assignment, results)
    if results:
        plot_scores(out / "scores.png", assignment, results)
    summary = {"assignment": assignment.id, "source": str(assignment_path), "submissions": len(results),
               "workers": workers, "isolated": isolate, **limits, "seconds": round(time.perf_counter() - started, 1),
               "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "warnings": warnings,
               "run_folders": str(root) if keep else None}
    (out / "grading.json").write_text(json.dumps(summary, indent=1))
    return results
