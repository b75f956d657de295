"""The command line, ``minidl`` (or ``python -m minidl``); its flags come from the settings table.

    minidl train        train one network and print its error
    minidl sweep        cross-validate every activation × optimizer pair (a saved, resumable job)
    minidl reproduce    train each pair R times; write the report's table and figures
    minidl ablate       Table I under each unstated convention (a saved, resumable job)

Why this module is long: four commands, each a parser built from the settings
table and a short function that runs it; they share one job runner with a
progress bar.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from . import __version__, files, hparams, jobs, runtime
from .jobs import runner
from .text import cut

DESCRIPTION = """\
minidl: a deep-learning mini-framework in PyTorch tensor operations only.

commands:
  train       train one network on a 2-D data set and print its error
  sweep       k-fold cross-validation over hyperparameter grids for every
              activation x optimizer pair; prints the optimal-settings table
  reproduce   train every pair R times with the report's Table I (or a sweep's
              optimum); writes the summary table and Fig. 2 / Fig. 3
  ablate      the report's Table I under each convention it leaves unstated

'minidl COMMAND --help' lists a command's options."""


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _parser_of(name: str, many: bool = False) -> Callable[[str], object]:
    """An argparse ``type`` that reads one value (or a comma list) with the settings table."""
    def read(text: str):
        try:
            return hparams.parse_values(name, text) if many else hparams.parse(name, text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    read.__name__ = name  # argparse names the type in some messages
    return read


def _help(s: hparams.Setting, default: str) -> str:
    text = s.help or s.label
    choices = (f"; one of {', '.join(s.choices)}" if s.kind == "choice" else
               f"; comma-separated, some of {', '.join(s.choices)}" if s.kind == "set" else "")
    return f"{text}{choices} (default: {default})"


def _count(low: int, high: int) -> Callable[[str], int]:
    """An argparse ``type`` for a whole number in ``[low, high]`` (a longer text than any such
    number is refused unread)."""
    def read(text: str) -> int:
        try:
            value = int(text) if len(text.strip()) <= hparams.MAX_NUMBER_TEXT else None
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{cut(text, 40)!r} (expected an integer in "
                                             f"[{low:,}, {high:,}])")
        return value
    read.__name__ = "integer"
    return read


MAX_WORKERS = 256


def _seed(text: str) -> int:
    return _parser_of("init_seed")(text)


# ---------------------------------------------------------------- train

def _train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train one network and print its error",
                       description="Train one network on a 2-D data set; every setting of "
                       "the settings table is a flag.")
    for name in hparams.names("cli"):
        s = hparams.TABLE[name]
        p.add_argument(_flag(name), dest=name, type=_parser_of(name), default=s.default,
                       metavar=name.upper() if s.kind != "choice" else None,
                       help=_help(s, hparams.format_value(s.default)))
    p.add_argument("--every", type=_count(*jobs.COUNTS["epochs"]), default=10,
                   help="print progress every N epochs (default: 10)")
    p.add_argument("--points", metavar="FILE", default=None,
                   help="your own points, a CSV file of lines x1,x2,label (x1, x2 in [0, 1], "
                   "label 0 or 1); implies --dataset custom, split by --split")


def _run_train(args: argparse.Namespace) -> int:
    from .config import Config
    from .data import MAX_CSV_BYTES, read_points_csv
    from .engine.run import Run

    values = {k: getattr(args, k) for k in hparams.names("cli")}
    points = None
    if args.points is not None:
        try:
            raw = files.read_bytes(args.points, MAX_CSV_BYTES)
            if raw is None:
                raise files.Unreadable("no such file")
            points = read_points_csv(raw)
        except ValueError as error:
            return _error(f"{args.points}: {error}")
        values["dataset"] = "custom"
    try:
        run = Run(Config(**values), points=points)
    except ValueError as error:
        return _error(error)
    c = run.config
    print(f"training {'-'.join(map(str, c.sizes()))} {c.activation} with {c.optimizer} "
          f"({hparams.describe(c.to_dict(), c.optimizer_kwargs())}, batch {c.batch_size}) "
          f"on {c.dataset}, {c.epochs} epochs")

    def progress(epoch: int, m: dict) -> None:
        if epoch % args.every == 0 or epoch == c.epochs or m["diverged"]:
            print(f"epoch {epoch:4d}  train loss {m['train_loss']:.4f}  "
                  f"train acc {100 * m['train_acc']:6.2f}%  test acc {100 * m['test_acc']:6.2f}%")

    run.fit(progress)
    if run.diverged:
        print(f"diverged at epoch {run.epoch} (loss became NaN/inf); try a smaller learning rate")
        return 1
    final = run.history[-1]
    print(f"final train error {100 * (1 - final['train_acc']):.2f}%  "
          f"test error {100 * (1 - final['test_acc']):.2f}%  "
          f"(test accuracy {100 * final['test_acc']:.2f}%)")
    return 0


# ---------------------------------------------------------------- sweep

def _sweep_parser(sub: argparse._SubParsersAction) -> None:
    from .experiments.sweeps import SweepSpec

    d = SweepSpec()
    p = sub.add_parser("sweep", help="cross-validate every activation x optimizer pair",
                       description="k-fold cross-validation over hyperparameter grids for "
                       "activation x optimizer pairs; prints the optimal-settings table. The "
                       "sweep is saved in --out and a rerun with the same settings resumes it.")
    p.add_argument("--activations", nargs="+", default=list(d.activations),
                   choices=hparams.ACTIVATIONS, metavar="ACTIVATION",
                   help=f"one or more of {', '.join(hparams.ACTIVATIONS)} "
                        f"(default: {' '.join(d.activations)})")
    p.add_argument("--optimizers", nargs="+", default=list(d.optimizers),
                   choices=hparams.OPTIMIZERS, metavar="OPTIMIZER",
                   help=f"one or more of {', '.join(hparams.OPTIMIZERS)} (default: all)")
    p.add_argument("--folds", type=_count(*jobs.COUNTS["folds"]), default=d.folds, help="k (default: 5)")
    p.add_argument("--epochs", type=_parser_of("epochs"), default=d.epochs,
                   help=f"epochs each network trains (default: {d.epochs})")
    p.add_argument("--seed", type=_seed, default=d.seed,
                   help="seeds the folds, initial weights and batch order (default: 0)")
    p.add_argument("--data-seed", type=_parser_of("data_seed"), default=d.data_seed,
                   help="which draw of the disk's 1000 training points (default: 0)")
    grid = p.add_argument_group("grid values", "replace a setting's values in every pair's "
                                "default grid (comma-separated)")
    for name in dict.fromkeys(k for o in hparams.OPTIMIZERS for k in hparams.grid_keys(o)):
        s = hparams.TABLE[name]
        defaults = "; ".join(f"{o}: {hparams.format_values(g[name])}"
                             for o in hparams.OPTIMIZERS
                             for g in [hparams.optimizer_grid(o)] if name in g)
        extras = "; ".join(f"{a}: {hparams.format_values(s.grid[a])}"
                           for a in hparams.ACTIVATIONS if s.grid and a in s.grid)
        grid.add_argument(_flag(name), dest=f"grid_{name}", type=_parser_of(name, many=True),
                          metavar="V1,V2", help=f"{s.label} (default: "
                          f"{defaults or extras or hparams.format_value(s.default)})")
    grid.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                      help="the same as --KEY V1,V2 (repeatable), e.g. --grid batch_size=10,20")
    _job_arguments(p, "sweeps")


def _grid_overrides(args: argparse.Namespace) -> dict[str, list]:
    overrides = {k[len("grid_"):]: v for k, v in vars(args).items()
                 if k.startswith("grid_") and v is not None}
    for option in args.grid:
        key, _, values = option.partition("=")
        key = key.strip()
        if not values or key not in hparams.TABLE or not hparams.TABLE[key].searchable:
            raise ValueError(f"--grid expects KEY=V1,V2 with a searchable KEY, got {option!r}")
        overrides[key] = hparams.parse_values(key, values)
    return overrides


def _run_sweep(args: argparse.Namespace) -> int:
    from .experiments import sweeps

    try:
        overrides = _grid_overrides(args)
        grids = {o: {**hparams.optimizer_grid(o),
                     **{k: v for k, v in overrides.items() if hparams.TABLE[k].applies_to(o)}}
                 for o in args.optimizers}
        spec = sweeps.SweepSpec(tuple(dict.fromkeys(args.activations)),
                                tuple(dict.fromkeys(args.optimizers)), grids, folds=args.folds,
                                epochs=args.epochs, seed=args.seed, data_seed=args.data_seed)
    except ValueError as error:
        return _error(error)
    folder = _run_job(sweeps.SWEEP, spec, args, "cross-validating")
    if not isinstance(folder, Path):
        return folder
    optimal = sweeps.load(folder).optimal
    optimal.to_csv(folder / "optimal.csv")
    print(f"{spec.folds}-fold cross-validation, {spec.epochs} epochs; results in {folder}")
    print(optimal.to_string())
    return 0


# ---------------------------------------------------------------- reproduce

def _reproduce_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reproduce", help="train all 9 activation x optimizer pairs R times",
                       description="Train every pair R times and write the report's table "
                       "and figures. The study is saved in --out and a rerun with the same "
                       "settings resumes it (finished pairs are kept).")
    p.add_argument("--runs", type=_count(*jobs.COUNTS["runs"]), default=10,
                   help="runs per pair (default: 10)")
    p.add_argument("--epochs", type=_parser_of("epochs"), default=100,
                   help="epochs per run (default: 100)")
    p.add_argument("--settings", default="paper",
                   help="'paper' (the report's Table I) or the folder of a saved sweep "
                        "(default: paper)")
    p.add_argument("--seed", type=_seed, default=0, help="seeds data draws and initial weights "
                   "(default: 0)")
    _job_arguments(p, "studies")


def _run_reproduce(args: argparse.Namespace) -> int:
    from .experiments import studies

    try:
        spec = (studies.paper_spec(args.runs, args.epochs, args.seed) if args.settings == "paper"
                else studies.sweep_spec(args.settings, args.runs, args.epochs, args.seed))
    except (ValueError, OSError) as error:  # a sweep folder that is missing or damaged
        return _error(error)
    folder = _run_job(studies.STUDY, spec, args, "training")
    if not isinstance(folder, Path):
        return folder
    study = studies.load(folder, spec)
    written = _save_figures("study", study, folder)
    print(f"settings: {spec.source_label}; {spec.runs} runs per pair; {spec.epochs} epochs")
    print((folder / "summary.md").read_text().split("\n\n", 1)[-1], end="")
    print(f"wrote {folder}: " + ", ".join(p.name for p in [
        *sorted(folder.glob("*.csv")), folder / "summary.md", *written]))
    return 0


# ---------------------------------------------------------------- ablate

def _ablate_parser(sub: argparse._SubParsersAction) -> None:
    from .experiments.ablation import AblationSpec, knob_name

    d = AblationSpec()
    p = sub.add_parser("ablate", help="Table I under each convention the report leaves unstated",
                       description="Train the report's Table I settings under each unstated "
                       "convention (one changed at a time from ours: " + ", ".join(
                           knob_name(k) for k in d.knobs[1:]) + "), then under the best "
                       "combination; writes a table per epoch budget and figures. Saved in "
                       "--out; a rerun resumes.")
    p.add_argument("--runs", type=_count(*jobs.COUNTS["runs"]), default=d.runs,
                   help=f"runs per pair and convention (default: {d.runs})")
    p.add_argument("--epochs", type=_parser_of("epochs", many=True), default=list(d.budgets),
                   metavar="E1,E2", help="epoch budgets at which accuracy is read (default: "
                   f"{','.join(map(str, d.budgets))})")
    p.add_argument("--long-epochs", type=_parser_of("epochs"), default=d.long_epochs,
                   help="a longer budget for the Sigmoid pairs, stuck on the loss plateau "
                   f"at 400 epochs (default: {d.long_epochs})")
    p.add_argument("--seed", type=_seed, default=d.seed, help="seeds data and weights "
                   "(default: 0)")
    _job_arguments(p, "ablations")


def _run_ablate(args: argparse.Namespace) -> int:
    from .experiments import ablation

    try:
        spec = ablation.AblationSpec(runs=args.runs, budgets=tuple(args.epochs),
                                     long_epochs=args.long_epochs, seed=args.seed)
    except ValueError as error:
        return _error(error)
    folder = _run_job(ablation.ABLATION, spec, args, "ablating")
    if not isinstance(folder, Path):
        return folder
    written = _save_figures("ablation", ablation.summary(ablation.read_accuracy(folder)), folder)
    print((folder / "summary.md").read_text(), end="")
    print(f"wrote {folder}: " + ", ".join(p.name for p in [
        folder / "accuracy.csv", folder / "summary.csv", folder / "summary.md", *written]))
    return 0


# ---------------------------------------------------------------- shared

def _job_arguments(p: argparse.ArgumentParser, folder: str) -> None:
    """``--workers``, ``--scheduler``, ``--out`` and ``--storage``, the same for every command
    that runs a saved job."""
    p.add_argument("--workers", type=_count(1, MAX_WORKERS), default=2,
                   help="tasks trained at once, one core each (default: 2)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="train on the workers of the Dask scheduler at ADDRESS "
                        "(tcp://host:8786), or 'local' for a local Dask cluster of "
                        "--workers processes; needs the cluster extra (default: this "
                        "process)")
    p.add_argument("--out", help=f"the job's folder, where its tables are written (default: a "
                   f"new folder under results/{folder}); a job already there with the same "
                   "settings resumes")
    p.add_argument("--storage", metavar="URL",
                   help=f"the store of saved jobs, a database URL such as sqlite:///path/to/"
                        f"jobs.db (default: ${jobs.store.STORAGE_ENV}, else minidl.db in the "
                        "results folder)")


def _save_figures(module: str, data, folder: Path) -> list[Path]:
    """A job's figures from ``minidl.viz.<module>`` (they need the app extra's Altair)."""
    try:
        figures = importlib.import_module(f".viz.{module}", __package__)
    except ImportError:
        print("figures skipped: install the app extra (pip install 'minidl[app]') for them")
        return []
    return figures.save_figures(data, folder)


def _error(error: Exception) -> int:
    text = " ".join(str(error).split())  # one line, even where the text came from a file
    print(f"error: {text}", file=sys.stderr)
    return 2


def _run_job(kind: jobs.Kind, spec, args: argparse.Namespace, label: str) -> Path | int:
    """Run the job of ``spec`` in this process with a progress bar: in ``--out`` (resumed if
    it holds the same job; a folder that cannot be written is found before any training)
    or a new folder.  Returns the folder once finished, else the exit code."""
    try:
        folder = (jobs.create(kind, spec) if args.out is None
                  else jobs.open_or_create(kind, spec, args.out))
    except (ValueError, OSError) as error:
        return _error(error)
    try:
        job = runner.Runner(kind, folder, args.workers, args.scheduler)
    except jobs.Busy as error:
        return _error(error)
    thread = threading.Thread(target=job.run, daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.5)
            _progress_bar(label, job.progress())
    except KeyboardInterrupt:
        job.cancel()
        while job.active:  # not join(): one that Ctrl-C interrupted may return at once after
            time.sleep(0.1)
        thread.join()
    p = job.progress()
    _progress_bar(label, p)
    sys.stderr.write("\n")
    if p.status != "finished":
        print(f"{kind.name} {p.status}" + (f": {p.error}" if p.error else "")
              + f"; {_kept(kind, folder)} (rerun the same command to resume)", file=sys.stderr)
        return 1
    return folder


def _kept(kind: jobs.Kind, folder: Path) -> str:
    """Exactly what a stopped job keeps: ``"12 of 696 configurations saved in …"``
    (``JobInfo.kept``)."""
    job = jobs.info(kind, folder)
    if job.status == jobs.DAMAGED:
        return f"its folder {folder} cannot be read ({job.error})"
    return f"{job.kept(kind.unit)} in {folder}"


def _run_job_process(args: argparse.Namespace) -> int:
    from .experiments.kinds import KINDS
    try:
        return runner.run_in_this_process(KINDS[args.kind], args.folder, args.nice,
                                          max(1, args.workers), args.scheduler)
    except (jobs.Busy, ValueError, OSError) as error:
        return _error(error)


def _progress_bar(label: str, p: runner.Progress) -> None:
    """A one-line text progress bar on stderr."""
    width = 30
    filled = int(width * p.fraction)
    sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] "
                     f"{100 * p.fraction:5.1f}%  {runner.format_seconds(p.elapsed)} elapsed, "
                     f"about {runner.format_seconds(p.eta)} left ")
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    runtime.setup()  # one torch thread, the allocator kept: the process's settings
    parser = argparse.ArgumentParser(prog="minidl", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"minidl {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _train_parser(sub)
    _sweep_parser(sub)
    _reproduce_parser(sub)
    _ablate_parser(sub)
    from .experiments.kinds import KINDS
    job = sub.add_parser("run-job")  # the app's job processes (``jobs.scheduler``)
    job.add_argument("kind", choices=list(KINDS))
    job.add_argument("folder")
    job.add_argument("--nice", type=int, default=0)
    job.add_argument("--workers", type=int, default=1)
    job.add_argument("--scheduler")
    args = parser.parse_args(argv)
    if getattr(args, "storage", None):  # this process's store, and its job processes'
        os.environ[jobs.store.STORAGE_ENV] = args.storage
    commands = {"train": _run_train, "reproduce": _run_reproduce, "sweep": _run_sweep,
                "ablate": _run_ablate, "run-job": _run_job_process}
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
