"""What the grader writes: a gradebook for the teacher, a feedback page for each student,
and a figure of the scores.

- ``gradebook.csv``: one row per submission with ``student``, ``seed``, ``status``,
  ``total``, ``max_points``, the points of each test cell (by ``grade_id``), ``seconds``
  and ``notes``. Opens in any spreadsheet; :func:`read_gradebook` reads it with pandas.
- ``feedback/<student>.md``: the score, what the status means, each test passed or failed
  with the reason and the teacher's hint, every exception in the notebook and what to do
  about it. Markdown, so it reads as plain text and renders in a course platform.
- ``scores.png``: the distribution of totals and, per test, the share of submissions that
  passed it: where the class struggled.
"""

from __future__ import annotations

import csv
from pathlib import Path

from metaecom.assignments.markers import Assignment

__all__ = ["STATUS_TEXT", "feedback_text", "write_gradebook", "read_gradebook", "plot_scores"]

STATUS_TEXT = {
    "ok": "Your notebook ran from top to bottom without an exception.",
    "incomplete": "Some answers still raise NotImplementedError: replace `raise NotImplementedError()` with your "
                  "code in each answer cell.",
    "not-attempted": "No answer was filled in: every answer cell still raises NotImplementedError. Write your code "
                     "in the answer cells, below `# YOUR CODE HERE`, and submit the notebook again.",
    "missing-cells": "An answer cell is missing from your notebook (it was deleted, or its metadata lost). Download "
                     "a fresh copy of the assignment and paste your answers into its answer cells.",
    "cell-error": "A cell of your notebook raised an exception (listed below); the cells after it still ran and "
                  "were graded. Restart the kernel and run all cells in JupyterLab to see the same error.",
    "cell-timeout": "A cell ran longer than the time limit and was interrupted (an endless loop, or far more work "
                    "than needed); the other cells were graded.",
    "memory-limit": "A cell ran out of memory and was stopped with MemoryError; the other cells were graded. Look "
                    "for a list or array that grows without end, or one much larger than the data.",
    "timeout": "Your notebook ran past the time limit for the whole assignment and was stopped, so no test could "
               "run: 0 points. Restart the kernel and run all cells: it should finish within the stated budget.",
    "kernel-died": "The Python kernel running your notebook crashed or was killed (for example by os._exit, a "
                   "crash in compiled code, or exhausting memory), so no test could run: 0 points.",
    "invalid-notebook": "The file you submitted is not a readable Jupyter notebook, so nothing could run: 0 points. "
                        "Save the notebook from JupyterLab (File > Save) and submit the .ipynb file itself.",
    "grader-error": "The grader could not grade this submission (a problem on the teacher's side, not yours). "
                    "Your teacher has been told.",
}


def _points(value: float) -> str:
    return f"{value:g}"


def feedback_text(assignment: Assignment, submission) -> str:
    """The feedback page of one submission (a :class:`~metaecom.assignments.grade.Submission`)."""
    s = submission
    lines = [f"# Feedback: {assignment.title}", "",
             f"Student: {s.student}  ", f"Score: **{_points(s.total)} / {_points(assignment.max_points)}**  ",
             f"Status: `{s.status}`", "", STATUS_TEXT.get(s.status, ""), ""]
    if s.message:
        lines += [f"Details: {s.message}", ""]
    stopped = s.tests and all(t.reasons[:1] == s.tests[0].reasons[:1] and not t.earned for t in s.tests) and \
        s.tests[0].reasons[:1] and s.tests[0].reasons[0].startswith("no points:")
    if stopped:
        lines += ["## Tests", "", f"No test could run: {s.tests[0].reasons[0][len('no points: '):]}.", ""]
    elif s.tests:
        lines += ["## Tests", ""]
        for test in s.tests:
            mark = "passed" if test.passed else "FAILED"
            lines.append(f"- **{test.grade_id}**, {_points(test.earned)}/{_points(test.points)} points: {mark}"
                         + ("." if test.passed else ":"))
            lines += [f"  - {reason}" for reason in test.reasons]
        lines.append("")
    errors = [p for p in s.problems if p.origin != "test" and p.kind != "unanswered"]
    if errors:
        lines += ["## Exceptions in your notebook", ""]
        for problem in errors:
            what = {"memory": " (out of memory)", "timeout": " (interrupted: the cell ran past its time limit)"}
            lines.append(f"- {problem.cell}: `{problem.ename}: {problem.evalue[:300]}`{what.get(problem.kind, '')}")
        lines.append("")
    checks = [p for p in s.problems if p.origin == "test" and p.kind not in ("unanswered", "timeout", "memory")]
    if checks:
        lines += ["## Public self-checks that failed", "",
                  "These are the checks you can run yourself in the notebook; fix them first.", ""]
        lines += [f"- {p.cell}: `{p.ename}: {p.evalue[:300]}`" for p in checks]
        lines.append("")
    if s.notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in s.notes] + [""]
    lines.append(f"Your run used seed {s.seed}: your numbers differ from your classmates'.")
    return "\n".join(lines) + "\n"


def write_gradebook(path: str | Path, assignment: Assignment, submissions: list) -> Path:
    """Write ``gradebook.csv`` (see the module docstring); rows sorted by student."""
    path = Path(path)
    ids = [test.grade_id for test in assignment.tests]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "seed", "status", "total", "max_points", *ids, "seconds", "notes"])
        for s in sorted(submissions, key=lambda s: s.student):
            earned = {t.grade_id: t.earned for t in s.tests}
            writer.writerow([s.student, s.seed, s.status, _points(s.total), _points(assignment.max_points),
                             *[_points(earned.get(i, 0.0)) for i in ids], f"{s.seconds:.1f}", "; ".join(s.notes)])
    return path


def read_gradebook(path: str | Path):
    """The gradebook as a pandas DataFrame (student ids kept as text)."""
    import pandas as pd

    return pd.read_csv(path, dtype={"student": str, "notes": str}, keep_default_na=False)


def plot_scores(path: str | Path, assignment: Assignment, submissions: list) -> Path:
    """Write ``scores.png``: the totals' histogram and each test's pass rate."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    totals = [s.total for s in submissions]
    ids = [test.grade_id for test in assignment.tests]
    passed = [sum(1 for s in submissions for t in s.tests if t.grade_id == i and t.passed) / max(len(submissions), 1)
              for i in ids]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), gridspec_kw={"width_ratios": [1.2, 1]})
    top = assignment.max_points
    left.hist(totals, bins=min(int(top) + 1, 30), range=(-0.5, top + 0.5), color="tab:blue", edgecolor="white")
    mean = sum(totals) / len(totals) if totals else 0.0
    left.axvline(mean, color="black", lw=1, ls="--", label=f"mean {mean:.1f}")
    left.set(xlabel=f"total points (of {_points(top)})", ylabel="submissions",
             title=f"{assignment.title}: {len(submissions)} submissions")
    left.yaxis.set_major_locator(MaxNLocator(integer=True))
    left.legend()
    right.barh(ids[::-1], [100 * p for p in passed[::-1]], color="tab:green")
    right.set(xlim=(0, 100), xlabel="% of submissions that passed", title="Tests")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
