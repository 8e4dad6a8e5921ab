"""What the data tests share: the offline mirror, a skip mark for tests that need it, and
a private parse cache so tests never write into a reader's cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

MIRROR = os.environ.get("METAECOM_DATA_MIRROR")
needs_mirror = pytest.mark.skipif(
    not MIRROR or not Path(MIRROR).is_dir(),
    reason="METAECOM_DATA_MIRROR is not set to the offline data mirror (CI sets it to ../shared/data)",
)


def use_private_cache(tmp_path_factory, monkeypatch, name: str) -> None:
    """Send parsed tables to a cache folder ``name`` of this test session."""
    monkeypatch.setenv("METAECOM_DATA_CACHE", str(tmp_path_factory.getbasetemp() / name))
