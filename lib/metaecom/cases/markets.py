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

Not every country can give every episode shape: one with a single invoice has no second
invoice for the query, one whose lines sit mostly on one big invoice may have no split
into two invoice sets of ``k`` and ``n_query`` lines. :func:`infeasible_countries` lists
such countries before training, and ``split_countries`` / ``CountryTasks`` check them at
construction when given the shape (``shots``, ``n_query``): one ValueError naming every
infeasible country and why, or, with ``drop_infeasible=True``, those countries left out
(a warning, and ``CountryTasks.dropped``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from metaecom.checks import check_count, require_columns
from metaecom.data import undone_sales, weekly_sales

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
                    seed: int = 0, shots=None, n_query: int | None = None,
                    drop_infeasible: bool = False) -> tuple[list[str], list[str]]:
    """(meta-train countries, meta-test countries): countries with ``min_lines`` or more
    lines; ``home`` always trains; the others are shuffled with ``seed`` and half are held out.

    Given the episode shape -- ``shots`` (K, or the K's a stream draws from) and
    ``n_query`` -- the countries with enough lines are first checked with
    :func:`infeasible_countries`: any that cannot supply such episodes raise one ValueError
    listing them all with reasons, or, with ``drop_infeasible=True``, are left out before
    the split (with a warning naming them). Without a shape the split is as it always was.
    """
    shape = _shape(shots, n_query, drop_infeasible)
    per_country = lines.groupby("country").size()
    eligible = sorted(per_country.index[per_country >= min_lines])
    if shape is not None:
        bad = infeasible_countries(lines, *shape, countries=eligible)
        _refuse_or_warn(bad, shape, drop_infeasible, "split_countries")
        eligible = [c for c in eligible if c not in set(bad["country"])]
    if len(eligible) < 3:
        raise ValueError(f"only {len(eligible)} countries have {min_lines} or more lines"
                         f"{' and can supply the episodes' if shape else ''}; need at least 3")
    others = [c for c in eligible if c != home]
    test = sorted(np.random.default_rng(seed).permutation(others)[: len(others) // 2].tolist())
    return sorted(set(eligible) - set(test)), test


def validation_countries(train, fraction: float = 0.25, seed: int = 0,
                         home: str = "United Kingdom") -> tuple[list[str], list[str]]:
    """(countries that meta-train, countries that validate): a random ``fraction`` of the
    meta-training countries ``train`` (never ``home``) set aside to choose budgets and
    hyperparameters, so that the meta-test countries are used for nothing but the result.
    Both lists sorted."""
    train = list(train)
    if len(set(train)) != len(train):
        raise ValueError("train lists a country more than once")
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be strictly between 0 and 1, got {fraction}")
    others = sorted(c for c in train if c != home)
    n_val = int(len(others) * fraction)
    if n_val < 1:
        raise ValueError(f"{fraction} of the {len(others)} meta-training countries other than "
                         f"{home!r} is {n_val}: no country would validate")
    val = sorted(np.random.default_rng([seed, 9]).choice(others, n_val, replace=False).tolist())
    return sorted(c for c in train if c not in val), val


INFEASIBLE_COLUMNS = ["country", "lines", "invoices", "largest_invoice", "k", "n_query", "reason"]


def infeasible_countries(lines: pd.DataFrame, shots, n_query: int, countries=None) -> pd.DataFrame:
    """The countries that cannot supply an episode of ``k`` support and ``n_query`` query
    lines from two disjoint sets of their invoices, and why; empty when all can.

    ``shots``: K, or the K's a stream draws from (the largest decides: a country that can
    give K lines can give fewer). ``countries``: those to check (default: all in
    ``lines``). Columns: country, lines, invoices, largest_invoice, k, n_query, reason.

    The criterion is exact and deterministic: a country qualifies iff *some* set of its
    invoices holds at least ``k`` lines while the other invoices hold at least
    ``n_query``. Reasons: fewer than two invoices; fewer than ``k + n_query`` lines; or no
    such split (its lines sit on too few, too large invoices -- e.g. 60 lines of 100 on one
    invoice for k=20, n_query=50). :meth:`CountryTasks.episode_rows` serves exactly
    these countries: it first tries random halves of the invoices (as it always has) and,
    when they fail, falls back on a random split that meets this criterion.
    """
    k, n_query = _shape(shots, n_query, False)
    counts = lines.groupby(["country", "invoice"], observed=True).size()
    per_country = {c: group.to_numpy() for c, group in counts.groupby(level="country", observed=True)}
    wanted = sorted(per_country) if countries is None else list(countries)
    rows = [_report_row(c, per_country.get(c, np.zeros(0, dtype=int)), k, n_query) for c in wanted]
    return _report([r for r in rows if r is not None])


def _shape(shots, n_query, drop_infeasible) -> tuple[int, int] | None:
    """(largest K, n_query) checked, or None when neither is given."""
    if shots is None and n_query is None:
        if drop_infeasible:
            raise ValueError("drop_infeasible=True needs the episode shape: pass shots and n_query")
        return None
    if shots is None or n_query is None:
        raise ValueError(f"give both shots and n_query (the episode shape) or neither; got shots={shots!r}, "
                         f"n_query={n_query!r}")
    ks = [shots] if isinstance(shots, (int, np.integer)) else list(shots)
    if not ks:
        raise ValueError("shots is empty; give K or the K's episodes use")
    return max(check_count("shots", k, 1) for k in ks), check_count("n_query", n_query, 1)


def _reason(counts: np.ndarray, k: int, n_query: int) -> str | None:
    """Why invoices of these line ``counts`` cannot give k + n_query lines from disjoint invoices; None if they can."""
    if len(counts) == 0:
        return "no lines"
    reasons = []
    if len(counts) < 2:
        reasons.append(f"only {len(counts)} invoice: support and query must come from different invoices")
    if counts.sum() < k + n_query:
        reasons.append(f"too few lines: {counts.sum()} < k + n_query = {k + n_query}")
    if not reasons and _support_invoices(counts, k, n_query, np.arange(len(counts))) is None:
        reasons.append(f"no split of its {len(counts)} invoices gives >= {k} lines on one side and >= {n_query} "
                       f"on the other (largest invoice: {counts.max()} of {counts.sum()} lines)")
    return "; ".join(reasons) or None


def _report_row(country, counts: np.ndarray, k: int, n_query: int) -> dict | None:
    reason = _reason(counts, k, n_query)
    if reason is None:
        return None
    return {"country": country, "lines": int(counts.sum()), "invoices": len(counts),
            "largest_invoice": int(counts.max(initial=0)), "k": k, "n_query": n_query, "reason": reason}


def _report(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=INFEASIBLE_COLUMNS).astype(
        {"lines": "int64", "invoices": "int64", "largest_invoice": "int64", "k": "int64", "n_query": "int64"})


def _refuse_or_warn(bad: pd.DataFrame, shape: tuple[int, int], drop: bool, where: str) -> None:
    if bad.empty:
        return
    listed = "; ".join(f"{r.country} ({r.reason})" for r in bad.itertuples())
    headline = (f"{len(bad)} {'country' if len(bad) == 1 else 'countries'} cannot supply episodes of "
                f"{shape[0]} support and {shape[1]} query lines "
                f"from separate invoices: {listed}")
    if not drop:
        raise ValueError(f"{where}: {headline}. Pass drop_infeasible=True to leave them out, or ask for fewer lines.")
    noun = "country" if len(bad) == 1 else "countries"
    warnings.warn(f"{where} left out {len(bad)} {noun} that cannot supply episodes of {shape[0]} support and "
                  f"{shape[1]} query lines from separate invoices: {listed}", stacklevel=3)


def _subset_in_range(sizes: np.ndarray, low: int, high: int) -> list[int] | None:
    """Positions of some items of ``sizes`` whose sum lies in [low, high], or None
    (subset sum by dynamic programming over sums 0..high, first items first)."""
    if low <= 0:
        return []
    reached = np.zeros(high + 1, dtype=bool)
    reached[0] = True
    by = np.full(high + 1, -1)  # the item with which each sum was first reached
    for j, size in enumerate(sizes):
        if size > high:
            continue
        new = np.flatnonzero(reached[: high + 1 - size] & ~reached[size:]) + size
        reached[new], by[new] = True, j
        hits = new[new >= low]
        if hits.size:
            chosen, total = [], int(hits[0])
            while total:  # each sum was first reached from a sum reached earlier, by an earlier item
                chosen.append(int(by[total]))
                total -= int(sizes[by[total]])
            return chosen
    return None


def _support_invoices(counts: np.ndarray, k: int, n_query: int, order: np.ndarray) -> np.ndarray | None:
    """Invoices (positions in ``counts``, in ``order``'s preference) holding >= ``k`` lines
    while the others hold >= ``n_query``; None if there are none.

    With ``width = lines - k - n_query``, an invoice of at most ``width + 1`` lines is
    *small*: adding small invoices one by one to a set of fewer than ``k`` lines reaches
    ``k`` without passing ``lines - n_query``. So a split exists iff some set of the large
    invoices sums to at most ``lines - n_query`` and, with all the small ones, to at least
    ``k`` -- a subset sum over the (few) large invoices, then small ones added in ``order``.
    """
    total = int(counts.sum())
    width = total - k - n_query
    if len(counts) < 2 or width < 0:
        return None
    large = counts > width + 1
    big = order[large[order]]
    chosen = _subset_in_range(counts[big], k - int(counts[~large].sum()), total - n_query)
    if chosen is None:
        return None
    support = [int(big[j]) for j in chosen]
    lines = int(counts[support].sum())
    for i in order:
        if lines >= k:
            break
        if not large[i]:
            support.append(int(i))
            lines += int(counts[i])
    return np.asarray(support, dtype=int)


class CountryTasks:
    """Standardised features and centred targets, and episodes drawn per country.

    ``x`` (float32 ``[lines, 2]``) and ``y`` (float32 ``[lines]``) use the means and
    standard deviations of the ``train_countries``' lines only.

    Given the episode shape -- ``shots`` (K, or the K's of :meth:`stream`) and ``n_query``
    -- every country is checked at construction (:func:`infeasible_countries`): those that
    cannot supply such episodes raise one ValueError listing them all with reasons, or,
    with ``drop_infeasible=True``, are left out of both lists before the statistics are
    computed, with a warning; ``dropped`` holds their report (empty when none was).
    """

    def __init__(self, lines: pd.DataFrame, train_countries, test_countries, shots=None,
                 n_query: int | None = None, drop_infeasible: bool = False):
        shape = _shape(shots, n_query, drop_infeasible)
        countries = list(train_countries) + list(test_countries)
        unknown = sorted(set(countries) - set(lines["country"]))
        if unknown:
            raise ValueError(f"countries {unknown} have no lines")
        self.dropped = _report([])
        if shape is not None:
            self.dropped = infeasible_countries(lines, *shape, countries=countries)
            _refuse_or_warn(self.dropped, shape, drop_infeasible, "CountryTasks")
            out = set(self.dropped["country"])
            train_countries = [c for c in train_countries if c not in out]
            test_countries = [c for c in test_countries if c not in out]
            countries = list(train_countries) + list(test_countries)
            if not train_countries:
                raise ValueError("CountryTasks: no meta-training country can supply the episodes")
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

    def infeasible(self, shots, n_query: int) -> pd.DataFrame:
        """The countries of this task set that cannot supply episodes of ``shots`` support
        (the largest K) and ``n_query`` query lines; see :func:`infeasible_countries`."""
        k, n_query = _shape(shots, n_query, False)
        rows = [_report_row(c, self._rows[c][2], k, n_query) for c in self.train_countries + self.test_countries]
        return _report([r for r in rows if r is not None])

    def episode(self, country: str, k: int, n_query: int, rng: np.random.Generator):
        """``(support_x, support_y, query_x, query_y)``: ``k`` support lines from one random
        half of the country's invoices (by number of lines), ``n_query`` from the other half
        (see :meth:`episode_rows`)."""
        s, q = self.episode_rows(country, k, n_query, rng)
        return self.x[s], self.y[s], self.x[q], self.y[q]

    def episode_rows(self, country: str, k: int, n_query: int, rng: np.random.Generator,
                     tries: int = 100) -> tuple[np.ndarray, np.ndarray]:
        """The line numbers (rows of ``lines``) of an :meth:`episode`'s support and query.

        Up to ``tries`` times, the invoices are shuffled and cut where about half the lines
        are on each side; the first cut with ``k`` lines on one side and ``n_query`` on the
        other gives the episode. If none does (a country with a few large invoices), a
        random split that meets the exact criterion of :func:`infeasible_countries` is used,
        so the countries that check passes are exactly those served; the others raise.
        """
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
        support = _support_invoices(counts, k, n_query, rng.permutation(len(counts)))
        if support is None:
            raise ValueError(f"{country}: no split of its invoices gives {k} support and {n_query} query lines "
                             f"({_reason(counts, k, n_query)})")
        in_support = np.zeros(len(counts), dtype=bool)
        in_support[support] = True
        side = in_support[np.repeat(np.arange(len(counts)), counts)]  # per line (rows are grouped by invoice)
        return (rng.choice(rows[side], k, replace=False), rng.choice(rows[~side], n_query, replace=False))

    def stream(self, shots, n_query: int, rng: np.random.Generator, batch: int):
        """Endless meta-training episodes: per batch one K from ``shots``, countries uniform."""
        while True:
            k = int(rng.choice(shots))
            for _ in range(batch):
                country = self.train_countries[rng.integers(len(self.train_countries))]
                yield self.episode(country, k, n_query, rng)


# --- Products entering a country: the "new market" unit of the pricing chapter ----------

ENTRY_KEY = "|"  # joins country and stock code into one series name: "France|22423"


def country_product_sales(retail: pd.DataFrame, home: str = "United Kingdom",
                          not_countries=("Unspecified", "European Community")) -> pd.DataFrame:
    """Weekly units of every product in every country except ``home``, as
    :func:`metaecom.data.weekly_sales` returns them, with ``product`` = "country|stock code".

    Each (country, product) series starts at the week the country first bought the
    product (its *entry*), so :func:`metaecom.cases.launches.launch_weeks` and
    ``launch_curves`` read entries as they read launches. Sale lines a later cancellation
    undid are left out, matched on the real stock code before the key is formed (a
    cancellation never undoes another product's line). ``not_countries`` are labels that
    are not one market ("Unspecified", "European Community") and are left out.
    """
    require_columns(retail, ["invoice", "stock_code", "quantity", "invoice_date", "country", "customer_id"],
                    "the retail table")
    country = retail["country"].astype(str)
    if home not in set(country):
        raise ValueError(f"home market {home!r} has no lines; countries: {sorted(set(country))[:5]}...")
    abroad = (~undone_sales(retail) & (country != home) & ~country.isin(list(not_countries))).to_numpy()
    if not abroad.any():
        raise ValueError("no line is left outside the home market")
    lines = retail[abroad]
    keyed = lines.assign(stock_code=country[abroad] + ENTRY_KEY + lines["stock_code"].astype(str))
    return weekly_sales(keyed)


def split_entry(keys) -> tuple[np.ndarray, np.ndarray]:
    """(countries, stock codes) of "country|stock code" keys."""
    parts = pd.Series(np.asarray(keys, dtype=str)).str.split(ENTRY_KEY, n=1, regex=False)
    if (parts.str.len() != 2).any():
        raise ValueError(f"keys must look like 'country{ENTRY_KEY}stock code'")
    return parts.str[0].to_numpy(), parts.str[1].to_numpy()


def units_before(weekly: pd.DataFrame, products, weeks, n_weeks: int) -> np.ndarray:
    """Units of each ``products[i]`` sold in the ``n_weeks`` weeks strictly before
    ``weeks[i]`` (a week start), from a :func:`metaecom.data.weekly_sales` table.

    The feature "how the product sells at home" for a product entering another country:
    only weeks that ended before the entry week count, so it is known when the entry
    happens. A product with no sales in ``weekly`` gets 0.
    """
    n_weeks = check_count("n_weeks", n_weeks, 1)
    products = np.asarray(products, dtype=str)
    weeks = pd.DatetimeIndex(weeks)
    if len(products) != len(weeks):
        raise ValueError(f"{len(products)} products but {len(weeks)} weeks")
    table = weekly[["product", "period", "value"]].astype({"product": str})
    out = np.zeros(len(products))
    by_product = {p: g for p, g in table.groupby("product", sort=False)}
    for i, (product, week) in enumerate(zip(products, weeks)):
        rows = by_product.get(product)
        if rows is not None:
            inside = (rows["period"] < week) & (rows["period"] >= week - pd.Timedelta(weeks=n_weeks))
            out[i] = float(rows.loc[inside, "value"].sum())
    return out
