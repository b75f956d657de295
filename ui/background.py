"""Training in the background: while a Playground session trains, a process of its own
trains its run and the page only redraws snapshots — without Streamlit, so it is tested on
its own.

Why a process, not a thread: the network is tiny, so training is mostly Python, and so is
drawing a frame.  In one process they share Python's lock: with a training thread the
whole server used one core, and each redraw cost training ~60 ms (the app trained at
50–70 % of the bare library's speed).  A process trains on a core of its own.

A ``Trainer`` owns one *trainee* (the *mirror*): a ``minidl.Run``, or anything with the same
small protocol (``Trainee``) — a ``minidl.race.Race`` trains several runs side by side:

- ``train()`` / ``pause()`` / ``step()`` (one more epoch) / ``replace(run)`` /
  ``set_hyperparameters(...)``;
- while it trains, the process sends progress ~20 times a second (weights, new
  history and health rows) and the mirror takes it in; when it stops (paused, done,
  diverged), the process sends the whole run back (``torch.save`` keeps the optimizer's
  views of the weights) and the mirror becomes that run, so the next start goes on
  exactly where this one stopped (a ``Run``'s ``snapshots``, the epochs it keeps for
  replay, come back this way only: the page replays only a run that is not training);
- ``view()`` returns a frozen copy of the mirror to draw;
- ``touch()`` says a viewer looked.  Training stops when ``alive()`` turns false (the
  browser tab was closed) or nobody has looked for ``idle_seconds``;
- a shared ``Slots`` bounds how many sessions of the server train at once: the others
  wait, and ``state`` says so.

Processes start from a fork server that has imported torch and minidl once, so a start
costs ~50 ms and the processes share those pages (the fork server ~115 MB, each training
process ~80 MB more, measured as PSS).

Why this module is long: the commands, the training process's loop and the thread that
drives it and keeps the mirror up to date are one protocol; they must agree on every
message.
"""

from __future__ import annotations

import copy
import io
import multiprocessing
import threading
import time
from collections.abc import Callable
from typing import Protocol

import torch

from minidl import nn, runtime


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

CHUNK_SECONDS = 0.05     # training between two looks at the commands (in the process)
REPORT_SECONDS = 0.05    # progress sent to the page at most this often
IDLE_SECONDS = 180.0     # a run nobody has looked at for this long pauses
# why training stopped by itself: the tab was closed, nobody looked, the process died, its
# turn was over while others waited, its budget is spent
STOP_REASONS = ("closed", "idle", "error", "turn", "budget")


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


def _train_in_process(commands, results, data: bytes, steps: int) -> None:
    """The training process: train ``run`` until told to stop (``steps`` epochs if > 0),
    sending progress; at the end send the run back.  Two one-way pipes: a socket pair
    would lose the last messages if the page's last command were still unread."""
    runtime.setup()  # an entry point: a process of its own
    run = loads(data)
    sent_history, sent_health, last_report = len(run.history), len(run.health), 0.0
    wanted = steps == 0
    try:
        while not run.diverged and run.epoch < run.budget and (wanted or steps > 0):
            while commands.poll():
                command, value = commands.recv()
                if command == "pause":
                    wanted, steps = False, 0
                elif command == "train":
                    wanted = True
                elif command == "step":
                    steps += value
                elif command == "set":
                    run.set_hyperparameters(**value)
            if not (wanted or steps > 0):
                break
            if run.train_steps(CHUNK_SECONDS) is not None and not wanted:
                steps -= 1
            now = time.monotonic()
            if now - last_report >= REPORT_SECONDS or run.diverged:
                results.send(("progress", (run.epoch, run.diverged, _weights(run),
                                              run.history[sent_history:],
                                              run.health[sent_health:])))
                sent_history, sent_health, last_report = len(run.history), len(run.health), now
        results.send(("done", dumps(run)))
    except (EOFError, BrokenPipeError):  # the page went away: nothing to send back to
        pass


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
    """Trains one run in a process of its own; see the module docstring."""

    def __init__(self, run: Trainee, slots: Slots | None = None,
                 alive: Callable[[], bool] = lambda: True, idle_seconds: float = IDLE_SECONDS,
                 clock: Callable[[], float] = time.monotonic, budget: float | None = None):
        self.lock = threading.RLock()      # held while the mirror changes or is copied
        self.run = run
        self.slots = slots or Slots(None)
        self.alive, self.idle_seconds, self.clock = alive, idle_seconds, clock
        self.budget = budget     # seconds this trainer may train in all (None: no limit)
        self.used = 0.0          # seconds it has trained (held a place), every run together
        self.broken = False      # its training process died: the run cannot go on exactly
        self.stop_reason: str | None = None   # why the last training stopped by itself
        self._wanted = False     # train until paused
        self._steps = 0          # epochs still to train for Step clicks
        self._waiting = False    # wants to train but no slot is free
        self._thread: threading.Thread | None = None   # drives the process
        self._active = False     # a driver thread is at work (set and cleared holding _changed)
        self._connection = None  # to the training process, while one runs
        self.process: multiprocessing.Process | None = None  # that process, while one runs
        self._seen = clock()
        self._changed = threading.Condition()

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
        training process."""
        with self._changed, self.lock:
            self.run.set_hyperparameters(**values)
            self._send("set", values)

    def replace(self, run: Trainee, keep_training: bool = False) -> None:
        """Pause, wait for the process to let go, and train ``run`` from now on — at once
        if ``keep_training`` and the old run was training until paused."""
        was_training = self.running
        self.pause()
        self.join()
        with self.lock:
            self.run = run
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
        """Whether Train or Step can go on: the run is not done or diverged, its process did
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
        with self.lock:
            run = self.run
            frozen = copy.copy(run)
            frozen.model = copy.deepcopy(run.model)
            frozen.history, frozen.health = list(run.history), list(run.health)
        return frozen

    # ------------------------------------------------------------ the driver thread

    def _send(self, command: str, value) -> None:
        """A command to the training process, if one runs (called holding ``_changed``)."""
        if self._connection is not None:
            try:
                self._connection.send((command, value))
            except (OSError, ValueError):  # it has just ended
                pass

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
        process so far, not yet in ``used``)."""
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
        if reason == "error":  # what the process trained since its last report is lost
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
        """The driver thread: train in a process until nothing more is wanted.  A command
        can reach a process that has just decided to end (a Step or Train click a moment
        after its last epoch), so what is still wanted then starts another one."""
        while True:
            if not self._wait_for_slot():
                return
            with self.lock:
                trainable = self.trainable()
                data = dumps(self.run) if trainable else b""
            reason = self._train_in_a_process(data) if trainable else None
            with self._changed:
                self._connection = None
                if reason or not (self._wanted or self._steps) or not self.trainable():
                    self._finish(reason)
                    return

    def _train_in_a_process(self, data: bytes) -> str | None:
        """Train the run (``dumps``) in a new process until it ends; keep the mirror up to
        date.  Returns why it had to stop (one of ``STOP_REASONS``), or None."""
        context = _context()
        their_commands, our_commands = context.Pipe(duplex=False)
        ours, their_results = context.Pipe(duplex=False)
        with self._changed:
            steps = 0 if self._wanted else self._steps
            process = context.Process(target=_train_in_process,
                                      args=(their_commands, their_results, data, steps),
                                      daemon=True)
            process.start()
            self.process = process
            their_commands.close()
            their_results.close()
            self._connection = our_commands
        reason, checked, began = None, 0.0, self.clock()
        try:
            while True:
                now = time.monotonic()
                if reason is None and now - checked >= 0.25:
                    checked, reason = now, self._should_stop(self.clock() - began)
                    if reason:  # the tab closed or nobody looks: stop, keep what was trained
                        with self._changed:
                            self._send("pause", None)
                if not ours.poll(0.25):
                    if not process.is_alive() and not ours.poll():
                        reason = reason or "error"
                        break
                    continue
                kind, value = ours.recv()
                if kind == "done":
                    finished = loads(value)
                    with self.lock:  # the mirror becomes the run the process trained …
                        new_epochs = finished.epoch - self.run.epoch
                        kept = {k: v for k, v in vars(self.run).items() if k in _DATA}
                        vars(self.run).update(vars(finished))
                        vars(self.run).update(kept)  # … on its own (identical) data
                    self._count_steps(new_epochs)
                    break
                epoch, diverged, weights, history, health = value
                with self.lock:
                    run = self.run
                    weights = torch.frombuffer(bytearray(weights),
                                               dtype=run.model.param()[0][0].dtype)
                    offset = 0
                    for p, _ in run.model.param():
                        p.copy_(weights[offset:offset + p.numel()].view_as(p))
                        offset += p.numel()
                    run.history += history
                    run.health += health
                    new_epochs = epoch - run.epoch
                    run.epoch, run.diverged = epoch, diverged
                    run.restart_epoch()  # the mirror's own epoch state is stale
                self._count_steps(new_epochs)
        except (EOFError, OSError):
            reason = reason or "error"
        finally:
            ours.close()
            our_commands.close()
            process.join(5)
            if process.is_alive():
                process.kill()
            self.process = None
            self.used += self.clock() - began
        return reason if reason in STOP_REASONS else None

    def _count_steps(self, new_epochs: int) -> None:
        """``new_epochs`` were trained: as many Step clicks are done."""
        with self._changed:
            self._steps = 0 if self._wanted else max(0, self._steps - new_epochs)
