"""Data-parallel meta-training of the MAML family, one process per share of each meta-batch.

    torchrun --nproc-per-node 2 -m metaecom.scripts.meta_train_distributed \\
        --method MAML --meta-steps 2000 --checkpoint runs/maml.pt --checkpoint-every 100
    # after a crash or a pre-empted job, the same command with --resume continues
    torchrun --nproc-per-node 2 -m metaecom.scripts.meta_train_distributed ... --resume

The same command runs on CPUs (gloo) and GPUs (NCCL, one process per GPU); without
``torchrun`` it is one process. Omniglot (the default data) is meta-trained with the MAML
paper's 5-way settings (those of ``metaecom.scripts.reproduce_omniglot``): Conv4 and a
linear head, 32 tasks per meta-step, one inner step of 0.4. The tasks of every meta-step
are split between the processes (see :mod:`metaecom.distributed`); the world size must
divide ``--tasks-per-step``. After training, rank 0 evaluates on the evaluation
alphabets (``--test-episodes``) and adds the run to a results file in the reproductions'
format (``book/results/omniglot_distributed.json`` unless ``--out``), with the number of
processes, the wall time and the tasks per second.

``--check-gradient`` computes one meta-gradient both ways -- shared between the
processes and, on rank 0, the whole meta-batch in one process -- and prints the largest
difference (use ``--dtype float64``). ``--data synthetic`` swaps Omniglot for small
Gaussian classes and an MLP: seconds instead of minutes, for tests and smoke runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import socket
import subprocess
import sys

import numpy as np
import torch
from torch import nn
from torch.distributed.elastic.multiprocessing.errors import record

from metaecom import distributed
from metaecom.device import describe_device
from metaecom.reproduction import evaluate_settings, print_results, results_path, write_run
from metaecom.runrecord import cpu_name
from metaecom.seeding import seed_everything
from metaecom.tasks.episodes import FewShotSampler, Task

METHODS = ("MAML", "FOMAML", "ANIL", "MetaSGD")

PROTOCOL = ("Omniglot, Vinyals et al. split (background alphabets x 4 rotations for meta-training, evaluation "
            "alphabets x 4 rotations for testing), the MAML paper's 5-way settings; meta-batches shared between "
            "processes by torch.distributed")


def synthetic_classes(n_classes: int = 200, per_class: int = 20, dim: int = 16, seed: int = 0):
    """Gaussian classes (unit spread around centres of spread 2): features ``[n, dim]``, labels."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 2.0, size=(n_classes, dim))
    x = centres.repeat(per_class, axis=0) + rng.normal(size=(n_classes * per_class, dim))
    return x.astype(np.float32), np.repeat(np.arange(n_classes), per_class)


def build(args, device):
    """The method, its training data (x, y) and test data for the chosen ``--data``."""
    from metaecom.methods import ANIL, FOMAML, MAML, MetaSGD

    kind = {"MAML": MAML, "FOMAML": FOMAML, "ANIL": ANIL, "MetaSGD": MetaSGD}[args.method]
    seed_everything(args.seed)
    if args.data == "omniglot":
        from metaecom.data.omniglot import omniglot_classes
        from metaecom.models import Conv4
        from metaecom.scripts.reproduce_omniglot import GRADIENT

        train, test = omniglot_classes("background"), omniglot_classes("evaluation")
        model = nn.Sequential(Conv4(), nn.Linear(64, args.way))
        settings = dict(GRADIENT["MAML"][5])
    else:
        x, y = synthetic_classes(seed=args.seed)
        train = x[y < 150], y[y < 150]
        test = x[y >= 150], y[y >= 150]
        model = nn.Sequential(nn.Linear(x.shape[1], 32), nn.ReLU(), nn.Linear(32, args.way))
        settings = dict(k_shot=1, n_query=1, tasks_per_step=8, inner_steps=1, inner_lr=0.4,
                        test_inner_steps=10, meta_lr=1e-3)
    for name in ("tasks_per_step", "inner_steps", "inner_lr", "meta_lr", "k_shot"):
        value = getattr(args, name)
        if value is not None:
            settings[name] = value
    model = model.to(getattr(torch, args.dtype))
    method = kind(model, n_way=args.way, seed=args.seed, device=device, **settings)
    return method, train, test


def episode_source(x, y, method):
    """``tasks(rng) -> Task``: an N-way K-shot episode of the training classes, drawn from ``rng``."""
    sampler = FewShotSampler(y, method.n_way, method.k_shot, method.n_query, seed=method.seed)

    def tasks(rng):
        e = sampler.sample(rng)
        return Task(x[e.support], e.support_y, x[e.query], e.query_y)
    return tasks


def check_gradient(method, tasks, world) -> dict | None:
    """The meta-gradient of step 0 shared between the processes, against one process's."""
    method._optimizer = method.make_optimizer()
    mine = distributed.shard(range(method.tasks_per_step), world)
    loss = method.meta_gradients(distributed.step_tasks(tasks, method.seed, 0, mine))
    loss, _ = distributed.average_meta_gradients(method, loss, len(mine))
    shared = {n: p.grad.detach().clone() for n, p in method.meta_parameters().items()}
    if not world.is_main:
        return None
    whole = method.meta_gradient(distributed.step_tasks(tasks, method.seed, 0, range(method.tasks_per_step)))
    diff = max((shared[n] - whole[n]).abs().max().item() for n in whole)
    scale = max(whole[n].abs().max().item() for n in whole)
    return {"processes": world.size, "dtype": str(next(method.model.parameters()).dtype).replace("torch.", ""),
            "parameters": sum(p.numel() for p in method.meta_parameters().values()),
            "max_abs_difference": diff, "max_abs_gradient": scale, "loss": loss}


def free_port() -> int:
    """A TCP port nobody listens on now, for the job's rendezvous."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(args: list[str], processes: int = 2, threads: int | None = None, timeout: float = 900) -> dict:
    """Run this entry point under ``torchrun`` (``python -m torch.distributed.run``) with
    ``processes`` processes of ``threads`` torch threads each, from Python or a notebook;
    return the JSON summary rank 0 prints last. A failed job raises ``RuntimeError`` with
    the end of its output."""
    threads = threads or max(1, (os.cpu_count() or 1) // processes)
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(processes),
               "--master-port", str(free_port()), "-m", "metaecom.scripts.meta_train_distributed",
               "--threads", str(threads), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        output = (done.stdout + done.stderr).splitlines()
        errors = list(dict.fromkeys(line for line in output if re.match(r"\w*(Error|Exception|Failure): ", line)))
        tail = "\n".join(errors or output[-20:])
        raise RuntimeError(f"the job of {processes} process(es) failed (exit code {done.returncode}):\n{tail}")
    return json.loads(lines[-1])


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", default="MAML", choices=METHODS)
    parser.add_argument("--data", default="omniglot", choices=("omniglot", "synthetic"))
    parser.add_argument("--way", type=int, default=5)
    parser.add_argument("--meta-steps", type=int, default=100)
    parser.add_argument("--tasks-per-step", type=int, default=None, help="default: the paper's 32 (omniglot)")
    parser.add_argument("--inner-steps", type=int, default=None)
    parser.add_argument("--inner-lr", type=float, default=None)
    parser.add_argument("--meta-lr", type=float, default=None)
    parser.add_argument("--k-shot", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--threads", type=int, default=None, help="torch threads per process")
    parser.add_argument("--checkpoint", default=None, help="checkpoint file (.pt), written by rank 0")
    parser.add_argument("--checkpoint-every", type=int, default=0, help="meta-steps between checkpoints")
    parser.add_argument("--resume", action="store_true", help="continue from --checkpoint when it exists")
    parser.add_argument("--max-minutes", type=float, default=None, help="stop every process after this long")
    parser.add_argument("--test-episodes", type=int, default=0, help="rank 0 evaluates on this many episodes")
    parser.add_argument("--out", default=None, help="results file (default book/results/omniglot_distributed.json)")
    parser.add_argument("--summary", default=None, help="also write the training summary here (JSON)")
    parser.add_argument("--check-gradient", action="store_true",
                        help="compare one shared meta-gradient with the single-process one and stop")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds a collective waits for a process")
    args = parser.parse_args(argv)
    if args.resume and not args.checkpoint:
        parser.error("--resume needs --checkpoint")
    if args.test_episodes == 1 or args.test_episodes < 0:
        parser.error("--test-episodes must be 0 (no evaluation) or at least 2")
    return args


@record   # torchrun then reports the exception of the rank that failed first
def main(argv=None) -> int:
    args = parse(argv)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    # refused before any process group exists or any data is read
    distributed.check_divides(args.tasks_per_step or (32 if args.data == "omniglot" else 8), world_size)
    if args.threads:
        torch.set_num_threads(args.threads)
    world = distributed.init(timeout_s=args.timeout)
    try:
        method, (train_x, train_y), (test_x, test_y) = build(args, world.device)
        tasks = episode_source(train_x, train_y, method)
        if args.check_gradient:
            result = check_gradient(method, tasks, world)
            if result is not None:
                print(json.dumps(result), flush=True)
            return 0
        if world.is_main:
            print(f"{method.name}: {args.meta_steps} meta-steps of {method.tasks_per_step} tasks on {world.size} "
                  f"process(es) ({world.backend or 'single process'}, {describe_device(world.device)})", flush=True)
        summary = distributed.meta_train(
            method, tasks, args.meta_steps, world, checkpoint=args.checkpoint,
            checkpoint_every=args.checkpoint_every, resume=args.resume,
            max_seconds=None if args.max_minutes is None else 60 * args.max_minutes,
            desc=f"{method.name} meta-training")
    finally:
        distributed.shutdown(world)
    if not world.is_main:
        return 0
    summary.update(threads_per_process=torch.get_num_threads(), final_loss=method.history[-1]
                   if method.history else None)
    print(json.dumps(summary), flush=True)
    if args.summary:
        with open(args.summary, "w", encoding="utf-8") as handle:
            json.dump(summary, handle, indent=2)
    if args.test_episodes:
        settings = ((args.way, 1), (args.way, 5))
        results = evaluate_settings(method, test_x, test_y, settings=settings, episodes=args.test_episodes,
                                    seed=args.seed + 1)
        training = {**summary, "data": args.data, "way": method.n_way, "shot": method.k_shot,
                    "meta_batch": method.tasks_per_step, "inner_steps": method.inner_steps,
                    "test_inner_steps": method.test_inner_steps, "tasks": method.tasks_seen,
                    "device": describe_device(world.device), "cpu": f"{cpu_name()} ({os.cpu_count()} logical cores)",
                    "torch": torch.__version__, "seed": args.seed,
                    "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")}
        out = args.out or str(results_path("omniglot_distributed"))
        name = f"{method.name}/{method.n_way}-way/{world.size} process{'es' if world.size > 1 else ''}"
        write_run(out, name, training, results, deviations=[
            "trained for the stated meta-steps, not the paper's 60,000"], protocol=PROTOCOL)
        print_results(results, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
