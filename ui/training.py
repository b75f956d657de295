"""What the pages that train live in the background share (the Playground, Compare): the
server's one bound on sessions training at once, the test of whether a browser tab is still
open, the line that says why training waits or stopped, and how a live view redraws.

A live view is one fragment.  While its trainer trains, the browser reruns it every
``SLOW_SECONDS`` (a run lasts longer while a class trains on the server: ``slow_seconds``);
such a run draws the slow parts (curves, diagram, ranking) once and then
redraws the fast ones (boundary, tiles, metrics) in place every ``TICK_SECONDS`` (~5 a
second) until the next run is due (``redraw``).  Measured in Chromium on the Playground:
the boundary and the metrics redrawn 5 times a second in place took 0.26 of a core, by
rerunning a fragment 0.52; on a 2-core machine the browser's time is what training loses
(``benchmarks/live_update.py``: 68 % of the bare library's speed with three timed fragments,
80–87 % with one).

So the script runs most of the time while a run trains, and Streamlit offers its own **Stop**
(top right, after half a second of running).  It stops one run of the live view, and the
browser's timer would start the next a second later; so the live view takes a Stop of its
run as Pause (``live_fragment``).  A run is also stopped when a click reruns the whole page
meanwhile (fast reruns), which must not pause: what tells them apart is that such a page
run begins after the stopped run did.

Why this module is long: a live view's run and the browser's timer, its pace on a busy
server, Stop and the visitor's own reruns (``visitor_waits``) are one protocol with
Streamlit's script runner; split, its parts would share that state across modules.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import streamlit as st
from streamlit.runtime.scriptrunner import StopException, get_script_run_ctx
from streamlit.runtime.scriptrunner_utils.script_requests import ScriptRequestType

from minidl.jobs import limits
from minidl.viz import tables
from ui import background
from ui.background import SLOW_SECONDS, Slots, Trainer
from ui.playground import warnings_text

TICK_SECONDS = 0.19   # the fast parts: ≥ 5 redraws a second (fewer on a busy server)
WAIT_POLL = 0.03      # between redraws, how often a run looks for the visitor's rerun
BUSY_REDRAWS = 2      # redraws a second below which a live view says the server is busy …
PACE_REDRAWS = 5      # … over its last this many redraws
HOLD_SECONDS = 2.0    # the longest a live view holds its slow parts for others' pages …
HOLD_REDRAW = 1.0     # … and its redraws
FULL_RUN = "live_full_run"  # set by a run of the whole page: the live view draws until a new epoch
# when the last run of the whole page began, and the last run of the live view that Stop cut
# short (time.monotonic())
LIVE_RUNS = "live_runs"
PACE = "live_pace"  # when the fast parts were drawn lately, and whether that was slow
PAGE_COUNTED = "live_page_counted"  # [whether this session's page run holds others' redraws]


def slots() -> Slots:
    """The server's places to train (``MINIDL_TRAINING_SESSIONS``): a Playground session and
    a race take one each, for turns of ``MINIDL_TRAINING_TURN_MINUTES`` while others wait."""
    return _slots(limits.get("MINIDL_TRAINING_SESSIONS"), _minutes("MINIDL_TRAINING_TURN_MINUTES"))


@st.cache_resource(show_spinner=False)
def _slots(limit: int | None, turn: float | None) -> Slots:
    return Slots(limit, turn)


def _minutes(name: str) -> float | None:
    minutes = limits.get(name)
    return None if minutes is None else 60.0 * minutes


def new_trainer(run) -> Trainer:
    """A trainer for this session's page: the server's places, the session's training budget
    (``MINIDL_SESSION_TRAINING_MINUTES``), stopping when its tab closes."""
    return Trainer(run, slots(), alive=session_alive(),
                   budget=_minutes("MINIDL_SESSION_TRAINING_MINUTES"))


def session_alive() -> Callable[[], bool]:
    """A test of whether this browser session is still connected (its tab open)."""
    from streamlit.runtime import Runtime
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None or not Runtime.exists():  # AppTest: no server, no tabs to close
        return lambda: True
    runtime, session = Runtime.instance(), ctx.session_id
    return lambda: runtime.is_active_session(session)


def status(t: Trainer) -> tuple[str, str, str] | None:
    """Why the trainer is not training although it was asked to, if it is not:
    ``(kind, text, icon)`` for ``st.<kind>(text, icon=icon)``, else None."""
    if t.state == "waiting":
        busy, place = t.slots.busy(), t.slots.position(t) or 1
        turn = (f" Each trains at most {t.slots.turn / 60:g} minutes while others wait."
                if t.slots.turn else "")
        return ("warning", f"Waiting for a free place to train: {busy} session"
                f"{' is' if busy == 1 else 's are'} training on this server, at most "
                f"{t.slots.limit} at once; you are {tables.ordinal(place)} in line.{turn}",
                ":material/hourglass_top:")
    if t.stop_reason == "idle":
        return ("info", "Paused because nobody looked at this page for a few minutes; press "
                "**Train** to go on.", ":material/pause_circle:")
    if t.stop_reason == "turn":
        return ("info", f"Paused after {t.slots.turn / 60:g} minutes of training, because "
                "others are waiting for a place on this server; press **Train** to queue "
                "again.", ":material/pause_circle:")
    if t.spent():
        return ("info", f"This session has trained {t.budget / 60:g} minutes, the most one "
                "session may on this public server; export your run, or install minidl to "
                "train on (see the README).", ":material/timer_off:")
    if t.broken:
        return ("error", "The training process stopped unexpectedly (see the server's log): "
                "what it trained since the last redraw, its optimizer state and minibatch "
                "order are lost, so this run cannot go on exactly. Press **Reset** to start "
                "over.", ":material/error:")
    return None


def link_warnings_ui(warnings: list[str]) -> None:
    """The settings of the page's link that could not be used, as plain text (the link's
    text is never Markdown).  In a place that is there, filled or not, so that one
    appearing does not shift (and remount) the live charts below it."""
    with st.container():
        if warnings:
            n = len(warnings)
            st.warning(f"{n} setting{'s' * (n != 1)} in this link could not be used; the page "
                       "shows what it uses instead:", icon=":material/link_off:")
            st.code(warnings_text(warnings), language=None)


def notice_ui(key: str) -> None:
    """The notice in Session State ``key`` (a new network, a new race, …), shown once as a
    toast: it fades by itself, so it never stays stale and never moves the page."""
    text = st.session_state.pop(key, None)
    if text:
        st.toast(text, icon=":material/restart_alt:", duration="long")


def buttons(t: Trainer, finished: bool, prefix: str, toggle: Callable[[], None],
            step: Callable[[], None], reset: Callable[[], None], reset_help: str,
            extras: int) -> list:
    """Train / Pause, Step and Reset (keys ``<prefix>_train`` …), then ``extras`` places for
    more (returned), in one row that wraps (columns would stack the buttons on a phone).
    ``finished``: the run is done or diverged, so only Reset is left."""
    running = t.running
    finished = finished or not t.trainable()  # done, diverged, broken or out of budget
    row = st.container(horizontal=True, wrap=True, vertical_alignment="center", gap="small")
    row.button("Pause" if running else "Train", key=f"{prefix}_train", type="primary",
               icon=":material/pause:" if running else ":material/play_arrow:",
               on_click=toggle, disabled=finished and not running, width=BUTTON_WIDTH)
    row.button("Step", key=f"{prefix}_step", icon=":material/skip_next:", on_click=step,
               disabled=finished, help="train one epoch", width=BUTTON_WIDTH)
    row.button("Reset", key=f"{prefix}_reset", icon=":material/restart_alt:",
               on_click=reset, help=reset_help, width=BUTTON_WIDTH)
    return [row.container(width="content") for _ in range(extras)]


BUTTON_WIDTH = 112  # pixels: three side by side fit a 420 px phone screen


class Slot:
    """A place on the page that a live view fills again and again.

    Its first ``show`` draws where the page is being drawn; later ones replace that
    element in place (a chart keeps its view) and send the browser nothing when what
    it would show is what it shows: each message costs the browser a render of the page.
    """

    def __init__(self, changes: bool = False) -> None:
        """``changes``: it changes at every redraw (a chart); not worth comparing."""
        self.place, self.shown, self.changes = None, None, changes

    def show(self, kind: str, *args, **kwargs) -> None:
        """Show ``st.<kind>(*args, **kwargs)`` here (``kind`` "empty": nothing)."""
        what = None if self.changes else (kind, args, sorted(kwargs.items()))
        if self.place is None:
            self.place = getattr(st, kind)(*args, **kwargs)
        elif self.changes or what != self.shown:
            getattr(self.place, kind)(*args, **kwargs)
        self.shown = what


def busy(times: list[float]) -> bool:
    """Whether the last ``PACE_REDRAWS`` redraws (``time.monotonic()`` each) came fewer than
    ``BUSY_REDRAWS`` a second."""
    return (len(times) == PACE_REDRAWS
            and (times[-1] - times[0]) / (PACE_REDRAWS - 1) > 1 / BUSY_REDRAWS)


def status_ui(t: Trainer, slot: Slot) -> None:
    """``status`` shown in ``slot`` (nothing when there is none)."""
    line = status(t)
    if line:
        kind, text, icon = line
        slot.show(kind, text, icon=icon)
    elif t.state == "training" and st.session_state.get(PACE, {}).get("busy"):
        slot.show("caption", ":material/speed: This server is busy, so the view redraws less "
                  "often; training goes on at its own pace.")
    else:
        slot.show("empty")


_PAGE_RUNS = [0]  # runs of a whole page in progress on this server (``page_run``)
_PAGE_RUNS_LOCK = threading.Lock()


@contextmanager
def page_run() -> Iterator[None]:
    """Count a run of a whole page (the entry point's) until it is drawn: its end, or its
    live view's first redraw in place (``page_drawn``).  Live views of other sessions hold
    their redraws meanwhile: on a server where a class trains, a page that opened (or a
    click) otherwise waited seconds for the server's one Python."""
    counted = st.session_state[PAGE_COUNTED] = [True]
    with _PAGE_RUNS_LOCK:
        _PAGE_RUNS[0] += 1
    try:
        yield
    finally:
        page_drawn(counted)


def page_drawn(counted: list[bool] | None = None) -> None:
    """This session's page run is drawn: it no longer holds other sessions' redraws."""
    counted = counted or st.session_state.get(PAGE_COUNTED, [False])
    with _PAGE_RUNS_LOCK:
        if counted[0]:
            counted[0] = False
            _PAGE_RUNS[0] -= 1


def others_drawing() -> bool:
    """Whether another session's page run is being drawn (``page_run``)."""
    mine = st.session_state.get(PAGE_COUNTED, [False])[0]
    return _PAGE_RUNS[0] > mine


def visitor_waits() -> bool:
    """Whether a rerun the visitor asked for waits for this run to end: an event of a chart in
    the live view, such as pointing at a unit of the diagram.  Streamlit queues such a rerun of
    the fragment but never cuts the fragment's run short for it, so the unit's map came up to
    a run (1 s or more) late while training.  Only Streamlit's private request state tells
    (read as in Streamlit 1.67, which requirements.txt pins; ``tests/test_training_ui.py``
    checks the reading): a queued rerun that is not the browser's timer.  Anything else
    reads as no."""
    requests = getattr(get_script_run_ctx(), "script_requests", None)
    try:
        return (requests._state is ScriptRequestType.RERUN
                and not requests._rerun_data.is_auto_rerun)
    except AttributeError:
        return False


def slow_seconds(t: Trainer) -> float:
    """How often a live view's slow parts are drawn on this server now
    (``background.slow_seconds``; the service sends unit maps as often)."""
    return background.slow_seconds(t.slots.busy())


def live_fragment(view: Callable[..., None], t: Trainer, *args) -> None:
    """Draw ``view(ticking, *args)`` as the page's live fragment, which the browser reruns
    every ``SLOW_SECONDS`` while ``ticking`` (trainer ``t`` is not idle).  A run lasts
    ``slow_seconds(t)``: Streamlit keeps the timer's request until it ends (an automatic
    rerun never cuts a run short), so runs follow at the pace the server's load sets with
    no run of the whole page to change the timer.  (Changing it did: at a class's 10th and
    20th visitor every live page reran at once, and opening pages waited seconds.)  A run
    waits (up to ``HOLD_SECONDS``) while another session's page is drawn.  Streamlit's Stop
    pauses ``t`` (see the module docstring)."""
    st.session_state[FULL_RUN] = True
    # a plain dict: once Stop is pressed, every use of Session State stops the script again
    runs = st.session_state.setdefault(LIVE_RUNS, {})
    runs["page_began"] = time.monotonic()
    ticking = t.state != "idle"

    def live(ticking: bool, *args) -> None:
        began = time.monotonic()
        runs["every"] = slow_seconds(t)
        stopped = runs.pop("stopped", None)
        if stopped is not None and stopped >= runs["page_began"] and t.state != "idle":
            t.pause()   # no page run began since that run: the visitor pressed Stop
            st.rerun()  # relabel the buttons, stop the timer
        # a page opening elsewhere goes first — but not before this page's own run: waiting
        # pages would wait for each other
        waited, whole_page = time.monotonic(), st.session_state.get(FULL_RUN, False)
        while (ticking and not whole_page and others_drawing()
               and time.monotonic() - waited < HOLD_SECONDS):
            time.sleep(TICK_SECONDS / 4)
        try:
            view(ticking, *args)
        except StopException:
            runs["stopped"] = began
            raise

    st.fragment(run_every=SLOW_SECONDS if ticking else None)(live)(ticking, *args)


def redraw(t: Trainer, ticking: bool, began: float, draw: Callable[[], None]) -> None:
    """The end of a live view's run that began at ``began`` (``time.monotonic()``): in a
    run of the fragment alone, ``draw()`` the fast parts every ``TICK_SECONDS`` until the
    next run is due.  In a run of the whole page (a click: Train, a setting) the same, but
    only until a new epoch has been drawn — the browser's timer starts the fragment's runs a
    second later, so without it Train showed epoch 1 after 1.6 s.  When the trainer has
    stopped since the page started the timer (done, diverged, paused by itself), rerun the
    whole page once: it shows the final epoch, relabels the buttons and stops the timer.

    On a busy server it redraws less often, never more than half its time: it draws only
    what changed since the last redraw (the trainer's ``version``), after a redraw that
    took ``d`` seconds it waits at least ``d``, and while another session's page is being
    drawn (``page_run``) it redraws at most once in ``HOLD_REDRAW`` seconds.  A class's
    sessions share the server's Python, so their redraws slow down together while training
    (another process) goes on;
    ``status_ui`` says so when a session's redraws fall below ``BUSY_REDRAWS`` a second."""
    whole_page = st.session_state.pop(FULL_RUN, False)
    if whole_page:
        page_drawn()
    runs = st.session_state.get(LIVE_RUNS, {})
    pace = st.session_state.setdefault(PACE, {"drawn": [], "busy": False})
    pace.update({} if ticking else {"drawn": [], "busy": False})
    first, drawn = t.epoch, t.version
    tick, spent = began, 0.0
    while True:
        if ticking and t.state == "idle":
            st.rerun()
        tick = max(tick + TICK_SECONDS, time.monotonic() + spent)
        if not ticking or tick - began >= runs.get("every", SLOW_SECONDS):
            return  # the next run is due
        while time.monotonic() < tick:
            if visitor_waits():
                return  # the visitor's pointer asks for a run now
            time.sleep(min(WAIT_POLL, max(0.0, tick - time.monotonic())))
        t.touch()
        if t.version == drawn or (not whole_page and others_drawing() and pace["drawn"]
                                  and time.monotonic() - pace["drawn"][-1] < HOLD_REDRAW):
            continue  # nothing new to show, or another session's page is being drawn
        shown, drawn = t.epoch, t.version
        start = time.monotonic()
        pace["drawn"] = (pace["drawn"] + [start])[-PACE_REDRAWS:]
        pace["busy"] = busy(pace["drawn"])
        draw()
        spent = time.monotonic() - start
        if whole_page and shown != first:
            return  # the rest of the page waits no longer than that
