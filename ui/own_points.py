"""Your own points in the Playground, without Streamlit: the points you start from, and
the points a drag on the editor chart adds (``POINTS_PER_AREA`` per unit of area, at most
``MOST_PER_DRAG`` a drag, never past ``hparams.MAX_OWN_POINTS`` in all)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from minidl import Run, hparams

POINTS_PER_AREA = 400   # points one drag adds per unit of area …
MOST_PER_DRAG = 60      # … at most this many, at least one


def starter_points(run: Run, count: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    """Your points when you first choose them: the first ``count`` training points of the
    run you were looking at (their labels as drawn), to edit from."""
    return run.X_train[:count].clone(), run.y_train[:count].clone()


def drag_box(event: Mapping | None, name: str) -> tuple[float, float, float, float] | None:
    """``(x0, x1, y0, y1)`` of the rectangle a drag on the editor selected (clipped to the
    square), from what Streamlit reports for the interval selection ``name``; None if
    there is none (a click, a cleared selection, anything malformed)."""
    try:
        box = event["selection"][name]
        (x0, x1), (y0, y1) = sorted(map(float, box["x"])), sorted(map(float, box["y"]))
    except (KeyError, TypeError, ValueError):
        return None
    x0, x1, y0, y1 = (min(max(v, 0.0), 1.0) for v in (x0, x1, y0, y1))
    if not all(math.isfinite(v) for v in (x0, x1, y0, y1)) or x1 <= x0 or y1 <= y0:
        return None
    return x0, x1, y0, y1


def add_points(points: tuple[torch.Tensor, torch.Tensor], box: tuple[float, float, float, float],
               label: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``points`` plus points of class ``label`` spread uniformly over ``box``: about
    ``POINTS_PER_AREA`` per unit area, 1 to ``MOST_PER_DRAG``, never past
    ``hparams.MAX_OWN_POINTS`` in all."""
    X, y = points
    x0, x1, y0, y1 = box
    count = min(max(round((x1 - x0) * (y1 - y0) * POINTS_PER_AREA), 1), MOST_PER_DRAG,
                hparams.MAX_OWN_POINTS - len(X))
    if count <= 0:
        return X, y
    new = torch.rand(count, 2, generator=generator)
    new = new * torch.tensor([x1 - x0, y1 - y0]) + torch.tensor([x0, y0])
    return torch.cat([X, new]), torch.cat([y, torch.full((count,), int(label), dtype=y.dtype)])
