"""One notebook run in a process of its own: papermill, a sandboxed kernel, a time limit.

:func:`run_notebook` is called by the grader, once per run, from a thread of its pool.
It lays out a folder ``<folder>/`` that only the grader reads (the notebook to execute,
the kernelspec, papermill's output and log) and inside it ``<folder>/work/``, the
kernel's working directory, home and temporary folder, the only place the kernel may
write. Then it starts ``python -m metaecom.assignments.execute <job.json>`` in a new
session and waits:

- papermill executes the notebook, injecting the parameters, with a per-cell time limit
  after which the kernel is interrupted (``KeyboardInterrupt`` in that cell; the next
  cell runs);
- the kernel is :mod:`.sandbox`'s: memory limit, Landlock, killed with its parent;
- past the whole run's time limit the grader kills the process group and the kernel:
  the outcome is ``timeout``. A kernel that dies (a crash, ``os._exit``, a signal) gives
  ``kernel-died``.

The environment passed on is a short allow-list (``PATH``, locale, ``METAECOM_*``, ...),
so a submission cannot read the teacher's other variables. ``OMP_NUM_THREADS`` splits the
cores between the runs going on at once.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

from metaecom.assignments.sandbox import KERNEL_NAME, kernelspec

__all__ = ["Run", "run_notebook"]

_KEEP_ENV = ("PATH", "PYTHONPATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "VIRTUAL_ENV", "CUDA_VISIBLE_DEVICES")


@dataclass
class Run:
    """How a run ended: ``completed``, ``timeout``, ``kernel-died`` or ``failed``."""

    outcome: str
    message: str
    notebook: nbformat.NotebookNode | None
    seconds: float


def _environment(work: Path, private: Path, threads: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k in _KEEP_ENV or k.startswith("METAECOM_")}
    for name in ("tmp", ".ipython", ".matplotlib", ".runtime", ".jupyter"):
        (work / name).mkdir(parents=True, exist_ok=True)
    env.update(HOME=str(work), TMPDIR=str(work / "tmp"), IPYTHONDIR=str(work / ".ipython"),
               MPLCONFIGDIR=str(work / ".matplotlib"), JUPYTER_RUNTIME_DIR=str(work / ".runtime"),
               JUPYTER_CONFIG_DIR=str(work / ".jupyter"), JUPYTER_DATA_DIR=str(work / ".jupyter"),
               JUPYTER_PATH=str(private / "jupyter"), PYTHONNOUSERSITE="1",
               OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


def _copy_font_cache(work: Path) -> None:
    """matplotlib builds a font list on first use (seconds); give the kernel the one we have."""
    try:
        import matplotlib

        for cached in Path(matplotlib.get_cachedir()).glob("fontlist-*.json"):
            shutil.copy(cached, work / ".matplotlib" / cached.name)
    except Exception:   # only a speed-up
        pass


def _kill_kernel(pid_file: Path) -> None:
    """Kill the kernel's process group (the kernel leads its own session)."""
    try:
        pid = int(pid_file.read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes() if Path("/proc").is_dir() else b"sandbox"
        if b"sandbox" in cmdline:
            os.killpg(pid, signal.SIGKILL)
    except (OSError, ValueError):
        pass


def run_notebook(notebook: nbformat.NotebookNode, folder: str | Path, parameters: dict, *, timeout: float,
                 cell_timeout: float, memory_mb: int | None, isolate: bool, read_only: list[str] = (),
                 threads: int = 1) -> Run:
    """Execute ``notebook`` with papermill in a new process under the limits (module docstring)."""
    private = Path(folder).resolve()
    work = private / "work"
    work.mkdir(parents=True, exist_ok=True)
    env = _environment(work, private, threads)
    _copy_font_cache(work)
    settings = {"landlock": isolate, "read_only": list(read_only), "read_write": [str(work)],
                "memory_mb": memory_mb, "cpu_seconds": int(4 * timeout) + 60, "file_mb": 200,
                "pid_file": str(private / "kernel.pid")}
    spec = private / "jupyter" / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps(kernelspec(settings), indent=1))
    nbformat.write(notebook, str(private / "input.ipynb"))
    job = {"input": str(private / "input.ipynb"), "output": str(private / "executed.ipynb"),
           "result": str(private / "result.json"), "work": str(work), "parameters": parameters,
           "cell_timeout": cell_timeout}
    (private / "job.json").write_text(json.dumps(job))
    started = time.perf_counter()
    with open(private / "worker.log", "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "metaecom.assignments.execute", str(private / "job.json")],
                                   env=env, cwd=str(work), stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            process.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except OSError:
                pass
            process.wait()
    _kill_kernel(private / "kernel.pid")
    seconds = time.perf_counter() - started
    executed = None
    if (private / "executed.ipynb").is_file():
        try:
            executed = nbformat.read(str(private / "executed.ipynb"), as_version=4)
        except Exception:
            executed = None
    if timed_out:
        return Run("timeout", f"stopped after {timeout:g} s", executed, seconds)
    try:
        result = json.loads((private / "result.json").read_text())
    except (OSError, ValueError):
        tail = (private / "worker.log").read_text(errors="replace")[-2000:]
        return Run("failed", f"the papermill process ended with code {process.returncode}: {tail}", executed,
                   seconds)
    return Run(result["outcome"], result["message"], executed, seconds)


def _worker(job_path: str) -> None:
    """The child process: execute one notebook with papermill and write ``result.json``."""
    job = json.loads(Path(job_path).read_text())
    import papermill
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    outcome, message = "completed", ""
    try:
        papermill.execute_notebook(job["input"], job["output"], parameters=job["parameters"],
                                   kernel_name=KERNEL_NAME, cwd=job["work"], progress_bar=False,
                                   execution_timeout=job["cell_timeout"], interrupt_on_timeout=True,
                                   start_timeout=120)
    except papermill.PapermillExecutionError:
        pass   # a cell raised: recorded in the saved notebook, the other cells ran
    except DeadKernelError as error:
        outcome, message = "kernel-died", str(error)
    except CellTimeoutError as error:
        outcome, message = "timeout", str(error).splitlines()[0]
    except Exception as error:
        outcome, message = "failed", f"{type(error).__name__}: {error}"
    Path(job["result"]).write_text(json.dumps({"outcome": outcome, "message": message}))


if __name__ == "__main__":
    _worker(sys.argv[1])
