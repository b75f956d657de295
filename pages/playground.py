"""Playground: train the hand-written network live and watch its decision boundary form.

The page reads the settings from a compact bar above the network (the controls
TensorFlow Playground puts there, ``playground.BAR``) and the sidebar (all seeded from the
URL on a session's first run) and keeps one ``ui.background.Trainer`` in Session State;
while it trains, the server's training service trains the run and a fragment that reruns
itself redraws frozen copies — so a widget interaction reruns the script
around the run but never restarts or kills it.  Every widget is drawn
from its row of the settings table (``minidl.hparams``); settings ↔ URL and
pacing live in ``ui.playground``, charts in ``minidl.viz``.

While the run is idle, **Replay** scrubs the epochs it kept (``Run.snapshots``): the live
view then draws the run as it was at the chosen epoch (``Run.at``), never changing it.

Why this module is long: besides drawing the live view (one fragment whose parts
redraw at their own pace) and its replay, the page owns your own points' editor, the
export and import of a run, and the commands to the session's trainer; they share its
Session State.
"""

from __future__ import annotations

import math
import random
import time

import pandas as pd
import pyarrow as pa
import streamlit as st
import torch

import streamlit_app
from minidl import Config, Run, data, hparams
from minidl.engine import export
from minidl.engine.member import diverged
from minidl.viz import boundary, network, replay
from minidl.viz import health as health_charts
from minidl.viz import live as charts
from minidl.viz.tables import ordinal
from ui import background, frames, own_points, playground, training
from ui.background import Trainer
from ui.playground import SETTINGS
from ui.training import Slot

streamlit_app.enter()

# Session State keys (page-prefixed); widget keys are "pg_<setting name>"
TRAINER, NOTICE, POINTS = "pg_trainer", "pg_notice", "pg_points"
UNIT = "pg_unit"  # the diagram's unit pointed at or clicked, shown large in the boundary's place
WEIGHT_SHOWN = "pg_weight_shown"  # (key, value) of the clicked link's weight box, last drawn
# an input feature clicked on the diagram, to switch on or off; the diagram's key's counter
TOGGLE, DIAGRAM_ROUND = "pg_toggle", "pg_diagram_round"
REPLAY, REPLAY_EPOCH = "pg_replay", "pg_replay_epoch"  # the Replay toggle, its epoch
SETTINGS_KEY, URL_WARNINGS, FIRST_SETTINGS = "pg_settings", "pg_url_warnings", "pg_first_settings"
# a drawn data set's training share: a slider over n_train and n_test, not a setting
SHARE = "pg_share"
# your own points (X, y), a problem with them or with a file, and counters that give the
# editor chart and the uploaders fresh keys (which clears them)
OWN, FILE_PROBLEM, ROUND = "pg_own", "pg_file_problem", "pg_round"

# A process of the session's (ui.background) trains; the page only redraws, in one live
# fragment (ui.training: the diagram, curves and health panel once a second, the boundary
# and the metrics ~5 times a second in place).
GRID = background.GRID  # boundary image resolution (GRID × GRID cells), as the service scores it
CHART_SIZE = 300       # the boundary's square: with its axes it fits a 420 px phone screen
PANEL_WIDTH = 380      # the diagram and the health panel, in pixels: fits a 420 px screen
# Streamlit stacks columns below 640 px, in their order.  On a phone: the buttons, then the
# metrics and the whole boundary (in the first screen), the diagram under them, and the
# introduction and the bar after the live view (its six rows of controls would push the
# boundary below the fold, and the introduction its lowest 100 px)
PHONE_ORDER = """<style>@media (max-width: 640px) {
  .st-key-pg_live > [data-testid="stLayoutWrapper"] > [data-testid="stHorizontalBlock"] {
    flex-direction: column-reverse; }
  [data-testid="stMainBlockContainer"] > [data-testid="stVerticalBlock"] > :has(> .st-key-pg_intro),
  [data-testid="stMainBlockContainer"] > [data-testid="stVerticalBlock"] > :has(> .st-key-pg_bar) {
    order: 1; }
  [data-testid="stMainBlockContainer"] > [data-testid="stVerticalBlock"] > :has(.st-key-pg_live) ~ * {
    order: 2; }
}
/* a laptop's first screen (1280 x 900) holds the bar, the diagram and the whole boundary:
   half of Streamlit's top margin, and the metrics' numbers a size smaller */
[data-testid="stMainBlockContainer"] { padding-top: 2.5rem; }
.st-key-pg_live [data-testid="stMetricValue"] { font-size: 1.75rem; }
</style>"""


@st.cache_data(max_entries=16, show_spinner=False)
def load_data(name: str, n_train: int, n_test: int, seed: int, noise: float,
              jitter: float = 0.0
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One seeded training/test draw, cached on its plain-valued settings."""
    return data.train_test(name, n_train, n_test, seed, noise, jitter)


def new_run(config: Config) -> Run:
    if config.dataset == "custom":  # your own points, split by the config's share and seed
        points = st.session_state[OWN]
        run = Run(config, points=points)
        run.source = points  # which version of your points it trains on
        return run
    return Run(config, data_sets=load_data(config.dataset, config.n_train, config.n_test,
                                           config.data_seed, config.noise, config.jitter))


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


def setting_ui(name: str, width: int | str = "stretch") -> None:
    """One widget for one setting, drawn from its row of the settings table: a select box
    for a choice, a slider over its stops or (for a linear setting with an app range of at
    most 100 steps) its range, else a number input; ``width`` in pixels or "stretch"."""
    s = SETTINGS[name]
    common = {"key": key(name), "help": s.help or None, "width": width}
    if s.kind == "choice":
        labels = dict(zip(s.choices, s.choice_labels))
        choices = (hparams.datasets_of(st.session_state[key("problem")]) if name == "dataset"
                   else s.choices)  # the problem type's data sets
        st.selectbox(s.label, choices, format_func=lambda v: labels.get(v, v), **common)
    elif s.kind == "set":
        labels = dict(zip(s.choices, s.choice_labels))
        st.multiselect(s.label, s.choices, format_func=lambda v: labels.get(v, v), **common)
    elif s.kind == "widths":
        widths_ui(s, width)
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


def fit_problem_widgets() -> None:
    """Make the data set and label noise fit the problem type before any widget is drawn:
    choosing regression picks its first data set and drops label noise, as TensorFlow
    Playground's problem type switches its data sets (``playground.fit_problem``)."""
    state, names = st.session_state, ("problem", "dataset", "noise")
    fitted, _ = hparams.fit_problem({name: state[key(name)] for name in names})
    for name in names:
        state[key(name)] = fitted[name]


def new_seed(name: str) -> int:
    """Set the seed ``name`` to another value picked at random (its widget and the URL show
    it); return it."""
    state, high = st.session_state, int(SETTINGS[name].app_high)
    seed = state[key(name)]
    while seed == state[key(name)]:
        seed = random.randrange(high + 1)
    state[key(name)] = seed
    return seed


def new_draw() -> None:
    """Another random draw of the data."""
    new_seed("data_seed")


def widths_ui(s: hparams.Setting, width: int | str = "stretch") -> None:
    """A layer count, then one width per layer: number inputs ``width`` wide, with their − and
    + buttons, as compact as TensorFlow Playground's; their tuple is the setting's value."""
    state = st.session_state
    hidden = tuple(state[key(s.name)])
    state.setdefault(key("hidden_layers"), len(hidden))
    layers = st.number_input("hidden layers", 1, s.ui_length, step=1, width=width,
                             key=key("hidden_layers"), help=s.help or None)
    hidden = hparams.resize_widths(hidden, layers)
    widths = []
    for i in range(layers):
        state.setdefault(key(f"hidden_{i}"), hidden[i])
        widths.append(st.number_input(f"units {i + 1}", 1, int(s.app_high), step=1,
                                      width=width, key=key(f"hidden_{i}"),
                                      help=f"units of hidden layer {i + 1}"))
    state[key(s.name)] = tuple(widths)


def shown(name: str) -> bool:
    """Whether the page offers setting ``name`` now: an optimizer's hyperparameters only for
    that optimizer, Xavier's gain only with Xavier init, point counts and jitter not for your
    own points (they come in their number, split by a share), label noise not for a
    regression (no classes to flip)."""
    state, s = st.session_state, SETTINGS[name]
    if s.part == "optimizer" and name != "optimizer" and state[key("optimizer")] not in \
            s.optimizers:
        return False
    if name == "gain" and state[key("init")] != "xavier":
        return False
    if name == "noise" and state[key("problem")] == "regression":
        return False
    own = state[key("dataset")] == "custom"
    return not ((name == "split" and not own)
                or (name in ("n_train", "n_test", "jitter") and own))


# pixels of the bar's widgets, by kind: at 1280 px two rows beside the sidebar, at 420 px
# two a row; Streamlit hides a number input's − and + when it is 120 px wide or less
BAR_WIDTHS = {"set": 200, "widths": 128}
BAR_WIDTH = 140
# the features' box: four chosen features fill two rows of 200 px; more widen it so that all
# seven still take two rows (widening it always would push the bar onto a third row)
WIDE_SET, WIDE_SET_FROM = 300, 5
# the chosen input features wrap onto more lines of their box (Streamlit's scroll sideways)
BAR_STYLE = """<style>
  .st-key-pg_features [data-testid="stMultiSelectTagsContainer"] {
    flex: 1 1 0; min-width: 0; flex-wrap: wrap; overflow: visible; height: auto; }
  .st-key-pg_features [data-testid="stMultiSelectTagsContainer"] > [role="group"] {
    flex-wrap: wrap; }
  .st-key-pg_features :has(> [data-testid="stMultiSelectTagsContainer"]) {
    height: auto; max-height: none; }
</style>"""


def bar_ui() -> list[str]:
    """The compact bar above the network (``playground.BAR``), wrapping on narrow screens, and
    the report's network one click away; returns the names of the settings drawn."""
    drawn = []
    st.html(BAR_STYLE)
    with st.container(horizontal=True, wrap=True, gap="small", key="pg_bar",
                      vertical_alignment="bottom"):
        for name in playground.BAR:
            if shown(name):
                setting_ui(name, bar_width(name))
                drawn.append(name)
        preset = playground.other_network(st.session_state[key("hidden")])
        report = preset == playground.REPORT_HIDDEN
        st.button(("Report's " if report else "Small ") + "-".join(map(str, preset)),
                  key="pg_preset", icon=":material/hub:",
                  on_click=set_hidden, args=(preset,),
                  help="the report's hidden layers, 25-25-25" if report else
                  "back to the Playground's small default")
    return drawn


def bar_width(name: str) -> int:
    """Pixels of setting ``name``'s widget in the bar."""
    kind = SETTINGS[name].kind
    if kind == "set" and len(st.session_state.get(key(name), ())) >= WIDE_SET_FROM:
        return WIDE_SET
    return BAR_WIDTHS.get(kind, BAR_WIDTH)


def share_ui() -> None:
    """A drawn data set's training share, on the ``split`` setting's slider (your own points
    have that one): it shows n_train / (n_train + n_test) and moving it sets the two counts'
    widgets, their total kept (``playground.counts``), as if they had been changed."""
    state, s = st.session_state, SETTINGS["split"]
    state[SHARE] = playground.share(state[key("n_train")], state[key("n_test")])
    st.slider(s.label, min_value=float(s.app_low), max_value=float(s.app_high),
              step=float(s.ui_step), key=SHARE, help=s.help, on_change=set_share)


def set_share() -> None:
    state = st.session_state
    total = state[key("n_train")] + state[key("n_test")]
    state[key("n_train")], state[key("n_test")] = playground.counts(state[SHARE], total)


def set_hidden(widths: tuple[int, ...]) -> None:
    """Set the hidden layers' widgets to ``widths`` (before they are drawn)."""
    state = st.session_state
    state[key("hidden")] = tuple(widths)
    state[key("hidden_layers")] = len(widths)
    for i, width in enumerate(widths):
        state[key(f"hidden_{i}")] = width


def settings_ui() -> list[str]:
    """Draw the sidebar controls (all but the bar's), a section per part of the settings
    table, those the page offers now (``shown``); return the names of the settings drawn."""
    drawn = []
    sections = {"data": "Data", "network": "Network", "init": "Initialisation",
                "optimizer": "Optimizer", "training": "Training"}
    with st.sidebar:
        for part, title in sections.items():
            names = [n for n in hparams.names("app", part) if not SETTINGS[n].convention
                     and n not in playground.BAR and shown(n)]
            if names:
                st.subheader(title)
            for name in names:
                setting_ui(name)
                drawn.append(name)
                if name == "n_test":
                    share_ui()
                if name == "data_seed":
                    st.button("New draw", key="pg_new_draw", icon=":material/casino:",
                              on_click=new_draw, help="another random draw of the points")
        conventions = [n for n in hparams.names("app") if SETTINGS[n].convention]
        with st.expander("Conventions", icon=":material/rule:"):
            st.caption("Choices the seed report leaves unstated; the defaults are our reading.")
            for name in conventions:
                setting_ui(name)
        drawn += conventions
    return drawn


# ---------------------------------------------------------------- run state
#
# The session's run lives in a ``Trainer`` (ui.background): while it trains, a process of
# its own trains it and the page draws frozen copies of the trainer's mirror.  Everything
# that changes the run goes through the trainer.

def trainer() -> Trainer:
    return st.session_state[TRAINER]


def notify(text: str | None) -> None:
    """Say ``text`` once, in a toast (None: nothing).  Whatever the visitor did next worked,
    so a message about an earlier file that could not be used goes."""
    st.session_state[NOTICE] = text
    st.session_state[FILE_PROBLEM] = None


def sync_run(config: Config) -> Run:
    """Bring the session's run in line with ``config``: reset it or update it live."""
    state = st.session_state
    if TRAINER not in state:
        state[TRAINER] = training.new_trainer(new_run(config))
        return trainer().run
    t = trainer()
    with t.lock:
        reasons, live = playground.classify_change(t.run.config, config)
        if (not reasons and config.dataset == "custom"
                and getattr(t.run, "source", None) is not state[OWN]):
            reasons = ["your points changed"]
    if live and not reasons:
        t.set_hyperparameters(**live)  # here and in the training process
        state[FILE_PROBLEM] = None  # as ``notify`` does
    if reasons:
        chose_own = config.dataset == "custom" and t.run.config.dataset != "custom"
        t.replace(new_run(config), keep_training=True)  # trains on if it was training
        notify("A new network, with new weights, now trains on your own points: add some by "
               "dragging on the chart below, or upload a CSV." if chose_own else
               "New network (weights re-initialised) because " + "; ".join(reasons) + ".")
    elif "optimizer" in live:
        notify(f"Optimizer switched to {hparams.label(live['optimizer'])}: weights kept, "
               "its state (momentum, moment estimates) starts afresh.")
    return t.run


def leave_replay() -> None:
    """Back to the run as it is (a command to the trainer always acts on that run)."""
    for name in (REPLAY, REPLAY_EPOCH):
        st.session_state.pop(name, None)


def toggle_training() -> None:
    notify(None)
    leave_replay()
    trainer().toggle()


def step_once() -> None:
    notify(None)
    leave_replay()
    trainer().step()


def reset_run() -> None:
    """New weights, as TensorFlow Playground's reset draws them: from a new init seed (the
    minibatch order with them), the other settings kept."""
    t = trainer()
    leave_replay()
    seed = new_seed("init_seed")
    t.replace(new_run(t.run.config.replace(init_seed=seed)))
    notify(f"New weights, drawn with init seed {seed}; the other settings are kept.")


# ---------------------------------------------------------------- live view

def points_table(run: Run, show_test: bool) -> pa.Table:
    """Training (and, if ``show_test``, test) points of ``run``, built once per run and
    choice (they do not move).

    Kept as an Arrow table: Streamlit sends chart data as Arrow, and converting
    2000 rows from pandas on every frame would cost a few ms each time.
    """
    cached = st.session_state.get(POINTS)
    if cached is None or cached[0] is not run.X_train or cached[1] != show_test:
        sets = [charts.points_frame(run.X_train, run.y_train, "train")]
        if show_test:
            sets.append(charts.points_frame(run.X_test, run.y_test, "test"))
        table = pd.concat(sets, ignore_index=True)
        st.session_state[POINTS] = cached = (run.X_train, show_test,
                                             pa.Table.from_pandas(table, preserve_index=False))
    return cached[2]


def live_slots() -> dict[str, Slot | list[Slot]]:
    """The live view's places: the run's status, the finished run's message, each metric,
    the clicked unit's caption and the boundary chart."""
    return {"status": Slot(), "message": Slot(), "metrics": [Slot() for _ in range(6)],
            "caption": Slot(), "chart": Slot(changes=True)}


def metrics_ui(frame: frames.Frame, slots: list[Slot]) -> None:
    """Epoch, losses and accuracies (a regression: losses, the test error's root and what
    always guessing the mean would score), parameters: two rows of three."""
    m = frame.metrics
    values = [("Epoch", f"{frame.epoch} / {frame.budget}")]
    for label, name in (("Train loss", "train_loss"), ("Test loss", "test_loss")):
        # an exploded loss (NaN, inf, 1e24) reads as what it means, not as 28 digits
        values.append((label, "diverged" if diverged(m[name]) else f"{m[name]:.4f}"))
    if math.isnan(frame.baseline):
        values += [("Train accuracy", f"{100 * m['train_acc']:.1f}%"),
                   ("Test accuracy", f"{100 * m['test_acc']:.1f}%")]
    else:
        values += [("Test RMSE", "diverged" if diverged(m["test_loss"])
                    else f"{math.sqrt(m['test_loss']):.3f}"),
                   ("Mean guess's test loss", f"{frame.baseline:.4f}")]
    values.append(("Parameters", f"{frame.parameters:,}"))
    if slots[0].place is not None:  # redrawn in place
        for slot, (label, value) in zip(slots, values):
            slot.show("metric", label, value)
        return
    # two rows of three that never wrap, on a phone too, so that a longer value ("100 /
    # 200") never rewraps them and moves the boundary below (one wrapping row did)
    rows = [st.container(horizontal=True, wrap=False, gap="small") for _ in range(2)]
    for i, (slot, (label, value)) in enumerate(zip(slots, values)):
        with rows[i // 3]:
            slot.show("metric", label, value)


def live_view(ticking: bool) -> None:
    """The live view: the network diagram beside the boundary and the metrics, with the
    loss and accuracy curves and the layers' health below, drawn from frozen copies of
    the run while training goes on.

    ``ticking``: the browser reruns it while the run trains (``ui.training``): each such
    run draws the diagram, curves and health once, then the boundary and the metrics
    ~5 times a second in place.
    """
    state = st.session_state
    t = trainer()
    t.touch()
    began = time.monotonic()
    live, scores, units = t.frame()
    run = replayed(t, live)
    # diagram | boundary; on a phone (stacked) the boundary comes first (``PHONE_ORDER``)
    inside, output = st.container(key="pg_live").columns(2, gap="medium")
    with inside:
        state[UNIT] = diagram_ui(run, units if run is live else None, editable=run is live)
    slots = live_slots()
    with output:
        draw(t, run, scores if run is live else None, slots)
        replay_ui(t, live)  # below everything that shows the run: it never moves the boundary
    history_ui(run)
    training.redraw(t, ticking, began, lambda: draw(t, *t.frame()[:2], slots))


def replayed(t: Trainer, run: Run) -> Run:
    """What the live view draws: ``run``, or while Replay is on (the run idle), the run as it
    was at the chosen epoch (the latest kept until one is chosen)."""
    state, epochs = st.session_state, run.snapshots.epochs
    if not state.get(REPLAY) or t.state != "idle" or len(epochs) < 2:
        return run
    epoch = state.get(REPLAY_EPOCH)
    return run.at(epoch if epoch in run.snapshots else epochs[-1])


def replay_ui(t: Trainer, run: Run) -> None:
    """The Replay toggle and, while it is on, a slider over the epochs ``run`` kept; shown
    while the run is idle and has kept two epochs or more."""
    state, snapshots = st.session_state, run.snapshots
    epochs = snapshots.epochs
    if t.state != "idle" or len(epochs) < 2:
        return
    if state.get(REPLAY_EPOCH) not in epochs:  # a choice among another run's epochs
        state.pop(REPLAY_EPOCH, None)
    if not st.toggle("Replay", key=REPLAY, help="scrub through the epochs trained: the "
                     "boundary, the diagram, the metrics and the curves as they were"):
        return
    st.select_slider("Epoch shown", epochs, value=epochs[-1], key=REPLAY_EPOCH,
                     help="the weights kept at the end of each epoch")
    kept = ("every epoch" if snapshots.every == 1 else
            f"every {ordinal(snapshots.every)} epoch (a run keeps at most "
            f"{snapshots.max_bytes >> 20} MiB of past weights), the first and the last")
    imported = (f" Epochs before {epochs[0]} came from a model file, which keeps no past "
                "weights." if epochs[0] > 1 else "")
    st.caption(f"The run as it was at the end of the chosen epoch; kept: {kept}.{imported} "
               "Turn Replay off, or press Train, to go back to the run as it is.")


def history_ui(run: Run) -> None:
    """Loss and accuracy curves beside the layers' health."""
    if not run.history:
        st.caption("Loss and accuracy curves and the layers' health appear here after the "
                   "first epoch.")
        return
    curves, health = st.columns(2, gap="medium")
    with curves:
        history = charts.history_data(run.history_frame())
        for metric in ("loss",) if run.config.regression else ("loss", "acc"):
            st.vega_lite_chart(charts.with_data(charts.spec("curve", metric), history),
                               width="stretch", alt=f"{metric} per epoch")
    with health:
        st.markdown("**Layer health** per epoch")
        st.vega_lite_chart(charts.with_data(health_charts.spec(run.config.activation,
                                                               PANEL_WIDTH),
                                            health_charts.data(run.health)),
                           width="content", alt="per-layer statistics per epoch")


def draw(t: Trainer, run: Run, scores: torch.Tensor | None, slots: dict) -> None:
    """Fill the ``live_slots`` from ``run``: the metrics, the boundary (or the clicked unit's
    map) with the points, and under them the map's caption, the status and the finished
    run's message — below, so that their coming and going never moves the boundary."""
    state = st.session_state
    config = run.config
    smooth = state[key("view")] == "smooth"
    show_test = state[key("show_test")]
    with torch.inference_mode():  # no autograd bookkeeping in the drawing's forward passes
        frame = frames.snapshot(run, GRID, discrete=not smooth, test=show_test,
                                    scores=scores)
    points = points_table(run, show_test)
    metrics_ui(frame, slots["metrics"])

    fresh = frame.status == "fresh"
    disk = (data.DISK_CENTER, data.DISK_RADIUS) if config.dataset == "disk" else None
    unit, caption = state.get(UNIT), None
    if unit:  # the clicked unit's map in the boundary's place, with the points
        try:
            picture = network.unit_picture(run.model, unit, resolution=GRID,
                                           **network.run_options(run))
            title = network.unit_title(unit, network.model_sizes(run.model),
                                       network.input_names(run))
        except ValueError:  # a unit of a network since replaced
            unit = None
        else:
            caption = (f"{title.capitalize()}: its activation over the square (move off the "
                       "unit, or double-click the diagram after a click, to go back to the "
                       "output).")
            tables = charts.boundary_data(
                boundary.data_url(boundary.png_bytes(picture)), points,
                frame.mistakes.slice(0, 0), under=charts.underlay(picture))
    if not unit:
        # before the first epoch: no mistakes marked, and the noise of an untrained
        # network's boundary faded under an invitation
        tables = charts.boundary_data(frame.image, points, frame.mistakes.slice(0, 0) if fresh
                                      else frame.mistakes,
                                      "untrained: press Train" if fresh else "",
                                      under=frame.underlay)
    slots["chart"].show("vega_lite_chart",
                        charts.with_data(charts.spec("boundary", disk, CHART_SIZE, smooth,
                                                     config.regression), tables),
                        width="content", alt=playground.BOUNDARY_ALT)
    if caption:
        slots["caption"].show("caption", caption)
    else:
        slots["caption"].show("empty")
    training.status_ui(t, slots["status"])
    if frame.status == "diverged":
        slots["message"].show("error", f"Training diverged at epoch {frame.epoch}: the loss "
                              "became NaN or infinite. Lower the learning rate and press "
                              "**Reset**.", icon=":material/error:")
    elif frame.status == "done":
        slots["message"].show("success", frames.done_text(config, frame.metrics),
                              icon=":material/flag:")
    else:
        slots["message"].show("empty")


def diagram_ui(run: Run, units: list[torch.Tensor] | None = None, editable: bool = True
               ) -> str | None:
    """The network diagram (each unit's map, links by weight; every candidate input, those
    not read dimmed); returns the unit pointed at or clicked.  A click on an input switches
    it on or off (``TOGGLE``), in a run of the whole page: the bar, the run and the link
    follow; a click on a link offers its weight to set (``weight_ui``) if ``editable``.
    ``units``: the layers' values for the unit maps, where the training service sent them."""
    state = st.session_state
    tables = network.network_data(run.model, PANEL_WIDTH, input_names=network.input_names(run),
                                  layers=units, **network.run_options(run))
    chart = charts.with_data(network.spec(network.diagram_sizes(run), PANEL_WIDTH), tables)
    # a fresh key after each switch: a chart keeps its selection, and clicking the same input
    # again would not select anything new
    # a selection reruns the live fragment only (Streamlit sends the pointer's after 150 ms
    # without a move): pointing at units costs no run of the whole page
    event = st.vega_lite_chart(chart, on_select="rerun",
                               selection_mode=[network.SELECT, network.HOVER, network.LINK],
                               key=f"pg_diagram_{state.get(DIAGRAM_ROUND, 0)}",
                               width="content",
                               alt="the network: inputs, hidden units and outputs")
    clicked = network.selected_unit(event)
    feature = network.clicked_feature(clicked)
    if feature is not None:
        state[TOGGLE] = feature
        state[DIAGRAM_ROUND] = state.get(DIAGRAM_ROUND, 0) + 1
        st.rerun()
    st.caption("Point at a unit to see its map large (tap it on a touch screen); click an "
               "input to switch it on or off, a link to set its weight.")
    link = network.selected_link(event)
    if editable and link is not None:
        weight_ui(tables[network.LINKS], link)
    else:
        state.pop(WEIGHT_SHOWN, None)  # the box, once back, starts from the weight as it is
    return network.selected_unit(event, network.HOVER) or clicked


WEIGHT_LIMIT = 10.0  # the largest |weight| the weight's input takes (|w| ≥ 1 draws thickest)


def weight_ui(links: pd.DataFrame, link: tuple[int, int, int]) -> None:
    """A number input for the weight of the clicked ``link`` (``network.selected_link``), of
    the run as it is: a new value goes to the run at once, training or not, and the run
    trains on from it (``Trainer.set_weight``)."""
    name = ":".join(map(str, link))
    drawn = links[links["link"] == name]
    if drawn.empty:  # another network's link, or no longer among the strongest drawn
        return
    row, state = drawn.iloc[0], st.session_state
    # the weight as it is, unless you have set another since it was shown (Streamlit's
    # input keeps what you are typing, unsent, over a value the server sends)
    widget = f"pg_weight_{id(trainer().run)}_{name}"
    if state.get(WEIGHT_SHOWN) in (None, (widget, state.get(widget))):
        state[widget] = min(max(float(row["weight"]), -WEIGHT_LIMIT), WEIGHT_LIMIT)
    state[WEIGHT_SHOWN] = (widget, state[widget])
    st.number_input(f"weight {row['source']} → {row['target']} ({row['between']})",
                    -WEIGHT_LIMIT, WEIGHT_LIMIT, step=0.1, format="%.4f", key=widget,
                    on_change=set_weight, args=(link, widget), width=PANEL_WIDTH,
                    help="a new value applies at once, while the network trains or not")
    st.caption(f"The weight is now {row['weight']:.4g}; double-click the diagram to close this.")


def set_weight(link: tuple[int, int, int], widget: str) -> None:
    try:
        trainer().set_weight(*link, st.session_state[widget])
    except ValueError as error:  # a link of a network since replaced
        notify(str(error))


def toggle_feature() -> None:
    """Switch the input feature a click on the diagram chose (``TOGGLE``) on or off in the
    bar's widget, before it is drawn; the last one stays on, and says so."""
    state = st.session_state
    feature = state.pop(TOGGLE, None)
    if feature is None:
        return
    chosen = tuple(state[key("features")])
    features = playground.toggle_feature(chosen, feature)
    if features == chosen:
        notify(f"{hparams.label(feature)} is the only input left: switch another on first.")
    state[key("features")] = list(features)


def keep_an_input() -> None:
    """An emptied features box gets back the inputs it had, as the diagram keeps the last
    one: a network needs an input, and falling back to x₁, x₂ rebuilt the network and lost
    its training (once on CI with no click on the box, cause not found)."""
    state = st.session_state
    if not state[key("features")]:
        state[key("features")] = list(state[SETTINGS_KEY]["features"])
        notify("A network needs an input: the features are as they were. Switch another on "
               "before the last one off.")



# ---------------------------------------------------------------- your own points

def own_points_ui() -> bool:
    """The editor of your own points: drag on the chart to add points of a class, upload
    a CSV, download them, clear them.  Returns whether they can be trained on."""
    state = st.session_state
    if OWN not in state:  # first time: a copy of the points you were looking at
        state[OWN] = (own_points.starter_points(trainer().run) if TRAINER in state
                      else data.disk(200, seed=0))
    X, y = state[OWN]
    counts = [int((y == c).sum()) for c in (0, 1)]
    round_ = state.setdefault(ROUND, 0)
    with st.expander(f"Your points: {len(X):,} ({counts[0]} of class 0, {counts[1]} of class 1)",
                     expanded=True, icon=":material/edit:"):
        chart, tools = st.columns([1.2, 1], gap="medium")
        with tools:
            st.radio("Add points of", (0, 1), key="pg_add_class", horizontal=True,
                     format_func=lambda c: f"class {c}")
            st.caption("Drag a rectangle on the chart: points of that class fill it "
                       f"({own_points.POINTS_PER_AREA} per unit of area, at most "
                       f"{own_points.MOST_PER_DRAG} a drag).")
            st.file_uploader("Upload a CSV of points (x1,x2,label)", type=["csv", "txt"],
                             key=f"pg_upload_points_{round_}", on_change=upload_points,
                             max_upload_size=max(1, data.MAX_CSV_BYTES >> 20),
                             args=(f"pg_upload_points_{round_}",),
                             help=f"one point a line: x1,x2,label with x1, x2 in [0, 1] and "
                             f"label 0 or 1; at most {hparams.MAX_OWN_POINTS:,} points")
            row = st.columns(2)
            row[0].download_button("Download CSV", data.points_csv(X, y), "points.csv",
                                   "text/csv", icon=":material/download:", width="stretch")
            row[1].button("Clear", key="pg_clear_points", icon=":material/delete:",
                          on_click=clear_points, width="stretch")
        with chart:
            frame = charts.points_frame(X, y, "train")
            st.vega_lite_chart(charts.with_data(charts.spec("editor", CHART_SIZE),
                                                {charts.POINTS: frame}),
                               on_select=add_dragged_points, selection_mode=charts.BRUSH,
                               key=f"pg_editor_{round_}", width="content",
                               alt="your points; drag a rectangle to add some")
        file_problem_ui("file")
    try:
        data.check_points(X, y)
    except ValueError as error:
        st.info("Add points to train on them: " + str(error) + ".", icon=":material/edit:")
        return False
    return True


def file_problem_ui(kind: str) -> None:
    """A file of ``kind`` ("file": your points, "model file") that could not be used, beside
    its uploader: one fixed sentence, the reason as plain text."""
    problem = st.session_state.get(FILE_PROBLEM)
    if problem and problem[0] == kind:
        st.error(f"That {problem[0]} could not be used; nothing was changed:",
                 icon=":material/error:")
        st.code(problem[1], language=None, wrap_lines=True)


def next_round() -> None:
    """Fresh keys for the editor chart and the uploaders: clears a drag or an upload."""
    st.session_state[ROUND] = st.session_state.get(ROUND, 0) + 1


def add_dragged_points() -> None:
    state = st.session_state
    box = own_points.drag_box(state.get(f"pg_editor_{state.get(ROUND, 0)}"), charts.BRUSH)
    if box is not None:
        generator = torch.Generator().manual_seed(random.randrange(2**31))
        state[OWN] = own_points.add_points(state[OWN], box, state["pg_add_class"], generator)
    next_round()


def clear_points() -> None:
    X, y = st.session_state[OWN]
    st.session_state[OWN] = (X[:0], y[:0])
    st.session_state[FILE_PROBLEM] = None


def upload_points(widget: str) -> None:
    state = st.session_state
    upload = state.get(widget)
    if upload is None:
        return
    try:
        state[OWN] = data.read_points_csv(upload.getvalue())
        state[FILE_PROBLEM] = None
    except ValueError as error:
        state[FILE_PROBLEM] = ("file", str(error))
    next_round()


# ---------------------------------------------------------------- export / import

def export_ui(run: Run) -> None:
    """Download the run as JSON or as a script that retrains it; load a JSON file back."""
    with st.expander("Export or import this network", icon=":material/download:"):
        st.caption("JSON: the settings, input features, weights and history (no code runs "
                   "when a file is read), but not the weights of past epochs, so an imported "
                   "run replays from its import on. The script rebuilds and retrains the same "
                   "network with minidl: run it where minidl is installed (pip install . in a "
                   "copy of its source); elsewhere it says just that. The GIF replays the "
                   f"boundary over the epochs kept (at most {replay.FRAMES} frames).")
        live = trainer()  # the files are made at the click, from the run as it is then
        discrete = st.session_state[key("view")] == "discrete"
        row = st.columns(3)
        row[0].download_button("Model as JSON", lambda: export.to_json(live.view()),
                               "minidl-model.json", "application/json",
                               icon=":material/data_object:", width="stretch", on_click="ignore")
        row[1].download_button("Python script", lambda: export.to_script(live.view()),
                               "minidl_model.py", "text/x-python", icon=":material/code:",
                               width="stretch", on_click="ignore")
        row[2].download_button("Replay as GIF",
                               lambda: replay.gif(live.view(), discrete=discrete),
                               "minidl-replay.gif", "image/gif", icon=":material/movie:",
                               width="stretch", on_click="ignore",
                               disabled=live.state != "idle" or not run.snapshots,
                               help=f"the boundary and the training points at up to "
                               f"{replay.FRAMES} of the epochs kept, {replay.SIZE} px square "
                               "(pause training to make it)")
        round_ = st.session_state.get(ROUND, 0)
        st.file_uploader("Import a model JSON to inspect it or train it on", type=["json"],
                         key=f"pg_import_{round_}", on_change=import_model,
                         max_upload_size=max(1, export.MAX_BYTES >> 20),
                         args=(f"pg_import_{round_}",))
        file_problem_ui("model file")


def import_model(widget: str) -> None:
    """Replace the session's run by the uploaded one, and the widgets by its settings."""
    state = st.session_state
    upload = state.get(widget)
    if upload is None:
        return
    next_round()
    try:
        run = export.from_json(upload.getvalue(), app_ranges=True)
    except export.ModelFileError as error:
        state[FILE_PROBLEM] = ("model file", str(error))
        return
    # the settings as a link would bring them (a value between a slider's stops snaps to
    # one, said below), but the data set: a link never brings your own points, a file does
    settings, warnings = playground.parse_query(playground.to_query(
        {**playground.from_config(run.config.to_dict()), "dataset": "disk",
         "view": state[key("view")], "show_test": state[key("show_test")]}))
    settings["dataset"] = run.config.dataset
    config = playground.to_config(settings)
    _, live = playground.classify_change(run.config, config)
    if live:  # a value between the sliders' stops: the nearest stop, said below
        run.set_hyperparameters(**live)
    if run.config.dataset == "custom":
        state[OWN] = run.source = export.run_points(run)
    state[FILE_PROBLEM] = None
    leave_replay()
    trainer().replace(run)
    state[SETTINGS_KEY] = settings
    for name, value in settings.items():
        state[key(name)] = list(value) if SETTINGS[name].kind == "set" else value
    set_hidden(settings["hidden"])
    notify("Imported the model file: its settings, weights and history ("
           f"{run.epoch} epochs); the optimizer's state starts afresh."
           + (" " + " ".join(warnings) if warnings else ""))


# ---------------------------------------------------------------- page

def main() -> None:
    state = st.session_state
    settings = initial_settings()
    toggle_feature()
    keep_an_input()
    fit_problem_widgets()
    drawn = settings_ui()

    st.title("Playground")
    intro = st.container(key="pg_intro")  # on a phone, after the live view (PHONE_ORDER)
    intro.caption("A network of PyTorch tensor operations only learns to tell two classes of "
                  "points apart. Press **Train** and watch its decision boundary form."
                  if state[key("problem")] == "classification" else
                  "A network written with PyTorch tensor operations only learns a number for "
                  "every point of the square (regression). Press **Train** and watch its output "
                  "map take the shape of the targets.")
    drawn += bar_ui()

    settings = {**settings, **playground.from_widgets({name: state[key(name)] for name in drawn})}
    settings, _ = hparams.fit_problem(settings)  # a hidden widget's value (noise) too
    if settings["dataset"] == "custom" and not own_points_ui():
        return  # too few points to train on: the editor says so
    run = sync_run(playground.to_config(settings))
    # the view's settings are drawn below; reading them here keeps every setting in one dict
    settings.update({name: state[key(name)] for name in hparams.names("app", "view")})
    if settings != state[FIRST_SETTINGS]:
        state[URL_WARNINGS] = []  # the link's values are no longer what is shown
    state[SETTINGS_KEY] = settings
    query = playground.to_query(settings)
    if st.query_params.to_dict() != query:
        st.query_params.from_dict(query)

    training.link_warnings_ui(state[URL_WARNINGS])  # one message per page load
    training.notice_ui(NOTICE)

    t = trainer()
    finished = frames.status(run) in ("done", "diverged")
    buttons = training.buttons(t, finished, "pg", toggle_training, step_once, reset_run,
                               "new weights from a new init seed, the other settings kept", 2)
    with buttons[0]:
        st.radio(SETTINGS["view"].label, SETTINGS["view"].choices, key=key("view"),
                 horizontal=True, help=SETTINGS["view"].help)
    buttons[1].toggle(SETTINGS["show_test"].label, key=key("show_test"),
                      help=SETTINGS["show_test"].help)

    st.html(PHONE_ORDER)
    training.live_fragment(live_view, t)
    export_ui(run)
    if run.config.regression:
        st.caption("Colour: the network's output, its predicted value (blue: −1, orange: +1); "
                   "each point is coloured by its target value on the same scale; ● training "
                   "point, ■ test point (shown with the toggle above).")
        return
    st.caption("Boundary colour: the network's class-1 score, output₁ − output₀ (blue: class 0, "
               "orange: class 1)" + (", dashed: the true disk" if run.config.dataset == "disk"
                                     else "") + "; ✕: misclassified point; ● training point, "
               "■ test point (shown with the toggle above).")


main()
