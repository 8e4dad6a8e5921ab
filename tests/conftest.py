"""Shared fixtures (the repository root, a strict build of the book, a local web server) and
the test tiers.

Every test gets one tier marker (registered in pytest.ini), so ``./tests/run.sh -m unit``
is a fast loop and ``./tests/run.sh`` runs everything:

- ``notebook`` -- a chapter executed by nbval (every ``.ipynb`` under ``book/``) or papermill
- ``book``     -- the strict book build and the checks of its HTML
- ``browser``  -- the headless-browser check of a rendered chapter
- ``data``     -- needs the real datasets (skipped without ``METAECOM_DATA_MIRROR``)
- ``gpu``      -- needs CUDA (skipped without it)
- ``slow``     -- a package test that takes more than about 20 s on 2 CPU cores
- ``unit``     -- every other test of the package: fast, no data, no GPU
"""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"

# Notebooks run by nbval and papermill inherit this: tiny budgets, seconds per notebook.
os.environ.setdefault("METAECOM_SMOKE", "1")


def notebooks() -> list[Path]:
    """Every chapter notebook of the book (assignments are tested in test_assignments.py)."""
    return sorted(p for p in BOOK.rglob("*.ipynb")
                  if ".ipynb_checkpoints" not in p.parts and "assignments" not in p.relative_to(BOOK).parts)


@pytest.fixture(scope="session")
def built_book(tmp_path_factory) -> Path:
    """Build the book once, strictly (-W -n --keep-going), into a temporary folder; return the HTML folder."""
    out = tmp_path_factory.mktemp("book")
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run(
        [str(jupyter_book), "build", str(ROOT), "-W", "-n", "--keep-going", "--path-output", str(out)],
        capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, f"jupyter-book build failed:\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
    html = out / "_build" / "html"
    assert (html / "index.html").is_file(), "the build produced no index.html"
    return html


@pytest.fixture(scope="session")
def book_server(built_book):
    """Serve the built HTML on 127.0.0.1 (a random free port); yield its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(built_book))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # keep pytest output clean
        pass


def clustered_classes(n_classes: int = 30, per_class: int = 40, dim: int = 32, seed: int = 0):
    """Synthetic few-shot data with shared structure: class centres in a 4-d subspace of a
    ``dim``-d space, so what is learned on some classes helps with others."""
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(4, dim))
    centres = rng.normal(size=(n_classes, 4)) * 3
    x = np.concatenate([(c + rng.normal(size=(per_class, 4))) @ basis + 0.3 * rng.normal(size=(per_class, dim))
                        for c in centres]).astype(np.float32)
    return x, np.repeat(np.arange(n_classes), per_class)


# Test files whose every test belongs to one tier other than "unit".
FILE_TIERS = {"test_book_build.py": "book", "test_browser.py": "browser", "test_jupyterlab.py": "browser",
              "test_notebooks_papermill.py": "notebook"}


@pytest.hookimpl(tryfirst=True)  # before pytest's own hook deselects by -m
def pytest_collection_modifyitems(config, items):
    """Give every collected test its tier marker (see the module docstring)."""
    for item in items:
        path = Path(str(item.fspath))
        if path.suffix == ".ipynb":
            item.add_marker(pytest.mark.notebook)
            continue
        tier = FILE_TIERS.get(path.name)
        if tier:
            item.add_marker(getattr(pytest.mark, tier))
            continue
        reasons = " ".join(str(m.kwargs.get("reason", "")) for m in item.iter_markers("skipif"))
        if "METAECOM_DATA_MIRROR" in reasons:
            item.add_marker(pytest.mark.data)
        if "CUDA" in reasons:
            item.add_marker(pytest.mark.gpu)
        if not any(item.get_closest_marker(name) for name in ("data", "gpu", "slow")):
            item.add_marker(pytest.mark.unit)
