"""Few-shot methods, one file per algorithm family, all on one interface.

Every method meta-trains on tasks (``meta_train(x, y)`` on labelled data, or
``meta_train_tasks(tasks, meta_steps)`` on explicit tasks), adapts to a new task's
support set (``adapt(support_x, support_y) -> Adapted``), and predicts on its query set
(``Adapted.predict`` / ``predict_proba``). The meta-learners define their meta-loss and
inherit the one training loop of :class:`metaecom.training.MetaLearner`.

- :mod:`~metaecom.methods.base`       -- the interface, input checks, the two losses
- :mod:`~metaecom.methods.transfer`   -- the baselines to beat: fine-tuning, logistic
  regression on frozen features, feature-based transfer, ensembles, parameter
  averaging, distillation
- :mod:`~metaecom.methods.metric`     -- ProtoNet, MatchingNet, RelationNet, SiameseNet
  (and the untrained nearest neighbour and frozen prototypes): adaptation is a forward
  pass
- :mod:`~metaecom.methods.functional` -- the functional inner loop of the gradient methods
- :mod:`~metaecom.methods.gradient`   -- what MAML and Reptile share (tensors, adaptation)
- :mod:`~metaecom.methods.maml`       -- MAML, FOMAML, ANIL, Meta-SGD: one meta-loss
- :mod:`~metaecom.methods.reptile`    -- Reptile
- :mod:`~metaecom.methods.fast_maml`  -- the same MAML meta-gradient for a whole
  meta-batch at once (vmap, or tasks as channel groups); speed only
- :mod:`~metaecom.methods.attention`  -- the soft read of a key-value memory
- :mod:`~metaecom.methods.mann`       -- the memory-augmented neural network
- :mod:`~metaecom.methods.cnp`        -- Conditional Neural Processes
- :mod:`~metaecom.methods.pretrained` -- fine-tuning a large pretrained encoder's top layers
- :mod:`~metaecom.methods.contrastive` -- contrastive fine-tuning of the sentence encoder on
  pairs, or on a few labelled texts in the SetFit manner, with sentence-transformers'
  trainer (its top layers; steps chosen on validation)

A method's ``name`` is the label the book's tables print (e.g. ``"logistic regression"``
for :class:`LogisticRegressionHead`, ``"prototypes, frozen"`` for
:class:`FrozenPrototypes`); :func:`metaecom.evaluate.episode_scores` labels its rows with
it. Regression baselines that need no network (ridge per unit, pooled ridge, partial
pooling, the item-mean rating baseline) are in :mod:`metaecom.baselines`.
"""

from metaecom.methods.attention import AttentionMemory, attention_read
from metaecom.methods.base import (Adapted, Method, RegressionAdapted, accuracy, binary_log_loss, check_query,
                                   check_support, cross_entropy, squared_error)
from metaecom.methods.cnp import CNP, CNPClassifier
from metaecom.methods.gradient import GradientMethod, choose_test_steps
from metaecom.methods.maml import ANIL, FOMAML, MAML, MetaSGD
from metaecom.methods.mann import MANN
from metaecom.methods.metric import (FrozenPrototypes, MatchingNet, MetricMethod, NearestNeighbour, ProtoNet,
                                    RelationNet, SiameseNet)
from metaecom.methods.pretrained import EncoderFineTune, TokenStates
from metaecom.methods.reptile import Reptile
from metaecom.methods.transfer import (Distillation, Ensemble, FineTune, LinearProbe, LogisticRegressionHead,
                                       ParameterAveraging, Scratch, pretrain)

__all__ = [
    "Adapted", "Method", "RegressionAdapted", "accuracy", "check_query", "check_support", "cross_entropy",
    "squared_error", "binary_log_loss",
    # metric-based
    "MetricMethod", "ProtoNet", "MatchingNet", "RelationNet", "SiameseNet", "NearestNeighbour", "FrozenPrototypes",
    # optimization-based
    "GradientMethod", "choose_test_steps", "MAML", "FOMAML", "ANIL", "MetaSGD", "Reptile",
    # memory-based
    "AttentionMemory", "attention_read", "MANN", "CNP", "CNPClassifier",
    # transfer baselines and large pretrained models
    "Scratch", "FineTune", "LogisticRegressionHead", "LinearProbe",  # LinearProbe: deprecated alias
    "Ensemble", "ParameterAveraging", "Distillation", "pretrain",
    "EncoderFineTune", "TokenStates",
]
