"""The chapters as a student reads them in JupyterLab: MyST rendered, solutions hidden.

Starts the JupyterLab of the book's environment on this machine, opens a chapter in
headless Chromium and checks the rendered notebook: admonitions are boxes, exercise
solutions are collapsed dropdowns, citations are citation elements (not raw ``{cite}``
text) and an escaped dollar stays a dollar. jupyterlab-myst does not read BibTeX files,
so in Lab a citation shows its key, marked unresolved; the HTML book resolves it.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT
from test_browser import _run_chromium

CHAPTER = "book/learning_to_learn_in_one_notebook.ipynb"
TOKEN = "metaecom-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A running JupyterLab serving the repository; yields its base URL."""
    port = _free_port()
    lab_command = Path(sys.executable).with_name("jupyter-lab")
    home = tmp_path_factory.mktemp("lab-home")
    # Lab serves a copy of the chapter, so nothing it writes (checkpoints, autosaves)
    # touches the repository
    served = tmp_path_factory.mktemp("lab-root")
    (served / CHAPTER).parent.mkdir(parents=True)
    shutil.copy(ROOT / CHAPTER, served / CHAPTER)
    command = [str(lab_command), "--no-browser", f"--ServerApp.port={port}", "--ServerApp.ip=127.0.0.1",
               f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={served}",
               "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime")}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=2)
                break
            except OSError:
                if process.poll() is not None:
                    pytest.fail(f"JupyterLab exited: {process.stderr.read()[-3000:]}")
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not start within 60 s")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def notebook_dom(lab, tmp_path_factory):
    """The chapter's DOM in JupyterLab after its scripts ran (and a screenshot of it)."""
    tmp = tmp_path_factory.mktemp("lab-chromium")
    url = f"{lab}/lab/tree/{CHAPTER}?token={TOKEN}"
    dom = _run_chromium(tmp, "--virtual-time-budget=40000", "--dump-dom", url).stdout
    shot = tmp / "jupyterlab.png"
    _run_chromium(tmp, "--window-size=1280,1600", "--virtual-time-budget=40000", f"--screenshot={shot}", url)
    artifacts = os.environ.get("METAECOM_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(artifacts) / shot.name)
    # the notebook as rendered, without the (hidden) editors that hold each cell's source
    return re.sub(r'<div class="cm-line">.*?</div>', "", dom)


def test_exercise_solutions_are_collapsed_dropdowns(notebook_dom):
    dropdowns = re.findall(r"<details[^>]*class=\"myst-admonition[^\"]*dropdown\"[^>]*>", notebook_dom)
    assert len(dropdowns) >= 4, f"expected the chapter's solution dropdowns, found {len(dropdowns)}"
    assert not any(" open" in tag for tag in dropdowns), "a solution is shown open"
    assert "Exercise 1" in notebook_dom
    assert ":::{admonition}" not in notebook_dom and "```{admonition}" not in notebook_dom


def test_citations_and_dollars_render_as_text_not_markup(notebook_dom):
    text = re.sub(r"<[^>]+>", "", notebook_dom)
    assert "{cite}" not in text, "a {cite} role was left as raw text"
    assert re.search(r"<span[^>]*title=\"Citation[^\"]*\"[^>]*>(<svg.*?</svg>)?finn2017maml", notebook_dom), \
        "the citation of Finn et al. is not rendered as a citation"
    assert "per day at $4, at $6?" in text, "the prices became math"
