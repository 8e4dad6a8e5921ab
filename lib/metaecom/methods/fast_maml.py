"""Faster paths to the same MAML meta-gradient: every task of a meta-batch at once.

Speed only: :meth:`metaecom.methods.maml.MAML.meta_loss` is the algorithm; these
functions compute its value and gradient with fewer, larger operations, and the tests
check they agree with it to floating-point rounding (float64). ``MAML(...,
vectorize="vmap")`` uses :func:`vmap_meta_gradient`, ``vectorize="groups"`` uses
:func:`grouped_meta_gradient`.

**vmap.** ``torch.func.grad`` of the mean over a ``torch.func.vmap`` over tasks of the
query loss after an inner loop of ``torch.func.grad`` steps: a purely functional path.
Batch norm layers are swapped for :class:`PlainBatchNorm`, written with plain tensor
operations, because vmap cannot update one running-statistics buffer from many tasks.

**Tasks as channel groups.** In MAML every task of a meta-batch runs the same network with its own weights. A
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
tests check float64 agreement).

Whether it is faster depends on the setting. On this book's 2-core CPU, in the MAML
benchmark's setting (32 tasks, 5-way 1-shot, 5 queries per class; ``python -m
metaecom.scripts.benchmark_maml``) it took 0.63–0.85 of ``higher``'s time and beat the per-task
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

import copy
from typing import Callable, Sequence

import torch
from torch import nn
from torch.func import functional_call
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
    for _ in range(steps if support_x.shape[1] else 0):  # K = 0: nothing to adapt to
        losses = task_losses(chain, weights, support_x, support_y, loss_fn)
        grads = torch.autograd.grad(losses.sum(), [weights[n] for n in names], create_graph=not first_order)
        for name, grad in zip(names, grads):
            rate = inner_lr if per_param_lr is None else per_param_lr[name]
            weights[name] = weights[name] - rate * (grad.detach() if first_order else grad)
    return task_losses(chain, weights, query_x, query_y, loss_fn).mean()


class PlainBatchNorm(nn.Module):
    """Batch normalisation with the current batch's statistics, written with plain tensor
    operations so that every order of derivative is exact under ``torch.func``."""

    def __init__(self, batch_norm: nn.modules.batchnorm._BatchNorm):
        super().__init__()
        if not batch_norm.affine:
            raise ValueError("only affine batch norm layers are supported")
        self.weight = nn.Parameter(batch_norm.weight.detach().clone())
        self.bias = nn.Parameter(batch_norm.bias.detach().clone())
        self.eps = batch_norm.eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = [0, *range(2, x.dim())]
        mean = x.mean(dim=dims, keepdim=True)
        var = x.var(dim=dims, unbiased=False, keepdim=True)
        shape = [1, -1] + [1] * (x.dim() - 2)
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight.view(shape) + self.bias.view(shape)


def batch_norm_free_model(method) -> nn.Module:
    """A copy of the model for ``torch.func.vmap``, its batch norm layers replaced by
    :class:`PlainBatchNorm` (same parameter names, batch statistics only). vmap cannot
    update one running-statistics buffer from many tasks at once, and in this torch
    version the second derivative of the built-in batch norm under ``torch.func``
    transforms differs from autograd's (measured: 6% relative on a small MLP), while
    the plain formula is differentiated exactly. The copy's own weights are unused:
    :func:`vmap_meta_gradient` passes the model's."""
    if getattr(method, "_vmap_model", None) is None:
        clone = copy.deepcopy(method.model)
        for parent in list(clone.modules()):
            for child_name, child in parent.named_children():
                if isinstance(child, nn.modules.batchnorm._BatchNorm):
                    setattr(parent, child_name, PlainBatchNorm(child))
            if getattr(parent, "channels_last", False):  # vmap cannot query memory formats
                parent.channels_last = False
        method._vmap_model = clone
    return method._vmap_model


def stacked_tasks(method, tasks: Sequence) -> list[torch.Tensor]:
    """The tasks' support and query tensors stacked along a leading task axis."""
    if len(tasks) == 0:
        raise ValueError("meta_gradient needs at least one task")
    tensors = [method._task_tensors(task) for task in tasks]
    if len({tuple(tuple(t.shape) for t in task) for task in tensors}) != 1:
        raise ValueError("the vectorized path needs tasks of identical shapes (same N, K and query count)")
    return [torch.stack(parts) for parts in zip(*tensors)]


def vmap_meta_gradient(method, tasks: Sequence) -> tuple[float, dict[str, torch.Tensor]]:
    """The meta-loss and meta-gradient of ``method`` (a MAML-family method), computed for
    all tasks at once with ``torch.func.vmap`` — a purely functional path: ``torch.func.grad`` of the mean over
    a ``vmap`` over tasks of the query loss after an inner loop of ``torch.func.grad``
    steps (regular autograd cannot differentiate through functorch's inner transforms).

    All tasks must have the same shapes (N-way K-shot episodes do). vmap turns the
    tasks' convolutions into one grouped convolution, which pays off most on a GPU.
    Same value and gradient as the per-task loop, up to floating-point rounding.
    """
    sx, sy, qx, qy = stacked_tasks(method, tasks)
    model = batch_norm_free_model(method)
    meta = {n: p.detach() for n, p in method.meta_parameters().items()}
    weight_names = [n for n, _ in method.model.named_parameters()]
    names = weight_names if method.adapt_names() is None else list(method.adapt_names())
    steps, first_order, loss_fn, lr = method.inner_steps, method.first_order, method.loss_fn, method.inner_lr
    has_rates = method.inner_lrs() is not None

    def task_loss(meta, sx, sy, qx, qy):
        weights = {n: meta[n] for n in weight_names}

        def support_loss(fast):
            return loss_fn(functional_call(model, {**weights, **fast}, (sx,)), sy)

        fast = {n: weights[n] for n in names}
        for _ in range(steps if sx.shape[0] else 0):  # K = 0: nothing to adapt to
            grads = torch.func.grad(support_loss)(fast)
            fast = {n: fast[n] - (meta[f"inner_lr[{n}]"] if has_rates else lr)
                    * (grads[n].detach() if first_order else grads[n]) for n in names}
        return loss_fn(functional_call(model, {**weights, **fast}, (qx,)), qy)

    def mean_loss(meta):
        losses = torch.func.vmap(task_loss, in_dims=(None, 0, 0, 0, 0), randomness="same")(meta, sx, sy, qx, qy)
        return losses.mean()

    grads, loss = torch.func.grad_and_value(mean_loss)(meta)
    return loss.item(), grads


def grouped_meta_gradient(method, tasks: Sequence) -> tuple[float, dict[str, torch.Tensor]]:
    """The meta-loss and meta-gradient of ``method``, with all tasks run as channel groups of
    one network (:func:`grouped_meta_loss`): one grouped convolution per layer for
    the whole meta-batch instead of one convolution per task. For chains of conv, batch
    norm, ReLU, max-pool and linear layers (e.g. Conv4 + a linear head); all tasks must
    have the same shapes. Same value and gradient as the loop up to rounding."""
    sx, sy, qx, qy = stacked_tasks(method, tasks)
    meta = method.meta_parameters()
    weights = {n: p for n, p in method.model.named_parameters()}
    with torch.enable_grad():
        loss = grouped_meta_loss(method.model, weights, sx, sy, qx, qy, method.loss_fn, method.inner_steps,
                                 method.inner_lr, method.first_order, method.adapt_names(), method.inner_lrs())
        grads = torch.autograd.grad(loss, list(meta.values()), allow_unused=True)
    return loss.item(), {name: (torch.zeros_like(p) if g is None else g.detach())
                         for (name, p), g in zip(meta.items(), grads)}
