"""Reptile (Nichol et al. 2018): meta-learning an initialisation with no second-order
terms and no query loss.

Train a copy of the weights on each task by ``inner_steps`` steps of SGD or Adam, then
move the initialisation towards the result, ``θ ← θ + ε · mean_tasks(φ_task − θ)``. As in
the paper, a task's support *and* query examples are pooled for this inner training (the
query set is not needed for a held-out loss); an inner Adam (β1 = 0 as in the paper)
starts fresh for every task. At test time only the support set is used.
"""

from __future__ import annotations

import torch
from torch import nn

from metaecom.checks import check_count
from metaecom.methods.functional import functional_forward
from metaecom.methods.gradient import GradientMethod

__all__ = ["Reptile"]


class Reptile(GradientMethod):
    """Reptile (Nichol et al. 2018): ``θ ← θ + ε · mean_tasks(φ_task − θ)``, φ trained from θ on each task.

    ``Reptile(model, n_way=5, k_shot=1, n_query=15, inner_steps=5, inner_lr=1e-3, meta_lr=1.0,
    inner_optimizer="adam", inner_batch=None, test_inner_batch=None, tasks_per_step=4,
    meta_steps=1000, seed=0, device=None, test_inner_steps=None, loss_fn=cross_entropy,
    head_names=None)``

    The inner training uses the task's support and query examples pooled, with
    ``inner_optimizer`` ``"adam"`` (β1 = 0, β2 = 0.999, fresh per task; the paper's choice)
    or ``"sgd"``. Each inner step uses the whole pool (``inner_batch=None``) or, as in the
    paper, a minibatch of ``inner_batch`` examples: the pool is shuffled and cut into
    consecutive minibatches, reshuffled when used up, so 5 steps of 10 on a pool of 50
    see every example once. ``test_inner_batch`` does the same for the support set at test
    time (default: the whole support set). ``meta_lr`` is the outer step size ε (the
    paper anneals it linearly to zero; here it is constant unless the caller changes
    ``meta_lr`` between calls). ``history`` records the mean pooled loss after the inner
    training; :meth:`meta_gradient` returns the update direction ``θ − mean(φ)`` (not the
    gradient of any loss). At test time the inner training sees the support set only.
    """

    name = "Reptile"

    def __init__(self, model: nn.Module, n_way: int = 5, k_shot: int = 1, n_query: int = 15, inner_steps: int = 5,
                 inner_lr: float = 1e-3, meta_lr: float = 1.0, inner_optimizer: str = "adam",
                 inner_batch: int | None = None, test_inner_batch: int | None = None, **kwargs):
        if inner_optimizer not in ("adam", "sgd"):
            raise ValueError(f"inner_optimizer must be 'adam' or 'sgd', got {inner_optimizer!r}")
        if kwargs.get("first_order") is False:
            raise ValueError("Reptile is first-order by construction; do not pass first_order=False")
        kwargs.pop("first_order", None)
        self.inner_optimizer = inner_optimizer
        # SGD steps can be resumed; Adam's moments restart with every call
        self.resumable_adaptation = inner_optimizer == "sgd"
        if (inner_batch is not None or test_inner_batch is not None) and inner_optimizer != "adam":
            raise ValueError("inner_batch and test_inner_batch need inner_optimizer='adam'")
        self.inner_batch = None if inner_batch is None else check_count("inner_batch", inner_batch, 1)
        self.test_inner_batch = None if test_inner_batch is None else check_count("test_inner_batch",
                                                                                   test_inner_batch, 1)
        self._batch_rng = torch.Generator().manual_seed(kwargs.get("seed", 0))
        super().__init__(model, n_way=n_way, k_shot=k_shot, n_query=n_query, inner_steps=inner_steps,
                         inner_lr=inner_lr, meta_lr=meta_lr, first_order=True, **kwargs)
        if self.shared_head:
            raise ValueError("Reptile moves the initialisation towards each task's weights, which with a "
                             "SharedHead have another shape per task; use MAML, FOMAML or ANIL")

    def _adapt(self, params, x, y, steps, first_order=True, batch: int | None = None):
        if self.inner_optimizer == "sgd":
            return super()._adapt(params, x, y, steps, first_order=True)
        return self._adam(params, x, y, steps, batch)

    def _test_adapt(self, params, x, y, steps):
        """At test time the support set only, in minibatches of ``test_inner_batch``."""
        return self._adapt(params, x, y, steps, batch=self.test_inner_batch)

    def _minibatches(self, n: int, batch: int | None):
        """Index tensors of consecutive minibatches of a shuffled pool of ``n``, reshuffled when used up."""
        if batch is None or batch >= n:
            while True:
                yield None
        while True:
            order = torch.randperm(n, generator=self._batch_rng)
            for start in range(0, n - batch + 1, batch):
                yield order[start:start + batch]

    def _adam(self, params: dict, x, y, steps: int, batch: int | None = None, beta2: float = 0.999,
              eps: float = 1e-8) -> dict:
        """Adam with β1 = 0 (RMSprop with bias correction), functional, no graph; full-batch
        or on minibatches of ``batch`` examples."""
        names = list(params) if self.adapt_names() is None else list(self.adapt_names())
        adapted = {n: p.detach() for n, p in params.items()}
        second = {n: torch.zeros_like(adapted[n]) for n in names}
        buffers = self._buffers()
        batches = self._minibatches(len(x), batch)
        for t in range(1, steps + 1):
            for n in names:
                adapted[n].requires_grad_(True)
            rows = next(batches)
            xb, yb = (x, y) if rows is None else (x[rows.to(x.device)], y[rows.to(y.device)])
            loss = self.loss_fn(functional_forward(self.model, adapted, buffers, xb), yb)
            grads = torch.autograd.grad(loss, [adapted[n] for n in names], allow_unused=True)
            with torch.no_grad():
                for n, g in zip(names, grads):
                    if g is None:
                        continue
                    second[n].mul_(beta2).addcmul_(g, g, value=1 - beta2)
                    denom = (second[n] / (1 - beta2**t)).sqrt().add_(eps)
                    adapted[n] = (adapted[n] - self.inner_lr * g / denom).detach()
        return {n: p.detach() for n, p in adapted.items()}

    def _pooled(self, task):
        sx, sy, qx, qy = self._task_tensors(task)
        return torch.cat([sx, qx]), torch.cat([sy, qy])

    def _task_weights(self, tasks) -> tuple[list[dict], float]:
        """The weights trained on each task's pooled data, and their mean final pooled loss."""
        theta = {n: p.detach().requires_grad_(True) for n, p in self.model.named_parameters()}
        results, total = [], 0.0
        with torch.enable_grad():
            for task in tasks:
                x, y = self._pooled(task)
                phi = {n: p.detach() for n, p in self._adapt(theta, x, y, self.inner_steps,
                                                             batch=self.inner_batch).items()}
                with torch.no_grad():
                    total += self.loss_fn(functional_forward(self.model, phi, self._buffers(), x), y).item()
                results.append(phi)
        return results, total / len(tasks)

    def meta_loss(self, tasks):
        """Mean over ``tasks`` of the pooled loss after the inner training (a number, no graph)."""
        return torch.tensor(self._task_weights(tasks)[1])

    def meta_gradient(self, tasks) -> dict[str, torch.Tensor]:
        """The Reptile direction ``θ − mean_tasks(φ_task)``; the update is ``θ ← θ − ε · direction``."""
        if len(tasks) == 0:
            raise ValueError("meta_gradient needs at least one task")
        phis, _ = self._task_weights(tasks)
        return {n: (p.detach() - torch.stack([phi[n] for phi in phis]).mean(dim=0))
                for n, p in self.model.named_parameters()}

    def meta_step(self, tasks) -> float:
        """``θ ← θ + ε · mean_tasks(φ_task − θ)``; returns and records the mean pooled loss."""
        if len(tasks) == 0:
            raise ValueError("meta_step needs at least one task")
        phis, value = self._task_weights(tasks)
        self.check_finite(value)
        if not all(torch.isfinite(phi[n]).all() for phi in phis for n in phi):
            self.check_finite(float("nan"), "produced non-finite weights:")
        with torch.no_grad():
            for n, p in self.model.named_parameters():
                p.add_(torch.stack([phi[n] for phi in phis]).mean(dim=0) - p, alpha=self.meta_lr)
        self.history.append(value)
        self.tasks_seen += len(tasks)
        return value
