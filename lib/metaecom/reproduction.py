"""Reproduction runs: our accuracy on a standard benchmark, stored beside the published one.

A method "reproduces" a paper when it is evaluated on the same protocol and lands near the
published number. Training is expensive, so a reproduction is a separate command (e.g.
``python -m metaecom.reproduce_omniglot``) that writes a small JSON *results file*; the
chapters read that file and render it next to the paper's table, with the hardware, the
budget and the date of the run that produced it.

Results file layout (one file per benchmark, one entry per method, rewritten in place
when a method is rerun)::

    {"benchmark": "omniglot", "protocol": "...", "runs": {
        "ProtoNet": {"training": {...budget, episodes, wall_s, device, cpu, date...},
                     "deviations": ["..."],
                     "results": [{"n_way": 5, "k_shot": 1, "accuracy": 98.4, "ci": 0.2,
                                  "episodes": 1000, "n_query": 15}, ...]}}}

Accuracies are percentages; ``ci`` is the half-width of the 95% confidence interval over
test episodes. A method whose paper trains one model per setting group (MAML's 5-way and
20-way models) stores one run per model, named ``"<method>/<model>"`` (``"MAML/5-way"``);
the tables count both as the method ``"MAML"``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from metaecom.evaluate import episode_accuracies, mean_ci  # episode_accuracies: re-exported
from metaecom.methods.base import Method

#: The four Omniglot settings every paper reports: (n_way, k_shot).
OMNIGLOT_SETTINGS = ((5, 1), (5, 5), (20, 1), (20, 5))

#: Published Omniglot test accuracies (%), in the order of :data:`OMNIGLOT_SETTINGS`
#: (None where the paper gives no number), with the paper they come from.
PUBLISHED_OMNIGLOT = {
    "ProtoNet": ((98.8, 99.7, 96.0, 98.9), "Snell et al. 2017, Table 1"),
    "MatchingNet": ((98.1, 98.9, 93.8, 98.5), "Vinyals et al. 2016, Table 1"),
    "RelationNet": ((99.6, 99.8, 97.6, 99.1), "Sung et al. 2018, Table 1"),
    "SiameseNet": ((97.3, 98.4, 88.2, 97.0), "Koch et al. 2015, as reported by Vinyals et al. 2016"),
    "MAML": ((98.7, 99.9, 95.8, 98.9), "Finn et al. 2017, Table 1"),
    # transductive, like the runs here (batch statistics of the query set at test time); the
    # same table's non-transductive row is 95.39, 98.90, 88.14, 96.65
    "Reptile": ((97.68, 99.48, 89.43, 97.12), "Nichol et al. 2018, Table 1 (Reptile + Transduction)"),
    "ANIL": ((None, None, 96.2, 98.0), "Raghu et al. 2020"),
}


def results_path(benchmark: str = "omniglot") -> Path:
    """Where the book keeps a benchmark's results file: ``book/results/<benchmark>.json``
    of the repository this package was installed from (it is installed editable)."""
    return Path(__file__).resolve().parents[2] / "book" / "results" / f"{benchmark}.json"


def setting_name(n_way: int, k_shot: int) -> str:
    return f"{n_way}-way {k_shot}-shot"


def evaluate_settings(method: Method, x, labels, settings=OMNIGLOT_SETTINGS, n_query: int = 15,
                      episodes: int = 1000, seed: int = 0, show_progress: bool = False) -> list[dict]:
    """One result row per (n_way, k_shot) setting: mean accuracy, 95% CI, episode count."""
    rows = []
    for n_way, k_shot in settings:
        desc = f"{method.name} {setting_name(n_way, k_shot)}" if show_progress else None
        scores = episode_accuracies(method, x, labels, n_way, k_shot, n_query, episodes, seed, desc)
        mean, ci = mean_ci(scores)
        rows.append({"n_way": n_way, "k_shot": k_shot, "accuracy": round(mean, 3), "ci": round(ci, 3),
                     "episodes": episodes, "n_query": n_query})
    return rows


def write_run(path, method_name: str, training: dict, results: list[dict], deviations=(),
              benchmark: str = "omniglot", protocol: str = "") -> dict:
    """Add (or replace) one method's run in the results file at ``path``; return the file's content."""
    path = Path(path)
    content = json.loads(path.read_text()) if path.exists() else {"benchmark": benchmark, "runs": {}}
    if content.get("benchmark") != benchmark:
        raise ValueError(f"{path} holds benchmark {content.get('benchmark')!r}, not {benchmark!r}")
    if protocol:
        content["protocol"] = protocol
    content["runs"][method_name] = {"training": training, "deviations": list(deviations), "results": results}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=2, sort_keys=False) + "\n")
    return content


def print_results(results: list[dict], path) -> None:
    """Print a run's accuracy per setting and where its results file is (what the
    reproduction commands show at the end)."""
    for r in results:
        print(f"  {r['n_way']}-way {r['k_shot']}-shot: {r['accuracy']:.2f} ± {r['ci']:.2f} %")
    print(f"wrote {path}")


def method_of(run_name: str) -> str:
    """The method a run belongs to: ``"MAML/5-way"`` -> ``"MAML"``; ``"ProtoNet"`` -> ``"ProtoNet"``."""
    return run_name.split("/", 1)[0]


def read_results(path) -> pd.DataFrame:
    """The results file as a long table: one row per (run, setting), with the run's method."""
    content = json.loads(Path(path).read_text())
    rows = []
    for name, run in content["runs"].items():
        for r in run["results"]:
            rows.append({"method": method_of(name), "run": name,
                         "setting": setting_name(r["n_way"], r["k_shot"]), **r})
    if not rows:
        raise ValueError(f"{path} holds no results")
    return pd.DataFrame(rows)


def read_training(path) -> pd.DataFrame:
    """How each run in the results file was trained: one row per run (per method, or per
    model of a method that trains several)."""
    content = json.loads(Path(path).read_text())
    return pd.DataFrame([{"method": m, **run["training"]} for m, run in content["runs"].items()]).set_index("method")


def comparison_table(results: pd.DataFrame, published=PUBLISHED_OMNIGLOT, settings=OMNIGLOT_SETTINGS) -> pd.DataFrame:
    """Ours (mean ± CI) beside the published accuracy, one row per method, two columns per setting."""
    columns = {}
    methods = list(dict.fromkeys(results["method"]))
    for n_way, k_shot in settings:
        name = setting_name(n_way, k_shot)
        ours, paper = [], []
        for method in methods:
            row = results[(results["method"] == method) & (results["setting"] == name)]
            if len(row) > 1:
                raise ValueError(f"{method} has {len(row)} results for {name} (runs {list(row['run'])}); "
                                 "keep one run per setting")
            ours.append(f"{row['accuracy'].iloc[0]:.1f} ± {row['ci'].iloc[0]:.1f}" if len(row) else "—")
            value = published.get(method, ((None,) * len(settings), ""))[0][settings.index((n_way, k_shot))]
            paper.append("—" if value is None else str(value))
        columns[(name, "ours")] = ours
        columns[(name, "paper")] = paper
    table = pd.DataFrame(columns, index=pd.Index(methods, name="method"))
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    return table
