"""Shared fixtures: the repository root, a strict build of the book, and a local web server."""

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
    """Every chapter notebook of the book."""
    return sorted(p for p in BOOK.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


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
