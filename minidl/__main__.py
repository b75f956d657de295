"""Command line: ``python -m minidl train …`` (and ``reproduce``, see ``--help``)."""

from __future__ import annotations

import argparse
import sys

import torch

from .train import Config, Run


def _train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train one network on a 2-D data set and report its error")
    defaults = Config()
    p.add_argument("--dataset", default=defaults.dataset)
    p.add_argument("--n-train", type=int, default=defaults.n_train)
    p.add_argument("--n-test", type=int, default=defaults.n_test)
    p.add_argument("--noise", type=float, default=defaults.noise)
    p.add_argument("--data-seed", type=int, default=defaults.data_seed)
    p.add_argument("--hidden", type=int, nargs="+", default=list(defaults.hidden),
                   help="hidden layer widths (default: 25 25 25)")
    p.add_argument("--activation", default=defaults.activation)
    p.add_argument("--init", default=defaults.init)
    p.add_argument("--gain", type=float, default=defaults.gain)
    p.add_argument("--init-seed", type=int, default=defaults.init_seed)
    p.add_argument("--optimizer", default=defaults.optimizer)
    p.add_argument("--lr", type=float, default=defaults.lr)
    p.add_argument("--momentum", type=float, default=defaults.momentum)
    p.add_argument("--beta1", type=float, default=defaults.beta1)
    p.add_argument("--beta2", type=float, default=defaults.beta2)
    p.add_argument("--eps", type=float, default=defaults.eps)
    p.add_argument("--rho", type=float, default=defaults.rho)
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument("--epochs", type=int, default=defaults.epochs)
    p.add_argument("--every", type=int, default=10, help="print progress every N epochs")


def _run_train(args: argparse.Namespace) -> int:
    settings = {k: getattr(args, k) for k in Config.field_names() if hasattr(args, k)}
    settings["hidden"] = tuple(args.hidden)
    try:
        run = Run(Config(**settings))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    c = run.config
    print(f"training 2-{'-'.join(map(str, c.hidden))}-2 {c.activation} with {c.optimizer} "
          f"(lr={c.lr:g}, batch={c.batch_size}) on {c.dataset}, {c.epochs} epochs")

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


def _reproduce_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reproduce", help="train all 9 activation x optimizer pairs R times and "
                       "write the report's table and figures")
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--settings", default="paper",
                   help="'paper' (the report's Table I) or the folder of a saved sweep")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="results/reproduction", help="output folder")


def _sweep_parser(sub: argparse._SubParsersAction) -> None:
    from . import cv

    p = sub.add_parser("sweep", help="k-fold cross-validation over hyperparameter grids for "
                       "activation x optimizer pairs; prints the optimal-settings table")
    p.add_argument("--activations", nargs="+", default=list(cv.ACTIVATIONS))
    p.add_argument("--optimizers", nargs="+", default=list(cv.OPTIMIZERS))
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=25)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="replace one hyperparameter's values in every pair's default grid, "
                   "e.g. --grid batch_size=10,20 (repeatable)")
    p.add_argument("--out", default="results/sweeps/cli", help="folder for the results "
                   "(resumes a sweep already there)")


def _parse_grid_options(options: list[str]) -> dict[str, list]:
    grid = {}
    for option in options:
        key, _, values = option.partition("=")
        if not values:
            raise ValueError(f"--grid expects KEY=V1,V2,..., got {option!r}")
        parsed = []
        for text in values.split(","):
            try:
                number = float(text)
            except ValueError:
                parsed.append(text.strip())  # e.g. init=xavier; validated by the grid
                continue
            parsed.append(int(number) if key == "batch_size" and number.is_integer() else number)
        grid[key.strip()] = parsed
    return grid


def _run_sweep(args: argparse.Namespace) -> int:
    from . import cv, data

    try:
        overrides = _parse_grid_options(args.grid)
        X, y = data.disk(1000, seed=args.data_seed)
        result = cv.sweep(X, y, args.activations, args.optimizers, folds=args.folds,
                          epochs=args.epochs, seed=args.seed, store=args.out,
                          overrides=overrides, progress=_progress_bar("cross-validating"))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    optimal = result.optimal
    optimal.to_csv(f"{args.out}/optimal.csv")
    print(f"{args.folds}-fold cross-validation, {args.epochs} epochs; results in {args.out}")
    print(optimal.to_string())
    return 0


def _progress_bar(label: str):
    """A one-line text progress bar on stderr (no dependency)."""
    def show(done: int, total: int) -> None:
        width = 30
        filled = int(width * done / max(total, 1))
        sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] "
                         f"{100 * done / max(total, 1):5.1f}%")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()
    return show


def _run_reproduce(args: argparse.Namespace) -> int:
    from . import reproduce

    try:
        if args.settings == "paper":
            settings, source = reproduce.PAPER_SETTINGS, "the report's Table I"
        else:
            settings = reproduce.settings_from_sweep(args.settings)
            source = f"cross-validation sweep {args.settings}"
        study = reproduce.run_study(settings, runs=args.runs, epochs=args.epochs, seed=args.seed,
                                    progress=_progress_bar("training"))
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    written = reproduce.save_study(study, args.out, settings, source)
    print(f"settings: {source}; {args.runs} runs per pair; {args.epochs} epochs")
    print(reproduce.markdown_table(study.summary))
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def main(argv: list[str] | None = None) -> int:
    torch.set_num_threads(1)  # tiny models: one thread is many times faster (DESIGN.md)
    parser = argparse.ArgumentParser(prog="python -m minidl", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    _reproduce_parser(sub)
    _sweep_parser(sub)
    args = parser.parse_args(argv)
    commands = {"train": _run_train, "reproduce": _run_reproduce, "sweep": _run_sweep}
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
