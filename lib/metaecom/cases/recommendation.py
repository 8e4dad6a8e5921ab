"""A MeLU-style cold-start recommender and the baselines it must beat.

MeLU (Lee et al., KDD 2019) predicts a user's rating of an item from *features* of both
(see :mod:`metaecom.cases.coldstart`): each categorical feature has an embedding, the
embeddings are concatenated, and a small MLP — the *decision layers* — maps them to a
rating. Meta-training is MAML with *local updates of the decision layers only*: for a
user, a few gradient steps on the user's support ratings personalise the decision layers;
the embeddings are shared by everybody and learned by the outer loop. In this package
that is :class:`metaecom.methods.ANIL` on the network :class:`metaecom.models.MeLU`, with
``head_names = model.decision_parameter_names()`` and ``loss_fn=squared_error`` — no
separate meta-learning code.

Baselines, fitted on the warm (meta-training) ratings and given each test user's support
ratings at test time:

- :class:`~metaecom.baselines.ItemMean` — the item's mean rating (shrunk towards the
  global mean); a new item gets the global mean. ``user_offset=True`` adds the user's mean
  residual on the support set, the cheapest possible personalisation. It lives with the
  other baselines in :mod:`metaecom.baselines` and is imported here for the chapter.
- :class:`BiasedMF` — biased matrix factorisation ``mu + b_u + b_i + p_u . q_i`` trained on
  the warm ratings; a new user is *folded in* by ridge regression of their support
  ratings on the fixed item factors; a new item has ``b_i = 0, q_i = 0``.
- The *global model*: the same :class:`~metaecom.models.MeLU` network trained on all warm ratings at once
  (:func:`fit_global`), and that model *fine-tuned* on each user's support set with the
  same local update as MeLU (an ANIL object built around it, without meta-training).

:func:`evaluate_episodes` scores any predictor user by user with
:func:`metaecom.ranking.user_metrics`.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from metaecom.baselines import ItemMean  # noqa: F401  (one implementation, in metaecom.baselines)
from metaecom.progress import progress
from metaecom.ranking import user_metrics
from metaecom.tasks.episodes import Episode
from metaecom.training import meta_train_with_early_stopping


# Lee et al. (2019), Table 2, MovieLens columns: (MAE, nDCG@1, nDCG@3) per scenario for MeLU
# with one (MeLU-1) and five (MeLU-5) local updates. Their MovieLens is ML-1M with MPAA
# rating, director and actors added from IMDb, split by release year and rating time.
PUBLISHED_MELU = {
    "MeLU-1": {"warm": (0.7661, 0.8866, 0.8904), "new_user": (0.7884, 0.8799, 0.8810),
               "new_item": (0.9361, 0.7715, 0.7990), "new_user_new_item": (0.9299, 0.7760, 0.8011)},
    "MeLU-5": {"warm": (0.7567, 0.8870, 0.8919), "new_user": (0.7854, 0.8803, 0.8812),
               "new_item": (0.9275, 0.7697, 0.8005), "new_user_new_item": (0.9235, 0.7752, 0.8008)},
}


def fit_global(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int = 10, batch_size: int = 256,
               lr: float = 1e-3, seed: int = 0, desc: str | None = None) -> list[float]:
    """Train ``model`` on all rows ``(x, y)`` with Adam and mean squared error, in
    shuffled mini-batches; returns the mean training loss of each epoch."""
    x_t = torch.as_tensor(np.asarray(x, dtype=np.float32))
    y_t = torch.as_tensor(np.asarray(y, dtype=np.float32)).reshape(-1, 1)
    if len(x_t) != len(y_t) or len(x_t) == 0:
        raise ValueError(f"x and y must have the same, non-zero number of rows; got {len(x_t)} and {len(y_t)}")
    device = next(model.parameters()).device
    x_t, y_t = x_t.to(device), y_t.to(device)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    model.train()
    for epoch in progress(range(epochs), desc=desc, disable=desc is None):
        order = torch.randperm(len(x_t), generator=generator).to(device)
        total = 0.0
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            loss = nn.functional.mse_loss(model(x_t[batch]), y_t[batch])
            if not torch.isfinite(loss):
                raise FloatingPointError(f"global training loss became {loss.item()} in epoch {epoch + 1}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        losses.append(total / len(x_t))
    return losses


class BiasedMF:
    """Biased matrix factorisation ``mu + b_u + b_i + p_u . q_i`` with new users folded in.

    :meth:`fit` trains on warm ``(user, item, rating)`` triples with full-batch Adam and an
    L2 penalty ``weight_decay`` on biases and factors. :meth:`predict` treats the user as
    new: it solves the ridge problem for ``(b_u, p_u)`` from the support ratings with the
    item factors fixed (penalty ``fold_in_l2``), so a warm user and a new user are scored
    the same way, from their support set only. Items not seen in training have
    ``b_i = 0`` and ``q_i = 0``.
    """

    def __init__(self, factors: int = 16, epochs: int = 300, lr: float = 0.05, weight_decay: float = 0.05,
                 fold_in_l2: float = 5.0, seed: int = 0):
        self.factors, self.epochs, self.lr = factors, epochs, lr
        self.weight_decay, self.fold_in_l2, self.seed = weight_decay, fold_in_l2, seed

    def fit(self, user_ids, item_ids, ratings) -> "BiasedMF":
        users, user_index = np.unique(np.asarray(user_ids), return_inverse=True)
        items, item_index = np.unique(np.asarray(item_ids), return_inverse=True)
        r = torch.as_tensor(np.asarray(ratings, dtype=np.float32))
        if len(r) == 0:
            raise ValueError("BiasedMF needs at least one training rating")
        torch.manual_seed(self.seed)
        mu = r.mean()
        b_u, b_i = torch.zeros(len(users), requires_grad=True), torch.zeros(len(items), requires_grad=True)
        p = (0.1 * torch.randn(len(users), self.factors)).requires_grad_(True)
        q = (0.1 * torch.randn(len(items), self.factors)).requires_grad_(True)
        u, i = torch.as_tensor(user_index), torch.as_tensor(item_index)
        optimizer = torch.optim.Adam([b_u, b_i, p, q], lr=self.lr)
        self.losses = []
        for _ in range(self.epochs):
            prediction = mu + b_u[u] + b_i[i] + (p[u] * q[i]).sum(1)
            mse = ((prediction - r) ** 2).mean()
            penalty = (b_u[u] ** 2 + b_i[i] ** 2 + (p[u] ** 2).sum(1) + (q[i] ** 2).sum(1)).mean()
            loss = mse + self.weight_decay * penalty
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            self.losses.append(mse.item())
        self.mu = float(mu)
        self.item_bias = dict(zip(items.tolist(), b_i.detach().numpy()))
        self.item_factors = dict(zip(items.tolist(), q.detach().numpy()))
        return self

    def _items(self, item_ids) -> tuple[np.ndarray, np.ndarray]:
        zero = np.zeros(self.factors, dtype=np.float32)
        ids = np.asarray(item_ids).tolist()
        return (np.array([self.item_bias.get(i, 0.0) for i in ids]),
                np.stack([self.item_factors.get(i, zero) for i in ids]) if ids else np.zeros((0, self.factors)))

    def predict(self, support_items, support_ratings, query_items) -> np.ndarray:
        bias_s, factors_s = self._items(support_items)
        design = np.hstack([np.ones((len(bias_s), 1)), factors_s])
        target = np.asarray(support_ratings, dtype=float) - self.mu - bias_s
        solution = np.linalg.solve(design.T @ design + self.fold_in_l2 * np.eye(design.shape[1]), design.T @ target)
        bias_q, factors_q = self._items(query_items)
        return self.mu + bias_q + solution[0] + factors_q @ solution[1:]


def truncate_support(episodes: Sequence[Episode], k: int, seed: int = 0) -> list[Episode]:
    """Keep ``k`` support ratings (chosen at random) of each user; users with fewer than
    ``k`` support ratings are *left out* (the caller reports how many remain)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    rng = np.random.default_rng(seed)
    kept = []
    for episode in episodes:
        if len(episode.support) < k:
            continue
        pick = np.sort(rng.choice(len(episode.support), size=k, replace=False))
        kept.append(Episode(support=episode.support[pick], query=episode.query, support_y=episode.support_y[pick],
                            query_y=episode.query_y, task=episode.task))
    return kept


def evaluate_episodes(predict: Callable[[Episode], np.ndarray], episodes: Sequence[Episode],
                      ks=(1, 3), desc: str | None = None) -> pd.DataFrame:
    """Score ``predict(episode) -> query predictions`` on every episode (one user each):
    one row per user with ``user``, ``n_support``, MAE, RMSE and nDCG@k."""
    if len(episodes) == 0:
        raise ValueError("no episodes to evaluate")
    rows = []
    for episode in progress(episodes, desc=desc, disable=desc is None):
        predicted = np.asarray(predict(episode), dtype=float)
        rows.append({"user": episode.task, "n_support": len(episode.support),
                     **user_metrics(predicted, episode.query_y, ks)})
    return pd.DataFrame(rows)
