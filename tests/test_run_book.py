"""The one-command book run (metaecom.scripts.run_book) in its CPU smoke mode, so the
command a GPU session runs does not rot: a chapter executed, the benchmark and the
Omniglot reproduction written in their results formats, a summary of every job."""

from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import pytest

from metaecom.reproduction import read_results
from metaecom.scripts import run_book
from mirror import needs_mirror


def test_the_toc_chapters_are_found_without_assignments():
    names = [p.stem for p in run_book.chapters()]
    assert names[0] == "learning_to_learn_in_one_notebook" and "own_data" in names
    assert not any("a1_" in n or "for_teachers" in n for n in names)
    assert run_book.stored_seconds(run_book.ROOT / "book" / "memory_based.ipynb") > 60


def test_an_unknown_chapter_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="unknown chapter"):
        run_book.main(["--smoke", "--out", str(tmp_path), "--chapters", "no_such_chapter"])


@pytest.mark.slow
@needs_mirror
def test_smoke_run_executes_a_chapter_the_benchmark_and_the_reproduction(tmp_path):
    done = subprocess.run([sys.executable, "-m", "metaecom.scripts.run_book", "--smoke", "--out", str(tmp_path),
                           "--chapters", "learning_to_learn_in_one_notebook", "--omniglot-minutes", "0.05"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:]
    summary = json.loads((tmp_path / "run_book.json").read_text())
    assert summary["smoke"] is True
    assert {j["name"]: j["status"] for j in summary["jobs"]} == {
        "learning_to_learn_in_one_notebook": "finished", "benchmark_maml": "finished",
        "reproduce_omniglot_maml": "finished"}
    notebook = nbformat.read(tmp_path / "book" / "learning_to_learn_in_one_notebook.ipynb", as_version=4)
    last = notebook.cells[-1]["outputs"][0]["data"]["text/plain"]
    assert "Run record" in last and "smoke run" in last
    speed = json.loads((tmp_path / "results" / "maml_speed.json").read_text())
    assert {r["implementation"] for r in speed["rows"]} >= {"ours (loop)", "ours (vmap)", "ours (groups)"}
    assert read_results(tmp_path / "results" / "omniglot_maml.json")["method"].eq("MAML").all()
