"""Training in the background: every Playground session and Compare race of a server trains
in one *training service*, a process of its own, and the pages only redraw snapshots —
without Streamlit, so it is tested on its own.

Why a process, not a thread: the network is tiny, so training is mostly Python, and so is
drawing a frame.  In one process they share Python's lock: with a training thread the
whole server used one core, and each redraw cost training ~60 ms (the app trained at
50–70 % of the bare library's speed).  The service trains on a core of its own.

Why one service, not a process per session: on networks this small a step's time is
per-op dispatch, so runs of one shape (network, input features, batch size, numbers of
rows) train as one population — a *cohort* (``minidl.engine.cohort``), each with its own
data, settings and seed, each on the trajectory it would follow alone — 16 of them each at
~60 % of one run's speed, 10× what taking turns gives (``benchmarks/cohort_speed.py``).
So a class that opens the demo's link trains at once.  The service forms cohorts again
whenever a run joins, leaves, changes a setting or ends an epoch beside a cohort of its
shape; runs of other shapes and races train alone; all take turns, a cohort's turn as long
as its members' (up to a bound).

A ``Trainer`` owns one *trainee* (the *mirror*): a ``minidl.Run``, or anything with the same
small protocol (``Trainee``) — a ``minidl.race.Race`` trains several runs side by side:

- ``train()`` / ``pause()`` / ``step()`` (one more epoch) / ``replace(run)`` /
  ``set_hyperparameters(...)`` / ``set_weight(layer, row, column, value)`` (the last two
  reach the service as commands it applies between steps);
- while it trains, the service sends progress ~10 times a second (weights, new
  history and health rows) and the mirror takes it in; when it stops (paused, done,
  diverged), the service sends the whole run back (``torch.save`` keeps the optimizer's
  views of the weights) and the mirror becomes that run, so the next start goes on
  exactly where this one stopped (a ``Run``'s ``snapshots``, the epochs it keeps for
  replay, come back this way only: the page replays only a run that is not training);
- ``view()`` returns a frozen copy of the mirror to draw;
- ``touch()`` says a viewer looked.  Training stops when ``alive()`` turns false (the
  browser tab was closed) or nobody has looked for ``idle_seconds``: the run leaves the
  service within a quarter of a second;
- a shared ``Slots`` bounds how many sessions of the server train at once (the service's
  memory): the others wait, and ``state`` says so and where they are in line.

The service starts from a fork server that has imported torch and minidl once (~50 ms);
if it dies, every run it trained says so (``broken``) and the next start begins a new one.

Why this module is long: the commands, the service's loop and the thread that drives each
trainer and keeps its mirror up to date are one protocol; they must agree on every message.
"""

from __future__ import annotations

import copy
import io
import itertools
import math
import multiprocessing
import queue
import threading
import time
import traceback
from collections.abc import Callable
from typing import Protocol

import torch

from minidl import health, nn, runtime
from minidl.engine import cohort
from minidl.engine.run import Run
from minidl.viz import boundary, network


class Trainee(Protocol):
    """What a ``Trainer`` drives: a ``minidl.Run`` or a ``minidl.experiments.race.Race``.

    ``train_steps`` trains up to ``max_seconds`` and returns something when an epoch ended;
    ``model.param()`` lists every weight (sent between the processes); ``history`` and
    ``health`` are lists that only grow; ``restart_epoch`` forgets the epoch in progress.
    The trainee must survive ``torch.save`` (no lambdas among its attributes).
    """

    epoch: int
    budget: int
    diverged: bool
    history: list
    health: list
    model: nn.Module

    def train_steps(self, max_seconds: float = ...) -> object: ...

    def set_hyperparameters(self, **values) -> None: ...

    def restart_epoch(self) -> None: ...

CHUNK_SECONDS = 0.05     # training of one network between two looks at the commands
MAX_CHUNK_SECONDS = 0.2  # … of a cohort (CHUNK_SECONDS a member, up to this)
REPORT_SECONDS = 0.2     # progress sent to the page at most this often (as often as it draws)
GRID = 100               # the boundary's resolution: the service scores GRID × GRID points
_GRID_POINTS = boundary.grid(GRID)
SLOW_SECONDS = 1.0       # a live view's slow parts (diagram, curves) are drawn this often …
SLOW_SESSIONS = 5        # … with up to this many sessions training on the server
_UNIT_POINTS = boundary.grid(network.RESOLUTION)
IDLE_SECONDS = 180.0     # a run nobody has looked at for this long pauses
# why training stopped by itself: the tab was closed, nobody looked, the process died, its
# turn was over while others waited, its budget is spent
STOP_REASONS = ("closed", "idle", "error", "turn", "budget")


def slow_seconds(sessions: int) -> float:
    """How often a live view's slow parts are drawn with ``sessions`` training on the server:
    every ``SLOW_SECONDS``, less often beyond ``SLOW_SESSIONS`` — they share the app's Python,
    and at 25 sessions the slow parts alone took more than its one core (5 s at 25)."""
    return SLOW_SECONDS * max(1.0, sessions / SLOW_SESSIONS)


def _context() -> multiprocessing.context.BaseContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["torch", "minidl.engine.run", "minidl.experiments.race", "ui.background"])
    return context


def warm_up() -> None:
    """Start the fork server now (torch and the engine imported once, seconds), so that the
    first Train on a fresh server does not wait for it."""
    from multiprocessing import forkserver

    _context()  # its preload list
    forkserver.ensure_running()


def set_weight(run: Trainee, layer: int, row: int, column: int, value: float) -> None:
    """Set weight ``W[row, column]`` of the ``layer``-th Linear layer of ``run`` (from 0;
    ``W : (out, in)``, as PyTorch's), in place: the optimizer's views see it.  ``ValueError``
    for a link the network does not have or a value that is not a finite number."""
    linears = health.layers(run.model)
    if not (0 <= layer < len(linears) and 0 <= row < linears[layer][0].weight.shape[0]
            and 0 <= column < linears[layer][0].weight.shape[1]):
        raise ValueError(f"Invalid link (link): layer {layer}, row {row}, column {column} "
                         "(expected a weight of this network)")
    if not (isinstance(value, (int, float)) and math.isfinite(value)):
        raise ValueError(f"Invalid weight (weight): {value!r} (expected a finite number)")
    linears[layer][0].weight[row, column] = float(value)


def dumps(run: Trainee) -> bytes:
    buffer = io.BytesIO()
    torch.save(run, buffer)
    return buffer.getvalue()


def loads(data: bytes) -> Trainee:
    return torch.load(io.BytesIO(data), weights_only=False)


# a run's data: the mirror keeps its own tensors (the page recognises them by identity)
_DATA = ("X_train", "y_train", "X_test", "y_test", "inputs_train", "inputs_test", "T_train",
         "T_test", "points", "source")


def _weights(run: Trainee) -> bytes:
    """The weights as bytes: a tensor would travel as shared memory whose handle dies with
    the process that sent it."""
    return torch.cat([p.reshape(-1) for p, _ in run.model.param()]).numpy().tobytes()


class _Alone:
    """A trainee that trains by itself in the service (a race: populations of its own), with
    a cohort's small protocol."""

    def __init__(self, trainee: Trainee):
        self.runs = [trainee]

    def __len__(self) -> int:  # the networks it trains (a race's contestants)
        return len(getattr(self.runs[0], "contestants", self.runs))

    def train_steps(self, max_seconds: float) -> bool:
        return self.runs[0].train_steps(max_seconds) is not None

    def split(self) -> list:
        return self.runs


class _Entry:
    """A trainer's run in the service: what it is asked to do, and what was last sent."""

    def __init__(self, trainee: Trainee, steps: int):
        self.trainee, self.wanted, self.steps = trainee, steps == 0, steps
        self.sent_history, self.sent_health = len(trainee.history), len(trainee.health)
        self.reported = self.units_reported = 0.0
        # settings ("set", {name: value}) and weights ("weight", (layer, row, column, value))
        # to apply between steps, in order
        self.changes: list[tuple[str, object]] = []

    @property
    def training(self) -> bool:
        t = self.trainee
        return (self.wanted or self.steps > 0) and not t.diverged and t.epoch < t.budget

    def progress(self, boundary: bytes | None, units: bytes | None) -> tuple:
        t = self.trainee
        message = (t.epoch, t.diverged, _weights(t), t.history[self.sent_history:],
                   t.health[self.sent_health:], boundary, units)
        self.sent_history, self.sent_health = len(t.history), len(t.health)
        self.reported = time.monotonic()
        if units is not None:
            self.units_reported = self.reported
        return message


class _Outbox:
    """The service's messages to the app, in order, sent by a thread of their own.  A send
    waits until the app's router has read the message, and the router shares the app's
    Python with every page drawn: at 25 visitors the service spent much of its time waiting
    there instead of training.  Progress is built only when the last message has gone
    (``idle``), so what waits is never more than one report."""

    def __init__(self, connection):
        self._connection, self._queue = connection, queue.Queue()
        self.closed = False  # the app went away
        threading.Thread(target=self._send, daemon=True, name="minidl-service-outbox").start()

    def send(self, message: tuple) -> None:
        self._queue.put(message)

    def idle(self) -> bool:
        return self._queue.unfinished_tasks == 0

    def _send(self) -> None:
        while True:
            message = self._queue.get()
            try:
                self._connection.send(message)
            except (OSError, ValueError):  # the app process went away
                self.closed = True
                return
            self._queue.task_done()


class _Classroom:
    """The service's state: every trainer's run, and the units they train in (cohorts of
    ``Run``s of one shape, co-batched; anything else alone), taken in turns."""

    def __init__(self, results):
        self.results = results
        self.entries: dict[int, _Entry] = {}
        self.units: list = []
        self.owner: dict[int, int] = {}  # id(trainee) -> its entry's key
        self.turn = 0
        self.dirty = False  # the units must be formed again before the next turn

    def command(self, command: str, key: int, value) -> None:
        if command == "join":
            data, steps = value
            self.entries[key] = _Entry(loads(data), steps)
            self.dirty = True
            return
        entry = self.entries.get(key)
        if entry is None:  # it has just ended: the trainer starts another if it must
            return
        if command == "pause":
            entry.wanted, entry.steps = False, 0
        elif command == "train":
            entry.wanted = True
        elif command == "step":
            entry.steps += value
        elif command in ("set", "weight"):
            entry.changes.append((command, value))
        self.dirty = True

    def training(self) -> bool:
        return bool(self.entries)

    def regroup(self) -> None:
        """Split every unit, apply settings changes, send back what no longer trains, and
        form the units again."""
        for unit in self.units:
            unit.split()
        for key, entry in list(self.entries.items()):
            for kind, value in entry.changes:
                if kind == "set":
                    entry.trainee.set_hyperparameters(**value)
                else:
                    set_weight(entry.trainee, *value)
            entry.changes.clear()
            if not entry.training:
                self.finish(key)
        trainees = [e.trainee for e in self.entries.values()]
        self.owner = {id(e.trainee): key for key, e in self.entries.items()}
        self.units = [*cohort.cohorts([t for t in trainees if isinstance(t, Run)]),
                      *(_Alone(t) for t in trainees if not isinstance(t, Run))]
        self.dirty = False

    def finish(self, key: int) -> None:
        entry = self.entries.pop(key)
        self.results.send(("done", key, dumps(entry.trainee)))

    def _held(self, unit) -> bool:
        """A cohort between epochs waits while another of its shape is in the middle of one:
        at its end they become one cohort."""
        if not isinstance(unit, cohort.Cohort) or cohort.place(unit.runs[0]) is not None:
            return False
        shape = cohort.key(unit.runs[0])
        return any(isinstance(u, cohort.Cohort) and cohort.key(u.runs[0]) == shape
                   and cohort.place(u.runs[0]) is not None for u in self.units)

    def train_turn(self) -> None:
        """Train the next unit in turn for a chunk of time (more for a bigger cohort)."""
        units = [u for u in self.units if not self._held(u)]
        unit = units[self.turn % len(units)]
        self.turn += 1
        try:
            ended = unit.train_steps(min(MAX_CHUNK_SECONDS, CHUNK_SECONDS * len(unit)))
        except Exception:  # noqa: BLE001 - one run's failure must not stop the others
            traceback.print_exc()
            for trainee in unit.split():
                key = self.owner[id(trainee)]
                del self.entries[key]
                self.results.send(("failed", key, None))
            self.dirty = True
            return
        if not ended:
            return
        for trainee in unit.runs:
            entry = self.entries[self.owner[id(trainee)]]
            if not entry.wanted and entry.steps:
                entry.steps -= 1
            if not entry.training:
                self.dirty = True
        shapes = [cohort.key(u.runs[0]) for u in self.units
                  if isinstance(u, cohort.Cohort) and cohort.place(u.runs[0]) is None]
        if len(shapes) != len(set(shapes)):  # cohorts of one shape, all between epochs: merge
            self.dirty = True

    def report(self) -> None:
        """Progress of every run not reported for ``REPORT_SECONDS``, in one message, with
        the scores of its boundary grid, and as often as pages draw the diagram
        (``slow_seconds``) its layers' values for the unit maps (``network.unit_values``):
        one batched forward pass for a whole cohort each."""
        if not self.results.idle():
            return  # the last report is still on its way: this one would only wait
        now = time.monotonic()
        due = {key for key, e in self.entries.items()
               if now - e.reported >= REPORT_SECONDS or e.trainee.diverged}
        if not due:
            return
        boundaries: dict[int, bytes] = {}
        unit_maps: dict[int, bytes] = {}
        every = slow_seconds(len(self.entries))
        for unit in self.units:
            keys = [self.owner[id(run)] for run in unit.runs]
            if not isinstance(unit, cohort.Cohort) or not due.intersection(keys):
                continue
            out = unit.population.outputs(_GRID_POINTS)
            scores = boundary.score_of(out).numpy()
            for run, key in zip(unit.runs, keys):
                boundaries[key] = scores[run.member].tobytes()
            if any(now - self.entries[k].units_reported >= every for k in due
                   if k in keys):
                values = torch.cat(unit.population.layer_values(_UNIT_POINTS)[1:], dim=2)
                values = values.to(torch.float16).numpy()
                for run, key in zip(unit.runs, keys):
                    unit_maps[key] = values[run.member].tobytes()
        self.results.send(("progress", [
            (key, self.entries[key].progress(boundaries.get(key), unit_maps.get(key)))
            for key in due], None))


def _serve(commands, results) -> None:
    """The training service: one process that trains every trainer's run of this server.
    Commands come as ``(command, key, value)``; results go as ``(kind, key, value)``."""
    runtime.setup()  # an entry point: a process of its own
    outbox = _Outbox(results)
    classroom = _Classroom(outbox)
    try:
        while not outbox.closed:
            wait = None if not classroom.training() else 0.0
            while commands.poll(wait):
                classroom.command(*commands.recv())
                wait = 0.0
            if classroom.dirty:
                classroom.regroup()
            if classroom.units:
                classroom.train_turn()
                classroom.report()
    except (EOFError, BrokenPipeError, ConnectionResetError):  # the app process went away
        pass


class _Service:
    """The app's side of the training service: starts its process (again, if it died), sends
    trainers' commands, and routes its messages to each trainer's inbox.

    Two locks: ``_lock`` for the inboxes and the process, held only briefly — the router
    takes it for every message — and ``_sending`` for the command pipe, whose ``send``
    waits while the service, busy with a turn, has not read it.  One lock for both
    deadlocked a class of 25: a sender held it, waiting for the service, which waited for
    the router to read its results, which waited for the lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sending = threading.Lock()
        self.process: multiprocessing.Process | None = None
        self._commands = None
        self._inboxes: dict[int, queue.SimpleQueue] = {}

    def join(self, key: int, inbox: queue.SimpleQueue, data: bytes, steps: int
             ) -> multiprocessing.Process:
        """Train the run ``data`` (``dumps``) as ``key``; its messages go to ``inbox``."""
        with self._lock:
            if self.process is None or not self.process.is_alive():
                self._start()
            self._inboxes[key] = inbox
            process, commands = self.process, self._commands
        self._post(commands, ("join", key, (data, steps)))
        return process

    def send(self, command: str, key: int, value) -> None:
        with self._lock:
            commands = self._commands if key in self._inboxes else None
        if commands is not None:
            self._post(commands, (command, key, value))

    def _post(self, commands, message: tuple) -> None:
        with self._sending:
            try:
                commands.send(message)
            except (OSError, ValueError):  # the service has just died: its router says so
                pass

    def leave(self, key: int) -> None:
        with self._lock:
            self._inboxes.pop(key, None)

    def members(self) -> set[int]:
        """The keys of the trainers' runs the service trains now."""
        with self._lock:
            return set(self._inboxes)

    def _start(self) -> None:
        context = _context()
        their_commands, self._commands = context.Pipe(duplex=False)
        results, their_results = context.Pipe(duplex=False)
        process = context.Process(target=_serve, args=(their_commands, their_results),
                                  daemon=True, name="minidl-training-service")
        process.start()
        their_commands.close()
        their_results.close()
        self.process = process
        threading.Thread(target=self._route, args=(results, process), daemon=True,
                         name="minidl-service-router").start()

    def _route(self, results, process: multiprocessing.Process) -> None:
        while True:
            try:
                kind, key, value = results.recv()
            except (EOFError, OSError):
                break
            with self._lock:
                if kind == "progress":
                    for k, progress in key:
                        inbox = self._inboxes.get(k)
                        if inbox is not None:
                            inbox.put(("progress", progress))
                elif key in self._inboxes:
                    self._inboxes[key].put((kind, value))
        process.join(5)
        with self._lock:  # the service died: every run it trained is lost
            if self.process is process:
                self.process = None
                for inbox in self._inboxes.values():
                    inbox.put(("failed", None))


_SERVICE = _Service()
_KEYS = itertools.count()


class Slots:
    """At most ``limit`` trainers of the server train at once (``None``: no limit); the others
    wait in line, first come first served.  With ``turn`` seconds, a trainer that has held its
    place that long while others wait is told to give it up (``turn_over``)."""

    def __init__(self, limit: int | None, turn: float | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.limit, self.turn, self.clock = limit, turn, clock
        self._holders: dict[int, float] = {}  # holder -> when it took its place
        self._line: list[int] = []            # waiting holders, first come first
        self._lock = threading.Lock()

    def acquire(self, holder: object) -> bool:
        """Take a place if one is free and ``holder`` is next in line; else (join and) wait."""
        key = id(holder)
        with self._lock:
            if key in self._holders:
                return True
            if key not in self._line:
                self._line.append(key)
            free = None if self.limit is None else self.limit - len(self._holders)
            if free is not None and key not in self._line[:max(0, free)]:
                return False
            self._line.remove(key)
            self._holders[key] = self.clock()
            return True

    def release(self, holder: object) -> None:
        """Give up a place, or a place in line."""
        with self._lock:
            self._holders.pop(id(holder), None)
            if id(holder) in self._line:
                self._line.remove(id(holder))

    def busy(self) -> int:
        """How many trainers hold a place now."""
        with self._lock:
            return len(self._holders)

    def position(self, holder: object) -> int | None:
        """``holder``'s place in line (1: next), None if it is not waiting."""
        with self._lock:
            return self._line.index(id(holder)) + 1 if id(holder) in self._line else None

    def turn_over(self, holder: object) -> bool:
        """Whether ``holder`` has trained its turn while others wait for a place."""
        with self._lock:
            since = self._holders.get(id(holder))
            return (self.turn is not None and since is not None and bool(self._line)
                    and self.clock() - since >= self.turn)


class Trainer:
    """Trains one run in the server's training service; see the module docstring."""

    def __init__(self, run: Trainee, slots: Slots | None = None,
                 alive: Callable[[], bool] = lambda: True, idle_seconds: float = IDLE_SECONDS,
                 clock: Callable[[], float] = time.monotonic, budget: float | None = None):
        self.lock = threading.RLock()      # held while the mirror changes or is copied
        self._run = run
        # the latest weights the service sent, not yet copied into the mirror: ~10 reports a
        # second for each of a class's runs cost the app's Python more than the redraws
        # that read them, which come less often on a busy server
        self._weights: bytes | None = None
        self._scores: bytes | None = None  # the boundary's scores for those weights
        self.boundary: torch.Tensor | None = None  # … once copied in: ``frame``
        self._units: bytes | None = None  # the diagram's unit maps' values, if sent with them
        self.units: list[torch.Tensor] | None = None  # … once copied in: ``frame``
        self.slots = slots or Slots(None)
        self.alive, self.idle_seconds, self.clock = alive, idle_seconds, clock
        self.budget = budget     # seconds this trainer may train in all (None: no limit)
        self.used = 0.0          # seconds it has trained (held a place), every run together
        self.broken = False      # the training service died: the run cannot go on exactly
        self.stop_reason: str | None = None   # why the last training stopped by itself
        self._wanted = False     # train until paused
        self._steps = 0          # epochs still to train for Step clicks
        self._waiting = False    # wants to train but no slot is free
        self._thread: threading.Thread | None = None   # drives the training
        self._active = False     # a driver thread is at work (set and cleared holding _changed)
        self._connection: int | None = None  # its key in the service, while it trains there
        self.process: multiprocessing.Process | None = None  # the service, while it trains
        self._seen = clock()
        self._changed = threading.Condition()
        self.version = 0         # counts the mirror's changes: a view of an unchanged one is
                                 # not drawn again

    @property
    def run(self) -> Trainee:
        """The mirror, with the latest weights the service sent."""
        with self.lock:
            if self._weights is not None:
                run, weights = self._run, self._weights
                flat = torch.frombuffer(bytearray(weights), dtype=run.model.param()[0][0].dtype)
                offset = 0
                for p, _ in run.model.param():
                    p.copy_(flat[offset:offset + p.numel()].view_as(p))
                    offset += p.numel()
                self.boundary = None if self._scores is None else torch.frombuffer(
                    bytearray(self._scores), dtype=torch.float32).view(GRID, GRID)
                if self._units is not None:
                    sizes = network.model_sizes(run.model)[1:]
                    self.units = list(torch.frombuffer(bytearray(self._units),
                                                       dtype=torch.float16)
                                      .view(-1, sum(sizes)).float().split(sizes, dim=1))
                self._weights = self._scores = self._units = None
            return self._run

    @property
    def epoch(self) -> int:
        """The mirror's epoch, read without waiting for the lock (a redraw loop asks often)."""
        return self._run.epoch

    # ------------------------------------------------------------ commands

    def train(self) -> None:
        """Train until paused, done or diverged."""
        with self._changed:
            if not self.trainable():
                return
            self._wanted, self.stop_reason = True, None
            self._send("train", None)
        self._ensure_thread()

    def pause(self) -> None:
        """Stop after the current chunk (the epoch in progress goes on at the next start)."""
        with self._changed:
            self._wanted, self._steps = False, 0
            self._send("pause", None)
            self._changed.notify_all()

    def toggle(self) -> None:
        """What one Train / Pause button does: pause a running trainer, else train."""
        if self.running:
            self.pause()
        else:
            self.train()

    def step(self) -> None:
        """Train one more epoch (each call adds one), then pause."""
        with self._changed:
            if not self.trainable():
                return
            self._wanted = False
            self._steps += 1
            self.stop_reason = None
            self._send("step", 1)
        self._ensure_thread()

    def set_hyperparameters(self, **values) -> None:
        """Change settings a run absorbs live (learning rate, optimizer, …), here and in the
        training service."""
        with self._changed, self.lock:
            self.run.set_hyperparameters(**values)
            self.version += 1
            self._send("set", values)

    def set_weight(self, layer: int, row: int, column: int, value: float) -> None:
        """Set one weight (``set_weight``) here and, between two steps, in the training
        service: it applies live, while the run trains or not."""
        with self._changed, self.lock:
            set_weight(self.run, layer, row, column, value)
            self.version += 1
            self._send("weight", (layer, row, column, float(value)))

    def replace(self, run: Trainee, keep_training: bool = False) -> None:
        """Pause, wait for the service to let go, and train ``run`` from now on — at once
        if ``keep_training`` and the old run was training until paused."""
        was_training = self.running
        self.pause()
        self.join()
        with self.lock:
            self._run, self._weights, self._units = run, None, None
            self.boundary = self.units = None
            self.version += 1
            self.stop_reason, self.broken = None, False
        if keep_training and was_training:
            self.train()

    def touch(self) -> None:
        """A viewer looked at the run: it may keep training."""
        self._seen = self.clock()

    def close(self) -> None:
        self.pause()
        self.join()

    def join(self, timeout: float | None = 10.0) -> None:
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # ------------------------------------------------------------ state

    def trainable(self) -> bool:
        """Whether Train or Step can go on: the run is not done or diverged, its service did
        not die (``broken``: a new run starts over), and the training budget is not spent."""
        run = self.run
        return (not run.diverged and run.epoch < run.budget and not self.broken
                and not self.spent())

    def spent(self) -> bool:
        """Whether this trainer has trained its ``budget``."""
        return self.budget is not None and self.used >= self.budget

    @property
    def state(self) -> str:
        """"training", "waiting" (for a free slot) or "idle"."""
        with self._changed:
            if not (self._wanted or self._steps or self._active):
                return "idle"
            return "waiting" if self._waiting else "training"

    @property
    def running(self) -> bool:
        """Whether the run trains (or waits to) until paused — a Step click does not count."""
        with self._changed:
            return self._wanted

    def view(self) -> Trainee:
        """A copy of the run to draw from: its own model and history, the same data."""
        return self.frame()[0]

    def frame(self) -> tuple[Trainee, torch.Tensor | None, list[torch.Tensor] | None]:
        """``view()``; the class-1 scores of its boundary over ``boundary.grid(GRID)``,
        ``(GRID, GRID)``, where the service computed them for these weights (else None);
        and its layers' values for the diagram (``network.unit_values``' ``layers``), where the
        service computed them for these weights or, while it trains, up to ``slow_seconds``
        earlier (else None)."""
        with self.lock:
            run = self.run
            frozen = copy.copy(run)
            frozen.model = copy.deepcopy(run.model)
            frozen.history, frozen.health = list(run.history), list(run.health)
            return frozen, self.boundary, self.units

    # ------------------------------------------------------------ the driver thread

    def _send(self, command: str, value) -> None:
        """A command to the training service about this trainer's run, while the service
        trains it (called holding ``_changed``)."""
        if self._connection is not None:
            _SERVICE.send(command, self._connection, value)

    def _ensure_thread(self) -> None:
        with self._changed:
            if self._active:
                self._changed.notify_all()
                return
            self._active = True
            self._thread = threading.Thread(target=self._drive, name="minidl-trainer",
                                            daemon=True)
            self._thread.start()

    def _should_stop(self, training: float = 0.0) -> str | None:
        """Why training must stop now, if it must (``training``: seconds trained in this
        service so far, not yet in ``used``)."""
        if not self.alive():
            return "closed"
        if self.clock() - self._seen > self.idle_seconds:
            return "idle"
        if self.slots.turn_over(self):
            return "turn"
        if self.budget is not None and self.used + training >= self.budget:
            return "budget"
        return None

    def _finish(self, reason: str | None = None) -> None:
        """End the driver's work (called holding ``_changed``)."""
        if reason:
            self.stop_reason = reason
        if reason == "error":  # what the service trained since its last report is lost
            self.broken = True
        self._wanted, self._steps, self._waiting = False, 0, False
        self.slots.release(self)
        self._active = False

    def _wait_for_slot(self) -> bool:
        """Hold a slot before training; False when training is no longer wanted."""
        with self._changed:
            while True:
                if not (self._wanted or self._steps):
                    self._finish()
                    return False
                reason = self._should_stop()
                if reason:
                    self._finish(reason)
                    return False
                self._waiting = not self.slots.acquire(self)
                if not self._waiting:
                    return True
                self._changed.wait(0.25)

    def _drive(self) -> None:
        """The driver thread: train in the service until nothing more is wanted.  A command
        can reach the service just after it sent the run back (a Step or Train click a moment
        after its last epoch), so what is still wanted then joins it again."""
        while True:
            if not self._wait_for_slot():
                return
            with self.lock:
                trainable = self.trainable()
                data = dumps(self.run) if trainable else b""
            reason = self._train_in_the_service(data) if trainable else None
            with self._changed:
                self._connection = None
                if reason or not (self._wanted or self._steps) or not self.trainable():
                    self._finish(reason)
                    return

    def _train_in_the_service(self, data: bytes) -> str | None:
        """Train the run (``dumps``) in the server's training service until it ends; keep the
        mirror up to date.  Returns why it had to stop (one of ``STOP_REASONS``), or None."""
        inbox: queue.SimpleQueue = queue.SimpleQueue()
        key = next(_KEYS)
        with self._changed:
            steps = 0 if self._wanted else self._steps
            self.process = _SERVICE.join(key, inbox, data, steps)
            self._connection = key
        reason, checked, began = None, 0.0, self.clock()
        try:
            while True:
                now = time.monotonic()
                if reason is None and now - checked >= 0.25:
                    checked, reason = now, self._should_stop(self.clock() - began)
                    if reason:  # the tab closed or nobody looks: stop, keep what was trained
                        with self._changed:
                            self._send("pause", None)
                try:
                    kind, value = inbox.get(timeout=0.25)
                except queue.Empty:
                    continue
                if kind == "failed":
                    reason = reason or "error"
                    break
                if kind == "done":
                    finished = loads(value)
                    with self.lock:  # the mirror becomes the run the service trained …
                        new_epochs = finished.epoch - self._run.epoch
                        kept = {k: v for k, v in vars(self._run).items() if k in _DATA}
                        vars(self._run).update(vars(finished))
                        vars(self._run).update(kept)  # … on its own (identical) data
                        self._weights = self.boundary = self._units = self.units = None
                        self.version += 1
                    self._count_steps(new_epochs)
                    break
                epoch, diverged, weights, history, health, scores, units = value
                with self.lock:
                    run = self._run
                    self._weights = weights  # copied in when the run is next read …
                    self._scores = scores    # … with the boundary's scores for them
                    self._units = units or self._units  # … and its unit maps, now and then
                    run.history += history
                    run.health += health
                    new_epochs = epoch - run.epoch
                    run.epoch, run.diverged = epoch, diverged
                    run.restart_epoch()  # the mirror's own epoch state is stale
                    self.version += 1
                self._count_steps(new_epochs)
        finally:
            _SERVICE.leave(key)
            self.process = None
            self.used += self.clock() - began
        return reason if reason in STOP_REASONS else None

    def _count_steps(self, new_epochs: int) -> None:
        """``new_epochs`` were trained: as many Step clicks are done."""
        with self._changed:
            self._steps = 0 if self._wanted else max(0, self._steps - new_epochs)
