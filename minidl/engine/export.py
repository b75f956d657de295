"""A trained run as a file: JSON to keep or share, and a Python script that retrains it.

``to_json(run)`` writes everything a run is made of, as plain JSON (no pickle,
nothing executable): its settings (one value per ``train.Config`` field, as the
settings table reads them), input features, weights (every float of every
layer, to the last bit: a float32 weight is written as the float64 that equals
it), per-epoch history and, for your own points (data set ``custom``), the
points themselves.  ``from_json(text)`` rebuilds the ``Run``: same data, same
weights, same history, ready to be inspected or trained further.  What is *not*
kept: the optimizer's state (momentum, Adam's moments: a continued run starts
them afresh) and the random stream of minibatch orders (it restarts from the
init seed), so training on after an import is not the run that was never
interrupted; nor past epochs' weights (``Run.snapshots``): it replays from its import on.

A file that is not what ``to_json`` writes — not JSON, too large, an unknown
setting, a weight of the wrong shape or not a finite number, … — raises
``ModelFileError`` (a ``ValueError``) with a message saying what is wrong; no
other exception escapes ``from_json``.

``to_script(run)`` writes a Python script that rebuilds the same model with
``minidl`` from the same settings and seeds and trains it from scratch, printing
the final metrics: it reproduces the run's history exactly (same library
version, same machine type).  It imports ``minidl`` rather than carrying a copy of
the training loop, which is what makes it exact; where minidl is not installed it
says in one line how to install it.
"""

from __future__ import annotations

import json
import math
from typing import Any

import torch

from .. import __version__, data, hparams
from ..config import Config
from ..text import cut
from .run import Run

FORMAT = "minidl-model"
VERSION = 1
MAX_BYTES = 5 << 20  # 5 MiB: the app's largest network (6 × 64) with 10,000 points and epochs
HISTORY_KEYS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "diverged")
_TOP_KEYS = {"format", "version", "minidl", "settings", "features", "layers", "epoch", "history",
             "points"}


class ModelFileError(ValueError):
    """A model file that cannot be read back; the message says why."""


# ---------------------------------------------------------------- writing

def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def run_points(run: Run) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The points of a run on your own data (``custom``), as given; None for a drawn set."""
    if run.config.dataset != "custom":
        return None
    if run.points is not None:
        return run.points
    # a run built from ready-made data sets: its training and test points together
    return (torch.cat([run.X_train, run.X_test]), torch.cat([run.y_train, run.y_test]))


def to_json(run: Run) -> str:
    """The run as JSON text (see the module docstring); non-finite numbers are ``null``."""
    params = [p for p, _ in run.model.param()]
    layers = [{"weight": w.tolist(), "bias": b.tolist()} for w, b in zip(params[::2], params[1::2])]
    for layer in layers:
        layer["weight"] = [[_finite_or_none(v) for v in row] for row in layer["weight"]]
        layer["bias"] = [_finite_or_none(v) for v in layer["bias"]]
    doc = {
        "format": FORMAT, "version": VERSION, "minidl": __version__,
        "settings": {k: _plain(v) for k, v in run.config.to_dict().items()},
        "features": list(run.config.features),
        "layers": layers,
        "epoch": run.epoch,
        "history": [{k: (_finite_or_none(float(h[k])) if k not in ("epoch", "diverged")
                         else h[k]) for k in HISTORY_KEYS} for h in run.history],
    }
    points = run_points(run)
    if points is not None:
        X, y = points
        doc["points"] = {"x1": X[:, 0].tolist(), "x2": X[:, 1].tolist(), "label": y.tolist()}
    return json.dumps(doc, allow_nan=False)


# ---------------------------------------------------------------- reading

def from_json(text: str | bytes, app_ranges: bool = False) -> Run:
    """The ``Run`` a ``to_json`` file describes, or ``ModelFileError`` saying what is wrong.

    ``app_ranges``: also refuse any setting outside what the Playground offers (e.g.
    ``n_train`` past 5,000 or a 4096-unit layer), so that an uploaded file cannot ask a
    shared server for more memory or time than its widgets could."""
    if not isinstance(text, (str, bytes, bytearray)):
        raise ModelFileError(f"a model file is text, got {type(text).__name__}")
    if len(text) > MAX_BYTES:
        raise ModelFileError(f"the file has {len(text):,} characters, more than the "
                             f"{MAX_BYTES:,} allowed")
    try:
        doc = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as error:  # JSONDecodeError, UnicodeDecodeError
        raise ModelFileError(f"not a model file: not JSON ({cut(error, 200)})") from None
    try:
        return _read(doc, app_ranges)
    except ModelFileError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, RecursionError,
            RuntimeError) as error:  # what a check below did not foresee
        raise ModelFileError(f"not a model file: {cut(error, 200)}") from None


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _need(condition: bool, message: str) -> None:
    if not condition:
        raise ModelFileError(message)


def _read(doc: Any, app_ranges: bool = False) -> Run:
    _need(isinstance(doc, dict), "not a model file: expected a JSON object")
    _need(doc.get("format") == FORMAT, f"not a model file: its format is not {FORMAT!r}")
    _need(doc.get("version") == VERSION and not isinstance(doc.get("version"), bool),
          f"a model file of version {cut(repr(doc.get('version')))}; this minidl reads "
          f"version {VERSION}")
    unknown = sorted(set(doc) - _TOP_KEYS)
    _need(not unknown, f"unknown field {cut(repr(unknown[0])) if unknown else ''} in the model file")
    config = _config(doc.get("settings"))
    if app_ranges:
        for name in set(hparams.names("app")) & set(Config.field_names()):
            value = getattr(config, name)
            _need(hparams.in_app_range(name, value),
                  f"its {hparams.label(name)} ({name}) is {cut(repr(hparams.format_value(value)))}, "
                  "outside what the Playground offers")
    _need(doc.get("features", list(config.features)) == list(config.features),
          "its features differ from its settings' features")
    weights = _weights(doc.get("layers"), config.sizes())
    history = _history(doc.get("history", []))
    epoch = doc.get("epoch", len(history))
    _need(epoch == len(history) and not isinstance(epoch, bool),
          f"its history ends at epoch {len(history)}, not at {cut(repr(epoch))}")
    _need(not (history and history[-1]["diverged"]),
          f"this run diverged at epoch {epoch}: it has no weights left to inspect or train")
    points = _points(doc.get("points"), config)
    try:
        run = Run(config, points=points)
    except ValueError as error:
        raise ModelFileError(f"cannot rebuild the run: {cut(error, 200)}") from None
    for (p, _), w in zip(run.model.param(), weights):
        p.copy_(w)
    run.history, run.epoch = history, epoch
    if epoch:  # its replay starts here: a file keeps no earlier weights
        run.snapshots.record(epoch, run.model)
    return run


def _config(settings: Any) -> Config:
    _need(isinstance(settings, dict), "the model file has no settings object")
    names = Config.field_names()
    for name in settings:
        _need(name in names, f"unknown setting {cut(repr(name))} in the model file")
    try:
        return Config(**settings)
    except ValueError as error:
        raise ModelFileError(cut(error, 200)) from None


def _numbers(values: Any, shape: tuple[int, ...], what: str) -> torch.Tensor:
    """A nested list of finite numbers of exactly ``shape``, as float64."""
    def ok(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    if len(shape) == 1:
        _need(isinstance(values, list) and len(values) == shape[0],
              f"{what}: expected {shape[0]} numbers")
        _need(all(ok(v) for v in values), f"{what}: expected finite numbers")
        return torch.tensor(values, dtype=torch.float64)
    _need(isinstance(values, list) and len(values) == shape[0],
          f"{what}: expected {shape[0]} rows")
    return torch.stack([_numbers(row, shape[1:], what) for row in values])


def _weights(layers: Any, sizes: list[int]) -> list[torch.Tensor]:
    """The weights and biases in ``model.param()`` order, checked against the network the
    settings describe (``sizes``)."""
    _need(isinstance(layers, list) and len(layers) == len(sizes) - 1,
          f"the model file must have {len(sizes) - 1} layers for a "
          f"{'-'.join(map(str, sizes))} network")
    out = []
    for i, (layer, n_in, n_out) in enumerate(zip(layers, sizes[:-1], sizes[1:]), start=1):
        _need(isinstance(layer, dict) and set(layer) == {"weight", "bias"},
              f"layer {i}: expected an object with a weight and a bias")
        out.append(_numbers(layer["weight"], (n_out, n_in), f"layer {i} weight ({n_out} × {n_in})"))
        out.append(_numbers(layer["bias"], (n_out,), f"layer {i} bias ({n_out})"))
    return out


def _history(history: Any) -> list[dict]:
    _need(isinstance(history, list), "the history must be a list of epochs")
    out = []
    for i, h in enumerate(history, start=1):
        _need(isinstance(h, dict) and set(h) == set(HISTORY_KEYS),
              f"history entry {i}: expected the keys {', '.join(HISTORY_KEYS)}")
        _need(h["epoch"] == i and isinstance(h["epoch"], int)
              and not isinstance(h["epoch"], bool), f"history entry {i}: epoch is not {i}")
        _need(isinstance(h["diverged"], bool), f"history entry {i}: diverged is not true/false")
        entry = {"epoch": i}
        for key in HISTORY_KEYS[1:-1]:
            v = h[key]
            _need(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)),
                  f"history entry {i}: {key} is not a number")
            entry[key] = math.nan if v is None else float(v)
        entry["diverged"] = h["diverged"]
        out.append(entry)
    return out


def _points(points: Any, config: Config) -> tuple[torch.Tensor, torch.Tensor] | None:
    if config.dataset != "custom":
        _need(points is None, "points are given, but the data set is not 'custom'")
        return None
    _need(isinstance(points, dict) and set(points) == {"x1", "x2", "label"},
          "the data set is 'custom' but the file has no points (x1, x2, label)")
    columns = [points[k] for k in ("x1", "x2", "label")]
    _need(all(isinstance(c, list) for c in columns) and len({len(c) for c in columns}) == 1,
          "points: x1, x2 and label must be lists of one length")
    _need(all(isinstance(v, (int, float)) and not isinstance(v, bool)
              for c in columns[:2] for v in c), "points: x1 and x2 must be numbers")
    _need(all(isinstance(v, int) and not isinstance(v, bool) for v in columns[2]),
          "points: labels must be the integers 0 or 1")
    try:
        return data.check_points(list(zip(columns[0], columns[1])), columns[2])
    except ValueError as error:
        raise ModelFileError(f"points: {cut(error, 200)}") from None


# ---------------------------------------------------------------- script

_SCRIPT = '''\
"""Rebuild and retrain a minidl model: {title}.

Written by minidl {version}.  It trains a fresh network from the same settings and seeds
as the exported run, so it ends with the same metrics (same minidl, same kind of machine).
It needs the minidl package (Python 3.11 or later; it brings torch): in a copy of the
minidl playground's source folder run  pip install .  then  python {{this file}}
"""

import json
import sys

try:
    import torch

    from minidl import Config, Run
except ModuleNotFoundError as missing:  # one line that says what to do, not a traceback
    sys.exit(f"This script needs the minidl package ({{missing.name}} is not installed): in a "
             "copy of the minidl playground's source folder run  pip install .  then run "
             "this script again.")

SETTINGS = {{
{settings}
}}
{points}

def main() -> None:
    torch.set_num_threads(1)  # tiny networks run fastest on one thread
    config = Config(**SETTINGS)
    points = None
    if POINTS is not None:  # your own points: (x1, x2) rows and their labels
        points = (torch.tensor(list(zip(POINTS["x1"], POINTS["x2"]))),
                  torch.tensor(POINTS["label"]))
    run = Run(config, points=points)
    print(f"training a {{'-'.join(map(str, config.sizes()))}} network "
          f"for {{config.epochs}} epochs")

    def report(epoch: int, metrics: dict) -> None:
        if epoch % 10 == 0 or epoch == config.epochs:
            score = (f"test loss {{metrics['test_loss']:.4f}}" if config.problem == "regression"
                     else f"test accuracy {{metrics['test_acc']:.3f}}")
            print(f"epoch {{epoch}}: train loss {{metrics['train_loss']:.4f}}, {{score}}")

    run.fit(report)
    print("final", json.dumps(run.history[-1]))


if __name__ == "__main__":
    main()
'''


def to_script(run: Run) -> str:
    """A runnable Python script that trains the run's model afresh with ``minidl`` (same
    settings, seeds and points) and prints its final metrics as ``final {json}``."""
    c = run.config
    settings = "\n".join(f"    {name!r}: {getattr(c, name)!r},  # {hparams.label(name)}"
                         for name in Config.field_names())
    pts = run_points(run)
    if pts is None:
        points = "POINTS = None\n"
    else:
        X, y = pts
        points = ("POINTS = {\n"
                  f"    'x1': {X[:, 0].tolist()!r},\n"
                  f"    'x2': {X[:, 1].tolist()!r},\n"
                  f"    'label': {y.tolist()!r},\n"
                  "}\n")
    title = (f"{'-'.join(map(str, c.sizes()))} {hparams.label(c.activation)} network, "
             f"{hparams.label(c.optimizer)}, on {hparams.display('dataset', c.dataset)}")
    return _SCRIPT.format(title=title, version=__version__, settings=settings, points=points)
