"""Where and how long a notebook ran, printed in its last cell.

Numbers in this book are only meaningful beside the hardware and versions that produced
them, so every chapter starts a :class:`RunRecord` in its first code cells and prints it
at the end.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import time

import torch

from metaecom.device import describe_device, get_device
from metaecom.parameters import smoke_mode


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class RunRecord:
    """Started by :func:`start_run`; :meth:`report` returns the record as text."""

    def __init__(self) -> None:
        self.started = dt.datetime.now(dt.timezone.utc)
        self._t0 = time.perf_counter()

    @property
    def wall_seconds(self) -> float:
        return time.perf_counter() - self._t0

    def fields(self) -> dict[str, str]:
        from metaecom import __version__
        from metaecom import parameters

        checked = parameters.last_checked
        injected = {} if checked is None or not checked.injected else {
            "injected": ", ".join(f"{name}={checked[name]!r}" for name in checked.injected)}
        return {
            **injected,
            "device": describe_device(get_device()),
            "cpu": f"{cpu_name()} ({os.cpu_count()} logical cores)",
            "wall time": f"{self.wall_seconds:.1f} s",
            "mode": "smoke run (METAECOM_SMOKE=1)" if smoke_mode() else "full run",
            "metaecom": __version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "os": f"{platform.system()} {platform.release()}",
            "finished": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        }

    def report(self) -> str:
        fields = self.fields()
        width = max(map(len, fields))
        return "Run record\n" + "\n".join(f"  {key:<{width}} : {value}" for key, value in fields.items())

    def __repr__(self) -> str:
        return self.report()


def start_run() -> RunRecord:
    """Start the clock for this notebook's run record."""
    return RunRecord()
