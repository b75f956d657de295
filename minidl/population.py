"""Train many small networks at once: the population engine.

A *member* is one training run: its hyperparameters, the rows of a shared data
set it trains on, the rows it is evaluated on, and a seed.  Members that share
architecture, activation, optimizer, batch size and training-set size are
trained as one population: weights carry a leading member dimension
(``Linear(..., members=M)``), per-member hyperparameters are broadcast tensors,
and each member's minibatches are gathered from its own rows — so one batched
matmul does the work of ``M`` small ones.

``batched=False`` trains the same members one at a time with ordinary modules.
Both engines draw each member's initial weights and then its per-epoch
minibatch orders from one generator seeded with the member's seed, so they
start from the same weights and see the same batches.

A member whose weights become NaN/inf is *diverged*: it is frozen (weights
zeroed, learning rate 0) so it cannot poison anything, and reported as such;
so is one whose final training loss passes ``train.DIVERGED_LOSS``.

A fit can stop at an epoch boundary and go on later, in this process or another:
given ``pause_after`` seconds, it raises ``Paused`` once they have passed, and a
cancel raises ``Cancelled``; either carries ``state``, a checkpoint (plain values
and tensors: weights, optimizer state, each member's generator, histories) that
``fit(..., resume=state)`` continues from with the same members — to the same
results as a fit that never stopped.

Why this module is long: the engine, its cost function and memory bound, its
parallel runner, and pausing / resuming a fit share the population's state, so
they are kept in one place.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import json
import math
import os
import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import TypeVar

import torch

from . import data, hparams, limits, nn, optim
from .train import INIT_CONVENTIONS, evaluate, train_minibatches
from .train import diverged as has_diverged

# (units of work done, units in total); returning False cancels the fit
Progress = Callable[[int, int], "bool | None"]


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


T = TypeVar("T")
DEFAULT_WORKERS = min(2, os.cpu_count() or 1)


@functools.cache
def keep_freed_memory() -> bool:
    """Have the C allocator keep freed memory for reuse (glibc's ``mallopt``: no ``mmap`` per
    block under 32 MB, no trimming of the heap under 256 MB); True if it took.

    A population allocates and frees the same few 10 KB–30 MB tensors at every step; by
    default glibc hands many of them back to the OS and faults the pages in again on the
    next step: ~7,700 page faults and ~20 % of the time of 24 Adam configurations × 5 folds
    at minibatch 20 here.  The process then keeps its peak memory, which the population's
    memory bound (``population_size``) already sizes.  Called by ``fit``; a no-op off glibc.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(-3, 32 << 20)) and bool(libc.mallopt(-1, 256 << 20))
    except (OSError, AttributeError):  # M_MMAP_THRESHOLD = -3, M_TRIM_THRESHOLD = -1
        return False


def run_parallel(tasks: list[Callable[[Progress], T]], costs: list[int],
                 progress: Progress | None = None, workers: int = DEFAULT_WORKERS) -> list[T]:
    """Run independent tasks on ``workers`` threads; results in task order.

    Each task receives its own ``progress(done, total)``; the caller's
    ``progress`` sees the sum over all tasks against ``sum(costs)``.  Torch
    releases the GIL inside its kernels, so two populations on two threads
    use two cores.  The costliest tasks start first, to finish together.
    """
    done = [0] * len(tasks)
    total = sum(costs)
    lock = threading.Lock()
    cancelled = threading.Event()

    def task_progress(index: int) -> Progress:
        def report(units: int, _: int) -> bool | None:
            with lock:
                done[index] = units
                overall = sum(done)
            if cancelled.is_set() or (progress is not None and progress(overall, total) is False):
                cancelled.set()  # every other task stops at its next report too
                return False
            return None
        return report

    def run(index: int) -> T:
        try:
            result = tasks[index](task_progress(index))
        except BaseException:
            cancelled.set()  # the other tasks stop at their next report
            raise
        with lock:
            done[index] = costs[index]
        return result

    order = sorted(range(len(tasks)), key=lambda i: -costs[i])
    if workers <= 1 or len(tasks) <= 1:
        results = {i: run(i) for i in order}
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {i: pool.submit(run, i) for i in order}
        errors = [f.exception() for f in futures.values() if f.exception() is not None]
        if errors:  # the error that stopped the others, not the Cancelled it caused
            raise next((e for e in errors if not isinstance(e, Cancelled)), errors[0])
        results = {i: f.result() for i, f in futures.items()}
    if progress is not None:
        progress(total, total)
    return [results[i] for i in range(len(tasks))]


@dataclass
class Member:
    """One training run inside a population."""

    config: dict  # a complete configuration: every searchable setting (hparams.grid_keys)
    train_rows: torch.Tensor  # (n_train,) indices into the shared X, y
    eval_rows: torch.Tensor  # (n_eval,) indices to evaluate on (validation fold or test set)
    seed: int


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
    return steps(len(member.train_rows), member.config["batch_size"], epochs)


def member_bytes(rows: int, sizes: list[int]) -> int:
    """An upper bound on one member's share of a population's working memory, for members
    that train and are evaluated on at most ``rows`` rows: activations and their gradients
    for every row at once (a full batch, or an evaluation) plus its gathered rows.  Measured
    on this engine: 0.5–1.1 MB at 800 rows of the report's network, which this puts at 1.3 MB
    (``tests/test_population.py`` checks it bounds a real population's peak memory)."""
    return 20 * rows * sum(sizes) + 64 * rows


def population_size(members: list[Member], sizes: list[int], budget: int | None = None) -> int:
    """How many of ``members`` fit one population within ``budget`` bytes (default: the
    server's ``MINIDL_JOB_MEMORY_MB``); at least one."""
    if budget is None:
        budget = (limits.get("MINIDL_JOB_MEMORY_MB") or 1 << 20) << 20
    rows = max(max(len(m.train_rows), len(m.eval_rows)) for m in members)
    return max(1, budget // member_bytes(rows, sizes))


def _init_member(model: nn.Sequential, member: Member, generator: torch.Generator,
                 index: int | None = None) -> None:
    """Draw a member's initial weights (member ``index`` of a population's) from its own
    generator: the same values whichever engine trains it."""
    model.init_params(member.config["init"], member.config["gain"], generator, member=index,
                      **{k: member.config[k] for k in INIT_CONVENTIONS})


def _per_member_affine(pairs: list[tuple[float, float]]) -> Callable[[torch.Tensor], torch.Tensor]:
    """``t → t · scale + shift`` with each member's own ``(scale, shift)`` on its rows of a
    ``(M, rows, features)`` tensor (the identity when every member has (1, 0))."""
    if all(p == (1.0, 0.0) for p in pairs):
        return lambda t: t
    if len(set(pairs)) == 1:
        scale, shift = pairs[0]
        return lambda t: t * scale + shift
    scale = torch.tensor([p[0] for p in pairs]).view(-1, 1, 1)
    shift = torch.tensor([p[1] for p in pairs]).view(-1, 1, 1)
    return lambda t: torch.addcmul(shift, t, scale)


def _group_key(member: Member) -> tuple[int, int, int]:
    return member.config["batch_size"], len(member.train_rows), len(member.eval_rows)


def fit(X: torch.Tensor, y: torch.Tensor, members: list[Member], sizes: list[int],
        activation: str, optimizer: str, epochs: int, batched: bool = True,
        history: bool = False, progress: Progress | None = None,
        checkpoints: Collection[int] = (),
        max_population: int | None = None,
        features: tuple[str, ...] = data.DEFAULT_FEATURES,
        resume: dict | None = None, pause_after: float | None = None) -> list[MemberResult]:
    """Train every member for ``epochs`` epochs and evaluate it; results in member order.

    ``X : (N, 2)``, ``y : (N,)`` are shared; members index into them.  With
    ``history=True`` each result also holds per-epoch training loss and
    evaluation accuracy; ``checkpoints`` (epoch numbers) record the evaluation
    accuracy at those epochs only, in ``eval_acc_at`` (cheaper than a history:
    evaluating every member on all its rows costs as much as many steps).
    ``progress(done, total)`` is called after every epoch of every population with
    optimizer steps this call has done / has to do.  Members train at most
    ``max_population`` at a time (default: as many as fit the server's job memory,
    ``population_size``): chunks change no result, only the memory.
    ``features``: the networks' input features (``data.FEATURES``; ``sizes[0]`` is their count).

    ``pause_after``: seconds after which the fit raises ``Paused`` at the next epoch
    boundary (if work remains); ``resume``: the ``state`` of a ``Paused`` or ``Cancelled``
    of a fit of the same members and settings, to go on from (``ValueError`` for another's).
    """
    if epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if sizes[0] != len(hparams.check("features", features)):
        raise ValueError(f"a network of sizes {sizes} cannot take {len(features)} features")
    keep_freed_memory()
    T = data.one_hot(y)
    groups: dict[tuple, list[int]] = {}
    for index, member in enumerate(members):
        groups.setdefault(_group_key(member) if batched else (index,), []).append(index)
    populations = []
    for indices in groups.values():
        chunk_size = max_population or population_size([members[i] for i in indices], sizes)
        populations += [indices[i:i + chunk_size] for i in range(0, len(indices), chunk_size)]
    signature = _signature(members, sizes, activation, optimizer, epochs, batched, history,
                           checkpoints, features, populations)
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
        total -= sum(work_units(members[i], current["epoch"]) for i in populations[first])
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
                X, y, T, [members[i] for i in chunk], sizes, activation, optimizer, epochs,
                batched, history, set(checkpoints), report, features,
                current if k == first else None, deadline)
        except Stopped as stop:
            stop.state = None if stop.state is None else _fit_state(signature, k, stop.state,
                                                                     results)
            stop.done = done
            raise
        for i, result in zip(chunk, fitted):
            results[i] = result
    return results  # type: ignore[return-value]


def _signature(members: list[Member], *settings) -> str:
    """What a checkpoint must match to be resumed: every member's configuration, seed and
    rows, and the fit's settings (a digest)."""
    digest = hashlib.sha256(repr(settings).encode())
    for m in members:
        digest.update(json.dumps([m.config, m.seed], sort_keys=True, default=str).encode())
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


@torch.inference_mode()  # ~15 % faster steps; every tensor here is the population's own
def _fit_population(X, y, T, members: list[Member], sizes, activation, optimizer, epochs,
                    batched: bool, history: bool, checkpoints: set[int], report,
                    features: tuple[str, ...] = data.DEFAULT_FEATURES,
                    resume: dict | None = None, deadline: float | None = None
                    ) -> list[MemberResult]:
    started = time.perf_counter()
    M = len(members)
    generators = [torch.Generator().manual_seed(m.seed) for m in members]
    hyper = {k: [m.config[k] for m in members] for k in hparams.optimizer_keys(optimizer)}
    # a value shared by the whole population is passed as a float: cheaper to apply
    hyper = {k: v[0] if len(set(v)) == 1 else v for k, v in hyper.items()}
    if batched:
        model = nn.mlp(sizes, activation, members=M)
        loss = nn.LossMSE(members=True, reduction=[m.config["loss"] for m in members])
        train_rows = torch.stack([m.train_rows for m in members])
        eval_rows = torch.stack([m.eval_rows for m in members])
    else:
        assert M == 1, "the sequential engine trains one member at a time"
        model = nn.mlp(sizes, activation)
        loss = nn.LossMSE(reduction=members[0].config["loss"])
        train_rows, eval_rows = members[0].train_rows, members[0].eval_rows
    if resume is None:  # a resumed population's weights and generators come from its state
        for i, (member, generator) in enumerate(zip(members, generators)):
            _init_member(model, member, generator, i if batched else None)
    opt = optim.make(optimizer, model.param(), **hyper)
    batch_size = members[0].config["batch_size"]
    # each member's conventions: how its inputs and targets are encoded (``data``)
    encode = _per_member_affine([data.input_affine(m.config["inputs"]) for m in members])
    inputs = encode if features == data.DEFAULT_FEATURES else (
        lambda t: data.with_features(t, encode(t), features))
    targets = _per_member_affine([data.target_affine(m.config["targets"]) for m in members])

    def measure(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return tuple(t.reshape(M) for t in evaluate(model, inputs(X[rows]), y[rows],
                                                    targets(T[rows])))
    steps_per_epoch = math.ceil(train_rows.shape[-1] / batch_size)
    diverged = torch.zeros(M, dtype=torch.bool)
    loss_history: list[torch.Tensor] = []
    acc_history: list[torch.Tensor] = []
    acc_at: dict[int, torch.Tensor] = {}
    first, spent = 0, 0.0
    if resume is not None:
        first, spent = resume["epoch"], resume["seconds"]
        opt.load_state(resume["optimizer"])
        for generator, state in zip(generators, resume["generators"]):
            generator.set_state(state)
        diverged = resume["diverged"].clone()
        if batched and diverged.any():
            opt.freeze_members(diverged)
        loss_history, acc_history = list(resume["loss_history"]), list(resume["acc_history"])
        acc_at = dict(resume["acc_at"])

    def state(epoch: int) -> dict:
        """This population's checkpoint after ``epoch`` epochs (copies: training may go on)."""
        return {"epoch": epoch, "seconds": spent + time.perf_counter() - started,
                "optimizer": opt.state(), "generators": [g.get_state() for g in generators],
                "diverged": diverged.clone(), "loss_history": list(loss_history),
                "acc_history": list(acc_history), "acc_at": dict(acc_at)}

    for epoch in range(first, epochs):
        if batched:
            orders = torch.stack([torch.randperm(train_rows.shape[1], generator=g)
                                  for g in generators])
        else:
            orders = torch.randperm(train_rows.shape[0], generator=generators[0])
        rows = train_rows.gather(-1, orders)
        train_minibatches(model, loss, opt, inputs(X[rows]), targets(T[rows]), batch_size)
        newly = ~torch.isfinite(opt.flat_param.view(M, -1)).all(dim=1) & ~diverged
        if newly.any():
            diverged |= newly
            if batched:
                opt.freeze_members(newly)
        if history:
            train_loss, _ = measure(train_rows)
            _, eval_acc = measure(eval_rows)
            loss_history.append(train_loss.masked_fill(diverged, math.nan))
            acc_history.append(eval_acc.masked_fill(diverged, math.nan))
        if epoch + 1 in checkpoints:
            acc_at[epoch + 1] = (acc_history[-1] if history
                                 else measure(eval_rows)[1].masked_fill(diverged, math.nan))
        if not batched and diverged.all():
            # the rest is skipped, but counted as done
            report(M * steps_per_epoch * (epochs - epoch), can_stop=False)
            break
        try:
            report(M * steps_per_epoch, can_stop=epoch < epochs - 1)  # a finished fit is kept
        except Cancelled as cancel:
            cancel.state = state(epoch + 1)
            raise
        if deadline is not None and epoch < epochs - 1 and time.perf_counter() >= deadline:
            raise Paused(state(epoch + 1))
    train_loss, train_acc = measure(train_rows)
    eval_loss, eval_acc = measure(eval_rows)
    diverged |= has_diverged(train_loss)
    elapsed = (spent + time.perf_counter() - started) / M
    nan = float("nan")
    out = []
    for i in range(M):
        bad = bool(diverged[i])
        out.append(MemberResult(
            eval_acc=nan if bad else float(eval_acc[i]),
            eval_loss=nan if bad else float(eval_loss[i]),
            train_acc=nan if bad else float(train_acc[i]),
            train_loss=nan if bad else float(train_loss[i]),
            diverged=bad, fit_time=elapsed,
            train_loss_history=[float(h[i]) for h in loss_history],
            eval_acc_history=[float(h[i]) for h in acc_history],
            eval_acc_at={e: float(a[i]) for e, a in acc_at.items()}))
    return out
