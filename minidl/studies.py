"""Saved reproduction studies: a plan on disk, a background runner, the work cap.

A *study* is ``minidl.reproduce.run_study`` for some activation × optimizer
pairs, each with its settings (the report's Table I or a saved sweep's optimal
table), ``runs`` runs of ``epochs`` epochs.  Each study lives in a folder of its
own under ``<results root>/reproductions`` (``minidl.jobs.results_root``)::

    <root>/reproductions/20250101-120000-3fa9c1/
        study.json            plan (settings per pair, runs, epochs, seed),
                              creation time, status, pairs finished
        summary.csv runs.csv losses.csv settings.csv summary.md
        fig2_accuracy.html/.png fig3_loss.html/.png      (``reproduce.save_study``)

The runner trains one pair after another.  Run ``r`` of every pair uses the
same seed (``reproduce.run_study``), so training pair by pair gives exactly the
numbers of one call with all pairs — and a cancelled study keeps (and saves)
the pairs it finished.

Cost: ``runs × epochs × ⌈1000 / batch size⌉`` optimizer steps per pair, summed
over pairs, bounded by ``$MINIDL_STUDY_CAP`` (default 3 000 000; the report's
full study — 9 pairs, 10 runs, 100 epochs — is 2 400 000 steps, ~1.5 min here).

No Streamlit here: a page polls a ``StudyRunner`` (a ``minidl.jobs.Runner``,
like the sweep runner) for progress and never gets called back.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd

from . import jobs, reproduce
from .labels import pair_label
from .sweeps import LABELS

CAP_ENV = "MINIDL_STUDY_CAP"
DEFAULT_CAP = 3_000_000  # optimizer steps summed over runs and pairs
SUBFOLDER = "reproductions"
META = jobs.MetaFile("study.json")
PAPER = "paper"  # the ``source`` of the report's Table I preset

Pair = tuple[str, str]



# ---------------------------------------------------------------- plan and cost

@dataclass(frozen=True)
class Plan:
    """What a study trains: settings per pair (in run order), runs, epochs and seed.

    ``source`` is ``PAPER`` or the name of the saved sweep the settings came
    from; ``source_label`` says it in words (it heads the saved ``summary.md``).
    """

    settings: Mapping[Pair, Mapping]
    runs: int = 10
    epochs: int = 100
    seed: int = 0
    source: str = PAPER
    source_label: str = "the report's Table I"

    def __post_init__(self) -> None:
        if not self.settings:
            raise ValueError("choose at least one activation × optimizer pair")
        for pair in self.settings:
            if pair not in reproduce.PAIRS:
                raise ValueError(f"unknown activation × optimizer pair {pair!r}")
        for name, low in (("runs", 1), ("epochs", 1), ("seed", 0)):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {v!r}")
        object.__setattr__(self, "settings", {tuple(p): dict(s)
                                              for p, s in self.settings.items()})

    @property
    def pairs(self) -> list[Pair]:
        return list(self.settings)

    def to_dict(self) -> dict:
        return {"settings": [{"activation": a, "optimizer": o, **s}
                             for (a, o), s in self.settings.items()],
                "runs": self.runs, "epochs": self.epochs, "seed": self.seed,
                "source": self.source, "source_label": self.source_label}

    @classmethod
    def from_dict(cls, d: Mapping) -> Plan:
        settings = {}
        for row in d["settings"]:
            row = dict(row)
            settings[(row.pop("activation"), row.pop("optimizer"))] = row
        return cls(settings, int(d["runs"]), int(d["epochs"]), int(d.get("seed", 0)),
                   d.get("source", PAPER), d.get("source_label", ""))



def work_cap() -> int:
    """The most optimizer steps a study may ask for: ``$MINIDL_STUDY_CAP`` or 3 000 000."""
    return jobs.work_cap(CAP_ENV, DEFAULT_CAP)


@dataclass(frozen=True)
class Estimate:
    """The size of a study before it runs."""

    pairs: int
    runs: int
    epochs: int
    steps: int   # optimizer steps summed over pairs and runs: what the cap bounds
    cap: int

    @property
    def allowed(self) -> bool:
        return self.steps <= self.cap

    def describe(self) -> str:
        return (f"{self.pairs} pair{'s' * (self.pairs != 1)} × {self.runs} runs × "
                f"{self.epochs} epochs = {self.steps:,} optimizer steps "
                f"(cap {self.cap:,})")


def estimate(plan: Plan, cap: int | None = None) -> Estimate:
    steps = sum(reproduce.pair_steps(s, plan.runs, plan.epochs) for s in plan.settings.values())
    return Estimate(len(plan.settings), plan.runs, plan.epochs, steps,
                    work_cap() if cap is None else cap)


# ---------------------------------------------------------------- persistence

def studies_root() -> Path:
    """``<results root>/reproductions`` (results root: ``minidl.jobs.results_root``)."""
    return jobs.results_root() / SUBFOLDER


read_meta, update_meta = META.read, META.update


def new_study(plan: Plan, root: str | Path | None = None) -> Path:
    """Create a study's folder with its ``study.json`` (status "created"); return the folder."""
    return META.create(Path(root) if root is not None else studies_root(),
                       {**plan.to_dict(), "pairs_done": 0})


@dataclass(frozen=True)
class StudyInfo:
    """One saved study as the list shows it."""

    folder: Path
    plan: Plan
    created: str
    status: str       # created, queued, running, finished, cancelled, failed, interrupted
    pairs_done: int
    error: str | None = None

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def has_results(self) -> bool:
        return (self.folder / "runs.csv").is_file() and (self.folder / "losses.csv").is_file()

    def label(self) -> str:
        """Creation time and plan (not the status, which changes while a list is shown)."""
        p = self.plan
        n = len(p.settings)
        return (f"{self.created.replace('T', ' ')[:16]} · {p.source_label}, {n} pair"
                f"{'s' * (n != 1)}, {p.runs} runs × {p.epochs} epochs")


def info(folder: str | Path, active: Collection[str] = ()) -> StudyInfo:
    """A study's plan and status; ``active``: names a runner works on now (a study whose
    file says queued/running but is not among them was interrupted by a restart)."""
    folder = Path(folder)
    meta = read_meta(folder)
    return StudyInfo(folder, Plan.from_dict(meta), meta.get("created", ""),
                     jobs.status(meta, folder, active), int(meta.get("pairs_done", 0)),
                     meta.get("error"))


def list_studies(root: str | Path | None = None, active: Collection[str] = ()) -> list[StudyInfo]:
    """Every saved study under ``root``, newest first; unreadable folders are skipped."""
    return META.list(Path(root) if root is not None else studies_root(),
                     lambda folder: info(folder, active))


def load(folder: str | Path) -> reproduce.Study | None:
    """The study's results (``reproduce.load_study``), or None while it has none on disk."""
    folder = Path(folder)
    if not ((folder / "runs.csv").is_file() and (folder / "losses.csv").is_file()):
        return None
    study = reproduce.load_study(folder)
    # a CSV read back may hold the flag as text when a column was all-empty
    study.runs["diverged"] = study.runs["diverged"].astype(str).str.lower() == "true"
    return study


# ---------------------------------------------------------------- tables for people

def _pct(mean: float, se: float | None = None) -> str:
    if mean is None or not math.isfinite(mean):
        return "—"
    return f"{100 * mean:.2f}" + ("" if se is None or not math.isfinite(se)
                                  else f" ± {100 * se:.2f}")


def summary_table(summary: pd.DataFrame) -> pd.DataFrame:
    """``Study.summary`` as text, one row per pair: mean ± SE (%), final loss, the report's %."""
    rows = []
    for r in summary.to_dict("records"):
        paper = r["paper_test_acc"]
        loss = r["final_loss"]
        rows.append({
            "pair": pair_label((r["activation"], r["optimizer"])),
            "test accuracy % (mean ± SE)": _pct(r["test_acc"], r["test_acc_se"]),
            "train accuracy % (mean ± SE)": _pct(r["train_acc"], r["train_acc_se"]),
            "final train loss": f"{loss:.4f}" if math.isfinite(loss) else "—",
            "report %": (_pct(paper) if math.isfinite(paper)
                         else f"≥ {100 * reproduce.PAPER_MIN_ACCURACY:.1f}"),
            "diverged runs": f"{r['diverged']} of {r['runs']}",
        })
    return pd.DataFrame(rows)


SETTING_COLUMNS = ["lr", "batch_size", "momentum", "beta1", "beta2", "rho", "eps", "gain"]


def settings_table(settings: Mapping[Pair, Mapping]) -> pd.DataFrame:
    """The hyperparameters of each pair as text (blank where the optimizer has none)."""
    keys = [k for k in SETTING_COLUMNS if any(k in s for s in settings.values())]
    keys += sorted({k for s in settings.values() for k in s} - set(keys))
    rows = []
    for pair, s in settings.items():
        row = {"pair": pair_label(pair)}
        for k in keys:
            v = s.get(k)
            missing = v is None or (isinstance(v, float) and math.isnan(v))
            row[LABELS.get(k, k)] = "" if missing else (
                str(int(v)) if k == "batch_size" else f"{v:g}" if isinstance(v, float) else str(v))
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- running

def _combine(parts: list[reproduce.Study], epochs: int) -> reproduce.Study:
    return reproduce.Study(pd.concat([p.runs for p in parts], ignore_index=True),
                           pd.concat([p.losses for p in parts], ignore_index=True), epochs)


class StudyRunner(jobs.Runner):
    """Runs one saved study, one pair after another (``jobs.Runner``); the finished pairs'
    runs and losses are written after each pair, and when it stops, their tables and
    figures (``reproduce.save_study``)."""

    meta = META

    def __init__(self, folder: str | Path):
        self.plan = Plan.from_dict(read_meta(folder))
        self.studies: list[reproduce.Study] = []  # one per finished pair
        super().__init__(folder)

    def parts(self) -> list[jobs.Part]:
        plan = self.plan

        def train(report: jobs.Report, pair: Pair) -> None:
            self.studies.append(reproduce.run_study(plan.settings, plan.runs, plan.epochs,
                                                    plan.seed, [pair], progress=report))
            # the tables after every pair, so a crash or restart keeps the finished ones
            # (the figures and summary follow in ``finish``)
            so_far = _combine(self.studies, plan.epochs)
            so_far.runs.to_csv(Path(self.folder) / "runs.csv", index=False)
            so_far.losses.to_csv(Path(self.folder) / "losses.csv", index=False)
            update_meta(self.folder, pairs_done=len(self.studies))

        return [(reproduce.pair_steps(plan.settings[pair], plan.runs, plan.epochs),
                 partial(train, pair=pair)) for pair in plan.pairs]

    def finish(self, status: str, error: str | None) -> dict:
        plan, finished = self.plan, self.studies
        if finished:
            try:
                done = {p: plan.settings[p] for p in plan.pairs[:len(finished)]}
                reproduce.save_study(_combine(finished, plan.epochs), self.folder, done,
                                     plan.source_label)
            except Exception as e:
                status, error = "failed", f"saving the results: {type(e).__name__}: {e}"
        return {"status": status, "error": error, "pairs_done": len(finished)}


class StudyJobs(jobs.Jobs[StudyRunner]):
    """The process's study runners and their one worker thread (``jobs.Jobs``)."""

    runner = StudyRunner
