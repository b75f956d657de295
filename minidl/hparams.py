"""The settings table: every setting of minidl, declared once.

A *setting* is one plain value a person chooses — a learning rate, a batch
size, a data seed, the activation.  ``TABLE`` holds one ``Setting`` per name
with everything known about it: type, default, valid range or choices, scale,
display label and symbol, which optimizers read it, whether changing it needs
a fresh run, its default cross-validation values, the range the app offers,
and a help line.  Everything else derives from this table:

- validation (``check``): optimizers at construction and in
  ``set_hyperparameters``, ``train.Config``, grids, the app and the CLI all
  call the same function and get the same ``ValueError``;
- text (``parse`` / ``format_value`` / ``display``): URLs and CLI flags read and
  write values with ``parse`` and ``format_value`` (each the other's inverse);
  tables and charts show them with ``display`` and ``label``;
- ``train.Config``'s fields (``names("config")``), the Playground's widgets and
  URL (``names("app")``), ``minidl train``'s flags (``names("cli")``);
- grids (``default_grid``, ``grid_keys``): which settings cross-validation
  searches for each optimizer and the values it tries by default.

Adding a hyperparameter means adding a row here and writing its maths.

Valid ranges are what the library accepts; ``ui_low`` / ``ui_high`` / ``stops``
narrow what the app offers (a public demo bounds its work).  An interval is
written ``[low, high)`` style: ``low_open`` / ``high_open`` exclude an end.

Why this module is long: a third of it is the table, one row per setting, and
the functions beside it (checks, text, grids) are the only code that reads a
row's fields — so everything a setting means stays in this one file.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .text import cut

Pair = tuple[str, str]  # (activation, optimizer): the report's unit of comparison

# set: some of the choices; text: free text of at most ``high`` characters (read further
# by the code that uses it, e.g. ``contestants.parse_contestants``)
KINDS = ("float", "int", "choice", "bool", "widths", "set", "text")
PARTS = ("data", "network", "init", "optimizer", "training", "view", "race")
# where a setting appears: a train.Config field, the Playground (widget + URL), `minidl train`,
# the Compare page (widget + URL; it also reads the Playground's settings for its base)
WHERE = ("config", "app", "cli", "race")
SEED_HIGH = 2**63  # torch.Generator.manual_seed takes a 64-bit integer
MAX_POINTS = 10_000_000  # a data set past this is a typo, not an experiment (80 MB of points)
MAX_LAYERS = 32
MAX_OWN_POINTS = 10_000  # your own points (an upload or a drawing): ~200 KB of CSV
# a grid past these is a typo or an attack, not a search: they bound a job's memory and lists
MAX_GRID_VALUES = 100      # values of one setting
MAX_CONFIGURATIONS = 2000  # grid points of one pair (the largest default grid has 192)
# every number has an upper bound, so that a value of any length is an error, never an
# overflow: a rate, penalty or gain past MAX_SCALE only diverges; MAX_EPOCHS is weeks of CPU
MAX_SCALE = 1e6
MAX_EPOCHS = 1_000_000
MAX_NUMBER_TEXT = 40  # characters of a number as text: longer is refused before converting it
MAX_VALUES_TEXT = MAX_GRID_VALUES * (MAX_NUMBER_TEXT + 2)  # of a list of values: ", "-separated


def _stops(mantissas: tuple[int, ...], low_exp: int, high_exp: int) -> tuple[float, ...]:
    # parsed from text, so that a stop equals float("<the same text in a URL>") exactly
    values = [float(f"{m}e{e}") for e in range(low_exp, high_exp + 1) for m in mantissas]
    return tuple(v for v in values if v <= 10.0 ** high_exp)


@dataclass(frozen=True)
class Setting:
    """One row of the settings table (see the module docstring)."""

    name: str
    kind: str                         # one of KINDS
    default: Any
    part: str                         # one of PARTS
    label: str                        # for people: "learning rate"
    help: str = ""
    symbol: str = ""                  # short form for compact tables: "η"
    low: float | None = None          # valid range (None: unbounded)
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple = ()               # kind "choice" / "set": allowed values …
    choice_labels: tuple = ()         # … and how people read them
    scale: str = "linear"             # "log": sliders, axes and grids space values by ratio
    optimizers: tuple[str, ...] = ()  # part "optimizer": the optimizers that read it
    fresh_run: bool = False           # a change needs a new network (data, architecture, init)
    grid: Mapping[str, tuple] | None = None  # default CV values by optimizer / activation / "*"
    where: tuple[str, ...] = ("config", "app", "cli")
    ui_low: float | None = None       # the app's range, inside the valid one
    ui_high: float | None = None
    ui_step: float | None = None
    stops: tuple = ()                 # the app's slider stops (log scale)
    ui_length: int | None = None      # kind "widths": the most layers the app offers
    # what the app opens with where it differs from ``default`` (the library's, the CLI's,
    # sweeps'): the Playground's small network, whose unit maps are large enough to read
    app_default: Any = None
    convention: bool = False          # an unstated convention of the report (issue: Table I)
    # part "optimizer": what an optimizer built without this value takes, where it is not
    # ``default`` (a run's value): PyTorch's default for that optimizer
    optimizer_defaults: Mapping[str, Any] = field(default_factory=dict)

    @property
    def searchable(self) -> bool:
        """Cross-validation may put this setting in a grid."""
        return self.grid is not None

    def applies_to(self, optimizer: str) -> bool:
        """Whether ``optimizer`` reads this setting (settings of other parts: always)."""
        return self.part != "optimizer" or optimizer in self.optimizers

    def expectation(self) -> str:
        """What a valid value looks like, in words: ``"a finite number > 0"``."""
        if self.kind == "choice":
            return "one of " + ", ".join(map(str, self.choices))
        if self.kind == "bool":
            return "true or false"
        if self.kind == "text":
            return f"text of at most {self.high:,} characters"
        if self.kind == "set":
            return "one or more of " + ", ".join(map(str, self.choices)) + ", each once"
        if self.kind == "widths":
            return (f"1 to {MAX_LAYERS} integers in [{_num(self.low)}, {_num(self.high)}], "
                    "one per hidden layer")
        what = "a finite number" if self.kind == "float" else "an integer"
        if self.low is not None and self.high is not None:
            return (f"{what} in {'(' if self.low_open else '['}{_num(self.low)}, "
                    f"{_num(self.high)}{')' if self.high_open else ']'}")
        if self.low is not None:
            return f"{what} {'>' if self.low_open else '>='} {_num(self.low)}"
        if self.high is not None:
            return f"{what} {'<' if self.high_open else '<='} {_num(self.high)}"
        return what

    @property
    def app_value(self) -> Any:
        """The value the app opens with: ``app_default`` where set, else ``default``."""
        return self.default if self.app_default is None else self.app_default

    @property
    def app_low(self) -> float | None:
        """The least value the app offers: its first stop, ``ui_low`` or the valid low."""
        return self.stops[0] if self.stops else self.ui_low if self.ui_low is not None \
            else self.low

    @property
    def app_high(self) -> float | None:
        return self.stops[-1] if self.stops else self.ui_high if self.ui_high is not None \
            else self.high


def _num(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


ACTIVATIONS = ("relu", "tanh", "sigmoid", "identity")
OPTIMIZERS = ("sgd", "adam", "rmsprop")
# the pairs the report compares (Identity is the Playground's linear baseline)
REPORT_ACTIVATIONS = ("relu", "tanh", "sigmoid")
# the report's Fig. 2: every pair reaches at least this mean test accuracy (over 10 runs)
REPORT_MIN_ACCURACY = 0.969
LR_GRID = (1e-4, 1e-3, 1e-2, 1e-1)  # cross-validation's default learning rates (SGD adds 1)
RACE_PRESETS = ("paper", "cv", "optimizers", "activations", "lrs", "custom")
MAX_TEXT = 2000  # characters of a text setting (a URL may carry far more)
DATASETS = ("disk", "xor", "gaussians", "spiral", "plane", "multigauss",
            "custom")  # custom: points you give
PROBLEMS = ("classification", "regression")
# the data sets of a regression problem (targets in [−1, 1]); every other one is a classifier's
REGRESSION_DATASETS = ("plane", "multigauss")
INIT_METHODS = ("xavier", "zero")
VIEWS = ("smooth", "discrete")
INPUTS = ("raw", "standardised")
LOSS_REDUCTIONS = ("mean", "sum", "batch_mean")
TARGETS = ("one_hot", "signed")
# the network's input features (``data.FEATURES`` computes them; a test keeps the two in step)
FEATURES = ("x1", "x2", "x1sq", "x2sq", "x1x2", "sinx1", "sinx2")
FEATURE_LABELS = ("x₁", "x₂", "x₁²", "x₂²", "x₁x₂", "sin x₁", "sin x₂")
LR_STOPS = _stops((1, 2, 3, 5), -5, 0)     # 1e-5 … 1, four stops per decade
EPS_STOPS = _stops((1,), -10, -2)          # 1e-10 … 1e-2
WEIGHT_DECAY_STOPS = (0.0, *_stops((1, 2, 3, 5), -6, -1))

_DEFAULT_HIDDEN = (25, 25, 25)  # the report's 2-25-25-25-2
_APP_HIDDEN = (6, 6)            # two small layers, as TensorFlow Playground opens with

TABLE: dict[str, Setting] = {s.name: s for s in [
    # ---------------------------------------------------------------- data
    Setting("problem", "choice", "classification", "data", "problem type", symbol="problem",
            choices=PROBLEMS, choice_labels=("classification", "regression"), fresh_run=True,
            help="classification: two classes, two outputs (accuracy); regression: a number "
            "in [−1, 1] per point, one output, scored by its mean squared error"),
    Setting("dataset", "choice", "disk", "data", "data set", choices=DATASETS,
            choice_labels=("disk", "XOR", "two Gaussians", "spiral", "plane", "multi-Gaussian",
                           "your own points"),
            fresh_run=True,
            help="the 2-D task: points in the unit square and their class — or, for "
            "regression, their value: plane (a linear slope) or multi-Gaussian (signed "
            "bumps). Your own points: uploaded or drawn (classes), split into training and "
            "test points by the split share"),
    # the app offers counts from 1, so that the training share keeps a small total (10 + 10
    # at 90 % is 18 + 2)
    Setting("n_train", "int", 1000, "data", "training points", symbol="n", low=1,
            high=MAX_POINTS, ui_high=5000, ui_step=100, fresh_run=True),
    Setting("n_test", "int", 1000, "data", "test points", low=1, high=MAX_POINTS,
            ui_high=5000, ui_step=100, fresh_run=True),
    Setting("noise", "float", 0.0, "data", "label noise", low=0.0, high=0.5, ui_step=0.05,
            fresh_run=True,
            help="fraction of training labels flipped at random (test labels stay true)"),
    Setting("jitter", "float", 0.0, "data", "point jitter", symbol="jitter", low=0.0,
            high=0.5, ui_step=0.01, fresh_run=True,
            help="moves every drawn point (training and test) by up to this much along each "
            "axis, uniformly at random, kept inside the unit square; its label comes from "
            "where it was drawn (TensorFlow Playground's noise); your own points stay put"),
    Setting("split", "float", 0.8, "data", "training share", symbol="split", low=0.0,
            high=1.0, low_open=True, high_open=True, ui_low=0.1, ui_high=0.9, ui_step=0.05,
            fresh_run=True, help="the share of the points used for training; the rest are "
            "test points. Your own points: a seeded draw by the data seed. A drawn data set: "
            "training points / (training + test points), and moving it moves those two counts, "
            "their total kept"),
    Setting("data_seed", "int", 0, "data", "data seed", low=0, high=SEED_HIGH, high_open=True,
            ui_high=1_000_000, ui_step=1, fresh_run=True, help="which random draw of the points"),
    Setting("inputs", "choice", "raw", "data", "inputs", symbol="inputs", choices=INPUTS,
            choice_labels=("raw, in [0, 1]", "standardised"), fresh_run=True, grid={},
            convention=True, help="raw: the points as drawn; standardised: (x − ½)·√12, zero "
            "mean and unit variance over the unit square"),
    Setting("features", "set", ("x1", "x2"), "data", "input features", symbol="features",
            choices=FEATURES, choice_labels=FEATURE_LABELS, fresh_run=True,
            help="what the network sees of a point: x₁ and x₂ (as the inputs setting says), "
            "and x₁², x₂², x₁x₂, sin x₁, sin x₂ of the centred coordinate u = 2x − 1"),
    # ---------------------------------------------------------------- network
    Setting("hidden", "widths", _DEFAULT_HIDDEN, "network", "hidden layer widths", low=1,
            high=4096, ui_high=64, ui_step=1, ui_length=6, fresh_run=True,
            app_default=_APP_HIDDEN, help="units of each hidden layer"),
    Setting("activation", "choice", "tanh", "network", "activation", choices=ACTIVATIONS,
            choice_labels=("ReLU", "Tanh", "Sigmoid", "Identity"), fresh_run=True,
            help="the nonlinearity after every hidden layer"),
    # ---------------------------------------------------------------- init
    Setting("init", "choice", "xavier", "init", "initialisation", choices=INIT_METHODS,
            choice_labels=("Xavier", "zero"), fresh_run=True, grid={}),
    Setting("gain", "float", 1.0, "init", "Xavier gain", symbol="gain", low=0.0, low_open=True,
            high=MAX_SCALE, scale="log", ui_low=0.01, ui_high=32.0, ui_step=0.1, fresh_run=True,
            # Sigmoid's derivative is at most 1/4, so its gradients fade layer by layer:
            # it also tries a 16x init variance (Glorot & Bengio's 4x std for sigmoid)
            grid={"sigmoid": (1.0, 16.0)},
            help="weights and biases ~ N(0, 2·gain / (fan_in + fan_out))"),
    Setting("init_scale", "choice", "variance", "init", "Xavier's 2·gain/(n_in + n_out) is the",
            symbol="Xavier reading",
            choices=("variance", "std"), choice_labels=("variance", "standard deviation"),
            fresh_run=True, grid={}, convention=True,
            help="how the report's N(0, 2/(n_in + n_out)) is read: as the variance (ours, "
            "σ = √(2·gain/(n_in + n_out))) or as the standard deviation (σ = 2·gain/(n_in + n_out))"),
    Setting("init_dist", "choice", "normal", "init", "Xavier distribution", symbol="Xavier draw",
            choices=("normal", "uniform"), choice_labels=("normal", "uniform"), fresh_run=True,
            grid={}, convention=True,
            help="N(0, σ²), or U(−√3·σ, √3·σ) of the same variance"),
    Setting("init_bias", "choice", "drawn", "init", "biases at init", symbol="biases",
            choices=("drawn", "zero"),
            choice_labels=("drawn like the weights", "zero"), fresh_run=True, grid={},
            convention=True, help="the report draws biases like weights; most libraries zero them"),
    Setting("init_seed", "int", 0, "init", "init seed", low=0, high=SEED_HIGH, high_open=True,
            ui_high=1_000_000, ui_step=1, fresh_run=True,
            help="seeds the initial weights and the order of the minibatches"),
    # ---------------------------------------------------------------- optimizer
    Setting("optimizer", "choice", "sgd", "optimizer", "optimizer", choices=OPTIMIZERS,
            choice_labels=("SGD", "Adam", "RMSProp"), optimizers=OPTIMIZERS,
            help="the update rule"),
    Setting("lr", "float", 0.01, "optimizer", "learning rate", symbol="lr", low=0.0,
            low_open=True, high=MAX_SCALE, scale="log", optimizers=OPTIMIZERS, stops=LR_STOPS,
            optimizer_defaults={"adam": 1e-3},
            grid={"sgd": (*LR_GRID, 1.0), "*": LR_GRID},
            help="step size η"),
    Setting("momentum", "float", 0.0, "optimizer", "momentum", symbol="μ", low=0.0, high=1.0,
            high_open=True, optimizers=("sgd",), ui_high=0.99, ui_step=0.01,
            grid={"*": (0.0, 0.9)}, help="heavy-ball momentum μ (0: plain SGD)"),
    Setting("beta1", "float", 0.9, "optimizer", "β₁", symbol="β₁", low=0.0, high=1.0,
            high_open=True, optimizers=("adam",), ui_high=0.999, ui_step=0.01,
            grid={"*": (0.8, 0.9)}, help="decay of Adam's first-moment estimate"),
    Setting("beta2", "float", 0.999, "optimizer", "β₂", symbol="β₂", low=0.0, high=1.0,
            high_open=True, optimizers=("adam",), ui_high=0.9999, ui_step=0.0001,
            grid={"*": (0.99, 0.999)}, help="decay of Adam's second-moment estimate"),
    Setting("rho", "float", 0.99, "optimizer", "ρ", symbol="ρ", low=0.0, high=1.0,
            high_open=True, optimizers=("rmsprop",), ui_high=0.999, ui_step=0.01,
            grid={"*": (0.9, 0.99)}, help="decay of RMSProp's squared-gradient average"),
    Setting("eps", "float", 1e-8, "optimizer", "ε", symbol="ε", low=0.0, low_open=True,
            high=1.0, scale="log", optimizers=("adam", "rmsprop"), stops=EPS_STOPS,
            grid={"*": (1e-9, 1e-8)}, help="added to the root of the squared-gradient "
            "average, against division by zero"),
    Setting("weight_decay", "float", 0.0, "optimizer", "weight decay (L2)", symbol="λ",
            low=0.0, high=MAX_SCALE, scale="log", optimizers=OPTIMIZERS, stops=WEIGHT_DECAY_STOPS,
            grid={"*": (0.0,)},
            help="L2 penalty λ: λ·θ is added to every gradient (PyTorch optimizers' weight_decay)"),
    Setting("l1", "float", 0.0, "optimizer", "L1 penalty", symbol="λ₁",
            low=0.0, high=MAX_SCALE, scale="log", optimizers=OPTIMIZERS, stops=WEIGHT_DECAY_STOPS,
            grid={"*": (0.0,)},
            help="L1 penalty λ₁: λ₁·sign(θ) (the subgradient of λ₁·Σ|θ|, sign(0) = 0) is added "
            "to every gradient"),
    # ---------------------------------------------------------------- training
    Setting("batch_size", "int", 1, "training", "batch size", symbol="batch", low=1,
            high=MAX_POINTS, scale="log", ui_high=5000, ui_step=1, grid={"*": (1, 10, 20)},
            help="training points per optimizer step"),
    Setting("loss", "choice", "mean", "training", "MSE reduction", symbol="MSE",
            choices=LOSS_REDUCTIONS,
            choice_labels=("mean over all elements", "sum over all elements",
                           "sum over outputs, mean over batch"), fresh_run=True, grid={},
            convention=True, help="how the squared errors of a minibatch are added up: a sum "
            "multiplies every gradient by the batch size × 2 outputs"),
    Setting("targets", "choice", "one_hot", "training", "targets", symbol="targets",
            choices=TARGETS,
            choice_labels=("one-hot 0/1", "±1"), fresh_run=True, grid={}, convention=True,
            help="what the two outputs are trained towards: (1, 0) / (0, 1), or (1, −1) / (−1, 1) "
            "(a regression's one output is trained towards its target value)"),
    Setting("epochs", "int", 200, "training", "epoch budget", low=1, high=MAX_EPOCHS,
            ui_high=10_000,
            ui_step=50, help="passes over the training points"),
    Setting("shuffle", "bool", True, "training", "shuffle", where=("config", "cli"),
            help="a fresh order of the training points every epoch"),
    # ---------------------------------------------------------------- view
    Setting("view", "choice", "smooth", "view", "boundary", choices=VIEWS,
            choice_labels=("smooth", "discrete"), where=("app",),
            help="smooth: the class-1 score as a colour ramp; discrete: the predicted class"),
    Setting("show_test", "bool", False, "view", "show test points", where=("app",),
            help="draw the test points (squares) as well as the training points (circles)"),
    # ---------------------------------------------------------------- race (Compare page)
    Setting("preset", "choice", "paper", "race", "contestants", choices=RACE_PRESETS,
            choice_labels=("the report's nine pairs (Table I)", "our cross-validated settings",
                           "three optimizers, one activation",
                           "three activations, one optimizer",
                           f"learning rates {LR_GRID[0]:g} … {LR_GRID[-1]:g}",
                           "a hand-made list"), where=("race",),
            help="who races: every contestant shares the data draw, the epoch budget and "
            "(where the networks match) the initial weights"),
    Setting("target_acc", "float", REPORT_MIN_ACCURACY, "race", "target test accuracy",
            low=0.0, high=1.0, ui_low=0.5, ui_high=1.0, ui_step=0.001, where=("race",),
            help="the race notes the epoch at which each contestant first reaches it (the "
            "report: every pair reaches 96.9 % on average)"),
    Setting("contestants", "text", "", "race", "hand-made contestants", high=MAX_TEXT,
            where=("race",),
            help="one contestant a line: the settings in which it differs from the race's, "
            "as name=value, e.g. activation=relu optimizer=adam lr=0.001"),
    Setting("sweep", "text", "", "race", "saved sweep", high=200, where=("race",),
            help="the saved cross-validation sweep whose chosen settings race (its job id)"),
]}


# ---------------------------------------------------------------- lookups

def setting(name: str) -> Setting:
    try:
        return TABLE[name]
    except KeyError:
        raise ValueError(f"unknown setting {name!r}; expected one of {', '.join(TABLE)}") from None


def names(where: str | None = None, part: str | None = None) -> list[str]:
    """Setting names in table order, optionally only those that appear ``where`` / in ``part``."""
    return [n for n, s in TABLE.items()
            if (where is None or where in s.where) and (part is None or s.part == part)]


def defaults(where: str | None = None) -> dict[str, Any]:
    return {n: TABLE[n].default for n in names(where)}


def optimizer_keys(optimizer: str) -> tuple[str, ...]:
    """The hyperparameters ``optimizer`` reads, in table order (``lr`` first)."""
    check("optimizer", optimizer)
    return tuple(n for n, s in TABLE.items()
                 if s.part == "optimizer" and n != "optimizer" and optimizer in s.optimizers)


def optimizer_defaults(optimizer: str) -> dict[str, Any]:
    """The value each of ``optimizer``'s hyperparameters takes when it is not given: its
    ``optimizer_defaults`` entry (Adam's learning rate 0.001, as PyTorch's), else the table's
    default.  ``optim``'s classes and ``optim.make`` both take these."""
    return {k: TABLE[k].optimizer_defaults.get(optimizer, TABLE[k].default)
            for k in optimizer_keys(optimizer)}


def label(name: str) -> str:
    """``"lr"`` → ``"learning rate"``; a choice value → its display name (``"relu"`` → ``"ReLU"``,
    ``"sinx1"`` → ``"sin x₁"``); anything else unchanged."""
    if name in TABLE:
        return TABLE[name].label
    return _CHOICE_LABELS.get(name, name)


def symbol(name: str) -> str:
    s = TABLE.get(name)
    return (s.symbol or s.label) if s else name


_CHOICE_LABELS = {value: text for s in TABLE.values() if s.kind in ("choice", "set")
                  for value, text in zip(s.choices, s.choice_labels)}


def pair_label(pair: Pair) -> str:
    """``("tanh", "sgd")`` → ``"SGD + Tanh"``: optimizer first, as the report names pairs."""
    activation, optimizer = pair
    return f"{label(optimizer)} + {label(activation)}"


def resize_widths(hidden: Sequence[int], layers: int) -> tuple[int, ...]:
    """``hidden`` cut or extended to ``layers`` hidden layers, a new layer as wide as the
    last: what the app's layer count does to its per-layer widths.  ``(25, 8), 3`` →
    ``(25, 8, 8)``; ``(25, 8, 8), 1`` → ``(25,)``."""
    layers = int(layers)
    if layers < 1:
        raise ValueError(f"Invalid hidden layers: {layers} (expected at least 1)")
    widths = tuple(int(w) for w in hidden) or (TABLE["hidden"].default[0],)
    return check("hidden", widths[:layers] + (widths[-1],) * (layers - len(widths)))


def in_app_range(name: str, value: Any) -> bool:
    """Whether a valid value lies in the range the app offers (``app_low`` … ``app_high``;
    for widths: at most ``ui_length`` layers, each in that range)."""
    s = setting(name)
    if s.kind in ("choice", "bool", "set", "text"):
        return True
    values = value if s.kind == "widths" else (value,)
    if s.kind == "widths" and s.ui_length is not None and len(values) > s.ui_length:
        return False
    low, high = s.app_low, s.app_high
    return all((low is None or v >= low) and (high is None or v <= high) for v in values)


# ---------------------------------------------------------------- validation

def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check(name: str, value: Any) -> Any:
    """Return ``value`` as the setting's type if valid, else raise ``ValueError``.

    The message names the setting and what was expected:
    ``Invalid learning rate: -1 (expected a finite number > 0)``.
    """
    s = setting(name)
    if s.kind == "choice":
        if isinstance(value, str) and value in s.choices:
            return value
    elif s.kind == "bool":
        if isinstance(value, bool):
            return value
    elif s.kind == "text":
        if isinstance(value, str) and len(value) <= s.high:
            return value
    elif s.kind == "widths":
        if isinstance(value, (list, tuple)) and 0 < len(value) <= MAX_LAYERS and all(
                isinstance(w, numbers.Integral) and not isinstance(w, bool)
                and s.low <= w <= s.high for w in value):
            return tuple(int(w) for w in value)
    elif s.kind == "set":
        # a set, kept in the table's order: ("x2", "x1") is ("x1", "x2")
        if isinstance(value, (list, tuple)) and value and all(
                isinstance(v, str) and v in s.choices for v in value) \
                and len(set(value)) == len(value):
            return tuple(c for c in s.choices if c in value)
    elif _is_number(value) and _finite(value) and _in_range(s, value):
        if s.kind == "float":
            return float(value)
        if float(value).is_integer():
            return int(value)
    _fail(s, value)


def _finite(value: numbers.Real) -> bool:
    # an integer of any size is finite; math.isfinite would convert it to a float (overflow)
    return isinstance(value, numbers.Integral) or math.isfinite(value)


def _in_range(s: Setting, v: float) -> bool:
    if s.low is not None and (v <= s.low if s.low_open else v < s.low):
        return False
    return not (s.high is not None and (v >= s.high if s.high_open else v > s.high))


def _shown(value: object) -> str:
    return cut(value if isinstance(value, str) and value else repr(value))  # from a URL


def _fail(s: Setting, value: object) -> None:
    shown = cut(repr(value))  # a value from a URL or a file may be long
    fits = {"float": _is_number, "int": _is_number, "choice": lambda v: isinstance(v, str),
            "text": lambda v: isinstance(v, str),
            "bool": lambda v: isinstance(v, bool),
            "widths": lambda v: isinstance(v, (list, tuple)),
            "set": lambda v: isinstance(v, (list, tuple))}[s.kind](value)
    got = "" if fits else f", got {type(value).__name__}"
    raise ValueError(f"Invalid {_what(s)}: {shown} (expected {s.expectation()}{got})")


def _what(s: Setting) -> str:
    """``"learning rate (lr)"``: the label people read and the name code and flags use."""
    return s.label if s.label == s.name else f"{s.label} ({s.name})"


def problem_of(dataset: str) -> str:
    """The problem a data set poses: ``"regression"`` for ``REGRESSION_DATASETS``."""
    return "regression" if check("dataset", dataset) in REGRESSION_DATASETS else "classification"


def datasets_of(problem: str) -> tuple[str, ...]:
    """The data sets of ``problem``, in table order (``custom`` among classification's)."""
    check("problem", problem)
    return tuple(d for d in DATASETS if problem_of(d) == problem)


def check_problem(problem: str, dataset: str, noise: float = 0.0) -> None:
    """``ValueError`` unless ``dataset`` poses ``problem`` (and, for regression, without label
    noise, which flips classes that a regression has not):
    ``Invalid data set (dataset): 'spiral' for regression (expected plane or multigauss)``."""
    if problem_of(dataset) != check("problem", problem):
        raise ValueError(f"Invalid {_what(TABLE['dataset'])}: {dataset!r} for {problem} "
                         f"(expected one of {', '.join(datasets_of(problem))}: the problem type "
                         "chooses which data sets there are)")
    if problem == "regression" and check("noise", noise) > 0:
        raise ValueError(f"Invalid {_what(TABLE['noise'])}: {noise!r} for regression (expected "
                         "0: label noise flips classes; point jitter moves points instead)")


def fit_problem(settings: Mapping[str, Any]) -> tuple[dict, dict[str, str]]:
    """``settings`` with the data set and the label noise made to fit the problem type (a
    data set of the other problem becomes the problem's first; regression takes no label
    noise), and what was changed: ``{name: why}`` in plain words.  The problem type wins,
    as in TensorFlow Playground, where it chooses which data sets are shown."""
    out, changed = dict(settings), {}
    problem = out["problem"]
    if out["dataset"] not in datasets_of(problem):
        out["dataset"] = datasets_of(problem)[0]
        changed["dataset"] = f"not a data set for {problem}; using {out['dataset']}."
    if problem == "regression" and out["noise"]:
        out["noise"] = 0.0
        changed["noise"] = "label noise flips classes, and regression has none; using 0."
    return out, changed


def check_all(values: Mapping[str, Any]) -> dict[str, Any]:
    """``check`` every item; the first bad one raises."""
    return {name: check(name, value) for name, value in values.items()}


# ---------------------------------------------------------------- text

_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def _items(s: Setting, text: str, separators: str = ",") -> list[str]:
    """``"25, 25"`` → ``["25", "25"]``: a list split at ``separators`` (or, with none of them
    in it, at spaces); an empty item (``"25,,25"``, ``"25,"``) is a ``ValueError``, not
    silently dropped."""
    for separator in separators[1:]:
        text = text.replace(separator, separators[0])
    if separators[0] not in text:
        return text.split()
    items = [item.strip() for item in text.split(separators[0])]
    if "" in items:
        raise ValueError(f"Invalid {_what(s)}: {_shown(text.strip())} has an empty item "
                         "(expected values separated by single commas)")
    return items


def parse(name: str, text: str) -> Any:
    """Text (a URL value, a CLI flag) → a checked value; ``ValueError`` naming the setting."""
    s = setting(name)
    raw = text.strip()
    value: Any = raw
    if s.kind == "choice":
        value = raw.lower()
    elif s.kind == "text":
        value = text  # as given: line breaks may matter
    elif s.kind == "bool":
        value = True if raw.lower() in _TRUE else False if raw.lower() in _FALSE else raw
    elif s.kind == "widths":
        items = _items(s, raw)
        try:
            value = tuple(int(w) for w in items)
        except ValueError:
            pass
    elif s.kind == "set":
        value = tuple(v.lower() for v in _items(s, raw))
    elif len(raw) > MAX_NUMBER_TEXT:  # refused unread: converting it is the attack
        value = None
    else:
        for number in (int, float):  # int first: a float would round a large seed
            try:
                value = number(raw)
                break
            except ValueError:
                continue
    try:
        return check(name, value)
    except ValueError:  # say it with the text given, not the number it became
        raise ValueError(f"Invalid {_what(s)}: {_shown(raw)} (expected {s.expectation()})"
                         ) from None


def format_value(value: Any) -> str:
    """The shortest text that ``parse`` reads back to ``value`` (``repr`` of a float:
    ``1e-05``, ``0.9``; widths as ``25,25,25``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    return str(value)


def is_missing(value: Any) -> bool:
    """An empty cell of a results table (``None`` or NaN): a setting another row's grid had."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def display(name: str, value: Any) -> str:
    """A value as people read it: ``0.001``, ``ReLU``, ``25-25-25``, ``yes``."""
    s = TABLE.get(name)
    if is_missing(value):
        return ""
    if s is not None and s.kind in ("choice", "set"):
        # its own setting's labels: one value may mean two things ("custom": your own points
        # as a data set, a hand-made list of contestants in a race)
        labels = dict(zip(s.choices, s.choice_labels))
        if s.kind == "choice":
            return labels.get(value, label(value))
        if isinstance(value, (tuple, list)):
            return ", ".join(labels.get(v, str(v)) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (tuple, list)):
        return "-".join(map(str, value))
    if _is_number(value):
        value = float(value)
        return str(int(value)) if value.is_integer() and abs(value) < 1e6 else f"{value:g}"
    return str(value)


def describe(config: Mapping[str, Any], keys: Iterable[str]) -> str:
    """``"lr 0.01, batch 10, β₁ 0.9"``: the given keys of a configuration, compactly."""
    return ", ".join(f"{symbol(k)} {display(k, config[k])}" for k in keys
                     if k in config and display(k, config[k]) != "")


# ---------------------------------------------------------------- grids

_GRID_PARTS = ("optimizer", "training", "init", "data")  # the order of grid columns


def grid_keys(optimizer: str) -> tuple[str, ...]:
    """Settings cross-validation may search for ``optimizer``: its hyperparameters, then the
    training, init and data settings (table order within each part)."""
    return tuple(n for part in _GRID_PARTS for n, s in TABLE.items()
                 if s.part == part and s.searchable and s.applies_to(optimizer))


def optimizer_grid(optimizer: str) -> dict[str, list]:
    """The default values an optimizer's grid searches (its own and the training settings)."""
    return {n: list(s.grid.get(optimizer, s.grid.get("*"))) for n, s in TABLE.items()
            if s.searchable and s.applies_to(optimizer)
            and s.grid.get(optimizer, s.grid.get("*")) is not None}


def activation_grid(activation: str) -> dict[str, list]:
    """Extra default values an activation searches (Sigmoid: Xavier gain 1 and 16)."""
    return {n: list(values) for n, values in _ACTIVATION_GRIDS.get(activation, {}).items()}


_ACTIVATION_GRIDS = {a: {n: s.grid[a] for n, s in TABLE.items() if s.searchable and a in s.grid}
                     for a in ACTIVATIONS}


def default_grid(activation: str, optimizer: str) -> dict[str, list]:
    """One pair's default grid: the activation's extras, then the optimizer's grid."""
    return {**activation_grid(activation), **optimizer_grid(optimizer)}


def check_grid(grid: Mapping[str, Sequence | Any], optimizer: str | None = None
               ) -> dict[str, list]:
    """A grid (setting → values) checked value by value; with ``optimizer``, only the keys
    that apply to it are kept.  Duplicates are dropped (first kept).  At most
    ``MAX_GRID_VALUES`` values per setting and ``MAX_CONFIGURATIONS`` grid points."""
    if not isinstance(grid, Mapping) or not grid:
        raise ValueError("a grid must be a non-empty mapping of setting -> list of values")
    if optimizer is not None:
        check("optimizer", optimizer)
    clean: dict[str, list] = {}
    for key, values in grid.items():
        if key not in TABLE or not TABLE[key].searchable:
            searchable = [n for n, s in TABLE.items() if s.searchable]
            raise ValueError(f"unknown grid key {key!r}; expected some of {', '.join(searchable)}")
        checked = check_values(key, list(values) if isinstance(values, (list, tuple))
                               else [values])
        if optimizer is None or TABLE[key].applies_to(optimizer):
            clean[key] = checked
    return check_grid_size(clean)


def check_grid_size(grid: Mapping[str, Sequence]) -> Mapping[str, Sequence]:
    """``grid`` if it has at most ``MAX_CONFIGURATIONS`` points, else ``ValueError``."""
    points = math.prod(len(v) for v in grid.values())
    if points > MAX_CONFIGURATIONS:
        raise ValueError(f"a grid of {points:,} configurations is too large (at most "
                         f"{MAX_CONFIGURATIONS:,} per activation × optimizer pair)")
    return grid


def check_values(name: str, values: list) -> list:
    """A non-empty list of one setting's values, each ``check``ed, duplicates dropped."""
    if not values:
        raise ValueError(f"Invalid {_what(setting(name))}: an empty list "
                         "(expected at least one value)")
    if len(values) > MAX_GRID_VALUES:
        raise ValueError(f"Invalid {_what(setting(name))}: {len(values):,} values "
                         f"(expected at most {MAX_GRID_VALUES})")
    checked: list = []
    for value in values:
        value = check(name, value)
        if value not in checked:
            checked.append(value)
    return checked


def parse_values(name: str, text: str) -> list:
    """``"0.001, 0.01"`` → ``[0.001, 0.01]``: comma- (or semicolon-) separated values of one
    setting, each ``parse``d; duplicates dropped.  ``ValueError`` names the setting; a text
    longer than ``MAX_VALUES_TEXT`` is refused before it is read."""
    if len(text) > MAX_VALUES_TEXT:
        raise ValueError(f"Invalid {_what(setting(name))}: {len(text):,} characters (expected "
                         f"at most {MAX_GRID_VALUES} values in {MAX_VALUES_TEXT:,} characters)")
    return check_values(name, [parse(name, item) for item in _items(setting(name), text, ",;")])


def format_values(values: Iterable) -> str:
    """``[0.0001, 0.001]`` → ``"0.0001, 0.001"`` (what ``parse_values`` reads back)."""
    return ", ".join(format_value(v) for v in values)
