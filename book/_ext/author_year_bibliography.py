"""The book's bibliography in author–year form, as the text cites it.

sphinxcontrib-bibtex cites in the text as "Finn et al. (2017)" (``bibtex_reference_style:
author_year``) but labels the list with alpha keys such as ``[FAL17]`` unless a
formatting style says otherwise. This Sphinx extension registers the pybtex style
``author_year``: the entries of pybtex's ``unsrt`` style, sorted by author and year,
each labelled "Finn et al. 2017" (one or two authors by name, three or more as the
first author et al.; "2020a", "2020b" where two labels would be equal), with the DOI
or URL of every entry that has one.
"""

from __future__ import annotations

from pybtex.plugin import register_plugin
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle
from pybtex.style.sorting.author_year_title import SortingStyle


def _surnames(entry) -> list[str]:
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    names = []
    for person in people:
        last = " ".join(person.prelast_names + person.last_names)
        names.append(last.replace("{", "").replace("}", ""))
    return names


class AuthorYearLabels(BaseLabelStyle):
    """Labels "Surname 2017", "Surname and Other 2017", "Surname et al. 2017"."""

    def format_labels(self, sorted_entries):
        labels = []
        for entry in sorted_entries:
            names = _surnames(entry) or [entry.key]
            who = names[0] if len(names) == 1 else (
                f"{names[0]} and {names[1]}" if len(names) == 2 else f"{names[0]} et al.")
            labels.append(f"{who} {entry.fields.get('year', 'n.d.')}")
        counts = {label: labels.count(label) for label in labels}
        seen: dict[str, int] = {}
        for label in labels:
            if counts[label] > 1:
                seen[label] = seen.get(label, 0) + 1
                yield label + "abcdefghijklmnopqrstuvwxyz"[seen[label] - 1]
            else:
                yield label


class AuthorYearStyle(UnsrtStyle):
    default_label_style = AuthorYearLabels
    default_sorting_style = SortingStyle


def setup(app):
    register_plugin("pybtex.style.formatting", "author_year", AuthorYearStyle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
