"""Run the whole book in one command: every chapter at full budget, the MAML speed
benchmark and a longer Omniglot reproduction, side by side, on a GPU when there is one.

    python -m metaecom.scripts.run_book --out gpu_run              # a GPU machine: ~10 min
    python -m metaecom.scripts.run_book --smoke --out /tmp/smoke   # the CPU smoke run CI does

What runs, as parallel jobs (``--jobs``, default 6 on a GPU, 1 on a CPU), longest first
(the wall time each chapter's stored run record gives):

- every chapter of the table of contents (the assignments aside), executed top to bottom
  in a fresh kernel with ``nbconvert``, written to ``OUT/book/<chapter>.ipynb``;
- ``metaecom.scripts.benchmark_maml`` (the per-task loop against the vmap and grouped
  paths, 32 tasks, with peak GPU memory) to ``OUT/results/maml_speed.json``;
- ``metaecom.scripts.reproduce_omniglot --method MAML`` for ``--omniglot-minutes``
  (0 leaves it out) to ``OUT/results/omniglot_maml.json``.

Every job has a log in ``OUT/logs`` and the run a summary, ``OUT/run_book.json``: per
job, its seconds and whether it finished. Jobs still running at ``--minutes`` are
stopped and reported as such, so the command ends inside a lent GPU session's limit.
``--in-place`` writes the executed chapters over ``book/`` and the results into
``book/results`` instead, ready to commit. ``--smoke`` sets ``METAECOM_SMOKE=1`` and the
smallest benchmark and reproduction, so CI checks that the command still works.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml

from metaecom.device import describe_device
from metaecom.runrecord import cpu_name

ROOT = Path(__file__).resolve().parents[3]


def chapters(root: Path = ROOT) -> list[Path]:
    """The notebooks of the table of contents, in its order, without the assignments."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [chapter["file"] for part in toc.get("parts", []) for chapter in part.get("chapters", [])]
    found = [root / f"{name}.ipynb" for name in files if "assignments/" not in name]
    return [path for path in found if path.exists()]


def stored_seconds(notebook: Path) -> float:
    """The wall time in the notebook's stored run record (0 when it has none)."""
    text = notebook.read_text(encoding="utf-8")
    match = re.search(r"wall time\s*:\s*([\d.]+) s", text)
    return float(match.group(1)) if match else 0.0


def jobs(args, out: Path, book_out: Path, results_out: Path) -> list[dict]:
    """The commands to run, longest first: one per chapter, the benchmark, the reproduction."""
    python = sys.executable
    selected = chapters()
    if args.chapters:
        wanted = set(args.chapters)
        unknown = wanted - {p.stem for p in selected}
        if unknown:
            raise SystemExit(f"unknown chapter(s) {sorted(unknown)}; the book has {[p.stem for p in selected]}")
        selected = [p for p in selected if p.stem in wanted]
    found = [{"name": p.stem, "kind": "chapter", "expected_s": stored_seconds(p),
              "command": [python, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                          "--ExecutePreprocessor.timeout=-1", "--output-dir", str(book_out), str(p)]}
             for p in selected]
    if not args.skip_benchmark:
        extra = ["--repeats", "1", "--tasks", "2", "--steps", "1"] if args.smoke else []
        found.append({"name": "benchmark_maml", "kind": "benchmark", "expected_s": 120.0,
                      "command": [python, "-m", "metaecom.scripts.benchmark_maml",
                                  "--out", str(results_out / "maml_speed.json"), *extra]})
    if args.omniglot_minutes > 0:
        extra = ["--max-episodes", "2", "--test-episodes", "2"] if args.smoke else []
        found.append({"name": "reproduce_omniglot_maml", "kind": "reproduction",
                      "expected_s": 60 * args.omniglot_minutes + 60,
                      "command": [python, "-m", "metaecom.scripts.reproduce_omniglot", "--method", "MAML",
                                  "--way", "5", "--minutes", str(args.omniglot_minutes),
                                  "--out", str(results_out / "omniglot_maml.json"), *extra]})
    return sorted(found, key=lambda job: -job["expected_s"])


def run_all(todo: list[dict], parallel: int, deadline_s: float, logs: Path, env: dict) -> list[dict]:
    """Run ``todo`` with at most ``parallel`` at once; stop whatever still runs at the deadline."""
    logs.mkdir(parents=True, exist_ok=True)
    waiting, running, done = list(todo), [], []
    began = time.perf_counter()

    def say(text):
        print(f"[{time.perf_counter() - began:6.0f} s] {text}", flush=True)

    while waiting or running:
        late = time.perf_counter() - began > deadline_s
        while waiting and len(running) < parallel and not late:
            job = waiting.pop(0)
            job["log"] = open(logs / f"{job['name']}.log", "w", encoding="utf-8")
            job["process"] = subprocess.Popen(job["command"], stdout=job["log"], stderr=subprocess.STDOUT,
                                              env=env, cwd=ROOT)
            job["started"] = time.perf_counter()
            running.append(job)
            say(f"started  {job['name']}")
        for job in list(running):
            code = job["process"].poll()
            if code is None and not late:
                continue
            if code is None:
                job["process"].kill()
                job["process"].wait()
                job["status"] = "stopped at the deadline"
            else:
                job["status"] = "finished" if code == 0 else f"failed (exit code {code})"
            job["seconds"] = round(time.perf_counter() - job["started"], 1)
            job["log"].close()
            running.remove(job)
            done.append(job)
            say(f"{job['status']}: {job['name']} ({job['seconds']:.0f} s)")
        if late:
            for job in waiting:
                job.update(status="not started before the deadline", seconds=0.0)
                done.append(job)
            waiting = []
        time.sleep(0.5)
    return done


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="book_run", help="folder for the executed chapters, results and logs")
    parser.add_argument("--in-place", action="store_true", help="write over book/ and book/results instead")
    parser.add_argument("--smoke", action="store_true", help="tiny budgets (METAECOM_SMOKE=1), as CI runs it")
    parser.add_argument("--jobs", type=int, default=None, help="jobs at once (default 6 on a GPU, 1 on a CPU)")
    parser.add_argument("--minutes", type=float, default=9.5, help="stop whatever still runs after this long")
    parser.add_argument("--chapters", nargs="+", default=None, help="only these chapters (file stems)")
    parser.add_argument("--skip-benchmark", action="store_true")
    parser.add_argument("--omniglot-minutes", type=float, default=4.0,
                        help="budget of the MAML Omniglot reproduction (0: leave it out)")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or (args.jobs is not None and args.jobs < 1) or args.omniglot_minutes < 0:
        parser.error("--minutes must be positive, --jobs at least 1 and --omniglot-minutes not negative")
    cuda = torch.cuda.is_available()
    out = Path(args.out).resolve()
    book_out = ROOT / "book" if args.in_place else out / "book"
    results_out = ROOT / "book" / "results" if args.in_place else out / "results"
    for folder in (out, book_out, results_out):
        folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "METAECOM_SMOKE": "1" if args.smoke else "0", "PYTHONUNBUFFERED": "1"}
    env.setdefault("METAECOM_DEVICE", "cuda" if cuda else "cpu")
    todo = jobs(args, out, book_out, results_out)
    parallel = args.jobs or (6 if cuda else 1)
    device = describe_device(torch.device("cuda" if cuda else "cpu"))
    print(f"{len(todo)} jobs, {parallel} at a time, on {device}; stopping at {args.minutes:g} min", flush=True)
    began = time.perf_counter()
    done = run_all(todo, parallel, 60 * args.minutes, out / "logs", env)
    summary = {"device": device, "cpu": f"{cpu_name()} ({os.cpu_count()} logical cores)",
               "torch": torch.__version__, "smoke": args.smoke, "parallel_jobs": parallel,
               "wall_s": round(time.perf_counter() - began, 1),
               "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "jobs": [{k: job[k] for k in ("name", "kind", "status", "seconds", "expected_s")} for job in done]}
    (out / "run_book.json").write_text(json.dumps(summary, indent=2) + "\n")
    failed = [job["name"] for job in done if job["status"] != "finished"]
    print(f"wrote {out / 'run_book.json'}: {len(done) - len(failed)} of {len(done)} jobs finished in "
          f"{summary['wall_s']:.0f} s" + (f"; not finished: {', '.join(failed)}" if failed else ""))
    if shutil.which("nvidia-smi") and cuda:
        subprocess.run(["nvidia-smi", "--query-gpu=name,memory.used,memory.total", "--format=csv"], check=False)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
