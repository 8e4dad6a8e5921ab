"""Neural network backbones.

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
