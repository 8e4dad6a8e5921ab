"""The book as a reader sees it: headless Chromium renders a chapter from a local server.

Checks that MathJax typeset every formula (no raw TeX left), that a figure is visible in
a screenshot, and that the page made no request outside this machine. Skipped with a
reason where no Chromium is installed, unless METAECOM_REQUIRE_BROWSER=1 (as in CI).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from PIL import Image

CHAPTER = "book/learning_to_learn_in_one_notebook.html"
# Tall enough to show the first display equation and the first figure below it. (Headless
# Chromium draws a blank screenshot when the URL has a #fragment, so no scrolling.)
WINDOW = (1280, 4800)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    message = "no Chromium on this machine (apt-get install chromium); .ci/run installs it"
    if os.environ.get("METAECOM_REQUIRE_BROWSER") == "1":
        pytest.fail(message)
    pytest.skip(message)


def _run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    command = [
        _chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-default-apps", "--hide-scrollbars", f"--user-data-dir={profile}",
        "--virtual-time-budget=20000", *args,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, f"chromium failed:\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def rendered(book_server, tmp_path_factory):
    """The chapter's DOM after scripts ran, and the network log of that page load."""
    tmp = tmp_path_factory.mktemp("chromium")
    netlog = tmp / "netlog.json"
    result = _run_chromium(tmp, f"--log-net-log={netlog}", "--dump-dom", f"{book_server}/{CHAPTER}")
    return result.stdout, netlog.read_text(encoding="utf-8", errors="replace")


def test_math_is_typeset_with_no_raw_tex_left(rendered):
    dom, _ = rendered
    math_elements = re.findall(r'class="math notranslate nohighlight"', dom)
    assert len(math_elements) >= 10, "the chapter should contain its formulas"
    typeset = dom.count("<mjx-container")
    assert typeset >= len(math_elements), f"MathJax typeset {typeset} of {len(math_elements)} formulas"
    raw = re.findall(r'class="math notranslate nohighlight">\s*(\\\(|\\\[|\$\$)', dom)
    assert not raw, f"{len(raw)} formulas were left as raw TeX"


def _page_requests(netlog: str, origin: str) -> list[str]:
    """URLs of every request the page itself started (Chromium's own background traffic,
    such as its update checks, has no page origin as initiator and is left out)."""
    log = json.loads(netlog)
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [event["params"]["url"] for event in log["events"]
            if event["type"] == start_job and event.get("params", {}).get("initiator") == origin]


def test_page_requests_nothing_outside_this_machine(rendered, book_server):
    _, netlog = rendered
    requested = _page_requests(netlog, book_server)
    assert any("mathjax" in url for url in requested), "the network log saw no MathJax request"
    outside = sorted(u for u in requested if urlparse(u).hostname not in ("127.0.0.1", "localhost"))
    assert not outside, "the page requested resources from the internet:\n" + "\n".join(outside[:20])


def test_screenshot_shows_a_figure(book_server, tmp_path):
    shot = tmp_path / "chapter.png"
    _run_chromium(tmp_path, f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--screenshot={shot}", f"{book_server}/{CHAPTER}")
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert pixels.shape[:2] == (WINDOW[1], WINDOW[0])
    # matplotlib's default orange and green lines (C1, C2) appear only in figures
    for colour in [(255, 127, 14), (44, 160, 44)]:
        close = (np.abs(pixels - np.array(colour)).sum(axis=2) < 40).sum()
        assert close > 200, f"no figure visible: only {close} pixels of colour {colour}"
    assert (pixels.std(axis=(0, 1)) > 10).all(), "the screenshot is blank"
    artifacts = os.environ.get("METAECOM_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(artifacts) / shot.name)


# A page of the test's own, served beside the book, that loads a book page in an iframe of
# a given width and writes what it measured into its own DOM, which --dump-dom returns.
HARNESS = """<!DOCTYPE html><html><head><meta charset="utf-8"></head><body><iframe id="f" src="{src}" width="{width}" height="2000"></iframe>
<pre id="result">pending</pre><script>
document.getElementById("f").addEventListener("load", () => setTimeout(() => {{
  const doc = document.getElementById("f").contentDocument;
  document.getElementById("result").textContent = JSON.stringify(({measure})(doc));
}}, {wait}));
</script></body></html>"""

MEASURE_TABLES = """doc => {
  const cells = [...doc.querySelectorAll("table.dataframe td")].filter(td => td.textContent.includes("±"));
  const lineHeight = td => parseFloat(getComputedStyle(td).lineHeight) || 1.4 * parseFloat(getComputedStyle(td).fontSize);
  const wrapped = cells.filter(td => td.getBoundingClientRect().height > 1.8 * lineHeight(td)).map(td => td.textContent);
  const page = doc.documentElement.clientWidth;
  const cut = [...doc.querySelectorAll("table.dataframe")].filter(table => {
    const box = table.closest(".output");
    const scrolls = box && getComputedStyle(box).overflowX === "auto";
    return table.getBoundingClientRect().right > page + 1 && !scrolls;
  }).length;
  return {cells: cells.length, wrapped: wrapped, cut: cut, page: page};
}"""

MEASURE_SEARCH = """doc => {
  const results = doc.getElementById("search-results");
  const text = results ? results.textContent : "";
  return {results: results ? results.querySelectorAll("li").length : 0,
          typeset: results ? results.querySelectorAll("mjx-container").length : 0,
          raw: (text.match(/\\\\\\(/g) || []).length};
}"""


def _measure(book_server, built_book, tmp_path, src: str, measure: str, width: int, wait: int) -> dict:
    name = f"_harness_{len(list(tmp_path.iterdir()))}.html"
    (built_book / name).write_text(HARNESS.format(src=src, width=width, measure=measure, wait=wait), encoding="utf-8")
    dom = _run_chromium(tmp_path, "--virtual-time-budget=30000", "--dump-dom", f"{book_server}/{name}").stdout
    result = re.search(r'<pre id="result">(.*?)</pre>', dom, re.S).group(1)
    assert result != "pending", "the page did not finish loading in the harness"
    return json.loads(result.replace("&quot;", '"').replace("&amp;", "&"))


@pytest.mark.parametrize("width", [1280, 390], ids=["desktop", "phone"])
def test_result_tables_keep_values_on_one_line_and_scroll_when_too_wide(book_server, built_book, tmp_path, width):
    found = _measure(book_server, built_book, tmp_path, "book/metric_based.html", MEASURE_TABLES, width, 3000)
    assert found["cells"] >= 10, found  # the reproduction tables' "98.3 ± 0.2" cells
    assert not found["wrapped"], f"values wrapped over several lines at {width} px: {found['wrapped'][:5]}"
    assert found["cut"] == 0, f"{found['cut']} tables are cut off at {width} px"


def test_search_result_snippets_show_typeset_math(book_server, built_book, tmp_path):
    found = _measure(book_server, built_book, tmp_path, "search.html?q=Adapt", MEASURE_SEARCH, 1280, 8000)
    assert found["results"] >= 1, found
    assert found["typeset"] >= 1 and found["raw"] == 0, f"raw TeX left in the search snippets: {found}"
