"""Few-shot methods, one file per family, all on the interface of :mod:`metaecom.methods.base`.

- :mod:`metaecom.methods.transfer` -- the baselines to beat: fine-tuning, linear probes,
  feature-based transfer, distillation, ensembling and parameter averaging.
"""

from metaecom.methods.base import Adapted, Method, accuracy, check_query, check_support

__all__ = ["Adapted", "Method", "accuracy", "check_query", "check_support"]
