"""Memory-based meta-learning: store what the support set says, then *read* the answer
for a query back out of that store. Adaptation is again a forward pass — the task's
examples are written into a memory instead of changing any weight.

The common operation is a soft, content-addressed read: compare a query key with every
stored key, turn the similarities into a softmax over the memory slots, and return the
weighted sum of the stored values (:func:`attention_read`, :class:`AttentionMemory`).
Matching Networks' attention over the support set is exactly this read with the support
labels as values (:class:`metaecom.methods.metric.MatchingNet` uses it).

Two families build on it:

- :class:`MANN` / :class:`MANNClassifier` — the memory-augmented neural network of
  Santoro et al. (2016): an LSTM controller with an external memory matrix, read by
  cosine-similarity content addressing and written by *Least Recently Used Access*
  (LRUA). It sees a task as a sequence: at step ``t`` it gets the input ``x_t`` and the
  label of step ``t - 1`` (labels arrive one step late), so it must store each example
  and recall its label when the class comes round again. The memory update is split
  into small functions (:func:`content_weights`, :func:`least_used`, :func:`lrua_write`,
  :func:`update_usage`) that can be checked one by one. Deviations from the paper: the
  read keys may carry a learned *key strength* (a sharpening factor on the cosine,
  ``key_strength=True``, as in the Neural Turing Machine; the paper's plain softmax of
  cosines is ``key_strength=False``); keys pass through ``tanh``; the input reaches the
  controller through an encoder (one linear layer unless another module is given); and
  training uses Adam with gradient clipping rather than RMSprop. As in the paper, one
  key per head serves both the write and the read of a step, the read comes after the
  write, and the read vectors of step ``t - 1`` are fed back into the controller.
- Conditional Neural Processes (Garnelo et al. 2018): encode each support pair, average
  the codes into one task representation ``r`` (the mean makes the prediction independent
  of the order of the support set), and decode a query given ``r``.
  :class:`CNPRegressor` / :class:`CNP` predict a Gaussian (mean and bounded standard
  deviation ``0.1 + 0.9 softplus``) for regression tasks; :class:`CNPClassifier` forms one
  representation per class and scores each (query, class) pair, trained with the
  episodic loop of :class:`~metaecom.methods.metric.MetricMethod`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from metaecom.device import get_device
from metaecom.methods.base import Adapted, Method, check_support, to_numpy as _numpy
from metaecom.methods.metric import MetricMethod, prototypes
from metaecom.progress import progress
from metaecom.tasks import FewShotSampler, _check_count, task_batches
from metaecom.train import run_meta_steps

__all__ = ["attention_weights", "attention_read", "AttentionMemory", "cosine_similarity", "content_weights",
           "least_used", "lrua_write", "update_usage", "labels_one_step_late", "MANNState", "MANN",
           "MANNClassifier", "accuracy_by_instance", "gaussian_nll", "CNPRegressor", "CNP",
           "CNPRegressionAdapted", "CNPClassifier"]

SIMILARITIES = ("cosine", "dot")


# ---------------------------------------------------------------------------------------
# Attention over a memory of (key, value) pairs
# ---------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------
# MANN: the memory operations, one small function each
# ---------------------------------------------------------------------------------------

def cosine_similarity(keys: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of every key with every memory row: ``[b, heads, w]`` x ``[b, slots, w]``
    -> ``[b, heads, slots]``. An all-zero row (a freshly erased slot) has similarity 0."""
    return F.normalize(keys, dim=-1, eps=1e-8) @ F.normalize(memory, dim=-1, eps=1e-8).transpose(1, 2)


def content_weights(keys: torch.Tensor, memory: torch.Tensor, strength: torch.Tensor | float | None = None
                    ) -> torch.Tensor:
    """Content addressing: softmax over the slots of ``strength * cosine(key, slot)``.

    ``keys [b, heads, w]``, ``memory [b, slots, w]`` -> read weights ``[b, heads, slots]``.
    ``strength`` (a number or ``[b, heads]``) sharpens the distribution; None means 1, the
    plain softmax of cosine similarities of Santoro et al.
    """
    similarity = cosine_similarity(keys, memory)
    if strength is not None:
        strength = torch.as_tensor(strength, dtype=similarity.dtype, device=similarity.device)
        similarity = similarity * (strength.unsqueeze(-1) if strength.dim() == 2 else strength)
    return torch.softmax(similarity, dim=-1)


def least_used(usage: torch.Tensor, n: int) -> torch.Tensor:
    """Indicator ``[b, slots]`` of the ``n`` least-used slots (ties go to the lower index)."""
    if not 1 <= n <= usage.shape[-1]:
        raise ValueError(f"n must be between 1 and the number of slots {usage.shape[-1]}, got {n}")
    # a stable sort puts equal usages in slot order, so the choice is deterministic
    order = torch.sort(usage, dim=-1, stable=True).indices[..., :n]
    return torch.zeros_like(usage).scatter_(-1, order, 1.0)


def lrua_write(memory: torch.Tensor, usage: torch.Tensor, previous_read_weights: torch.Tensor,
               keys: torch.Tensor, alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One Least Recently Used Access write (Santoro et al. 2016, section 3.2).

    - ``memory [b, slots, w]`` and ``usage [b, slots]`` are the state after step ``t - 1``;
      ``previous_read_weights [b, heads, slots]`` the read weights of step ``t - 1``.
    - Write weights per head: ``sigmoid(alpha) * previous_read + (1 - sigmoid(alpha)) * least_used``,
      with ``least_used`` the indicator of the ``heads`` least-used slots by ``usage``.
      ``alpha [b, heads]`` is the controller's gate: write where it last read (update a
      memory), or into rarely used slots (store something new).
    - The single least-used slot is erased first, then every head adds its key:
      ``M(i) <- M(i) + sum_heads w_write(head, i) * key(head)``.

    Returns ``(new memory [b, slots, w], write weights [b, heads, slots])``.
    """
    heads = keys.shape[1]
    gate = torch.sigmoid(alpha).unsqueeze(-1)
    write_weights = gate * previous_read_weights + (1 - gate) * least_used(usage, heads).unsqueeze(1)
    erase = F.one_hot(usage.argmin(dim=-1), usage.shape[-1]).to(memory.dtype)
    if heads == 1:  # an outer product: broadcasting is much faster on a CPU than a bmm with inner size 1
        added = write_weights.transpose(1, 2) * keys
    else:
        added = write_weights.transpose(1, 2) @ keys
    memory = memory * (1 - erase).unsqueeze(-1) + added
    return memory, write_weights


def update_usage(usage: torch.Tensor, read_weights: torch.Tensor, write_weights: torch.Tensor,
                 gamma: float) -> torch.Tensor:
    """``u_t = gamma * u_{t-1} + sum_heads w_read + sum_heads w_write`` (no gradient: the usage
    only decides *where* to write, through a hard choice of slots)."""
    return gamma * usage + (read_weights.sum(dim=1) + write_weights.sum(dim=1)).detach()


def labels_one_step_late(labels: torch.Tensor, n_way: int) -> torch.Tensor:
    """The label inputs of a sequence: ``[b, T]`` labels -> ``[b, T, n_way]`` one-hot, shifted one
    step later (step 0 gets zeros, step ``t`` the label of step ``t - 1``)."""
    one_hot = F.one_hot(labels, n_way).float()
    return torch.cat([torch.zeros_like(one_hot[:, :1]), one_hot[:, :-1]], dim=1)


@dataclass
class MANNState:
    """Everything a MANN carries from one step to the next, for a batch of ``b`` sequences.

    ``hidden``, ``cell``: the LSTM state ``[b, controller]``; ``memory [b, slots, width]``;
    ``usage [b, slots]``; ``read_weights [b, heads, slots]`` and ``reads [b, heads * width]``
    of the last step.
    """

    hidden: torch.Tensor
    cell: torch.Tensor
    memory: torch.Tensor
    usage: torch.Tensor
    read_weights: torch.Tensor
    reads: torch.Tensor

    def expand(self, n: int) -> "MANNState":
        """``n`` copies of a single-sequence state (batch size 1), e.g. one branch per query."""
        if self.hidden.shape[0] != 1:
            raise ValueError(f"only a single-sequence state can be expanded, this one holds {self.hidden.shape[0]}")
        return MANNState(*(t.expand(n, *t.shape[1:]) for t in self.tensors()))

    def tensors(self) -> tuple[torch.Tensor, ...]:
        """The state's tensors, in field order."""
        return self.hidden, self.cell, self.memory, self.usage, self.read_weights, self.reads


class MANN(nn.Module):
    """Memory-augmented neural network with an LSTM controller and LRUA memory (Santoro et al. 2016).

    ``input_shape`` is the shape of one example (e.g. ``400`` or ``(1, 20, 20)``). The input
    encoder maps an example to ``encoder_dim`` features: by default flatten + one
    ``nn.Linear`` (the paper feeds the raw 20x20 pixels to the controller, which amounts to
    the same linear map); pass ``encoder`` (any module, e.g. a small conv net) to replace it.
    At each step the LSTM controller (``controller`` units) gets the encoded example, the
    previous label (one-hot) and the previous step's read vectors; it emits per read head a
    key (``tanh``), a write gate ``alpha`` and, with ``key_strength``, a sharpening factor
    ``1 + softplus(.)``. The memory has ``memory_slots`` rows of ``memory_width``; each
    sequence gets its own, initialised to a small constant. The class logits are a linear
    function of the controller output and the read vectors.
    """

    def __init__(self, input_shape, n_way: int = 5, controller: int = 200, memory_slots: int = 128,
                 memory_width: int = 40, read_heads: int = 4, gamma: float = 0.95, encoder: nn.Module | None = None,
                 encoder_dim: int = 128, key_strength: bool = True):
        super().__init__()
        self.input_shape = tuple(int(v) for v in np.atleast_1d(input_shape))
        for name, value in [("n_way", n_way), ("controller", controller), ("memory_slots", memory_slots),
                            ("memory_width", memory_width), ("read_heads", read_heads), ("encoder_dim", encoder_dim)]:
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if read_heads > memory_slots:
            raise ValueError(f"read_heads ({read_heads}) cannot exceed memory_slots ({memory_slots})")
        if not 0 <= gamma <= 1:
            raise ValueError(f"gamma (usage decay) must be in [0, 1], got {gamma!r}")
        self.n_way, self.controller_size = int(n_way), int(controller)
        self.memory_slots, self.memory_width, self.read_heads = int(memory_slots), int(memory_width), int(read_heads)
        self.gamma, self.key_strength = float(gamma), bool(key_strength)
        if encoder is None:
            encoder = nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(self.input_shape)), encoder_dim))
        else:
            encoder_dim = self._output_width(encoder)
        self.encoder, self.encoder_dim = encoder, encoder_dim
        read_size = self.read_heads * self.memory_width
        self.lstm = nn.LSTMCell(encoder_dim + self.n_way + read_size, self.controller_size)
        self.keys = nn.Linear(self.controller_size, read_size)
        self.gates = nn.Linear(self.controller_size, self.read_heads)
        self.strengths = nn.Linear(self.controller_size, self.read_heads) if self.key_strength else None
        self.output = nn.Linear(self.controller_size + read_size, self.n_way)

    def _output_width(self, encoder: nn.Module) -> int:
        """The feature count a user-given encoder produces for one example (one dry run)."""
        was_training = encoder.training
        parameter = next(encoder.parameters(), None)
        encoder.eval()
        try:
            with torch.no_grad():
                out = encoder(torch.zeros(2, *self.input_shape, device=parameter.device if parameter is not None
                                          else None))
        finally:
            encoder.train(was_training)
        if out.dim() != 2 or out.shape[0] != 2:
            raise ValueError(f"the encoder must map [n, *input_shape] to [n, features]; for input_shape "
                             f"{self.input_shape} it gave {list(out.shape)}")
        return int(out.shape[1])

    def initial_state(self, batch: int, device=None, dtype=torch.float32) -> MANNState:
        """A fresh state for ``batch`` sequences: empty controller, memory at a small constant
        (1e-6, so cosine similarities are defined), zero usage, no previous read."""
        like = dict(device=device if device is not None else self.output.weight.device, dtype=dtype)
        return MANNState(hidden=torch.zeros(batch, self.controller_size, **like),
                         cell=torch.zeros(batch, self.controller_size, **like),
                         memory=torch.full((batch, self.memory_slots, self.memory_width), 1e-6, **like),
                         usage=torch.zeros(batch, self.memory_slots, **like),
                         read_weights=torch.zeros(batch, self.read_heads, self.memory_slots, **like),
                         reads=torch.zeros(batch, self.read_heads * self.memory_width, **like))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Encode examples ``[n, *input_shape]`` -> ``[n, encoder_dim]``."""
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"examples have shape {tuple(x.shape[1:])} but the MANN was built for {self.input_shape}")
        return self.encoder(x)

    def step(self, z: torch.Tensor, previous_label: torch.Tensor, state: MANNState) -> tuple[torch.Tensor, MANNState]:
        """One time step for a batch of sequences: encoded inputs ``z [b, encoder_dim]`` and the
        previous labels ``[b, n_way]`` -> logits ``[b, n_way]`` and the next state."""
        b = z.shape[0]
        hidden, cell = self.lstm(torch.cat([z, previous_label, state.reads], dim=1), (state.hidden, state.cell))
        keys = torch.tanh(self.keys(hidden)).view(b, self.read_heads, self.memory_width)
        alpha = self.gates(hidden)
        strength = 1 + F.softplus(self.strengths(hidden)) if self.strengths is not None else None
        memory, write_weights = lrua_write(state.memory, state.usage, state.read_weights, keys, alpha)
        read_weights = content_weights(keys, memory, strength)
        reads = (read_weights @ memory).reshape(b, -1)
        usage = update_usage(state.usage, read_weights, write_weights, self.gamma)
        logits = self.output(torch.cat([hidden, reads], dim=1))
        return logits, MANNState(hidden, cell, memory, usage, read_weights, reads)

    def run(self, x_seq: torch.Tensor, previous_labels: torch.Tensor, state: MANNState | None = None
            ) -> tuple[torch.Tensor, MANNState]:
        """Run whole sequences: ``x_seq [b, T, *input_shape]``, ``previous_labels [b, T, n_way]``
        (see :func:`labels_one_step_late`) -> logits ``[b, T, n_way]`` and the final state.
        ``state`` continues earlier sequences (default: a fresh memory per sequence)."""
        if x_seq.dim() < 3 or tuple(x_seq.shape[2:]) != self.input_shape:
            raise ValueError(f"x_seq must be [batch, steps, *{self.input_shape}], got {list(x_seq.shape)}")
        b, steps = x_seq.shape[:2]
        if tuple(previous_labels.shape) != (b, steps, self.n_way):
            raise ValueError(f"previous_labels must be one-hot [batch={b}, steps={steps}, n_way={self.n_way}], "
                             f"got {list(previous_labels.shape)}")
        z = self.encode(x_seq.reshape(b * steps, *self.input_shape)).view(b, steps, -1)
        state = self.initial_state(b, x_seq.device, z.dtype) if state is None else state
        logits = []
        for t in range(steps):
            out, state = self.step(z[:, t], previous_labels[:, t].to(z.dtype), state)
            logits.append(out)
        return torch.stack(logits, dim=1), state

    def forward(self, x_seq: torch.Tensor, previous_labels: torch.Tensor) -> torch.Tensor:
        """Logits ``[b, T, n_way]`` for sequences ``x_seq [b, T, ...]`` given the labels one step late."""
        return self.run(x_seq, previous_labels)[0]


def _sequences(x: np.ndarray, sampler: FewShotSampler, rng: np.random.Generator, count: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """``count`` training/evaluation sequences: each an N-way episode with ``k_shot`` instances per
    class, shuffled into a random order, its labels randomly permuted. Returns
    ``(x_seq [count, T, ...], labels [count, T])``."""
    rows, labels = [], []
    for _ in range(count):
        episode = sampler.sample()
        order = rng.permutation(len(episode.support))
        relabel = rng.permutation(sampler.n_way)
        rows.append(episode.support[order])
        labels.append(relabel[episode.support_y[order]])
    rows = np.stack(rows)
    return x[rows], np.stack(labels)


def _check_labelled(x, y) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim < 2:
        raise ValueError(f"x must be an array [examples, features...], got shape {x.shape}")
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"y must be 1-D with one label per row of x; got {y.shape} for {len(x)} rows")
    return x, y


class MANNClassifier(Method):
    """Meta-train a :class:`MANN` on label-delayed sequences; adapt by reading a support set into memory.

    Training (Santoro et al. 2016): every step draws ``batch_size`` sequences, each an
    ``n_way``-way episode from the classes in ``y`` with ``instances`` examples per class
    (5 x 10 = 50 steps in the paper), shuffled, with the episode labels permuted at
    random, and fed with the labels one step late; the loss is the cross-entropy at every
    step. Adam (``lr``), gradient norm clipped at ``clip_norm``.

    ``episodes`` counts *training steps*, each on ``batch_size`` sequences, so
    ``len(history) == episodes`` and ``episodes_seen == episodes * batch_size``.
    ``train_seconds`` is the wall time spent in :meth:`meta_train`.

    ``adapt`` feeds the support set (in a random order, labels one step late) through a
    fresh memory and keeps the final state; each query is then scored as the next step,
    every query branching from that state on its own (the queries never see each other).
    """

    name = "MANN"

    def __init__(self, model: MANN, instances: int = 10, batch_size: int = 16, episodes: int = 1000,
                 lr: float = 1e-3, clip_norm: float = 10.0, seed: int = 0, device=None):
        if not isinstance(model, MANN):
            raise ValueError(f"model must be a MANN, got {type(model).__name__}")
        self.model, self.n_way = model, model.n_way
        self.instances = _check_count("instances", instances, 1)
        self.batch_size = _check_count("batch_size", batch_size, 1)
        self.episodes = _check_count("episodes", episodes, 0)
        if not (lr > 0 and clip_norm > 0):
            raise ValueError(f"lr and clip_norm must be positive, got {lr!r} and {clip_norm!r}")
        self.lr, self.clip_norm, self.seed = lr, clip_norm, seed
        self.device = torch.device(device) if device is not None else get_device()
        self.model.to(self.device)
        self.history: list[float] = []  # mean cross-entropy per training step
        self.episodes_seen = 0          # sequences trained on
        self.train_seconds = 0.0
        self._optimizer: torch.optim.Optimizer | None = None

    def to(self, device) -> "MANNClassifier":
        """Move the model (the optimizer's state is dropped)."""
        self.device = torch.device(device)
        self.model.to(self.device)
        self._optimizer = None
        return self

    def _tensor(self, x) -> torch.Tensor:
        return torch.as_tensor(np.asarray(x), dtype=torch.float32, device=self.device)

    def _check_features(self, x: np.ndarray, what: str) -> None:
        if tuple(x.shape[1:]) != self.model.input_shape:
            raise ValueError(f"{what} has feature shape {tuple(x.shape[1:])} but the MANN was built for "
                             f"{self.model.input_shape}")

    def meta_train(self, x, y, episodes: int | None = None, desc: str | None = None,
                   max_seconds: float | None = None) -> "MANNClassifier":
        """Train for ``episodes`` steps (default: the constructor's) of ``batch_size`` sequences.

        ``max_seconds`` stops earlier once that much wall time has passed. A non-finite
        loss raises ``FloatingPointError`` naming the step, before any weight changes.
        """
        x, y = _check_labelled(x, y)
        self._check_features(x, "x")
        steps = _check_count("episodes", episodes if episodes is not None else self.episodes, 0)
        # seeded by the steps done so far, so a second call continues with new sequences
        sampler = FewShotSampler(y, self.n_way, self.instances, 0, seed=[self.seed, len(self.history)])
        rng = np.random.default_rng([self.seed, len(self.history), 1])
        torch.manual_seed(self.seed + len(self.history))
        if self._optimizer is None:
            self._optimizer = torch.optim.Adam(self.model.parameters(), lr=self.lr)
        self.model.train()
        started = time.perf_counter()
        try:
            for _ in progress(range(steps), desc=desc, disable=desc is None):
                if max_seconds is not None and time.perf_counter() - started > max_seconds:
                    break
                x_seq, labels = _sequences(x, sampler, rng, self.batch_size)
                labels = torch.as_tensor(labels, device=self.device)
                logits = self.model(self._tensor(x_seq), labels_one_step_late(labels, self.n_way))
                loss = F.cross_entropy(logits.reshape(-1, self.n_way), labels.reshape(-1))
                step = len(self.history) + 1
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"{self.name}: meta-training loss became {loss.item()} at training "
                                             f"step {step} (a batch of {self.batch_size} sequences)")
                self._optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_norm)
                self._optimizer.step()
                self.history.append(loss.item())
                self.episodes_seen += self.batch_size
        finally:
            self.train_seconds += time.perf_counter() - started
            self.model.eval()
        return self

    def adapt(self, support_x, support_y, shuffle: bool = True) -> Adapted:
        """Read the support set into a fresh memory (in a random order unless ``shuffle=False``)."""
        x, y, n = check_support(support_x, support_y)
        if n != self.n_way:
            raise ValueError(f"{self.name}'s model has {self.n_way} outputs, so it adapts to {self.n_way}-way tasks; "
                             f"the support set has {n} classes")
        self._check_features(x, "support_x")
        order = np.random.default_rng([self.seed, 2]).permutation(len(x)) if shuffle else np.arange(len(x))
        x, y = x[order], y[order]
        self.model.eval()
        labels = torch.as_tensor(y, device=self.device).unsqueeze(0)
        with torch.no_grad():
            _, state = self.model.run(self._tensor(x).unsqueeze(0), labels_one_step_late(labels, self.n_way))
        last_label = F.one_hot(labels[:, -1], self.n_way).float()
        return _MANNAdapted(self, state, last_label, n, x.shape[1:])


class _MANNAdapted(Adapted):
    def __init__(self, method: MANNClassifier, state: MANNState, last_label: torch.Tensor, n_classes: int,
                 feature_shape):
        self.method, self.state, self.last_label = method, state, last_label
        self.n_classes, self.feature_shape = n_classes, tuple(feature_shape)

    def _proba(self, x):
        model = self.method.model
        model.eval()
        with torch.no_grad():
            z = model.encode(self.method._tensor(x))
            n = len(z)
            logits, _ = model.step(z, self.last_label.expand(n, -1), self.state.expand(n))
            return torch.softmax(logits, dim=1).cpu().numpy()


def accuracy_by_instance(model_or_method, x, y, classes=None, n_way: int | None = None, instances: int = 10,
                         sequences: int = 100, seed: int = 0, batch_size: int = 50) -> np.ndarray:
    """Accuracy on the 1st, 2nd, ... presentation of a class within a sequence (Santoro et al.'s metric).

    Draws ``sequences`` label-delayed sequences (``n_way`` classes from ``classes``, all
    classes in ``y`` when None, ``instances`` examples each, shuffled, labels permuted)
    and returns an array ``[sequences, instances]``: entry ``[s, k]`` is the share of the
    ``n_way`` examples shown for the ``(k+1)``-th time in sequence ``s`` that the model
    labelled correctly. ``.mean(axis=0)`` gives the paper's per-instance accuracies; the
    rows allow confidence intervals. ``model_or_method`` is a :class:`MANN` or a
    :class:`MANNClassifier`; the model is put in eval mode.
    """
    model = model_or_method.model if isinstance(model_or_method, MANNClassifier) else model_or_method
    if not isinstance(model, MANN):
        raise ValueError(f"expected a MANN or a MANNClassifier, got {type(model_or_method).__name__}")
    x, y = _check_labelled(x, y)
    n_way = model.n_way if n_way is None else _check_count("n_way", n_way, 1)
    if n_way > model.n_way:
        raise ValueError(f"the model has {model.n_way} outputs; it cannot label {n_way}-way sequences")
    instances = _check_count("instances", instances, 1)
    sequences = _check_count("sequences", sequences, 1)
    sampler = FewShotSampler(y, n_way, instances, 0, classes=classes, seed=seed)
    rng = np.random.default_rng([seed, 3])
    device = model.output.weight.device
    model.eval()
    result = np.empty((sequences, instances))
    done = 0
    with torch.no_grad():
        while done < sequences:
            count = min(batch_size, sequences - done)
            x_seq, labels = _sequences(x, sampler, rng, count)
            labels = torch.as_tensor(labels, device=device)
            x_seq = torch.as_tensor(x_seq, dtype=torch.float32, device=device)
            logits = model(x_seq, labels_one_step_late(labels, model.n_way))
            correct = (logits.argmax(dim=2) == labels).float()                # [count, T]
            one_hot = F.one_hot(labels, n_way)
            seen_before = (one_hot.cumsum(dim=1) - one_hot).gather(2, labels.unsqueeze(2)).squeeze(2)
            presentation = F.one_hot(seen_before, instances).float()          # [count, T, instances]
            result[done:done + count] = ((correct.unsqueeze(2) * presentation).sum(dim=1)
                                         / presentation.sum(dim=1)).cpu().numpy()
            done += count
    return result


# ---------------------------------------------------------------------------------------
# Conditional Neural Processes
# ---------------------------------------------------------------------------------------

def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def gaussian_nll(mean: torch.Tensor, sigma: torch.Tensor, target: torch.Tensor,
                 mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean negative log-likelihood of ``target`` under ``Normal(mean, sigma)`` (over the entries
    where ``mask`` is 1, when given)."""
    nll = torch.log(sigma) + 0.5 * ((target - mean) / sigma) ** 2 + 0.5 * math.log(2 * math.pi)
    if mask is None:
        return nll.mean()
    return (nll * mask).sum() / mask.sum().clamp_min(1)


class CNPRegressor(nn.Module):
    """Conditional Neural Process for scalar regression (Garnelo et al. 2018).

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
            _check_count(name, value, 1)
        self.x_dim, self.r_dim = int(x_dim), int(r_dim)
        self.encoder = _mlp([x_dim + 1] + [hidden] * (encoder_layers - 1) + [r_dim])
        self.decoder = _mlp([x_dim + r_dim] + [hidden] * (decoder_layers - 1) + [2])

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


class CNP(Method):
    """Meta-train a :class:`CNPRegressor` on regression tasks; adapt = encode the support set.

    A task is ``(support_x [n, d], support_y [n], query_x [m, d], query_y [m])``, as for
    :meth:`metaecom.methods.optimization.GradientMethod.meta_train_tasks`. Each step
    averages the Gaussian negative log-likelihood over ``batch_size`` tasks (padded to
    equal sizes with masks) and takes an Adam step. As in the paper the targets are the
    support *and* query points (``predict_support=True``); ``False`` scores the query only.
    ``history`` holds the loss per step, ``tasks_seen`` the number of tasks trained on,
    ``train_seconds`` the wall time. Classification has its own class, :class:`CNPClassifier`.
    """

    name = "CNP"

    def __init__(self, model: CNPRegressor, lr: float = 1e-3, batch_size: int = 16, seed: int = 0,
                 predict_support: bool = True, device=None):
        if not isinstance(model, CNPRegressor):
            raise ValueError(f"model must be a CNPRegressor, got {type(model).__name__}")
        if not lr > 0:
            raise ValueError(f"lr must be positive, got {lr!r}")
        self.model, self.lr, self.seed = model, lr, seed
        self.batch_size = _check_count("batch_size", batch_size, 1)
        self.predict_support = bool(predict_support)
        self.device = torch.device(device) if device is not None else get_device()
        self.model.to(self.device)
        self.history: list[float] = []
        self.tasks_seen = 0
        self.train_seconds = 0.0
        self._optimizer: torch.optim.Optimizer | None = None

    def _x(self, x, what: str, allow_empty: bool) -> torch.Tensor:
        x = _numpy(x)
        if x.ndim != 2 or x.shape[1] != self.model.x_dim:
            raise ValueError(f"{what} must be [examples, {self.model.x_dim}] (the CNP's x_dim), got shape {x.shape}")
        if len(x) == 0 and not allow_empty:
            raise ValueError(f"{what} is empty")
        return torch.as_tensor(x, dtype=torch.float32, device=self.device)

    def _y(self, y, n: int, what: str) -> torch.Tensor:
        y = _numpy(y)
        if y.ndim != 1 or len(y) != n:
            raise ValueError(f"{what} must be 1-D with one target per example; got {y.shape} for {n} examples")
        if not np.issubdtype(y.dtype, np.number):
            raise ValueError(f"{what} must be numbers, got dtype {y.dtype}")
        return torch.as_tensor(y, dtype=torch.float32, device=self.device)

    def _task(self, task) -> tuple[torch.Tensor, ...]:
        if not isinstance(task, (tuple, list)) or len(task) != 4:
            raise ValueError("a task is a tuple (support_x, support_y, query_x, query_y); got "
                             f"{type(task).__name__}" + (f" of length {len(task)}" if hasattr(task, '__len__') else ""))
        sx, sy, qx, qy = task
        sx, qx = self._x(sx, "support_x", allow_empty=True), self._x(qx, "query_x", allow_empty=False)
        return sx, self._y(sy, len(sx), "support_y"), qx, self._y(qy, len(qx), "query_y")

    @staticmethod
    def _pad(parts: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Stack tensors of different lengths along a new batch axis, zero-padded; also the mask."""
        n = max(len(p) for p in parts)
        padded = parts[0].new_zeros((len(parts), n, *parts[0].shape[1:]))
        mask = parts[0].new_zeros((len(parts), n))
        for i, p in enumerate(parts):
            padded[i, :len(p)] = p
            mask[i, :len(p)] = 1
        return padded, mask

    def loss(self, tasks) -> torch.Tensor:
        """Mean Gaussian negative log-likelihood over a list of tasks (differentiable)."""
        if len(tasks) == 0:
            raise ValueError("loss needs at least one task")
        tensors = [self._task(t) for t in tasks]
        sx, smask = self._pad([t[0] for t in tensors])
        sy, _ = self._pad([t[1] for t in tensors])
        if self.predict_support:
            targets = [(torch.cat([t[0], t[2]]), torch.cat([t[1], t[3]])) for t in tensors]
        else:
            targets = [(t[2], t[3]) for t in tensors]
        tx, tmask = self._pad([t[0] for t in targets])
        ty, _ = self._pad([t[1] for t in targets])
        mean, sigma = self.model(sx, sy, tx, smask)
        return gaussian_nll(mean, sigma, ty, tmask)

    def meta_step(self, tasks) -> float:
        """One Adam step on ``tasks``; returns and records the loss. A non-finite loss raises
        ``FloatingPointError`` naming the step, before any weight changes."""
        if self._optimizer is None:
            self._optimizer = torch.optim.Adam(self.model.parameters(), lr=self.lr)
        self.model.train()
        loss = self.loss(tasks)
        value = loss.item()
        if not math.isfinite(value):
            raise FloatingPointError(f"{self.name}: meta-training loss became {value} at step {len(self.history) + 1}")
        self._optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self._optimizer.step()
        self.history.append(value)
        self.tasks_seen += len(tasks)
        return value

    def meta_train_tasks(self, tasks, steps: int, desc: str | None = None, max_seconds: float | None = None,
                         batch_size: int | None = None) -> "CNP":
        """Train for ``steps`` steps of ``batch_size`` tasks (default: the constructor's).

        ``tasks`` is one of: a callable ``tasks(rng) -> task`` (a NumPy generator seeded by
        ``seed``); a sequence of tasks, from which ``batch_size`` are drawn at random each
        step (without replacement when there are enough); or an iterator yielding tasks
        (running out before the last step is an error). ``max_seconds`` stops earlier.
        """
        batch = self.batch_size if batch_size is None else _check_count("batch_size", batch_size, 1)
        steps = _check_count("steps", steps, 0)
        next_tasks = task_batches(tasks, batch, np.random.default_rng(self.seed))
        try:
            return run_meta_steps(self, next_tasks, steps, desc, max_seconds)
        finally:
            self.model.eval()

    def adapt(self, support_x, support_y) -> Adapted:
        """Not for regression tasks: use :meth:`adapt_regression` (or :class:`CNPClassifier`)."""
        raise ValueError("CNP is the regression wrapper: use adapt_regression; for classification use CNPClassifier")

    def adapt_regression(self, support_x, support_y) -> "CNPRegressionAdapted":
        """Encode the support set ``[n, x_dim]``, ``[n]`` (``n = 0`` allowed: the prior) into ``r``."""
        x = self._x(support_x, "support_x", allow_empty=True)
        y = self._y(support_y, len(x), "support_y")
        self.model.eval()
        with torch.no_grad():
            r = self.model.representation(x.unsqueeze(0), y.unsqueeze(0))
        return CNPRegressionAdapted(self, r)


class CNPRegressionAdapted:
    """A CNP conditioned on one support set: ``predict(x)`` -> mean ``[n]``, ``predict_distribution(x)``
    -> ``(mean, sigma)``, NumPy in and out."""

    def __init__(self, method: CNP, r: torch.Tensor):
        self.method, self.r = method, r

    def predict_distribution(self, query_x) -> tuple[np.ndarray, np.ndarray]:
        """Predictive mean and standard deviation ``[n]`` each at ``query_x [n, x_dim]``."""
        x = self.method._x(query_x, "query_x", allow_empty=True)
        with torch.no_grad():
            mean, sigma = self.method.model.decode(self.r, x.unsqueeze(0))
        return mean[0].cpu().numpy(), sigma[0].cpu().numpy()

    def predict(self, query_x) -> np.ndarray:
        """Predictive mean ``[n]``."""
        return self.predict_distribution(query_x)[0]


class CNPClassifier(MetricMethod):
    """A Conditional Neural Process for few-shot classification, trained on episodes.

    The ``encoder`` embeds every example (``embedding_dim`` features). Each class gets a
    representation ``r_c = mean over its support examples of h(z_i)``, with ``h`` an MLP, so
    the order of the support set does not matter; the decoder MLP ``g`` scores every pair
    ``(query embedding, r_c)`` with one logit, and the softmax over classes gives the
    prediction. Meta-training is :class:`MetricMethod`'s episodic loop (cross-entropy on
    the query set); ``n_way``, ``k_shot``, ``n_query``, ``episodes``, ``lr``, ``seed``,
    ``device`` are passed through to it.

    ``pair_features`` says what the decoder sees of a pair: ``"concat"`` is the plain
    ``[z_q, r_c]`` of the paper, from which the decoder must learn a similarity from
    scratch; ``"interaction"`` maps the query through ``h`` too and gives the decoder
    ``[h(z_q), r_c, h(z_q) * r_c, |h(z_q) - r_c|]``, the usual relation features, which
    learn much faster. Both are invariant to the order of the support set.
    """

    name = "CNP"

    PAIR_FEATURES = ("concat", "interaction")

    def __init__(self, encoder: nn.Module, embedding_dim: int, hidden: int = 64, r_dim: int = 64,
                 pair_features: str = "concat", **kwargs):
        if pair_features not in self.PAIR_FEATURES:
            raise ValueError(f"pair_features must be one of {self.PAIR_FEATURES}, got {pair_features!r}")
        self.pair_features = pair_features
        self.aggregator = _mlp([embedding_dim, hidden, r_dim])
        width = embedding_dim + r_dim if pair_features == "concat" else 4 * r_dim
        self.decoder = _mlp([width, hidden, 1])
        super().__init__(encoder, **kwargs)

    def modules(self):
        """The encoder, the per-class aggregation MLP ``h`` and the decoder MLP ``g``."""
        return [self.encoder, self.aggregator, self.decoder]

    def class_representations(self, support_z: torch.Tensor, support_y: torch.Tensor, n_way: int) -> torch.Tensor:
        """``r_c = mean_{i in class c} h(z_i)``: ``[n_way, r_dim]``."""
        return prototypes(self.aggregator(support_z), support_y, n_way)

    def scores(self, support_z, support_y, query_z, n_way):
        """Logit of every (query, class) pair from the decoder: ``[n_query, n_way]``."""
        r = self.class_representations(support_z, support_y, n_way).unsqueeze(0).expand(len(query_z), -1, -1)
        if self.pair_features == "concat":
            pairs = torch.cat([query_z.unsqueeze(1).expand(-1, n_way, -1), r], dim=2)
        else:
            q = self.aggregator(query_z).unsqueeze(1).expand(-1, n_way, -1)
            pairs = torch.cat([q, r, q * r, (q - r).abs()], dim=2)
        return self.decoder(pairs).squeeze(2)
