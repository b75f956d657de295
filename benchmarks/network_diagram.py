"""What the network diagram and the layer-health record cost, beside what they sit next to.

- ``network_data`` (all unit maps from one forward pass of a 24×24 grid, one PNG per
  unit, the link table) against the boundary image the live view already builds
  (``boundary.boundary_image`` at 100×100), for the report's 2-25-25-25-2 network and
  a 6 × 64 one, in milliseconds per frame and as a ratio;
- training with ``Run.track_health`` (one extra forward and backward pass over the
  training set per recorded epoch, within ``Run.health_share`` of the time) against
  training without, at batch 1 (the default) and at full batch: total time of the epochs.

Both sides of each ratio run interleaved in this process with one torch thread.
Usage: python benchmarks/network_diagram.py [--repeats 15] [--epochs 40]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

# `python benchmarks/<name>.py` puts benchmarks/, not the repository root, on sys.path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from minidl import Config, Run, nn  # noqa: E402
from minidl.viz import boundary, network  # noqa: E402


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def diagram(repeats: int) -> None:
    print("diagram data per frame (median ms) vs the 100×100 boundary image:")
    for sizes, activation in (((2, 25, 25, 25, 2), "tanh"), ((2, *[64] * 6, 2), "relu")):
        model = nn.mlp(list(sizes), activation)
        model.init_params("xavier", 1.0, torch.Generator().manual_seed(0))
        for width in (420, 700):
            network.network_data(model, width)  # warm up
            ours, image = [], []
            for _ in range(repeats):
                ours.append(timed(network.network_data, model, width))
                image.append(timed(boundary.boundary_image, model, 100))
            a, b = statistics.median(ours) * 1e3, statistics.median(image) * 1e3
            name = "-".join(map(str, sizes))
            print(f"  {name:<22} width {width:>3}: diagram {a:6.1f} ms, boundary {b:5.1f} ms, "
                  f"ratio {a / b:5.2f}x")


def health(epochs: int) -> None:
    print(f"{epochs} epochs with the health record vs without (total time; recorded epochs):")
    for batch in (1, 1000):
        config = Config(batch_size=batch, epochs=epochs)
        tracked, bare = Run(config), Run(config, track_health=False)
        with_health, without = [], []
        for _ in range(epochs):
            with_health.append(timed(tracked.train_epoch))
            without.append(timed(bare.train_epoch))
        a, b = sum(with_health), sum(without)
        recorded = len({row["epoch"] for row in tracked.health})
        print(f"  batch {batch:>4}: with {a * 1e3:7.1f} ms, without {b * 1e3:7.1f} ms, "
              f"{recorded} recorded, ratio {a / b:5.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args()
    torch.set_num_threads(1)
    diagram(args.repeats)
    health(args.epochs)


if __name__ == "__main__":
    main()
