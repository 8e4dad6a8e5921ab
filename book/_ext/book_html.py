"""Small fixes to the HTML the book's theme produces, for its readers.

- **No dormant Thebe.** Jupyter Book always loads the Thebe extension ("run this code
  live on Binder"), which writes a configuration with an external script address and a
  Binder repository into every page even when Thebe is off, as it is in this book
  (``launch_buttons: thebe: false``). This extension removes those scripts, the
  stylesheet and the per-page configuration when Thebe is off.

The search page's snippets hold math as raw TeX; ``_static/search-math.js`` (listed in
``_config.yml``) typesets them with the book's local MathJax.
"""

from __future__ import annotations

from docutils import nodes


def _thebe_on(app) -> bool:
    launch = (app.config.html_theme_options or {}).get("launch_buttons", {})
    return bool(launch.get("thebe"))


def _is_thebe(entry) -> bool:
    filename = getattr(entry, "filename", entry if isinstance(entry, str) else "") or ""
    body = getattr(entry, "attributes", {}).get("body", "") if hasattr(entry, "attributes") else ""
    return "thebe" in str(filename).lower() or "thebe" in str(body).lower()


def _drop_thebe_assets(app, env, docnames) -> None:
    if _thebe_on(app):
        return
    app.registry.js_files = [(name, attrs) for name, attrs in app.registry.js_files
                             if "thebe" not in str(name).lower() and "thebe" not in str(attrs.get("body", "")).lower()]
    app.registry.css_files = [(name, attrs) for name, attrs in app.registry.css_files if "thebe" not in str(name).lower()]
    builder = app.builder
    if hasattr(builder, "script_files"):
        builder.script_files[:] = [js for js in builder.script_files if not _is_thebe(js)]
    if hasattr(builder, "css_files"):
        builder.css_files[:] = [css for css in builder.css_files if not _is_thebe(css)]


def _drop_thebe_config(app, doctree, docname) -> None:
    if _thebe_on(app):
        return
    for node in list(doctree.findall(nodes.raw)):
        if "x-thebe-config" in node.astext() or node.astext().startswith("<script>kernelName"):
            node.parent.remove(node)


def setup(app):
    # after sphinx-thebe's own handlers (priority 500), so there is something to remove
    app.connect("env-before-read-docs", _drop_thebe_assets, priority=900)
    app.connect("doctree-resolved", _drop_thebe_config, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
