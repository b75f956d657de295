"""Compare: race up to nine settings live, side by side, from one data draw and one
initialisation — by default the report's nine activation × optimizer pairs.

The page reads the race's settings from the sidebar (seeded from the URL on a session's
first run), builds its contestants (``ui.compare``, ``minidl.experiments.race``) and keeps one
``ui.background.Trainer`` over a ``minidl.experiments.race.Race`` in Session State: the server's
training service trains the race while one fragment redraws frozen copies, as on the Playground.  A race
takes one of the server's places to train, like a Playground session.

Why this module is long: the sidebar offers different settings per preset (a saved sweep,
a hand-made list), and the live view's parts redraw at their own pace.
"""

from __future__ import annotations

import time

import streamlit as st

import streamlit_app
from minidl import Config, data, hparams, jobs
from minidl.experiments import contestants as entrants
from minidl.experiments import reproduce, sweeps
from minidl.experiments.race import Race
from minidl.viz import live
from minidl.viz import race as race_charts
from ui import compare, links, playground, training
from ui.background import Trainer
from ui.training import Slot

streamlit_app.enter()

# Session State keys (page-prefixed); widget keys are "cmp_<setting name>"
TRAINER, IDENTITY, NOTICE = "cmp_trainer", "cmp_identity", "cmp_notice"
BASE, SETTINGS, WARNINGS = "cmp_base", "cmp_settings", "cmp_url_warnings"
RESOLUTION, SCALE = 60, 3  # a tile: 60 × 60 cells, drawn 180 px wide
TILE_WIDTH = RESOLUTION * SCALE
# the Playground settings the sidebar offers for a race's base, by preset (the rest come from
# the link, or their defaults)
SHARED_WIDGETS = ("dataset", "n_train", "noise", "data_seed", "init_seed", "epochs")
PRESET_WIDGETS = {"paper": (), "cv": (), "optimizers": ("activation", "lr", "batch_size"),
                  "activations": ("optimizer", "lr", "batch_size"),
                  "lrs": ("activation", "optimizer", "batch_size"),
                  "custom": ("activation", "optimizer", "lr", "batch_size")}


@st.cache_data(max_entries=16, show_spinner=False)
def load_data(name: str, n_train: int, n_test: int, seed: int, noise: float,
              jitter: float = 0.0):
    return data.train_test(name, n_train, n_test, seed, noise, jitter)


def key(name: str) -> str:
    return f"cmp_{name}"


# ---------------------------------------------------------------- settings

def initial_settings() -> tuple[dict, dict]:
    """The base and race settings of this session: from the URL on the first run."""
    state = st.session_state
    if BASE not in state:
        base, settings, warnings = compare.parse_query(st.query_params.to_dict())
        state[BASE], state[SETTINGS], state[WARNINGS] = base, settings, warnings
    for name, value in {**state[BASE], **state[SETTINGS]}.items():
        state.setdefault(key(name), value)
    return state[BASE], state[SETTINGS]


def setting_ui(name: str, **options) -> None:
    """One widget from the setting's row of the settings table."""
    s = hparams.TABLE[name]
    common = {"key": key(name), "help": s.help or None, **options}
    if s.kind == "choice":
        labels = dict(zip(s.choices, s.choice_labels))
        choices = playground.offered(s)
        st.selectbox(s.label, choices, format_func=lambda v: labels.get(v, v), **common)
    elif s.kind == "text":
        st.text_area(s.label, max_chars=int(s.high), **common)
    elif s.stops:
        st.select_slider(s.label, s.stops, format_func=lambda v: f"{v:g}", **common)
    else:
        cast = int if s.kind == "int" else float
        st.number_input(s.label, min_value=cast(s.app_low), max_value=cast(s.app_high),
                        step=cast(s.ui_step or 1), format="%.3f" if s.kind == "float" else None,
                        **common)


def saved_sweeps() -> dict[str, jobs.JobInfo]:
    """The saved sweeps with finished pairs, by name (a name from a link is looked up here,
    never turned into a path)."""
    try:
        return {s.name: s for s in jobs.list_jobs(sweeps.SWEEP) if s.done > 0}
    except (OSError, jobs.Damaged):  # no store: no saved sweeps to race
        return {}


def sweep_ui(available: dict[str, jobs.JobInfo]) -> None:
    state = st.session_state
    if not available:
        st.info("No saved sweep with results yet: run one on the Cross-validation page.",
                icon=":material/grid_on:")
        return
    if state.get(key("sweep")) not in available:
        state[key("sweep")] = next(iter(available))
    st.selectbox(hparams.TABLE["sweep"].label, list(available), key=key("sweep"),
                 help=hparams.TABLE["sweep"].help)


def settings_ui(available: dict[str, jobs.JobInfo]) -> list[str]:
    """The sidebar; returns the names of the settings drawn."""
    state = st.session_state
    with st.sidebar:
        st.subheader("Race")
        setting_ui("preset")
        preset = state[key("preset")]
        drawn = ["preset"]
        if preset == "cv":
            sweep_ui(available)
            drawn.append("sweep")
        if preset == "custom":
            setting_ui("contestants", placeholder="activation=relu lr=0.001\noptimizer=adam")
            drawn.append("contestants")
        setting_ui("target_acc")
        drawn.append("target_acc")
        own = PRESET_WIDGETS[preset]
        if own:
            st.subheader("Shared by every contestant")
            for name in own:
                setting_ui(name)
        st.subheader("Data, seeds and budget")
        for name in SHARED_WIDGETS:
            setting_ui(name)
        drawn += [*own, *SHARED_WIDGETS]
    return drawn


def sweep_configs(settings: dict, available: dict[str, jobs.JobInfo]) -> dict | None:
    if settings["preset"] != "cv" or settings["sweep"] not in available:
        return None
    try:
        return reproduce.configs_from_sweep(available[settings["sweep"]].folder)
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------- the race

def trainer() -> Trainer:
    return st.session_state[TRAINER]


def new_race(contestants: list[Config]) -> Race:
    c = contestants[0]
    return Race(contestants, data_sets=load_data(c.dataset, c.n_train, c.n_test, c.data_seed,
                                                 c.noise, c.jitter))


def sync_race(contestants: list[Config]) -> Race:
    """Keep the session's race, or start a new one when the contestants changed."""
    state = st.session_state
    identity = [c.to_dict() for c in contestants]
    if TRAINER not in state:
        state[TRAINER] = training.new_trainer(new_race(contestants))
    elif state.get(IDENTITY) != identity:
        trainer().replace(new_race(contestants), keep_training=True)
        state[NOTICE] = "A new race: the contestants changed."
    state[IDENTITY] = identity
    return trainer().run


def toggle_training() -> None:
    trainer().toggle()


def step_once() -> None:
    trainer().step()


def reset_race() -> None:
    t = trainer()
    t.replace(new_race(t.run.contestants))


# ---------------------------------------------------------------- live view

def live_view(ticking: bool, target: float, smooth: bool) -> None:
    """The live view: status, epoch and the tiles, redrawn ~5 times a second while the race
    trains (``ui.training``), then the ranking and the curves, once a run of the fragment."""
    t = trainer()
    t.touch()
    began = time.monotonic()
    slots = {"status": Slot(), "message": Slot(), "epoch": Slot(), "tiles": Slot(changes=True)}
    match, frame = draw(t, target, smooth, slots)
    st.dataframe(compare.ranking_view(compare.ranking_table(frame.standings, target)),
                 hide_index=True, column_config={"settings": st.column_config.TextColumn(
                     width="large")})  # a hand-made contestant's settings are long
    curves_ui(match, target)
    training.redraw(t, ticking, began, lambda: draw(t, target, smooth, slots))


def draw(t: Trainer, target: float, smooth: bool, slots: dict[str, Slot]
         ) -> tuple[Race, compare.Frame]:
    """Fill the live view's ``slots`` from a frozen copy of the race; returns it and its
    frame."""
    training.status_ui(t, slots["status"])
    match = t.view()
    frame = compare.snapshot(match, target, RESOLUTION, SCALE, discrete=not smooth)
    if frame.status == "done":
        slots["message"].show("success", f"Race over: {frame.budget} epochs. Winner: "
                              f"{frame.standings.iloc[0]['name']}.", icon=":material/flag:")
    elif frame.status == "diverged":
        slots["message"].show("error", "Every contestant diverged: lower the learning rates "
                              "and press **Reset**.", icon=":material/error:")
    else:
        slots["message"].show("empty")
    slots["epoch"].show("metric", "Epoch", f"{frame.epoch} / {frame.budget}")
    out = set(frame.standings.loc[frame.standings["diverged"], "contestant"])
    last = frame.history.groupby("contestant").tail(1).set_index("contestant")
    captions = []
    for i, name in enumerate(match.names):
        if i in out:
            captions.append(f"{name} · diverged")
        elif i in last.index:
            captions.append(f"{name} · {100 * last.loc[i, 'test_acc']:.1f} %")
        else:
            captions.append(name)
    slots["tiles"].show("image", frame.tiles, caption=captions, width=TILE_WIDTH,
                        output_format="PNG")
    return match, frame


def curves_ui(match: Race, target: float) -> None:
    if not match.history:
        st.caption("Loss and accuracy curves appear here after the first epoch.")
        return
    names = tuple(match.names)
    tables = race_charts.history_data(match.history_frame())
    left, right = st.columns(2, gap="medium")
    left.vega_lite_chart(live.with_data(race_charts.spec("test_acc", names, target), tables),
                         width="stretch", alt="test accuracy per epoch, one line per contestant")
    right.vega_lite_chart(live.with_data(race_charts.spec("train_loss", names), tables),
                          width="stretch", alt="training loss per epoch, one line per contestant")


def links_ui(match: Race) -> None:
    """One button per contestant: one click opens it in the Playground, in one new tab."""
    st.subheader("Open a contestant in the Playground")
    st.caption("Each opens with exactly its settings and seeds, so it trains the same "
               "trajectory there.")
    page = links.playground_page(st.context.url, streamlit_app.PAGES[0][0])
    with st.container(horizontal=True):
        for config, name, details in zip(match.contestants, match.names,
                                         entrants.details(match.contestants)):
            st.link_button(name, compare.contestant_link(config, page),
                           icon=":material/open_in_new:",
                           help=f"{details}: train this contestant live in the Playground "
                           "(new tab)")


# ---------------------------------------------------------------- page

def main() -> None:
    state = st.session_state
    base, settings = initial_settings()
    available = saved_sweeps()
    drawn = settings_ui(available) + ["view"]  # the view's radio is drawn below
    st.title("Compare")
    st.caption("Race several settings side by side, trained live from one draw of the data "
               "and — where the networks match — one initialisation, so the differences come "
               "from the settings alone. By default: the seed report's nine activation × "
               "optimizer pairs with its Table I settings.")

    values = {name: state[key(name)] for name in drawn}
    base = {**base, **{k: v for k, v in values.items() if k in playground.SETTINGS}}
    settings = {**settings, **{k: v for k, v in values.items() if k in compare.RACE_SETTINGS}}
    state[BASE], state[SETTINGS] = base, settings
    query = compare.to_query(base, settings)
    if st.query_params.to_dict() != query:
        st.query_params.from_dict(query)

    training.link_warnings_ui(state[WARNINGS])
    try:
        contestants, warnings = compare.contestants(base, settings,
                                                    sweep_configs(settings, available))
    except ValueError as error:
        if TRAINER in state:  # the race shown before stops, out of sight
            trainer().pause()
        st.error("These contestants cannot race:", icon=":material/error:")
        st.code(str(error), language=None, wrap_lines=True)
        return
    if warnings:
        st.warning("Some contestants' settings were moved to the Playground's nearest values:",
                   icon=":material/tune:")
        st.code(playground.warnings_text(warnings), language=None)
    match = sync_race(contestants)
    training.notice_ui(NOTICE)

    t = trainer()
    finished = compare.status(match) in ("done", "diverged")
    buttons = training.buttons(t, finished, "cmp", toggle_training, step_once, reset_race,
                               "the same race from its start", 1)
    with buttons[0]:
        st.radio(hparams.TABLE["view"].label, hparams.TABLE["view"].choices, key=key("view"),
                 horizontal=True, help=hparams.TABLE["view"].help)
    smooth = state[key("view")] == "smooth"

    training.live_fragment(live_view, t, settings["target_acc"], smooth)
    links_ui(match)
    st.caption("Tiles: each contestant's class-1 score (blue: class 0, orange: class 1, one "
               "colour scale for all)" + (", dashed: the true disk" if base["dataset"] == "disk"
                                          else "") + "; ✕: a misclassified training point. "
               "The ranking orders by test accuracy at the last epoch, then by the epoch the "
               "target was reached.")


main()
