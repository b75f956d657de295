"""A model's decision boundary as a picture: score a grid, colour it, encode it as a PNG.

The input square ``[0, 1]²`` is cut into ``resolution × resolution`` cells;
each cell's centre is fed to the model and gets the *class-1 score*
``s = out₁ − out₀`` (the networks are trained with MSE towards one-hot rows,
so ``s ≈ +1`` deep inside class 1, ``≈ −1`` deep inside class 0, and the
decision ``argmax`` flips exactly where ``s = 0``).  A regression network has one
output, its predicted value in ``[−1, 1]``: its score is that value (``score_of``), so
the same picture is its continuous output map.

Colours: a diverging map from class-0 blue through a pale middle to class-1
orange, with ``s`` clipped to ``[−1, 1]`` (*smooth*), or only the two end
colours by the sign of ``s`` (*discrete*).  Row 0 of the image is the top of
the square (``y = 1``), as pictures are stored.

The PNG is written with the standard library (``zlib``), so ``minidl`` needs
neither Streamlit nor Pillow for it.
"""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import Callable

import torch

from ..nn import Module

# class 0 = blue, class 1 = orange; the middle is pale so points stay readable
CLASS_COLORS = ("#3b78b5", "#e8893b")
_PALETTE = torch.tensor([
    [59, 120, 181],    # s = −1   class 0
    [152, 189, 222],   # s = −0.5
    [242, 242, 242],   # s =  0   undecided
    [246, 196, 150],   # s = +0.5
    [232, 137, 59],    # s = +1   class 1
], dtype=torch.float32)
# the same stops as CSS colours: a regression's points, coloured by value on the image's scale
VALUE_COLORS = ["#{:02x}{:02x}{:02x}".format(*(int(c) for c in row)) for row in _PALETTE]


def grid(resolution: int = 100) -> torch.Tensor:
    """Cell centres of the square, ``(resolution², 2)`` float32, row-major from the top-left.

    Row ``i`` of the picture has ``y = 1 − (i + ½) / resolution``; column ``j``
    has ``x = (j + ½) / resolution``.
    """
    if not isinstance(resolution, int) or resolution < 2:
        raise ValueError(f"resolution must be an integer >= 2, got {resolution!r}")
    centres = (torch.arange(resolution, dtype=torch.float32) + 0.5) / resolution
    ys, xs = torch.meshgrid(1.0 - centres, centres, indexing="ij")
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1)


def score_of(out: torch.Tensor) -> torch.Tensor:
    """``(..., outputs)`` network outputs → ``(...)`` scores: ``out₁ − out₀`` of two outputs
    (the class-1 score), the value itself of one (regression)."""
    return out[..., 0] if out.shape[-1] == 1 else out[..., 1] - out[..., 0]


def scores(model: Module | Callable[[torch.Tensor], torch.Tensor], resolution: int = 100
           ) -> torch.Tensor:
    """The score (``score_of``) on the grid, ``(resolution, resolution)``; ``model`` is a
    module or a function from points to outputs (``Run.predict``, which encodes them)."""
    predict = model.forward if isinstance(model, Module) else model
    return score_of(predict(grid(resolution))).reshape(resolution, resolution)


def colorize(score: torch.Tensor, discrete: bool = False) -> torch.Tensor:
    """``(h, w)`` scores → ``(h, w, 3)`` uint8 RGB.  NaN (a diverged model) is drawn grey."""
    s = torch.nan_to_num(score.float(), nan=0.0, posinf=1.0, neginf=-1.0)
    if discrete:
        s = torch.where(s > 0, 1.0, -1.0)
    # piecewise-linear interpolation between the palette's 5 stops at −1, −½, 0, ½, 1
    position = (s.clamp(-1.0, 1.0) + 1.0) * 2.0
    low = position.floor().clamp(max=3).long()
    frac = (position - low).unsqueeze(-1)
    rgb = _PALETTE[low] * (1.0 - frac) + _PALETTE[low + 1] * frac
    rgb[torch.isnan(score)] = 160.0
    return rgb.round().to(torch.uint8)


def png_bytes(rgb: torch.Tensor) -> bytes:
    """Encode ``(h, w, 3)`` uint8 as a PNG (8-bit RGB, no interlace)."""
    if rgb.dtype != torch.uint8 or rgb.dim() != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected a (h, w, 3) uint8 tensor, got {tuple(rgb.shape)} {rgb.dtype}")
    h, w, _ = rgb.shape
    # every scanline starts with filter byte 0 ("none")
    raw = torch.cat([torch.zeros(h, 1, dtype=torch.uint8), rgb.reshape(h, w * 3)], dim=1)
    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header)
            + png_chunk(b"IDAT", zlib.compress(raw.numpy().tobytes(), 6))
            + png_chunk(b"IEND", b""))


def png_chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk: length, type, body, CRC of type and body."""
    return (struct.pack(">I", len(body)) + kind + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))


def png_urls(rgb: torch.Tensor) -> list[str]:
    """``(n, h, w, 3)`` uint8 → ``n`` PNG data URLs: ``png_bytes`` for many small pictures
    at once (the network diagram's units), the scanlines of all laid out in one copy."""
    n, h, w, _ = rgb.shape
    # filter byte 0 ("none") before each scanline
    raw = torch.cat([torch.zeros(n, h, 1, dtype=torch.uint8), rgb.reshape(n, h, 3 * w)],
                    dim=2).numpy()
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    end = png_chunk(b"IEND", b"")
    signature = b"\x89PNG\r\n\x1a\n"
    return [data_url(signature + header + png_chunk(b"IDAT", zlib.compress(picture.tobytes(), 6))
                     + end) for picture in raw]


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def boundary_image(model: Module | Callable[[torch.Tensor], torch.Tensor], resolution: int = 100,
                   discrete: bool = False) -> str:
    """The model's boundary over the square as a PNG data URL (what the charts draw)."""
    return data_url(png_bytes(colorize(scores(model, resolution), discrete)))
