"""Cross-validation: k-fold grid searches over activation × optimizer pairs, and their Table I.

The visitor picks pairs, folds, epochs, seeds and a grid of values per
hyperparameter — one text input per setting the optimizer's grid searches
(``hparams.optimizer_grid``, prefilled with the settings table's defaults);
the page shows the size of the sweep in optimizer steps and refuses one past
the work cap.  **Launch** saves the spec (``jobs.create(sweeps.SWEEP, …)``)
and hands the sweep to the server's one line of jobs (``ui.jobs.scheduler``),
which trains it in a process of its own; a fragment polls its progress every
second while it runs, and **Cancel** asks that process to stop.  Finished configurations are on disk as
they complete, so every saved sweep — running, cancelled or finished, this
session's or not — can be picked again below, and a stopped one resumed.
Specs, persistence and running live in ``minidl.sweeps`` / ``minidl.jobs``,
charts in ``minidl.viz.cv``, tables' text in ``minidl.viz.tables``, Playground
links in ``ui.links``.

Why this module is long: one page with three parts — the new-sweep form, a saved
sweep's status, and its results (two tables, two charts) — each a few short
``*_ui`` functions that only draw; the logic they call lives in the package.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

import streamlit_app
from minidl import hparams, jobs
from minidl.experiments import sweeps
from minidl.viz import cv as cv_charts
from minidl.viz import tables
from ui import jobs as job_widgets
from ui import links

streamlit_app.enter()

SELECTED = "cv_sweep"          # the saved sweep shown (its folder name)
POLL_SECONDS = 1.0
MAX_LINKS = 6  # Playground buttons under the full table, for the first selected rows
KIND = sweeps.SWEEP
DEFAULT = sweeps.SweepSpec()


def playground_url() -> str:
    """The Playground's address: the app's root while it is the default page (``/playground``
    is "Page not found").  Absolute when the browser's URL is known, so that a link means
    the same wherever it is opened."""
    return links.playground_page(st.context.url, streamlit_app.PAGES[0][0])


def key(name: str) -> str:
    return f"cv_{name}"


def grid_key(optimizer: str, name: str) -> str:
    return f"cv_grid_{optimizer}_{name}"


def editable_grid(optimizer: str) -> dict[str, list]:
    """The settings an optimizer's grid searches and their default values, in the settings
    table's grid order (lr, the optimizer's own, weight decay, batch size)."""
    grid = hparams.optimizer_grid(optimizer)
    return {k: grid[k] for k in hparams.grid_keys(optimizer) if k in grid}


def seed_defaults(force: bool = False) -> None:
    """Put the default spec into Session State (widgets read them from there)."""
    state = st.session_state
    put = state.__setitem__ if force else state.setdefault
    put(key("activations"), list(DEFAULT.activations))
    put(key("optimizers"), list(DEFAULT.optimizers))
    for name in ("folds", "epochs", "seed", "data_seed"):
        put(key(name), getattr(DEFAULT, name))
    for o in hparams.OPTIMIZERS:
        for name, values in editable_grid(o).items():
            put(grid_key(o, name), hparams.format_values(values))


def reset_grid() -> None:
    for o in hparams.OPTIMIZERS:
        for name, values in editable_grid(o).items():
            st.session_state[grid_key(o, name)] = hparams.format_values(values)


# ---------------------------------------------------------------- new sweep

def grid_error(optimizer: str, error: ValueError) -> str:
    """A grid value's error, saying whose grid: ``"Adam · Invalid learning rate: …"``."""
    message = str(error)
    return f"{hparams.label(optimizer)} · {message[:1].upper()}{message[1:]}"


def grid_ui(optimizers: list[str]) -> tuple[dict[str, dict], list[str]]:
    """A column of text inputs per optimizer, one per setting its grid searches; returns the
    parsed grids and the errors."""
    state = st.session_state
    errors: list[str] = []
    grids: dict[str, dict] = {}
    for o, column in zip(optimizers, st.columns(len(optimizers))):
        with column:
            st.markdown(f"*{hparams.label(o)}*")
            grids[o] = {}
            for name in editable_grid(o):
                setting = hparams.TABLE[name]
                st.text_input(hparams.label(name), key=grid_key(o, name),
                              persist_state="session", max_chars=hparams.MAX_VALUES_TEXT,
                              help=f"{setting.help} — {setting.expectation()}".lstrip(" —"))
                try:
                    grids[o][name] = hparams.parse_values(name, state[grid_key(o, name)])
                except ValueError as error:
                    errors.append(grid_error(o, error))
    return grids, errors


def spec_ui() -> tuple[sweeps.SweepSpec | None, list[str]]:
    """Draw the new-sweep controls; return the spec (None if invalid) and the errors."""
    state = st.session_state
    left, right = st.columns(2)
    left.multiselect("Activations", hparams.REPORT_ACTIVATIONS, key=key("activations"),
                     format_func=hparams.label, persist_state="session")
    right.multiselect("Optimizers", hparams.OPTIMIZERS, key=key("optimizers"),
                      format_func=hparams.label, persist_state="session")
    cols = st.columns(4)
    cols[0].number_input("Folds", 2, 10, step=1, key=key("folds"), persist_state="session",
                         help="k of k-fold cross-validation")
    cols[1].number_input("Epochs", 1, 500, step=5, key=key("epochs"), persist_state="session",
                         help="epochs each network trains")
    cols[2].number_input("Seed", 0, 1_000_000, step=1, key=key("seed"), persist_state="session",
                         help="seeds the fold split, the initial weights and the batch order")
    cols[3].number_input("Data seed", 0, 1_000_000, step=1, key=key("data_seed"),
                         persist_state="session",
                         help=f"which draw of the disk task's {DEFAULT.n_train} training points "
                              "(the Playground's training set for the same data seed)")

    activations = [a for a in hparams.REPORT_ACTIVATIONS if a in state[key("activations")]]
    optimizers = [o for o in hparams.OPTIMIZERS if o in state[key("optimizers")]]
    st.markdown("**Grid** — values per hyperparameter, separated by commas; every "
                "combination is tried.")
    extras = tables.extras_note(activations)
    if extras:
        st.caption(extras)
    grids, errors = grid_ui(optimizers) if optimizers else ({}, [])
    st.button("Reset grid to defaults", key=key("reset_grid"), on_click=reset_grid,
              icon=":material/restart_alt:", type="tertiary")
    if errors:
        return None, errors
    try:
        spec = sweeps.SweepSpec(tuple(activations), tuple(optimizers), grids,
                                folds=int(state[key("folds")]), epochs=int(state[key("epochs")]),
                                seed=int(state[key("seed")]),
                                data_seed=int(state[key("data_seed")]))
    except ValueError as error:
        message = str(error)
        return None, [message[:1].upper() + message[1:]]
    return spec, []


def launch(spec: sweeps.SweepSpec) -> None:
    folder = jobs.create(KIND, spec, owner=job_widgets.session_owner())
    job_widgets.launch(KIND, folder)
    st.session_state[SELECTED] = folder.name


def estimate_ui(spec: sweeps.SweepSpec) -> bool:
    """Show the sweep's size; return whether it may run."""
    try:
        size = jobs.estimate(KIND, spec)
    except ValueError as error:  # a bad $MINIDL_SWEEP_CAP
        st.error(str(error), icon=":material/error:")
        return False
    with st.container(horizontal=True, gap="medium"):
        st.metric("Configurations", f"{size.units:,}", width="content",
                  help="grid points, summed over the activation × optimizer pairs")
        st.metric("Networks", f"{size.networks:,}", width="content",
                  help="configurations × folds: one network per configuration and fold")
        st.metric("Optimizer steps", f"{size.steps:,}", width="content",
                  help="summed over all networks (small batches take more steps): "
                       "the work the cap bounds")
        st.metric("Cap", f"{size.cap_text}", width="content",
                  help=f"the most optimizer steps a sweep may ask for (${KIND.cap_env})")
    if not size.allowed:
        st.error(f"This sweep is too large: {size.steps:,} optimizer steps "
                 f"({tables.plural(size.networks, 'network')} × "
                 f"{tables.plural(spec.epochs, 'epoch')}) exceed the cap of "
                 f"{size.cap_text}. Use fewer values, pairs, folds or epochs, or larger batches.",
                 icon=":material/block:")
    return size.allowed


def new_sweep_ui(expanded: bool) -> None:
    # while this visitor's job runs or waits the form is closed (a new label is a new
    # expander, so this holds even after it was opened) and Launch says why it is off
    busy = bool(job_widgets.scheduler().jobs_of(job_widgets.session_owner()))
    label = "New sweep (one job at a time: yours is in the line)" if busy else "New sweep"
    with st.expander(label, expanded=expanded and not busy, icon=":material/tune:"):
        spec, errors = spec_ui()
        if errors:  # they quote what was typed: plain text
            job_widgets.problem("These settings cannot run yet:", "\n".join(errors))
        allowed = spec is not None and estimate_ui(spec)
        job_widgets.public_note()
        busy = job_widgets.refusal()
        if busy and allowed:
            st.info(busy, icon=":material/hourglass:")
        st.button("Launch", key=key("launch"), type="primary", icon=":material/play_arrow:",
                  disabled=not allowed or busy is not None, on_click=launch, args=(spec,),
                  help=busy)


# ---------------------------------------------------------------- saved sweeps

def sweep_label(sweep: jobs.JobInfo) -> str:
    """A name for a selector that never changes (status and progress do; a selector keyed on
    a changing label would lose its selection)."""
    return (job_widgets.label(sweep, KIND.describe)
            + ("" if sweep.spec is None else f" · {sweep.name.rsplit('-', 1)[-1]}"))


def progress_view(name: str, owner: str | None) -> None:
    """Progress bar, ETA and (for its owner) Cancel of a running sweep; reruns the page when
    it stops."""
    job_widgets.job_progress_ui(
        name, key("cancel"), "stop after the current epoch; finished configurations stay "
        "saved, part-trained ones keep a checkpoint, and the sweep can be resumed", owner)


def status_ui(sweep: jobs.JobInfo, active: bool) -> None:
    s = sweep.spec
    st.caption(f"{tables.pairs_text(s.activations, s.optimizers)} · {tables.plural(s.folds, 'fold')}"
               f" · {tables.plural(s.epochs, 'epoch')} · seed {s.seed} · data seed {s.data_seed} · "
               f"{tables.plural(s.n_train, 'training point')} · {sweep.done} of {sweep.total} "
               f"configurations saved as {job_widgets.plain(KIND.folder + '/' + sweep.name)} "
               "under the results folder")
    if active:
        st.fragment(run_every=POLL_SECONDS)(progress_view)(sweep.name, sweep.owner)
        return
    if sweep.status in jobs.ACTIVE:  # trained by a process this app did not start
        st.fragment(run_every=POLL_SECONDS)(job_widgets.elsewhere_ui)(sweep.folder)
        return
    if sweep.status == "finished":
        st.success(f"Finished: {sweep.done} of {sweep.total} configurations.",
                   icon=":material/check_circle:")
        return
    kept = sweep.kept(KIND.unit) + "."  # exactly what is kept, part-trained ones included
    message = {"cancelled": f"Cancelled: {kept}",
               "interrupted": f"Interrupted (its process stopped): {kept}",
               "created": "Not started yet.",
               "failed": f"Failed: {kept}"}.get(sweep.status, "Stopped.")
    if sweep.status == "failed":  # the error's text comes from the meta file: plain text
        job_widgets.problem(message + " **Resume** trains only the rest. The error:",
                            sweep.error, st.warning)
    else:
        st.warning(message + " **Resume** trains only the rest.", icon=":material/pause:")
    job_widgets.resume_button(KIND, sweep, key("resume"))


def playground_buttons(rows: pd.DataFrame, spec: sweeps.SweepSpec, prefix: str) -> None:
    """One link button per row: one click opens that configuration in the Playground, in
    one new tab (a plain link; the data grid's own link cells took 2–3 clicks and opened
    two tabs)."""
    page = playground_url()
    with st.container(horizontal=True):
        for _, row in rows.iterrows():
            st.link_button(f"{prefix}{hparams.pair_label((row['activation'], row['optimizer']))}"
                           f" · {cv_charts.describe(row)}", links.playground_link(row, spec, page),
                           icon=":material/open_in_new:",
                           help="train this configuration live in the Playground (new tab)")


def optimal_ui(result: sweeps.SweepResult, spec: sweeps.SweepSpec) -> None:
    st.subheader("Optimal settings")
    st.caption("Per activation (row) and optimizer: the configuration with the best mean "
               "validation accuracy over the folds (the seed report's Table I layout).")
    table = result.optimal
    config = {c: accuracy_column(tables.column_label(c)) if c.endswith(" accuracy") else
              st.column_config.NumberColumn(tables.column_label(c), format="%g",
                                            help=hparams.TABLE[c.partition(" ")[2]].help)
              for c in table.columns}
    st.dataframe(table, column_config=config, key=key("optimal"))
    best = result.best_rows
    if not best.empty:
        st.caption("Open an optimal configuration in the Playground:")
        playground_buttons(best, spec, "")


def charts_ui(result: sweeps.SweepResult, picked: pd.DataFrame | None) -> None:
    table = result.table
    st.subheader("Accuracy against learning rate")
    st.caption("Mean validation accuracy ± one standard deviation over the folds; at each "
               "learning rate the best of the other hyperparameters. Diverged configurations "
               "are left out.")
    charts = cv_charts.lr_charts(table)
    if charts:
        for column, chart in zip(st.columns(len(charts)), charts):  # stacked on a phone
            column.altair_chart(chart, width="stretch")
    else:
        st.info("Every configuration diverged: nothing to draw.")
    st.subheader("Per-fold accuracy")
    rows = picked if picked is not None and not picked.empty else result.best_rows
    st.caption("Validation accuracy on each fold of "
               + ("the rows selected in the table below." if picked is not None
                  and not picked.empty else "each pair's optimal settings; select rows in the "
                  "table below to compare others."))
    if not rows.empty:
        st.altair_chart(cv_charts.fold_chart(rows), width="stretch")


def accuracy_column(label: str, help: str | None = None):
    """A column of accuracies (fractions) in the one percentage format (``tables``)."""
    return st.column_config.NumberColumn(label, format="percent", step=tables.ACCURACY_STEP,
                                         help=help)


def results_column_config(table: pd.DataFrame) -> dict:
    """Labels and formats of the full results table's columns."""
    settings = {c: st.column_config.NumberColumn(hparams.label(c), format="%g",
                                                 help=hparams.TABLE[c].help)
                for c in table.columns if c in hparams.TABLE
                and hparams.TABLE[c].kind in ("float", "int")}
    scores = {c: accuracy_column(
        f"fold {int(c[5:-6]) + 1}" if c.startswith("split") else c.replace("_", " "))
        for c in table.columns if c.endswith("_score")}
    return {**settings, **scores,
            "activation": st.column_config.TextColumn("activation"),
            "mean_score": accuracy_column("mean accuracy",
                                          help="mean validation accuracy over the folds"),
            "std_score": accuracy_column("std", help="standard deviation over the folds"),
            "fit_time": st.column_config.NumberColumn("fit time", format="%.3f s"),
            "mean_train_loss": st.column_config.NumberColumn("train loss", format="%.4f")}


def table_ui(result: sweeps.SweepResult, sweep: jobs.JobInfo) -> pd.DataFrame | None:
    """The full, sortable results table; returns the selected rows (each gets a button that
    opens it in the Playground)."""
    table = result.table
    event = st.dataframe(table, hide_index=True, column_config=results_column_config(table),
                         key=key(f"rows_{sweep.name}"), on_select="rerun",
                         selection_mode="multi-row")
    rows = getattr(getattr(event, "selection", None), "rows", None) or []
    picked = table.iloc[rows] if rows else None
    st.download_button("Download CSV", result.table.to_csv(index=False).encode(),
                       file_name=f"sweep-{sweep.name}.csv", mime="text/csv",
                       icon=":material/download:", key=key("download"))
    if picked is not None:
        playground_buttons(picked.head(MAX_LINKS), sweep.spec, "")
        if len(picked) > MAX_LINKS:
            st.caption(f"Buttons for the first {MAX_LINKS} selected rows.")
    return picked


def saved_ui(saved: list[jobs.JobInfo], active: set[str]) -> None:
    st.header("Sweeps")
    if not saved:
        st.info("No saved sweeps yet: set one up above and press **Launch**.")
        return
    by_name = {s.name: s for s in saved}
    if st.session_state.get(SELECTED) not in by_name:  # the newest with results to show
        st.session_state[SELECTED] = next((s.name for s in saved if s.done > 0), saved[0].name)
    name = st.selectbox("Saved sweep", list(by_name), key=SELECTED,
                        format_func=lambda n: sweep_label(by_name[n]),
                        help=job_widgets.hide_paths(
                            f"every sweep saved under {KIND.root()}, newest first"))
    with st.expander(f"All saved sweeps ({len(saved)})", icon=":material/folder_open:"):
        st.dataframe(tables.sweeps_overview(saved), hide_index=True, key=key("overview"))
    sweep = by_name[name]
    if sweep.status == jobs.DAMAGED:
        job_widgets.damaged(sweep, "sweep")
        return
    try:
        result = sweeps.load(sweep.folder, sweep.spec)
    except (OSError, ValueError) as error:
        job_widgets.problem("Could not read this sweep:", f"damaged: {error}")
        return
    status_ui(sweep, name in active)
    if not result.results:
        return
    if name in active:
        st.caption("Results so far (they grow as populations finish; the page refreshes "
                   "when the sweep stops).")
    optimal_ui(result, sweep.spec)
    chart_slot = st.container()
    st.subheader("All configurations")
    st.caption("Click a column to sort. Select rows (the boxes on the left) to compare their "
               "folds above and to get a button that trains each in the Playground. "
               "Diverged configurations have empty scores.")
    picked = table_ui(result, sweep)
    with chart_slot:
        charts_ui(result, picked)


def main() -> None:
    seed_defaults()
    st.title("Cross-validation")
    st.caption("k-fold cross-validation of the disk task for every activation × optimizer pair "
               "over a grid of hyperparameters, trained as batched populations of networks. "
               "The result is a table of optimal settings like the seed report's Table I.")
    active = job_widgets.scheduler().active()
    try:
        saved = jobs.list_jobs(KIND, active=active)
    except (OSError, jobs.Damaged) as error:  # e.g. a store that is not a database
        job_widgets.problem("Cannot use the saved sweeps:", error)
        return
    new_sweep_ui(expanded=not saved)
    saved_ui(saved, active)


main()
