"""Command-line reproductions and benchmarks (``python -m metaecom.scripts.<name>``).

- :mod:`metaecom.scripts.reproduce_omniglot` -- the Omniglot tables of the metric- and
  optimization-based papers, within a stated time budget; writes ``book/results/``
- :mod:`metaecom.scripts.benchmark_maml` -- this package's MAML meta-gradient against a
  reference written with ``higher`` (speed and agreement)
- :mod:`metaecom.scripts.benchmark_grading` -- how long grading a class of Assignment 1
  submissions takes; writes ``book/results/grading_benchmark.json``

They import the library; the library never imports them.
"""
