"""The replay of a run as an animated GIF (minidl.viz.replay): one frame per kept epoch up
to ``FRAMES``, small, each its own picture."""

import io

import pytest
import torch
from PIL import Image, ImageChops

from minidl import Config, Run
from minidl.viz import replay

SMALL = dict(n_train=60, n_test=20, hidden=(8, 8), batch_size=4)


def frames(data: bytes) -> list[Image.Image]:
    gif = Image.open(io.BytesIO(data))
    assert gif.format == "GIF" and gif.is_animated
    out = []
    for i in range(gif.n_frames):
        gif.seek(i)
        out.append(gif.convert("RGB"))
    return out


def test_frame_epochs_spread_evenly_and_keep_the_ends():
    epochs = list(range(1, 301))
    picked = replay.frame_epochs(epochs, 120)
    assert len(picked) == 120 and picked[0] == 1 and picked[-1] == 300
    assert picked == sorted(set(picked))
    assert {b - a for a, b in zip(picked, picked[1:])} <= {2, 3}
    assert replay.frame_epochs([4, 8, 9], 120) == [4, 8, 9]


def test_the_gif_has_a_frame_per_kept_epoch_of_240_px_and_each_differs():
    run = Run(Config(**SMALL, epochs=6, lr=0.1)).fit()
    pictures = frames(replay.gif(run))
    assert len(pictures) == 6
    assert all(p.size == (replay.SIZE, replay.SIZE) == (240, 240) for p in pictures)
    for a, b in zip(pictures, pictures[1:]):
        assert ImageChops.difference(a, b).getbbox() is not None
    # the epoch's label, dark on a white box at the top left, over the boundary's colours
    label = pictures[0].crop((0, 0, 120, 24))
    assert (255, 255, 255) in {c for _, c in label.getcolors(4096)}
    assert min(sum(c) for _, c in label.getcolors(4096)) < 200
    assert pictures[-1].getpixel((230, 230)) != (255, 255, 255)


def test_a_long_run_is_thinned_to_120_frames_and_about_a_megabyte():
    run = Run(Config(n_train=200, n_test=20, hidden=(8,), batch_size=50, epochs=300)).fit()
    assert len(run.snapshots) == 300
    data = replay.gif(run)
    assert len(frames(data)) == replay.FRAMES == 120
    assert len(data) < 2 << 20


def test_a_frame_is_the_boundary_of_the_run_trained_to_that_epoch_alone():
    config = Config(**SMALL, epochs=5, lr=0.1)
    run = Run(config).fit()
    assert torch.equal(replay.frame(run, 2), replay.frame(Run(config).fit(epochs=2), 2))
    assert not torch.equal(replay.frame(run, 2), replay.frame(run, 5))


def test_a_run_with_no_epoch_has_no_gif():
    with pytest.raises(ValueError, match="train it first"):
        replay.gif(Run(Config(**SMALL)))
