"""Small multiples: one network's decision boundary, its points and its mistakes painted into
one small picture — cheap enough to redraw nine of them several times a second.

A tile is the boundary image of ``minidl.viz.boundary`` (one colour scale for every tile:
the class-1 score clipped to [−1, 1]) scaled up ``scale`` times, with, painted into its
pixels: the true disk's outline (dashed), the points as dots of a dark shade of their
class's colour, and a black ✕ over every point the network gets wrong.  Painting pixels costs a
few tensor index assignments; a chart layer per tile would cost the browser ~50 ms each.

Shapes: ``score : (r, r)`` (row 0 is the top, ``y = 1``); points ``X : (n, 2)`` in the unit
square, ``y : (n,)``; ``wrong : (n,)`` bool.  Returns ``(r·scale, r·scale, 3)`` uint8.
"""

from __future__ import annotations

import math

import torch

from .boundary import colorize, png_bytes

# the points: darker shades of the class colours, so a dot stands out on its own region
# without a rim (at 1000 points, white rims covered half a tile)
_RGB = [torch.tensor(c, dtype=torch.uint8) for c in ((23, 64, 112), (150, 70, 10))]
_BLACK = torch.tensor([20, 20, 20], dtype=torch.uint8)
_OUTLINE = torch.tensor([60, 60, 60], dtype=torch.uint8)
_DOT = [(0, 0), (0, 1), (1, 0), (1, 1)]  # 2 × 2 pixels
_CROSS = [(d, d) for d in range(-2, 3)] + [(d, -d) for d in range(-2, 3)]
MARK_COLORS = (*_RGB, _BLACK, _OUTLINE)  # every colour painted over the boundary's


def _pixels(X: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column of each point's pixel (row 0 at the top)."""
    column = (X[:, 0] * size).long().clamp(0, size - 1)
    row = ((1.0 - X[:, 1]) * size).long().clamp(0, size - 1)
    return row, column


def _paint(rgb: torch.Tensor, row: torch.Tensor, column: torch.Tensor,
           offsets: list[tuple[int, int]], color: torch.Tensor) -> None:
    size = rgb.shape[0]
    for dy, dx in offsets:
        rgb[(row + dy).clamp(0, size - 1), (column + dx).clamp(0, size - 1)] = color


def circle(size: int, center: tuple[float, float], radius: float, dashes: int = 24
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixels of a dashed circle (``dashes`` dashes) on a ``size``-pixel square."""
    angles = torch.linspace(0, 2 * math.pi, 8 * size)
    on = (angles * dashes / (2 * math.pi)).floor().remainder(2) == 0
    X = torch.stack([center[0] + radius * torch.cos(angles[on]),
                     center[1] + radius * torch.sin(angles[on])], dim=1)
    return _pixels(X, size)


FADE = 0.2  # an untrained network's colours, blended with white (as the Playground's)


def tile(score: torch.Tensor, X: torch.Tensor, y: torch.Tensor, wrong: torch.Tensor,
         disk: tuple[tuple[float, float], float] | None = None, scale: int = 2,
         discrete: bool = False, faded: bool = False) -> torch.Tensor:
    """One contestant's picture; see the module docstring.  ``faded``: its colours at
    ``FADE`` over white (before the first epoch an untrained network's near-constant score
    painted every tile one solid colour)."""
    rgb = colorize(score, discrete)
    if faded:
        rgb = (FADE * rgb.float() + (1 - FADE) * 255.0).round().to(torch.uint8)
    rgb = rgb.repeat_interleave(scale, 0).repeat_interleave(scale, 1).contiguous()
    size = rgb.shape[0]
    if disk is not None:
        row, column = circle(size, *disk)
        rgb[row, column] = _OUTLINE
    row, column = _pixels(X, size)
    for label in (0, 1):
        mine = y == label
        _paint(rgb, row[mine], column[mine], _DOT, _RGB[label])
    _paint(rgb, row[wrong], column[wrong], _CROSS, _BLACK)
    return rgb


def tile_png(score: torch.Tensor, X: torch.Tensor, y: torch.Tensor, wrong: torch.Tensor,
             disk: tuple[tuple[float, float], float] | None = None, scale: int = 2,
             discrete: bool = False, faded: bool = False) -> bytes:
    """``tile`` as PNG bytes (``st.image`` takes them as they are)."""
    return png_bytes(tile(score, X, y, wrong, disk, scale, discrete, faded))
