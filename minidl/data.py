"""Two-dimensional toy data sets, seeded and deterministic; your own points; input features.

Every generator returns ``(X, y)`` with ``X : (n, 2) float32`` in the unit
square ``[0, 1]²`` and ``y : (n,) int64`` labels in ``{0, 1}`` — or, for the
regression data sets (``plane``, ``multigauss``), ``y : (n,) float32`` targets in
``[−1, 1]``.  Your own points
(the data set ``custom``) come from ``read_points_csv`` or a drawing, are checked
by ``check_points`` and split by ``split_points``.

Why this module is long: it is everything between points and what the network sees
— the generators, the reader and checks of your own points (one message per kind of
bad line), and the input encodings and features — each part a few short functions.
"""

from __future__ import annotations

import csv
import io
import math

import torch

from . import hparams
from .text import cut

DISK_CENTER = (0.5, 0.5)
DISK_RADIUS = 1.0 / math.sqrt(2.0 * math.pi)  # the disk covers half of the unit square


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(hparams.check("data_seed", seed))


def _check_n(n: int) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= hparams.MAX_POINTS:
        raise ValueError(f"number of points must be a positive integer at most "
                         f"{hparams.MAX_POINTS}, got {n!r}")


def disk(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Points uniform in [0,1]²; label 1 strictly inside the disk of radius 1/√(2π) at (½, ½)."""
    _check_n(n)
    X = torch.rand(n, 2, generator=_generator(seed))
    return X, disk_label(X)


def disk_label(X: torch.Tensor) -> torch.Tensor:
    r2 = (X[:, 0] - DISK_CENTER[0]) ** 2 + (X[:, 1] - DISK_CENTER[1]) ** 2
    return (r2 < DISK_RADIUS ** 2).long()


def xor(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Uniform points; label 1 in the top-left and bottom-right quadrants."""
    _check_n(n)
    X = torch.rand(n, 2, generator=_generator(seed))
    return X, ((X[:, 0] > 0.5) != (X[:, 1] > 0.5)).long()


def gaussians(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two Gaussian blobs (σ = 0.12) at (0.3, 0.3) and (0.7, 0.7), clipped to the square."""
    _check_n(n)
    g = _generator(seed)
    y = (torch.rand(n, generator=g) < 0.5).long()
    centres = torch.tensor([[0.3, 0.3], [0.7, 0.7]])
    X = centres[y] + 0.12 * torch.randn(n, 2, generator=g)
    return X.clamp_(0.0, 1.0), y


def spiral(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two interleaved spiral arms (1.5 turns each) with a little radial jitter."""
    _check_n(n)
    g = _generator(seed)
    y = (torch.rand(n, generator=g) < 0.5).long()
    t = torch.rand(n, generator=g).sqrt()  # uniform density along the arm's area
    angle = 3.0 * math.pi * t + math.pi * y
    radius = 0.45 * t + 0.02 * torch.randn(n, generator=g)
    X = torch.stack([0.5 + radius * torch.cos(angle), 0.5 + radius * torch.sin(angle)], dim=1)
    return X.clamp_(0.0, 1.0).float(), y


def plane(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Regression: uniform points, target ``t = x₁ + x₂ − 1`` (a tilted plane, −1 at the
    bottom-left corner, +1 at the top-right)."""
    _check_n(n)
    X = torch.rand(n, 2, generator=_generator(seed))
    return X, plane_target(X)


def plane_target(X: torch.Tensor) -> torch.Tensor:
    return X[:, 0] + X[:, 1] - 1.0


# multi-Gaussian: six bumps on a 3 × 2 grid, signs alternating like a chessboard's squares
BUMP_CENTRES = torch.tensor([[x, y] for y in (0.3, 0.7) for x in (1 / 6, 0.5, 5 / 6)])
BUMP_SIGNS = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0, -1.0])
BUMP_WIDTH = 0.15  # σ: a bump is ~8 % of its height at its neighbours' centres, 1/3 away


def multigauss(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Regression: uniform points, target a sum of signed Gaussian bumps,
    ``t = Σₖ sₖ · exp(−|x − cₖ|² / (2σ²))`` (``multigauss_target``), clipped to [−1, 1]."""
    _check_n(n)
    X = torch.rand(n, 2, generator=_generator(seed))
    return X, multigauss_target(X)


def multigauss_target(X: torch.Tensor) -> torch.Tensor:
    squared = (X.unsqueeze(1) - BUMP_CENTRES).square().sum(-1)  # (n, 6) squared distances
    bumps = torch.exp(-squared / (2 * BUMP_WIDTH ** 2)) @ BUMP_SIGNS
    return bumps.clamp_(-1.0, 1.0)


# one generator per ``hparams.DATASETS`` name (a test keeps the two in step)
DATASETS = {"disk": disk, "xor": xor, "gaussians": gaussians, "spiral": spiral,
            "plane": plane, "multigauss": multigauss}


def make(name: str, n: int, seed: int = 0, noise: float = 0.0, jitter: float = 0.0
         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Data set ``name`` with a fraction ``noise`` of labels flipped and every point moved by
    up to ``jitter`` along each axis (``jittered``); each noise seeded by a stream of its own."""
    if hparams.check("dataset", name) == "custom":
        raise ValueError("the data set 'custom' is your own points: it has no generator "
                         "(see read_points_csv and split_points)")
    noise, jitter = hparams.check("noise", noise), hparams.check("jitter", jitter)
    hparams.check_problem(hparams.problem_of(name), name, noise)  # no label noise in regression
    X, y = DATASETS[name](n, seed)
    if noise > 0:  # a stream of its own, so that noise changes labels but never positions
        y = _flip(y, seed, noise)
    return jittered(X, seed, jitter), y


def train_test(name: str, n_train: int, n_test: int, seed: int = 0, noise: float = 0.0,
               jitter: float = 0.0
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One seeded draw of ``n_train + n_test`` points, split into training and test sets.

    Label noise flips training labels only: the test set measures the true rule.  Jitter
    moves training and test points alike (as TensorFlow Playground's noise does); their
    labels stay those of the clean positions.
    """
    _check_n(n_train)
    _check_n(n_test)
    X, y = make(name, n_train + n_test, seed, jitter=jitter)
    if noise:
        _, y_noisy = make(name, n_train + n_test, seed, noise)
        y = torch.cat([y_noisy[:n_train], y[n_train:]])
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def _flip(y: torch.Tensor, seed: int, noise: float) -> torch.Tensor:
    """``y`` with a fraction ``noise`` of labels flipped, from a stream of its own."""
    flip = torch.rand(len(y), generator=_generator((seed + 1_000_003) % hparams.SEED_HIGH)) < noise
    return torch.where(flip, 1 - y, y)


def jittered(X: torch.Tensor, seed: int, jitter: float) -> torch.Tensor:
    """``X : (n, 2)`` with each coordinate moved by ``u ~ U(−jitter, jitter)``, then clipped to
    [0, 1] (so no point moves by more than ``jitter`` along an axis, and none leaves the
    square the view shows).  The offsets come from a stream of their own: jitter never
    changes which points are drawn, nor their labels.  ``jitter = 0`` returns ``X`` itself."""
    if jitter == 0:
        return X
    g = _generator((seed + 2_000_003) % hparams.SEED_HIGH)
    offsets = (torch.rand(X.shape, generator=g) * 2.0 - 1.0) * jitter
    return (X + offsets).clamp_(0.0, 1.0)


# ---------------------------------------------------------------- your own points

MAX_CSV_BYTES = 1 << 20        # 1 MiB: far more than MAX_OWN_POINTS rows of three numbers
MIN_CLASS_POINTS = 3           # of each class: fewer cannot be split into training and test
CSV_HEADER = ("x1", "x2", "label")


def check_points(X, y) -> tuple[torch.Tensor, torch.Tensor]:
    """Your own points as ``(X : (n, 2) float32, y : (n,) int64)``, or ``ValueError``: finite
    coordinates in the unit square [0, 1]² (points elsewhere are refused, not rescaled: the
    plot, the features and the drawing all live on that square), labels 0 or 1, at least
    ``MIN_CLASS_POINTS`` of each class and at most ``hparams.MAX_OWN_POINTS`` in all."""
    try:
        X = torch.as_tensor(X, dtype=torch.float64)
        y = torch.as_tensor(y)
    except (TypeError, ValueError, RuntimeError, OverflowError) as error:
        raise ValueError(f"points must be numbers: {error}") from None
    if X.dim() != 2 or X.shape[1] != 2 or y.shape != (X.shape[0],):
        raise ValueError(f"points must be n rows of (x1, x2) with n labels, got shapes "
                         f"{tuple(X.shape)} and {tuple(y.shape)}")
    if len(X) > hparams.MAX_OWN_POINTS:
        raise ValueError(f"{len(X):,} points are too many (at most {hparams.MAX_OWN_POINTS:,})")
    if not torch.isfinite(X).all() or ((X < 0) | (X > 1)).any():
        row = int((~torch.isfinite(X) | (X < 0) | (X > 1)).any(1).nonzero()[0])
        raise ValueError(f"point {row + 1}: ({_short(X[row, 0])}, {_short(X[row, 1])}) lies "
                         "outside the unit square (expected x1 and x2 in [0, 1])")
    if y.is_floating_point() or y.dtype == torch.bool or ((y != 0) & (y != 1)).any():
        raise ValueError("labels must be the integers 0 or 1")
    y = y.long()
    counts = [int((y == c).sum()) for c in (0, 1)]
    if min(counts) < MIN_CLASS_POINTS:
        raise ValueError(f"{counts[0]} points of class 0 and {counts[1]} of class 1 (expected "
                         f"at least {MIN_CLASS_POINTS} of each)")
    return X.float(), y


def _short(value) -> str:
    return f"{float(value):.6g}"


def read_points_csv(source: bytes | str) -> tuple[torch.Tensor, torch.Tensor]:
    """Your own points from CSV text: one point a line, ``x1,x2,label``; checked like
    ``check_points``.

    A header line ``x1,x2,label`` is optional (a first line that does not start with a
    number is taken as a header and must be exactly that, in any case); blank lines and
    lines starting with ``#`` are skipped.  At most ``MAX_CSV_BYTES``.  Every error is a
    ``ValueError`` naming the line: ``line 7: 'abc' is not a number (expected x1,x2,label)``.
    """
    if len(source) > MAX_CSV_BYTES:
        raise ValueError(f"the file has {len(source):,} bytes, more than the "
                         f"{MAX_CSV_BYTES:,} allowed")
    if isinstance(source, bytes):
        try:
            source = source.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValueError("the file is not UTF-8 text (expected CSV: x1,x2,label)") from None
    X, y = [], []
    try:
        rows = list(csv.reader(io.StringIO(source)))
    except csv.Error as error:
        raise ValueError(f"not CSV: {error}") from None
    first = True
    for line, row in enumerate(rows, start=1):
        cells = [c.strip() for c in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if first and not _is_float(cells[0]):
            first = False
            if tuple(c.lower() for c in cells) != CSV_HEADER:
                raise ValueError(f"line {line}: header {cut(','.join(cells), 20)!r} (expected "
                                 f"{','.join(CSV_HEADER)}, or no header)")
            continue
        first = False
        if len(cells) != 3:
            raise ValueError(f"line {line}: {len(cells)} values (expected 3: x1,x2,label)")
        for cell in cells[:2]:
            if not _is_float(cell) or not math.isfinite(float(cell)):
                raise ValueError(f"line {line}: {cut(cell, 20)!r} is not a finite number "
                                 "(expected x1,x2,label)")
        x1, x2 = float(cells[0]), float(cells[1])
        if not (0 <= x1 <= 1 and 0 <= x2 <= 1):
            raise ValueError(f"line {line}: ({cut(cells[0], 20)}, {cut(cells[1], 20)}) lies "
                             "outside the unit square (expected x1 and x2 in [0, 1])")
        if cells[2] not in ("0", "1"):
            raise ValueError(f"line {line}: label {cut(cells[2], 20)!r} (expected 0 or 1)")
        if len(X) == hparams.MAX_OWN_POINTS:
            raise ValueError(f"line {line}: more than {hparams.MAX_OWN_POINTS:,} points")
        X.append((x1, x2))
        y.append(int(cells[2]))
    if not X:
        raise ValueError("the file has no points (expected lines x1,x2,label)")
    return check_points(X, y)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def points_csv(X: torch.Tensor, y: torch.Tensor) -> str:
    """The points as CSV that ``read_points_csv`` reads back exactly: a header, then each
    float32 coordinate in the fewest digits that give it back (0.134, not the float64
    0.1340000033378601 that equals it)."""
    lines = [",".join(CSV_HEADER)]
    # str of a NumPy float32 is its shortest repr; formatting it plainly would widen it first
    lines += [f"{a!s},{b!s},{int(c)}" for (a, b), c in zip(X.float().numpy(), y.tolist())]
    return "\n".join(lines) + "\n"


def split_points(X: torch.Tensor, y: torch.Tensor, split: float, seed: int = 0,
                 noise: float = 0.0
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Your own points in a seeded random order, cut into a share ``split`` of training
    points (at least one, and at least one test point) and the rest as test points;
    label noise flips training labels only, as for the drawn data sets."""
    X, y = check_points(X, y)
    split, noise = hparams.check("split", split), hparams.check("noise", noise)
    order = torch.randperm(len(X), generator=_generator(seed))
    n_train = min(max(round(split * len(X)), 1), len(X) - 1)
    X, y = X[order], y[order]
    y_train = _flip(y[:n_train], seed, noise) if noise else y[:n_train]
    return X[:n_train], y_train, X[n_train:], y[n_train:]


def one_hot(y: torch.Tensor, classes: int = 2, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(n,)`` integer labels → ``(n, classes)`` rows with a single 1."""
    if y.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise TypeError(f"one_hot expects integer labels, got dtype {y.dtype}")
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= classes):
        raise ValueError(f"labels must lie in [0, {classes}), got range "
                         f"[{int(y.min())}, {int(y.max())}]")
    out = torch.zeros(*y.shape, classes, dtype=dtype)
    return out.scatter_(-1, y.long().unsqueeze(-1), 1.0)


# ---------------------------------------------------------------- conventions (hparams)

STANDARD_SCALE = math.sqrt(12.0)  # U(0, 1) has variance 1/12
DEFAULT_FEATURES = hparams.TABLE["features"].default  # ("x1", "x2")


def input_affine(inputs: str) -> tuple[float, float]:
    """``(scale, shift)`` that ``encode_inputs`` applies: ``x · scale + shift``."""
    if hparams.check("inputs", inputs) == "raw":
        return 1.0, 0.0
    return STANDARD_SCALE, -0.5 * STANDARD_SCALE  # (x − ½)·√12: mean 0, variance 1 over [0, 1]


def encode_inputs(X: torch.Tensor, inputs: str = "raw",
                  features: tuple[str, ...] = DEFAULT_FEATURES) -> torch.Tensor:
    """The network's inputs for points ``X : (..., rows, 2)``: one column per feature
    (``with_features``) — with the default features, ``X`` as drawn or standardised."""
    scale, shift = input_affine(inputs)
    encoded = X if scale == 1.0 and shift == 0.0 else X * scale + shift
    return with_features(X, encoded, features)


# ---------------------------------------------------------------- input features
#
# x₁ and x₂ are the points as the ``inputs`` setting encodes them (raw in [0, 1] or
# standardised), so the default features (x₁, x₂) feed the network exactly what they always
# did.  The other features are computed from the *centred* coordinate u = 2x − 1 in
# [−1, 1], whatever ``inputs`` says: x₁² is then a bowl around the square's centre and x₁x₂
# a saddle there (as in TensorFlow Playground, whose coordinates are centred), each in
# [0, 1] or [−1, 1] like the inputs.  sin x₁ is sin(SIN_FREQUENCY · u₁): TensorFlow
# Playground takes sin of coordinates in [−6, 6], almost two periods across the square; the
# sine of a raw coordinate in [0, 1] would be nearly linear, adding nothing.

SIN_FREQUENCY = 6.0


def _centred(X: torch.Tensor, column: int) -> torch.Tensor:
    return X[..., column] * 2.0 - 1.0


FEATURES = {
    "x1": lambda X: X[..., 0],
    "x2": lambda X: X[..., 1],
    "x1sq": lambda X: _centred(X, 0).square(),
    "x2sq": lambda X: _centred(X, 1).square(),
    "x1x2": lambda X: _centred(X, 0) * _centred(X, 1),
    "sinx1": lambda X: torch.sin(SIN_FREQUENCY * _centred(X, 0)),
    "sinx2": lambda X: torch.sin(SIN_FREQUENCY * _centred(X, 1)),
}


def with_features(X: torch.Tensor, encoded: torch.Tensor, features: tuple[str, ...]
                  ) -> torch.Tensor:
    """``(..., rows, len(features))``: x₁, x₂ from ``encoded`` (the points after the ``inputs``
    convention), the other features from the points ``X`` themselves (see above)."""
    features = hparams.check("features", features)
    if features == DEFAULT_FEATURES:
        return encoded
    return torch.stack([encoded[..., ("x1", "x2").index(f)] if f in ("x1", "x2")
                        else FEATURES[f](X).to(encoded.dtype) for f in features], dim=-1)


def target_affine(targets: str) -> tuple[float, float]:
    """``(scale, shift)`` that ``encode_targets`` applies to one-hot rows."""
    return (1.0, 0.0) if hparams.check("targets", targets) == "one_hot" else (2.0, -1.0)


def encode_targets(y: torch.Tensor, targets: str = "one_hot", classes: int = 2,
                   dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(n,)`` labels → ``(n, classes)`` training targets: one-hot 0/1, or ±1 (2·one-hot − 1)."""
    scale, shift = target_affine(targets)
    T = one_hot(y, classes, dtype)
    return T if scale == 1.0 else T * scale + shift
