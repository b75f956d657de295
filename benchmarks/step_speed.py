"""Time one training step of the 2-25-25-25-2 Tanh network: minidl vs torch.nn + autograd.

Both sides run interleaved in this one process with one torch thread, over the
same minibatches; each ratio is torch time / minidl time (> 1: minidl faster).
minidl's step is the engine's: a ``Population`` of one network (what ``Run``, the
Playground and a race train) walking its minibatches, ``steps`` of them per call
(its epoch-end measurement off: the per-step cost); torch's is the usual
``zero_grad`` / ``backward`` / ``step`` over the same minibatches.
Usage: python benchmarks/step_speed.py [--repeats 7] [--steps 300]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

# `python benchmarks/<name>.py` puts benchmarks/, not the repository root, on sys.path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from minidl import data, runtime  # noqa: E402
from minidl.engine.member import Member  # noqa: E402
from minidl.engine.population import Population  # noqa: E402


def minidl_steps(optimizer_name: str, X: torch.Tensor, y: torch.Tensor, batch: int, steps: int):
    """A function that trains ``steps`` minibatches of one network with the engine."""
    rows = steps * batch
    member = Member({"activation": "tanh", "optimizer": optimizer_name, "lr": 1e-3,
                     "batch_size": batch, "shuffle": False}, torch.arange(rows),
                    torch.arange(rows, rows + 1), seed=0)
    population = Population(X, y, [member], [2, 25, 25, 25, 2], measure_at=())
    return lambda: population.step()


def torch_step(optimizer_name: str):
    tnn, toptim = torch.nn, torch.optim
    model = tnn.Sequential(tnn.Linear(2, 25), tnn.Tanh(), tnn.Linear(25, 25), tnn.Tanh(),
                           tnn.Linear(25, 25), tnn.Tanh(), tnn.Linear(25, 2))
    opt = {"sgd": lambda p: toptim.SGD(p, lr=1e-3), "adam": lambda p: toptim.Adam(p, lr=1e-3),
           "rmsprop": lambda p: toptim.RMSprop(p, lr=1e-3)}[optimizer_name](model.parameters())

    def step(x, t):
        with torch.enable_grad():
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), t).backward()
            opt.step()
    return step


def time_torch(step, batches) -> float:
    start = time.perf_counter()
    for x, t in batches:
        step(x, t)
    return (time.perf_counter() - start) / len(batches)


def time_minidl(steps, count: int) -> float:
    start = time.perf_counter()
    steps()
    return (time.perf_counter() - start) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    runtime.setup()
    torch.set_grad_enabled(False)
    print(f"{'optimizer':>9} {'batch':>5} {'minidl µs':>10} {'torch µs':>9} {'ratio':>6}")
    ratios = []
    for optimizer_name in ("sgd", "adam", "rmsprop"):
        for batch in (1, 20):
            X, y = data.disk(args.steps * batch + 1, seed=0)
            T = data.one_hot(y)
            batches = [(X[i:i + batch], T[i:i + batch]) for i in range(0, args.steps * batch, batch)]
            ours, theirs = minidl_steps(optimizer_name, X, y, batch, args.steps), torch_step(optimizer_name)
            time_minidl(ours, args.steps), time_torch(theirs, batches[:50])  # warm up
            best_ours, best_theirs = math.inf, math.inf
            for _ in range(args.repeats):  # interleaved, best of N: robust to a noisy machine
                best_ours = min(best_ours, time_minidl(ours, args.steps))
                best_theirs = min(best_theirs, time_torch(theirs, batches))
            ratio = best_theirs / best_ours
            ratios.append(ratio)
            print(f"{optimizer_name:>9} {batch:>5} {1e6 * best_ours:>10.1f} "
                  f"{1e6 * best_theirs:>9.1f} {ratio:>5.2f}x")
    geo = math.exp(sum(map(math.log, ratios)) / len(ratios))
    print(f"geometric mean speed-up of minidl over torch.nn + autograd + torch.optim: {geo:.2f}x")


if __name__ == "__main__":
    main()
