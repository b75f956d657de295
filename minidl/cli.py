"""The command line, ``minidl`` (or ``python -m minidl``); its flags come from the settings table.

    minidl train        train one network and print its error
    minidl sweep        cross-validate every activation × optimizer pair (a saved, resumable job)
    minidl reproduce    train each pair R times; write the report's table and figures
    minidl ablate       Table I under each unstated convention (a saved, resumable job)
    minidl app          start the Streamlit app

Only the command given is built (``parse``), and torch is imported only by the commands that
train: ``minidl --version`` and ``minidl --help`` answer at once.  Every parser is a
``_Parser``: an error is the command's usage line and one line saying what is wrong, with the
nearest flag or command where one was misspelled.

Why this module is long: five commands, each a parser built from the settings table and a
short function that runs it; they share one job runner with a progress bar.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import importlib.util
import os
import signal
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import __version__, files, hparams
from .text import cut

WIDTH = 100  # the columns a table printed to a terminal fits in (``--wide``: all on a line)


class _Parser(argparse.ArgumentParser):
    """argparse whose errors a person reads at once: the command's one-line usage and one
    line saying what is wrong; an unknown flag gets the nearest known one."""

    def parse_args(self, args: Sequence[str] | None = None, namespace=None):
        parsed, unknown = self.parse_known_args(args, namespace)
        if unknown:
            flag = unknown[0].split("=", 1)[0]
            known = [o for o in self._option_string_actions if o.startswith("--")]
            self.error(f"unrecognized argument {cut(flag)!r}" + _did_you_mean(flag, known))
        return parsed

    def error(self, message: str):
        usage = self.format_usage().strip().replace("\n", " ")
        self.exit(2, f"{' '.join(usage.split())}  ('{self.prog} --help' lists them)\n"
                     f"{self.prog}: error: {message}\n")


def _did_you_mean(word: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(word.lower(), known, n=1)
    return f"; did you mean {close[0]}?" if close else ""


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


class _Union(argparse.Action):
    """``--activations relu tanh,sigmoid``: every value of every list given, each once."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, list(dict.fromkeys(v for group in values for v in group)))


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
            raise argparse.ArgumentTypeError(f"invalid value {cut(text, 40)!r} (expected an "
                                             f"integer in [{low:,}, {high:,}])")
        return value
    read.__name__ = "integer"
    return read


MAX_WORKERS = 256


def _seed(text: str) -> int:
    return _parser_of("init_seed")(text)


# ---------------------------------------------------------------- train

def _train_parser(p: _Parser) -> None:
    p.description = ("Train one network on a 2-D data set; every setting of "
                     "the settings table is a flag.")
    for name in hparams.names("cli"):
        s = hparams.TABLE[name]
        p.add_argument(_flag(name), dest=name, type=_parser_of(name), default=s.default,
                       metavar=name.upper() if s.kind != "choice" else None,
                       help=_help(s, hparams.format_value(s.default)))
    p.add_argument("--every", type=_count(1, hparams.MAX_EPOCHS), default=10,
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
            scores = (f"test loss {m['test_loss']:.4f}" if c.regression else
                      f"train acc {100 * m['train_acc']:6.2f}%  test acc {100 * m['test_acc']:6.2f}%")
            print(f"epoch {epoch:4d}  train loss {m['train_loss']:.4f}  {scores}")

    run.fit(progress)
    if run.diverged:
        print(f"diverged at epoch {run.epoch} (loss became NaN/inf); try a smaller learning rate")
        return 1
    final = run.history[-1]
    if c.regression:  # no classes, no error rate: the mean squared error of the values
        print(f"final train loss {final['train_loss']:.4f}  test loss {final['test_loss']:.4f} "
              "(mean squared error)")
        return 0
    print(f"final train error {100 * (1 - final['train_acc']):.2f}%  "
          f"test error {100 * (1 - final['test_acc']):.2f}%  "
          f"(test accuracy {100 * final['test_acc']:.2f}%)")
    return 0


# ---------------------------------------------------------------- sweep

def _sweep_parser(p: _Parser) -> None:
    from .experiments.sweeps import SweepSpec
    from .jobs import COUNTS

    d = SweepSpec()
    p.description = ("k-fold cross-validation over hyperparameter grids for "
                     "activation x optimizer pairs; prints the optimal-settings table. The "
                     "sweep is saved in --out and a rerun with the same settings resumes it.")
    for name, plural in (("activation", "activations"), ("optimizer", "optimizers")):
        s = hparams.TABLE[name]
        p.add_argument(f"--{plural}", nargs="+", type=_parser_of(name, many=True),
                       action=_Union, default=list(getattr(d, plural)), metavar=name.upper(),
                       help=f"one or more of {', '.join(s.choices)}, by spaces or commas "
                            f"(default: {' '.join(getattr(d, plural))})")
    p.add_argument("--folds", type=_count(*COUNTS["folds"]), default=d.folds,
                   help="k (default: 5)")
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
        key = key.strip().lower()
        if not values or key not in hparams.TABLE or not hparams.TABLE[key].searchable:
            raise ValueError(f"--grid expects KEY=V1,V2 with a searchable KEY, got {option!r}")
        overrides[key] = hparams.parse_values(key, values)
    return overrides


def _run_sweep(args: argparse.Namespace) -> int:
    from .experiments import sweeps

    try:
        overrides = _grid_overrides(args)
        optimizers = args.optimizers
        grids = {o: {**hparams.optimizer_grid(o),
                     **{k: v for k, v in overrides.items() if hparams.TABLE[k].applies_to(o)}}
                 for o in optimizers}
        spec = sweeps.SweepSpec(tuple(args.activations), tuple(optimizers), grids, folds=args.folds,
                                epochs=args.epochs, seed=args.seed, data_seed=args.data_seed)
    except ValueError as error:
        return _error(error)
    folder = _run_job(sweeps.SWEEP, spec, args, "cross-validating")
    if not isinstance(folder, Path):
        return folder
    optimal = sweeps.load(folder).optimal
    optimal.to_csv(folder / "optimal.csv")
    print(f"{spec.folds}-fold cross-validation, {spec.epochs} epochs; results in {folder}")
    _print_table(optimal, args.wide)
    return 0


# ---------------------------------------------------------------- reproduce

def _reproduce_parser(p: _Parser) -> None:
    from .jobs import COUNTS

    p.description = ("Train every pair R times and write the report's table "
                     "and figures. The study is saved in --out and a rerun with the same "
                     "settings resumes it (finished pairs are kept).")
    p.add_argument("--runs", type=_count(*COUNTS["runs"]), default=10,
                   help="runs per pair (default: 10)")
    p.add_argument("--epochs", type=_parser_of("epochs"), default=100,
                   help="epochs per run (default: 100)")
    p.add_argument("--settings", default="paper", type=_paper_or_folder,
                   help="'paper' (the report's Table I) or the folder of a saved sweep "
                        "(default: paper)")
    p.add_argument("--seed", type=_seed, default=0, help="seeds data draws and initial weights "
                   "(default: 0)")
    _job_arguments(p, "studies")


def _paper_or_folder(text: str) -> str:
    return "paper" if text.lower() == "paper" else text


def _run_reproduce(args: argparse.Namespace) -> int:
    from .experiments import reproduce, studies

    try:
        spec = (studies.paper_spec(args.runs, args.epochs, args.seed) if args.settings == "paper"
                else studies.sweep_spec(args.settings, args.runs, args.epochs, args.seed))
    except (ValueError, OSError) as error:  # a sweep folder that is missing or damaged
        missing = isinstance(error, FileNotFoundError) and not Path(args.settings).exists()
        return _error(f"{error}{_did_you_mean(args.settings, ['paper']) if missing else ''}")
    folder = _run_job(studies.STUDY, spec, args, "training")
    if not isinstance(folder, Path):
        return folder
    study = studies.load(folder, spec)
    written = _save_figures("study", study, folder)
    print(f"settings: {spec.source_label}; {spec.runs} runs per pair; {spec.epochs} epochs")
    _print_table(reproduce.table(study.summary), args.wide)
    print(f"wrote {folder}: " + ", ".join(p.name for p in [
        *sorted(folder.glob("*.csv")), folder / "summary.md", *written]))
    return 0


# ---------------------------------------------------------------- ablate

def _ablate_parser(p: _Parser) -> None:
    from .experiments.ablation import AblationSpec, knob_name
    from .jobs import COUNTS

    d = AblationSpec()
    p.description = ("Train the report's Table I settings under each unstated "
                     "convention (one changed at a time from ours: " + ", ".join(
                         knob_name(k) for k in d.knobs[1:]) + "), then under the best "
                     "combination; writes a table per epoch budget and figures. Saved in "
                     "--out; a rerun resumes.")
    p.add_argument("--runs", type=_count(*COUNTS["runs"]), default=d.runs,
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
    summary = ablation.summary(ablation.read_accuracy(folder))
    written = _save_figures("ablation", summary, folder)
    print((folder / "summary.md").read_text().split("\n", 1)[0])  # what the tables hold
    for epochs in sorted(summary["epochs"].unique()):
        print(f"\n{epochs} epochs")
        _print_table(ablation.wide(summary, int(epochs)), args.wide)
    print(f"wrote {folder}: " + ", ".join(p.name for p in [
        folder / "accuracy.csv", folder / "summary.csv", folder / "summary.md", *written]))
    return 0


# ---------------------------------------------------------------- shared

def _job_arguments(p: _Parser, folder: str) -> None:
    """``--workers``, ``--scheduler``, ``--out``, ``--storage`` and ``--wide``, the same for
    every command that runs a saved job."""
    from .jobs.store import STORAGE_ENV

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
                        f"jobs.db (default: ${STORAGE_ENV}, else minidl.db in the results "
                        "folder)")
    p.add_argument("--wide", action="store_true",
                   help=f"print tables with all their columns on a line (default: wrapped to "
                        f"{WIDTH} characters)")


def _print_table(table, wide: bool) -> None:
    """A table for a terminal: its columns wrapped into blocks of ``WIDTH`` characters, or all
    on one line (``--wide``); a row number is no column of the table (a named index is)."""
    text = table.to_string(line_width=None if wide else WIDTH,
                           index=any(name is not None for name in table.index.names))
    print("\n".join(line.rstrip() for line in text.splitlines()))


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


def _run_job(kind, spec, args: argparse.Namespace, label: str) -> Path | int:
    """Run the job of ``spec`` in this process with a progress bar: in ``--out`` (resumed if
    it holds the same job; a folder that cannot be written is found before any training)
    or a new folder.  Returns the folder once finished, else the exit code."""
    from . import jobs
    from .jobs import runner

    try:
        folder = (jobs.create(kind, spec) if args.out is None
                  else jobs.open_or_create(kind, spec, args.out))
        job = runner.Runner(kind, folder, args.workers, args.scheduler)
    except (ValueError, OSError, jobs.Busy) as error:
        return _error(error)
    # Ctrl-C cancels, keeping what was trained — even where this process was started with
    # SIGINT ignored or blocked (both are inherited: from a script's background job, or
    # from a thread of the parent that blocked it while starting a helper process)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    thread = threading.Thread(target=job.run, daemon=True)
    thread.start()
    try:
        _follow(job, thread, label)
    except KeyboardInterrupt:
        job.cancel()
        while job.active:  # not join(): one that Ctrl-C interrupted may return at once after
            time.sleep(0.1)
        thread.join()
    p = job.progress()
    if p.status != "finished":
        print(f"{kind.name} {p.status}" + (f": {p.error}" if p.error else "")
              + f"; {_kept(kind, folder)} (rerun the same command to resume)", file=sys.stderr)
        return 1
    return folder


def _follow(job, thread: threading.Thread, label: str) -> None:
    """A progress bar in optimizer steps on a terminal (tqdm's); none in a log or a pipe."""
    from tqdm import tqdm

    with tqdm(desc=label, unit=" steps", unit_scale=True, disable=None, file=sys.stderr,
              dynamic_ncols=True) as bar:
        while thread.is_alive():
            thread.join(0.5)
            p = job.progress()
            bar.total, bar.n = p.total, p.done
            bar.refresh()


def _kept(kind, folder: Path) -> str:
    """Exactly what a stopped job keeps: ``"12 of 696 configurations saved in …"``
    (``JobInfo.kept``)."""
    from . import jobs

    job = jobs.info(kind, folder)
    if job.status == jobs.DAMAGED:
        return f"its folder {folder} cannot be read ({job.error})"
    return f"{job.kept(kind.unit)} in {folder}"


# ---------------------------------------------------------------- app

def _app_parser(p: _Parser) -> None:
    p.description = ("Start the Streamlit app (it needs the app extra: pip install "
                     "'minidl[app]'), then open http://localhost:8501 and press Train. "
                     "Streamlit's own options pass through, e.g. --server.port 8502.")


def app_folder() -> Path:
    """The folder of ``streamlit_app.py``: the checkout that holds this ``minidl``, or in an
    installed wheel the package ``minidl_app`` (the same files, see pyproject.toml)."""
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "streamlit_app.py").is_file():
        return checkout
    return Path(importlib.util.find_spec("minidl_app").submodule_search_locations[0])


def _run_app(args: argparse.Namespace) -> int:
    import tomllib

    if importlib.util.find_spec("streamlit") is None:
        return _error("the app needs Streamlit: pip install 'minidl[app]'")
    folder = app_folder()
    # Streamlit reads .streamlit/config.toml where it starts, not beside the app: say it here
    config = tomllib.loads((folder / ".streamlit" / "config.toml").read_text())
    flags = [f"--{section}.{key}={str(value).lower() if isinstance(value, bool) else value}"
             for section, options in config.items() for key, value in options.items()]
    # exec, not a child: Ctrl-C and a stop signal reach the server itself
    os.execv(sys.executable, [sys.executable, "-m", "streamlit", "run",
                              str(folder / "streamlit_app.py"), *flags, *args.streamlit])
    return 0  # reached only where execv is replaced (tests)


# ---------------------------------------------------------------- run-job (internal)

def _run_job_parser(p: _Parser) -> None:
    from .experiments.kinds import KINDS

    p.usage = None
    p.add_argument("kind", choices=list(KINDS))
    p.add_argument("folder")
    p.add_argument("--nice", type=int, default=0)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--scheduler")


def _run_job_process(args: argparse.Namespace) -> int:
    from . import jobs
    from .experiments.kinds import KINDS
    from .jobs import runner

    try:
        return runner.run_in_this_process(KINDS[args.kind], args.folder, args.nice,
                                          max(1, args.workers), args.scheduler)
    except (jobs.Busy, ValueError, OSError) as error:
        return _error(error)


# ---------------------------------------------------------------- the commands

@dataclass(frozen=True)
class Command:
    help: str                                  # its line in ``minidl --help`` ("": hidden)
    build: Callable[[_Parser], None]           # adds its arguments to its parser
    run: Callable[[argparse.Namespace], int]   # runs it; the exit code
    trains: bool = True                        # trains with torch: one thread (``runtime``)
    passes_on: bool = False                    # unknown options go on (``args.streamlit``)


COMMANDS = {
    "train": Command("train one network on a 2-D data set and print its error", _train_parser,
                     _run_train),
    "sweep": Command("k-fold cross-validation over hyperparameter grids for every activation "
                     "x optimizer pair; prints the optimal-settings table", _sweep_parser,
                     _run_sweep),
    "reproduce": Command("train every pair R times with the report's Table I (or a sweep's "
                         "optimum); writes the summary table and Fig. 2 / Fig. 3",
                         _reproduce_parser, _run_reproduce),
    "ablate": Command("the report's Table I under each convention it leaves unstated",
                      _ablate_parser, _run_ablate),
    "app": Command("start the Streamlit app (then open http://localhost:8501 and press Train)",
                   _app_parser, _run_app, trains=False, passes_on=True),
    "run-job": Command("", _run_job_parser, _run_job_process),  # the app's job processes
}
LISTED = [name for name, command in COMMANDS.items() if command.help]


def _description() -> str:
    lines = [textwrap.fill(command.help, 78, initial_indent=f"  {name:<12}",
                           subsequent_indent=" " * 14) for name, command in COMMANDS.items()
             if command.help]
    return ("minidl: a deep-learning mini-framework in PyTorch tensor operations only.\n\n"
            "commands:\n" + "\n".join(lines) + "\n\n'minidl COMMAND --help' lists a "
            "command's options.")


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """The arguments of a command line (``["train", "--lr", "0.1"]``), ``args.command`` its
    command.  Only that command's parser is built.  A bad one exits with code 2 and a message
    (argparse's way); ``--help`` and ``--version`` exit with code 0."""
    top = _Parser(prog="minidl", usage="%(prog)s [--version] COMMAND [options]",
                  description=_description(), formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("--version", action="version", version=f"minidl {__version__}")
    if not argv or argv[0].startswith("-"):
        top.parse_args(argv)  # --help, --version or an unknown flag: exits
        top.error(f"a COMMAND is required: one of {', '.join(LISTED)}")
    name = argv[0].lower()
    if name not in COMMANDS:
        top.error(f"unknown command {cut(argv[0])!r}{_did_you_mean(name, LISTED)} "
                  f"(commands: {', '.join(LISTED)})")
    command = COMMANDS[name]
    parser = _Parser(prog=f"minidl {name}", usage="%(prog)s [options]")
    command.build(parser)
    if command.passes_on:
        args, args.streamlit = parser.parse_known_args(argv[1:])
    else:
        args = parser.parse_args(argv[1:])
    args.command = name
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else list(argv))
    command = COMMANDS[args.command]
    if command.trains:
        from . import runtime

        runtime.setup()  # one torch thread, the allocator kept: the process's settings
    if getattr(args, "storage", None):  # this process's store, and its job processes'
        from .jobs.store import STORAGE_ENV

        os.environ[STORAGE_ENV] = args.storage
    return command.run(args)


if __name__ == "__main__":
    sys.exit(main())
