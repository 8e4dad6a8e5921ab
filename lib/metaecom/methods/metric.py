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

:class:`NearestNeighbour` and :class:`FrozenPrototypes` are the untrained baselines they
refine: the class of the most similar support example, and ProtoNet's rule (nearest
class mean) on fixed features, with no meta-training.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from metaecom.checks import check_count
from metaecom.methods.attention import attention_read, attention_weights
from metaecom.methods.base import Adapted, Method, as_tensor, check_support
from metaecom.tasks.episodes import FewShotSampler, episode_tasks
from metaecom.training import MetaLearner


def prototypes(support_z: torch.Tensor, support_y: torch.Tensor, n_way: int) -> torch.Tensor:
    """Mean embedding of each class: ``[n_way, dim]``."""
    one_hot = F.one_hot(support_y, n_way).to(support_z.dtype)
    return (one_hot.T @ support_z) / one_hot.sum(dim=0).unsqueeze(1)


DISTANCES = ("euclidean", "cosine")


def prototype_scores(support_z: torch.Tensor, support_y: torch.Tensor, query_z: torch.Tensor, n_way: int,
                     distance: str = "euclidean", scale: float = 10.0) -> torch.Tensor:
    """ProtoNet's class scores ``[n_query, n_way]``: minus the squared Euclidean distance of
    each query to each class's prototype, or (``distance="cosine"``) ``scale`` times their
    cosine similarity."""
    centres = prototypes(support_z, support_y, n_way)
    if distance == "cosine":
        return scale * F.normalize(query_z, dim=1) @ F.normalize(centres, dim=1).T
    return -torch.cdist(query_z, centres).pow(2)


def _check_distance(distance: str) -> str:
    if distance not in DISTANCES:
        raise ValueError(f"distance must be 'euclidean' or 'cosine', got {distance!r}")
    return distance


class MetricMethod(MetaLearner, Method):
    """Episodic meta-training and forward-pass adaptation shared by the metric-based methods.

    Subclasses define :meth:`scores` (higher = more likely, one column per class) and may
    override :meth:`loss`. ``encoder`` maps a batch of inputs to embeddings ``[batch, dim]``.
    Each meta-step draws ``tasks_per_step`` N-way K-shot episodes (one, as in the papers),
    embeds support and query together and takes an Adam step (``meta_lr``) on the query
    loss. Each :meth:`meta_train` call starts a fresh Adam; with ``meta_lr_halving_every``
    the learning rate halves after every that many meta-steps (Snell et al.'s schedule).
    """

    fresh_optimizer_per_call = True

    def __init__(self, encoder: nn.Module, n_way: int = 5, k_shot: int = 1, n_query: int = 15,
                 meta_steps: int = 1000, meta_lr: float = 1e-3, meta_lr_halving_every: int | None = None,
                 tasks_per_step: int = 1, seed: int = 0, device=None):
        if meta_lr_halving_every is not None and meta_lr_halving_every < 1:
            raise ValueError("meta_lr_halving_every must be a positive number of meta-steps or None, "
                             f"got {meta_lr_halving_every}")
        self.encoder = encoder
        self.n_way = check_count("n_way", n_way, 1)
        self.k_shot = check_count("k_shot", k_shot, 1)
        self.n_query = check_count("n_query", n_query, 1)
        self.meta_steps = check_count("meta_steps", meta_steps, 0)
        self.meta_lr_halving_every = meta_lr_halving_every
        self._start_training(meta_lr, tasks_per_step, seed, device)
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

    def make_optimizer(self) -> torch.optim.Optimizer:
        optimizer = super().make_optimizer()
        self._schedule = (torch.optim.lr_scheduler.StepLR(optimizer, self.meta_lr_halving_every, gamma=0.5)
                          if self.meta_lr_halving_every else None)
        return optimizer

    def _tensor(self, x) -> torch.Tensor:
        return as_tensor(x, device=self.device)

    def meta_loss(self, tasks) -> torch.Tensor:
        """Mean query loss over ``tasks``, support and query embedded in one pass per task."""
        total = 0.0
        for support_x, support_y, query_x, query_y in tasks:
            z = self.encoder(self._tensor(np.concatenate([support_x, query_x])))
            support_z, query_z = z[: len(support_x)], z[len(support_x):]
            total = total + self.loss(support_z, torch.as_tensor(support_y, device=self.device), query_z,
                                      torch.as_tensor(query_y, device=self.device), self.n_way)
        return total / len(tasks)

    def meta_train(self, x, y, meta_steps: int | None = None, desc: str | None = None,
                   max_seconds: float | None = None) -> "MetricMethod":
        """Train for ``meta_steps`` meta-steps (default: the constructor's) on N-way K-shot
        episodes drawn from the classes in ``y``.

        ``max_seconds`` stops training earlier once that much wall time has passed (a
        time budget, as in the reproduction runs); ``len(self.history)`` then says how
        many meta-steps were trained. Calling it again continues training on new episodes.
        """
        y = np.asarray(y)
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} rows but y has {len(y)}")
        # a later call continues with fresh episodes instead of replaying the first call's
        seed = self.seed if not self.history else [self.seed, len(self.history)]
        sampler = FewShotSampler(y, self.n_way, self.k_shot, self.n_query, seed=seed)
        return self._run(lambda: episode_tasks(x, sampler, self.tasks_per_step),
                         self.meta_steps if meta_steps is None else meta_steps, desc, max_seconds)

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
    (``distance="cosine"``: ``scale`` times the cosine similarity instead).

    The rule without meta-training, on fixed features, is :class:`FrozenPrototypes` (not
    ``ProtoNet(nn.Identity(), ...)``, whose ``n_way`` and training settings mean nothing).
    """

    name = "ProtoNet"

    def __init__(self, encoder: nn.Module, distance: str = "euclidean", scale: float = 10.0, **kwargs):
        self.distance, self.scale = _check_distance(distance), scale
        super().__init__(encoder, **kwargs)

    def scores(self, support_z, support_y, query_z, n_way):
        return prototype_scores(support_z, support_y, query_z, n_way, self.distance, self.scale)


class MatchingNet(MetricMethod):
    """Matching Networks: p(y | query) = sum of attention weights over that class's supports."""

    name = "MatchingNet"

    def __init__(self, encoder: nn.Module, temperature: float = 0.1, **kwargs):
        self.temperature = temperature
        super().__init__(encoder, **kwargs)

    def attention(self, support_z, query_z) -> torch.Tensor:
        """Softmax over the support set of cosine similarities / temperature: ``[n_query, n_support]``."""
        return attention_weights(query_z, support_z, self.temperature)

    def probabilities(self, support_z, support_y, query_z, n_way):
        """An attention read of the memory (support embeddings -> one-hot labels) with the queries."""
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


class FrozenPrototypes(Method):
    """ProtoNet's rule on fixed features, with no meta-training: a query's class
    probabilities are the softmax of its scores against each class's mean support
    embedding (:func:`prototype_scores`: minus squared Euclidean distance, or ``scale``
    times the cosine similarity with ``distance="cosine"``).

    The features are the inputs themselves (``encoder=None``, e.g. sentence embeddings) or
    the output of a fixed ``encoder`` (used in eval mode, never trained). It is what a
    meta-trained :class:`ProtoNet` has to beat; its table label ``name`` is
    ``"prototypes, frozen"`` unless ``name=`` says otherwise. The number of classes comes
    from each support set.
    """

    def __init__(self, encoder: nn.Module | None = None, distance: str = "euclidean", scale: float = 10.0,
                 name: str | None = None):
        self.encoder, self.distance, self.scale = encoder, _check_distance(distance), scale
        self.name = name or "prototypes, frozen"

    def _embed(self, x: np.ndarray) -> torch.Tensor:
        z = torch.as_tensor(x, dtype=torch.float32)
        if self.encoder is not None:
            self.encoder.eval()
            first = next(self.encoder.parameters(), None)
            with torch.no_grad():
                z = self.encoder(z if first is None else z.to(first.device)).cpu()
        return z

    def adapt(self, support_x, support_y) -> Adapted:
        x, y, n = check_support(support_x, support_y)
        return _PrototypesAdapted(self, self._embed(x), torch.as_tensor(y), n, x.shape[1:])


class _PrototypesAdapted(Adapted):
    def __init__(self, method: FrozenPrototypes, support_z, support_y, n_classes: int, feature_shape):
        self.method, self.support_z, self.support_y = method, support_z, support_y
        self.n_classes, self.feature_shape = n_classes, tuple(feature_shape)

    def _proba(self, x):
        m = self.method
        scores = prototype_scores(self.support_z, self.support_y, m._embed(x), self.n_classes, m.distance, m.scale)
        return torch.softmax(scores, dim=1).numpy()
