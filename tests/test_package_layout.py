"""The package's shape: every module imports on its own (no import cycles), none is
longer than one sitting, and the library never imports its command-line scripts."""

import importlib
import pkgutil
import sys
from pathlib import Path

import metaecom

MODULES = sorted(m.name for m in pkgutil.walk_packages(metaecom.__path__, "metaecom."))
LIB = Path(metaecom.__file__).parent


def test_every_module_imports_first_on_its_own():
    # a cycle shows as an ImportError when the module in it is the first one imported
    saved = {name: module for name, module in sys.modules.items() if name.startswith("metaecom")}
    try:
        for name in MODULES:
            for loaded in [n for n in sys.modules if n.startswith("metaecom")]:
                del sys.modules[loaded]
            importlib.import_module(name)
    finally:
        for loaded in [n for n in sys.modules if n.startswith("metaecom")]:
            del sys.modules[loaded]
        sys.modules.update(saved)
    assert len(MODULES) >= 40


def test_no_module_is_longer_than_one_sitting():
    lengths = {str(path.relative_to(LIB)): len(path.read_text(encoding="utf-8").splitlines())
               for path in LIB.rglob("*.py")}
    assert max(lengths.values()) <= 500, sorted(lengths.items(), key=lambda item: -item[1])[:3]


def test_the_library_never_imports_its_scripts():
    for path in LIB.rglob("*.py"):
        if "scripts" in path.relative_to(LIB).parts:
            continue
        source = path.read_text(encoding="utf-8")
        assert "import metaecom.scripts" not in source and "from metaecom.scripts" not in source, path
