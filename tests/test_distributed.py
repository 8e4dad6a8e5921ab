"""Data-parallel meta-training (metaecom.distributed and its torchrun entry point).

The claims tested: the meta-gradient shared between 2 gloo processes equals the one
computed by one process (float64); a run resumed from a checkpoint continues exactly; 2
processes follow the 1-process trajectory; bad set-ups are refused before any work; and a
process that dies makes the other fail with a message naming the step, not hang.
"""

from __future__ import annotations

import multiprocessing
import os

import numpy as np
import pytest
import torch
from torch import nn

from metaecom import distributed
from metaecom.methods import MAML, Reptile
from metaecom.scripts import meta_train_distributed as script


def _torchrun(args, processes=2):
    return script.launch(["--data", "synthetic", *args], processes=processes, threads=1, timeout=180)


@pytest.mark.parametrize("method", ["MAML", "MetaSGD"])
def test_meta_gradient_shared_by_two_processes_equals_one_process(method):
    result = _torchrun(["--method", method, "--check-gradient", "--dtype", "float64"])
    assert result["processes"] == 2 and result["dtype"] == "float64"
    assert result["max_abs_gradient"] > 1e-3          # a real gradient, not zeros
    assert result["max_abs_difference"] < 1e-12


def _state(path):
    return torch.load(path, weights_only=True)


def _run(tmp_path, name, *extra):
    checkpoint = tmp_path / f"{name}.pt"
    assert script.main(["--data", "synthetic", "--dtype", "float64", "--checkpoint", str(checkpoint),
                        "--checkpoint-every", "2", *extra]) == 0
    return checkpoint


def test_resumed_run_continues_exactly_and_two_processes_follow_one(tmp_path):
    whole = _state(_run(tmp_path, "whole", "--meta-steps", "6"))
    _run(tmp_path, "resumed", "--meta-steps", "3")
    first_half = _state(tmp_path / "resumed.pt")
    assert first_half["step"] == 3 and len(first_half["history"]) == 3
    resumed = _state(_run(tmp_path, "resumed", "--meta-steps", "6", "--resume"))
    assert resumed["step"] == 6 and resumed["history"] == whole["history"]
    for a, b in zip(whole["modules"], resumed["modules"]):
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert whole["history"][0] != whole["history"][-1]   # it trained

    checkpoint = tmp_path / "two.pt"
    assert _torchrun(["--meta-steps", "6", "--dtype", "float64", "--checkpoint", str(checkpoint)])["processes"] == 2
    two = _state(checkpoint)
    assert two["world_size"] == 2 and two["tasks_seen"] == whole["tasks_seen"] == 6 * 8
    np.testing.assert_allclose(two["history"], whole["history"], rtol=0, atol=1e-12)
    for a, b in zip(whole["modules"], two["modules"]):
        for k in a:
            np.testing.assert_allclose(a[k].numpy(), b[k].numpy(), rtol=0, atol=1e-10)


def test_world_size_that_does_not_divide_the_meta_batch_is_refused_first(monkeypatch):
    with pytest.raises(ValueError, match=r"3 processes cannot share a meta-batch of 8 tasks.*\[1, 2, 4, 8\]"):
        distributed.check_divides(8, 3)
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ValueError, match="3 processes cannot share a meta-batch of 8"):
        script.main(["--data", "synthetic", "--meta-steps", "1"])
    assert not torch.distributed.is_initialized()


def _small_maml(seed=0):
    torch.manual_seed(seed)
    return MAML(nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 5)), n_way=5, k_shot=1, n_query=1,
                tasks_per_step=4, device="cpu", seed=seed)


def test_refusals_before_work(tmp_path):
    reptile = Reptile(nn.Linear(16, 5), n_way=5, tasks_per_step=4, device="cpu")
    with pytest.raises(TypeError, match="own meta_step"):
        distributed.meta_train(reptile, lambda rng: None, 1, distributed.World())
    with pytest.raises(ValueError, match="resume=True needs the checkpoint"):
        distributed.meta_train(_small_maml(), lambda rng: None, 1, distributed.World(), resume=True)
    checkpoint = tmp_path / "c.pt"
    method = _small_maml()
    method._optimizer = method.make_optimizer()
    distributed.save_checkpoint(checkpoint, method, 0, distributed.World())
    with pytest.raises(ValueError, match="seed 0, not of MAML with seed 1"):
        distributed.load_checkpoint(checkpoint, _small_maml(seed=1))


def test_world_of_one_changes_nothing_and_ring_volume():
    method = _small_maml()
    assert distributed.average_meta_gradients(method, 0.5, 4) == (0.5, 4)
    assert distributed.ring_allreduce_bytes(1000, 1) == 0
    assert distributed.ring_allreduce_bytes(1000, 2) == 4000       # 2 (P-1)/P x 4 bytes x 1000
    assert distributed.ring_allreduce_bytes(1000, 64) == pytest.approx(2 * 63 / 64 * 4000)
    assert distributed.shard(range(8), distributed.World(rank=1, size=4)) == [2, 3]


def test_a_failed_job_raises_with_its_output():
    with pytest.raises(RuntimeError, match=r"failed \(exit code 1\)[\s\S]*cannot share a meta-batch of 8"):
        _torchrun(["--meta-steps", "1"], processes=3)


def _dying_worker(rank, port, queue):
    """Rank 1 exits without a word at its third task draw; rank 0 reports what it saw."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    world = distributed.init(backend="gloo", timeout_s=30)
    x, y = script.synthetic_classes(n_classes=20)
    method = _small_maml()
    source = script.episode_source(x, y, method)
    draws = []

    def tasks(rng):
        draws.append(1)
        if rank == 1 and len(draws) == 5:       # 2 tasks per step: dies in meta-step 3
            os._exit(1)
        return source(rng)
    try:
        distributed.meta_train(method, tasks, 10, world)
        queue.put((rank, "finished"))
    except distributed.RankFailure as failure:
        queue.put((rank, str(failure)))


def test_a_process_that_dies_makes_the_other_fail_clearly():
    context = multiprocessing.get_context("spawn")
    queue, port = context.Queue(), script.free_port()
    workers = [context.Process(target=_dying_worker, args=(rank, port, queue)) for rank in (0, 1)]
    for worker in workers:
        worker.start()
    try:
        rank, message = queue.get(timeout=90)
    finally:
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()
    assert rank == 0
    assert "rank 0 of 2, meta-step 3" in message
    assert "died or stopped answering" in message and "No checkpoint was written" in message
    assert workers[1].exitcode == 1


def test_projected_step_seconds_follows_its_formula():
    one = distributed.projected_step_seconds(1, 32, 0.01, 10**6, 1e9, 1e-5)
    assert one == pytest.approx(0.32)                                   # 32 tasks, no communication
    four = distributed.projected_step_seconds(4, 32, 0.01, 10**6, 1e9, 1e-5)
    assert four == pytest.approx(8 * 0.01 + 6 * 1e-5 + 2 * 3 / 4 * 4e6 / 1e9)
    # beyond one task per process, more processes only add communication
    at_32 = distributed.projected_step_seconds(32, 32, 0.01, 10**6, 1e9, 1e-5)
    at_64 = distributed.projected_step_seconds(64, 32, 0.01, 10**6, 1e9, 1e-5)
    assert at_64 > at_32 > 0.01
    with pytest.raises(ValueError, match="bandwidth"):
        distributed.projected_step_seconds(2, 32, 0.01, 10, 0, 0)
