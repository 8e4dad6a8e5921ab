"""Conditional Neural Processes (Garnelo et al. 2018): adaptation as one forward pass.

Encode each support pair, average the codes into one task representation ``r`` (the
mean makes the prediction independent of the order of the support set), and decode a
query given ``r``. :class:`CNP` meta-trains a :class:`~metaecom.models.CNPNetwork`, which
predicts a Gaussian (mean and bounded standard deviation ``0.1 + 0.9 softplus``) for
regression tasks, on the Gaussian negative log-likelihood (:func:`gaussian_nll`).
:class:`CNPClassifier` forms one representation per class and scores each (query,
class) pair, trained with the episodic loop of the metric methods
(:class:`~metaecom.methods.metric.MetricMethod`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from metaecom.methods.base import Method, RegressionAdapted, to_numpy
from metaecom.methods.metric import MetricMethod, prototypes
from metaecom.models import CNPNetwork, mlp
from metaecom.training import MetaLearner

__all__ = ["gaussian_nll", "CNP", "CNPAdapted", "CNPClassifier"]


def gaussian_nll(mean: torch.Tensor, sigma: torch.Tensor, target: torch.Tensor,
                 mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean negative log-likelihood of ``target`` under ``Normal(mean, sigma)`` (over the entries
    where ``mask`` is 1, when given)."""
    nll = torch.log(sigma) + 0.5 * ((target - mean) / sigma) ** 2 + 0.5 * math.log(2 * math.pi)
    if mask is None:
        return nll.mean()
    return (nll * mask).sum() / mask.sum().clamp_min(1)



class CNP(MetaLearner, Method):
    """Meta-train a :class:`~metaecom.models.CNPNetwork` on regression tasks; adapt = encode the support set.

    A task is ``(support_x [n, d], support_y [n], query_x [m, d], query_y [m])``. Each
    meta-step averages the Gaussian negative log-likelihood over ``tasks_per_step`` tasks
    (padded to equal sizes with masks) and takes an Adam step (``meta_lr``). As in the
    paper the targets are the support *and* query points (``predict_support=True``);
    ``False`` scores the query only. Classification has its own class, :class:`CNPClassifier`.
    """

    name = "CNP"

    def __init__(self, model: CNPNetwork, meta_lr: float = 1e-3, tasks_per_step: int = 16, seed: int = 0,
                 predict_support: bool = True, device=None):
        if not isinstance(model, CNPNetwork):
            raise ValueError(f"model must be a CNPNetwork, got {type(model).__name__}")
        self.model = model
        self.predict_support = bool(predict_support)
        self._start_training(meta_lr, tasks_per_step, seed, device)
        self.model.to(self.device)

    def modules(self) -> list[nn.Module]:
        return [self.model]

    def _x(self, x, what: str, allow_empty: bool) -> torch.Tensor:
        x = to_numpy(x)
        if x.ndim != 2 or x.shape[1] != self.model.x_dim:
            raise ValueError(f"{what} must be [examples, {self.model.x_dim}] (the CNP's x_dim), got shape {x.shape}")
        if len(x) == 0 and not allow_empty:
            raise ValueError(f"{what} is empty")
        return torch.as_tensor(x, dtype=torch.float32, device=self.device)

    def _y(self, y, n: int, what: str) -> torch.Tensor:
        y = to_numpy(y)
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

    def meta_loss(self, tasks) -> torch.Tensor:
        """Mean Gaussian negative log-likelihood over a list of tasks (differentiable)."""
        if len(tasks) == 0:
            raise ValueError("meta_loss needs at least one task")
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

    def adapt(self, support_x, support_y) -> "CNPAdapted":
        """Encode the support set ``[n, x_dim]``, ``[n]`` (``n = 0`` allowed: the prior) into ``r``."""
        x = self._x(support_x, "support_x", allow_empty=True)
        y = self._y(support_y, len(x), "support_y")
        self.model.eval()
        with torch.no_grad():
            r = self.model.representation(x.unsqueeze(0), y.unsqueeze(0))
        return CNPAdapted(self, r)


class CNPAdapted(RegressionAdapted):
    """A CNP conditioned on one support set: ``predict(x)`` -> mean ``[n]``,
    ``predict_distribution(x)`` -> ``(mean, sigma)``, NumPy in and out."""

    def __init__(self, method: CNP, r: torch.Tensor):
        self.method, self.r, self.feature_shape = method, r, (method.model.x_dim,)

    def predict_distribution(self, query_x) -> tuple[np.ndarray, np.ndarray]:
        """Predictive mean and standard deviation ``[n]`` each at ``query_x [n, x_dim]``."""
        x = self.method._x(query_x, "query_x", allow_empty=True)
        with torch.no_grad():
            mean, sigma = self.method.model.decode(self.r, x.unsqueeze(0))
        return mean[0].cpu().numpy(), sigma[0].cpu().numpy()

    def _values(self, x) -> np.ndarray:
        return self.predict_distribution(x)[0]

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
    the query set); ``n_way``, ``k_shot``, ``n_query``, ``meta_steps``, ``meta_lr``, ``seed``,
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
        self.aggregator = mlp([embedding_dim, hidden, r_dim])
        width = embedding_dim + r_dim if pair_features == "concat" else 4 * r_dim
        self.decoder = mlp([width, hidden, 1])
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
