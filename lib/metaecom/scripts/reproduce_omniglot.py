"""Reproduce the Omniglot tables of the metric- and optimization-based papers within a stated time budget.

    python -m metaecom.scripts.reproduce_omniglot --method ProtoNet --minutes 30
    python -m metaecom.scripts.reproduce_omniglot --method MAML --way 5 --minutes 6

Metric-based methods write ``book/results/omniglot.json``, gradient-based ones (MAML,
FOMAML, ANIL, Reptile) ``book/results/omniglot_maml.json``, unless ``--out`` says otherwise.

Protocol (Vinyals et al. 2016, followed by Snell et al. 2017 and later papers): the 964
characters of the 30 *background* alphabets are meta-trained on, each rotation by 0, 90,
180 and 270 degrees counting as its own class (3,856 classes); images are resized to
28x28; the 659 characters of the 20 *evaluation* alphabets (with rotations, 2,636
classes) are held out for meta-testing. Test accuracy is averaged over 1,000 episodes
per setting (5/20-way, 1/5-shot, 15 queries per class) with a 95% confidence interval;
every method sees the same test episodes.

Training follows each paper where the budget allows (Conv4 backbone; Adam at 1e-3;
ProtoNet on 60-way episodes with 5 queries per class) and lists every deviation in the
results file, e.g. one model trained with 1-shot episodes serves all four settings,
and training stops at the time budget rather than at convergence.

Gradient-based methods put a linear head on Conv4, so a model has as many outputs as its
tasks have classes: as in their papers, a 5-way and a 20-way model are trained separately
(``--way``), each stored as its own run (``"MAML/5-way"``) and evaluated in the 1- and
5-shot settings of its way. Hyperparameters are the papers': MAML (Finn et al. 2017, and
its reference code) 5-way: 1 inner step of 0.4, 32 tasks per meta-batch; 20-way: 5 steps
of 0.1, 16 tasks; 1 query per class in meta-training; 10 inner steps at test time; Adam
at 1e-3 outside. FOMAML and ANIL (Raghu et al. 2020) use MAML's settings. Reptile
(Nichol et al. 2018): 10 examples per class pooled per task, inner Adam (β1 = 0) on
minibatches — 5 steps of 10 at 1e-3 (5-way), 10 steps of 20 at 5e-4 (20-way) — 5 tasks
per meta-step, outer step size annealed linearly from 1 to 0 over the budget; at test time
50 steps on minibatches of 5 (5-way) or 10 (20-way) support examples.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys

import numpy as np
import torch

from metaecom.device import describe_device, get_device
from metaecom.data.omniglot import omniglot_classes
from metaecom.methods import MatchingNet, ProtoNet, RelationNet, SiameseNet
from metaecom.models import Conv4
from metaecom.reproduction import OMNIGLOT_SETTINGS, evaluate_settings, print_results, results_path, write_run
from metaecom.runrecord import cpu_name
from metaecom.seeding import seed_everything

PROTOCOL = ("Omniglot, Vinyals et al. split: meta-train on the 964 background characters x 4 rotations "
            "(3,856 classes), test on the 659 evaluation characters x 4 rotations (2,636 classes); 28x28 "
            "images; 1,000 test episodes per setting, 15 queries per class, same episodes for every method.")

#: Per method: training episode shape (way, shot, queries) and the deviations from its paper.
TRAINING = {
    "ProtoNet": dict(n_way=60, k_shot=1, n_query=5, deviations=[
        "one model, trained on 1-shot episodes, is evaluated in all four settings (the paper trains a 1-shot "
        "and a 5-shot model)",
        "training stops at the time budget, not at convergence on a validation set; the learning rate is "
        "halved every 1,000 episodes instead of every 2,000 because the run is short"]),
    "MatchingNet": dict(n_way=20, k_shot=1, n_query=15, deviations=[
        "no full-context embeddings (the paper reports them as optional for Omniglot)",
        "one model, trained on 20-way 1-shot episodes, is evaluated in all four settings",
        "training stops at the time budget, not at convergence"]),
    "RelationNet": dict(n_way=20, k_shot=1, n_query=15, deviations=[
        "the relation module is an MLP on the 64-d embeddings, not the paper's convolutional module on "
        "feature maps; the Conv4 embedding keeps its max-pooling in every block",
        "one model, trained on 20-way 1-shot episodes, is evaluated in all four settings",
        "training stops at the time budget, not at convergence"]),
    "SiameseNet": dict(n_way=20, k_shot=1, n_query=15, deviations=[
        "trained on (query, support) pairs from 20-way 1-shot episodes with the Conv4 backbone, not on "
        "the paper's sampled pairs with its larger network and affine distortions",
        "training stops at the time budget, not at convergence"]),
}


_MAML_FAMILY = {way: dict(k_shot=1, n_query=1, test_inner_steps=10, meta_lr=1e-3, **shape)
                for way, shape in {5: dict(tasks_per_step=32, inner_steps=1, inner_lr=0.4),
                                   20: dict(tasks_per_step=16, inner_steps=5, inner_lr=0.1)}.items()}
_MAML_DEVIATIONS = [
    "Conv4 with max-pooling (the metric-based papers' backbone), not MAML's strided convolutions",
    "one model trained on 1-shot tasks is evaluated at 1 and 5 shots (the paper trains a 5-shot model too)",
    "test episodes have 15 queries per class (MAML's code tests on 1 per class); batch normalisation "
    "uses the statistics of the batch, as in MAML's code",
    "training stops at the time budget (see the meta-steps it allowed) instead of after 60,000 meta-steps",
]

#: Gradient-based methods, per way: constructor settings (beyond n_way) and the deviations.
GRADIENT = {
    "MAML": _MAML_FAMILY,
    "FOMAML": _MAML_FAMILY,
    "ANIL": _MAML_FAMILY,
    "Reptile": {5: dict(k_shot=1, n_query=9, inner_steps=5, inner_batch=10, inner_lr=1e-3, tasks_per_step=5,
                        test_inner_steps=50, test_inner_batch=5),
                20: dict(k_shot=1, n_query=9, inner_steps=10, inner_batch=20, inner_lr=5e-4, tasks_per_step=5,
                         test_inner_steps=50, test_inner_batch=10)},
}
GRADIENT_DEVIATIONS = {
    "MAML": _MAML_DEVIATIONS,
    "FOMAML": _MAML_DEVIATIONS + ["the MAML paper reports first-order results on MiniImagenet only"],
    "ANIL": _MAML_DEVIATIONS + ["the ANIL paper reports 20-way Omniglot only"],
    "Reptile": [
        "Conv4 with max-pooling and a linear head, not the paper's strided convolutions",
        "batch normalisation uses the statistics of the batch (the query set at test time), i.e. the "
        "transductive setting, as in the paper's transductive row, which is the one quoted",
        "one model per way is evaluated at 1 and 5 shots (the paper trains a 1-shot and a 5-shot model)",
        "the outer step size is annealed in 10 constant pieces over the time budget, not per step",
        "training stops at the time budget (see the meta-steps it allowed) instead of after 100,000 (5-way) "
        "or 200,000 (20-way) meta-steps",
    ],
}


def build_gradient(method: str, n_way: int, seed: int, device):
    """A gradient-based method on a fresh Conv4 + linear head with its paper's settings for ``n_way``."""
    from torch import nn

    from metaecom.methods import ANIL, FOMAML, MAML, Reptile

    if method not in GRADIENT:
        raise ValueError(f"unknown gradient method {method!r}; choose from {sorted(GRADIENT)}")
    if n_way not in GRADIENT[method]:
        raise ValueError(f"{method} has settings for {sorted(GRADIENT[method])}-way models, not {n_way}-way")
    seed_everything(seed)
    model = nn.Sequential(Conv4(), nn.Linear(64, n_way))
    kind = {"MAML": MAML, "FOMAML": FOMAML, "ANIL": ANIL, "Reptile": Reptile}[method]
    return kind(model, n_way=n_way, seed=seed, device=device, **GRADIENT[method][n_way])


def build(method: str, seed: int, device) -> ProtoNet | MatchingNet | RelationNet | SiameseNet:
    """The method with a fresh Conv4 backbone and its training episode shape."""
    if method not in TRAINING:
        raise ValueError(f"unknown method {method!r}; choose from {sorted(TRAINING)}")
    seed_everything(seed)
    shape = {k: v for k, v in TRAINING[method].items() if k != "deviations"}
    common = dict(meta_lr=1e-3, meta_lr_halving_every=1000, seed=seed, device=device, **shape)
    if method == "ProtoNet":
        return ProtoNet(Conv4(), **common)
    if method == "MatchingNet":
        return MatchingNet(Conv4(), **common)
    if method == "RelationNet":
        return RelationNet(Conv4(), embedding_dim=64, **common)
    return SiameseNet(Conv4(), embedding_dim=64, **common)


def train_within_budget(method, x, y, minutes: float, max_steps: int, desc: str) -> None:
    """Meta-train for ``minutes`` of wall time (or ``max_steps`` steps). Reptile's outer step
    size is annealed linearly towards 0 over the budget, in 10 constant pieces."""
    pieces = 10 if method.name == "Reptile" else 1
    for piece in range(pieces):
        left = max_steps - len(method.history)
        if left <= 0:
            break
        if pieces > 1:
            method.meta_lr = 1.0 - (piece + 0.5) / pieces
        method.meta_train(x, y, meta_steps=left, desc=desc, max_seconds=60 * minutes / pieces)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", required=True, choices=sorted(TRAINING) + sorted(GRADIENT))
    parser.add_argument("--way", type=int, default=5, choices=(5, 20),
                        help="gradient-based methods: train the 5-way or the 20-way model (default 5)")
    parser.add_argument("--minutes", type=float, default=30.0, help="training time budget (default 30)")
    parser.add_argument("--max-episodes", type=int, default=1_000_000,
                        help="stop earlier after this many episodes (meta-steps for gradient-based methods)")
    parser.add_argument("--test-episodes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="results file (default: the book's, by method family)")
    parser.add_argument("--checkpoint", default=None, help="also save the trained weights here (.pt)")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.test_episodes < 2:
        parser.error("--minutes must be positive and --test-episodes at least 2")
    gradient = args.method in GRADIENT
    out = args.out or str(results_path("omniglot_maml" if gradient else "omniglot"))

    device = get_device()
    train_x, train_y = omniglot_classes("background")
    test_x, test_y = omniglot_classes("evaluation")
    if gradient:
        method = build_gradient(args.method, args.way, args.seed, device)
        run_name, deviations = f"{args.method}/{args.way}-way", GRADIENT_DEVIATIONS[args.method]
        settings = tuple(s for s in OMNIGLOT_SETTINGS if s[0] == args.way)
    else:
        method = build(args.method, args.seed, device)
        run_name, deviations, settings = args.method, TRAINING[args.method]["deviations"], OMNIGLOT_SETTINGS
    print(f"{run_name}: training on {len(np.unique(train_y))} classes for up to {args.minutes:g} min "
          f"on {describe_device(device)}", flush=True)
    train_within_budget(method, train_x, train_y, args.minutes, args.max_episodes, f"{run_name} meta-training")
    if args.checkpoint:
        torch.save({m.__class__.__name__: m.state_dict() for m in method.modules()}, args.checkpoint)
    results = evaluate_settings(method, test_x, test_y, settings=settings, episodes=args.test_episodes,
                                seed=args.seed + 1, show_progress=True)
    window = max(1, len(method.history) // 20)
    training = {
        "episodes": len(method.history), "way": method.n_way, "shot": method.k_shot, "queries": method.n_query,
        "budget_min": args.minutes, "train_s": round(method.train_seconds, 1),
        "final_loss": round(float(np.mean(method.history[-window:])), 4),
        "device": describe_device(device), "cpu": f"{cpu_name()} ({os.cpu_count()} logical cores)",
        "torch_threads": torch.get_num_threads(), "torch": torch.__version__, "seed": args.seed,
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d"),
    }
    # The results files keep their first keys: "episodes" counts meta-steps, and for the
    # gradient methods "tasks" is tasks_seen and "meta_batch" is tasks_per_step.
    if gradient:
        training.update(tasks=method.tasks_seen, meta_batch=method.tasks_per_step,
                        inner_steps=method.inner_steps, test_inner_steps=method.test_inner_steps)
    write_run(out, run_name, training, results, deviations, protocol=PROTOCOL)
    print_results(results, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
