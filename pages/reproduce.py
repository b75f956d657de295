"""Reproduce: re-run the seed report's study — every pair R times — and compare with its numbers.

Pick where the configurations come from (the report's Table I, or the optimal
table of a sweep saved by the Cross-validation page), the pairs, runs and
epochs; **Run study** saves a ``studies.StudySpec`` under the results root
(``jobs.create(studies.STUDY, …)``) and hands it to the server's line of jobs
(``ui.jobs.scheduler``), which trains it in a process of its own.  While it
trains, a fragment polls it every
``POLL_SECONDS`` for a progress bar and ETA (Cancel stops it; the pairs already
finished are kept, and **Resume** trains the others).  Finished, cancelled and
past studies are read back from disk, and the README's, shipped in ``docs/results``
(read-only): Fig. 2, Fig. 3, the summary table and CSV downloads.  Below them, the
ablation of the report's unstated conventions (``minidl.ablation``): its table and
figure per epoch budget, run here or with ``minidl ablate``.

Why this module is long: two jobs (studies and the ablation) on one page, each
with a launcher, progress and results; every part is a short ``*_ui`` function.
"""

from __future__ import annotations

import dataclasses

import streamlit as st

import streamlit_app
from minidl import files, hparams, jobs
from minidl.experiments import ablation, studies, sweeps
from minidl.jobs.rows import MAX_FILE_BYTES
from minidl.viz import ablation as ablation_figures
from minidl.viz import study as study_charts
from minidl.viz import tables
from ui import jobs as job_widgets

streamlit_app.enter()

# Session State / widget keys (page-prefixed)
SOURCE, RUNS, EPOCHS, SEED, VIEW, LOG = "rp_source", "rp_runs", "rp_epochs", "rp_seed", \
    "rp_view", "rp_log"
POLL_SECONDS = 0.5
KIND = studies.STUDY


# ---------------------------------------------------------------- configurations' source

def sweep_sources() -> dict[str, jobs.JobInfo]:
    """Saved sweeps with at least one finished configuration, by folder name."""
    try:
        return {s.name: s for s in jobs.list_jobs(sweeps.SWEEP) if s.done > 0}
    except (OSError, jobs.Damaged):  # no store: the report's settings only
        return {}


def source_ui() -> tuple[str, studies.StudySpec | None]:
    """The source picker; returns (source, a spec with every pair of the source)."""
    saved = sweep_sources()
    options = [studies.PAPER, *saved]

    def label(name: str) -> str:
        if name == studies.PAPER:
            return "The report's Table I (its cross-validated optimum)"
        sweep = saved[name]
        s = sweep.spec
        return (f"Saved sweep {sweep.created_text} · {tables.plural(len(s.pairs), 'pair')}, "
                f"{tables.plural(s.folds, 'fold')}, {tables.plural(s.epochs, 'epoch')} (its optimal table)")

    if st.session_state.get(SOURCE) not in options:
        st.session_state.pop(SOURCE, None)  # a sweep that is gone: back to the preset
    source = st.selectbox("Settings from", options, format_func=label, key=SOURCE,
                          help="Sweeps appear here once the Cross-validation page has "
                               "finished at least one configuration of them.")
    if source == studies.PAPER:
        return source, studies.paper_spec()
    try:
        return source, studies.sweep_spec(saved[source].folder)
    except (OSError, ValueError, KeyError) as error:
        job_widgets.problem("Cannot read the optimal settings of this sweep:", error)
        return source, None


def spec_ui() -> studies.StudySpec | None:
    """Source, pairs, runs, epochs and seed; the configurations table."""
    source, base = source_ui()
    if base is None:
        return None
    chosen = st.multiselect("Pairs", base.pairs, default=base.pairs,
                            format_func=hparams.pair_label, key=f"rp_pairs_{source}",
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
    configs = {p: base.configs[p] for p in base.pairs if p in chosen}
    st.caption(f"Hyperparameters from {job_widgets.plain(base.source_label)} (ε, β, ρ where "
               "the optimizer uses them):")
    st.dataframe(tables.configs_table(configs), hide_index=True, width="content")
    return dataclasses.replace(base, configs=configs, runs=int(runs), epochs=int(epochs),
                               seed=int(seed))


def describe_work(size: jobs.Estimate, spec: studies.StudySpec) -> str:
    """``"9 pairs × 10 runs × 100 epochs = 2,400,000 optimizer steps (cap 3,000,000)"``."""
    return (f"{tables.plural(size.parts, 'pair')} × {tables.plural(spec.runs, 'run')} × "
            f"{tables.plural(spec.epochs, 'epoch')} = "
            f"{size.steps:,} optimizer steps (cap {size.cap_text})")


def launch(spec: studies.StudySpec) -> None:
    folder = jobs.create(KIND, spec, owner=job_widgets.session_owner())
    job_widgets.launch(KIND, folder)
    st.session_state[VIEW] = folder.name


def launch_ui(spec: studies.StudySpec | None) -> None:
    if spec is None:
        st.button("Run study", type="primary", disabled=True, icon=":material/play_arrow:")
        return
    try:
        size = jobs.estimate(KIND, spec)
    except ValueError as error:  # a bad $MINIDL_STUDY_CAP
        st.error(str(error), icon=":material/error:")
        return
    if size.allowed:
        st.caption(f"Work: {describe_work(size, spec)}.")
    else:
        st.error(f"Too much work for this demo: {describe_work(size, spec)}. Lower the runs, "
                 f"the epochs or the pairs (or raise ${KIND.cap_env} where you run the app).",
                 icon=":material/block:")
    job_widgets.public_note()
    busy = job_widgets.refusal()
    if busy and size.allowed:
        st.info(busy, icon=":material/hourglass:")
    st.button("Run study", type="primary", disabled=not size.allowed or busy is not None,
              on_click=launch, args=(spec,), icon=":material/play_arrow:", help=busy)


# ---------------------------------------------------------------- progress and results

@st.fragment(run_every=POLL_SECONDS)
def progress_view(name: str, owner: str | None) -> None:
    """Progress bar, ETA and (for its owner) Cancel of the study ``name``; reruns the page
    when it ends."""
    job_widgets.job_progress_ui(
        name, "rp_cancel", "stop after the current epoch; finished pairs stay saved, a "
        "part-trained pair keeps a checkpoint, and the study can be "
        "resumed", owner)


def study_label(study: jobs.JobInfo) -> str:
    """Creation time and spec (not the status, which changes while a list is shown)."""
    return job_widgets.label(study, KIND.describe)


def status_ui(study: jobs.JobInfo) -> None:
    """What stopped a study that did not finish, and **Resume** for it."""
    if study.status == "finished":
        return
    spec = study.spec
    pairs = f"{study.done // spec.runs} of {len(spec.pairs)} pairs"
    runs, steps, of = study.held  # part-trained pairs' runs, kept in checkpoints
    if runs:
        pairs += (f" (and {runs // spec.runs} more part-trained: {steps / max(1, of):.0%} of "
                  "their optimizer steps are kept)")
    if study.status == "failed":
        job_widgets.problem(f"The study failed after {pairs}; the error:", study.error)
    elif study.status == "cancelled":
        st.warning(f"Cancelled after {pairs}; the finished pairs are shown.",
                   icon=":material/cancel:")
    elif study.status == "interrupted":
        st.warning(f"The process training this study stopped after {pairs}; only what was "
                   "saved is shown.", icon=":material/warning:")
    elif study.status == "created":
        st.info("Not started yet.", icon=":material/schedule:")
    if study.resumable and not job_widgets.is_shipped(study):  # docs/results: read-only
        st.caption("**Resume** trains only the pairs not finished yet, each from where it "
                   "stopped.")
        job_widgets.resume_button(KIND, study, "rp_resume")


def results_ui(info: jobs.JobInfo) -> None:
    try:
        study = studies.load(info.folder, info.spec)
    except (OSError, ValueError) as error:  # damaged since it was listed: say so, go on
        job_widgets.problem("Cannot read the results of this study:", f"damaged: {error}")
        return
    if study is None or study.runs.empty:
        st.info("No finished pair to show.", icon=":material/hourglass_empty:")
        return
    spec = info.spec
    where = (f"shipped with the app in docs/results/{info.folder.name} (read-only)"
             if job_widgets.is_shipped(info) else
             f"saved as {job_widgets.plain(KIND.folder + '/' + info.name)} under the results folder")
    st.caption(f"Settings from {job_widgets.plain(spec.source_label)}; "
               f"{tables.plural(spec.runs, 'run')} per pair, "
               f"{tables.plural(spec.epochs, 'epoch')}, seed {spec.seed}; {info.status}; {where}.")
    summary = study.summary
    diverged = int(summary["diverged"].sum())
    if diverged:
        st.warning(f"{diverged} run{'s' * (diverged != 1)} diverged (the loss became NaN "
                   "or infinite); they are left out of the means and standard errors.",
                   icon=":material/warning:")
    st.dataframe(tables.summary_table(summary), hide_index=True, width="content")

    # full width, one under the other: nine pair names need the room on Fig. 2's axis
    st.altair_chart(study_charts.accuracy_figure(summary), width="stretch")
    log = st.toggle("Log scale", value=True, key=LOG)
    st.altair_chart(study_charts.loss_figure(study.loss_curves, log_scale=log),
                    width="stretch")

    with st.container(horizontal=True):
        for file, label in (("summary.csv", "Summary (CSV)"), ("runs.csv", "Every run (CSV)"),
                            ("losses.csv", "Loss per epoch (CSV)")):
            try:
                data = files.read_bytes(info.folder / file, MAX_FILE_BYTES)
            except files.Unreadable:
                data = None
            if data is not None:
                st.download_button(label, data, f"{info.name}-{file}",
                                   "text/csv", key=f"rp_dl_{file}", on_click="ignore",
                                   icon=":material/download:")


def study_sources(active: set[str]) -> dict[str, jobs.JobInfo]:
    """Saved studies, newest first, then the README's (shipped in docs/results)."""
    shipped = job_widgets.shipped(KIND)
    listed = jobs.list_jobs(KIND, active=active)
    return {s.name: s for s in sorted(listed, key=lambda s: s.folder in shipped)}


def study_ui() -> None:
    active = job_widgets.scheduler().active()
    try:
        saved = study_sources(active)
    except (OSError, jobs.Damaged) as error:
        job_widgets.problem("Cannot list the saved studies:", error)
        return
    if not saved:
        st.info("No saved studies yet: choose the settings above and press **Run study**.",
                icon=":material/info:")
        return
    if st.session_state.get(VIEW) not in saved:
        st.session_state.pop(VIEW, None)  # newest by default
    name = st.selectbox("Study", list(saved), format_func=lambda n: study_label(saved[n]),
                        key=VIEW)
    info = saved[name]
    if name in active:
        progress_view(name, info.owner)
        return
    if info.status in jobs.ACTIVE:  # trained by a process this app did not start
        st.fragment(run_every=POLL_SECONDS)(job_widgets.elsewhere_ui)(info.folder)
        return
    if info.status == jobs.DAMAGED:
        job_widgets.damaged(info, "study")
        return
    status_ui(info)
    results_ui(info)


# ---------------------------------------------------------------- the conventions' ablation

# the README's ablation, shipped with the repository (``minidl ablate --out docs/results/ablation``)
SHIPPED_ABLATION = job_widgets.SHIPPED / "ablation"
ABLATION_VIEW, ABLATION_BUDGET, ABLATION_RUNS = "rp_ablation", "rp_ablation_budget", \
    "rp_ablation_runs"


def ablation_sources(active: set[str]) -> dict[str, jobs.JobInfo]:
    """Saved ablations with results, newest first, then the README's (shipped) one."""
    shipped = SHIPPED_ABLATION.resolve()
    saved = {j.name: j for j in jobs.list_jobs(ablation.ABLATION, active=active)
             if j.folder != shipped}
    if (SHIPPED_ABLATION / ablation.ABLATION.meta_name).is_file():
        saved["README"] = jobs.info(ablation.ABLATION, SHIPPED_ABLATION)
    return saved


@st.fragment(run_every=POLL_SECONDS)
def ablation_progress(name: str, owner: str | None) -> None:
    job_widgets.job_progress_ui(name, "rp_ablation_cancel", "stop after the current "
                                "population's epoch; finished "
                                "pairs stay saved and the ablation resumes", owner)


def launch_ablation() -> None:
    spec = ablation.AblationSpec(runs=int(st.session_state[ABLATION_RUNS]))
    folder = jobs.create(ablation.ABLATION, spec, owner=job_widgets.session_owner())
    job_widgets.launch(ablation.ABLATION, folder)
    st.session_state[ABLATION_VIEW] = folder.name


def ablation_launch_ui() -> None:
    with st.expander("Run an ablation here", icon=":material/science:"):
        st.number_input("Runs per pair and convention", 1, 10, 2, key=ABLATION_RUNS)
        spec = ablation.AblationSpec(runs=int(st.session_state[ABLATION_RUNS]))
        try:
            size = jobs.estimate(ablation.ABLATION, spec)
        except ValueError as error:  # a bad cap in the environment
            st.error(str(error), icon=":material/error:")
            return
        st.caption(f"{ablation.ABLATION.describe(spec)}: "
                   f"{size.steps:,} optimizer steps (cap {size.cap_text}).")
        busy = job_widgets.refusal()
        st.button("Run ablation", key="rp_ablation_launch", icon=":material/play_arrow:",
                  on_click=launch_ablation, disabled=not size.allowed or busy is not None,
                  help=busy if size.allowed else f"over the cap (${ablation.ABLATION.cap_env})")


def ablation_ui() -> None:
    st.subheader("Why Table I does not carry over as written")
    st.caption("The report's Table I settings under each convention it leaves unstated — one "
               "changed at a time from our reading, then the best combination — so you can "
               "see which choice brings the paper's numbers back. Made by `minidl ablate`; "
               "green cells reach the report's 96.9 %.")
    ablation_launch_ui()
    active = job_widgets.scheduler().active()
    try:
        sources = ablation_sources(active)
    except (OSError, jobs.Damaged) as error:
        job_widgets.problem("Cannot list the saved ablations:", error)
        return
    if not sources:
        st.info("No ablation saved yet.", icon=":material/info:")
        return
    if st.session_state.get(ABLATION_VIEW) not in sources:
        st.session_state.pop(ABLATION_VIEW, None)
    name = st.selectbox("Ablation", list(sources), key=ABLATION_VIEW, format_func=lambda n: (
        "the README's (docs/results/ablation)" if n == "README"
        else job_widgets.label(sources[n], ablation.ABLATION.describe)))
    info = sources[name]
    if name in active:
        ablation_progress(name, info.owner)
        return
    if info.status in jobs.ACTIVE:  # trained by a process this app did not start
        st.fragment(run_every=POLL_SECONDS)(job_widgets.elsewhere_ui)(info.folder)
        return
    if info.status == jobs.DAMAGED:
        job_widgets.damaged(info, "ablation")
        return
    if info.resumable and name != "README":
        job_widgets.resume_button(ablation.ABLATION, info, "rp_ablation_resume")
    try:
        accuracy = ablation.read_accuracy(info.folder)
    except (OSError, ValueError) as error:  # damaged since it was listed
        job_widgets.problem("Cannot read the results of this ablation:", f"damaged: {error}")
        return
    if accuracy.empty:
        st.info("No finished pair to show yet.", icon=":material/hourglass_empty:")
        return
    summary = ablation.summary(accuracy)
    budgets = sorted(int(b) for b in summary["epochs"].unique())
    budget = st.segmented_control("Epochs", budgets, key=ABLATION_BUDGET,
                                  default=max(info.spec.budgets)) or max(info.spec.budgets)
    st.dataframe(ablation.wide(summary, budget), hide_index=True)
    st.altair_chart(ablation_figures.figure(summary, budget), width="stretch")
    combination = ablation.best_combination(accuracy, info.spec)
    st.caption("Best combination (per setting, the value that brought the most pairs to "
               f"96.9 %, then the highest mean, at {max(info.spec.budgets)} epochs): "
               f"{ablation.knob_name(combination)}.")


# ---------------------------------------------------------------- page

st.title("Reproduce")
st.caption("Train every activation × optimizer pair of the seed report several times with "
           "fresh data and initialisations, then compare mean ± standard error with the "
           "report's Fig. 2 and Fig. 3.")

st.subheader("Settings")
launch_ui(spec_ui())

st.subheader("Results")
study_ui()

ablation_ui()
