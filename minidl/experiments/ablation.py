"""Ablation: the report's Table I under each convention it leaves unstated.

The report gives Table I's hyperparameters but not how its MSE is reduced,
how its Xavier formula is read, whether biases are drawn, how targets and
inputs are encoded, or how long it trains.  Each of those is a setting of the
settings table (``hparams.TABLE[...].convention``).  An ablation trains every
pair's Table I configuration ``runs`` times under each *knob* — one convention
changed from our reading at a time — and then under the *best combination*
(for each setting, the value that brought the most pairs to the report's
96.9 %, then the highest mean accuracy, if it beats our reading).

All of a pair's knobs and runs train as one population (``population.fit``):
conventions are per-member, so ten knobs cost little more than one.  Test
accuracy is recorded at every budget in ``budgets`` and, for the Sigmoid pairs
(``LONG_ACTIVATIONS``: under our reading they sit on the loss plateau of 0.25 at
400 epochs, so a longer budget is where it could matter), at ``long_epochs``.

``ABLATION`` is a saved-job kind (``minidl.jobs``) in two stages: every pair's
knobs, then every pair's best combination::

    <results root>/ablations/20250101-120000-3fa9c1/
        ablation.json          spec, status
        accuracy.csv           one row per (pair, convention, run, budget), appended
        summary.csv summary.md when the job stops
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .. import hparams, jobs
from ..engine import fit as pop
from ..jobs import limits, tasks
from . import cv, reproduce

Pair = hparams.Pair
# one convention changed at a time from our reading ({}); gain widens the init variance
KNOBS: tuple[dict, ...] = (
    {}, {"loss": "sum"}, {"loss": "batch_mean"}, {"targets": "signed"},
    {"init_scale": "std"}, {"init_dist": "uniform"}, {"init_bias": "zero"},
    {"inputs": "standardised"}, {"gain": 4.0}, {"gain": 16.0},
)
OURS = "as we read it"
BEST = "best combination"
LONG_ACTIVATIONS = ("sigmoid",)
REPORT_FLOOR, REPORT_SGD_TANH = reproduce.PAPER_MIN_ACCURACY, reproduce.PAPER_ACCURACY[
    ("tanh", "sgd")]


def knob_name(changes: Mapping) -> str:
    """``{"loss": "sum"}`` → ``"MSE: sum over all elements"``; ``{}`` → ``"as we read it"``."""
    if not changes:
        return OURS
    return "; ".join(f"{hparams.symbol(k)}: {hparams.display(k, v)}" for k, v in changes.items())


@dataclass(frozen=True)
class AblationSpec:
    """What an ablation trains: the knobs, runs per pair and knob, budgets, seed, pairs."""

    knobs: tuple[Mapping, ...] = KNOBS
    runs: int = 10
    budgets: tuple[int, ...] = (200, 400)
    long_epochs: int = 2000
    seed: int = 0
    pairs: tuple[Pair, ...] = field(default_factory=lambda: tuple(reproduce.PAIRS))

    def __post_init__(self) -> None:
        knobs = tuple(hparams.check_all(dict(k)) for k in self.knobs)
        if not knobs or knobs[0] != {}:
            raise ValueError("the first knob must be {} (our reading, the baseline)")
        budgets = tuple(sorted({hparams.check("epochs", b) for b in self.budgets}))
        if not budgets:
            raise ValueError("give at least one epoch budget")
        pairs = tuple(tuple(p) for p in self.pairs)
        unknown = [p for p in pairs if p not in reproduce.PAIRS]
        if unknown or not pairs:
            raise ValueError(f"pairs must be some of the report's nine, got {unknown or pairs}")
        jobs.check_counts(self, ("runs", "long_epochs", "seed"))
        object.__setattr__(self, "knobs", knobs)
        object.__setattr__(self, "budgets", budgets)
        object.__setattr__(self, "pairs", pairs)

    def epochs_for(self, pair: Pair) -> int:
        """How long ``pair`` trains: the longest budget, or ``long_epochs`` for the pairs
        whose activation is in ``LONG_ACTIVATIONS``."""
        return max(*self.budgets, self.long_epochs if pair[0] in LONG_ACTIVATIONS else 0)

    def to_dict(self) -> dict:
        return {"knobs": [dict(k) for k in self.knobs], "runs": self.runs,
                "budgets": list(self.budgets), "long_epochs": self.long_epochs,
                "seed": self.seed, "pairs": [list(p) for p in self.pairs]}

    @classmethod
    def from_dict(cls, d: Mapping) -> AblationSpec:
        """``to_dict`` read back; ``ValueError`` for a field of the wrong type or value."""
        shapes = {"knobs": (Mapping, "settings"), "budgets": (int, "epoch budgets"),
                  "pairs": (list, "[activation, optimizer] pairs")}
        for name, (kind, what) in shapes.items():
            if not (isinstance(d.get(name), list) and all(isinstance(v, kind) for v in d[name])):
                raise ValueError(f"{name} must be a list of {what}")
        return cls(tuple(d["knobs"]), int(d["runs"]), tuple(d["budgets"]),
                   int(d["long_epochs"]), int(d.get("seed", 0)),
                   tuple(tuple(p) for p in d["pairs"]))


def train_pair(pair: Pair, knobs: list[tuple[str, Mapping]], runs: int, epochs: int,
               budgets: list[int], seed: int = 0, *, progress: pop.Progress | None = None,
               resume: dict | None = None, pause_after: float | None = None) -> list[dict]:
    """Train ``pair``'s Table I configuration under each named knob, ``runs`` times, as one
    population; rows of test accuracy at each budget.  Run ``r`` of every knob sees the same
    data draw and init seed (``reproduce.draws``).  Plain values in and out: a task
    (``AblationKind.tasks``); ``resume`` and ``pause_after`` as in ``engine.fit.fit``."""
    pair = (pair[0], pair[1])
    X, y, rows = reproduce.draws(runs, seed)
    members, labels = [], []
    for name, changes in knobs:
        settings = {**cv.complete({**reproduce.PAPER_CONFIGS[pair], **changes}),
                    "activation": pair[0], "optimizer": pair[1]}
        for r, run in enumerate(rows):
            members.append(pop.Member(settings, *run))
            labels.append((name, r))
    budgets = sorted({b for b in budgets if b <= epochs})
    results = pop.fit(X, y, members, cv.SIZES, epochs, checkpoints=budgets,
                      memory=limits.job_memory(), progress=progress, resume=resume,
                      pause_after=pause_after)
    return [{"activation": pair[0], "optimizer": pair[1], "convention": name, "run": r,
             "epochs": b, "test_acc": result.eval_acc_at[b],
             "diverged": math.isnan(result.eval_acc_at[b])}
            for (name, r), result in zip(labels, results) for b in budgets]


ACCURACY_SCHEMA = {"activation": "text", "optimizer": "text", "convention": "text",
                   "run": "count", "epochs": "count", "test_acc": "score", "diverged": "flag"}


def read_accuracy(folder: str | Path) -> pd.DataFrame:
    """A saved ablation's accuracy rows (a diverged run's accuracy is empty): from the store
    for a saved job, else from the folder's ``accuracy.csv``; ``jobs.Damaged`` if damaged."""
    try:
        return stored(jobs.open_job(ABLATION, folder)[0])
    except FileNotFoundError:
        return jobs.read_rows(Path(folder) / "accuracy.csv", ACCURACY_SCHEMA)


def stored(job: jobs.Saved) -> pd.DataFrame:
    return jobs.check_columns(jobs.frame(job.rows("accuracy")), "the accuracy rows",
                              ACCURACY_SCHEMA)


def best_combination(accuracy: pd.DataFrame, spec: AblationSpec) -> dict:
    """For each setting the knobs change, the value that brought the most pairs to 96.9 %,
    then the highest mean accuracy, at the longest common budget — kept if it beats ours
    (none before any knob is saved)."""
    if accuracy.empty:
        return {}
    budget = max(spec.budgets)
    at = accuracy[(accuracy["epochs"] == budget) & (accuracy["convention"] != BEST)]
    means = at.groupby(["convention", "activation", "optimizer"])["test_acc"].mean()
    score = {name: ((group >= REPORT_FLOOR).sum(), group.mean())
             for name, group in means.groupby(level="convention")}
    combination = {}
    for key in dict.fromkeys(k for knob in spec.knobs for k in knob):
        candidates = [knob for knob in spec.knobs if key in knob and knob_name(knob) in score]
        if not candidates:
            continue
        best = max(candidates, key=lambda knob: score[knob_name(knob)])
        if score[knob_name(best)] > score.get(OURS, (-1, -1.0)):
            combination[key] = best[key]
    return combination


class AblationKind(jobs.Kind):
    """Ablations as saved jobs: stage 1 trains each pair's knobs, stage 2 its best combination."""

    name, folder, meta_name, unit = "ablation", "ablations", "ablation.json", "run"
    cap_env = "MINIDL_ABLATION_CAP"

    def spec_from_dict(self, d: Mapping) -> AblationSpec:
        return AblationSpec.from_dict(d)

    def describe(self, spec: AblationSpec) -> str:
        return (f"{len(spec.knobs)} conventions × {len(spec.pairs)} pairs × {spec.runs} runs, "
                f"{', '.join(map(str, spec.budgets))} epochs")

    def parts(self, spec: AblationSpec) -> list[str]:
        return [p for stage in self.stages(spec) for p in stage]

    def stages(self, spec: AblationSpec) -> list[list[str]]:
        return [[f"knobs:{jobs.part_name(p)}" for p in spec.pairs],
                [f"best:{jobs.part_name(p)}" for p in spec.pairs]]

    def _knobs(self, part: str, spec: AblationSpec) -> int:
        return len(spec.knobs) if part.startswith("knobs:") else 1

    def units(self, spec: AblationSpec, part: str) -> int:
        return self._knobs(part, spec) * spec.runs

    def _done(self, spec: AblationSpec, part: str, table: pd.DataFrame) -> bool:
        """Whether ``table`` (the stored accuracy rows) holds every unit of ``part``."""
        stage, pair = part.split(":", 1)
        if table.empty:
            return False
        rows = table[(table["activation"] + "-" + table["optimizer"] == pair)
                     & ((table["convention"] == BEST) == (stage == "best"))]
        return rows[["convention", "run"]].drop_duplicates().shape[0] >= self.units(spec, part)

    def done_by_part(self, spec: AblationSpec, job: jobs.Saved) -> dict[str, int]:
        table = stored(job)
        return {part: self.units(spec, part) if self._done(spec, part, table) else 0
                for part in self.parts(spec)}

    def steps(self, spec: AblationSpec, part: str, job: jobs.Saved | None = None) -> int:
        if job is not None:  # what is left: a part-trained pair's checkpoint counts
            return sum(t.cost for t in self.tasks(spec, part, job))
        pair = jobs.part_pair(part.split(":", 1)[1])
        return self.units(spec, part) * pop.steps(
            reproduce.N_TRAIN, reproduce.PAPER_CONFIGS[pair]["batch_size"], spec.epochs_for(pair))

    def tasks(self, spec: AblationSpec, part: str, job: jobs.Saved) -> list[tasks.Task]:
        """One task per unfinished part: a pair's knobs (or its best combination, known once
        every pair's knobs are saved), all its runs as one population."""
        table = stored(job)
        if self._done(spec, part, table):
            return []
        stage, name = part.split(":", 1)
        pair = jobs.part_pair(name)
        if stage == "knobs":
            knobs = [[knob_name(k), dict(k)] for k in spec.knobs]
        else:
            knobs = [[BEST, best_combination(table, spec)]]
        return job.resumed([tasks.Task(
            part, self.steps(spec, part, None), train_pair,
            (list(pair), knobs, spec.runs, spec.epochs_for(pair),
             [*spec.budgets, spec.long_epochs], spec.seed), units=self.units(spec, part))])

    def save(self, spec: AblationSpec, part: str, job: jobs.Saved, rows: list[dict]) -> None:
        job.add({"accuracy": rows}, self.units(spec, part))

    def read_folder(self, spec: AblationSpec, folder: Path) -> dict[str, list[dict]]:
        table = jobs.read_rows(folder / "accuracy.csv", ACCURACY_SCHEMA)
        return {"accuracy": table.to_dict("records")}

    def finish(self, spec: AblationSpec, job: jobs.Saved) -> None:
        """The accuracy rows, their summary and ``summary.md``, as files in the job's folder."""
        accuracy = stored(job)
        folder = job.folder
        if accuracy.empty:
            return
        table = summary(accuracy)
        accuracy.to_csv(folder / "accuracy.csv", index=False)
        table.to_csv(folder / "summary.csv", index=False)
        combination = best_combination(accuracy, spec)
        (folder / "summary.md").write_text(markdown(table, spec, combination))


ABLATION = AblationKind()


def summary(accuracy: pd.DataFrame) -> pd.DataFrame:
    """Per convention, pair and budget: mean test accuracy, its standard error, runs."""
    rows = []
    keys = ["convention", "activation", "optimizer", "epochs"]
    for (name, a, o, b), group in accuracy.groupby(keys, sort=False):
        ok = group[~group["diverged"].astype(str).str.lower().eq("true")]["test_acc"]
        rows.append({"convention": name, "activation": a, "optimizer": o, "epochs": int(b),
                     "test_acc": ok.mean() if len(ok) else math.nan,
                     "test_acc_se": reproduce.standard_error(ok.tolist()), "runs": len(group),
                     "diverged": len(group) - len(ok)})
    return pd.DataFrame(rows)


def wide(summary_table: pd.DataFrame, epochs: int) -> pd.DataFrame:
    """One budget as a table for people: a row per convention, a column per pair (mean ± SE
    in %), the pairs at or above 96.9 %, and SGD + Tanh's distance from the report's 98.49 %."""
    at = summary_table[summary_table["epochs"] == epochs]
    conventions = sorted(dict.fromkeys(at["convention"]), key=lambda c: c == BEST)  # BEST last
    pairs = sorted(dict.fromkeys(zip(at["activation"], at["optimizer"])),
                   key=reproduce.PAIRS.index)
    out = []
    for name in conventions:
        rows = at[at["convention"] == name]
        row = {"convention": name}
        for pair in pairs:
            r = rows[(rows["activation"] == pair[0]) & (rows["optimizer"] == pair[1])]
            row[hparams.pair_label(pair)] = (reproduce.percent(r["test_acc"].iloc[0],
                                                               r["test_acc_se"].iloc[0])
                                             if len(r) else "")
        row["pairs ≥ 96.9 %"] = f"{int((rows['test_acc'] >= REPORT_FLOOR).sum())} of {len(rows)}"
        if ("tanh", "sgd") in pairs:  # the report's one exact number
            tanh = rows[(rows["activation"] == "tanh") & (rows["optimizer"] == "sgd")]
            row["SGD + Tanh − 98.49"] = (
                f"{100 * (tanh['test_acc'].iloc[0] - REPORT_SGD_TANH):+.2f}" if len(tanh) else "")
        out.append(row)
    return pd.DataFrame(out)


def markdown(summary_table: pd.DataFrame, spec: AblationSpec, combination: Mapping) -> str:
    """Every budget's wide table in Markdown, and what the best combination was."""
    parts = [f"Table I settings, {spec.runs} runs per pair and convention; test accuracy % "
             f"(mean ± SE). Best combination: {knob_name(combination)}.\n"]
    for epochs in sorted(summary_table["epochs"].unique()):
        table = wide(summary_table, int(epochs))
        parts.append(f"\n**{int(epochs)} epochs**\n\n" + reproduce.markdown(table))
    return "".join(parts)

