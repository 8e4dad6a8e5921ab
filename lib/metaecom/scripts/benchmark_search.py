"""How matching offers scales with the catalogue: index build time and time per query.

    python -m metaecom.scripts.benchmark_search                   # 10^3, 10^4, 10^5 offers
    python -m metaecom.scripts.benchmark_search --sizes 1000 10000

For each catalogue size it builds the two indexes of the product-matching chapter from
PriceRunner offer titles -- TF-IDF (character 3-5-grams, scikit-learn) and MiniLM
embeddings (computed, not read from the cache) -- and times single queries against
each: transform or embed the query, score every indexed offer, take the top 5. The
PriceRunner file has 35,311 titles; a larger catalogue repeats them, each copy with its
own number appended, so the work per title is that of real titles. Search is exact
(brute force); the chapter says when an approximate index starts to pay.

Writes ``book/results/search_scaling.json`` with the machine; the chapter plots it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from metaecom import __version__
from metaecom.cases.search import lexical_vectorizer
from metaecom.data import load_pricerunner
from metaecom.encoder import SentenceEncoder
from metaecom.runrecord import cpu_name

RESULTS = Path(__file__).resolve().parents[3] / "book" / "results" / "search_scaling.json"


def catalogue_titles(titles: list[str], size: int) -> list[str]:
    """``size`` titles: the real ones first, then numbered copies."""
    out = list(titles[:size])
    copy = 1
    while len(out) < size:
        out += [f"{t} {copy}" for t in titles[: size - len(out)]]
        copy += 1
    return out


def _median_seconds(function, repeats: int) -> float:
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        function(i)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def measure(titles: list[str], size: int, encoder: SentenceEncoder, queries: list[str], repeats: int) -> dict:
    catalogue = catalogue_titles(titles, size)
    start = time.perf_counter()
    vectorizer = lexical_vectorizer()
    index = vectorizer.fit_transform(catalogue).T.tocsr()
    lexical_build = time.perf_counter() - start

    def lexical_query(i):
        scores = (vectorizer.transform([queries[i % len(queries)]]) @ index).toarray().ravel()
        np.argpartition(-scores, 5)[:5]

    start = time.perf_counter()
    vectors = encoder.encode_uncached(catalogue)
    dense_build = time.perf_counter() - start

    def dense_query(i):
        query = encoder.encode_uncached([queries[i % len(queries)]])
        scores = vectors @ query[0]
        np.argpartition(-scores, 5)[:5]

    return {"offers": size, "tfidf_build_s": lexical_build, "tfidf_query_ms": 1e3 * _median_seconds(lexical_query, repeats),
            "tfidf_index_mb": (index.data.nbytes + index.indices.nbytes + index.indptr.nbytes) / 2**20,
            "minilm_build_s": dense_build, "minilm_query_ms": 1e3 * _median_seconds(dense_query, repeats),
            "minilm_index_mb": vectors.nbytes / 2**20}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=50, help="timed single queries per index")
    parser.add_argument("--results", default=str(RESULTS))
    args = parser.parse_args(argv)
    if any(size < 10 for size in args.sizes):
        raise SystemExit("every size must be at least 10 offers")
    titles = load_pricerunner()["title"].astype(str).tolist()
    queries = titles[::-97][: args.repeats]
    encoder = SentenceEncoder()
    encoder.encode_uncached(queries[:2])  # load the model before timing
    import torch

    rows = []
    for size in args.sizes:
        rows.append(measure(titles, size, encoder, queries, args.repeats))
        print(json.dumps(rows[-1]), flush=True)
    content = {"date": dt.date.today().isoformat(), "package": __version__,
               "cpu": f"{cpu_name()} ({os.cpu_count()} logical cores)", "torch_threads": torch.get_num_threads(),
               "python": platform.python_version(), "device": str(encoder.device), "sizes": rows}
    Path(args.results).write_text(json.dumps(content, indent=2) + "\n")
    return content


if __name__ == "__main__":
    main()
