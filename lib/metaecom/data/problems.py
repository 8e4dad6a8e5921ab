"""Data problems: counted, handled by a stated rule, and reported — never silently.

Real files carry duplicates, blanks and ids that mean different things in different
sources. A reader of this package should be able to ask any table it loaded "what was
wrong with the file, and what did you do about it?". Every format reader records each
problem it found as a :class:`Problem` (what, how many rows, the rule applied, a few
examples) in the table's ``attrs`` (which pandas carries through filtering, copying and
the Parquet cache), and :func:`data_problems` returns them as a table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

ATTRS_KEY = "data_problems"
_EXAMPLES = 3


@dataclass(frozen=True)
class Problem:
    """One kind of problem found in a table: ``count`` rows affected, ``rule`` applied."""

    problem: str
    count: int
    rule: str
    examples: tuple[str, ...] = ()

    def __post_init__(self):
        if self.count < 0:
            raise ValueError(f"a problem's count must be >= 0, got {self.count}")


def examples_of(values, limit: int = _EXAMPLES) -> tuple[str, ...]:
    """Up to ``limit`` distinct values, as short strings, to show beside a count."""
    shown = []
    for value in values:
        text = str(value)
        text = text if len(text) <= 60 else text[:57] + "..."
        if text not in shown:
            shown.append(text)
        if len(shown) == limit:
            break
    return tuple(shown)


def record(frame: pd.DataFrame, *problems: Problem) -> pd.DataFrame:
    """``frame`` with ``problems`` appended to its recorded problems (zero counts skipped).

    The frame is modified in place (its ``attrs``) and returned, so readers can end with
    ``return record(frame, ...)``.
    """
    kept = [asdict(p) | {"examples": list(p.examples)} for p in problems if p.count > 0]
    frame.attrs[ATTRS_KEY] = [*frame.attrs.get(ATTRS_KEY, []), *kept]
    return frame


def data_problems(frame: pd.DataFrame) -> pd.DataFrame:
    """The problems recorded for ``frame``: columns problem, count, rule, examples.

    An empty table means the reader found nothing to report (it still checked).
    """
    rows = frame.attrs.get(ATTRS_KEY, [])
    table = pd.DataFrame(rows, columns=["problem", "count", "rule", "examples"])
    table["examples"] = table["examples"].map(lambda e: ", ".join(map(str, e)))
    return table.astype({"count": "int64"})
