"""Speed of this package's MAML against a reference written with the ``higher`` library.

    pip install higher==0.2.1      # benchmark-only dependency, not a book requirement
    python -m metaecom.scripts.benchmark_maml --repeats 5

Setting (the MAML paper's Omniglot 5-way 1-shot): a Conv4 backbone with a 5-way linear
head, 28x28 single-channel inputs, 32 tasks per meta-batch, 5 queries per class, inner
learning rate 0.4; 1 and 5 inner steps; second- and first-order meta-gradients. The
inputs are random images with a fixed seed: time and agreement do not depend on what the
pixels show.

For each setting it times one meta-gradient (forward and backward through the inner
loops of all 32 tasks) and reports the median over ``--repeats`` runs after one warm-up
run, for four implementations from the same initial weights:

- ``higher``: the reference, a per-task loop with ``higher.innerloop_ctx``;
- ``ours (loop)``: :meth:`~metaecom.methods.gradient.GradientMethod.meta_gradient`,
  a per-task loop with ``torch.func.functional_call``;
- ``ours (vmap)``: :func:`~metaecom.methods.fast_maml.vmap_meta_gradient`,
  all tasks at once with ``torch.func.vmap``;
- ``ours (groups)``: :func:`~metaecom.methods.fast_maml.grouped_meta_gradient`,
  all tasks at once as channel groups of one network (one grouped convolution per layer),
  differentiated by ordinary autograd.

and the relative difference ``‖g − g_ref‖ / ‖g_ref‖`` of each meta-gradient to the
reference's (the whole gradient as one vector), twice: in float32, the precision that is
timed, and in float64 on the first 4 tasks of the meta-batch. The float64 number is the
correctness check. The float32 one mixes in rounding: two loops that run the same
operations in the same order agree to ~1e-7, but the vmap path sums the tasks'
convolutions in another order, and batch norm over a 5-image support set amplifies such
rounding differences (measured: ~5e-3 in float32, ~1e-14 in float64). On CUDA it also
records the peak memory.
The results go to ``book/results/maml_speed.json``, which the optimization chapter renders.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from metaecom.device import describe_device, get_device
from metaecom.methods import FOMAML, MAML
from metaecom.methods.fast_maml import grouped_meta_gradient, vmap_meta_gradient
from metaecom.models import Conv4
from metaecom.runrecord import cpu_name


def make_model(seed: int = 0, n_way: int = 5) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(Conv4(), nn.Linear(64, n_way))


def make_tasks(n_tasks: int, n_way: int = 5, k_shot: int = 1, n_query: int = 5, seed: int = 0, device="cpu"):
    """``n_tasks`` random N-way K-shot tasks of 28x28 images, as tensors on ``device``."""
    g = torch.Generator().manual_seed(seed)
    tasks = []
    for _ in range(n_tasks):
        sx = torch.rand(n_way * k_shot, 1, 28, 28, generator=g)
        qx = torch.rand(n_way * n_query, 1, 28, 28, generator=g)
        sy = torch.arange(n_way).repeat_interleave(k_shot)
        qy = torch.arange(n_way).repeat_interleave(n_query)
        tasks.append(tuple(t.to(device) for t in (sx, sy, qx, qy)))
    return tasks


def higher_meta_gradient(model: nn.Module, tasks, inner_steps: int, inner_lr: float, first_order: bool) -> dict:
    """The reference: MAML's meta-gradient with ``higher`` (mean query loss over tasks)."""
    try:
        import higher
    except ImportError as error:  # pragma: no cover - depends on the reader's environment
        raise ImportError("the reference implementation needs the 'higher' library: "
                          "pip install higher==0.2.1 (a benchmark-only dependency)") from error
    model.train()
    params = list(model.parameters())
    total = [torch.zeros_like(p) for p in params]
    inner_opt = torch.optim.SGD(params, lr=inner_lr)
    for sx, sy, qx, qy in tasks:
        with higher.innerloop_ctx(model, inner_opt, copy_initial_weights=False,
                                  track_higher_grads=not first_order) as (fmodel, diffopt):
            for _ in range(inner_steps):
                diffopt.step(F.cross_entropy(fmodel(sx), sy))
            loss = F.cross_entropy(fmodel(qx), qy) / len(tasks)
            if first_order:  # the gradient at the adapted weights, applied to the initial ones
                grads = torch.autograd.grad(loss, list(fmodel.parameters()))
            else:
                grads = torch.autograd.grad(loss, params)
        for t, g in zip(total, grads):
            t.add_(g)
    return {name: t for (name, _), t in zip(model.named_parameters(), total)}


def relative_difference(a: dict, b: dict) -> float:
    """``‖a − b‖ / ‖b‖`` over all entries of two gradients keyed by parameter name."""
    va = torch.cat([a[n].detach().flatten().double().cpu() for n in b])
    vb = torch.cat([b[n].detach().flatten().double().cpu() for n in b])
    return float((va - vb).norm() / vb.norm())


def median_seconds(fn, repeats: int, device) -> tuple[float, list[float]]:
    """Median wall time of ``fn()`` over ``repeats`` runs, after one untimed warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def _meta_gradients(order: str, k: int, n_tasks: int, seed: int, device, dtype=torch.float32) -> dict:
    """One zero-argument function per implementation, each computing the meta-gradient of
    the same ``n_tasks`` tasks from the same initial weights in ``dtype``."""
    tasks = [tuple(t.to(dtype) if t.is_floating_point() else t for t in task)
             for task in make_tasks(n_tasks, seed=seed, device=device)]
    model = make_model(seed).to(device=device, dtype=dtype)
    cls = MAML if order == "second" else FOMAML
    method = cls(model, n_way=5, k_shot=1, n_query=5, inner_steps=k, inner_lr=0.4, device=device)
    return {
        "higher": lambda: higher_meta_gradient(model, tasks, k, 0.4, order == "first"),
        "ours (loop)": lambda: method.meta_gradient(tasks),
        "ours (vmap)": lambda: vmap_meta_gradient(method, tasks)[1],
        "ours (groups)": lambda: grouped_meta_gradient(method, tasks)[1],
    }


def _differences(gradients: dict, implementations) -> dict:
    """Relative difference of each implementation's meta-gradient to the reference's
    (``higher`` when it is among ``implementations``, else the per-task loop)."""
    reference = gradients["higher" if "higher" in implementations else "ours (loop)"]()
    return {name: relative_difference(gradients[name](), reference) for name in implementations}


def run(repeats: int = 5, n_tasks: int = 32, steps=(1, 5), orders=("second", "first"), device=None,
        implementations=("higher", "ours (loop)", "ours (vmap)", "ours (groups)"), seed: int = 0, log=print) -> list[dict]:
    """Time every implementation in every setting; one row per (setting, implementation)."""
    device = torch.device(device) if device is not None else get_device()
    rows = []
    for order in orders:
        for k in steps:
            runs = _meta_gradients(order, k, n_tasks, seed, device)
            differences = _differences(runs, implementations)
            exact = _differences(_meta_gradients(order, k, min(4, n_tasks), seed, device, torch.float64),
                                 implementations)
            for name in implementations:
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                median, times = median_seconds(runs[name], repeats, device)
                peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
                row = {"order": order, "inner_steps": k, "implementation": name, "median_s": round(median, 4),
                       "runs_s": [round(t, 4) for t in times],
                       "relative_difference": differences[name],
                       "relative_difference_float64": exact[name],
                       "peak_memory_mib": None if peak is None else round(peak, 1)}
                rows.append(row)
                log(f"{order}-order, {k} inner step(s), {name:12s}: {median:.3f} s per meta-batch "
                    f"(median of {repeats}); gradient differs from the reference by {row['relative_difference']:.1e} "
                    f"(float64: {row['relative_difference_float64']:.1e})")
    return rows


def main(argv=None) -> int:
    from metaecom.reproduction import results_path

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=32)
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 5], help="inner steps to time (default 1 5)")
    parser.add_argument("--out", default=str(results_path("maml_speed")))
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.tasks < 1 or min(args.steps) < 1:
        parser.error("--repeats, --tasks and --steps must be at least 1")
    import importlib.util
    from importlib.metadata import version

    implementations = ("higher", "ours (loop)", "ours (vmap)", "ours (groups)")
    if importlib.util.find_spec("higher") is None:   # e.g. a GPU machine without internet
        implementations = implementations[1:]
        print("higher is not installed: timing our three paths, differences against our per-task loop")
    device = get_device()
    rows = run(repeats=args.repeats, n_tasks=args.tasks, steps=tuple(args.steps), device=device,
               implementations=implementations)

    content = {
        "benchmark": "maml_speed",
        "setting": f"Conv4 + linear head, 28x28 inputs, 5-way 1-shot, 5 queries per class, {args.tasks} tasks "
                   "per meta-batch, inner learning rate 0.4, float32",
        "device": describe_device(device), "cpu": f"{cpu_name()} ({os.cpu_count()} logical cores)",
        "torch": torch.__version__, "higher": version("higher") if "higher" in implementations else None,
        "repeats": args.repeats, "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d"),
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(content, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
