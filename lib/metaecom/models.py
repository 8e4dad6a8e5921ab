"""Every network the book trains, in one place: the backbones the methods are given.

- :class:`BatchedMLP` -- many independent MLPs run in one batched matrix multiply
- :class:`Conv4` -- the four-block convolutional backbone of the few-shot image papers
- :class:`MLP` -- ``features -> hidden -> classes`` with a separate body and head
- :class:`LowRankAdapterMLP` -- an MLP whose hidden layer carries a LoRA-style update
- :class:`MeLU` -- feature embeddings and decision layers of the MeLU recommender
- :class:`CNPNetwork` -- encoder and decoder of a Conditional Neural Process
- :class:`SharedHead` -- a classification head whose classes share one weight vector, so
  a gradient-based meta-learner adapts to tasks with any number of classes
- :func:`mlp` -- a plain stack of linear layers and ReLUs

The networks of the memory-augmented network live with their memory operations in
:mod:`metaecom.methods.mann`.

:class:`BatchedMLP` holds ``n_models`` independent multilayer perceptrons in stacked
weight tensors and runs them all in one batched matrix multiply. Adapting a model to
each of 1,000 test tasks then costs one training loop, not 1,000: the models share no
parameters and the loss is a sum over models, so each one's gradient — and, Adam being
elementwise, each one's update — is exactly what training it alone would give.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from metaecom.cases.coldstart import FeatureLayout
from metaecom.checks import check_count


class BatchedMLP(nn.Module):
    """``n_models`` independent MLPs with layer sizes ``sizes`` and ReLU between layers.

    Input ``[n_models, batch, sizes[0]]``, output ``[n_models, batch, sizes[-1]]``.
    Each model is initialised like ``nn.Linear`` (uniform in ±1/sqrt(fan_in)).
    """

    def __init__(self, n_models: int, sizes: Sequence[int], generator: torch.Generator | None = None):
        super().__init__()
        if n_models < 1:
            raise ValueError(f"n_models must be >= 1, got {n_models}")
        if len(sizes) < 2 or any(s < 1 for s in sizes):
            raise ValueError(f"sizes needs at least an input and an output size, all >= 1; got {list(sizes)}")
        self.n_models = n_models
        self.sizes = tuple(int(s) for s in sizes)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:]):
            bound = 1.0 / math.sqrt(fan_in)
            w = (torch.rand(n_models, fan_in, fan_out, generator=generator) * 2 - 1) * bound
            b = (torch.rand(n_models, 1, fan_out, generator=generator) * 2 - 1) * bound
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(b))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[0] != self.n_models or x.shape[2] != self.sizes[0]:
            raise ValueError(f"expected input [n_models={self.n_models}, batch, {self.sizes[0]}], got {list(x.shape)}")
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.baddbmm(b, x, w)
            if i < last:
                x = torch.relu(x)
        return x

    def replicate(self, n_models: int, index: int = 0) -> "BatchedMLP":
        """A new BatchedMLP of ``n_models`` copies of model ``index`` (e.g. a pretrained one)."""
        copy = BatchedMLP(n_models, self.sizes).to(self.weights[0].device)
        with torch.no_grad():
            for source, target in zip(list(self.weights) + list(self.biases), list(copy.weights) + list(copy.biases)):
                target.copy_(source[index : index + 1].expand_as(target))
        return copy


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """3x3 convolution (padding 1), batch normalisation, ReLU, 2x2 max-pooling."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )


class Conv4(nn.Module):
    """The standard few-shot image backbone: four conv blocks of ``hidden`` channels.

    Used by Matching, Prototypical and Relation Networks and by MAML on Omniglot. A
    28x28 input shrinks to 14, 7, 3 and 1 pixels, so the output is a ``hidden``-d vector
    (64 by default). Batch normalisation uses the statistics of the current batch in
    training mode (an episode during meta-training) and running averages in eval mode.

    ``channels_last`` stores activations pixel-major, which makes the convolutions about
    30% faster on a CPU (measured on this book's 2-core machine); the numbers computed
    are the same up to floating-point rounding.
    """

    def __init__(self, in_channels: int = 1, hidden: int = 64, channels_last: bool = True):
        super().__init__()
        self.channels_last = channels_last
        self.blocks = nn.Sequential(
            conv_block(in_channels, hidden), conv_block(hidden, hidden), conv_block(hidden, hidden), conv_block(hidden, hidden)
        )
        if channels_last:
            self.blocks.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"Conv4 expects images [batch, channels, height, width], got shape {list(x.shape)}")
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.blocks(x).flatten(start_dim=1)


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers of the given sizes with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class CNPNetwork(nn.Module):
    """The network of a Conditional Neural Process for scalar regression (Garnelo et al. 2018).

    Encoder ``h``: an MLP on each context pair ``(x_i, y_i)`` -> ``r_i`` (``r_dim``);
    aggregation: ``r = mean_i r_i``, the same whatever the order of the context (an empty
    context gives ``r = 0``, so the decoder's prediction for it is the learned prior);
    decoder ``g``: an MLP on ``(x*, r)`` -> mean and ``sigma = 0.1 + 0.9 softplus(.)`` (the
    paper's lower bound keeps the likelihood from collapsing onto a few points).
    ``encoder_layers`` / ``decoder_layers`` count the linear layers of each MLP.
    """

    def __init__(self, x_dim: int, hidden: int = 128, r_dim: int = 128, encoder_layers: int = 3,
                 decoder_layers: int = 3):
        super().__init__()
        for name, value in [("x_dim", x_dim), ("hidden", hidden), ("r_dim", r_dim),
                            ("encoder_layers", encoder_layers), ("decoder_layers", decoder_layers)]:
            check_count(name, value, 1)
        self.x_dim, self.r_dim = int(x_dim), int(r_dim)
        self.encoder = mlp([x_dim + 1] + [hidden] * (encoder_layers - 1) + [r_dim])
        self.decoder = mlp([x_dim + r_dim] + [hidden] * (decoder_layers - 1) + [2])

    def representation(self, context_x: torch.Tensor, context_y: torch.Tensor,
                       context_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``r = mean_i h(x_i, y_i)``: ``[b, n, x_dim]``, ``[b, n]`` -> ``[b, r_dim]``. ``context_mask
        [b, n]`` (1 = real, 0 = padding) averages over the real points only; none gives zeros."""
        codes = self.encoder(torch.cat([context_x, context_y.unsqueeze(-1)], dim=-1))
        if context_mask is None:
            if codes.shape[1] == 0:
                return codes.new_zeros(codes.shape[0], self.r_dim)
            return codes.mean(dim=1)
        mask = context_mask.to(codes.dtype).unsqueeze(-1)
        return (codes * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1)

    def decode(self, r: torch.Tensor, target_x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and sigma ``[b, m]`` at ``target_x [b, m, x_dim]`` given ``r [b, r_dim]``."""
        out = self.decoder(torch.cat([target_x, r.unsqueeze(1).expand(-1, target_x.shape[1], -1)], dim=-1))
        return out[..., 0], 0.1 + 0.9 * F.softplus(out[..., 1])

    def forward(self, context_x: torch.Tensor, context_y: torch.Tensor, target_x: torch.Tensor,
                context_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``context_x [b, n, x_dim]``, ``context_y [b, n]``, ``target_x [b, m, x_dim]`` -> mean, sigma ``[b, m]``."""
        if context_x.dim() != 3 or target_x.dim() != 3 or context_x.shape[-1] != self.x_dim \
                or target_x.shape[-1] != self.x_dim:
            raise ValueError(f"expected context_x [b, n, {self.x_dim}] and target_x [b, m, {self.x_dim}]; got "
                             f"{list(context_x.shape)} and {list(target_x.shape)}")
        if tuple(context_y.shape) != tuple(context_x.shape[:2]):
            raise ValueError(f"context_y must be [b, n] = {list(context_x.shape[:2])}, got {list(context_y.shape)}")
        return self.decode(self.representation(context_x, context_y, context_mask), target_x)


class MLP(nn.Module):
    """``features -> hidden (ReLU) -> classes``; ``body`` and ``head`` are separate modules."""

    def __init__(self, n_features: int, hidden: int, n_classes: int):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class LowRankAdapterMLP(nn.Module):
    """``features -> ReLU(W x + b + B A x) -> head``, where ``B A`` is the rank-``rank`` adapter.

    ``B`` starts at zero, so the adapter starts as "no change" (as in LoRA); ``A`` starts
    small and random. :meth:`inner_loop_names` lists what a task may change: the adapter
    and the head.

    On good pretrained features two starting points help: ``identity_init`` starts the
    hidden layer as the identity (``hidden`` must equal ``n_features``), so the model
    starts from the pretrained features themselves rather than a random projection of
    them; ``zero_head`` starts the head at zero, so no class is favoured before the
    support set is seen (episode labels are arbitrary, so a learned head start can only
    encode "no preference" anyway).
    """

    def __init__(self, n_features: int, hidden: int, n_classes: int, rank: int = 4, seed: int = 0,
                 identity_init: bool = False, zero_head: bool = False):
        super().__init__()
        if rank < 1 or rank > min(n_features, hidden):
            raise ValueError(f"rank must be between 1 and min(features, hidden) = {min(n_features, hidden)}, got {rank}")
        if identity_init and hidden != n_features:
            raise ValueError(f"identity_init needs hidden == n_features, got {hidden} and {n_features}")
        generator = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):  # seeded layers, the caller's random state untouched
            torch.manual_seed(seed)
            self.hidden = nn.Linear(n_features, hidden)
            self.head = nn.Linear(hidden, n_classes)
        self.adapter_down = nn.Parameter(torch.randn(rank, n_features, generator=generator) / n_features**0.5)
        self.adapter_up = nn.Parameter(torch.zeros(hidden, rank))
        with torch.no_grad():
            if identity_init:
                nn.init.eye_(self.hidden.weight)
                nn.init.zeros_(self.hidden.bias)
            if zero_head:
                nn.init.zeros_(self.head.weight)
                nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.relu(self.hidden(x) + (x @ self.adapter_down.T) @ self.adapter_up.T))

    def inner_loop_names(self) -> list[str]:
        return ["adapter_down", "adapter_up", "head.weight", "head.bias"]

    def adapter_size(self) -> int:
        """Number of weights one task changes (adapter plus head)."""
        named = dict(self.named_parameters())
        return sum(named[name].numel() for name in self.inner_loop_names())


class MeLU(nn.Module):
    """Feature embeddings → decision layers (MLP) → one rating per row.

    Input rows follow ``layout`` (:class:`metaecom.cases.coldstart.FeatureLayout`): each
    categorical code gets an ``embedding_dim`` embedding; the multi-hot block (genres) is
    embedded as the mean of its active columns' embeddings; the numeric block goes through
    a linear layer of the same width. ``hidden`` sets the decision layers (MeLU: 64, 64);
    the output bias starts at ``rating_mean`` so training starts from the average rating.
    """

    def __init__(self, layout: FeatureLayout, embedding_dim: int = 32, hidden: Sequence[int] = (64, 64),
                 rating_mean: float = 0.0):
        super().__init__()
        if embedding_dim < 1 or not hidden or min(hidden) < 1:
            raise ValueError(f"embedding_dim and hidden sizes must be positive, got {embedding_dim}, {hidden}")
        self.layout = layout
        self.embeddings = nn.ModuleList(nn.Embedding(c, embedding_dim) for c in layout.cardinalities)
        self.multi_hot = nn.Linear(len(layout.multi_hot), embedding_dim, bias=False) if layout.multi_hot else None
        self.numeric = nn.Linear(len(layout.numeric), embedding_dim) if layout.numeric else None
        blocks = len(layout.cardinalities) + (self.multi_hot is not None) + (self.numeric is not None)
        if blocks == 0:
            raise ValueError("the layout has no feature columns")
        layers, width = [], embedding_dim * blocks
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, 1))
        self.decision = nn.Sequential(*layers)
        with torch.no_grad():
            self.decision[-1].bias.fill_(rating_mean)

    def decision_parameter_names(self) -> list[str]:
        """Names of the decision layers' weights: what MeLU's local update adapts."""
        return [f"decision.{name}" for name, _ in self.decision.named_parameters()]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.layout.width:
            raise ValueError(f"MeLU expects rows of {self.layout.width} features, got shape {list(x.shape)}")
        n_cat, n_multi = len(self.layout.cardinalities), len(self.layout.multi_hot)
        codes = x[:, :n_cat].long()
        parts = [embedding(codes[:, j]) for j, embedding in enumerate(self.embeddings)]
        if self.multi_hot is not None:
            active = x[:, n_cat:n_cat + n_multi]
            parts.append(self.multi_hot(active) / active.sum(dim=1, keepdim=True).clamp(min=1.0))
        if self.numeric is not None:
            parts.append(self.numeric(x[:, n_cat + n_multi:]))
        return self.decision(torch.cat(parts, dim=1))


class SharedHead(nn.Module):
    """A classification head for any number of classes: every class starts from one vector.

    UNICORN-MAML (Ye and Chao 2022): ``weight`` is ``[1, in_features]`` and ``bias`` ``[1]``.
    A gradient-based meta-learner (:class:`~metaecom.methods.gradient.GradientMethod`)
    starts every task with ``N`` copies of them, one per class, and adapts the copies
    separately, so one model serves tasks with any number of classes: 5-way in
    meta-training, 27- or 77-way at test time. Called directly (no copies), it returns one
    column.

    The shared vector itself is never learned: moving it moves every copy alike, which
    shifts all logits by the same amount and changes neither the softmax nor any inner
    step, so its meta-gradient is zero at every order (a test checks it). It starts at
    zero -- every class equally likely before the support set is seen -- and what
    meta-training learns is the body (and Meta-SGD's step sizes).
    """

    def __init__(self, in_features: int):
        super().__init__()
        self.in_features = check_count("in_features", in_features, 1)
        self.weight = nn.Parameter(torch.zeros(1, in_features))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)
