"""Runs trained together: how one process trains a whole class of Playground runs.

A *cohort* is a group of ``Run``s whose work has one shape (``key``: network sizes, input
features, batch size, shuffling, numbers of training and test rows) that train as one
population (``Population.combine``) — each with its own data, settings and seed, each on
the trajectory it would follow alone (within float rounding: the batched matmuls add in
another order).  On networks this small a step's time is per-op dispatch, not arithmetic,
so a cohort of 16 trains at ~60 % of the speed of one run, 10× what taking turns gives
(``benchmarks/cohort_speed.py``).

``split()`` hands each run a population of its own again, where it was — between
epochs or in the middle of one; runs at the same row of an epoch can join one cohort again.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

from .member import shape_of
from .population import Population
from .run import Run


def key(run: Run) -> tuple:
    """What runs must share to train in one cohort: the shape of their network and work."""
    population = run.population
    return (tuple(population.sizes), population.features,
            shape_of(population.members[run.member]))


def place(run: Run) -> int | None:
    """Where ``run`` is in its epoch: None between epochs, else the row it has reached."""
    population = run.population
    return None if population.order is None else population.cursor


class Cohort:
    """Runs of one ``key`` and ``place`` trained as one population; see the module docstring.

    Attributes: ``runs`` (each bound to member ``i`` of ``population``), ``population``.
    """

    def __init__(self, runs: Sequence[Run]):
        self.runs = list(runs)
        if len(self.runs) > 1:
            combined = Population.combine([(r.population, r.member) for r in self.runs])
            for i, run in enumerate(self.runs):
                run.bind(combined, i)
        self.population = self.runs[0].population

    def __len__(self) -> int:
        return len(self.runs)

    def train_steps(self, max_seconds: float = math.inf,
                    clock: Callable[[], float] = time.perf_counter) -> bool:
        """Train minibatches of the current epoch for up to ``max_seconds`` (at least one);
        return whether the epoch ended (then every run has taken in its metrics, layer
        health and snapshot, as ``Run.train_steps`` does).  A run that diverged stays frozen
        in the population, and its epochs are no longer counted."""
        live = [run for run in self.runs if not run.diverged]
        for run in live:
            run.begin_steps()
        wall = time.perf_counter()
        record = self.population.step(max_seconds, clock)
        share = (time.perf_counter() - wall) / max(1, len(live))
        for run in live:
            run.count_training(share)
        if record is None:
            return False
        for run in live:
            run.end_epoch(record)
        return True

    def split(self) -> list[Run]:
        """Give every run a population of its own again, where it is; return the runs."""
        if len(self.runs) > 1:
            for i, run in enumerate(self.runs):
                run.bind(Population.combine([(self.population, i)]), 0)
        return self.runs


def cohorts(runs: Sequence[Run]) -> list[Cohort]:
    """``runs`` (each with a population of its own) grouped into cohorts: one per ``key`` and
    ``place``, in the order of their first runs."""
    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        groups.setdefault((key(run), place(run)), []).append(run)
    return [Cohort(group) for group in groups.values()]
