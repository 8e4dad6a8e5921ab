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


def test_injected_parameter_takes_effect(tmp_path):
    out = _run(tmp_path, n_test_stores=7, seed=3)
    text = _text_outputs(out)
    assert "n_test_stores          = 7\n" in text
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
    assert error.ename == "ValueError"
    assert "unknown parameter 'n_tset_stores'" in error.evalue
    assert "n_test_stores (int, 2 <= n_test_stores <= 100000)" in error.evalue


def test_out_of_range_budget_fails_first_and_names_the_range(tmp_path):
    error = _failure(tmp_path, n_test_stores=0)
    assert error.ename == "ValueError"
    assert "'n_test_stores' = 0 is out of range; allowed: 2 <= n_test_stores <= 100000" in error.evalue
