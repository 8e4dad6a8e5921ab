"""metaecom: the code behind the book *Meta-Learning for E-commerce*.

Each module holds one idea, so that a reader can open one file and understand it:

- :mod:`metaecom.device`      -- the one place that picks CPU or CUDA
- :mod:`metaecom.seeding`     -- seeding Python, NumPy and torch together
- :mod:`metaecom.parameters`  -- notebook budgets: range checks and smoke mode
- :mod:`metaecom.progress`    -- progress bars that look right in terminals and stored notebooks
- :mod:`metaecom.runrecord`   -- where and how long a notebook ran
- :mod:`metaecom.evaluate`    -- metrics with 95% confidence intervals
- :mod:`metaecom.synthetic`   -- a family of store price-demand tasks with known ground truth
- :mod:`metaecom.models`      -- neural network backbones
- :mod:`metaecom.train`       -- plain gradient training, with evaluation at checkpoints
- :mod:`metaecom.plots`       -- figures the chapters repeat
"""

__version__ = "0.1.0"

from metaecom.device import get_device
from metaecom.parameters import Budget, check_parameters, smoke_mode
from metaecom.progress import progress
from metaecom.runrecord import start_run
from metaecom.seeding import seed_everything

__all__ = [
    "__version__",
    "Budget",
    "check_parameters",
    "get_device",
    "progress",
    "seed_everything",
    "smoke_mode",
    "start_run",
]
