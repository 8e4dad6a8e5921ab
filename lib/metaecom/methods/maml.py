"""MAML and its family: learn an initialisation from which a few gradient steps on a new
task's support set give a good model.

- :class:`MAML` (Finn et al. 2017): adapt all weights by ``inner_steps`` SGD steps on the
  support loss, meta-learn the initialisation on the query loss after adaptation. The
  meta-gradient is exact: it includes the second-order (Hessian-vector) terms, because
  the inner gradients are taken with ``create_graph=True``.
- :class:`FOMAML`: first-order MAML; the inner gradients are treated as constants, so the
  meta-gradient is simply the query-loss gradient at the adapted weights.
- :class:`ANIL` (Raghu et al. 2020): MAML whose inner loop adapts only the head (the last
  linear layer, or ``head_names``); the body is learned by the outer loop alone.
- :class:`MetaSGD` (Li et al. 2017): MAML with a learned inner learning rate per weight
  (a tensor shaped like each parameter, initialised to ``inner_lr`` everywhere rather
  than at random as in the paper) meta-learned with the weights; one inner step by default.

All four differ only in what the inner loop adapts and how; the meta-loss is
:meth:`MAML.meta_loss`, Algorithm 2 of the paper. Everything else -- tensors, episodes,
adaptation at test time -- is :class:`~metaecom.methods.gradient.GradientMethod`'s, and
the outer loop is :class:`~metaecom.training.MetaLearner`'s. ``vectorize="vmap"`` or
``"groups"`` computes the same meta-gradient for the whole meta-batch at once
(:mod:`metaecom.methods.fast_maml`; speed only, same numbers up to rounding).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from metaecom.methods import fast_maml
from metaecom.methods.functional import functional_forward
from metaecom.methods.gradient import GradientMethod

__all__ = ["MAML", "FOMAML", "ANIL", "MetaSGD"]


class MAML(GradientMethod):
    """Model-Agnostic Meta-Learning (Finn et al. 2017), second-order unless ``first_order=True``.

    ``MAML(model, n_way=5, k_shot=1, n_query=15, inner_steps=1, inner_lr=0.4, meta_lr=1e-3,
    tasks_per_step=4, first_order=False, meta_steps=1000, seed=0, device=None,
    test_inner_steps=None, loss_fn=cross_entropy, head_names=None, vectorize=False)``
    """

    name = "MAML"

    def __init__(self, model: nn.Module, *args, vectorize: bool | str = False, **kwargs):
        if vectorize not in (False, True, "vmap", "groups"):
            raise ValueError(f"vectorize must be False, True (= 'vmap') or 'groups', got {vectorize!r}")
        self.vectorize = "vmap" if vectorize is True else vectorize
        super().__init__(model, *args, **kwargs)
        if self.vectorize and self.shared_head:
            raise ValueError("the vectorized paths need one head shape for all tasks; a SharedHead has one per task")
        self._setup()

    def _setup(self) -> None:
        """Hook for subclasses that add meta-parameters (Meta-SGD's learning rates)."""

    def to(self, device) -> "MAML":
        """Move the method; the vmap path's copy of the model is rebuilt on the new device."""
        self.__dict__.pop("_vmap_model", None)
        return super().to(device)

    def meta_loss(self, tasks: Sequence) -> torch.Tensor:
        """Finn et al.'s Algorithm 2, one meta-batch: the mean query loss after inner adaptation.

        Differentiable in the meta-parameters θ (second order unless ``first_order``).
        """
        if len(tasks) == 0:
            raise ValueError("meta_loss needs at least one task")
        theta = dict(self.model.named_parameters())
        total = 0.0
        for task in tasks:                                       # for all T_i in the batch
            support_x, support_y, query_x, query_y = self._task_tensors(task)   # D_i and D'_i
            # θ'_i = θ − α ∇_θ L_Ti(f_θ) on D_i, repeated inner_steps times
            start = self.task_parameters(theta, support_y)       # θ (a shared head: one copy per class)
            adapted = self._adapt(start, support_x, support_y, self.inner_steps, self.first_order)
            # L_Ti(f_θ'_i) on D'_i: the loss the outer update θ ← θ − β ∇_θ Σ_i L_Ti minimises
            query_out = functional_forward(self.model, adapted, self._buffers(), query_x)
            total = total + self.loss_fn(query_out, query_y)
        return total / len(tasks)

    def meta_gradients(self, tasks: Sequence) -> float:
        """The per-task loop of :meth:`meta_loss`, or with ``vectorize`` the whole meta-batch
        at once (:mod:`metaecom.methods.fast_maml`)."""
        if not self.vectorize:
            return super().meta_gradients(tasks)
        gradient = fast_maml.vmap_meta_gradient if self.vectorize == "vmap" else fast_maml.grouped_meta_gradient
        value, grads = gradient(self, tasks)
        self.check_finite(value)
        for name, parameter in self.meta_parameters().items():
            parameter.grad = grads[name]
        return value


class FOMAML(MAML):
    """First-order MAML: the meta-gradient is the query-loss gradient at the adapted weights."""

    name = "FOMAML"
    first_order_default = True


class ANIL(MAML):
    """Almost No Inner Loop (Raghu et al. 2020): the inner loop adapts only the head
    (``head_names``, default the last ``nn.Linear``); the body is learned by the outer loop.

    The "head" is whatever ``head_names`` lists, so ANIL is also the general "adapt these
    layers, meta-learn the rest": MeLU's local update (Lee et al. 2019) is an ANIL whose
    head is MeLU's decision layers (``head_names=model.decision_parameter_names()``), and
    the low-rank adapter of the pretrained chapter one whose head is the adapter and the
    output layer.
    """

    name = "ANIL"

    def adapt_names(self):
        return self.head_names


class _LearnedRates(nn.Module):
    """Meta-SGD's per-weight inner learning rates, one tensor per model parameter."""

    def __init__(self, params: dict, init: float):
        super().__init__()
        self.names = list(params)
        self.rates = nn.ParameterList([nn.Parameter(torch.full_like(p.detach(), init)) for p in params.values()])

    def as_dict(self) -> dict:
        return dict(zip(self.names, self.rates))


class MetaSGD(MAML):
    """Meta-SGD (Li et al. 2017): ``φ = θ − α ⊙ ∇L_support(θ)`` with a learned rate ``α`` per weight.

    The rates start at ``inner_lr`` everywhere (the paper draws them at random) and are
    meta-learned by the same Adam step as the weights; they are not constrained to stay
    positive. One inner step by default, as in the paper.
    """

    name = "MetaSGD"

    def _setup(self):
        self.rates = _LearnedRates(dict(self.model.named_parameters()), self.inner_lr).to(self.device)

    def modules(self):
        return [self.model, self.rates]

    def inner_lrs(self):
        return self.rates.as_dict()
