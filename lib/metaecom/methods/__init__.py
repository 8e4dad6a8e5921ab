"""Few-shot methods, one file per family, all on the interface of :mod:`metaecom.methods.base`.

- :mod:`metaecom.methods.transfer` -- the baselines to beat: fine-tuning, linear probes,
  feature-based transfer, distillation, ensembling and parameter averaging.
- :mod:`metaecom.methods.metric` -- metric-based meta-learning: Prototypical, Matching,
  Relation and Siamese networks, trained on episodes, adapted by a forward pass.
- :mod:`metaecom.methods.optimization` -- optimization-based meta-learning: MAML (second-
  and first-order), ANIL, Meta-SGD and Reptile, which learn an initialisation (and step
  sizes) that a few gradient steps on the support set turn into a good model; also for
  regression tasks.
"""

from metaecom.methods.base import Adapted, Method, accuracy, check_query, check_support

__all__ = ["Adapted", "Method", "accuracy", "check_query", "check_support"]
