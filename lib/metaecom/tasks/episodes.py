"""Episodes: how a data set is cut into the many small tasks a meta-learner trains on.

An **episode** is one few-shot task. It has two parts:

- the **support** set, the few labelled examples the learner may adapt on (for example
  5 photos of each of 20 product categories, or the first ratings of a new user), and
- the **query** set, further examples of the *same* task on which the adapted learner is
  scored. The query labels are never shown to the learner during adaptation.

Meta-training repeats "adapt on support, score on query" over thousands of episodes, so
the learner gets good at *learning from a few examples* rather than at one fixed task.

For the scores to mean anything, the tasks used for meta-testing must be new: their
classes, users, items, countries or products must not appear in meta-training. This
module therefore first **splits the task units** (classes, users and items, products)
into disjoint meta-train / meta-validation / meta-test groups, and only then samples
episodes inside each group. Splitting rows at random instead would leak the test tasks
into training and overstate how well the learner copes with something new.

Every episode stores *row indices* into the caller's table or array (not the data itself),
so one data set in memory serves any number of episodes. Every sampler takes a ``seed``:
the same arguments always give the same episodes.
"""


from __future__ import annotations

import collections.abc
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np
import pandas as pd

from metaecom.checks import check_count, plain
from metaecom.tasks.feasibility import refuse_infeasible, unit_report


class Task(NamedTuple):
    """One task as arrays: what a meta-learner adapts on and what it is scored on.

    Any 4-tuple ``(support_x, support_y, query_x, query_y)`` is accepted wherever a task
    is; this named form only makes the fields readable (``task.support_x``).
    """

    support_x: object
    support_y: object
    query_x: object
    query_y: object


@dataclass(frozen=True, eq=False)
class Episode:
    """One few-shot task: what the learner may adapt on (support) and what it is scored on (query).

    ``support`` and ``query`` are integer row indices into the source table or array;
    ``support_y`` and ``query_y`` are the matching targets. For classification the targets
    are episode labels ``0..n_way-1`` and ``classes[i]`` is the original label behind
    episode label ``i``; for regression the targets are the values themselves and ``task``
    names the task (a user id, a country, a product). Episodes compare by identity
    (``eq=False``), because comparing NumPy arrays field by field has no single answer.
    """

    support: np.ndarray
    query: np.ndarray
    support_y: np.ndarray
    query_y: np.ndarray
    classes: tuple | None = None
    task: object = None

    def __post_init__(self):
        if len(self.support) != len(self.support_y):
            raise ValueError(f"support has {len(self.support)} rows but support_y has {len(self.support_y)}")
        if len(self.query) != len(self.query_y):
            raise ValueError(f"query has {len(self.query)} rows but query_y has {len(self.query_y)}")



# ---------------------------------------------------------------------------------------
# Classification: class-disjoint splits and N-way K-shot episodes
# ---------------------------------------------------------------------------------------

def split_classes(labels, fractions=(0.6, 0.2, 0.2), seed: int = 0) -> dict[str, np.ndarray]:
    """Split the distinct labels into class-disjoint meta-train, meta-val and meta-test sets.

    Few-shot classification is judged on classes the learner has never seen, so the split
    is over *classes*, not rows. The sorted distinct labels are shuffled with ``seed`` and
    cut by ``fractions`` (train, val, test), each split getting at least one class. Returns
    ``{"train": ..., "val": ..., "test": ...}``, each a sorted array of labels.
    """
    fractions = np.asarray(fractions, dtype=float)
    if fractions.shape != (3,) or np.any(fractions <= 0) or not np.isclose(fractions.sum(), 1.0):
        raise ValueError(f"fractions must be three positive numbers that sum to 1, got {fractions.tolist()}")
    classes = np.unique(np.asarray(labels).ravel())
    n = len(classes)
    if n < 3:
        raise ValueError(f"need at least 3 classes for a train/val/test split, got {n}")

    # Largest-remainder rounding: floor every share, then hand the leftover classes to the
    # splits whose shares were rounded down most.
    shares = fractions * n
    counts = np.floor(shares).astype(int)
    for i in np.argsort(-(shares - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    # No split may be empty: move a class over from the largest split.
    for i in range(3):
        if counts[i] == 0:
            counts[np.argmax(counts)] -= 1
            counts[i] = 1

    shuffled = classes[np.random.default_rng(seed).permutation(n)]
    train, val, test = np.split(shuffled, np.cumsum(counts)[:-1])
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


class FewShotSampler:
    """Draws N-way K-shot episodes from any labelled table, reproducibly.

    ``labels`` holds one label per row; ``classes`` optionally restricts sampling to a
    subset (for example the meta-test classes from :func:`split_classes`). Each episode
    picks ``n_way`` classes at random, then ``k_shot`` support and ``n_query`` query rows
    of each, with no row in both. Rows are ordered class by class (all shots of episode
    class 0, then class 1, ...), and the targets are episode labels ``0..n_way-1``.
    Two samplers built with the same arguments produce the same episodes.

    Requests the data cannot satisfy fail here, at construction, not halfway through
    training: a class with fewer than ``k_shot + n_query`` rows is an error listing every
    such class, unless ``drop_infeasible=True``, which leaves them out (``.dropped`` lists
    them; :meth:`infeasible` asks without building). Either way, ``n_way`` more than the
    classes that can supply an episode is an error naming both numbers.
    """

    def __init__(self, labels, n_way: int, k_shot: int, n_query: int, classes=None, seed: int = 0,
                 drop_infeasible: bool = False):
        self.n_way = check_count("n_way", n_way, 1)
        self.k_shot = check_count("k_shot", k_shot, 1)
        self.n_query = check_count("n_query", n_query, 0)
        self.seed = seed
        self.classes, self._rows, self._sizes = _class_pool(labels, classes)
        if self.n_way > len(self.classes):
            raise ValueError(f"asked for {self.n_way}-way episodes but only {len(self.classes)} "
                             f"classes are available")

        per_class, pool = self.k_shot + self.n_query, len(self.classes)
        self.dropped = _small_classes(self.classes, self._sizes, self.k_shot, self.n_query)
        feasible = np.flatnonzero(self._sizes >= per_class)
        shape = f"{self.k_shot} support + {self.n_query} query = {per_class} rows per class"
        if not drop_infeasible and len(self.dropped):
            smallest = np.argmin(self._sizes)
            refuse_infeasible(self.dropped, f"asked for {shape}, but class {plain(self.classes[smallest])!r} "
                              f"has only {self._sizes[smallest]} rows ({len(self.dropped)} of {pool} classes are "
                              f"too small)", "FewShotSampler", None if self.n_way <= len(feasible) else
                              f"lower n_way, k_shot or n_query: dropping them would leave {len(feasible)} "
                              f"classes, fewer than n_way = {self.n_way}")
        # When every class is feasible nothing changes, so the episodes are exactly as before.
        self.classes, self._sizes = self.classes[feasible], self._sizes[feasible]
        self._rows = [self._rows[i] for i in feasible]
        if self.n_way > len(self.classes):
            raise ValueError(f"asked for {self.n_way}-way episodes but only {len(self.classes)} of {pool} "
                             f"classes have the {shape} ({len(self.dropped)} dropped as too small)")
        self._rng = np.random.default_rng(seed)

    @staticmethod
    def infeasible(labels, n_way: int, k_shot: int, n_query: int, classes=None, seed: int = 0,
                   drop_infeasible: bool = False) -> pd.DataFrame:
        """The classes with fewer than ``k_shot + n_query`` rows, given the constructor's
        arguments; builds nothing (see :func:`~metaecom.tasks.feasibility.infeasible_units`)."""
        check_count("n_way", n_way, 1)
        present, _, sizes = _class_pool(labels, classes)
        return _small_classes(present, sizes, check_count("k_shot", k_shot, 1), check_count("n_query", n_query, 0))

    def sample(self, rng: np.random.Generator | None = None) -> Episode:
        """Draw the next episode (from ``rng`` instead of the sampler's own stream when given:
        data-parallel training draws task ``i`` of step ``s`` from a generator of its own)."""
        rng, k = (self._rng if rng is None else rng), self.k_shot
        chosen = rng.choice(len(self.classes), size=self.n_way, replace=False)
        # One row of `picks` per episode class: its first k entries are support, the rest query.
        picks = np.stack([rng.choice(self._rows[c], size=k + self.n_query, replace=False) for c in chosen])
        episode_labels = np.arange(self.n_way)
        return Episode(
            support=picks[:, :k].ravel(),
            query=picks[:, k:].ravel(),
            support_y=np.repeat(episode_labels, k),
            query_y=np.repeat(episode_labels, self.n_query),
            classes=tuple(self.classes[chosen].tolist()),
        )

    def episodes(self, n: int) -> list[Episode]:
        """Draw the next ``n`` episodes."""
        n = check_count("n", n, 0)
        return [self.sample() for _ in range(n)]


def all_way_split(labels, k_shot: int, seed: int = 0, *, n_query: int | None = None,
                  support_pool: int | None = None) -> Episode:
    """One task over *every* class at once: ``k_shot`` random rows of each class as the
    support set, the other rows as the query set -- how a help desk meets its intents
    or a catalogue its products, rather than N at a time.

    ``n_query`` caps the query rows per class (a random sample; all by default).
    ``support_pool`` sets aside that many rows of each class for support sets (default
    ``k_shot``): the support is the first ``k_shot`` of them, the queries come from the
    rest, so calls with one seed and one ``support_pool`` (the largest K) but different
    ``k_shot`` give nested supports and *the same queries* -- scores at every K are then
    paired.

    Returns an :class:`Episode` whose labels index ``classes`` (all classes, in sorted
    order) and whose rows are sorted. A class with ``support_pool`` rows or fewer would
    have no query, so it is an error listing such classes (the convention of
    :mod:`metaecom.tasks.feasibility`).
    """
    k_shot = check_count("k_shot", k_shot, 1)
    pool = k_shot if support_pool is None else check_count("support_pool", support_pool, 1)
    if pool < k_shot:
        raise ValueError(f"support_pool ({pool}) must be at least k_shot ({k_shot})")
    if n_query is not None:
        n_query = check_count("n_query", n_query, 1)
    classes, rows, sizes = _class_pool(labels, None)
    small = _small_classes(classes, sizes, pool, 1)
    refuse_infeasible(small, f"asked for {pool} support + at least 1 query row of every class, but "
                      f"{len(small)} of {len(classes)} classes are too small", "all_way_split",
                      "lower k_shot, or leave those classes out of labels")
    rng = np.random.default_rng(seed)
    drawn = [rng.permutation(r) for r in rows]
    support = np.sort(np.concatenate([d[:k_shot] for d in drawn]))
    query = np.sort(np.concatenate([d[pool:][:n_query] for d in drawn]))
    label = np.empty(sum(sizes), dtype=int)
    for c, r in enumerate(rows):
        label[r] = c
    return Episode(support=support, query=query, support_y=label[support], query_y=label[query],
                   classes=tuple(classes.tolist()))


def _class_pool(labels, classes) -> tuple[np.ndarray, list, np.ndarray]:
    """The classes to draw from (all, or ``classes`` in that order), their row indices and counts."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D (one label per row), got shape {labels.shape}")
    if labels.size == 0:
        raise ValueError("labels is empty")
    # The rows of each class, computed once: sort the rows by class, cut at class ends.
    present, row_class, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    rows_by_class = np.split(np.argsort(row_class, kind="stable"), np.cumsum(sizes)[:-1])
    if classes is None:
        keep = np.arange(len(present))
    else:
        position = {label: i for i, label in enumerate(present.tolist())}
        wanted = np.asarray(classes).ravel().tolist()
        if not wanted:
            raise ValueError("classes is empty")
        unknown = [c for c in wanted if c not in position]
        if unknown:
            raise ValueError(f"classes {unknown[:5]} do not occur in labels "
                             f"({len(unknown)} unknown of {len(wanted)} asked for)")
        if len(set(wanted)) != len(wanted):
            raise ValueError("classes lists some class more than once")
        keep = np.array([position[c] for c in wanted])
    return present[keep], [rows_by_class[i] for i in keep], sizes[keep]


def _small_classes(classes: np.ndarray, sizes: np.ndarray, k_shot: int, n_query: int) -> pd.DataFrame:
    """The feasibility report of the classes with fewer than ``k_shot + n_query`` rows."""
    needed = k_shot + n_query
    small = np.flatnonzero(sizes < needed)
    units = [plain(c) for c in classes[small]]
    return unit_report(units, sizes[small], [needed] * len(small),
                       [f"class {u!r} has {n} rows, fewer than {k_shot} support + {n_query} query = {needed}"
                        for u, n in zip(units, sizes[small])])


def task_batches(tasks, batch_size: int, rng: np.random.Generator) -> Callable[[], list]:
    """A function returning the next ``batch_size`` tasks from any task source.

    ``tasks`` is one of: a callable ``tasks(rng) -> task``, called ``batch_size`` times with
    ``rng``; a sequence of tasks, from which ``batch_size`` are drawn at random with ``rng``
    (without replacement when there are enough); or an iterator yielding tasks (running
    out is an error). Meta-learners that train on explicit tasks share this rule.
    """
    batch_size = check_count("batch_size", batch_size, 1)
    if callable(tasks):
        return lambda: [tasks(rng) for _ in range(batch_size)]
    if isinstance(tasks, collections.abc.Sequence):
        if len(tasks) == 0:
            dropped = getattr(tasks, "dropped", ())     # a TaskList says which units it left out
            raise ValueError("the sequence of tasks is empty" + (
                f" ({len(dropped)} units were left out; see its .dropped)" if len(dropped) else ""))
        replace = len(tasks) < batch_size
        return lambda: [tasks[i] for i in rng.choice(len(tasks), size=batch_size, replace=replace)]
    if isinstance(tasks, collections.abc.Iterable):
        iterator = iter(tasks)

        def next_batch():
            try:
                return [next(iterator) for _ in range(batch_size)]
            except StopIteration:
                raise ValueError("the task iterator ran out before the last step") from None
        return next_batch
    raise ValueError(f"tasks must be a callable, a sequence or an iterator of tasks, got {type(tasks).__name__}")


def episode_tasks(x, sampler: FewShotSampler, n: int) -> list[Task]:
    """The next ``n`` episodes of ``sampler`` as tasks of rows of ``x`` (an array indexed by row)."""
    return [Task(x[e.support], e.support_y, x[e.query], e.query_y) for e in sampler.episodes(n)]
