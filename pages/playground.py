"""Playground: train the hand-written network live and watch its decision boundary form.

The page reads the settings from the sidebar (seeded from the URL on a
session's first run), keeps one ``minidl.train.Run`` in Session State and
trains it in short, time-boxed chunks inside a fragment that reruns itself
every ``TICK_SECONDS`` while training — so a widget interaction reruns the
script around the run but never restarts or kills it.  Every widget is drawn
from its row of the settings table (``minidl.hparams``); settings ↔ URL and
pacing live in ``ui.playground``, charts in ``minidl.viz``.

Why this module is long: besides drawing, the page owns the live run's Session
State under one lock (reset, live update, train/step/reset callbacks); that
locking is only correct when it is read in one place.
"""

from __future__ import annotations

import threading
import time

import pandas as pd
import pyarrow as pa
import streamlit as st
import torch

import streamlit_app
from minidl import data, hparams, train
from minidl.train import Config, Run
from minidl.viz import live as charts
from ui import playground
from ui.playground import SETTINGS

streamlit_app.enter()

# Session State keys (page-prefixed); widget keys are "pg_<setting name>"
RUN, RUNNING, NOTICE, POINTS, LOCK = "pg_run", "pg_running", "pg_notice", "pg_points", "pg_lock"
PACER, CURVES = "pg_pacer", "pg_curves"
SETTINGS_KEY, URL_WARNINGS, FIRST_SETTINGS = "pg_settings", "pg_url_warnings", "pg_first_settings"

# A fragment run redraws, then trains minibatches for a time a playground.Pacer picks:
# frames of ~FRAME_SECONDS, at least half of it training.  An epoch longer than that
# (the default network's 1000 steps at batch 1 take ~0.13 s) goes on in the next frame.
FRAME_SECONDS = 0.18
CURVE_SECONDS = 0.5    # the loss / accuracy curves redraw at most this often while training
# run_every: the browser asks for the next run this often.  Much shorter than a fragment
# run, so a request is already waiting when one ends (even if a busy browser fires its
# timer late) and runs follow back to back; extra requests are merged by Streamlit.
TICK_SECONDS = 0.05
GRID = 100             # boundary image resolution (GRID × GRID cells)
CHART_SIZE = 400


@st.cache_data(max_entries=16, show_spinner=False)
def load_data(name: str, n_train: int, n_test: int, seed: int, noise: float
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One seeded training/test draw, cached on its plain-valued settings."""
    return data.train_test(name, n_train, n_test, seed, noise)


def new_run(config: Config) -> Run:
    return Run(config, data_sets=load_data(config.dataset, config.n_train, config.n_test,
                                           config.data_seed, config.noise))


# ---------------------------------------------------------------- settings

def key(name: str) -> str:
    return f"pg_{name}"


def initial_settings() -> dict:
    """The settings of this session: from the URL on the first run, then remembered."""
    state = st.session_state
    if SETTINGS_KEY not in state:
        settings, warnings = playground.parse_query(st.query_params.to_dict())
        state[SETTINGS_KEY], state[URL_WARNINGS] = settings, warnings
        state[FIRST_SETTINGS] = dict(settings)
    # (re)seed widget values, e.g. after a visit to another page dropped them
    for name, value in state[SETTINGS_KEY].items():
        state.setdefault(key(name), value)
    return state[SETTINGS_KEY]


def setting_ui(name: str) -> None:
    """One widget for one setting, drawn from its row of the settings table: a select box
    for a choice, a slider over its stops or (for a linear setting with an app range of at
    most 100 steps) its range, else a number input."""
    s = SETTINGS[name]
    common = {"key": key(name), "help": s.help or None}
    if s.kind == "choice":
        labels = dict(zip(s.choices, s.choice_labels))
        st.selectbox(s.label, playground.offered(s), format_func=lambda v: labels.get(v, v),
                     **common)
    elif s.kind == "set":
        labels = dict(zip(s.choices, s.choice_labels))
        st.multiselect(s.label, s.choices, format_func=lambda v: labels.get(v, v), **common)
    elif s.kind == "widths":
        widths_ui(s)
    elif s.stops:
        st.select_slider(s.label, s.stops, format_func=lambda v: f"{v:g}", **common)
    else:
        cast = int if s.kind == "int" else float
        low, high, step = cast(s.app_low), cast(s.app_high), cast(s.ui_step or 1)
        stops = (high - low) / step
        if s.scale == "linear" and stops <= 100 and abs(stops - round(stops)) < 1e-9:
            st.slider(s.label, min_value=low, max_value=high, step=step, **common)
        else:
            # enough decimals to show the step and both ends of the range (β₂: 0.9999)
            decimals = max(2, *(len(f"{x:.8f}".rstrip("0").split(".")[1])
                                for x in (step, low, high)))
            st.number_input(s.label, min_value=low, max_value=high, step=step,
                            format=f"%.{decimals}f" if s.kind == "float" else None, **common)


def widths_ui(s: hparams.Setting) -> None:
    """A layer count, then one width per layer; their tuple is the setting's value."""
    state = st.session_state
    hidden = tuple(state[key(s.name)])
    state.setdefault(key("hidden_layers"), len(hidden))
    layers = st.slider("hidden layers", 1, s.ui_length, key=key("hidden_layers"))
    hidden = hparams.resize_widths(hidden, layers)
    widths = []
    for i in range(layers):
        state.setdefault(key(f"hidden_{i}"), hidden[i])
        widths.append(st.slider(f"units in layer {i + 1}", 1, int(s.app_high),
                                key=key(f"hidden_{i}")))
    state[key(s.name)] = tuple(widths)


def settings_ui(settings: dict) -> list[str]:
    """Draw the sidebar controls, a section per part of the settings table (an optimizer's
    hyperparameters only for the chosen optimizer, Xavier's gain only with Xavier init);
    return the names of the settings drawn."""
    state = st.session_state
    drawn = []
    sections = {"data": "Data", "network": "Network", "init": "Initialisation",
                "optimizer": "Optimizer", "training": "Training"}
    with st.sidebar:
        for part, title in sections.items():
            st.subheader(title)
            for name in hparams.names("app", part):
                s = SETTINGS[name]
                if s.convention or (part == "optimizer" and name != "optimizer"
                                    and state[key("optimizer")] not in s.optimizers):
                    continue
                if name == "gain" and state[key("init")] != "xavier":
                    continue
                if name == "split" and state[key("dataset")] != "custom":
                    continue  # the training share of your own points
                setting_ui(name)
                drawn.append(name)
        conventions = [n for n in hparams.names("app") if SETTINGS[n].convention]
        with st.expander("Conventions", icon=":material/rule:"):
            st.caption("Choices the seed report leaves unstated; the defaults are our reading.")
            for name in conventions:
                setting_ui(name)
        drawn += conventions
    return drawn


# ---------------------------------------------------------------- run state
#
# With Streamlit's fast reruns a widget interaction starts the new script run on a new
# thread while the old one may still be inside a training chunk (it only stops at its
# next Streamlit call).  Everything that touches the run holds the session's lock, so
# two threads never drive the same model (its layers cache their inputs for backward).

def run_lock() -> threading.RLock:
    return st.session_state.setdefault(LOCK, threading.RLock())


def sync_run(config: Config) -> Run:
    """Bring the session's run in line with ``config``: reset it or update it live."""
    state = st.session_state
    with run_lock():
        run: Run | None = state.get(RUN)
        if run is None:
            state[RUN] = run = new_run(config)
            return run
        reasons, live = playground.classify_change(run.config, config)
        if reasons:
            state[RUN] = run = new_run(config)
            state[NOTICE] = ("New network (weights re-initialised) because "
                             + "; ".join(reasons) + ".")
        elif live:
            run.set_hyperparameters(**live)
            if "optimizer" in live:
                state[NOTICE] = (f"Optimizer switched to {hparams.label(live['optimizer'])}: "
                                 "weights kept, "
                                 "its state (momentum, moment estimates) starts afresh.")
    return run


def toggle_training() -> None:
    state = st.session_state
    with run_lock():
        state[RUNNING] = (not state.get(RUNNING, False)
                          and playground.status(state[RUN]) in ("fresh", "partial"))


def step_once() -> None:
    state = st.session_state
    with run_lock():
        state[RUNNING] = False
        if playground.status(state[RUN]) in ("fresh", "partial"):
            state[RUN].train_epoch()


def reset_run() -> None:
    state = st.session_state
    with run_lock():
        state[RUNNING] = False
        state[RUN] = new_run(state[RUN].config)
        state[NOTICE] = None


# ---------------------------------------------------------------- live view

def points_table(run: Run) -> pa.Table:
    """Training and test points of ``run``, built once per run (they do not move).

    Kept as an Arrow table: Streamlit sends chart data as Arrow, and converting
    2000 rows from pandas on every frame would cost a few ms each time.
    """
    cached = st.session_state.get(POINTS)
    if cached is None or cached[0] is not run:
        table = pd.concat([charts.points_frame(run.X_train, run.y_train, "train"),
                           charts.points_frame(run.X_test, run.y_test, "test")],
                          ignore_index=True)
        st.session_state[POINTS] = cached = (run, pa.Table.from_pandas(table,
                                                                       preserve_index=False))
    return cached[1]


def metrics_ui(frame: playground.Frame) -> None:
    m = frame.metrics
    with st.container(horizontal=True, gap="medium"):
        st.metric("Epoch", f"{frame.epoch} / {frame.budget}", width="content")
        for label, name in (("Train loss", "train_loss"), ("Test loss", "test_loss")):
            # an exploded loss (NaN, inf, 1e24) reads as what it means, not as 28 digits
            st.metric(label, "diverged" if train.diverged(m[name]) else f"{m[name]:.4f}",
                      width="content")
        st.metric("Train accuracy", f"{100 * m['train_acc']:.1f}%", width="content")
        st.metric("Test accuracy", f"{100 * m['test_acc']:.1f}%", width="content")
        st.metric("Parameters", f"{frame.parameters:,}", width="content")


def live_view() -> None:
    """Draw the run as it is, then (while running) train the next chunk.

    Drawing first keeps the view fresh: Streamlit fades a fragment's elements
    that a run in progress has not redrawn yet (after 0.5 s), and a chunk of
    training before the drawing would leave them stale for that long.
    """
    state = st.session_state
    smooth = state[key("view")] == "smooth"
    with run_lock():
        run: Run = state[RUN]
        frame = playground.snapshot(run, GRID, discrete=not smooth)
        points = points_table(run)
    draw(frame, points, run.config.dataset, smooth)

    if state.get(RUNNING):
        pacer = state.setdefault(PACER, playground.Pacer(FRAME_SECONDS))
        with run_lock():
            playground.train_chunk(run, pacer.next_chunk(time.perf_counter()))
            finished = playground.status(run) in ("done", "diverged")
        pacer.chunk_done(time.perf_counter())
        if finished:
            state[RUNNING] = False
            st.rerun()  # the whole page: draws the last epoch, stops the ticking, relabels


def curves_history(frame: playground.Frame) -> pd.DataFrame:
    """The history the curves show: while training, refreshed every CURVE_SECONDS only.

    A chart whose data is byte-for-byte unchanged costs the browser nothing, and
    the two curve charts are a large part of each frame's rendering work.
    """
    state, now = st.session_state, time.perf_counter()
    shown = state.get(CURVES)
    if (not state.get(RUNNING) or shown is None or now - shown[0] >= CURVE_SECONDS
            or len(frame.history) < len(shown[1])):
        state[CURVES] = shown = (now, frame.history)
    return shown[1]


def draw(frame: playground.Frame, points: pa.Table, dataset: str, smooth: bool) -> None:
    if frame.status == "diverged":
        st.error(f"Training diverged at epoch {frame.epoch}: the loss became NaN or infinite. "
                 "Lower the learning rate and press **Reset**.", icon=":material/error:")
    elif frame.status == "done":
        st.success(f"Epoch budget reached ({frame.epoch} epochs). Raise the budget to train "
                   "on, or press **Reset**.", icon=":material/flag:")

    plot, numbers = st.columns([1.1, 1], gap="large")
    with plot:
        disk = (data.DISK_CENTER, data.DISK_RADIUS) if dataset == "disk" else None
        tables = charts.boundary_data(frame.image, points, frame.mistakes)
        st.vega_lite_chart(charts.with_data(charts.spec("boundary", disk, CHART_SIZE, smooth),
                                            tables),
                           width="content", alt="decision boundary over the unit square")
    with numbers:
        metrics_ui(frame)
        history = charts.history_data(curves_history(frame))
        for metric in ("loss", "acc"):
            st.vega_lite_chart(charts.with_data(charts.spec("curve", metric), history),
                               width="stretch", alt=f"{metric} per epoch")


# ---------------------------------------------------------------- page

def main() -> None:
    state = st.session_state
    settings = initial_settings()
    drawn = settings_ui(settings)

    st.title("Playground")
    st.caption("A network written with PyTorch tensor operations only learns to separate two "
               "classes of points — by default those inside the disk from those outside. "
               "Press **Train** and watch its decision boundary form.")

    settings = {**settings, **playground.from_widgets({name: state[key(name)] for name in drawn})}
    run = sync_run(playground.to_config(settings))
    # "view" is drawn below; reading it here keeps every setting in one dict
    settings["view"] = state[key("view")]
    if settings != state[FIRST_SETTINGS]:
        state[URL_WARNINGS] = []  # the link's values are no longer what is shown
    state[SETTINGS_KEY] = settings
    query = playground.to_query(settings)
    if st.query_params.to_dict() != query:
        st.query_params.from_dict(query)

    if state[URL_WARNINGS]:  # one message per page load; the link's text never as Markdown
        n = len(state[URL_WARNINGS])
        st.warning(f"{n} setting{'s' * (n != 1)} in this link could not be used; the page "
                   "shows what it uses instead:", icon=":material/link_off:")
        st.code(playground.warnings_text(state[URL_WARNINGS]), language=None)

    if state.get(NOTICE):
        st.info(state[NOTICE], icon=":material/restart_alt:")

    running = bool(state.get(RUNNING))
    finished = playground.status(run) in ("done", "diverged")
    buttons = st.columns([1, 1, 1, 2.2, 3], vertical_alignment="center")
    buttons[0].button("Pause" if running else "Train", key="pg_train", type="primary",
                      icon=":material/pause:" if running else ":material/play_arrow:",
                      on_click=toggle_training, disabled=finished and not running,
                      width="stretch")
    buttons[1].button("Step", key="pg_step", icon=":material/skip_next:", on_click=step_once,
                      disabled=finished, help="train one epoch", width="stretch")
    buttons[2].button("Reset", key="pg_reset", icon=":material/restart_alt:", on_click=reset_run,
                      help="new weights, same settings", width="stretch")
    with buttons[3]:
        st.radio(SETTINGS["view"].label, SETTINGS["view"].choices, key=key("view"),
                 horizontal=True, help=SETTINGS["view"].help)

    st.fragment(run_every=TICK_SECONDS if running else None)(live_view)()
    st.caption("Boundary colour: the network's class-1 score, output₁ − output₀ (blue: class 0, "
               "orange: class 1)" + (", dashed: the true disk" if run.config.dataset == "disk"
                                     else "") + "; ✕: misclassified point; ● training, ■ test.")


main()
