"""Train many members to the end: how sweeps, studies and ablations use the population.

``fit`` groups members that can share a population (``population.shape_of``), cuts
each group into populations that fit a memory budget (``population_size``: chunks
change no result, only the memory), trains each for ``epochs`` epochs and returns
one ``MemberResult`` per member, in member order.

A fit can stop at an epoch boundary and go on later, in this process or another:
given ``pause_after`` seconds it raises ``Paused`` once they have passed, and a
progress callback that returns False raises ``Cancelled``; either carries
``state``, a checkpoint (plain values and tensors) that ``fit(..., resume=state)``
continues from with the same members — to the same results as a fit that never
stopped.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field

import torch

from .. import data
from .member import Member, diverged, shape_of
from .population import Population

# (units of work done, units in total); returning False cancels the fit
Progress = Callable[[int, int], "bool | None"]
DEFAULT_MEMORY = 512 << 20  # bytes of working memory a fit's populations may take at once


class Stopped(Exception):
    """A fit stopped before its end: ``state`` (a checkpoint for ``fit(..., resume=state)``,
    or None where it stopped with nothing to keep) and ``done`` (optimizer steps this call
    trained)."""

    def __init__(self, state: dict | None = None, done: int = 0):
        super().__init__()
        self.state, self.done = state, done


class Cancelled(Stopped):
    """Raised when a progress callback asks to stop."""


class Paused(Stopped):
    """Raised when a fit given ``pause_after`` seconds has trained that long."""


@dataclass
class MemberResult:
    eval_acc: float
    eval_loss: float
    train_acc: float
    train_loss: float
    diverged: bool
    fit_time: float  # seconds, this member's share of its population's time
    train_loss_history: list[float] = field(default_factory=list)
    eval_acc_history: list[float] = field(default_factory=list)
    eval_acc_at: dict[int, float] = field(default_factory=dict)  # at the ``checkpoints``


def steps(n_train: int, batch_size: int, epochs: int) -> int:
    """Optimizer steps of one network: ``epochs × ⌈n_train / batch_size⌉``.

    The one cost function: progress, estimates, caps and ETAs of every job count
    these steps (summed over the networks a job trains).
    """
    return epochs * math.ceil(n_train / int(batch_size))


def work_units(member: Member, epochs: int) -> int:
    """Optimizer steps one member takes: the unit of progress (and of cost)."""
    return steps(len(member.train_rows), member.get("batch_size"), epochs)


def member_bytes(rows: int, sizes: list[int]) -> int:
    """An upper bound on one member's share of a population's working memory, for members
    that train and are evaluated on at most ``rows`` rows: activations and their gradients
    for every row at once (a full batch, or an evaluation) plus its rows.  Measured on this
    engine: 0.5–1.1 MB at 800 rows of the report's network, which this puts at 1.3 MB
    (``tests/test_fit.py`` checks it bounds a real population's peak memory)."""
    return 20 * rows * sum(sizes) + 64 * rows


def population_size(members: list[Member], sizes: list[int], budget: int = DEFAULT_MEMORY
                    ) -> int:
    """How many of ``members`` fit one population within ``budget`` bytes; at least one."""
    rows = max(max(len(m.train_rows), len(m.eval_rows)) for m in members)
    return max(1, budget // member_bytes(rows, sizes))


def fit(X: torch.Tensor, y: torch.Tensor, members: list[Member], sizes: list[int],
        epochs: int, *, features: tuple[str, ...] = data.DEFAULT_FEATURES,
        history: bool = False, checkpoints: Collection[int] = (),
        max_population: int | None = None, memory: int | None = None,
        progress: Progress | None = None, resume: dict | None = None,
        pause_after: float | None = None) -> list[MemberResult]:
    """Train every member for ``epochs`` epochs and measure it; results in member order.

    ``X : (N, 2)``, ``y : (N,)`` are shared; members index into them.  With
    ``history=True`` each result also holds per-epoch training loss and evaluation
    accuracy; ``checkpoints`` (epoch numbers) record the evaluation accuracy at those
    epochs only, in ``eval_acc_at`` (cheaper than a history: measuring every member on
    all its rows costs as much as many steps).  ``progress(done, total)`` is called after
    every epoch of every population with optimizer steps this call has done / has to do.
    Members train at most ``max_population`` at a time (``1``: each alone), and at most as
    many as fit ``memory`` bytes (default ``DEFAULT_MEMORY``).

    ``pause_after``: seconds after which the fit raises ``Paused`` at the next epoch
    boundary (if work remains); ``resume``: the ``state`` of a ``Paused`` or ``Cancelled``
    of a fit of the same members and settings, to go on from (``ValueError`` for another's).
    """
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    groups: dict[tuple, list[int]] = {}
    for index, member in enumerate(members):
        groups.setdefault(shape_of(member), []).append(index)
    populations = []
    for indices in groups.values():
        size = population_size([members[i] for i in indices], sizes, memory or DEFAULT_MEMORY)
        size = min(size, max_population or size)
        populations += [indices[i:i + size] for i in range(0, len(indices), size)]
    signature = _signature(members, sizes, epochs, history, sorted(checkpoints), features,
                           populations)
    results: list[MemberResult | None] = [None] * len(members)
    first, current = 0, None
    if resume is not None:
        if resume.get("signature") != signature:
            raise ValueError("this checkpoint belongs to another fit (other members, settings "
                             "or population sizes)")
        first, current = resume["population"], resume["current"]
        for i, result in resume["results"].items():
            results[int(i)] = MemberResult(**result)
    total = sum(work_units(members[i], epochs) for p in populations[first:] for i in p)
    if current is not None:  # the epochs the resumed population has done
        total -= sum(work_units(members[i], current["population"]["epoch"])
                     for i in populations[first])
    done = 0
    deadline = None if pause_after is None else time.perf_counter() + pause_after

    def report(units: int, can_stop: bool = True) -> None:
        nonlocal done
        done += units
        if progress is not None and progress(done, total) is False and can_stop:
            raise Cancelled()

    for k in range(first, len(populations)):
        chunk = populations[k]
        if deadline is not None and k > first and time.perf_counter() >= deadline:
            raise Paused(_fit_state(signature, k, None, results), done)
        try:
            fitted = _fit_population(
                X, y, [members[i] for i in chunk], sizes, epochs, features, history,
                set(checkpoints), report, current if k == first else None, deadline)
        except Stopped as stop:
            stop.state = None if stop.state is None else _fit_state(signature, k, stop.state,
                                                                     results)
            stop.done = done
            raise
        for i, result in zip(chunk, fitted):
            results[i] = result
    return results  # type: ignore[return-value]


def _signature(members: list[Member], *settings) -> str:
    """What a checkpoint must match to be resumed: every member's settings, seed and rows,
    and the fit's settings (a digest)."""
    digest = hashlib.sha256(repr(settings).encode())
    for m in members:
        digest.update(json.dumps([dict(m.settings), m.seed], sort_keys=True, default=str).encode())
        digest.update(m.train_rows.numpy().tobytes())
        digest.update(b"|")
        digest.update(m.eval_rows.numpy().tobytes())
    return digest.hexdigest()


def _fit_state(signature: str, population: int, current: dict | None,
               results: list[MemberResult | None]) -> dict:
    """A fit's checkpoint: the populations before ``population`` done (their results), its
    own state (``_fit_population``'s; None: not started)."""
    return {"signature": signature, "population": population, "current": current,
            "results": {i: asdict(r) for i, r in enumerate(results) if r is not None}}


def _fit_population(X, y, members: list[Member], sizes, epochs, features, history: bool,
                    checkpoints: set[int], report, resume: dict | None = None,
                    deadline: float | None = None) -> list[MemberResult]:
    started = time.perf_counter()
    measure_at = None if history else checkpoints
    population = Population(X, y, members, sizes, features, measure_at)
    M = len(members)
    steps_per_epoch = steps(len(members[0].train_rows), population.batch_size, 1)
    loss_history: list[torch.Tensor] = []
    acc_history: list[torch.Tensor] = []
    acc_at: dict[int, torch.Tensor] = {}
    spent = 0.0
    if resume is not None:
        population.load_state(resume["population"])
        spent = resume["seconds"]
        loss_history, acc_history = list(resume["loss_history"]), list(resume["acc_history"])
        acc_at = dict(resume["acc_at"])

    def state() -> dict:
        """This population's checkpoint (copies: training may go on)."""
        return {"population": population.state(),
                "seconds": spent + time.perf_counter() - started,
                "loss_history": list(loss_history), "acc_history": list(acc_history),
                "acc_at": dict(acc_at)}

    while population.epoch < epochs:
        if not population.alive:  # every member diverged: the rest is skipped, counted done
            report(M * steps_per_epoch * (epochs - population.epoch), can_stop=False)
            break
        record = population.step()
        epoch, metrics = record["epoch"], record["metrics"]
        if metrics is not None:
            masked = {k: v.masked_fill(population.diverged, math.nan) for k, v in metrics.items()}
            if history:
                loss_history.append(masked["train_loss"])
                acc_history.append(masked["eval_acc"])
            if epoch in checkpoints:
                acc_at[epoch] = masked["eval_acc"]
        try:
            report(M * steps_per_epoch, can_stop=epoch < epochs)  # a finished fit is kept
        except Cancelled as cancel:
            cancel.state = state()
            raise
        if deadline is not None and epoch < epochs and time.perf_counter() >= deadline:
            raise Paused(state())
    final = population.measure()
    gone = population.diverged | diverged(final["train_loss"])
    elapsed = (spent + time.perf_counter() - started) / M
    nan = math.nan
    out = []
    for i in range(M):
        bad = bool(gone[i])
        out.append(MemberResult(
            eval_acc=nan if bad else float(final["eval_acc"][i]),
            eval_loss=nan if bad else float(final["eval_loss"][i]),
            train_acc=nan if bad else float(final["train_acc"][i]),
            train_loss=nan if bad else float(final["train_loss"][i]),
            diverged=bad, fit_time=elapsed,
            train_loss_history=[float(h[i]) for h in loss_history],
            eval_acc_history=[float(h[i]) for h in acc_history],
            eval_acc_at={e: float(a[i]) for e, a in acc_at.items()}))
    return out
