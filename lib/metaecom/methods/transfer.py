"""Transfer learning: the baselines every meta-learner in this book has to beat.

None of these methods learns *how to adapt*. They learn a representation (or take one
from a large pretrained model) and then fit the new task on top of it with ordinary
supervised learning. All work on fixed input features (e.g. sentence embeddings from
:class:`metaecom.encoder.SentenceEncoder`) with a small MLP, ``features -> hidden -> classes``.

- :class:`Scratch` -- a fresh MLP trained on the support set only (no transfer at all).
- :func:`pretrain` -- train the MLP on the meta-training classes (the *source* task).
- :class:`FineTune` -- start from the pretrained MLP, replace its head, train all layers
  (``layers="all"``) or the new head only (``layers="head"``) on the support set.
- :class:`LogisticRegressionHead` -- logistic regression on frozen features: on the input
  features themselves (the large pretrained model's embeddings; tables call it "logistic
  regression"), or, with ``body``, on the hidden features of a network pretrained on the
  source classes ("feature-based transfer"). ``LinearProbe`` is its former name, kept as
  an alias until the chapters use the new one.
- :class:`Ensemble` -- average the class probabilities of several adapted methods.
- :class:`ParameterAveraging` -- fine-tune several copies from the same pretrained
  weights, then average their *weights* into one model ("model soup").
- :class:`Distillation` -- a teacher (any method) labels the support set and an unlabeled
  pool of the new task's inputs with soft probabilities; a small student learns from them.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn
from torch.nn import functional as F

from metaecom.methods.base import Adapted, Method, as_tensor, check_query, check_support
from metaecom.models import MLP


def train_classifier(model: nn.Module, x, y, steps: int, lr: float, parameters=None, batch_size: int | None = None,
                     seed: int = 0, soft_targets=None, temperature: float = 1.0, soft_weight: float = 0.0,
                     soft_x=None) -> nn.Module:
    """Adam on cross-entropy (plus, optionally, a distillation term); returns ``model``.

    ``parameters`` restricts training to some parameters (e.g. the head). With
    ``soft_targets`` (teacher probabilities for the inputs ``soft_x``) the loss becomes
    ``(1 - w) * CE(labels) + w * T^2 * KL(teacher_T || student_T)``, where ``_T`` means
    probabilities softened by temperature T and w is ``soft_weight``.
    """
    x, y = as_tensor(x), torch.as_tensor(np.asarray(y), dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(parameters if parameters is not None else model.parameters(), lr=lr)
    if soft_targets is not None:
        soft_x = as_tensor(soft_x)
        softened = torch.as_tensor(np.asarray(soft_targets), dtype=torch.float32).clamp_min(1e-8) ** (1 / temperature)
        softened = softened / softened.sum(dim=1, keepdim=True)
    model.train()
    for step in range(steps):
        if batch_size is not None and batch_size < len(x):
            rows = torch.randperm(len(x), generator=generator)[:batch_size]
        else:
            rows = slice(None)
        loss = F.cross_entropy(model(x[rows]), y[rows])
        if soft_targets is not None:
            log_student = F.log_softmax(model(soft_x) / temperature, dim=1)
            distill = F.kl_div(log_student, softened, reduction="batchmean") * temperature**2
            loss = (1 - soft_weight) * loss + soft_weight * distill
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training loss became {loss.item()} at step {step + 1} of {steps}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    model.eval()
    return model


def pretrain(x, y, hidden: int = 256, steps: int = 500, lr: float = 1e-3, batch_size: int = 256, seed: int = 0) -> MLP:
    """Train an MLP on the meta-training (source) classes; labels may be any integers."""
    x = np.asarray(x, dtype=np.float32)
    if len(x) == 0:
        raise ValueError("pretrain needs meta-training examples, got none")
    classes, y = np.unique(np.asarray(y), return_inverse=True)
    torch.manual_seed(seed)
    model = MLP(x.shape[1], hidden, len(classes))
    return train_classifier(model, x, y, steps, lr, batch_size=batch_size, seed=seed)


class _TorchAdapted(Adapted):
    def __init__(self, model: nn.Module, n_features: int, n_classes: int):
        self.model, self.feature_shape, self.n_classes = model, (n_features,), n_classes

    def _proba(self, x):
        with torch.no_grad():
            return torch.softmax(self.model(as_tensor(x)), dim=1).numpy()


class Scratch(Method):
    """An MLP trained from random weights on the support set alone."""

    def __init__(self, hidden: int = 256, steps: int = 100, lr: float = 1e-2, seed: int = 0):
        self.hidden, self.steps, self.lr, self.seed = hidden, steps, lr, seed
        self.name = f"from scratch (MLP {hidden})"

    def adapt(self, support_x, support_y) -> Adapted:
        x, y, n = check_support(support_x, support_y)
        torch.manual_seed(self.seed)
        model = train_classifier(MLP(x.shape[1], self.hidden, n), x, y, self.steps, self.lr, seed=self.seed)
        return _TorchAdapted(model, x.shape[1], n)


class FineTune(Method):
    """Start from a pretrained MLP, put a new head on it, train ``layers`` on the support set."""

    def __init__(self, pretrained: MLP | None = None, layers: str = "all", steps: int = 100, lr: float = 1e-3,
                 head_lr: float = 1e-2, seed: int = 0, batch_size: int | None = None, pretrain_steps: int = 500):
        if layers not in ("all", "head"):
            raise ValueError(f"layers must be 'all' or 'head', got {layers!r}")
        self.pretrained, self.layers, self.steps, self.lr, self.head_lr = pretrained, layers, steps, lr, head_lr
        self.seed, self.batch_size, self.pretrain_steps = seed, batch_size, pretrain_steps
        self.name = "fine-tune all layers" if layers == "all" else "fine-tune last layer"

    def meta_train(self, x, y) -> "FineTune":
        self.pretrained = pretrain(x, y, steps=self.pretrain_steps, seed=self.seed)
        return self

    def _fresh_copy(self, n_classes: int) -> MLP:
        if self.pretrained is None:
            raise RuntimeError(f"{self.name}: call meta_train first, or pass a pretrained model")
        model = copy.deepcopy(self.pretrained)
        torch.manual_seed(self.seed)
        model.head = nn.Linear(model.head.in_features, n_classes)
        return model

    def adapt(self, support_x, support_y) -> Adapted:
        x, y, n = check_support(support_x, support_y)
        model = self._fresh_copy(n)
        expected = model.body[0].in_features
        if x.shape[1] != expected:
            raise ValueError(f"support has {x.shape[1]} features, the pretrained model expects {expected}")
        if self.layers == "head":
            groups = [{"params": model.head.parameters(), "lr": self.head_lr}]
        else:
            groups = [{"params": model.body.parameters(), "lr": self.lr},
                      {"params": model.head.parameters(), "lr": self.head_lr}]
        train_classifier(model, x, y, self.steps, self.lr, parameters=groups, batch_size=self.batch_size,
                         seed=self.seed)
        return _TorchAdapted(model, x.shape[1], n)


class _SklearnAdapted(Adapted):
    def __init__(self, classifier, transform, n_features: int, n_classes: int):
        self.classifier, self.transform, self.n_classes = classifier, transform, n_classes
        self.feature_shape = (n_features,)

    def _proba(self, x):
        return self.classifier.predict_proba(self.transform(x))


class _OneClass:
    """With a single support class there is nothing to separate: probability one."""

    def predict_proba(self, x):
        return np.ones((len(x), 1))


class LogisticRegressionHead(Method):
    """Logistic regression (scikit-learn, L2 penalty ``1/C``) fitted on a task's support set,
    on frozen features: the inputs themselves, or a pretrained ``body``'s output.

    Its ``name`` is the label the book's tables print: ``"logistic regression"``, or
    ``"feature-based transfer"`` with a ``body``; ``name=`` overrides it. (Called a *linear
    probe* in the representation-learning literature; the tables name what is fitted.)
    """

    def __init__(self, body: nn.Module | None = None, C: float = 1.0, name: str | None = None):
        self.body, self.C = body, C
        self.name = name or ("logistic regression" if body is None else "feature-based transfer")

    def _features(self, x: np.ndarray) -> np.ndarray:
        if self.body is None:
            return x
        with torch.no_grad():
            return self.body(as_tensor(x)).numpy()

    def adapt(self, support_x, support_y) -> Adapted:
        x, y, n = check_support(support_x, support_y)
        if n == 1:
            return _SklearnAdapted(_OneClass(), self._features, x.shape[1], 1)
        with warnings.catch_warnings():
            # with one example per class, sklearn warns that the labels "could represent a
            # regression problem"; in few-shot learning that is the normal case
            warnings.filterwarnings("ignore", message="The number of unique classes is greater than 50%")
            classifier = LogisticRegression(C=self.C, max_iter=1000).fit(self._features(x), y)
        return _SklearnAdapted(classifier, self._features, x.shape[1], n)


#: Former name of :class:`LogisticRegressionHead` (deprecated: the chapters and tables call
#: the method "logistic regression"); the same class, kept until the notebooks are updated.
LinearProbe = LogisticRegressionHead


class _AverageAdapted(Adapted):
    def __init__(self, members: list[Adapted]):
        self.members = members
        self.feature_shape, self.n_classes = members[0].feature_shape, members[0].n_classes

    def _proba(self, x):
        return np.mean([member.predict_proba(x) for member in self.members], axis=0)


class Ensemble(Method):
    """Average the predicted probabilities of several methods adapted to the same support set."""

    def __init__(self, members: list[Method], name: str | None = None):
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = members
        self.name = name or "ensemble of " + ", ".join(m.name for m in members)

    def meta_train(self, x, y) -> "Ensemble":
        for member in self.members:
            member.meta_train(x, y)
        return self

    def adapt(self, support_x, support_y) -> Adapted:
        return self.combine([member.adapt(support_x, support_y) for member in self.members])

    @staticmethod
    def combine(adapted: list[Adapted]) -> Adapted:
        """Average already-adapted predictors (saves re-adapting members a chapter has adapted)."""
        if not adapted or len({(a.feature_shape, a.n_classes) for a in adapted}) != 1:
            raise ValueError("combine needs at least one adapted model, all for the same task")
        return _AverageAdapted(adapted)


class ParameterAveraging(Method):
    """Fine-tune ``n_models`` copies (different head initialisations and minibatches) from
    the same pretrained weights, then average their weights into a single model."""

    def __init__(self, pretrained: MLP, n_models: int = 5, steps: int = 100, lr: float = 1e-3, head_lr: float = 1e-2,
                 seed: int = 0):
        if n_models < 1:
            raise ValueError(f"n_models must be >= 1, got {n_models}")
        self.runs = [FineTune(pretrained, "all", steps, lr, head_lr, seed=seed + i) for i in range(n_models)]
        self.name = f"parameter averaging ({n_models} fine-tuned)"

    def adapt(self, support_x, support_y) -> Adapted:
        x, y, n = check_support(support_x, support_y)
        for run in self.runs:
            run.batch_size = max(1, len(x) // 2) if len(x) > 1 else None
        models = [run.adapt(x, y).model for run in self.runs]
        soup = copy.deepcopy(models[0])
        with torch.no_grad():
            for name, parameter in soup.named_parameters():
                parameter.copy_(torch.stack([dict(m.named_parameters())[name] for m in models]).mean(dim=0))
        return _TorchAdapted(soup, x.shape[1], n)


class Distillation(Method):
    """A small student learns the teacher's soft predictions on the support set and on an
    unlabeled pool of the new task's inputs (passed to :meth:`adapt` as ``unlabeled_x``)."""

    def __init__(self, teacher: Method, hidden: int = 32, steps: int = 200, lr: float = 1e-2,
                 temperature: float = 2.0, soft_weight: float = 0.7, seed: int = 0):
        self.teacher, self.hidden, self.steps, self.lr = teacher, hidden, steps, lr
        self.temperature, self.soft_weight, self.seed = temperature, soft_weight, seed
        self.name = f"distilled student (MLP {hidden})"

    def meta_train(self, x, y) -> "Distillation":
        self.teacher.meta_train(x, y)
        return self

    def adapt(self, support_x, support_y, unlabeled_x=None, teacher: Adapted | None = None) -> Adapted:
        """``teacher`` may pass the teacher already adapted to this support set (saves its cost)."""
        x, y, n = check_support(support_x, support_y)
        pool = x if unlabeled_x is None else np.concatenate([x, check_query(unlabeled_x, x.shape[1:])])
        if teacher is None:
            teacher = self.teacher.adapt(x, y)
        elif teacher.n_classes != n:
            raise ValueError(f"the adapted teacher has {teacher.n_classes} classes, the support set {n}")
        torch.manual_seed(self.seed)
        student = MLP(x.shape[1], self.hidden, n)
        train_classifier(student, x, y, self.steps, self.lr, seed=self.seed, soft_targets=teacher.predict_proba(pool),
                         soft_x=pool, temperature=self.temperature, soft_weight=self.soft_weight)
        return _TorchAdapted(student, x.shape[1], n)
