"""The MAML speed benchmark: its implementations must agree before their times mean anything."""

import importlib.util

import pytest

from metaecom.scripts.benchmark_maml import relative_difference, run


def test_loop_vmap_and_groups_agree_in_the_benchmark_setting():
    ours = ("ours (loop)", "ours (vmap)", "ours (groups)")
    rows = run(repeats=1, n_tasks=2, steps=(1,), orders=("second", "first"), device="cpu",
               implementations=ours, log=lambda *_: None)
    assert [(r["order"], r["implementation"]) for r in rows] == [(o, name) for o in ("second", "first") for name in ours]
    # float64 is the correctness check; in float32 the batched paths' different summation order
    # is amplified by batch norm over 5 support images, so only the loop is held to 1e-4 there
    assert all(r["relative_difference_float64"] < 1e-10 for r in rows)
    assert all(r["relative_difference"] < 1e-4 for r in rows if r["implementation"] == "ours (loop)")
    assert all(r["median_s"] > 0 and len(r["runs_s"]) == 1 for r in rows)


def test_relative_difference_sees_a_wrong_gradient():
    import torch
    a = {"w": torch.ones(3)}
    assert relative_difference(a, {"w": torch.ones(3)}) == 0
    assert relative_difference(a, {"w": torch.tensor([1.0, 1.0, 2.0])}) > 0.1


@pytest.mark.skipif(importlib.util.find_spec("higher") is None, reason="higher is a benchmark-only dependency")
def test_higher_reference_agrees_with_ours():
    rows = run(repeats=1, n_tasks=2, steps=(2,), orders=("second",), device="cpu",
               implementations=("higher", "ours (loop)"), log=lambda *_: None)
    assert all(r["relative_difference"] < 1e-4 and r["relative_difference_float64"] < 1e-10 for r in rows)
