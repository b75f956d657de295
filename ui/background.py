"""Training in the background: one thread per Playground session trains its run while the
page only redraws snapshots — without Streamlit, so it is tested on its own.

Why a thread: training inside the page's fragment shared each frame between
training and drawing, and the app trained at ~55 % of the bare library's speed.
A thread trains between frames *and* during them (PyTorch releases Python's lock
inside every tensor operation), and the page reads a copy of the model taken in a
fraction of a millisecond.

A ``Trainer`` owns one ``train.Run`` and a lock around it:

- ``train()`` / ``pause()`` / ``step()`` (one more epoch) / ``replace(run)``;
- ``view()`` returns a frozen copy of the run (its own model, history and
  counters) that can be drawn while training goes on;
- ``touch()`` says a viewer looked.  The thread stops by itself when the run is
  done or diverged, when ``alive()`` turns false (the browser tab was closed) or
  when nobody has looked for ``idle_seconds``;
- a shared ``Slots`` bounds how many sessions of the server train at once: the
  others wait, and ``state`` says so.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable

from minidl.train import Run

CHUNK_SECONDS = 0.05   # training between two checks of pause / step / alive (holds the lock)
IDLE_SECONDS = 180.0   # a run nobody has looked at for this long pauses


class Slots:
    """At most ``limit`` trainers of the server train at once (``None``: no limit)."""

    def __init__(self, limit: int | None):
        self.limit = limit
        self._holders: set[int] = set()
        self._lock = threading.Lock()

    def acquire(self, holder: object) -> bool:
        with self._lock:
            if id(holder) in self._holders:
                return True
            if self.limit is not None and len(self._holders) >= self.limit:
                return False
            self._holders.add(id(holder))
            return True

    def release(self, holder: object) -> None:
        with self._lock:
            self._holders.discard(id(holder))

    def busy(self) -> int:
        """How many trainers hold a slot now."""
        with self._lock:
            return len(self._holders)


class Trainer:
    """Trains one run in a background thread; see the module docstring."""

    def __init__(self, run: Run, slots: Slots | None = None,
                 alive: Callable[[], bool] = lambda: True, idle_seconds: float = IDLE_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        self.lock = threading.RLock()      # held while the run trains or is copied
        self.run = run
        self.slots = slots or Slots(None)
        self.alive, self.idle_seconds, self.clock = alive, idle_seconds, clock
        self.stop_reason: str | None = None   # why the last training stopped by itself
        self._wanted = False     # train until paused
        self._steps = 0          # epochs still to train for Step clicks
        self._waiting = False    # wants to train but no slot is free
        self._thread: threading.Thread | None = None
        self._active = False     # a thread is at work (set and cleared holding _changed)
        self._seen = clock()
        self._changed = threading.Condition()

    # ------------------------------------------------------------ commands

    def train(self) -> None:
        """Train until paused, done or diverged."""
        with self._changed:
            if not self.trainable():
                return
            self._wanted, self.stop_reason = True, None
        self._ensure_thread()

    def pause(self) -> None:
        """Stop after the current chunk (the epoch in progress goes on at the next start)."""
        with self._changed:
            self._wanted, self._steps = False, 0
            self._changed.notify_all()

    def step(self) -> None:
        """Train one more epoch (each call adds one), then pause."""
        with self._changed:
            if not self.trainable():
                return
            self._wanted = False
            self._steps += 1
            self.stop_reason = None
        self._ensure_thread()

    def replace(self, run: Run) -> None:
        """Pause, wait for the thread to let go, and train ``run`` from now on."""
        self.pause()
        self.join()
        with self.lock:
            self.run = run
            self.stop_reason = None

    def touch(self) -> None:
        """A viewer looked at the run: it may keep training."""
        self._seen = self.clock()

    def close(self) -> None:
        self.pause()
        self.join()

    def join(self, timeout: float | None = 5.0) -> None:
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # ------------------------------------------------------------ state

    def trainable(self) -> bool:
        run = self.run
        return not run.diverged and run.epoch < run.config.epochs

    @property
    def state(self) -> str:
        """"training", "waiting" (for a free slot) or "idle"."""
        with self._changed:
            if not (self._wanted or self._steps):
                return "idle"
            return "waiting" if self._waiting else "training"

    @property
    def running(self) -> bool:
        """Whether the run trains (or waits to) until paused — a Step click does not count."""
        with self._changed:
            return self._wanted

    def view(self) -> Run:
        """A copy of the run to draw from: its own model and history, the same data."""
        with self.lock:
            run = self.run
            frozen = copy.copy(run)
            frozen.model = copy.deepcopy(run.model)
            frozen.history, frozen.health = list(run.history), list(run.health)
            frozen.config = run.config
        return frozen

    # ------------------------------------------------------------ the thread

    def _ensure_thread(self) -> None:
        with self._changed:
            if self._active:
                self._changed.notify_all()
                return
            self._active = True
            self._thread = threading.Thread(target=self._loop, name="minidl-trainer",
                                            daemon=True)
            self._thread.start()

    def _should_stop(self) -> str | None:
        if not self.alive():
            return "closed"
        if self.clock() - self._seen > self.idle_seconds:
            return "idle"
        return None

    def _finish(self, reason: str | None = None) -> None:
        """End the thread's work (called holding ``_changed``): a later command starts a
        new thread, which must not find this one's slot."""
        if reason:
            self.stop_reason = reason
        self._wanted, self._steps, self._waiting = False, 0, False
        self.slots.release(self)
        self._active = False

    def _loop(self) -> None:
        try:
            while True:
                with self._changed:
                    if not (self._wanted or self._steps):
                        return self._finish()
                    reason = self._should_stop()
                    if reason:
                        return self._finish(reason)
                    self._waiting = not self.slots.acquire(self)
                    if self._waiting:
                        self._changed.wait(0.25)
                        continue
                with self.lock:
                    if not self.trainable():
                        with self._changed:
                            return self._finish()
                    ended = self.run.train_steps(CHUNK_SECONDS) is not None
                if ended:
                    with self._changed:
                        self._steps = max(self._steps - 1, 0)
        except BaseException:
            with self._changed:
                self._finish("error")
            raise
