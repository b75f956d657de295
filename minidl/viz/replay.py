"""A run replayed as an animated GIF: its decision boundary, with the training points and
a ✕ on each one it gets wrong, at the epochs it kept (``Run.snapshots``), each frame
labelled with its epoch.

A frame is a small picture of ``tiles`` (the boundary's colours on one scale, the points
painted into its pixels), not a rendered chart: a few milliseconds each.  At most
``FRAMES`` frames, evenly spread over the kept epochs (the first and the last always),
``SIZE`` pixels square: the GIF stays a download of about a megabyte.  Pillow writes it,
every frame in one fixed palette (``palette``): the boundary's ramp in ``RAMP_STEPS``
steps and the points' and marks' colours, without dithering — a colour means the same in
every frame, and the file is a third of what per-frame palettes with dithering made.

Shapes: a frame is ``(SIZE, SIZE, 3)`` uint8, row 0 the top of the square (``y = 1``).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import torch
from PIL import Image, ImageDraw, ImageFont

from .. import data
from ..engine.run import Run
from . import boundary, tiles

FRAMES = 120           # at most this many frames …
SIZE = 240             # … of this many pixels square
SCALE = 2              # pixels per boundary cell: the boundary is scored on SIZE / SCALE cells
FRAME_MS = 80          # how long a frame shows: 120 frames in ~10 s
LAST_FRAME_MS = 2000   # the last one, longer: the result before the loop starts over
RAMP_STEPS = 16        # colours of the boundary's ramp in the GIF (more: bigger, no finer)


def palette() -> Image.Image:
    """The GIF's one palette (see the module docstring), as Pillow's ``quantize`` takes it."""
    ramp = boundary.colorize(torch.linspace(-1.0, 1.0, RAMP_STEPS).view(1, -1)).view(-1, 3)
    marks = torch.stack([boundary.colorize(torch.tensor([[float("nan")]])).view(3),
                         *tiles.MARK_COLORS, torch.tensor([255, 255, 255], dtype=torch.uint8)])
    colours = torch.cat([ramp, marks]).flatten().tolist()
    picture = Image.new("P", (1, 1))
    picture.putpalette(colours + [0] * (768 - len(colours)))
    return picture


def frame_epochs(epochs: Sequence[int], most: int = FRAMES) -> list[int]:
    """At most ``most`` (≥ 2) of the sorted ``epochs``, evenly spread, the first and the
    last among them."""
    if most < 2:
        raise ValueError(f"Invalid number of frames (most): {most} (expected at least 2)")
    if len(epochs) <= most:
        return list(epochs)
    # the picks are more than one position apart, so no two round to the same
    picks = torch.linspace(0, len(epochs) - 1, most).round().long().tolist()
    return [epochs[i] for i in picks]


def frame(run: Run, epoch: int, size: int = SIZE, discrete: bool = False) -> torch.Tensor:
    """The boundary of ``run`` at the end of ``epoch`` with its training points and its
    mistakes among them, ``(size, size, 3)`` uint8 (no label)."""
    if size % SCALE:
        raise ValueError(f"Invalid frame size (size): {size} (expected a multiple of {SCALE})")
    then = run.at(epoch)
    with torch.inference_mode():
        score = boundary.scores(then.predict, size // SCALE)
        if run.config.regression:  # no classes, no mistakes: dots by the sign of the target
            labels = (run.y_train > 0).long()
            wrong = torch.zeros(len(labels), dtype=torch.bool)
        else:
            labels = run.y_train
            wrong = then.predict(run.X_train).argmax(1) != labels
    disk = (data.DISK_CENTER, data.DISK_RADIUS) if run.config.dataset == "disk" else None
    return tiles.tile(score, run.X_train, labels, wrong, disk, SCALE, discrete)


def labelled(rgb: torch.Tensor, text: str) -> Image.Image:
    """``rgb`` as a picture with ``text`` in a white box at its top left."""
    picture = Image.fromarray(rgb.numpy(), "RGB")
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default(size=max(10, rgb.shape[0] // 16))
    left, top, right, bottom = draw.textbbox((6, 4), text, font=font)
    draw.rectangle((left - 4, top - 3, right + 4, bottom + 3), fill=(255, 255, 255))
    draw.text((6, 4), text, fill=(20, 20, 20), font=font)
    return picture


def gif(run: Run, most: int = FRAMES, size: int = SIZE, discrete: bool = False) -> bytes:
    """The replay of ``run`` as an animated GIF that loops: its boundary at up to ``most``
    of its kept epochs (``frame``), each labelled "epoch N / budget".  ``ValueError`` if the
    run has kept no epoch yet."""
    epochs = frame_epochs(run.snapshots.epochs, most)
    if not epochs:
        raise ValueError("this run has no epoch to replay yet: train it first")
    pictures = [labelled(frame(run, e, size, discrete), f"epoch {e} / {run.config.epochs}")
                for e in epochs]
    colours = palette()
    pictures = [p.quantize(palette=colours, dither=Image.Dither.NONE) for p in pictures]
    out = io.BytesIO()
    pictures[0].save(out, format="GIF", save_all=True, append_images=pictures[1:], loop=0,
                     duration=[FRAME_MS] * (len(pictures) - 1) + [LAST_FRAME_MS])
    return out.getvalue()
