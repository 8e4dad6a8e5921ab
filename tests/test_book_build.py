"""The book as a reader gets it: a strict build, with nothing loaded from the internet."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import yaml

from conftest import ROOT

EXTERNAL = re.compile(r"^\s*(https?:)?//", re.IGNORECASE)


class _Resources(HTMLParser):
    """Collects every URL a page would *load* (scripts, stylesheets, fonts, images, frames)."""

    def __init__(self):
        super().__init__()
        self.loaded: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "img", "iframe", "source", "audio", "video", "embed") and attrs.get("src"):
            self.loaded.append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            rel = (attrs.get("rel") or "").lower()
            if any(r in rel for r in ("stylesheet", "preload", "icon", "modulepreload", "prefetch", "manifest")):
                self.loaded.append(attrs["href"])
        if tag == "object" and attrs.get("data"):
            self.loaded.append(attrs["data"])


def _toc_files(entry) -> list[str]:
    files = [entry["file"]] if "file" in entry else []
    for key in ("parts", "chapters", "sections"):
        for child in entry.get(key, []):
            files += _toc_files(child)
    return files


def test_every_chapter_in_the_toc_exists_and_was_built(built_book):
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"], *_toc_files(toc)]
    assert len(files) >= 3
    for name in files:
        sources = [ROOT / f"{name}{suffix}" for suffix in (".md", ".ipynb")]
        assert any(path.is_file() for path in sources), f"_toc.yml lists {name}, which does not exist"
        assert (built_book / f"{name}.html").is_file(), f"{name}.html was not built"
    # teachers' sources (solutions, hidden tests) stay out of the book
    source = ROOT / "book" / "assignments" / "source"
    notebooks_in_book = {str(path.relative_to(ROOT).with_suffix("")) for path in (ROOT / "book").rglob("*.ipynb")
                         if ".ipynb_checkpoints" not in path.parts and source not in path.parents}
    assert notebooks_in_book <= set(files), f"chapters missing from _toc.yml: {notebooks_in_book - set(files)}"


def test_html_loads_nothing_from_the_internet(built_book):
    offenders = []
    pages = list(built_book.rglob("*.html"))
    assert pages
    for page in pages:
        parser = _Resources()
        parser.feed(page.read_text(encoding="utf-8"))
        offenders += [f"{page.relative_to(built_book)}: {url}" for url in parser.loaded if EXTERNAL.match(url)]
    for sheet in built_book.rglob("*.css"):
        for url in re.findall(r"(?:url\(|@import\s+)['\"]?([^'\")\s]+)", sheet.read_text(encoding="utf-8", errors="replace")):
            if EXTERNAL.match(url):
                offenders.append(f"{sheet.relative_to(built_book)}: {url}")
    assert not offenders, "the built book loads resources from the internet:\n" + "\n".join(offenders)


def test_math_is_served_locally(built_book):
    page = (built_book / "book" / "learning_to_learn_in_one_notebook.html").read_text(encoding="utf-8")
    assert re.search(r'<script[^>]+src="[./]*_static/mathjax/tex-chtml\.js', page), "MathJax is not loaded from _static"
    assert (built_book / "_static" / "mathjax" / "tex-chtml.js").is_file()
    assert 'class="math notranslate nohighlight"' in page


def test_references_page_lists_author_year_entries_with_links(built_book):
    references = (built_book / "book" / "references.html").read_text(encoding="utf-8")
    labels = re.findall(r'<span class="label"><span class="fn-bracket">\[</span>(.*?)<span', references)
    assert "Finn et al. 2017" in labels and "model-agnostic meta-learning" in references.lower()
    assert all(re.fullmatch(r"[^\d]+ \d{4}[a-z]?", label) for label in labels), labels
    assert 'href="https://doi.org/10.1145/3292500.3330859"' in references  # MeLU's DOI
    bib = (ROOT / "book" / "references.bib").read_text(encoding="utf-8")
    assert len(labels) == bib.count("\n@") + bib.startswith("@"), "every entry of references.bib is listed"
    glossary = (built_book / "book" / "glossary.html").read_text(encoding="utf-8")
    assert "支持集" in glossary and "冷启动" in glossary
    intro = (built_book / "book" / "intro.html").read_text(encoding="utf-8")
    assert 'href="glossary.html"' in intro and 'href="references.html"' in intro


def test_exercise_toggles_and_figures(built_book):
    chapter = (built_book / "book" / "learning_to_learn_in_one_notebook.html").read_text(encoding="utf-8")
    assert chapter.count("dropdown") >= 3, "exercise solutions should be hidden behind toggles"
    assert "Exercise 1" in chapter
    assert re.search(r'<img[^>]+src="[./]*_images/', chapter), "the chapter's figures are missing"


def test_the_publishing_workflow_builds_with_the_readme_command_and_publishes_its_output():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "publish-book.yml").read_text(encoding="utf-8"))
    steps = workflow["jobs"]["build"]["steps"]
    commands = [step.get("run", "") for step in steps]
    assert any(command.strip() == "./book/build.sh" for command in commands)
    upload = next(step for step in steps if step.get("uses", "").startswith("actions/upload-pages-artifact"))
    build_script = (ROOT / "book" / "build.sh").read_text(encoding="utf-8")
    assert upload["with"]["path"] == "_build/html" and "_build/html/index.html" in build_script
    assert workflow["jobs"]["deploy"]["needs"] == "build"
    # the published folder is self-contained: nothing in it is fetched from elsewhere
    # (test_html_loads_nothing_from_the_internet checks the same folder, built the same way)


def test_the_built_folder_is_a_static_site(built_book):
    assert (built_book / "index.html").is_file() and (built_book / "search.html").is_file()
    index = (built_book / "index.html").read_text(encoding="utf-8")
    target = re.search(r'url=([^"]+)"', index)
    assert target and (built_book / target.group(1)).is_file(), "index.html must lead to the intro page"


def test_no_progress_bar_lines_in_the_html(built_book):
    # the stored notebooks keep their progress lines (stderr); the book leaves them out
    pattern = re.compile(r"\d+%\|[^|<]{0,60}\|\s*\d+/\d+")
    offenders = [page.name for page in (built_book / "book").glob("*.html")
                 if pattern.search(page.read_text(encoding="utf-8"))]
    assert not offenders, f"progress-bar lines in {offenders}"
