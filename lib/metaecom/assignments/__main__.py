"""The command line: ``python -m metaecom.assignments release|grade ...`` (``--help`` for each)."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path


def _release(args) -> int:
    from metaecom.assignments.release import release

    out = release(args.teacher, args.out_dir)
    print(f"student version written to {out}")
    return 0


def _grade(args) -> int:
    from metaecom.assignments.grade import grade
    from metaecom.assignments.markers import load_assignment

    results = grade(args.assignment, args.submissions, args.out_dir, workers=args.workers, timeout=args.timeout,
                    cell_timeout=args.cell_timeout, memory_mb=args.memory_mb,
                    isolate=False if args.no_isolation else None, salt=args.salt, keep=args.keep)
    top = load_assignment(args.assignment).max_points
    out = Path(args.out_dir)
    statuses = ", ".join(f"{status} {count}" for status, count in sorted(Counter(r.status for r in results).items()))
    mean = sum(r.total for r in results) / len(results) if results else 0.0
    print(f"graded {len(results)} submissions: mean {mean:.1f} / {top:g}; statuses: {statuses}")
    print(f"gradebook: {out / 'gradebook.csv'}\nfeedback:  {out / 'feedback'}/\nfigure:    {out / 'scores.png'}")
    return 1 if any(r.status == "grader-error" for r in results) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m metaecom.assignments",
                                     description="Release and grade course assignments (see book/assignments).")
    commands = parser.add_subparsers(dest="command", required=True)
    release = commands.add_parser("release", help="write the student version of a teacher's notebook")
    release.add_argument("teacher", help="the teacher's notebook (solutions and hidden tests)")
    release.add_argument("out_dir", help="folder for the student version (same file name)")
    release.set_defaults(run=_release)
    grade = commands.add_parser("grade", help="grade a folder of submitted notebooks")
    grade.add_argument("assignment", help="the teacher's notebook")
    grade.add_argument("submissions", help="folder of submissions: <student>.ipynb or <student>/<any>.ipynb")
    grade.add_argument("out_dir", help="folder for gradebook.csv, feedback/, scores.png, executed/")
    grade.add_argument("--workers", type=int, default=2, help="submissions graded at once (default 2)")
    grade.add_argument("--timeout", type=float, help="seconds for a whole submission (default: the assignment's)")
    grade.add_argument("--cell-timeout", type=float, help="seconds for one cell before it is interrupted")
    grade.add_argument("--memory-mb", type=int, help="memory limit of a submission's kernel, in MB")
    grade.add_argument("--salt", default="", help="mixed into every student's seed (e.g. the course and year)")
    grade.add_argument("--no-isolation", action="store_true",
                       help="run kernels without the Landlock filesystem sandbox (not recommended)")
    grade.add_argument("--keep", action="store_true", help="keep the run folders (for debugging the grader)")
    grade.set_defaults(run=_grade)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
