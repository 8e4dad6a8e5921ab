"""How long the grader takes: a class of submissions of Assignment 1, graded as a teacher would.

    python -m metaecom.scripts.benchmark_grading                  # 30 submissions, 2 workers
    python -m metaecom.scripts.benchmark_grading --submissions 60 --workers 2

It writes ``--submissions`` notebooks made from the assignment's own two versions, a mix
like a real class: a third fully solved, a third with one answer wrong, a sixth with two
answers left as released, a sixth untouched. None runs into a time limit, so the time is
what ordinary work costs. Then it runs the same command a teacher runs
(:func:`metaecom.assignments.grade.grade`, default limits, Landlock where available) and
records the wall time, the time per submission and the machine in
``book/results/grading_benchmark.json``; the teachers' page and the README quote it.
Each submission costs two papermill runs (the teacher's reference with the student's
seed, then the student's notebook), each mostly kernel start-up and imports.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import nbformat

from metaecom import __version__
from metaecom.assignments import landlock
from metaecom.assignments.grade import grade
from metaecom.assignments.markers import BEGIN_SOLUTION, END_SOLUTION, cell_info, load_assignment
from metaecom.assignments.release import student_version
from metaecom.runrecord import cpu_name

ASSIGNMENT = Path(__file__).resolve().parents[3] / "book" / "assignments" / "source" / "a1_gradients.ipynb"


def _answer(teacher, grade_id: str) -> str:
    cell = next(c for c in teacher.cells if cell_info(c).get("grade_id") == grade_id)
    return "\n".join(line for line in cell.source.splitlines() if line.strip() not in (BEGIN_SOLUTION, END_SOLUTION))


def make_class(folder: Path, n: int, source: Path = ASSIGNMENT) -> Counter:
    """Write ``n`` submissions into ``folder`` (module docstring); return how many of each kind."""
    assignment = load_assignment(source)
    kinds = Counter()
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        notebook = student_version(assignment.notebook)
        kind = ("solved", "one wrong", "solved", "one wrong", "two unanswered", "untouched")[i % 6]
        if kind != "untouched":
            n_answers = len(assignment.solutions)
            for j, grade_id in enumerate(assignment.solutions):
                if kind == "two unanswered" and j in (i % n_answers, (i + 1) % n_answers):
                    continue
                source_code = _answer(assignment.notebook, grade_id)
                if kind == "one wrong" and j == i % n_answers:
                    source_code = source_code.replace("return ", "return 1.01 * ", 1)
                next(c for c in notebook.cells if cell_info(c).get("grade_id") == grade_id).source = source_code
        nbformat.write(notebook, str(folder / f"student{i + 1:03d}.ipynb"))
        kinds[kind] += 1
    return kinds


def run(n: int = 30, workers: int = 2, out: Path | None = None) -> dict:
    """Grade a made-up class of ``n``; return the measurements."""
    with tempfile.TemporaryDirectory(prefix="metaecom-benchmark-grading-") as tmp:
        kinds = make_class(Path(tmp) / "submissions", n)
        started = time.perf_counter()
        results = grade(ASSIGNMENT, Path(tmp) / "submissions", out or Path(tmp) / "graded", workers=workers)
        seconds = time.perf_counter() - started
    return {
        "assignment": "a1_gradients", "submissions": n, "workers": workers, "kinds": dict(kinds),
        "seconds": round(seconds, 1), "seconds_per_submission": round(seconds / n, 2),
        "statuses": dict(Counter(r.status for r in results)),
        "mean_points": round(sum(r.total for r in results) / n, 2),
        "isolated": landlock.abi_version() > 0,
        "cpu": f"{cpu_name()} ({os.cpu_count()} logical cores)", "python": platform.python_version(),
        "metaecom": __version__, "smoke": os.environ.get("METAECOM_SMOKE", ""),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def main(argv=None) -> int:
    from metaecom.reproduction import results_path

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--results", default=str(results_path("grading_benchmark")),
                        help="where to write the measurements (JSON)")
    parser.add_argument("--graded", help="keep the gradebook and feedback in this folder")
    args = parser.parse_args(argv)
    content = run(args.submissions, args.workers, Path(args.graded) if args.graded else None)
    Path(args.results).write_text(json.dumps(content, indent=2) + "\n")
    print(json.dumps(content, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
