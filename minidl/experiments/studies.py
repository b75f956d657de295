"""Studies: reproduction studies (``minidl.reproduce.run_study``) saved as jobs.

A *study* trains some activation × optimizer pairs, each with its
configuration (the report's Table I or a saved sweep's optimal table),
``runs`` runs of ``epochs`` epochs.  ``STUDY`` is its saved-job kind
(``minidl.jobs``), behind the app's Reproduce page and ``minidl reproduce``: its
runs and losses are saved in the store after every finished pair, and when it stops
its folder gets::

    <results root>/studies/20250101-120000-3fa9c1/
        study.json                   spec (configuration per pair, runs, epochs,
                                     seed, source), creation time, status
        runs.csv losses.csv          the finished pairs' runs and per-epoch losses
        summary.csv settings.csv summary.md

A part is a pair.  Run ``r`` of every pair uses the same seed
(``reproduce.run_study``), so training pair by pair gives exactly the numbers
of one call with all pairs — and a study that stopped resumes with the pairs
it has not finished.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .. import hparams, jobs
from ..engine import fit as pop
from ..jobs import tasks
from . import cv, reproduce

PAPER = "paper"  # the ``source`` of the report's Table I preset
Pair = hparams.Pair


@dataclass(frozen=True)
class StudySpec:
    """What a study trains: a configuration per pair (in run order), runs, epochs, seed.

    ``source`` is ``PAPER`` or the name of the saved sweep the configurations
    came from; ``source_label`` says it in words (it heads ``summary.md``).
    """

    configs: Mapping[Pair, Mapping]
    runs: int = 10
    epochs: int = 100
    seed: int = 0
    source: str = PAPER
    source_label: str = "the report's Table I"

    def __post_init__(self) -> None:
        if not self.configs:
            raise ValueError("choose at least one activation × optimizer pair")
        for pair, config in self.configs.items():
            if tuple(pair) not in reproduce.PAIRS:
                raise ValueError(f"unknown activation × optimizer pair {pair!r}")
            cv.complete(config)  # every value checked by the settings table
        jobs.check_counts(self, ("runs", "epochs", "seed"))
        object.__setattr__(self, "configs", {tuple(p): dict(c) for p, c in self.configs.items()})

    @property
    def pairs(self) -> list[Pair]:
        return list(self.configs)

    def to_dict(self) -> dict:
        return {"configs": [{"activation": a, "optimizer": o, **c}
                            for (a, o), c in self.configs.items()],
                "runs": self.runs, "epochs": self.epochs, "seed": self.seed,
                "source": self.source, "source_label": self.source_label}

    @classmethod
    def from_dict(cls, d: Mapping) -> StudySpec:
        """``to_dict`` read back; ``ValueError`` for a field of the wrong type or value."""
        rows = d.get("configs")
        if not isinstance(rows, list) or not all(
                isinstance(r, Mapping) and isinstance(r.get("activation"), str)
                and isinstance(r.get("optimizer"), str) for r in rows):
            raise ValueError("configs must be a list of settings, each with its activation "
                             "and optimizer")
        configs = {}
        for row in rows:
            row = dict(row)
            configs[(row.pop("activation"), row.pop("optimizer"))] = row
        for name in ("source", "source_label"):
            if not isinstance(d.get(name, ""), str):
                raise ValueError(f"{name} must be text")
        return cls(configs, d.get("runs"), d.get("epochs"), d.get("seed", 0),
                   d.get("source", PAPER), d.get("source_label", ""))


def paper_spec(runs: int = 10, epochs: int = 100, seed: int = 0) -> StudySpec:
    return StudySpec(reproduce.PAPER_CONFIGS, runs, epochs, seed)


def sweep_spec(folder: str | Path, runs: int = 10, epochs: int = 100, seed: int = 0
               ) -> StudySpec:
    """A study of the configurations a saved sweep chose (its optimal table)."""
    folder = Path(folder)
    return StudySpec(reproduce.configs_from_sweep(folder), runs, epochs, seed, folder.name,
                     f"cross-validation sweep {folder.name}")


def stored(job: jobs.Saved) -> reproduce.Study:
    """A saved study's runs and losses as saved (``jobs.Damaged`` if a row is damaged)."""
    return reproduce.study(reproduce.check_runs(jobs.frame(job.rows("runs")), "the runs"),
                           reproduce.check_losses(jobs.frame(job.rows("losses")), "the losses"))


def _finished_pairs(runs: pd.DataFrame, n: int) -> set[Pair]:
    """Pairs whose ``n`` runs are all in ``runs`` (a pair is saved at once)."""
    if runs.empty:
        return set()
    counts = runs[runs["run"] < n].groupby(["activation", "optimizer"])["run"].nunique()
    return {pair for pair, count in counts.items() if count == n}


class StudyKind(jobs.Kind):
    """Studies as saved jobs: a part per pair, a unit per run."""

    name, folder, meta_name, unit = "study", "studies", "study.json", "run"
    cap_env = "MINIDL_STUDY_CAP"

    def spec_from_dict(self, d: Mapping) -> StudySpec:
        return StudySpec.from_dict(d)

    def describe(self, spec: StudySpec) -> str:
        """``"the report's Table I · 9 pairs × 10 runs × 100 epochs"``."""
        n = len(spec.configs)
        return (f"{spec.source_label} · {n} pair{'s' * (n != 1)} × {spec.runs} "
                f"run{'s' * (spec.runs != 1)} × {spec.epochs} epoch{'s' * (spec.epochs != 1)}")

    def parts(self, spec: StudySpec) -> list[str]:
        return [jobs.part_name(p) for p in spec.pairs]

    def units(self, spec: StudySpec, part: str) -> int:
        return spec.runs

    def steps(self, spec: StudySpec, part: str, job: jobs.Saved | None = None) -> int:
        if job is None:
            return reproduce.pair_steps(spec.configs[jobs.part_pair(part)], spec.runs,
                                        spec.epochs)
        return sum(t.cost for t in self.tasks(spec, part, job))

    def _finished(self, spec: StudySpec, job: jobs.Saved) -> set[Pair]:
        runs = reproduce.check_runs(jobs.frame(job.rows("runs")), "the runs")
        return _finished_pairs(runs, spec.runs)

    def done_by_part(self, spec: StudySpec, job: jobs.Saved) -> dict[str, int]:
        finished = self._finished(spec, job)
        return {part: spec.runs if jobs.part_pair(part) in finished else 0
                for part in self.parts(spec)}

    def check(self, spec: StudySpec, job: jobs.Saved) -> None:
        stored(job)  # the losses too

    def tasks(self, spec: StudySpec, part: str, job: jobs.Saved) -> list[tasks.Task]:
        """One task per unfinished pair: its runs are one population, whose time goes
        mostly to per-step overhead (fewer runs a task would save little)."""
        pair = jobs.part_pair(part)
        if pair in self._finished(spec, job):
            return []
        cost = reproduce.pair_steps(spec.configs[pair], spec.runs, spec.epochs)
        return job.resumed([tasks.Task(part, cost, train_pair, (spec.to_dict(), pair),
                                       units=spec.runs)])

    def save(self, spec: StudySpec, part: str, job: jobs.Saved,
             rows: tuple[list[dict], list[dict]]) -> None:
        losses, runs = rows
        job.add({"losses": losses, "runs": runs}, spec.runs)  # a pair at once

    def finish(self, spec: StudySpec, job: jobs.Saved) -> None:
        """The runs, losses, summary, settings and ``summary.md`` of the pairs finished so
        far, as files in the job's folder."""
        study = load(job.folder, spec)
        if study is not None:
            done = {p: spec.configs[p] for p in spec.pairs if p in self._finished(spec, job)}
            reproduce.save_tables(study, job.folder, done, spec.source_label)

    def read_folder(self, spec: StudySpec, folder: Path) -> dict[str, list[dict]]:
        study = reproduce.load_study(folder)
        return {"runs": study.runs.to_dict("records"),
                "losses": study.losses.to_dict("records")}


STUDY = StudyKind()


def train_pair(spec: dict, pair: Pair, progress: pop.Progress | None = None,
               resume: dict | None = None, pause_after: float | None = None
               ) -> tuple[list[dict], list[dict]]:
    """A study's task (``StudyKind.tasks``): one pair's loss rows and run rows
    (``reproduce.train_runs``).  Plain values in and out, so that it runs on a Dask worker
    as well as here."""
    s = StudySpec.from_dict(spec)
    losses, runs = reproduce.train_runs(tuple(pair), s.configs[tuple(pair)], s.runs, s.epochs,
                                        s.seed, progress=progress, resume=resume,
                                        pause_after=pause_after)
    return losses, [{k: row[k] for k in reproduce.RUN_COLUMNS} for row in runs]


def load(folder: str | Path, spec: StudySpec | None = None) -> reproduce.Study | None:
    """The finished pairs' results (in spec order), or None while there are none; a folder
    the store does not know is imported first if it has a ``study.json``, else read from
    its files."""
    folder = Path(folder)
    try:
        job, _ = jobs.open_job(STUDY, folder)
    except FileNotFoundError:
        if not ((folder / "runs.csv").exists() and (folder / "losses.csv").exists()):
            return None
        job = None
    study = reproduce.load_study(folder) if job is None else stored(job)
    if study.runs.empty:
        return None
    if spec is not None:
        done = _finished_pairs(study.runs, spec.runs)
        keep = [p for p in spec.pairs if p in done]
        if not keep:
            return None

        def rows(frame: pd.DataFrame) -> pd.DataFrame:
            pairs = list(zip(frame["activation"], frame["optimizer"]))
            frame = frame[[p in keep for p in pairs]].copy()
            frame["_order"] = [keep.index(p) for p in zip(frame["activation"],
                                                           frame["optimizer"])]
            frame = frame[frame["run"] < spec.runs]
            return frame.sort_values(["_order", "run"], kind="stable").drop(
                columns="_order").drop_duplicates().reset_index(drop=True)

        study = reproduce.Study(rows(study.runs), rows(study.losses), spec.epochs)
    return study
