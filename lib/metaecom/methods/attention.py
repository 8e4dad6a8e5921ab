"""Attention over a memory of (key, value) pairs: the soft, content-addressed read.

Compare a query key with every stored key, turn the similarities into a softmax over the
memory slots, and return the weighted sum of the stored values. Matching Networks'
attention over the support set is exactly this read with the support labels as values
(:class:`metaecom.methods.metric.MatchingNet` uses it); the MANN's read heads
(:mod:`metaecom.methods.mann`) address their memory the same way.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["attention_weights", "attention_read", "AttentionMemory"]

SIMILARITIES = ("cosine", "dot")

def _check_read_shapes(query_keys: torch.Tensor, memory_keys: torch.Tensor, memory_values: torch.Tensor) -> None:
    dims = (query_keys.dim(), memory_keys.dim(), memory_values.dim())
    if dims not in ((2, 2, 2), (3, 3, 3)):
        raise ValueError("attention_read expects query_keys [q, d], memory_keys [m, d], memory_values [m, v] "
                         "(or all three with a leading batch dimension); got shapes "
                         f"{list(query_keys.shape)}, {list(memory_keys.shape)}, {list(memory_values.shape)}")
    if query_keys.shape[-1] != memory_keys.shape[-1]:
        raise ValueError(f"query keys have width {query_keys.shape[-1]} but memory keys have width "
                         f"{memory_keys.shape[-1]}")
    if memory_keys.shape[-2] != memory_values.shape[-2]:
        raise ValueError(f"memory has {memory_keys.shape[-2]} keys but {memory_values.shape[-2]} values")
    if memory_keys.shape[-2] == 0:
        raise ValueError("the memory is empty: there is nothing to read")
    if dims[0] == 3 and not (query_keys.shape[0] == memory_keys.shape[0] == memory_values.shape[0]):
        raise ValueError(f"batch sizes differ: query keys {query_keys.shape[0]}, memory keys {memory_keys.shape[0]}, "
                         f"memory values {memory_values.shape[0]}")


def attention_weights(query_keys: torch.Tensor, memory_keys: torch.Tensor, temperature: float = 0.1,
                      similarity: str = "cosine") -> torch.Tensor:
    """Softmax over the memory slots of similarity / temperature: ``[q, m]`` (or ``[b, q, m]``).

    ``similarity`` is ``"cosine"`` (the keys are L2-normalised first) or ``"dot"``.
    """
    if similarity not in SIMILARITIES:
        raise ValueError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature!r}")
    if similarity == "cosine":
        query_keys, memory_keys = F.normalize(query_keys, dim=-1), F.normalize(memory_keys, dim=-1)
    return torch.softmax(query_keys @ memory_keys.transpose(-1, -2) / temperature, dim=-1)


def attention_read(query_keys: torch.Tensor, memory_keys: torch.Tensor, memory_values: torch.Tensor,
                   temperature: float = 0.1, similarity: str = "cosine") -> torch.Tensor:
    """Read values from a key-value memory by soft attention.

    Shapes: ``query_keys [q, d]``, ``memory_keys [m, d]``, ``memory_values [m, v]`` -> ``[q, v]``;
    or all with a leading batch dimension, ``[b, q, d]``, ``[b, m, d]``, ``[b, m, v]`` -> ``[b, q, v]``.
    Each query gets ``sum_i softmax_i(sim(query, key_i) / temperature) * value_i``: with a
    small temperature and one matching key, the value stored under that key.
    """
    _check_read_shapes(query_keys, memory_keys, memory_values)
    return attention_weights(query_keys, memory_keys, temperature, similarity) @ memory_values


class AttentionMemory:
    """A growing key-value memory read by :func:`attention_read`.

    ``write(keys [n, d], values [n, v])`` appends ``n`` slots; ``read(query_keys [q, d])``
    returns ``[q, v]``; ``clear()`` empties it. Reading an empty memory is an error. The
    stored tensors are kept as given (with their autograd history, if any).
    """

    def __init__(self, temperature: float = 0.1, similarity: str = "cosine"):
        if similarity not in SIMILARITIES:
            raise ValueError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature!r}")
        self.temperature, self.similarity = temperature, similarity
        self.keys: torch.Tensor | None = None
        self.values: torch.Tensor | None = None

    def __len__(self) -> int:
        return 0 if self.keys is None else len(self.keys)

    def write(self, keys: torch.Tensor, values: torch.Tensor) -> "AttentionMemory":
        """Append one slot per row of ``keys [n, d]`` holding the matching row of ``values [n, v]``."""
        keys, values = torch.as_tensor(keys), torch.as_tensor(values)
        if keys.dim() != 2 or values.dim() != 2 or len(keys) != len(values):
            raise ValueError(f"write expects keys [n, d] and values [n, v] with the same n; got "
                             f"{list(keys.shape)} and {list(values.shape)}")
        if self.keys is None:
            self.keys, self.values = keys, values
            return self
        if keys.shape[1] != self.keys.shape[1] or values.shape[1] != self.values.shape[1]:
            raise ValueError(f"the memory holds keys of width {self.keys.shape[1]} and values of width "
                             f"{self.values.shape[1]}; got {keys.shape[1]} and {values.shape[1]}")
        self.keys, self.values = torch.cat([self.keys, keys]), torch.cat([self.values, values])
        return self

    def read(self, query_keys: torch.Tensor) -> torch.Tensor:
        """Attention read of ``query_keys [q, d]``: ``[q, v]``."""
        if self.keys is None:
            raise ValueError("the memory is empty: write something before reading")
        return attention_read(torch.as_tensor(query_keys), self.keys, self.values, self.temperature, self.similarity)

    def clear(self) -> "AttentionMemory":
        """Forget every slot."""
        self.keys = self.values = None
        return self
