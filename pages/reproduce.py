"""Reproduce: re-run the seed report's study — every pair R times — and compare with its numbers.

Pick where the settings come from (the report's Table I, or the optimal table
of a sweep saved by the Cross-validation page), the pairs, runs and epochs;
**Run study** saves a plan under the results root (``minidl.studies``) and
hands it to one background worker shared by the process.  While it trains, a
fragment polls the runner every ``POLL_SECONDS`` for a progress bar and ETA
(Cancel stops it; the pairs already finished are kept).  Finished, cancelled
and past studies are read back from disk: Fig. 2, Fig. 3, the summary table
and CSV downloads.
"""

from __future__ import annotations

import streamlit as st

import app_common
import streamlit_app
from minidl import reproduce, studies, study_charts, sweeps
from minidl.studies import pair_label

streamlit_app.enter()

# Session State / widget keys (page-prefixed)
SOURCE, RUNS, EPOCHS, SEED, VIEW, LOG = "rp_source", "rp_runs", "rp_epochs", "rp_seed", \
    "rp_view", "rp_log"
POLL_SECONDS = 0.5


@st.cache_resource
def jobs() -> studies.StudyJobs:
    """The process's study runners and their one worker thread (shared by every session)."""
    return studies.StudyJobs()


# ---------------------------------------------------------------- settings source

def sweep_sources() -> dict[str, sweeps.SweepInfo]:
    """Saved sweeps with at least one finished configuration, by folder name."""
    try:
        return {s.name: s for s in sweeps.list_sweeps() if s.finished > 0}
    except OSError:
        return {}


def source_ui() -> tuple[str, str, dict]:
    """The settings source picker; returns (source, its label, settings per pair)."""
    saved = sweep_sources()
    options = [studies.PAPER, *saved]

    def label(name: str) -> str:
        if name == studies.PAPER:
            return "The report's Table I (its cross-validated optimum)"
        sweep = saved[name]
        s = sweep.settings
        return (f"Saved sweep {sweep.created.replace('T', ' ')[:16]} · {len(s.pairs)} pairs, "
                f"{s.folds} folds, {s.epochs} epochs (its optimal table)")

    if st.session_state.get(SOURCE) not in options:
        st.session_state.pop(SOURCE, None)  # a sweep that is gone: back to the preset
    source = st.selectbox("Settings from", options, format_func=label, key=SOURCE,
                          help="Sweeps appear here once the Cross-validation page has "
                               "finished at least one configuration of them.")
    if source == studies.PAPER:
        return source, "the report's Table I", dict(reproduce.PAPER_SETTINGS)
    try:
        settings = reproduce.settings_from_sweep(saved[source].folder)
    except (OSError, ValueError, KeyError) as error:
        st.error(f"Cannot read the optimal settings of sweep {source}: {error}",
                 icon=":material/error:")
        return source, "", {}
    return source, f"sweep {source}", settings


def plan_ui() -> studies.Plan | None:
    """Source, pairs, runs, epochs and seed; the settings table and the cost check."""
    source, source_label, settings = source_ui()
    if not settings:
        return None
    chosen = st.multiselect("Pairs", list(settings), default=list(settings),
                            format_func=pair_label, key=f"rp_pairs_{source}",
                            help="Activation × optimizer pairs to train; each is trained "
                                 "`runs` times with its settings below.")
    runs_col, epochs_col, seed_col = st.columns(3)
    with runs_col:
        runs = st.number_input("Runs per pair", 1, 100, 10, key=RUNS,
                               help="Each run draws fresh data and a fresh initialisation; "
                                    "run r is seeded alike for every pair.")
    with epochs_col:
        epochs = st.number_input("Epochs", 1, 1000, 100, key=EPOCHS)
    with seed_col:
        seed = st.number_input("Seed", 0, 10_000, 0, key=SEED,
                               help="Run r uses data and initialisation seed 1000·seed + r.")
    if not chosen:
        st.warning("Choose at least one pair.", icon=":material/warning:")
        return None
    chosen_settings = {p: settings[p] for p in settings if p in chosen}
    st.caption(f"Hyperparameters from {source_label} (ε, β, ρ where the optimizer uses them):")
    st.dataframe(studies.settings_table(chosen_settings), hide_index=True, width="content")
    return studies.Plan(chosen_settings, int(runs), int(epochs), int(seed), source,
                        source_label)


def launch(plan: studies.Plan) -> None:
    folder = studies.new_study(plan)
    jobs().start(folder)
    st.session_state[VIEW] = folder.name


def launch_ui(plan: studies.Plan | None) -> None:
    if plan is None:
        st.button("Run study", type="primary", disabled=True, icon=":material/play_arrow:")
        return
    try:
        cost = studies.estimate(plan)
    except ValueError as error:  # a bad $MINIDL_STUDY_CAP
        st.error(str(error), icon=":material/error:")
        return
    if cost.allowed:
        st.caption(f"Work: {cost.describe()}.")
    else:
        st.error(f"Too much work for this demo: {cost.describe()}. Lower the runs, the "
                 f"epochs or the pairs (or raise ${studies.CAP_ENV} where you run the app).",
                 icon=":material/block:")
    busy = jobs().active()
    if busy:
        st.caption(f"{len(busy)} study running or queued on this server; a new one waits "
                   "its turn.")
    st.button("Run study", type="primary", disabled=not cost.allowed, on_click=launch,
              args=(plan,), icon=":material/play_arrow:")


# ---------------------------------------------------------------- progress and results

@st.fragment(run_every=POLL_SECONDS)
def progress_view(name: str) -> None:
    """Progress bar, ETA and Cancel of the study ``name``; reruns the page when it ends."""
    app_common.job_progress_ui(jobs().get(name), "Waiting for the study ahead of this one…",
                               "rp_cancel")


def status_ui(info: studies.StudyInfo) -> None:
    n = len(info.plan.settings)
    if info.status == "failed":
        st.error(f"The study failed: {info.error}", icon=":material/error:")
    elif info.status == "cancelled":
        st.warning(f"Cancelled after {info.pairs_done} of {n} pairs; the finished pairs are "
                   "shown.", icon=":material/cancel:")
    elif info.status == "interrupted":
        st.warning("The server stopped while this study ran; only what was saved is "
                   "shown.", icon=":material/warning:")


def results_ui(info: studies.StudyInfo) -> None:
    try:
        study = studies.load(info.folder)
    except (OSError, ValueError, KeyError) as error:  # a damaged folder: say so, go on
        st.error(f"Cannot read the results of study {info.name}: {error}",
                 icon=":material/error:")
        return
    if study is None or study.runs.empty:
        st.info("No finished pair to show.", icon=":material/hourglass_empty:")
        return
    plan = info.plan
    st.caption(f"Settings from {plan.source_label}; {plan.runs} runs per pair, "
               f"{plan.epochs} epochs, seed {plan.seed}; {info.status}; saved as "
               f"`{studies.SUBFOLDER}/{info.name}` under the results folder.")
    summary = study.summary
    diverged = int(summary["diverged"].sum())
    if diverged:
        st.warning(f"{diverged} run{'s' * (diverged != 1)} diverged (the loss became NaN "
                   "or infinite); they are left out of the means and standard errors.",
                   icon=":material/warning:")
    st.dataframe(studies.summary_table(summary), hide_index=True, width="content")

    # full width, one under the other: nine pair names need the room on Fig. 2's axis
    st.altair_chart(study_charts.accuracy_figure(summary), width="stretch")
    log = st.toggle("Log scale", value=True, key=LOG)
    st.altair_chart(study_charts.loss_figure(study.loss_curves, log_scale=log),
                    width="stretch")

    with st.container(horizontal=True):
        for file, label in (("summary.csv", "Summary (CSV)"), ("runs.csv", "Every run (CSV)"),
                            ("losses.csv", "Loss per epoch (CSV)")):
            path = info.folder / file
            if path.is_file():
                st.download_button(label, path.read_bytes(), f"{info.name}-{file}",
                                   "text/csv", key=f"rp_dl_{file}", on_click="ignore",
                                   icon=":material/download:")


def study_ui() -> None:
    active = jobs().active()
    saved = {s.name: s for s in studies.list_studies(active=active)}
    if not saved:
        st.info("No saved studies yet: choose the settings above and press **Run study**.",
                icon=":material/info:")
        return
    if st.session_state.get(VIEW) not in saved:
        st.session_state.pop(VIEW, None)  # newest by default
    name = st.selectbox("Study", list(saved), format_func=lambda n: saved[n].label(),
                        key=VIEW)
    info = saved[name]
    if name in active:
        progress_view(name)
        return
    status_ui(info)
    results_ui(info)


# ---------------------------------------------------------------- page

st.title("Reproduce")
st.caption("Train every activation × optimizer pair of the seed report several times with "
           "fresh data and initialisations, then compare mean ± standard error with the "
           "report's Fig. 2 and Fig. 3.")

st.subheader("Settings")
launch_ui(plan_ui())

st.subheader("Results")
study_ui()
