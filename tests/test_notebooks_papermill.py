"""Chapters as teachers use them: executed by papermill with injected parameters.

nbval (configured in pytest.ini) runs every notebook as stored; these tests check that
papermill's injected parameters take effect and that bad ones fail early and clearly.
"""

from __future__ import annotations

import json

import papermill as pm
import pytest

from conftest import BOOK, notebooks

CHAPTER = BOOK / "learning_to_learn_in_one_notebook.ipynb"


def _text_outputs(path) -> str:
    nb = json.loads(path.read_text(encoding="utf-8"))
    parts = []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", "") if isinstance(out.get("text", ""), str) else "".join(out["text"]))
            parts.append("".join(out.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


def _run(tmp_path, **parameters):
    out = tmp_path / "out.ipynb"
    pm.execute_notebook(str(CHAPTER), str(out), parameters=parameters, kernel_name="python3",
                        progress_bar=False, cwd=str(BOOK))
    return out


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.name)
def test_every_chapter_has_one_parameters_cell_and_a_checked_output(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: expected exactly one cell tagged 'parameters', found {len(tagged)}"
    assert code[0] is tagged[0], "the parameters cell must be the first code cell"
    assert "check_parameters(globals()" in "".join(code[1]["source"]), "the cell after it must check the parameters"
    assert any("NBVAL_CHECK_OUTPUT" in "".join(c["source"]) for c in code), "no cell's output is checked by nbval"
    assert "run" == "".join(code[-1]["source"]).strip(), "the last cell must show the run record"
    shown = "".join("".join(out.get("data", {}).get("text/plain", "")) for out in code[-1].get("outputs", []))
    assert shown.startswith("Run record"), "the stored last cell shows no run record (is `run` overwritten?)"


def test_injected_parameter_takes_effect(tmp_path):
    out = _run(tmp_path, n_test_stores=7, seed=3)
    text = _text_outputs(out)
    assert "n_test_stores          = 7   (injected)\n" in text
    assert "mean ± 95% CI over 7 new stores" in text
    assert "meta-test stores: 7" in text


def _failure(tmp_path, **parameters) -> pm.PapermillExecutionError:
    with pytest.raises(pm.PapermillExecutionError) as info:
        _run(tmp_path, **parameters)
    nb = json.loads((tmp_path / "out.ipynb").read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    failed = [i for i, c in enumerate(code) if any(o["output_type"] == "error" for o in c.get("outputs", []))]
    # code cells: [parameters, injected-parameters, check] -> the check cell fails, nothing after it ran
    assert failed == [2], f"expected the first cell after the parameters to fail, got code cells {failed}"
    assert all(c.get("execution_count") is None for c in code[3:])
    return info.value


def test_unknown_parameter_fails_first_and_names_it(tmp_path):
    error = _failure(tmp_path, n_tset_stores=5)
    assert error.ename == "ParameterError"
    assert "unknown parameter 'n_tset_stores'" in error.evalue
    assert "n_test_stores (int, 2 <= n_test_stores <= 100000)" in error.evalue


def test_out_of_range_budget_fails_first_and_names_the_range(tmp_path):
    error = _failure(tmp_path, n_test_stores=0)
    assert error.ename == "ParameterError"
    assert "'n_test_stores' = 0 is out of range; allowed: 2 <= n_test_stores <= 100000" in error.evalue


def test_after_run_all_the_parameters_cell_can_be_edited_and_rerun():
    # A student runs the whole chapter, changes the seed and re-runs the parameters cell
    # and the check after it: the check must not mistake the chapter's own variables for
    # unknown parameters.
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(str(CHAPTER), as_version=4)
    client = NotebookClient(nb, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(BOOK)}})
    code = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    with client.setup_kernel():
        for index in code:
            client.execute_cell(nb.cells[index], index)
        parameters, check = nb.cells[code[0]], nb.cells[code[1]]
        assert "seed = 0" in parameters.source
        parameters.source = parameters.source.replace("seed = 0", "seed = 5")
        client.execute_cell(parameters, code[0])
        client.execute_cell(check, code[1])
    text = "".join(out.get("data", {}).get("text/plain", "") for out in check.outputs)
    assert not any(out.output_type == "error" for out in check.outputs)
    assert "seed" in text and "= 5" in text.split("seed", 1)[1].splitlines()[0]


def test_a_failed_parameter_check_says_what_to_fix_in_its_first_lines(tmp_path):
    error = _failure(tmp_path, n_tset_stores=5)
    first = error.evalue.splitlines()[0]
    assert first.startswith("unknown parameter 'n_tset_stores' (did you mean 'n_test_stores'")
    nb = json.loads((tmp_path / "out.ipynb").read_text(encoding="utf-8"))
    failed = next(out for cell in nb["cells"] for out in cell.get("outputs", []) if out["output_type"] == "error")
    # the traceback shows the notebook's cell and the message, not the package's internals
    assert failed["traceback"][0].startswith("ParameterError: unknown parameter 'n_tset_stores'")
    assert not any("parameters.py" in line for line in failed["traceback"]), failed["traceback"]


def test_the_run_record_lists_injected_parameters(tmp_path):
    text = _text_outputs(_run(tmp_path, n_test_stores=7, seed=3))
    assert "injected  : n_test_stores=7, seed=3" in text
