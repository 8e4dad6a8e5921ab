import pytest

from metaecom import Budget, check_parameters, smoke_mode

BUDGETS = {"n_tasks": Budget(1, 1000, smoke=5), "lr": Budget(1e-5, 1.0, kind=float), "seed": Budget(0, 2**31 - 1)}


@pytest.fixture
def full(monkeypatch):
    monkeypatch.setenv("METAECOM_SMOKE", "0")


@pytest.fixture
def smoke(monkeypatch):
    monkeypatch.setenv("METAECOM_SMOKE", "1")


def test_full_mode_keeps_values(full):
    p = check_parameters({"n_tasks": 200, "lr": 0.1, "seed": 3}, BUDGETS)
    assert (p.n_tasks, p.lr, p.seed, p.smoke) == (200, 0.1, 3, False)
    assert p["n_tasks"] == 200 and dict(p) == {"n_tasks": 200, "lr": 0.1, "seed": 3}


def test_smoke_mode_caps_budgets_only(smoke):
    p = check_parameters({"n_tasks": 200, "lr": 0.1, "seed": 3}, BUDGETS)
    assert (p.n_tasks, p.lr, p.seed, p.smoke) == (5, 0.1, 3, True)
    assert "capped from 200" in repr(p)


def test_smoke_mode_keeps_values_below_the_cap(smoke):
    assert check_parameters({"n_tasks": 2, "lr": 0.1, "seed": 3}, BUDGETS).n_tasks == 2


def test_unknown_name_is_named_with_the_likely_intended_one_and_what_is_accepted(full):
    namespace = {"n_tasks": 2, "lr": 0.1, "seed": 3, "n_taks": 7}
    with pytest.raises(ValueError) as info:
        check_parameters(namespace, BUDGETS)
    first_line, *rest = str(info.value).splitlines()
    assert first_line.startswith("unknown parameter 'n_taks' (did you mean 'n_tasks' instead of 'n_taks'?)")
    assert "  n_tasks (int, 1 <= n_tasks <= 1000)" in rest  # one accepted parameter per line


PARAMETERS_CELL = "n_tasks = 200  # tasks\nlr = 0.1\nseed = 3\n"


def kernel(*cells, **variables):
    """A notebook kernel's namespace after running ``cells`` (IPython's input history ``In``)."""
    namespace = {"In": ["", *cells, "p = check_parameters(globals(), BUDGETS)"], "Out": {}}
    for cell in cells:
        exec(cell, {}, namespace)
    namespace.update(variables)
    return namespace


def test_in_a_notebook_only_the_parameters_cell_is_checked_so_rerunning_it_works(full):
    # after Run All the kernel holds the chapter's own variables (HIDDEN, METHODS, ...);
    # editing the seed and re-running the parameters cell and this check must still work
    after_run_all = kernel("x = 1", PARAMETERS_CELL, HIDDEN=64, METHODS=["a"], FINE_TUNE_STEPS=5)
    after_run_all["In"][-2] = PARAMETERS_CELL.replace("seed = 3", "seed = 4")
    exec(after_run_all["In"][-2], {}, after_run_all)
    p = check_parameters(after_run_all, BUDGETS)
    assert p.seed == 4 and p.injected == ()


def test_a_misspelt_name_in_the_parameters_cell_is_refused(full):
    with pytest.raises(ValueError, match="unknown parameter 'sed'"):
        check_parameters(kernel(PARAMETERS_CELL + "sed = 5\n"), BUDGETS)


def test_papermill_injected_names_are_checked_and_recorded(full):
    from metaecom import start_run

    injected = "# Parameters\nn_tasks = 7\n"
    p = check_parameters(kernel(PARAMETERS_CELL, injected), BUDGETS)
    assert (p.n_tasks, p.injected) == (7, ("n_tasks",))
    assert "n_tasks = 7   (injected)" in repr(p)
    assert "injected  : n_tasks=7" in start_run().report()
    with pytest.raises(ValueError, match="unknown parameter 'n_taks'"):
        check_parameters(kernel(PARAMETERS_CELL, "# Parameters\nn_taks = 7\n"), BUDGETS)


def test_kernel_names_modules_and_functions_are_not_parameters(full):
    import math

    namespace = {"n_tasks": 2, "lr": 0.1, "seed": 3, "In": [""], "Out": {}, "math": math, "f": len, "_x": 1}
    assert check_parameters(namespace, BUDGETS).n_tasks == 2


@pytest.mark.parametrize("value", [0, 1001, -5])
def test_out_of_range_names_parameter_and_range(full, value):
    with pytest.raises(ValueError, match=rf"'n_tasks' = {value} is out of range; allowed: 1 <= n_tasks <= 1000"):
        check_parameters({"n_tasks": value, "lr": 0.1, "seed": 3}, BUDGETS)


@pytest.mark.parametrize("value", [2.5, "10", True, None])
def test_wrong_type_is_refused(full, value):
    with pytest.raises(ValueError, match="n_tasks.*wrong type"):
        check_parameters({"n_tasks": value, "lr": 0.1, "seed": 3}, BUDGETS)


def test_int_is_accepted_for_a_float_parameter(full):
    assert check_parameters({"n_tasks": 2, "lr": 1, "seed": 3}, BUDGETS).lr == 1


def test_missing_parameter(full):
    with pytest.raises(ValueError, match="'seed' is missing"):
        check_parameters({"n_tasks": 2, "lr": 0.1}, BUDGETS)


def test_unknown_attribute_lists_parameters(full):
    p = check_parameters({"n_tasks": 2, "lr": 0.1, "seed": 3}, BUDGETS)
    with pytest.raises(AttributeError, match="have: n_tasks, lr, seed"):
        p.n_task


@pytest.mark.parametrize("value,expected", [("1", True), ("true", True), ("0", False), ("", False), ("off", False)])
def test_smoke_mode_values(monkeypatch, value, expected):
    monkeypatch.setenv("METAECOM_SMOKE", value)
    assert smoke_mode() is expected


def test_smoke_mode_rejects_nonsense(monkeypatch):
    monkeypatch.setenv("METAECOM_SMOKE", "maybe")
    with pytest.raises(ValueError, match="METAECOM_SMOKE='maybe'"):
        smoke_mode()
