"""Progress bars that read well both live and in a stored notebook.

In a terminal, :func:`progress` is an ordinary live ``tqdm`` bar. Anywhere else (a
Jupyter kernel, papermill, CI logs) a bar redrawn with carriage returns would leave
dozens of half-lines in the stored output and the HTML book, and ``tqdm.auto`` would
either warn (no ipywidgets) or make the HTML load widget scripts from a CDN. So there it
prints plain lines instead: one every ``line_every`` seconds while the loop runs, and a
final summary line when it ends — e.g. ``pretrain: 100%|##########| 3000/3000 [00:04<00:00]``.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Iterable, TextIO

from tqdm.std import tqdm

__all__ = ["progress", "LineProgress"]


class _Sink:
    """A file that swallows tqdm's own redraws: LineProgress writes its lines itself."""

    def write(self, text: str) -> None:
        pass

    def flush(self) -> None:
        pass


class LineProgress(tqdm):
    """A tqdm bar that writes whole lines: periodically, and once at the end."""

    def __init__(self, *args: Any, out: TextIO | None = None, line_every: float = 60.0, **kwargs: Any):
        self._out = out if out is not None else sys.stderr
        self._line_every = line_every
        self._last_line = time.monotonic()
        self._last_written_n: float | None = None
        self._finished = False
        kwargs.setdefault("ncols", 80)
        kwargs.setdefault("ascii", True)
        super().__init__(*args, file=_Sink(), **kwargs)

    def _write_line(self) -> None:
        self._out.write(self.format_meter(**self.format_dict) + "\n")
        self._out.flush()
        self._last_line = time.monotonic()
        self._last_written_n = self.n

    def update(self, n: float = 1) -> bool | None:
        shown = super().update(n)
        if not self.disable and time.monotonic() - self._last_line >= self._line_every:
            self._write_line()
        return shown

    def close(self) -> None:
        if not self.disable and not self._finished:
            self._finished = True
            if self._last_written_n != self.n:  # the final state may already be on screen
                self._write_line()
        super().close()


def progress(iterable: Iterable | None = None, *, desc: str | None = None, total: int | None = None,
             disable: bool = False, **kwargs: Any) -> tqdm:
    """Wrap ``iterable`` in a progress bar suited to where the code runs (see module doc)."""
    if sys.stderr.isatty():
        return tqdm(iterable, desc=desc, total=total, disable=disable, **kwargs)
    return LineProgress(iterable, desc=desc, total=total, disable=disable, **kwargs)
