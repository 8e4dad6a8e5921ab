"""The tasks of a meta-batch as groups of one network: MAML's inner loops for all tasks at once.

In MAML every task of a meta-batch runs the same network with its own weights. A
per-task loop calls each convolution once per task, on a handful of images — on a CPU
the fixed cost of each call then dominates. This module stacks the tasks along the
channel axis instead: task ``t``'s images become channel group ``t`` of one batch, each
convolution becomes *one* grouped convolution (``groups = tasks``) whose group ``t`` holds
task ``t``'s weights, and batch normalisation over that batch normalises each task's
channels with that task's own batch statistics — exactly MAML's per-task batch norm. A
meta-batch of 32 tasks then costs one call per layer instead of 32.

The weights of all tasks are tensors with a leading task axis, ``[tasks, *shape]``; they
start as the meta-parameters expanded along that axis, so ordinary autograd gives each
task its own inner gradient (the tasks' losses are summed, and task ``t``'s loss depends
only on group ``t``) and carries the meta-gradient back through the inner steps, second
order included. Same numbers as the per-task loop up to floating-point rounding (the
tests check float64 agreement); :class:`~metaecom.methods.optimization.GradientMethod`
uses it with ``vectorize="groups"``.

Whether it is faster depends on the setting. On this book's 2-core CPU, in the MAML
benchmark's setting (32 tasks, 5-way 1-shot, 5 queries per class; ``python -m
metaecom.benchmark_maml``) it took 0.63–0.85 of ``higher``'s time and beat the per-task
loop by 1.0–1.6x, but with 20-way tasks, one query per class and 5 inner steps it was
2.4 times *slower* than the loop (22 s against 9 s per meta-gradient of 16 tasks): a
grouped convolution is not always cheaper than its groups one by one. On a GPU, where
the fixed cost per call dominates, it may gain more; that is unmeasured here.

Supported networks: a chain of ``nn.Conv2d`` (ungrouped), ``nn.BatchNorm2d``, ``nn.ReLU``,
``nn.MaxPool2d``, ``nn.Flatten`` and ``nn.Linear`` layers applied in the order they are
registered — an ``nn.Sequential`` of them, or :class:`~metaecom.models.Conv4` followed by a
linear head (its flattening happens implicitly before the first linear layer). Batch norm
always uses batch statistics; running averages are neither used nor updated.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

SUPPORTED = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d, nn.Flatten, nn.Linear)


def layer_chain(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The model's leaf layers in registration order with their parameter-name prefixes.

    Raises ``ValueError`` naming the first layer the grouped path cannot run.
    """
    chain = []
    for name, module in model.named_modules():
        if any(True for _ in module.children()):
            continue
        if not isinstance(module, SUPPORTED):
            raise ValueError(f"the task-grouped path cannot run layer {name!r} ({type(module).__name__}); "
                             f"supported: {', '.join(t.__name__ for t in SUPPORTED)}")
        if isinstance(module, nn.Conv2d) and (module.groups != 1 or module.padding_mode != "zeros"):
            raise ValueError(f"the task-grouped path needs ungrouped, zero-padded convolutions; {name!r} is not")
        chain.append((name, module))
    if not chain:
        raise ValueError("the model has no layers")
    return chain


def _per_task(h: torch.Tensor, tasks: int) -> torch.Tensor:
    """``[n, tasks * C, H, W]`` (or already ``[n, tasks, d]``) -> ``[n, tasks, C * H * W]``."""
    if h.dim() == 4:
        return h.reshape(h.shape[0], tasks, -1)
    return h


def grouped_forward(chain, weights: dict[str, torch.Tensor], x: torch.Tensor,
                    channels_last: bool = False) -> torch.Tensor:
    """Outputs ``[tasks, n, out]`` of the network for inputs ``x`` ``[tasks, n, C, H, W]`` (or
    ``[tasks, n, features]``), task ``t`` with weights ``weights[name][t]``.

    ``channels_last`` is off by default: unlike the per-task Conv4, the grouped
    convolutions were not faster in that layout on this book's CPU (32 tasks, 5-way 1-shot,
    1 query per class: 1.2 s per meta-gradient channels-first, 1.6 s channels-last)."""
    tasks, n = x.shape[:2]
    if x.dim() == 5:
        h = x.transpose(0, 1).reshape(n, tasks * x.shape[2], *x.shape[3:])
        if channels_last:
            h = h.contiguous(memory_format=torch.channels_last)
    else:
        h = x.transpose(0, 1)
    for name, layer in chain:
        prefix = f"{name}." if name else ""
        weight, bias = weights.get(prefix + "weight"), weights.get(prefix + "bias")
        if isinstance(layer, nn.Conv2d):
            h = F.conv2d(h, weight.reshape(-1, *weight.shape[2:]), None if bias is None else bias.reshape(-1),
                         layer.stride, layer.padding, layer.dilation, groups=tasks)
        elif isinstance(layer, nn.BatchNorm2d):
            h = F.batch_norm(h, None, None, None if weight is None else weight.reshape(-1),
                             None if bias is None else bias.reshape(-1), training=True, eps=layer.eps)
        elif isinstance(layer, nn.ReLU):
            h = F.relu(h)
        elif isinstance(layer, nn.MaxPool2d):
            h = F.max_pool2d(h, layer.kernel_size, layer.stride, layer.padding, layer.dilation, layer.ceil_mode)
        elif isinstance(layer, nn.Flatten):
            h = _per_task(h, tasks)
        else:  # nn.Linear
            h = torch.einsum("ntd,tod->nto", _per_task(h, tasks), weight)
            if bias is not None:
                h = h + bias
    return _per_task(h, tasks).transpose(0, 1)


def task_losses(chain, weights: dict, x: torch.Tensor, y: torch.Tensor,
                loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """``[tasks]``: ``loss_fn`` of each task's outputs against its targets ``y[t]``."""
    out = grouped_forward(chain, weights, x)
    return torch.stack([loss_fn(out[t], y[t]) for t in range(len(out))])


def grouped_meta_loss(model: nn.Module, meta: dict[str, torch.Tensor], support_x, support_y, query_x, query_y,
                      loss_fn, steps: int, inner_lr: float, first_order: bool = False,
                      adapt_names=None, per_param_lr: dict | None = None) -> torch.Tensor:
    """Mean query loss over tasks after ``steps`` inner SGD steps per task, all tasks at once.

    ``meta`` maps the model's parameter names to the meta-parameters (shared by every
    task); the task tensors carry a leading task axis (``support_x`` ``[tasks, n, ...]``).
    The result is differentiable in ``meta`` — second order unless ``first_order`` — and
    in ``per_param_lr`` (Meta-SGD). ``adapt_names`` limits the inner loop (ANIL).
    """
    chain = layer_chain(model)
    tasks = support_x.shape[0]
    weights = {name: value.expand(tasks, *value.shape) for name, value in meta.items()}
    names = list(weights) if adapt_names is None else list(adapt_names)
    for _ in range(steps):
        losses = task_losses(chain, weights, support_x, support_y, loss_fn)
        grads = torch.autograd.grad(losses.sum(), [weights[n] for n in names], create_graph=not first_order)
        for name, grad in zip(names, grads):
            rate = inner_lr if per_param_lr is None else per_param_lr[name]
            weights[name] = weights[name] - rate * (grad.detach() if first_order else grad)
    return task_losses(chain, weights, query_x, query_y, loss_fn).mean()
