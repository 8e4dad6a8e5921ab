"""The functional inner loop shared by the gradient-based meta-learners.

A network's weights are an ordinary dictionary of tensors here, so the weights adapted
to a task are a differentiable function of the meta-parameters, and a meta-gradient can
flow back through the inner steps. Written with ``torch.func.functional_call`` and
``torch.autograd.grad``; no third-party meta-learning library (learn2learn, higher).

**Batch normalisation** follows MAML's reference implementation on purpose: it *always*
normalises with the statistics of the current batch — the task's support set during
inner steps, its query set when scoring the query — in meta-training and at test time
alike ("transductive" per-task batch statistics). Running averages are neither used nor
updated: every forward pass runs the model in training mode on *copies* of its buffers,
which are thrown away. Predictions therefore depend on the whole batch passed in (give
it the task's query set, not single examples), and dropout, if the model has any, is
active too.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterable

import torch
from torch import nn
from torch.func import functional_call

from metaecom.models import SharedHead

__all__ = ["functional_forward", "inner_adapt", "head_parameter_names", "shared_head_names", "copies_per_class"]


@contextlib.contextmanager
def _training_mode(model: nn.Module):
    """Run ``model`` in training mode (batch statistics), then restore its mode."""
    was_training = model.training
    model.train()
    try:
        yield
    finally:
        model.train(was_training)


def functional_forward(model: nn.Module, params: dict, buffers: dict, x: torch.Tensor) -> torch.Tensor:
    """``model(x)`` with the weights ``params``, batch norm on the batch's own statistics.

    The model runs in training mode on *copies* of ``buffers``, so batch norm normalises
    with the statistics of ``x`` and its running averages are left untouched.
    """
    copies = {name: b.clone() for name, b in buffers.items()}
    with _training_mode(model):
        return functional_call(model, (params, copies), (x,))


def inner_adapt(model: nn.Module, params: dict, buffers: dict, support_x: torch.Tensor, support_y: torch.Tensor,
                loss_fn: Callable, steps: int, inner_lr: float, first_order: bool = False,
                adapt_names: Iterable[str] | None = None, per_param_lr: dict | None = None) -> dict:
    """Take ``steps`` SGD steps on ``loss_fn(model(support_x), support_y)``; return the adapted weights.

    ``params`` maps parameter names to tensors (e.g. ``dict(model.named_parameters())``);
    the result is a new dictionary, ``params`` is not changed. Only the names in
    ``adapt_names`` are adapted (all when None; ANIL passes the head's); the other entries
    of the result are the very tensors of ``params``. Each step is
    ``w ← w − lr_w · ∂loss/∂w`` with ``lr_w = per_param_lr[name]`` when given (Meta-SGD,
    a tensor shaped like ``w``) and ``inner_lr`` otherwise.

    With ``first_order=False`` the inner gradients keep their graph (``create_graph=True``),
    so differentiating a loss at the adapted weights with respect to ``params`` (and to
    ``per_param_lr``) includes the second-order terms. With ``first_order=True`` the inner
    gradients are detached: the adapted weights depend on ``params`` only through the
    identity path (and on ``per_param_lr`` linearly).

    An empty support set (K = 0) takes no step: there is nothing to adapt to, so the
    start itself is the adapted model, as it is when such a model predicts.
    """
    adapted = dict(params)
    if support_x.shape[0] == 0:
        return adapted
    names = list(adapted) if adapt_names is None else list(adapt_names)
    unknown = [n for n in names if n not in adapted]
    if unknown:
        raise ValueError(f"adapt_names {unknown} are not among the parameters {list(adapted)}")
    for _ in range(steps):
        loss = loss_fn(functional_forward(model, adapted, buffers, support_x), support_y)
        grads = torch.autograd.grad(loss, [adapted[n] for n in names], create_graph=not first_order,
                                    allow_unused=True)
        for name, grad in zip(names, grads):
            if grad is None:  # the parameter does not affect the loss
                continue
            if first_order:
                grad = grad.detach()
            lr = per_param_lr[name] if per_param_lr is not None else inner_lr
            adapted[name] = adapted[name] - lr * grad
    return adapted


def head_parameter_names(model: nn.Module, head_names: Iterable[str] | None = None) -> list[str]:
    """The names of the head's parameters: ``head_names`` checked, or those of the last
    ``nn.Linear`` or :class:`~metaecom.models.SharedHead`."""
    all_names = [n for n, _ in model.named_parameters()]
    if head_names is not None:
        names = list(head_names)
        unknown = [n for n in names if n not in all_names]
        if unknown or not names:
            raise ValueError(f"head_names {names} must be parameter names of the model; it has {all_names}")
        return names
    linear = [(prefix, m) for prefix, m in model.named_modules() if isinstance(m, (nn.Linear, SharedHead))]
    if not linear:
        raise ValueError("the model has no nn.Linear layer to serve as the head; pass head_names")
    prefix, _ = linear[-1]
    return [f"{prefix}.{n}" if prefix else n for n, _ in linear[-1][1].named_parameters()]


def shared_head_names(model: nn.Module) -> list[str]:
    """The parameter names of the model's :class:`~metaecom.models.SharedHead`, if any."""
    return [f"{prefix}.{name}" if prefix else name for prefix, module in model.named_modules()
            if isinstance(module, SharedHead) for name, _ in module.named_parameters(recurse=False)]


def copies_per_class(params: dict, shared: list[str], n_classes: int) -> dict:
    """``params`` with every shared-head tensor ``[1, ...]`` expanded to ``n_classes`` copies
    (a view: gradients of the copies add up in the shared tensor). No shared head: ``params``."""
    if not shared:
        return params
    return {name: (p.expand(n_classes, *p.shape[1:]) if name in shared else p) for name, p in params.items()}
