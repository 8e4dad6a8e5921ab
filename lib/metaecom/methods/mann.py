"""MANN: the memory-augmented neural network of Santoro et al. (2016).

An LSTM controller with an external memory matrix, read by cosine-similarity content
addressing (the soft read of :mod:`metaecom.methods.attention`) and written by *Least
Recently Used Access* (LRUA). It sees a task as a sequence: at step ``t`` it gets the
input ``x_t`` and the label of step ``t - 1`` (labels arrive one step late), so it must
store each example and recall its label when the class comes round again. Adaptation is
a forward pass: the support set is written into the memory, no weight changes.

The memory update is split into small functions (:func:`content_weights`,
:func:`least_used`, :func:`lrua_write`, :func:`update_usage`) that can be checked one by
one; :class:`MANNNetwork` is the network, :class:`MANN` the method that meta-trains it.
Deviations from the paper: the read keys may carry a learned *key strength* (a
sharpening factor on the cosine, ``key_strength=True``, as in the Neural Turing Machine;
the paper's plain softmax of cosines is ``key_strength=False``); keys pass through
``tanh``; the input reaches the controller through an encoder (one linear layer unless
another module is given); and training uses Adam with gradient clipping rather than
RMSprop. As in the paper, one key per head serves both the write and the read of a
step, the read comes after the write, and the read vectors of step ``t - 1`` are fed
back into the controller.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from metaecom.checks import check_count, check_positive
from metaecom.methods.base import Adapted, Method, as_tensor, check_support, to_numpy
from metaecom.tasks.episodes import FewShotSampler
from metaecom.training import MetaLearner

__all__ = ["cosine_similarity", "content_weights", "least_used", "lrua_write", "update_usage",
           "labels_one_step_late", "MANNState", "MANNNetwork", "MANN", "label_sequences", "accuracy_by_instance"]


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


class MANNNetwork(nn.Module):
    """The memory-augmented network: an LSTM controller and LRUA memory (Santoro et al. 2016).

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


def _check_labelled(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = to_numpy(x), np.asarray(y)
    if x.ndim < 2:
        raise ValueError(f"x must be an array [examples, features...], got shape {x.shape}")
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"y must be 1-D with one label per row of x; got {y.shape} for {len(x)} rows")
    return x, y


def label_sequences(x: np.ndarray, sampler: FewShotSampler, rng: np.random.Generator, count: int) -> list:
    """``count`` sequences, each an N-way episode with ``k_shot`` instances per class shuffled
    into a random order, its labels randomly permuted: a list of ``(x_seq [T, ...], labels [T])``."""
    sequences = []
    for _ in range(count):
        episode = sampler.sample()
        order = rng.permutation(len(episode.support))
        relabel = rng.permutation(sampler.n_way)
        sequences.append((x[episode.support[order]], relabel[episode.support_y[order]]))
    return sequences


class MANN(MetaLearner, Method):
    """Meta-train a :class:`MANNNetwork` on label-delayed sequences; adapt by reading a support set into memory.

    Training (Santoro et al. 2016): every meta-step draws ``tasks_per_step`` sequences,
    each an ``n_way``-way episode from the classes in ``y`` with ``instances`` examples
    per class (5 x 10 = 50 steps in the paper), shuffled, with the episode labels
    permuted at random, and fed with the labels one step late; the loss is the
    cross-entropy at every step. Adam (``meta_lr``), gradient norm clipped at ``clip_norm``.
    A task here is one such sequence, so ``tasks_seen == meta_steps * tasks_per_step``.

    ``adapt`` feeds the support set (in a random order, labels one step late) through a
    fresh memory and keeps the final state; each query is then scored as the next step,
    every query branching from that state on its own (the queries never see each other).
    """

    name = "MANN"

    def __init__(self, model: MANNNetwork, instances: int = 10, tasks_per_step: int = 16, meta_steps: int = 1000,
                 meta_lr: float = 1e-3, clip_norm: float = 10.0, seed: int = 0, device=None):
        if not isinstance(model, MANNNetwork):
            raise ValueError(f"model must be a MANNNetwork, got {type(model).__name__}")
        self.model, self.n_way = model, model.n_way
        self.instances = check_count("instances", instances, 1)
        self.meta_steps = check_count("meta_steps", meta_steps, 0)
        self.clip_norm = check_positive("clip_norm", clip_norm)
        self._start_training(meta_lr, tasks_per_step, seed, device)
        self.model.to(self.device)
        # one stream of reading orders: successive adaptations read their support sets in
        # different random orders, and a fresh MANN with the same seed repeats them
        self._reading_orders = np.random.default_rng([seed, 2])

    def modules(self) -> list[nn.Module]:
        return [self.model]

    def training_seed(self) -> int:
        # seeded by the steps done so far, so a second call continues with new sequences
        return self.seed + len(self.history)

    def _tensor(self, x) -> torch.Tensor:
        return as_tensor(x, device=self.device)

    def _check_features(self, x: np.ndarray, what: str) -> None:
        if tuple(x.shape[1:]) != self.model.input_shape:
            raise ValueError(f"{what} has feature shape {tuple(x.shape[1:])} but the MANN was built for "
                             f"{self.model.input_shape}")

    def meta_loss(self, tasks) -> torch.Tensor:
        """Cross-entropy at every step of every sequence ``(x_seq, labels)`` in ``tasks``."""
        x_seq = np.stack([x for x, _ in tasks])
        labels = torch.as_tensor(np.stack([y for _, y in tasks]), device=self.device)
        logits = self.model(self._tensor(x_seq), labels_one_step_late(labels, self.n_way))
        return F.cross_entropy(logits.reshape(-1, self.n_way), labels.reshape(-1))

    def meta_train(self, x, y, meta_steps: int | None = None, desc: str | None = None,
                   max_seconds: float | None = None) -> "MANN":
        """Train for ``meta_steps`` meta-steps (default: the constructor's) of ``tasks_per_step``
        sequences; ``max_seconds`` stops earlier once that much wall time has passed."""
        x, y = _check_labelled(x, y)
        self._check_features(x, "x")
        sampler = FewShotSampler(y, self.n_way, self.instances, 0, seed=[self.seed, len(self.history)])
        rng = np.random.default_rng([self.seed, len(self.history), 1])
        return self._run(lambda: label_sequences(x, sampler, rng, self.tasks_per_step),
                         self.meta_steps if meta_steps is None else meta_steps, desc, max_seconds)

    def adapt(self, support_x, support_y, shuffle: bool = True) -> Adapted:
        """Read the support set into a fresh memory, in a random order (a new one at every
        call, from the method's seeded stream of orders) unless ``shuffle=False``."""
        x, y, n = check_support(support_x, support_y)
        if n != self.n_way:
            raise ValueError(f"{self.name}'s model has {self.n_way} outputs, so it adapts to {self.n_way}-way tasks; "
                             f"the support set has {n} classes")
        self._check_features(x, "support_x")
        order = self._reading_orders.permutation(len(x)) if shuffle else np.arange(len(x))
        x, y = x[order], y[order]
        self.model.eval()
        labels = torch.as_tensor(y, device=self.device).unsqueeze(0)
        with torch.no_grad():
            _, state = self.model.run(self._tensor(x).unsqueeze(0), labels_one_step_late(labels, self.n_way))
        last_label = F.one_hot(labels[:, -1], self.n_way).float()
        return _MANNAdapted(self, state, last_label, n, x.shape[1:])


class _MANNAdapted(Adapted):
    def __init__(self, method: MANN, state: MANNState, last_label: torch.Tensor, n_classes: int,
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
    rows allow confidence intervals. ``model_or_method`` is a :class:`MANNNetwork` or a
    :class:`MANN`; the model is put in eval mode.
    """
    model = model_or_method.model if isinstance(model_or_method, MANN) else model_or_method
    if not isinstance(model, MANNNetwork):
        raise ValueError(f"expected a MANNNetwork or a MANN, got {type(model_or_method).__name__}")
    x, y = _check_labelled(x, y)
    n_way = model.n_way if n_way is None else check_count("n_way", n_way, 1)
    if n_way > model.n_way:
        raise ValueError(f"the model has {model.n_way} outputs; it cannot label {n_way}-way sequences")
    instances = check_count("instances", instances, 1)
    sequences = check_count("sequences", sequences, 1)
    sampler = FewShotSampler(y, n_way, instances, 0, classes=classes, seed=seed)
    rng = np.random.default_rng([seed, 3])
    device = model.output.weight.device
    model.eval()
    result = np.empty((sequences, instances))
    done = 0
    with torch.no_grad():
        while done < sequences:
            count = min(batch_size, sequences - done)
            batch = label_sequences(x, sampler, rng, count)
            x_seq, labels = np.stack([s for s, _ in batch]), np.stack([labels for _, labels in batch])
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
