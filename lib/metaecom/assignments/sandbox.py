"""The kernel a submission runs in: limits first, then an ordinary IPython kernel.

papermill starts kernels by name. For each run the grader writes a kernelspec,
``metaecom-sandbox``, whose command is ``python -m metaecom.assignments.sandbox -f
{connection_file}`` and whose environment carries the settings as JSON in
``METAECOM_SANDBOX``. Before ipykernel starts, this module

1. writes its process id to ``pid_file`` (the grader stops the kernel with it when the
   submission runs past its time limit);
2. asks Linux to kill it when the papermill process that started it dies
   (``PR_SET_PDEATHSIG``), so no kernel outlives its run;
3. sets resource limits with :mod:`resource`: the process's data memory (``memory_mb``,
   ``RLIMIT_DATA``: heap and private writable mappings, what arrays and lists use; an
   allocation beyond it raises ``MemoryError`` in the cell, and the other cells go on.
   Unlike the address-space limit it ignores reserved-but-unused address space, such as
   the CUDA driver's),
   CPU seconds (``cpu_seconds``, a backstop) and the size of any file it writes
   (``file_mb``); after a ``MemoryError`` the kernel frees what the failed cell held
   (:func:`kernel_started`), so the next cells can run;
4. when ``landlock`` is on, restricts the filesystem with :mod:`.landlock`: it may read
   the Python installation, the ``metaecom`` package, system folders and any
   ``read_only`` folder it is given (the data mirror), and read and write only its
   working folder. The teacher's notebook, the other submissions and the grader's output
   cannot be opened.

The teacher's reference run uses the same kernel with Landlock off.
"""

from __future__ import annotations

import ctypes
import gc
import importlib.util
import json
import os
import resource
import signal
import sys
import traceback
from pathlib import Path

from metaecom.assignments import landlock

__all__ = ["ENV", "KERNEL_NAME", "kernelspec", "readable_roots"]

ENV = "METAECOM_SANDBOX"
KERNEL_NAME = "metaecom-sandbox"
_PR_SET_PDEATHSIG = 1
# Folders of the operating system a Python kernel reads (shared libraries, fonts, /proc, ...).
_SYSTEM = ["/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin", "/etc", "/opt", "/proc", "/sys"]


def kernelspec(settings: dict) -> dict:
    """The ``kernel.json`` of a sandboxed kernel with these settings."""
    started = "import metaecom.assignments.sandbox as _s; _s.kernel_started(); del _s"
    return {"argv": [sys.executable, "-m", "metaecom.assignments.sandbox", "-f", "{connection_file}",
                     f"--IPKernelApp.exec_lines={json.dumps([started])}"],
            "display_name": "Python 3 (metaecom sandbox)", "language": "python",
            "env": {ENV: json.dumps(settings)}}


def readable_roots(extra: list[str] = ()) -> list[str]:
    """What a sandboxed kernel may read: system folders, this Python, the package, ``extra``."""
    roots = [*_SYSTEM, sys.prefix, sys.base_prefix, sys.exec_prefix]
    # sys.path[0] of ``python -m`` is the working directory: not a package folder
    roots += [p for p in sys.path if p and os.path.isabs(p) and p != os.getcwd()]
    spec = importlib.util.find_spec("metaecom")
    roots += list(spec.submodule_search_locations or [])
    roots += list(extra)
    seen, out = set(), []
    for root in roots:
        real = os.path.realpath(root)
        if os.path.exists(real) and real not in seen:
            seen.add(real)
            out.append(real)
    return out


def _die_with_parent() -> None:
    parent = os.getppid()
    try:
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:   # the parent died before prctl took effect
        os._exit(1)


def _limit(kind: int, value: int | None) -> None:
    if value:
        soft, hard = resource.getrlimit(kind)
        new = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(kind, (new, new if hard == resource.RLIM_INFINITY else hard))


def apply(settings: dict) -> None:
    """Apply the settings to this process (see the module docstring)."""
    if settings.get("pid_file"):
        Path(settings["pid_file"]).write_text(str(os.getpid()))
    if sys.platform.startswith("linux"):
        _die_with_parent()
    _limit(resource.RLIMIT_DATA, int(settings.get("memory_mb") or 0) * 2**20)
    _limit(resource.RLIMIT_CPU, int(settings.get("cpu_seconds") or 0))
    _limit(resource.RLIMIT_FSIZE, int(settings.get("file_mb") or 0) * 2**20)
    if settings.get("landlock"):
        landlock.restrict([*readable_roots(settings.get("read_only", [])), "/dev"],
                          [*settings.get("read_write", []), "/dev/null", "/dev/shm"])


def _free_and_show(shell, etype, value, tb, tb_offset=None):
    """After a MemoryError, drop the failed cell's local variables before reporting it.

    The traceback keeps every frame of the failed call alive, and with them whatever list
    or array filled the memory, so the next cells would fail too and the kernel could die.
    """
    traceback.clear_frames(tb)
    gc.collect()
    shell.showtraceback((etype, value, tb), tb_offset=tb_offset)


def kernel_started() -> None:
    """Run by ipykernel at start-up (``exec_lines``): install :func:`_free_and_show`."""
    from IPython import get_ipython

    get_ipython().set_custom_exc((MemoryError,), _free_and_show)


def main() -> None:
    settings = json.loads(os.environ.pop(ENV, "{}"))
    apply(settings)
    from ipykernel import kernelapp

    sys.argv = ["ipykernel_launcher", *sys.argv[1:]]
    kernelapp.launch_new_instance()


if __name__ == "__main__":
    main()
