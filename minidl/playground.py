"""The Playground's settings and live-training logic, without any UI.

A *setting* is one plain value the visitor controls (``lr``, ``layers``, …);
``SETTINGS`` declares each one's kind, range and default once, and the page,
the URL and the tests all read it from there:

- ``parse_query(params)`` turns URL query parameters into a complete settings
  dict plus human-readable warnings: an unknown, malformed or out-of-range
  value falls back to its default (a learning rate between the slider's stops
  snaps to the nearest stop) — never an exception;
- ``to_query(settings)`` is the inverse: only values that differ from the
  defaults, formatted so that ``parse_query`` reads them back exactly;
- ``to_config(settings)`` builds the ``minidl.train.Config`` of a run;
- ``classify_change(old, new)`` tells which changed fields need a fresh run
  (data, architecture, init) and which a live run can absorb (optimizer and
  its hyperparameters, batch size, epoch budget);
- ``train_chunk(run, seconds)`` trains minibatches for about ``seconds`` (an epoch
  may end in a later chunk), and a
  ``Pacer`` picks ``seconds`` so that redraws come ~5.5 times a second while at
  least half of the time goes to training;
- ``snapshot(run)`` collects what the live view draws (boundary image, mistakes,
  metrics, history), so the page never touches the model while drawing.

Defaults are the seed report's reference network on the disk (``Config()``),
with an epoch budget of 200: SGD at batch 1 is noisy, and 200 epochs end at
≈ 97.6 % test accuracy where 100 end at ≈ 96 %.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pandas as pd

from . import boundary, charts, data, nn, optim, train
from .train import Config, Run


def _stops(mantissas: tuple[int, ...], low_exp: int, high_exp: int) -> tuple[float, ...]:
    # parsed from text so that a stop equals float("<the same text in a URL>") exactly
    values = [float(f"{m}e{e}") for e in range(low_exp, high_exp + 1) for m in mantissas]
    return tuple(v for v in values if v <= 10.0 ** high_exp)


LR_STOPS = _stops((1, 2, 3, 5), -5, 0)      # 1e-5 … 1, four stops per decade
EPS_STOPS = _stops((1,), -10, -2)           # 1e-10 … 1e-2

VIEWS = ("smooth", "discrete")


@dataclass(frozen=True)
class Setting:
    """One control: ``kind`` is "choice", "int", "float" (in [low, high]) or "stops" (log slider)."""

    name: str
    kind: str
    default: object
    low: float | None = None
    high: float | None = None
    choices: tuple = ()
    label: str = ""
    help: str = ""


_C = Config()
SETTINGS: dict[str, Setting] = {s.name: s for s in [
    Setting("dataset", "choice", _C.dataset, choices=tuple(data.DATASETS), label="data set"),
    Setting("n_train", "int", _C.n_train, 10, 5000, label="training points"),
    Setting("n_test", "int", _C.n_test, 10, 5000, label="test points"),
    Setting("noise", "float", _C.noise, 0.0, 0.5, label="label noise",
            help="fraction of training labels flipped at random (test labels stay true)"),
    Setting("data_seed", "int", _C.data_seed, 0, 1_000_000, label="data seed"),
    Setting("layers", "int", len(_C.hidden), 1, 6, label="hidden layers"),
    Setting("width", "int", _C.hidden[0], 1, 64, label="units per hidden layer"),
    Setting("activation", "choice", _C.activation, choices=tuple(nn.ACTIVATIONS),
            label="activation"),
    Setting("init", "choice", _C.init, choices=nn.INIT_METHODS, label="initialisation"),
    Setting("gain", "float", _C.gain, 0.01, 32.0, label="Xavier gain",
            help="weights and biases ~ N(0, 2·gain / (fan_in + fan_out))"),
    Setting("init_seed", "int", _C.init_seed, 0, 1_000_000, label="init seed",
            help="seeds the initial weights and the order of the minibatches"),
    Setting("optimizer", "choice", _C.optimizer, choices=tuple(optim.OPTIMIZERS),
            label="optimizer"),
    Setting("lr", "stops", _C.lr, LR_STOPS[0], LR_STOPS[-1], choices=LR_STOPS,
            label="learning rate"),
    Setting("momentum", "float", _C.momentum, 0.0, 0.99, label="momentum"),
    Setting("beta1", "float", _C.beta1, 0.0, 0.999, label="β₁"),
    Setting("beta2", "float", _C.beta2, 0.0, 0.9999, label="β₂"),
    Setting("eps", "stops", _C.eps, EPS_STOPS[0], EPS_STOPS[-1], choices=EPS_STOPS, label="ε"),
    Setting("rho", "float", _C.rho, 0.0, 0.999, label="ρ"),
    Setting("batch_size", "int", _C.batch_size, 1, 5000, label="batch size"),
    Setting("epochs", "int", _C.epochs, 1, 10_000, label="epoch budget"),
    Setting("view", "choice", "smooth", choices=VIEWS, label="boundary",
            help="smooth: the class-1 score as a colour ramp; discrete: the predicted class"),
]}

# hyperparameters each optimizer reads (the page shows only these)
OPTIMIZER_SETTINGS = {"sgd": ("momentum",), "adam": ("beta1", "beta2", "eps"),
                      "rmsprop": ("rho", "eps")}
# Config fields whose change needs a fresh run (all others are applied live)
RESET_FIELDS = train.RESET_FIELDS
# query parameters Streamlit itself understands; never warned about
_STREAMLIT_PARAMS = ("embed", "embed_options")


def defaults() -> dict:
    return {name: s.default for name, s in SETTINGS.items()}


def _parse_one(s: Setting, text: str) -> tuple[object, str | None]:
    """``(value, warning)``; on failure the value is the default."""
    fallback = f"using the default {format_value(s.default)}"
    if s.kind == "choice":
        key = text.strip().lower()
        if key in s.choices:
            return key, None
        return s.default, (f"`{s.name}={text}` is not one of {', '.join(s.choices)}; "
                           f"{fallback}.")
    try:
        value: float = int(text) if s.kind == "int" else float(text)
    except ValueError:
        kind = "an integer" if s.kind == "int" else "a number"
        return s.default, f"`{s.name}={text}` is not {kind}; {fallback}."
    if not (math.isfinite(value) and s.low <= value <= s.high):
        return s.default, (f"`{s.name}={text}` is outside [{format_value(s.low)}, "
                           f"{format_value(s.high)}]; {fallback}.")
    if s.kind == "stops" and value not in s.choices:
        nearest = min(s.choices, key=lambda stop: abs(math.log(stop) - math.log(value)))
        return nearest, (f"`{s.name}={text}` is not one of the slider's values; using the "
                         f"nearest, {format_value(nearest)}.")
    return value, None


def parse_query(params: Mapping[str, str | list[str]]) -> tuple[dict, list[str]]:
    """URL query parameters → (complete settings, warnings).  Never raises."""
    settings, warnings = defaults(), []
    for name, raw in params.items():
        text = raw[-1] if isinstance(raw, list) and raw else raw
        if name in _STREAMLIT_PARAMS:
            continue
        if name not in SETTINGS:
            warnings.append(f"Unknown URL parameter `{name}` ignored.")
            continue
        if not isinstance(text, str):
            warnings.append(f"`{name}` has no value; using the default.")
            continue
        settings[name], warning = _parse_one(SETTINGS[name], text)
        if warning:
            warnings.append(warning)
    return settings, warnings


def format_value(value: object) -> str:
    """Shortest text that parses back to ``value`` (``repr`` for floats: ``1e-05``, ``0.9``)."""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def to_query(settings: Mapping[str, object]) -> dict[str, str]:
    """The settings that differ from the defaults, as query parameters, in ``SETTINGS`` order."""
    return {name: format_value(settings[name]) for name, s in SETTINGS.items()
            if name in settings and settings[name] != s.default}


def to_config(settings: Mapping[str, object]) -> Config:
    """The ``Config`` of a run with these settings (raises ``ValueError`` if one is invalid)."""
    values = {k: v for k, v in settings.items() if k in Config.field_names()}
    values["hidden"] = (int(settings["width"]),) * int(settings["layers"])
    return Config(**values)


def classify_change(old: Config, new: Config) -> tuple[list[str], dict]:
    """``(reset_reasons, live_updates)`` between two configs.

    ``reset_reasons`` describes every changed field that needs a fresh run
    ("activation: tanh → relu"); ``live_updates`` maps every other changed
    field to its new value (for ``Run.set_hyperparameters``).
    """
    reasons, live = [], {}
    for name in Config.field_names():
        before, after = getattr(old, name), getattr(new, name)
        if before == after:
            continue
        if name in RESET_FIELDS:
            reasons.append(f"{name}: {describe(name, before)} → {describe(name, after)}")
        else:
            live[name] = after
    return reasons, live


def describe(name: str, value: object) -> str:
    if name == "hidden":
        return f"{len(value)} × {value[0]}" if len(set(value)) == 1 else "-".join(map(str, value))
    return format_value(value)


def train_chunk(run: Run, seconds: float, clock: Callable[[], float] = time.perf_counter) -> int:
    """Train minibatches until ``seconds`` have passed (at least one), the epoch budget is
    used up or the run diverges; an epoch may end in a later chunk.  Returns the number
    of epochs completed."""
    start, done = clock(), 0
    while run.epoch < run.config.epochs and not run.diverged:
        if run.train_steps(seconds - (clock() - start), clock) is not None:
            done += 1
        if clock() - start >= seconds:
            break
    return done


@dataclass
class Pacer:
    """Sizes live-training chunks: each frame (a chunk of training, then a redraw)
    should last about ``frame_seconds``, but training gets at least as long as the
    rest of the frame (redraw, Streamlit, the browser's request), i.e. ≥ 50 %.

    ``overhead`` is a moving average of the time between the end of one chunk and
    the start of the next; gaps over a second (a pause) are not counted.
    """

    frame_seconds: float = 0.18
    overhead: float = 0.05
    last_end: float | None = None

    def next_chunk(self, now: float) -> float:
        if self.last_end is not None and now - self.last_end < 1.0:
            self.overhead = 0.7 * self.overhead + 0.3 * (now - self.last_end)
        return max(self.frame_seconds - self.overhead, self.overhead)

    def chunk_done(self, now: float) -> None:
        self.last_end = now


@dataclass
class Frame:
    """What the live view draws of a run at one moment (computed while holding the run)."""

    epoch: int
    budget: int
    status: str
    parameters: int
    metrics: dict              # the last epoch's metrics (the initial ones before epoch 1)
    image: str                 # the boundary as a PNG data URL
    mistakes: pd.DataFrame     # charts.wrong_frame rows of training and test points
    history: pd.DataFrame      # Run.history_frame()


def snapshot(run: Run, resolution: int = 100, discrete: bool = False) -> Frame:
    """Everything the live view needs from ``run``, so drawing never touches the model."""
    mistakes = pd.concat([
        charts.wrong_frame(run.X_train, run.y_train, run.model.forward(run.X_train).argmax(1),
                           "train"),
        charts.wrong_frame(run.X_test, run.y_test, run.model.forward(run.X_test).argmax(1),
                           "test")], ignore_index=True)
    return Frame(epoch=run.epoch, budget=run.config.epochs, status=status(run),
                 parameters=nn.parameter_count(run.model),
                 metrics=run.history[-1] if run.history else run.metrics(),
                 image=boundary.boundary_image(run.model, resolution, discrete),
                 mistakes=mistakes, history=run.history_frame())


def status(run: Run) -> str:
    """"diverged", "done" (epoch budget used up), "fresh" (no epoch yet) or "partial"."""
    if run.diverged:
        return "diverged"
    if run.epoch >= run.config.epochs:
        return "done"
    return "fresh" if run.epoch == 0 else "partial"
