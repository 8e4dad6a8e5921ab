"""metaecom: the code behind the book *Meta-Learning for E-commerce*.

The folders read like the book; each module holds one idea, so that a reader can open
one file and understand it:

- infrastructure the notebooks share: :mod:`~metaecom.device` (the one place that picks
  CPU or CUDA), :mod:`~metaecom.seeding`, :mod:`~metaecom.parameters` (notebook budgets,
  range checks, smoke mode), :mod:`~metaecom.progress`, :mod:`~metaecom.runrecord` (where
  and how long a notebook ran), :mod:`~metaecom.checks` (argument checks)
- :mod:`metaecom.data`     -- the data registry (official URL, checksum, cache, mirror)
  and one loader per dataset
- :mod:`metaecom.tasks`    -- episodes and samplers: how data become tasks
- :mod:`metaecom.models`   -- every network the methods are given
- :mod:`metaecom.training` -- the one meta-training loop, plain training, early stopping
- :mod:`metaecom.methods`  -- one file per algorithm family, all on one interface
- :mod:`metaecom.evaluate`, :mod:`metaecom.ranking` -- metrics with 95% intervals
- :mod:`metaecom.cost`     -- time and memory of one adaptation
- :mod:`metaecom.encoder`  -- the bundled pretrained sentence encoder (MiniLM)
- :mod:`metaecom.cases`    -- what the case studies reuse (recommendation, markets, ...)
- :mod:`metaecom.reproduction`, :mod:`metaecom.plots` -- results files and figures
- :mod:`metaecom.assignments` -- course assignments: release, sandboxed papermill grading
- :mod:`metaecom.scripts`  -- reproductions and benchmarks run with ``python -m``
"""

__version__ = "0.1.0"

from metaecom.device import get_device
from metaecom.parameters import Budget, ParameterError, check_parameters, smoke_mode
from metaecom.progress import progress
from metaecom.runrecord import start_run
from metaecom.seeding import seed_everything

__all__ = [
    "__version__",
    "Budget",
    "ParameterError",
    "check_parameters",
    "get_device",
    "progress",
    "seed_everything",
    "smoke_mode",
    "start_run",
]
