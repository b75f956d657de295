"""Cross-validation: k-fold grid searches over activation × optimizer pairs, and their Table I.

The visitor picks pairs, folds, epochs, seeds and a grid of values per
hyperparameter (prefilled with ``cv.DEFAULT_GRIDS``); the page shows the size
of the sweep and refuses one past the work cap.  **Launch** saves the settings
(``minidl.sweeps.new_sweep``) and hands the sweep to one shared worker thread
(``SweepJobs``, from ``st.cache_resource``); a fragment polls its progress
every second while it runs, and **Cancel** sets its event.  Finished
configurations are on disk as they complete, so every saved sweep — running,
cancelled or finished, this session's or not — can be picked again below, and a
stopped one resumed.  Settings logic, persistence and running live in
``minidl.sweeps``, charts in ``minidl.cv_charts``.
"""

from __future__ import annotations

from urllib.parse import urljoin

import pandas as pd
import streamlit as st

import app_common
import streamlit_app
from minidl import cv, cv_charts, labels, sweeps

streamlit_app.enter()

SELECTED = "cv_sweep"          # the saved sweep shown (its folder name)
POLL_SECONDS = 1.0
NAMES = sweeps.LABELS
DEFAULT = sweeps.Settings()


@st.cache_resource
def jobs() -> sweeps.SweepJobs:
    """The process's sweep runners: one worker thread shared by every session."""
    return sweeps.SweepJobs()


def playground_url() -> str:
    """The Playground's address: the app's root while it is the default page (``/playground``
    is "Page not found").  Absolute when the browser's URL is known: the data grid opens a
    link in a blank tab first, where a relative link loses its way."""
    page = "./" if streamlit_app.PAGES[0][0] == "playground" else "playground"
    here = st.context.url or ""
    return urljoin(here, page) if here.startswith(("http://", "https://")) else page


def key(name: str) -> str:
    return f"cv_{name}"


def grid_key(optimizer: str, name: str) -> str:
    return f"cv_grid_{optimizer}_{name}"


def seed_defaults(force: bool = False) -> None:
    """Put the default settings into Session State (widgets read them from there)."""
    state = st.session_state
    put = state.__setitem__ if force else state.setdefault
    put(key("activations"), list(DEFAULT.activations))
    put(key("optimizers"), list(DEFAULT.optimizers))
    for name in ("folds", "epochs", "seed", "data_seed"):
        put(key(name), getattr(DEFAULT, name))
    for o, grid in cv.DEFAULT_GRIDS.items():
        for name, values in grid.items():
            put(grid_key(o, name), sweeps.format_values(values))


def reset_grid() -> None:
    for o, grid in cv.DEFAULT_GRIDS.items():
        for name, values in grid.items():
            st.session_state[grid_key(o, name)] = sweeps.format_values(values)


# ---------------------------------------------------------------- new sweep

def settings_ui() -> tuple[sweeps.Settings | None, list[str]]:
    """Draw the new-sweep controls; return the settings (None if invalid) and the errors."""
    state = st.session_state
    left, right = st.columns(2)
    left.multiselect("Activations", cv.ACTIVATIONS, key=key("activations"),
                     format_func=NAMES.get, persist_state="session")
    right.multiselect("Optimizers", cv.OPTIMIZERS, key=key("optimizers"),
                      format_func=NAMES.get, persist_state="session")
    cols = st.columns(4)
    cols[0].number_input("Folds", 2, 10, step=1, key=key("folds"), persist_state="session",
                         help="k of k-fold cross-validation")
    cols[1].number_input("Epochs", 1, 500, step=5, key=key("epochs"), persist_state="session",
                         help="epochs each network trains")
    cols[2].number_input("Seed", 0, 1_000_000, step=1, key=key("seed"), persist_state="session",
                         help="seeds the fold split, the initial weights and the batch order")
    cols[3].number_input("Data seed", 0, 1_000_000, step=1, key=key("data_seed"),
                         persist_state="session",
                         help="which draw of the disk task's 1000 training points "
                              "(the Playground's training set for the same data seed)")

    optimizers = [o for o in cv.OPTIMIZERS if o in state[key("optimizers")]]
    errors: list[str] = []
    grids: dict[str, dict] = {}
    st.markdown("**Grid** — values per hyperparameter, separated by commas; every "
                "combination is tried.")
    extras = sweeps.extras_note(state[key("activations")])
    if extras:
        st.caption(extras)
    if optimizers:
        for o, column in zip(optimizers, st.columns(len(optimizers))):
            with column:
                st.markdown(f"*{NAMES[o]}*")
                grids[o] = {}
                for name in cv.OPTIMIZER_KEYS[o]:
                    st.text_input(NAMES.get(name, name), key=grid_key(o, name),
                                  persist_state="session")
                    try:
                        grids[o][name] = sweeps.parse_values(name, state[grid_key(o, name)], o)
                    except ValueError as error:
                        errors.append(str(error))
    st.button("Reset grid to defaults", key=key("reset_grid"), on_click=reset_grid,
              icon=":material/restart_alt:", type="tertiary")
    if errors:
        return None, errors
    try:
        settings = sweeps.Settings(tuple(a for a in cv.ACTIVATIONS
                                         if a in state[key("activations")]),
                                   tuple(optimizers), grids, folds=int(state[key("folds")]),
                                   epochs=int(state[key("epochs")]), seed=int(state[key("seed")]),
                                   data_seed=int(state[key("data_seed")]))
    except ValueError as error:
        return None, [str(error).capitalize()]
    return settings, []


def launch(settings: sweeps.Settings) -> None:
    folder = sweeps.new_sweep(settings)
    jobs().start(folder)
    st.session_state[SELECTED] = folder.name


def estimate_ui(settings: sweeps.Settings) -> bool:
    """Show the sweep's size; return whether it may run."""
    try:
        size = sweeps.estimate(settings)
    except ValueError as error:  # a bad $MINIDL_SWEEP_CAP
        st.error(str(error), icon=":material/error:")
        return False
    with st.container(horizontal=True, gap="medium"):
        st.metric("Configurations", f"{size.configurations:,}", width="content",
                  help="grid points, summed over the activation × optimizer pairs")
        st.metric("Networks", f"{size.members:,}", width="content",
                  help="configurations × folds: one network per configuration and fold")
        st.metric("Member-epochs", f"{size.member_epochs:,}", width="content",
                  help="networks × epochs: the work the cap bounds")
        st.metric("Optimizer steps", f"{size.steps:,}", width="content",
                  help="summed over all networks (small batches take more steps)")
        st.metric("Cap", f"{size.cap:,}", width="content",
                  help=f"largest member-epochs a sweep may ask for (${sweeps.CAP_ENV})")
    if not size.allowed:
        st.error(f"This sweep is too large: {size.member_epochs:,} member-epochs "
                 f"({size.members:,} networks × {settings.epochs} epochs) exceeds the cap of "
                 f"{size.cap:,}. Use fewer values, pairs, folds or epochs.",
                 icon=":material/block:")
    return size.allowed


def new_sweep_ui(expanded: bool) -> None:
    with st.expander("New sweep", expanded=expanded, icon=":material/tune:"):
        settings, errors = settings_ui()
        for error in errors:
            st.error(error, icon=":material/error:")
        allowed = settings is not None and estimate_ui(settings)
        st.button("Launch", key=key("launch"), type="primary", icon=":material/play_arrow:",
                  disabled=not allowed, on_click=launch, args=(settings,))


# ---------------------------------------------------------------- saved sweeps

def progress_view(name: str) -> None:
    """Progress bar, ETA and Cancel of a running sweep; reruns the page when it stops."""
    app_common.job_progress_ui(
        jobs().get(name), "Queued: waiting for the sweep before it to finish…", key("cancel"),
        "stop after the current population's epoch; finished configurations stay saved and "
        "the sweep can be resumed")


def resume(name: str) -> None:
    jobs().start(sweeps.results_root() / name)


def status_ui(sweep: sweeps.SweepInfo, active: bool) -> None:
    s = sweep.settings
    st.caption(f"{', '.join(NAMES[a] for a in s.activations)} × "
               f"{', '.join(NAMES[o] for o in s.optimizers)} · {s.folds} folds · "
               f"{s.epochs} epochs · seed {s.seed} · data seed {s.data_seed} · "
               f"{s.n_train} training points · {sweep.finished} of {sweep.total} "
               f"configurations saved in `{sweep.folder}`")
    if active:
        st.fragment(run_every=POLL_SECONDS)(progress_view)(sweep.name)
        return
    done = f"{sweep.finished} of {sweep.total} configurations"
    if sweep.status == "finished":
        st.success(f"Finished: {done}.", icon=":material/check_circle:")
        return
    message = {"cancelled": f"Cancelled after {done}; they are saved.",
               "interrupted": f"Interrupted (the server stopped) after {done}; they are saved.",
               "created": "Not started yet.",
               "failed": f"Failed after {done}: {sweep.error}"}.get(sweep.status, sweep.status)
    st.warning(message + " **Resume** trains only the missing ones.", icon=":material/pause:")
    try:
        size = sweeps.estimate(s)
    except ValueError as error:  # a bad $MINIDL_SWEEP_CAP
        st.error(str(error), icon=":material/error:")
        return
    st.button("Resume", key=key("resume"), type="primary", icon=":material/play_arrow:",
              on_click=resume, args=(sweep.name,), disabled=not size.allowed,
              help=None if size.allowed else f"over the cap of {size.cap:,} member-epochs")


def optimal_ui(result: cv.SweepResult) -> None:
    st.subheader("Optimal settings")
    st.caption("Per activation (row) and optimizer: the configuration with the best mean "
               "validation accuracy over the folds (the seed report's Table I layout).")
    table = result.optimal
    config = {c: st.column_config.NumberColumn(c, format="percent") if c.endswith("accuracy")
              else st.column_config.NumberColumn(c, format="%g") for c in table.columns}
    st.dataframe(table, column_config=config, key=key("optimal"))


def chosen_rows(result: cv.SweepResult) -> pd.DataFrame:
    """Each pair's best non-diverged configuration (the optimal table's rows)."""
    rows = [r.table[~r.table["diverged"]].head(1) for r in result.results.values()]
    rows = [r for r in rows if not r.empty]
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def charts_ui(result: cv.SweepResult, picked: pd.DataFrame | None) -> None:
    table = result.table
    st.subheader("Accuracy against learning rate")
    st.caption("Mean validation accuracy ± one standard deviation over the folds; at each "
               "learning rate the best of the other hyperparameters. Diverged configurations "
               "are left out.")
    if table["mean_score"].notna().any():
        st.altair_chart(cv_charts.lr_chart(table), width="content")
    else:
        st.info("Every configuration diverged: nothing to draw.")
    st.subheader("Per-fold accuracy")
    rows = picked if picked is not None and not picked.empty else chosen_rows(result)
    st.caption("Validation accuracy on each fold of "
               + ("the rows selected in the table below." if picked is not None
                  and not picked.empty else "each pair's optimal settings; select rows in the "
                  "table below to compare others."))
    if not rows.empty:
        st.altair_chart(cv_charts.fold_chart(rows), width="content")


def table_ui(result: cv.SweepResult, sweep: sweeps.SweepInfo) -> pd.DataFrame | None:
    """The full, sortable results table with Playground links; returns the selected rows."""
    table = sweeps.results_table(result, sweep.settings, playground_url())
    numbers = {c: st.column_config.NumberColumn(format="%g") for c in table.columns
               if c in cv.DEFAULTS}
    scores = {c: st.column_config.NumberColumn(format="percent") for c in table.columns
              if c.endswith("_score")}
    config = {**numbers, **scores,
              "playground": st.column_config.LinkColumn(
                  "Playground", display_text="open", width="small", pinned=True,
                  help="train this configuration live in the Playground"),
              "fit_time": st.column_config.NumberColumn("fit time", format="%.3f s"),
              "mean_train_loss": st.column_config.NumberColumn("train loss", format="%.4f")}
    event = st.dataframe(table, hide_index=True, column_config=config, key=key(
        f"rows_{sweep.name}"), on_select="rerun", selection_mode="multi-row")
    rows = getattr(getattr(event, "selection", None), "rows", None) or []
    picked = table.iloc[rows] if rows else None
    with st.container(horizontal=True):
        st.download_button("Download CSV", result.table.to_csv(index=False).encode(),
                           file_name=f"sweep-{sweep.name}.csv", mime="text/csv",
                           icon=":material/download:", key=key("download"))
        # a plain link per selected row, besides the table's own links
        for _, row in (picked.head(3) if picked is not None else table.head(0)).iterrows():
            st.link_button(f"{labels.pair_label((row['activation'], row['optimizer']))} · "
                           f"{cv_charts.describe(row)}", row["playground"],
                           icon=":material/open_in_new:", help="open in the Playground")
    return picked


def saved_ui(saved: list[sweeps.SweepInfo], active: set[str]) -> None:
    st.header("Sweeps")
    if not saved:
        st.info("No saved sweeps yet: set one up above and press **Launch**.")
        return
    by_name = {s.name: s for s in saved}
    if st.session_state.get(SELECTED) not in by_name:
        st.session_state[SELECTED] = saved[0].name
    name = st.selectbox("Saved sweep", list(by_name), key=SELECTED,
                        format_func=lambda n: by_name[n].label(),
                        help=f"every sweep saved under {sweeps.results_root()}, newest first")
    with st.expander(f"All saved sweeps ({len(saved)})", icon=":material/folder_open:"):
        st.dataframe(sweeps.overview(saved), hide_index=True, key=key("overview"))
    try:
        sweep, result = sweeps.load(by_name[name].folder, active)
    except (OSError, ValueError) as error:
        st.error(f"Could not read this sweep: {error}", icon=":material/error:")
        return
    status_ui(sweep, name in active)
    if not result.results:
        return
    if name in active:
        st.caption("Results so far (they grow as populations finish; the page refreshes "
                   "when the sweep stops).")
    optimal_ui(result)
    chart_slot = st.container()
    st.subheader("All configurations")
    st.caption("Click a column to sort; **open** trains that configuration in the "
               "Playground (in a new tab). Select rows to compare their folds above. "
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
    active = jobs().active()
    saved = sweeps.list_sweeps(active=active)
    new_sweep_ui(expanded=not saved)
    saved_ui(saved, active)


main()
