"""Course assignments: release, and grading that bad or cheating submissions cannot break.

The unit tests check the conventions (markers, release, the rebuild by ``grade_id``, the
comparison of records, seeds). The one ``slow`` test grades a batch of fixture
submissions of Assignment 1, made here from the teacher's and the student's versions,
and asserts the exact points and status of each: the teacher's solution, the untouched
student version, invalid JSON, a syntax error, an exception, an endless loop, a loop that
ignores interrupts, memory exhaustion, reordered, deleted and renamed cells, a fake
"PASSED" with fake result files, an attempt to read the hidden tests from disk, and
edited public checks.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys

import nbformat
import pytest

from conftest import BOOK, ROOT
from mirror import needs_mirror, use_private_cache
from metaecom.assignments import landlock
from metaecom.assignments.assemble import assemble, read_submission
from metaecom.assignments.grade import find_submissions, grade, student_seed
from metaecom.assignments.markers import (BEGIN_HIDDEN, BEGIN_SOLUTION, CODE_STUB, END_SOLUTION, MarkerError,
                                          cell_info, inside_regions, load_assignment, replace_regions)
from metaecom.assignments.release import release, student_version
from metaecom.assignments.score import compare

SOURCE = BOOK / "assignments" / "source" / "a1_gradients.ipynb"
RELEASED = BOOK / "assignments" / "a1_gradients.ipynb"
POINTS = {"q1_logits_grad": 3, "q1_large_logits": 1, "q2_linear_grads": 3, "q3a_inner_step": 2,
          "q3b_meta_gradient": 4, "q4_first_order": 2}


def _read(path):
    return nbformat.read(str(path), as_version=4)


def _cell(notebook, grade_id):
    return next(c for c in notebook.cells if cell_info(c).get("grade_id") == grade_id)


def _solution(grade_id) -> str:
    """The teacher's answer, as a student would type it (no markers)."""
    source = _cell(_read(SOURCE), grade_id).source
    return "\n".join(line for line in source.splitlines() if "### " not in line)


# ----------------------------------------------------------------------------- unit tests

def test_markers_replace_a_region_with_the_stub_at_its_indent():
    source = "def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n"
    out = replace_regions(source, BEGIN_SOLUTION, "### END SOLUTION", CODE_STUB)
    assert out == "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n"


def test_an_unclosed_marker_names_the_cell_and_line():
    with pytest.raises(MarkerError, match=r"cell 3: '### BEGIN SOLUTION' on line 2 is never closed"):
        replace_regions("x = 1\n### BEGIN SOLUTION\ny = 2", BEGIN_SOLUTION, "### END SOLUTION", CODE_STUB,
                        "cell 3")


def test_assignment_1_declares_its_points_and_limits():
    assignment = load_assignment(SOURCE)
    assert {t.grade_id: t.points for t in assignment.tests} == POINTS
    assert assignment.max_points == 15
    assert assignment.limit("time_limit_s") <= 300   # "runs in 5 minutes at grading budgets"
    assert "cross_entropy_grad" in assignment.tests[0].hidden


def test_release_removes_solutions_and_hidden_tests_and_keeps_public_checks():
    teacher, student = _read(SOURCE), student_version(_read(SOURCE))
    assert [cell_info(c).get("grade_id") for c in student.cells] == [cell_info(c).get("grade_id")
                                                                     for c in teacher.cells]
    text = "\n".join(c.source for c in student.cells)
    assert BEGIN_SOLUTION not in text and BEGIN_HIDDEN not in text and "record(" not in text
    code = "\n".join(c.source for c in student.cells if c.cell_type == "code")
    assert code.count("raise NotImplementedError()") == len(load_assignment(SOURCE).solutions)
    for grade_id in load_assignment(SOURCE).solutions:   # no line of any solution survives
        secret = inside_regions(_cell(teacher, grade_id).source, BEGIN_SOLUTION, END_SOLUTION)
        for line in filter(str.strip, secret.splitlines()):
            assert line.strip() not in _cell(student, grade_id).source, (grade_id, line)
    assert "check_close(\"dL/dZ against autograd\"" in _cell(student, "q1_logits_grad").source
    assert all(not c.get("outputs") for c in student.cells if c.cell_type == "code")


def test_the_stored_student_version_is_the_release_of_the_source(tmp_path):
    out = release(SOURCE, tmp_path)
    fresh = [(c.cell_type, c.source, c.metadata) for c in _read(out).cells]
    stored = [(c.cell_type, c.source, c.metadata) for c in _read(RELEASED).cells]
    assert fresh == stored, "book/assignments/a1_gradients.ipynb is stale: run the release command (README)"


def test_the_release_command_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "metaecom.assignments", "release", str(SOURCE), str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "a1_gradients.ipynb").is_file()


def test_assignment_lines_fit_the_page():
    for path in (SOURCE, RELEASED):
        long = [line for c in _read(path).cells for line in c.source.splitlines() if len(line) > 88]
        assert not long, f"{path.name}: lines longer than 88 characters: {long[:2]}"


def test_the_rebuild_matches_cells_by_id_not_position():
    assignment = load_assignment(SOURCE)
    submission = student_version(assignment.notebook)
    _cell(submission, "q2_answer").source = _solution("q2_answer")
    added = nbformat.v4.new_code_cell("def my_helper():\n    return 1")
    submission.cells.insert(submission.cells.index(_cell(submission, "q2_answer")) + 1, added)
    submission.cells.remove(_cell(submission, "q3b_answer"))
    moved = _cell(submission, "q4_answer")
    submission.cells.remove(moved)
    submission.cells.insert(0, moved)
    _cell(submission, "check_parameters").source = "p = None   # edited"
    built, layout = assemble(assignment, submission, "token")
    ids = [cell_info(c).get("grade_id") for c in built.cells if c.cell_type == "code"]
    teacher_ids = [cell_info(c).get("grade_id") for c in assignment.notebook.cells if c.cell_type == "code"]
    assert [i for i in ids if i] == [i for i in teacher_ids if i != "q3b_answer"]
    assert ids[ids.index("q2_answer") + 1] is None, "the added cell runs right after the cell it followed"
    assert "check_parameters(globals()" in _cell(built, "check_parameters").source, "locked cells are restored"
    assert layout.missing == ["q3b_answer"] and layout.reordered and layout.added_cells == 1
    assert all("raises-exception" in c.metadata["tags"] for c in built.cells if c.cell_type == "code")
    hidden = built.cells[-1].source
    assert "run_hidden(globals(), 'token'" in hidden and "record(" in hidden


def test_an_unreadable_file_is_reported_not_raised(tmp_path):
    (tmp_path / "a.ipynb").write_text("{ not json")
    (tmp_path / "b.ipynb").write_text('{"cells": 3}')
    notebook, why = read_submission(tmp_path / "a.ipynb")
    assert notebook is None and "not valid JSON (line 1, column 3" in why
    notebook, why = read_submission(tmp_path / "b.ipynb")
    assert notebook is None and "not a Jupyter notebook" in why


def test_records_compare_with_the_books_relative_error():
    data = lambda values: {"kind": "array", "shape": [len(values)], "data": values}   # noqa: E731
    assert compare(data([1.0, 1e-9]), data([1.0, 2e-9]), 1e-8, 0.0) is None   # small entry, scale 1
    reason = compare(data([1.0, 2.0]), data([1.0, 2.1]), 1e-8, 0.0)
    assert "2.1 instead of 2 at index (1,)" in reason
    assert "shape (3,)" in compare(data([1.0, 2.0]), data([1.0, 2.0, 3.0]), 1e-8, 0.0)
    assert "NaN" in compare(data([1.0]), data(["nan"]), 1e-8, 0.0)
    assert compare({"kind": "bool", "value": False}, {"kind": "bool", "value": True}, 0, 0)


def test_seeds_differ_between_students_and_repeat_for_one(tmp_path):
    assert student_seed("a1", "alice") == student_seed("a1", "alice")
    assert len({student_seed("a1", s) for s in ("alice", "bob", "carol", "dan")}) == 4
    assert student_seed("a1", "alice", salt="2027") != student_seed("a1", "alice")
    (tmp_path / "alice.ipynb").write_text("{}")
    (tmp_path / "bob").mkdir()
    (tmp_path / "bob" / "a1.ipynb").write_text("{}")
    (tmp_path / "bob" / "scratch.ipynb").write_text("{}")
    assert [(s, p.name) for s, p in find_submissions(tmp_path, "a1")] == [("alice", "alice.ipynb"),
                                                                          ("bob", "a1.ipynb")]


def test_hidden_tests_send_values_with_the_token_and_stop_an_endless_function(monkeypatch):
    import IPython.display

    from metaecom.assignments import harness

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda data, raw=False: shown.append(data))
    namespace = {"double": lambda x: 2 * x, "forever": lambda: [None for _ in iter(int, 1)]}
    tests = [("q1", "record('two', double(1.0))\nrecord('array', [[1, 2]], rtol=0.1, hint='h')"),
             ("q2", "forever()"), ("q3", "undefined_function()")]
    harness.run_hidden(namespace, "tok", tests, helpers="helper_ran = True", seconds=0.5)
    payloads = [json.loads(item[harness.MIME]["payload"]) for item in shown]
    assert all(item[harness.MIME]["token"] == "tok" for item in shown)
    assert payloads[0]["records"][0]["value"] == {"kind": "number", "value": 2.0}
    assert payloads[0]["records"][1]["value"] == {"kind": "array", "shape": [1, 2], "data": [1.0, 2.0]}
    assert payloads[0]["records"][1]["rtol"] == 0.1 and payloads[0]["error"] is None
    assert payloads[1]["error"]["ename"] == "HiddenTestTimeout"
    assert payloads[2]["error"]["ename"] == "NameError"
    assert "helper_ran" not in namespace, "hidden tests run in a copy of the notebook's namespace"


def test_autograd_used_sees_backward_and_torch_func_but_not_plain_tensor_code():
    import torch

    from metaecom.assignments import autograd_used

    x = torch.randn(4, 3, dtype=torch.float64)

    def by_hand(z):
        return torch.softmax(z, dim=1) - 1

    def by_autograd(z):
        z = z.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(torch.logsumexp(z, dim=1).sum(), z)
        return g

    def by_torch_func(z):
        return torch.func.grad(lambda t: torch.logsumexp(t, dim=1).sum())(z)

    assert not autograd_used(by_hand, x)
    assert autograd_used(by_autograd, x)
    assert autograd_used(by_torch_func, x)


def test_the_benchmark_makes_a_class_of_readable_submissions(tmp_path):
    from metaecom.scripts.benchmark_grading import make_class

    kinds = make_class(tmp_path, 6)
    assert sum(kinds.values()) == 6 and kinds["untouched"] == 1
    for path in tmp_path.iterdir():
        assert read_submission(path)[0] is not None


@pytest.mark.skipif(landlock.abi_version() == 0, reason="Landlock is not available on this system")
def test_landlock_hides_everything_outside_the_allowed_folders(tmp_path):
    (tmp_path / "secret.txt").write_text("hidden tests")
    work = tmp_path / "work"
    work.mkdir()
    code = ("import sys; from metaecom.assignments import landlock, sandbox\n"
            f"landlock.restrict(sandbox.readable_roots(), [{str(work)!r}])\n"
            f"open({str(work / 'ok.txt')!r}, 'w').write('x')\n"
            "for path in sys.argv[1:]:\n"
            "    try:\n        open(path).read(); print('READ', path)\n"
            "    except PermissionError:\n        print('denied', path)\n")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "secret.txt"), str(SOURCE)],
                            capture_output=True, text=True, timeout=120, cwd=str(work))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["denied", str(tmp_path / "secret.txt"), "denied", str(SOURCE)]
    assert (work / "ok.txt").read_text() == "x"


# ------------------------------------------------------------- a batch of fixture submissions

def _solved():
    notebook = _read(RELEASED)
    for grade_id in load_assignment(SOURCE).solutions:
        _cell(notebook, grade_id).source = _solution(grade_id)
    return notebook


def _with_cell(notebook, after, source):
    notebook.cells.insert(notebook.cells.index(_cell(notebook, after)) + 1, nbformat.v4.new_code_cell(source))
    return notebook


def _zeros_answers(notebook):
    """Wrong answers of the right shapes, for the cheating submissions."""
    _cell(notebook, "q1_answer").source = "def cross_entropy_grad(logits, labels):\n    return 0 * logits"
    return notebook


FAKE_PASS = '''
import json, pathlib
print("PASSED")
print("All tests passed: 15/15")
fake = {"grade_id": "q1_logits_grad", "records": [], "error": None, "seconds": 0}
for name in ("results.json", "gradebook.csv", "../result.json", "../executed.ipynb", "/tmp/results.json"):
    try:
        pathlib.Path(name).write_text(json.dumps({"score": 15, "status": "ok", "passed": True}))
    except OSError as error:
        print("could not write", name, type(error).__name__)
from IPython.display import display
display({"application/vnd.metaecom.hidden-test+json":
         {"token": "0" * 32, "payload": json.dumps(fake)}}, raw=True)
'''

READS_HIDDEN = '''
import glob, json, pathlib
import metaecom
checkout = pathlib.Path(metaecom.__file__).resolve().parents[2]
paths = [checkout / "book" / "assignments" / "source" / "a1_gradients.ipynb",
         *map(pathlib.Path, glob.glob("/tmp/**/*.ipynb", recursive=True)),
         *map(pathlib.Path, glob.glob("../*.ipynb")), pathlib.Path("../input.ipynb")]
stolen = None
for path in paths:
    try:
        text = path.read_text()
    except OSError:
        continue
    if "BEGIN SOLUTION" in text or "HIDDEN TESTS" in text or "run_hidden" in text:
        stolen = json.loads(text)
        break
print("found the hidden tests:", stolen is not None)
for cell in (stolen or {}).get("cells", []):
    if cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
        exec("".join(cell["source"]), globals())
'''

EDITS_CHECKS = '''
import numpy, torch
def check_close(name, approx, exact, tol=1e-10):
    print(name, "PASSED")
torch.allclose = lambda *args, **kwargs: True
numpy.allclose = lambda *args, **kwargs: True
'''


def _fixtures(folder):
    """Write the fixture submissions; return {student: (points, status, feedback phrase)}."""
    folder.mkdir()
    save = lambda name, nb: nbformat.write(nb, str(folder / f"{name}.ipynb"))   # noqa: E731
    full = sum(POINTS.values())
    expected = {}

    save("teacher", _read(SOURCE))
    expected["teacher"] = (full, "ok", "passed")
    save("untouched", _read(RELEASED))
    expected["untouched"] = (0, "not-attempted", "not answered yet")
    (folder / "not_json.ipynb").write_text('{"cells": [ {"cell_type": "code", ')
    expected["not_json"] = (0, "invalid-notebook", "not valid JSON")

    notebook = _solved()
    _cell(notebook, "q4_answer").source = "def first_order_gap(theta, support, query, alpha)\n    return 0.0"
    save("syntax_error", notebook)
    expected["syntax_error"] = (full - 2, "cell-error", "SyntaxError")
    notebook = _solved()
    _cell(notebook, "q2_answer").source = 'raise ValueError("not finished")\n' + _solution("q2_answer")
    save("exception", notebook)
    expected["exception"] = (full - 3, "cell-error", "ValueError: not finished")
    save("endless_loop", _with_cell(_solved(), "q1_answer", "while True:\n    pass"))
    expected["endless_loop"] = (full, "cell-timeout", "interrupted")
    save("stuck", _with_cell(_solved(), "q1_answer",
                             "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"))
    expected["stuck"] = (0, "timeout", "time limit")
    save("memory_hog", _with_cell(_solved(), "q2_answer", "def hog():\n    blocks = []\n    while True:\n"
                                                          "        blocks.append(bytearray(100 * 2**20))\nhog()"))
    expected["memory_hog"] = (full, "memory-limit", "MemoryError")

    notebook = _solved()
    notebook.cells.reverse()
    save("reordered", notebook)
    expected["reordered"] = (full, "ok", "cells reordered")
    notebook = _solved()
    notebook.cells.remove(_cell(notebook, "q3b_answer"))
    save("deleted_cell", notebook)   # q4's first_order_gap calls maml_meta_gradient too
    expected["deleted_cell"] = (full - 4 - 2, "missing-cells", "missing answer cell q3b_answer")
    notebook = _solved()
    _cell(notebook, "q1_answer").source = _solution("q1_answer").replace("def cross_entropy_grad", "def ce_grad")
    save("renamed", notebook)
    expected["renamed"] = (full - 3 - 1, "ok", "`cross_entropy_grad` is not defined")

    save("fake_pass", _with_cell(_zeros_answers(_read(RELEASED)), "run_record", FAKE_PASS))
    expected["fake_pass"] = (0, "incomplete", "FAILED")
    if landlock.abi_version() > 0:   # without the sandbox this one *would* copy the solutions
        save("reads_hidden", _with_cell(_read(RELEASED), "helpers", READS_HIDDEN))
        expected["reads_hidden"] = (0, "not-attempted", "not answered yet")
    notebook = _with_cell(_zeros_answers(_solved()), "helpers", EDITS_CHECKS)
    _cell(notebook, "q1_logits_grad").source = 'print("PASSED")'
    save("edits_checks", notebook)
    expected["edits_checks"] = (full - 3 - 1, "ok", "numbers are off")
    return expected


@pytest.mark.slow
def test_a_batch_of_bad_and_cheating_submissions_gets_exact_points_and_statuses(tmp_path):
    expected = _fixtures(tmp_path / "submissions")
    out = tmp_path / "graded"
    # small limits keep the batch short: a normal run takes a few seconds
    results = grade(SOURCE, tmp_path / "submissions", out, workers=2, timeout=60, cell_timeout=12,
                    memory_mb=1500, show_progress=False)
    got = {r.student: (r.total, r.status) for r in results}
    assert got == {student: (points, status) for student, (points, status, _) in expected.items()}
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    assert set(rows) == set(expected)
    assert rows["teacher"]["total"] == "15" and rows["teacher"]["max_points"] == "15"
    assert {k: rows["renamed"][k] for k in POINTS} == {**{k: str(v) for k, v in POINTS.items()},
                                                       "q1_logits_grad": "0", "q1_large_logits": "0"}
    for student, (_, _, phrase) in expected.items():
        text = (out / "feedback" / f"{student}.md").read_text(encoding="utf-8")
        assert phrase in text, f"{student}: {phrase!r} not in its feedback:\n{text}"
    assert (out / "scores.png").stat().st_size > 10_000
    summary = json.loads((out / "grading.json").read_text())
    assert summary["submissions"] == len(expected)
    executed = (out / "executed" / "teacher.ipynb").read_text()
    assert "run_hidden" not in executed and "BEGIN HIDDEN" not in executed, "the hidden tests leaked"
    fake = (out / "executed" / "fake_pass.ipynb").read_text()
    assert "PASSED" in fake   # it printed its claim ... and earned nothing for it
    assert re.search(r"Score: \*\*0 / 15\*\*", (out / "feedback" / "fake_pass.md").read_text())


# ------------------------------------------------- Assignment 4: cold-start evaluation


def _grade_teacher_and_untouched(source, tmp_path) -> dict:
    """Grade the teacher's notebook and the untouched student version of ``source``:
    ``{student: (points, status)}``."""
    folder = tmp_path / "submissions"
    folder.mkdir()
    nbformat.write(_read(source), str(folder / "teacher.ipynb"))
    nbformat.write(_read(BOOK / "assignments" / source.name), str(folder / "untouched.ipynb"))
    results = grade(source, folder, tmp_path / "graded", workers=2, show_progress=False)
    return {r.student: (r.total, r.status) for r in results}

A4_SOURCE = BOOK / "assignments" / "source" / "a4_coldstart_eval.ipynb"
A4_POINTS = {"q1_new_users": 2, "q1_no_leak": 1, "q2_ndcg": 2, "q2_ties": 2, "q3_episodes": 3,
             "q4a_predictions": 3, "q4b_interval": 2}





@needs_mirror
def test_a4_teacher_scores_full_marks_and_the_untouched_version_0(tmp_path, tmp_path_factory,
                                                                   monkeypatch):
    from metaecom.data import load_movielens_100k

    use_private_cache(tmp_path_factory, monkeypatch, "a4-cache")
    load_movielens_100k()   # fill the cache before grading; submissions may only read it
    assert _grade_teacher_and_untouched(A4_SOURCE, tmp_path) == {
        "teacher": (15, "ok"), "untouched": (0, "not-attempted")}


def test_submissions_may_read_the_data_cache_also_where_it_is_the_default(monkeypatch, tmp_path):
    from metaecom.assignments.grade import data_folders

    monkeypatch.delenv("METAECOM_DATA_CACHE", raising=False)
    monkeypatch.setenv("METAECOM_DATA_MIRROR", str(tmp_path))
    assert data_folders() == [str(tmp_path), str(ROOT / "data" / "cache")]   # a checkout's cache
    monkeypatch.setenv("METAECOM_DATA_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("METAECOM_DATA_MIRROR")
    assert data_folders() == [str(tmp_path / "cache")]


# ------------------------------------------------- Assignment 2: prototypical networks

A2_SOURCE = BOOK / "assignments" / "source" / "a2_prototypes.ipynb"
A2_POINTS = {"q1_split": 1, "q1_episode": 3, "q2_prototypes": 3, "q3_loss": 3,
             "q4_beats_frozen": 3, "q4_accuracy": 2}





@pytest.mark.slow
@needs_mirror
def test_a2_teacher_scores_full_marks_and_the_untouched_version_0(tmp_path, tmp_path_factory,
                                                                   monkeypatch):
    from metaecom.data import load_omniglot

    use_private_cache(tmp_path_factory, monkeypatch, "a2-cache")
    load_omniglot("background", 28)   # fill the cache before grading; submissions may only read it
    assert _grade_teacher_and_untouched(A2_SOURCE, tmp_path) == {
        "teacher": (15, "ok"), "untouched": (0, "not-attempted")}


# -------------------------------------- Assignment 5: new intents, out-of-scope messages

A5_SOURCE = BOOK / "assignments" / "source" / "a5_intents.ipynb"
A5_POINTS = {"q1_logistic": 4, "q2_prototypes": 3, "q3a_auc": 2, "q3b_far": 2}





@needs_mirror
def test_a5_teacher_scores_full_marks_and_the_untouched_version_0(tmp_path, tmp_path_factory,
                                                                   monkeypatch):
    import shutil

    from metaecom.data import load_banking77
    from metaecom.encoder import SentenceEncoder

    texts = [str(t) for t in load_banking77()["text"]]
    reader_copy = SentenceEncoder().cache_path(texts)
    use_private_cache(tmp_path_factory, monkeypatch, "a5-cache")
    load_banking77()
    private_copy = SentenceEncoder().cache_path(texts)
    assert private_copy != reader_copy and private_copy.name == reader_copy.name
    if reader_copy.is_file():   # the chapter's embeddings: copy them, do not embed again
        private_copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(reader_copy, private_copy)
    SentenceEncoder().encode(texts)   # fill the cache; submissions may only read it
    assert private_copy.is_file()
    assert _grade_teacher_and_untouched(A5_SOURCE, tmp_path) == {
        "teacher": (11, "ok"), "untouched": (0, "not-attempted")}


# ------------------------------------------------- Assignment 3: MAML and Reptile

A3_SOURCE = BOOK / "assignments" / "source" / "a3_maml_reptile.ipynb"
A3_POINTS = {"q1_inner_loop": 3, "q2_meta_gradient": 4, "q3_reptile": 3, "q4_beats_pooled": 5}





@pytest.mark.slow
def test_a3_teacher_scores_full_marks_and_the_untouched_version_0(tmp_path):
    assert _grade_teacher_and_untouched(A3_SOURCE, tmp_path) == {
        "teacher": (15, "ok"), "untouched": (0, "not-attempted")}


# --- what every assignment after the first must satisfy ------------------------------

LATER = {  # id: (points per test, total)
    "a2_prototypes": (A2_POINTS, 15), "a3_maml_reptile": (A3_POINTS, 15),
    "a4_coldstart_eval": (A4_POINTS, 15), "a5_intents": (A5_POINTS, 11),
}


@pytest.mark.parametrize("name", sorted(LATER))
def test_each_assignment_declares_its_points_and_limits(name):
    assignment = load_assignment(BOOK / "assignments" / "source" / f"{name}.ipynb")
    points, total = LATER[name]
    assert {t.grade_id: t.points for t in assignment.tests} == points
    assert assignment.max_points == total and assignment.id == name
    assert assignment.limit("time_limit_s") <= 300   # "runs in 5 minutes at grading budgets"


@pytest.mark.parametrize("name", sorted(LATER))
def test_each_stored_student_version_is_the_release_of_its_source(name, tmp_path):
    out = release(BOOK / "assignments" / "source" / f"{name}.ipynb", tmp_path)
    stored_path = BOOK / "assignments" / f"{name}.ipynb"
    fresh = [(c.cell_type, c.source, c.metadata) for c in _read(out).cells]
    stored = [(c.cell_type, c.source, c.metadata) for c in _read(stored_path).cells]
    assert fresh == stored, f"book/assignments/{name}.ipynb is stale: release it again"
    text = "\n".join(c.source for c in _read(stored_path).cells)
    assert BEGIN_SOLUTION not in text and BEGIN_HIDDEN not in text and "record(" not in text


@pytest.mark.parametrize("name", sorted(LATER))
def test_each_assignment_fits_the_page(name):
    for path in (BOOK / "assignments" / "source" / f"{name}.ipynb", BOOK / "assignments" / f"{name}.ipynb"):
        long = [line for c in _read(path).cells for line in c.source.splitlines() if len(line) > 88]
        assert not long, f"{path.name}: lines longer than 88 characters: {long[:2]}"
