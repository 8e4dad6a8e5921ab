"""How fast the data layer is: ``python -m metaecom.data.benchmark``.

Measures, on the machine it runs on, (1) loading each dataset a second time, from the
parsed cache, and (2) sampling 1,000 Omniglot 20-way 5-shot episodes (15 queries per
class) over the rotation-augmented evaluation classes. Prints a Markdown table with the
hardware; the numbers go into the book and issue notes, never into timed tests.
"""

from __future__ import annotations

import platform
import time

import numpy as np

from metaecom import data, tasks
from metaecom.runrecord import cpu_name

LOADERS = {
    "MovieLens 100K": data.load_movielens_100k,
    "MovieLens 1M (users, movies)": lambda: data.load_movielens_1m(ratings=False),
    "Amazon All_Beauty": lambda: data.load_amazon_reviews("All_Beauty"),
    "PriceRunner": data.load_pricerunner,
    "Online Retail": data.load_online_retail,
    "Omniglot background 28x28": lambda: data.load_omniglot("background", 28),
    "Omniglot evaluation 28x28": lambda: data.load_omniglot("evaluation", 28),
    "BANKING77": data.load_banking77,
    "Bitext": data.load_bitext,
}


def _seconds(action, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    print(f"machine: {cpu_name()}, Python {platform.python_version()}\n")
    print("| what | seconds (best of 3) |\n|---|---|")
    for name, load in LOADERS.items():
        load()  # first load fills the cache
        print(f"| load {name} from the cache | {_seconds(load):.3f} |")
    images = data.load_omniglot("evaluation", 28).images
    rotated, _ = data.with_rotations(images)
    labels = np.repeat(np.arange(len(rotated)), rotated.shape[1])
    sampler = tasks.FewShotSampler(labels, n_way=20, k_shot=5, n_query=15, seed=0)
    print(f"| sample 1,000 20-way 5-shot episodes over {len(rotated):,} classes | "
          f"{_seconds(lambda: sampler.episodes(1000)):.3f} |")


if __name__ == "__main__":
    main()
