"""Data-parallel meta-training: the tasks of a meta-batch split across processes.

A meta-gradient is a mean over the tasks of a meta-batch, ``g = (1/B) Σ_i ∇L_i``. Split
the ``B`` tasks over ``P`` processes, let each compute the mean ``g_r`` over its ``B/P``
tasks, and the whole meta-batch's gradient is the mean of the ``g_r``: one all-reduce
(a sum across processes, :func:`torch.distributed.all_reduce`) of a vector the size of
the model per meta-step. Every process then takes the same optimiser step from the same
weights, so the copies never drift apart -- the scheme of PyTorch's
``DistributedDataParallel``, written here with the collective itself because the inner
loop of MAML calls the network functionally (``torch.func.functional_call``), past the
module hooks DDP relies on.

- :func:`init` joins the process group that ``torchrun`` describes in the environment
  (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``): gloo on CPUs, NCCL on GPUs, same code; a
  single process without ``torchrun`` is a world of one.
- :func:`average_meta_gradients` is the all-reduce, as the ``reduce`` hook of
  :meth:`metaecom.training.MetaLearner.meta_step`.
- :func:`meta_train` is the loop: task ``i`` of meta-step ``s`` is drawn from
  ``numpy.random.default_rng([seed, s, i])`` by whichever process computes it, so each
  process draws only its own tasks, a run gives the same tasks whatever the number of
  processes, and a run resumed from a checkpoint continues exactly where it stopped.
  Checkpoints hold tensors and plain values only and are read back with
  ``torch.load(weights_only=True)``.

A process that dies or stops answering makes the others fail with :class:`RankFailure`
(naming the meta-step and the last checkpoint) instead of waiting for ever; ``torchrun``
then stops the job and names the rank that failed.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist

from metaecom.checks import check_count
from metaecom.device import get_device
from metaecom.progress import progress
from metaecom.training import MetaLearner

__all__ = ["World", "RankFailure", "init", "shutdown", "check_divides", "shard", "average_meta_gradients",
           "step_tasks", "meta_train", "save_checkpoint", "load_checkpoint", "ring_allreduce_bytes", "projected_step_seconds"]


class RankFailure(RuntimeError):
    """Another process of the job died or stopped answering during a collective."""


@dataclass(frozen=True)
class World:
    """Where this process stands: its ``rank`` among ``size`` processes, its GPU
    (``local_rank``) when there is one, and the backend (None for a world of one)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that writes checkpoints, results and progress."""
        return self.rank == 0

    @property
    def device(self) -> torch.device:
        """This process's device: its own GPU under NCCL, the CPU under gloo, and for a
        world of one the book's usual choice (:func:`metaecom.device.get_device`)."""
        if self.backend == "nccl":
            return torch.device("cuda", self.local_rank)
        return get_device() if self.backend is None else torch.device("cpu")


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not an integer") from None


def init(backend: str | None = None, timeout_s: float = 120.0) -> World:
    """Join the process group ``torchrun`` set up in the environment; return this process's :class:`World`.

    ``backend`` defaults to NCCL when CUDA is present and gloo otherwise. Without
    ``torchrun`` (no ``WORLD_SIZE`` in the environment, or 1) no group is made and the
    world is this process alone. ``timeout_s`` bounds how long a collective waits for a
    process that stopped answering before :class:`RankFailure` is raised.
    """
    size, rank, local_rank = _env_int("WORLD_SIZE", 1), _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    if size < 1 or not 0 <= rank < size:
        raise ValueError(f"RANK={rank} and WORLD_SIZE={size} do not describe a process of a job")
    if size == 1:
        return World()
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend not in ("gloo", "nccl"):
        raise ValueError(f"backend must be 'gloo' (CPUs) or 'nccl' (GPUs), got {backend!r}")
    if backend == "nccl":
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(f"local rank {local_rank} has no GPU: this machine has "
                               f"{torch.cuda.device_count()}; start at most that many processes per node")
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=dt.timedelta(seconds=timeout_s))
    return World(rank=rank, size=size, local_rank=local_rank, backend=backend)


def shutdown(world: World) -> None:
    """Leave the process group (a no-op for a world of one)."""
    if world.size > 1 and dist.is_initialized():
        dist.destroy_process_group()


def check_divides(tasks_per_step: int, world_size: int) -> int:
    """The tasks each process computes per meta-step; an error unless ``world_size`` divides
    ``tasks_per_step`` (unequal shares would leave processes idle and change nothing else)."""
    tasks_per_step = check_count("tasks_per_step", tasks_per_step, 1)
    world_size = check_count("world_size", world_size, 1)
    if tasks_per_step % world_size:
        near = [n for n in range(1, tasks_per_step + 1) if tasks_per_step % n == 0]
        raise ValueError(f"{world_size} processes cannot share a meta-batch of {tasks_per_step} tasks equally; "
                         f"use a number of processes that divides it ({near}) or a meta-batch that is a "
                         f"multiple of {world_size}")
    return tasks_per_step // world_size


def shard(indices: range | list, world: World) -> list:
    """This process's contiguous share of ``indices`` (the world size must divide their number)."""
    share = check_divides(len(indices), world.size)
    return list(indices[world.rank * share:(world.rank + 1) * share])


def _collective(operation: Callable, tensor: torch.Tensor, what: str) -> None:
    try:
        operation(tensor)
    except RuntimeError as error:   # gloo and NCCL raise DistBackendError, a RuntimeError
        raise RankFailure(f"{what}: another process of the job died or stopped answering ({error})") from error


def average_meta_gradients(method: MetaLearner, loss: float, n_tasks: int) -> tuple[float, int]:
    """Replace each process's meta-gradient (a mean over its ``n_tasks`` tasks) by the mean
    over every task of the meta-batch; return the meta-batch's loss and task count.

    The gradients, the loss and the task count travel as one flat vector, summed by one
    all-reduce after weighting by ``n_tasks``, so processes may hold different numbers of
    tasks and the result is still the mean over all of them. A parameter without a
    gradient on this process counts as zero. With one process nothing changes.
    """
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return loss, n_tasks
    params = list(method.meta_parameters().values())
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads]
                     + [torch.tensor([loss, 1.0], dtype=grads[0].dtype, device=grads[0].device)]) * n_tasks
    _collective(dist.all_reduce, flat, "all-reducing the meta-gradients")
    total = int(round(flat[-1].item()))
    flat /= total
    offset = 0
    for p in params:
        p.grad = flat[offset:offset + p.numel()].view_as(p).clone()
        offset += p.numel()
    return flat[-2].item(), total


def step_tasks(tasks: Callable, seed: int, step: int, indices) -> list:
    """Tasks ``indices`` of meta-step ``step``: task ``i`` is ``tasks(default_rng([seed, step, i]))``."""
    return [tasks(np.random.default_rng([seed, step, i])) for i in indices]


def save_checkpoint(path, method: MetaLearner, step: int, world: World) -> None:
    """Write the state after ``step`` meta-steps (weights, optimiser, history) atomically."""
    path = Path(path)
    state = {"format": 1, "method": method.name, "step": int(step), "world_size": world.size,
             "seed": int(method.seed), "tasks_seen": int(method.tasks_seen),
             "history": [float(v) for v in method.history],
             "modules": [module.state_dict() for module in method.modules()],
             "optimizer": method._optimizer.state_dict() if method._optimizer is not None else {}}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(state, partial)
    os.replace(partial, path)


def load_checkpoint(path, method: MetaLearner) -> int:
    """Restore ``method`` from a checkpoint of :func:`save_checkpoint`; return its step.

    Read with ``torch.load(weights_only=True)``: a checkpoint holds tensors and plain
    values, so loading one runs no code from the file.
    """
    state = torch.load(Path(path), map_location=method.device, weights_only=True)
    if state.get("method") != method.name or state.get("seed") != method.seed:
        raise ValueError(f"{path} is a checkpoint of {state.get('method')} with seed {state.get('seed')}, "
                         f"not of {method.name} with seed {method.seed}")
    modules = method.modules()
    if len(state["modules"]) != len(modules):
        raise ValueError(f"{path} holds {len(state['modules'])} modules; {method.name} has {len(modules)}")
    for module, weights in zip(modules, state["modules"]):
        module.load_state_dict(weights)
    method._optimizer = method.make_optimizer()
    if state["optimizer"]:
        method._optimizer.load_state_dict(state["optimizer"])
    method.history = list(state["history"])
    method.tasks_seen = int(state["tasks_seen"])
    return int(state["step"])


def _broadcast_weights(method: MetaLearner) -> None:
    """Start every process from rank 0's weights (as DDP does at construction)."""
    for module in method.modules():
        for tensor in list(module.parameters()) + list(module.buffers()):
            _collective(lambda t: dist.broadcast(t, src=0), tensor.data, "broadcasting the starting weights")


def _stop_everywhere(stop: bool, device) -> bool:
    """True when any process wants to stop (its time budget ran out)."""
    flag = torch.tensor([1.0 if stop else 0.0], device=device)
    _collective(lambda t: dist.all_reduce(t, op=dist.ReduceOp.MAX), flag, "agreeing to stop")
    return bool(flag.item())


def meta_train(method: MetaLearner, tasks: Callable, meta_steps: int, world: World, *,
               checkpoint=None, checkpoint_every: int = 0, resume: bool = False,
               max_seconds: float | None = None, desc: str | None = None) -> dict:
    """Meta-train ``method`` for ``meta_steps`` meta-steps of ``method.tasks_per_step`` tasks,
    shared between the processes of ``world``.

    ``tasks(rng) -> task`` draws one task; task ``i`` of step ``s`` comes from
    ``default_rng([method.seed, s, i])``, and this process draws only its share. Rank 0
    writes ``checkpoint`` every ``checkpoint_every`` steps and at the end; ``resume=True``
    continues from it when it exists (with any number of processes). ``max_seconds``
    stops every process at the same step once the budget is spent. Returns a summary:
    steps run, wall seconds, the median seconds per meta-step (the first steps of a run
    are slower: memory is allocated, caches are cold) and the tasks per second at that
    median, world size.

    Refused before any work: a world size that does not divide ``tasks_per_step``, and a
    method that updates its weights without a meta-gradient (Reptile averages adapted
    weights in its own ``meta_step``).
    """
    meta_steps = check_count("meta_steps", meta_steps, 0)
    check_divides(method.tasks_per_step, world.size)
    if type(method).meta_step is not MetaLearner.meta_step:
        raise TypeError(f"{method.name} updates its weights in its own meta_step, not from a meta-gradient; "
                        "data-parallel training here averages meta-gradients (MAML, FOMAML, ANIL, Meta-SGD, "
                        "ProtoNet, CNP, ...)")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs the checkpoint path to resume from")
    checkpoint_every = check_count("checkpoint_every", checkpoint_every, 0)
    start = 0
    if resume and Path(checkpoint).exists():
        start = load_checkpoint(checkpoint, method)
    if world.size > 1:
        _broadcast_weights(method)
    reduce = average_meta_gradients if world.size > 1 else None
    mine = shard(range(method.tasks_per_step), world)
    for module in method.modules():
        module.train()
    began, step, step_seconds = time.perf_counter(), start, []
    try:
        for step in progress(range(start, meta_steps), desc=desc, disable=desc is None or not world.is_main):
            out_of_time = max_seconds is not None and time.perf_counter() - began > max_seconds
            if (_stop_everywhere(out_of_time, world.device) if world.size > 1 else out_of_time):
                break
            torch.manual_seed(int(np.random.default_rng([method.seed, step]).integers(2**62)))  # dropout etc.
            stepped = time.perf_counter()
            try:
                method.meta_step(step_tasks(tasks, method.seed, step, mine), reduce=reduce)
            except RankFailure as failure:
                again = (f"Restart the job with resume to continue from the last checkpoint, {checkpoint}."
                         if checkpoint and Path(checkpoint).exists() else
                         "No checkpoint was written: the job must start again (set a checkpoint to avoid this).")
                raise RankFailure(f"rank {world.rank} of {world.size}, meta-step {step + 1}: {failure}. "
                                  f"{again}") from failure
            step_seconds.append(time.perf_counter() - stepped)
            step += 1
            if checkpoint and world.is_main and checkpoint_every and step % checkpoint_every == 0:
                save_checkpoint(checkpoint, method, step, world)
    finally:
        seconds = time.perf_counter() - began
        method.train_seconds += seconds
        for module in method.modules():
            module.eval()
    if world.size > 1:   # batch-norm running statistics: rank 0's everywhere, as DDP's broadcast_buffers
        for module in method.modules():
            for buffer in module.buffers():
                _collective(lambda t: dist.broadcast(t, src=0), buffer.data, "sharing the final statistics")
    if checkpoint and world.is_main:
        save_checkpoint(checkpoint, method, step, world)
    run = step - start
    median = float(np.median(step_seconds)) if step_seconds else float("nan")
    return {"meta_steps": step, "steps_this_run": run, "processes": world.size, "backend": world.backend,
            "wall_s": round(seconds, 3), "median_step_s": round(median, 4),
            "tasks_per_second": round(method.tasks_per_step / median, 3) if step_seconds else float("nan")}


def ring_allreduce_bytes(parameters: int, processes: int, bytes_per_value: int = 4) -> float:
    """Bytes each process sends (and receives) in one ring all-reduce of ``parameters``
    values: ``2 (P-1)/P`` times the vector (a reduce-scatter then an all-gather)."""
    parameters = check_count("parameters", parameters, 0)
    processes = check_count("processes", processes, 1)
    return 2.0 * (processes - 1) / processes * parameters * bytes_per_value


def projected_step_seconds(processes: int, tasks_per_step: int, task_seconds: float, parameters: int,
                           bandwidth: float, latency: float, bytes_per_value: int = 4) -> float:
    """A model of one data-parallel meta-step's wall time on ``processes`` devices.

    Compute: the busiest process's share, ``ceil(B / P)`` tasks of ``task_seconds`` each
    (a process cannot take part of a task, so beyond ``P = B`` devices sit idle). Then
    one ring all-reduce of the meta-gradient: ``2 (P - 1)`` messages, each paying
    ``latency`` seconds, and :func:`ring_allreduce_bytes` at ``bandwidth`` bytes per
    second. It leaves out what real runs add or win back -- communication overlapped with
    the backward pass, slow processes, the optimiser step, tree all-reduces for small
    messages -- so read it as the shape of a scaling curve, not a prediction.
    """
    processes = check_count("processes", processes, 1)
    tasks_per_step = check_count("tasks_per_step", tasks_per_step, 1)
    if task_seconds < 0 or bandwidth <= 0 or latency < 0:
        raise ValueError("task_seconds and latency must be >= 0 and bandwidth > 0")
    compute = math.ceil(tasks_per_step / processes) * task_seconds
    if processes == 1:
        return compute
    return compute + 2 * (processes - 1) * latency + ring_allreduce_bytes(parameters, processes,
                                                                          bytes_per_value) / bandwidth
