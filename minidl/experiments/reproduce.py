"""Reproduce the seed report: every activation × optimizer pair trained R times.

For each pair, R runs (default 10), each with a fresh data draw (1000 training
and 1000 test points on the disk) and a fresh initialisation, all seeded so the
whole study is reproducible.  The R runs of a pair are one population
(``minidl.population``).  Results: per-run final metrics, per-epoch training
loss (the report's Fig. 3), and a summary of mean ± standard error per pair
(its Fig. 2), beside the report's numbers.

Configurations come from the report's Table I (``PAPER_CONFIGS``) or from the
optimal table of a saved cross-validation sweep (``configs_from_sweep``).
Figures are drawn by ``minidl.viz.study``; saving and resuming a study as a job
is ``minidl.studies``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from .. import data, hparams, jobs
from ..engine import fit as pop
from ..jobs import limits, tasks
from . import cv, sweeps

Pair = hparams.Pair
PAIRS = [(a, o) for a in hparams.REPORT_ACTIVATIONS for o in hparams.OPTIMIZERS]

# The seed report's Table I: optimal settings found by its 5-fold cross-validation.
PAPER_CONFIGS: dict[Pair, dict] = {
    ("relu", "sgd"): {"lr": 1e-3, "batch_size": 1},
    ("tanh", "sgd"): {"lr": 1e-2, "batch_size": 1},
    ("sigmoid", "sgd"): {"lr": 1e-2, "batch_size": 20},
    ("relu", "adam"): {"lr": 1e-4, "beta1": 0.9, "beta2": 0.999, "eps": 1e-9, "batch_size": 20},
    ("tanh", "adam"): {"lr": 1e-4, "beta1": 0.8, "beta2": 0.999, "eps": 1e-9, "batch_size": 10},
    ("sigmoid", "adam"): {"lr": 1e-4, "beta1": 0.8, "beta2": 0.99, "eps": 1e-9, "batch_size": 20},
    ("relu", "rmsprop"): {"lr": 1e-4, "rho": 0.9, "eps": 1e-9, "batch_size": 20},
    ("tanh", "rmsprop"): {"lr": 1e-3, "rho": 0.9, "eps": 1e-9, "batch_size": 20},
    ("sigmoid", "rmsprop"): {"lr": 1e-4, "rho": 0.9, "eps": 1e-9, "batch_size": 20},
}
# What the report states of its Fig. 2: every pair at or above 96.9 % mean test
# accuracy over 10 runs, the best being SGD + Tanh at 98.49 %.
PAPER_MIN_ACCURACY = hparams.REPORT_MIN_ACCURACY
PAPER_ACCURACY = {("tanh", "sgd"): 0.9849}

N_TRAIN = N_TEST = 1000
# a run's result columns (``Study.runs`` also has its pair's configuration)
RUN_COLUMNS = ["activation", "optimizer", "run", "test_acc", "train_acc", "final_loss",
               "diverged"]


def configs_from_sweep(folder: str | Path) -> dict[Pair, dict]:
    """The chosen (rank 1) configuration of every pair in a saved sweep."""
    if not Path(folder).is_dir():
        raise FileNotFoundError(f"no saved sweep at {folder}")
    result = sweeps.load(folder)
    configs = {pair: r.best_config for pair, r in result.results.items() if r.best_config}
    if not configs:
        raise ValueError(f"no finished, non-diverged configurations in sweep {folder}")
    return configs


def pair_steps(config: dict, runs: int, epochs: int) -> int:
    """Optimizer steps of one pair's study: runs × ``population.steps`` of one run."""
    return runs * pop.steps(N_TRAIN, cv.complete(config)["batch_size"], epochs)


def standard_error(values: list[float]) -> float:
    """Sample standard deviation (n − 1) over √n; 0 for a single value."""
    n = len(values)
    if n < 2:
        return 0.0
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) / math.sqrt(n)


@dataclass
class Study:
    """``runs``: one row per (pair, run); ``losses``: one row per (pair, run, epoch)."""

    runs: pd.DataFrame
    losses: pd.DataFrame
    epochs: int

    @property
    def summary(self) -> pd.DataFrame:
        """Per pair: mean ± SE of test and train accuracy, final loss, and the report's value."""
        rows = []
        for (a, o), group in self.runs.groupby(["activation", "optimizer"], sort=False):
            ok = group[~group["diverged"]]
            rows.append({
                "activation": a, "optimizer": o, "runs": len(group),
                "diverged": int(group["diverged"].sum()),
                "test_acc": ok["test_acc"].mean(), "test_acc_se": standard_error(
                    ok["test_acc"].tolist()),
                "train_acc": ok["train_acc"].mean(), "train_acc_se": standard_error(
                    ok["train_acc"].tolist()),
                "final_loss": ok["final_loss"].mean(),
                "paper_test_acc": PAPER_ACCURACY.get((a, o), math.nan),
            })
        return pd.DataFrame(rows)

    @property
    def loss_curves(self) -> pd.DataFrame:
        """Per pair and epoch: mean training loss and its standard error over runs."""
        grouped = self.losses.groupby(["activation", "optimizer", "epoch"], sort=False)
        out = grouped["train_loss"].agg(
            train_loss="mean", train_loss_se=lambda s: standard_error(s.dropna().tolist()))
        return out.reset_index()


def draws(runs: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, list[tuple]]:
    """``runs`` draws of the disk task, one per run: all their points ``X``, ``y`` and, per
    run ``r``, ``(training rows, test rows, seed)`` with seed ``seed·1000 + r`` (the same
    draw, and init seed, for every pair and convention)."""
    seeds = [seed * 1000 + r for r in range(runs)]
    sets = [data.train_test("disk", N_TRAIN, N_TEST, s) for s in seeds]
    X = torch.cat([torch.cat([Xtr, Xte]) for Xtr, _, Xte, _ in sets])
    y = torch.cat([torch.cat([ytr, yte]) for _, ytr, _, yte in sets])
    block = N_TRAIN + N_TEST
    return X, y, [(torch.arange(r * block, r * block + N_TRAIN),
                   torch.arange(r * block + N_TRAIN, (r + 1) * block), s)
                  for r, s in enumerate(seeds)]


def train_runs(pair: Pair, config: dict, runs: int, epochs: int, seed: int = 0, *,
               progress: pop.Progress | None = None, resume: dict | None = None,
               pause_after: float | None = None) -> tuple[list[dict], list[dict]]:
    """One pair's ``runs`` runs of ``config`` for ``epochs`` epochs, as one population: its
    loss rows (one per run and epoch) and run rows.  Run ``r`` uses data seed and init
    seed ``seed·1000 + r``, whatever the pair, so all pairs see the same data draws.  Plain
    values in and out: a task (``minidl.jobs.tasks``) that a Dask worker can run too;
    ``resume`` and ``pause_after`` as in ``engine.fit.fit``."""
    if not isinstance(runs, int) or isinstance(runs, bool) or runs < 1:
        raise ValueError(f"runs must be a positive integer, got {runs!r}")
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    activation, optimizer = pair
    X, y, rows = draws(runs, seed)
    settings = {**cv.complete(config), "activation": activation, "optimizer": optimizer}
    members = [pop.Member(settings, *run) for run in rows]
    results = pop.fit(X, y, members, cv.SIZES, epochs, history=True,
                      memory=limits.job_memory(), progress=progress, resume=resume,
                      pause_after=pause_after)
    run_rows, loss_rows = [], []
    for r, result in enumerate(results):
        run_rows.append({"activation": activation, "optimizer": optimizer, "run": r,
                         "test_acc": result.eval_acc, "train_acc": result.train_acc,
                         "final_loss": result.train_loss, "diverged": result.diverged,
                         **config})
        loss_rows += [{"activation": activation, "optimizer": optimizer, "run": r,
                       "epoch": e + 1, "train_loss": v}
                      for e, v in enumerate(result.train_loss_history)]
    return loss_rows, run_rows


def run_study(configs: dict[Pair, dict], runs: int = 10, epochs: int = 100,
              seed: int = 0, pairs: list[Pair] | None = None,
              progress: pop.Progress | None = None,
              workers: int = tasks.DEFAULT_WORKERS) -> Study:
    """Train every pair ``runs`` times with its configuration for ``epochs`` epochs
    (``train_runs``, one task per pair, ``workers`` at a time on threads)."""
    pairs = [p for p in (pairs or PAIRS) if p in configs]
    if not pairs:
        raise ValueError("no settings for any of the requested activation × optimizer pairs")
    work = [tasks.Task(jobs.part_name(p), pair_steps(configs[p], runs, epochs), train_runs,
                       (p, dict(configs[p]), runs, epochs, seed)) for p in pairs]
    done: dict[str, tuple[list[dict], list[dict]]] = {}
    with tasks.pool(workers=workers) as where:
        tasks.run(work, lambda task, rows: done.__setitem__(task.part, rows), where, progress)
    losses = [row for p in pairs for row in done[jobs.part_name(p)][0]]
    runs_ = [row for p in pairs for row in done[jobs.part_name(p)][1]]
    return Study(pd.DataFrame(runs_), pd.DataFrame(losses), epochs)


def percent(mean: float, se: float | None = None) -> str:
    """``0.9849, 0.0012`` → ``"98.49 ± 0.12"``; ``"—"`` for a missing mean."""
    if mean is None or not math.isfinite(mean):
        return "—"
    return f"{100 * mean:.2f}" + ("" if se is None or not math.isfinite(se)
                                  else f" ± {100 * se:.2f}")


def table(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary for people: percentages as mean ± SE, the report's value beside."""
    rows = []
    for row in summary.to_dict("records"):
        paper = row["paper_test_acc"]
        report = percent(paper) if not math.isnan(paper) else f"≥ {100 * PAPER_MIN_ACCURACY:.1f}"
        diverged = f" ({row['diverged']} of {row['runs']} runs diverged)" if row["diverged"] else ""
        rows.append([row["activation"], row["optimizer"],
                     percent(row["test_acc"], row["test_acc_se"]) + diverged,
                     percent(row["train_acc"], row["train_acc_se"]), f"{row['final_loss']:.4f}",
                     report])
    return pd.DataFrame(rows, columns=["activation", "optimizer", "test accuracy % (mean ± SE)",
                                       "train accuracy %", "final train loss", "report %"])


def markdown_table(summary: pd.DataFrame) -> str:
    """The summary as a Markdown table (``table``)."""
    return markdown(table(summary))


def markdown(table: pd.DataFrame) -> str:
    """A table of text as Markdown."""
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in table.values.tolist()]
    return "\n".join(lines) + "\n"


def configs_frame(configs: dict[Pair, dict]) -> pd.DataFrame:
    return pd.DataFrame([{"activation": a, "optimizer": o, **c} for (a, o), c in configs.items()])


def save_tables(study: Study, folder: str | Path, configs: dict[Pair, dict],
                source: str) -> list[Path]:
    """Write the study's tables: CSV files and ``summary.md`` (figures: ``minidl.viz.study``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tables = {"summary.csv": study.summary, "runs.csv": study.runs, "losses.csv": study.losses,
              "settings.csv": configs_frame(configs)}
    for name, frame in tables.items():
        frame.to_csv(folder / name, index=False)
    (folder / "summary.md").write_text(
        f"Settings: {source}; {study.runs['run'].nunique()} runs per pair; "
        f"{study.epochs} epochs.\n\n" + markdown_table(study.summary))
    return [folder / name for name in (*tables, "summary.md")]


# what each column of a saved study's files holds (``jobs.read_rows``)
_PAIR_COLUMNS = {"activation": "text", "optimizer": "text", "run": "count"}
RUNS_SCHEMA = {**_PAIR_COLUMNS, "test_acc": "score", "train_acc": "score",
               "final_loss": "number", "diverged": "flag"}
LOSSES_SCHEMA = {**_PAIR_COLUMNS, "epoch": "count", "train_loss": "number"}


def check_runs(table: pd.DataFrame, where: str) -> pd.DataFrame:
    """Run rows (text, as ``jobs.read_table`` reads them) as values: one row per finished run
    (``jobs.Damaged`` naming ``where`` if one is damaged)."""
    return _known_pairs(jobs.check_columns(table, where, RUNS_SCHEMA), where)


def check_losses(table: pd.DataFrame, where: str) -> pd.DataFrame:
    """Loss rows as values: one row per run and epoch (``jobs.Damaged`` naming ``where``)."""
    return _known_pairs(jobs.check_columns(table, where, LOSSES_SCHEMA), where)


def _known_pairs(table: pd.DataFrame, file: str) -> pd.DataFrame:
    """``table`` if every row is of one of the report's pairs, else ``jobs.Damaged``."""
    if not table.empty:
        known = pd.Series(list(zip(table["activation"], table["optimizer"])),
                          index=table.index).isin(PAIRS)
        if not known.all():
            row = known.idxmin()
            pair = f"{table['activation'][row]}-{table['optimizer'][row]}"[:40]
            raise jobs.Damaged(f"{file} line {row}: {pair!r} is not a known pair")
    return table


def load_study(folder: str | Path) -> Study:
    """A study's runs and losses from its files, ``runs.csv`` and ``losses.csv`` (an export,
    or files a person brings; ``jobs.Damaged`` if a file is damaged)."""
    folder = Path(folder)
    return study(check_runs(jobs.read_table(folder / "runs.csv"), "runs.csv"),
                 check_losses(jobs.read_table(folder / "losses.csv"), "losses.csv"))


def study(runs: pd.DataFrame, losses: pd.DataFrame) -> Study:
    """A ``Study`` of checked run and loss rows (either may be empty)."""
    if runs.empty:
        runs = pd.DataFrame(columns=list(RUNS_SCHEMA))
    if losses.empty:
        losses = pd.DataFrame(columns=list(LOSSES_SCHEMA))
    return Study(runs, losses, int(losses["epoch"].max()) if len(losses) else 0)
