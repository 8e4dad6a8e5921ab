"""New markets as few-shot regression tasks: one country of UCI Online Retail per task.

A shop entering a new country must predict that market's orders from its first few. The
task here is to predict the **log quantity** of an order line from two features known
when the order is placed and taken from nothing but the line's own invoice:

- ``log_price`` -- log unit price of the product (cheap items are bought by the dozen);
- ``log_basket`` -- log number of lines on the invoice (wholesale buyers order many
  products at once, in large quantities).

:func:`order_lines` cleans the raw log (no cancellations, returns, zero prices or the
country "Unspecified") and adds those columns; :func:`split_countries` keeps countries
with enough lines and holds half of them (never the home market) out for meta-testing;
:class:`CountryTasks` standardises with meta-training statistics only and draws episodes
whose support and query lines come from *different invoices* of the country, so a model
cannot score by recognising an order it has already seen.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FEATURES = ["log_price", "log_basket"]


def order_lines(retail: pd.DataFrame) -> pd.DataFrame:
    """Sales lines of :func:`metaecom.data.load_online_retail` with ``country`` (str),
    ``log_quantity``, ``log_price`` and ``log_basket`` added; index reset."""
    missing = {"invoice", "quantity", "unit_price", "country"} - set(retail.columns)
    if missing:
        raise ValueError(f"the retail table lacks columns {sorted(missing)}")
    sales = retail[~retail["invoice"].astype(str).str.startswith("C") & (retail["quantity"] > 0)]
    lines = sales[(sales["unit_price"] > 0) & (sales["country"] != "Unspecified")]
    return lines.assign(
        country=lines["country"].astype(str),
        log_quantity=np.log(lines["quantity"]),
        log_price=np.log(lines["unit_price"]),
        log_basket=np.log(lines.groupby("invoice")["invoice"].transform("size")),
    ).reset_index(drop=True)


def split_countries(lines: pd.DataFrame, min_lines: int = 70, home: str = "United Kingdom",
                    seed: int = 0) -> tuple[list[str], list[str]]:
    """(meta-train countries, meta-test countries): countries with ``min_lines`` or more
    lines; ``home`` always trains; the others are shuffled with ``seed`` and half are held out."""
    per_country = lines.groupby("country").size()
    eligible = sorted(per_country.index[per_country >= min_lines])
    if len(eligible) < 3:
        raise ValueError(f"only {len(eligible)} countries have {min_lines} or more lines; need at least 3")
    others = [c for c in eligible if c != home]
    test = sorted(np.random.default_rng(seed).permutation(others)[: len(others) // 2].tolist())
    return sorted(set(eligible) - set(test)), test


class CountryTasks:
    """Standardised features and centred targets, and episodes drawn per country.

    ``x`` (float32 ``[lines, 2]``) and ``y`` (float32 ``[lines]``) use the means and
    standard deviations of the ``train_countries``' lines only.
    """

    def __init__(self, lines: pd.DataFrame, train_countries, test_countries):
        countries = list(train_countries) + list(test_countries)
        unknown = sorted(set(countries) - set(lines["country"]))
        if unknown:
            raise ValueError(f"countries {unknown} have no lines")
        self.train_countries, self.test_countries = list(train_countries), list(test_countries)
        is_train = lines["country"].isin(self.train_countries)
        mean, sd = lines.loc[is_train, FEATURES].mean(), lines.loc[is_train, FEATURES].std()
        self.target_mean = float(lines.loc[is_train, "log_quantity"].mean())
        self.x = ((lines[FEATURES] - mean) / sd).to_numpy(np.float32)
        self.y = (lines["log_quantity"] - self.target_mean).to_numpy(np.float32)
        invoice = lines["invoice"].to_numpy()
        self._rows = {}
        for country, rows in lines.groupby("country").indices.items():
            if country in countries:
                rows = rows[np.argsort(invoice[rows], kind="stable")]  # the country's lines, grouped by invoice
                _, starts, counts = np.unique(invoice[rows], return_index=True, return_counts=True)
                self._rows[country] = (rows, starts, counts)

    def episode(self, country: str, k: int, n_query: int, rng: np.random.Generator):
        """``(support_x, support_y, query_x, query_y)``: ``k`` support lines from one random
        half of the country's invoices (by number of lines), ``n_query`` from the other half."""
        s, q = self.episode_rows(country, k, n_query, rng)
        return self.x[s], self.y[s], self.x[q], self.y[q]

    def episode_rows(self, country: str, k: int, n_query: int, rng: np.random.Generator,
                     tries: int = 100) -> tuple[np.ndarray, np.ndarray]:
        """The line numbers (rows of ``lines``) of an :meth:`episode`'s support and query."""
        if country not in self._rows:
            raise ValueError(f"{country!r} is neither a meta-training nor a meta-test country")
        rows, starts, counts = self._rows[country]
        for _ in range(tries):
            shuffled = rng.permutation(len(counts))                 # the invoices in random order
            ends = np.cumsum(counts[shuffled])                      # lines up to and including each
            cut = np.searchsorted(ends, ends[-1] / 2) + 1           # first half: about half the lines
            n_support, n_lines = ends[cut - 1], ends[-1]
            if n_support >= k and n_lines - n_support >= n_query:
                # distinct positions in the shuffled lines: k in the first half, n_query in the second
                positions = np.concatenate([rng.choice(n_support, k, replace=False),
                                            n_support + rng.choice(n_lines - n_support, n_query, replace=False)])
                j = np.searchsorted(ends, positions, side="right")  # the invoice each position falls in
                picked = rows[starts[shuffled[j]] + positions - (ends[j] - counts[shuffled[j]])]
                return picked[:k], picked[k:]
        raise ValueError(f"{country}: no split of its invoices gives {k} support and {n_query} query lines")

    def stream(self, shots, n_query: int, rng: np.random.Generator, batch: int):
        """Endless meta-training episodes: per batch one K from ``shots``, countries uniform."""
        while True:
            k = int(rng.choice(shots))
            for _ in range(batch):
                country = self.train_countries[rng.integers(len(self.train_countries))]
                yield self.episode(country, k, n_query, rng)
