"""Two-dimensional toy data sets, seeded and deterministic.

Every generator returns ``(X, y)`` with ``X : (n, 2) float32`` in the unit
square ``[0, 1]²`` and ``y : (n,) int64`` labels in ``{0, 1}``.
"""

from __future__ import annotations

import math

import torch

from . import hparams

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


# one generator per ``hparams.DATASETS`` name (a test keeps the two in step)
DATASETS = {"disk": disk, "xor": xor, "gaussians": gaussians, "spiral": spiral}


def make(name: str, n: int, seed: int = 0, noise: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Data set ``name`` with a fraction ``noise`` of labels flipped (seeded too)."""
    hparams.check("dataset", name)
    noise = hparams.check("noise", noise)
    X, y = DATASETS[name](n, seed)
    if noise > 0:
        # a stream of its own, so that noise changes labels but never positions
        flip = torch.rand(n, generator=_generator((seed + 1_000_003) % hparams.SEED_HIGH)) < noise
        y = torch.where(flip, 1 - y, y)
    return X, y


def train_test(name: str, n_train: int, n_test: int, seed: int = 0, noise: float = 0.0
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One seeded draw of ``n_train + n_test`` points, split into training and test sets.

    Label noise flips training labels only: the test set measures the true rule.
    """
    _check_n(n_train)
    _check_n(n_test)
    X, y = make(name, n_train + n_test, seed)
    if noise:
        _, y_noisy = make(name, n_train + n_test, seed, noise)
        y = torch.cat([y_noisy[:n_train], y[n_train:]])
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


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


def input_affine(inputs: str) -> tuple[float, float]:
    """``(scale, shift)`` that ``encode_inputs`` applies: ``x · scale + shift``."""
    if hparams.check("inputs", inputs) == "raw":
        return 1.0, 0.0
    return STANDARD_SCALE, -0.5 * STANDARD_SCALE  # (x − ½)·√12: mean 0, variance 1 over [0, 1]


def encode_inputs(X: torch.Tensor, inputs: str = "raw") -> torch.Tensor:
    """The network's inputs for points ``X``: as drawn, or standardised over the unit square."""
    scale, shift = input_affine(inputs)
    return X if scale == 1.0 and shift == 0.0 else X * scale + shift


def target_affine(targets: str) -> tuple[float, float]:
    """``(scale, shift)`` that ``encode_targets`` applies to one-hot rows."""
    return (1.0, 0.0) if hparams.check("targets", targets) == "one_hot" else (2.0, -1.0)


def encode_targets(y: torch.Tensor, targets: str = "one_hot", classes: int = 2,
                   dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(n,)`` labels → ``(n, classes)`` training targets: one-hot 0/1, or ±1 (2·one-hot − 1)."""
    scale, shift = target_affine(targets)
    T = one_hot(y, classes, dtype)
    return T if scale == 1.0 else T * scale + shift
