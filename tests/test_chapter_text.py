"""What every chapter's text must respect, checked on the stored notebooks: code lines
fit the page (88 characters), an admonition's option line holds only the option (a
reflowed ':class: dropdown' that swallowed the solution's first words shows the solution
open and garbles its class), and the prose speaks to readers, not in planning words."""

from __future__ import annotations

import json
import re

import pytest

from conftest import notebooks

PLANNING = re.compile(r"\b(the target (was|is)|targets? (was|were) (not )?met|this issue|the issue (this|that)|"
                      r"issue asked)\b", re.IGNORECASE)


def _cells(path, kind):
    nb = json.loads(path.read_text(encoding="utf-8"))
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == kind]


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.name)
def test_code_lines_fit_the_page(path):
    long = [line for cell in _cells(path, "code") for line in cell.split("\n") if len(line) > 88]
    assert not long, f"{len(long)} code lines over 88 characters, e.g. {long[0]!r}"


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.name)
def test_admonition_options_stand_alone_and_no_planning_words(path):
    for cell in _cells(path, "markdown"):
        for line in cell.split("\n"):
            if line.startswith(":class:"):
                assert re.fullmatch(r":class: [\w-]+( [\w-]+)*", line) and len(line.split()) <= 3, line
        found = PLANNING.search(cell)
        assert not found, f"planning word {found.group(0)!r} in: {cell[:120]!r}"


def _outputs(path):
    """The text every code cell of the stored notebook printed or displayed."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    texts = []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []) if cell["cell_type"] == "code" else []:
            text = out.get("text") or out.get("data", {}).get("text/plain", "")
            texts.append("".join(text))
    return "\n".join(texts)


# The chapters whose results are meta-learners'. Each must show, in its executed output,
# a control (the same model and adaptation without meta-training) and the step early
# stopping kept.
META_LEARNING_CHAPTERS = ["metric_based", "optimization_based", "memory_based",
                          "pretrained_adaptation", "coldstart_recommendation",
                          "new_product_demand", "new_market_pricing",
                          "cancellation_risk", "product_matching",
                          "intent_routing", "customer_profiling"]


@pytest.mark.parametrize("name", META_LEARNING_CHAPTERS)
def test_meta_learning_results_show_their_control_and_kept_step(name):
    path = next(p for p in notebooks() if p.stem == name)
    printed = _outputs(path)
    assert re.search(r"not meta-trained|\(control\)", printed), f"{name}: no control in the outputs"
    assert re.search(r"kept step|kept episode|kept: episode|meta-steps kept", printed), \
        f"{name}: the step early stopping kept is never printed"


def _solutions(path):
    """(solution text, the cell after it) for every Solution admonition of a chapter."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = nb["cells"]
    found = []
    for i, cell in enumerate(cells):
        text = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and ":::{admonition} Solution" in text:
            for solution in text.split(":::{admonition} Solution")[1:]:
                found.append((solution.split("\n:::")[0], cells[i + 1] if i + 1 < len(cells) else None))
    return found


@pytest.mark.parametrize("path", [p for p in notebooks() if "assignments" not in p.parts], ids=lambda p: p.name)
def test_solution_code_is_executed_not_printed(path):
    """A solution's code is a hidden cell that runs with the chapter (smoke budgets in the
    suite), so its numbers cannot silently go stale: no solution holds a code block, and
    one that points to "the hidden cell below" is followed by an executed hidden cell."""
    for solution, after in _solutions(path):
        assert "```" not in solution, f"a solution holds a code block instead of a cell: {solution[:120]!r}"
        if "hidden cell below" in solution:
            assert after is not None and after["cell_type"] == "code", solution[:120]
            assert "hide-cell" in after["metadata"].get("tags", []), solution[:120]
            assert after.get("outputs"), f"the solution's hidden cell has no stored output: {solution[:120]!r}"
