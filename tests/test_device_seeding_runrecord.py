import random

import numpy as np
import pytest
import torch

import metaecom
from metaecom import get_device, seed_everything, start_run


def test_device_is_cuda_exactly_when_available(monkeypatch):
    monkeypatch.delenv("METAECOM_DEVICE", raising=False)
    assert get_device().type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_device_can_be_forced_to_cpu(monkeypatch):
    monkeypatch.setenv("METAECOM_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_asking_for_missing_cuda_is_an_error(monkeypatch):
    monkeypatch.setenv("METAECOM_DEVICE", "cuda")
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        get_device()


def test_unknown_device_is_an_error():
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        get_device("tpu")


def _draws():
    return random.random(), np.random.rand(), torch.rand(1).item()


def test_same_seed_same_draws_in_every_library():
    rng_a = seed_everything(123)
    a = _draws() + (rng_a.random(),)
    rng_b = seed_everything(123)
    b = _draws() + (rng_b.random(),)
    seed_everything(124)
    c = _draws()
    assert a == b
    assert all(x != y for x, y in zip(a, c))


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, True])
def test_bad_seeds_are_refused(seed):
    with pytest.raises((ValueError, TypeError)):
        seed_everything(seed)


def test_run_record_names_device_versions_and_time(monkeypatch):
    monkeypatch.setenv("METAECOM_SMOKE", "1")
    run = start_run()
    text = run.report()
    for needle in ["device", "wall time", f"metaecom  : {metaecom.__version__}", f"torch     : {torch.__version__}",
                   "smoke run"]:
        assert needle in text, needle
    assert run.wall_seconds >= 0
