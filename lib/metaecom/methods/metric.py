"""Metric-based meta-learning: classify a query by comparing it with the support set in
a learned embedding space. Adaptation is a forward pass — no gradient step on the new task.

All four methods share one episodic meta-training loop (:class:`MetricMethod`): sample an
N-way K-shot episode from the meta-training classes, embed support and query with the
same encoder, score every query against the support set, and take a gradient step on
the query loss. They differ only in how a query is scored:

- :class:`ProtoNet` (Snell et al. 2017): distance to each class's mean embedding, the
  *prototype*; squared Euclidean (default) or scaled cosine.
- :class:`MatchingNet` (Vinyals et al. 2016): attention over the support examples,
  softmax of cosine similarities, summed per class (no full-context embeddings).
- :class:`RelationNet` (Sung et al. 2018): a learned *relation module* scores the pair
  (class feature, query) in [0, 1], trained with mean squared error to the one-hot
  target. On image feature maps the paper's module is convolutional; here it is an MLP
  on the flattened embeddings, which serves vectors and images alike.
- :class:`SiameseNet` (Koch et al. 2015): a verification network, p(same class) from a
  weighted L1 distance of two embeddings (weights kept positive, unlike the paper, so
  the score always falls with distance), trained with binary cross-entropy on
  (query, support) pairs; a query's class score is its best match in that class.

:class:`NearestNeighbour` is the untrained baseline they all refine: the class of the
most similar support example.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from metaecom.device import get_device
from metaecom.methods.base import Adapted, Method, check_support
from metaecom.progress import progress
from metaecom.tasks import FewShotSampler


def prototypes(support_z: torch.Tensor, support_y: torch.Tensor, n_way: int) -> torch.Tensor:
    """Mean embedding of each class: ``[n_way, dim]``."""
    one_hot = F.one_hot(support_y, n_way).to(support_z.dtype)
    return (one_hot.T @ support_z) / one_hot.sum(dim=0).unsqueeze(1)


class MetricMethod(Method):
    """Episodic training and forward-pass adaptation shared by the metric-based methods.

    Subclasses define :meth:`scores` (higher = more likely, one column per class) and may
    override :meth:`loss`. ``encoder`` maps a batch of inputs to embeddings ``[batch, dim]``.
    """

    def __init__(self, encoder: nn.Module, n_way: int = 5, k_shot: int = 1, n_query: int = 15,
                 episodes: int = 1000, lr: float = 1e-3, lr_halving_every: int | None = None,
                 seed: int = 0, device=None):
        if lr_halving_every is not None and lr_halving_every < 1:
            raise ValueError(f"lr_halving_every must be a positive number of episodes or None, got {lr_halving_every}")
        self.encoder = encoder
        self.n_way, self.k_shot, self.n_query = n_way, k_shot, n_query
        self.episodes, self.lr, self.lr_halving_every, self.seed = episodes, lr, lr_halving_every, seed
        self.device = torch.device(device) if device is not None else get_device()
        self.history: list[float] = []  # meta-training loss per episode
        self.train_seconds = 0.0        # wall time spent in meta_train
        self.to(self.device)

    # --- what subclasses define -------------------------------------------------------
    def scores(self, support_z, support_y, query_z, n_way: int) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, support_z, support_y, query_z, query_y, n_way: int) -> torch.Tensor:
        return F.cross_entropy(self.scores(support_z, support_y, query_z, n_way), query_y)

    def probabilities(self, support_z, support_y, query_z, n_way: int) -> torch.Tensor:
        return torch.softmax(self.scores(support_z, support_y, query_z, n_way), dim=1)

    # --- shared machinery -------------------------------------------------------------
    def modules(self) -> list[nn.Module]:
        """Every trainable module (the encoder, plus e.g. a relation module)."""
        return [self.encoder]

    def to(self, device) -> "MetricMethod":
        for module in self.modules():
            module.to(device)
        return self

    def _tensor(self, x) -> torch.Tensor:
        return torch.as_tensor(np.asarray(x), dtype=torch.float32, device=self.device)

    def meta_train(self, x, y, episodes: int | None = None, desc: str | None = None,
                   max_seconds: float | None = None) -> "MetricMethod":
        """Train on ``episodes`` N-way K-shot episodes drawn from the classes in ``y``.

        ``max_seconds`` stops training earlier once that much wall time has passed (a
        time budget, as in the reproduction runs); ``len(self.history)`` then says how
        many episodes were trained. Calling it again continues training on new episodes
        (and a fresh Adam state). With ``lr_halving_every`` set, the learning rate is
        halved after every that many episodes (the schedule of Snell et al.).
        """
        y = np.asarray(y)
        # a later call continues with fresh episodes instead of replaying the first call's
        seed = self.seed if not self.history else [self.seed, len(self.history)]
        sampler = FewShotSampler(y, self.n_way, self.k_shot, self.n_query, seed=seed)
        torch.manual_seed(self.seed)
        parameters = [p for module in self.modules() for p in module.parameters()]
        optimizer = torch.optim.Adam(parameters, lr=self.lr)
        schedule = (torch.optim.lr_scheduler.StepLR(optimizer, self.lr_halving_every, gamma=0.5)
                    if self.lr_halving_every else None)
        for module in self.modules():
            module.train()
        total = episodes if episodes is not None else self.episodes
        started = time.perf_counter()
        for step in progress(range(1, total + 1), desc=desc, disable=desc is None):
            if max_seconds is not None and time.perf_counter() - started > max_seconds:
                break
            episode = sampler.sample()
            support_y = torch.as_tensor(episode.support_y, device=self.device)
            query_y = torch.as_tensor(episode.query_y, device=self.device)
            z = self.encoder(self._tensor(x[np.concatenate([episode.support, episode.query])]))
            support_z, query_z = z[: len(episode.support)], z[len(episode.support):]
            loss = self.loss(support_z, support_y, query_z, query_y, self.n_way)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{self.name}: meta-training loss became {loss.item()} at episode {step}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if schedule is not None:
                schedule.step()
            self.history.append(loss.item())
        self.train_seconds += time.perf_counter() - started
        for module in self.modules():
            module.eval()
        return self

    def adapt(self, support_x, support_y) -> Adapted:
        x, y, n = check_support(support_x, support_y)
        for module in self.modules():
            module.eval()
        with torch.no_grad():
            support_z = self.encoder(self._tensor(x))
        return _MetricAdapted(self, support_z, torch.as_tensor(y, device=self.device), n, x.shape[1:])


class _MetricAdapted(Adapted):
    def __init__(self, method: MetricMethod, support_z, support_y, n_classes: int, feature_shape):
        self.method, self.support_z, self.support_y = method, support_z, support_y
        self.n_classes, self.feature_shape = n_classes, tuple(feature_shape)

    def _proba(self, x):
        with torch.no_grad():
            query_z = self.method.encoder(self.method._tensor(x))
            return self.method.probabilities(self.support_z, self.support_y, query_z, self.n_classes).cpu().numpy()


class ProtoNet(MetricMethod):
    """Prototypical Networks: score = minus squared Euclidean distance to each prototype
    (``distance="cosine"``: ``scale`` times the cosine similarity instead)."""

    name = "ProtoNet"

    def __init__(self, encoder: nn.Module, distance: str = "euclidean", scale: float = 10.0, **kwargs):
        if distance not in ("euclidean", "cosine"):
            raise ValueError(f"distance must be 'euclidean' or 'cosine', got {distance!r}")
        self.distance, self.scale = distance, scale
        super().__init__(encoder, **kwargs)

    def scores(self, support_z, support_y, query_z, n_way):
        centres = prototypes(support_z, support_y, n_way)
        if self.distance == "cosine":
            return self.scale * F.normalize(query_z, dim=1) @ F.normalize(centres, dim=1).T
        return -torch.cdist(query_z, centres).pow(2)


class MatchingNet(MetricMethod):
    """Matching Networks: p(y | query) = sum of attention weights over that class's supports."""

    name = "MatchingNet"

    def __init__(self, encoder: nn.Module, temperature: float = 0.1, **kwargs):
        self.temperature = temperature
        super().__init__(encoder, **kwargs)

    def attention(self, support_z, query_z) -> torch.Tensor:
        """Softmax over the support set of cosine similarities / temperature: ``[n_query, n_support]``."""
        from metaecom.methods.memory import attention_weights  # memory.py imports this module

        return attention_weights(query_z, support_z, self.temperature)

    def probabilities(self, support_z, support_y, query_z, n_way):
        """An attention read of the memory (support embeddings -> one-hot labels) with the queries."""
        from metaecom.methods.memory import attention_read

        return attention_read(query_z, support_z, F.one_hot(support_y, n_way).to(query_z.dtype), self.temperature)

    def scores(self, support_z, support_y, query_z, n_way):
        return torch.log(self.probabilities(support_z, support_y, query_z, n_way).clamp_min(1e-12))


class RelationNet(MetricMethod):
    """Relation Networks: a relation module scores (class feature, query) pairs in [0, 1]."""

    name = "RelationNet"

    def __init__(self, encoder: nn.Module, embedding_dim: int, hidden: int = 64, **kwargs):
        self.relation = nn.Sequential(nn.Linear(2 * embedding_dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        super().__init__(encoder, **kwargs)

    def modules(self):
        return [self.encoder, self.relation]

    def relations(self, support_z, support_y, query_z, n_way) -> torch.Tensor:
        """Relation score of every (query, class) pair, ``[n_query, n_way]`` in (0, 1)."""
        one_hot = F.one_hot(support_y, n_way).to(support_z.dtype)
        class_features = one_hot.T @ support_z  # summed over the shots, as in the paper
        pairs = torch.cat([class_features.unsqueeze(0).expand(len(query_z), -1, -1),
                           query_z.unsqueeze(1).expand(-1, n_way, -1)], dim=2)
        return torch.sigmoid(self.relation(pairs).squeeze(2))

    def scores(self, support_z, support_y, query_z, n_way):
        return self.relations(support_z, support_y, query_z, n_way)

    def loss(self, support_z, support_y, query_z, query_y, n_way):
        target = F.one_hot(query_y, n_way).to(query_z.dtype)
        return F.mse_loss(self.relations(support_z, support_y, query_z, n_way), target)

    def probabilities(self, support_z, support_y, query_z, n_way):
        r = self.relations(support_z, support_y, query_z, n_way)
        return r / r.sum(dim=1, keepdim=True)


class SiameseNet(MetricMethod):
    """Siamese verification network: p(same) = sigmoid(b - softplus(w) · |f(a) - f(b)|)."""

    name = "SiameseNet"

    def __init__(self, encoder: nn.Module, embedding_dim: int, **kwargs):
        self.verifier = nn.Linear(embedding_dim, 1)
        super().__init__(encoder, **kwargs)

    def modules(self):
        return [self.encoder, self.verifier]

    def pair_logits(self, support_z, query_z) -> torch.Tensor:
        """Logit of p(same class) for every (query, support) pair: ``[n_query, n_support]``.

        The per-dimension weights pass through softplus, so they stay positive and a
        larger distance always means "less likely the same class".
        """
        distance = (query_z.unsqueeze(1) - support_z.unsqueeze(0)).abs()
        return self.verifier.bias - distance @ F.softplus(self.verifier.weight).squeeze(0)

    def loss(self, support_z, support_y, query_z, query_y, n_way):
        same = (query_y.unsqueeze(1) == support_y.unsqueeze(0)).to(query_z.dtype)
        logits = self.pair_logits(support_z, query_z)
        # weight positives so same- and different-class pairs count equally
        weight = torch.where(same > 0, (n_way - 1.0), 1.0)
        return F.binary_cross_entropy_with_logits(logits, same, weight=weight)

    def scores(self, support_z, support_y, query_z, n_way):
        logits = self.pair_logits(support_z, query_z)
        mask = F.one_hot(support_y, n_way).T.bool()  # [n_way, n_support]
        best = logits.unsqueeze(1).masked_fill(~mask.unsqueeze(0), float("-inf"))
        return best.max(dim=2).values  # best match within each class


class NearestNeighbour(Method):
    """The untrained baseline of every metric method: label a query with the class of its
    most similar support example (cosine similarity of the features as given, or of
    ``encoder``'s embeddings). Probabilities are one-hot on the winning class.
    """

    name = "nearest neighbour"

    def __init__(self, encoder: nn.Module | None = None):
        self.encoder = encoder

    def _embed(self, x: np.ndarray) -> torch.Tensor:
        z = torch.as_tensor(x, dtype=torch.float32)
        if self.encoder is not None:
            self.encoder.eval()
            with torch.no_grad():
                z = self.encoder(z.to(next(self.encoder.parameters()).device)).cpu()
        return F.normalize(z.flatten(start_dim=1), dim=1)

    def adapt(self, support_x, support_y) -> Adapted:
        x, y, n = check_support(support_x, support_y)
        return _NearestAdapted(self, self._embed(x), torch.as_tensor(y), n, x.shape[1:])


class _NearestAdapted(Adapted):
    def __init__(self, method: NearestNeighbour, support_z, support_y, n_classes: int, feature_shape):
        self.method, self.support_z, self.support_y = method, support_z, support_y
        self.n_classes, self.feature_shape = n_classes, tuple(feature_shape)

    def _proba(self, x):
        nearest = (self.method._embed(x) @ self.support_z.T).argmax(dim=1)
        return F.one_hot(self.support_y[nearest], self.n_classes).to(torch.float32).numpy()
