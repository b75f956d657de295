"""Time one training step of the 2-25-25-25-2 Tanh network: minidl vs torch.nn + autograd.

Both sides run interleaved in this one process with one torch thread, over the
same minibatches; each ratio is torch time / minidl time (> 1: minidl faster).
minidl's step is ``train.train_step`` run as ``train`` runs it (under
``torch.inference_mode()``, entered once per pass, as ``Run.train_steps`` and
``train_minibatches`` do); torch's is the usual ``zero_grad`` / ``backward`` / ``step``.
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

from minidl import data, nn, optim, train  # noqa: E402


def minidl_step(optimizer_name: str):
    model = nn.mlp([2, 25, 25, 25, 2], "tanh")
    model.init_params("xavier", 1.0, torch.Generator().manual_seed(0))
    loss = nn.LossMSE()
    opt = optim.make(optimizer_name, model.param(), lr=1e-3)

    def step(x, t):
        train.train_step(model, loss, opt, x, t)
    step.inference = True
    return step


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


def time_steps(step, batches) -> float:
    with torch.inference_mode(getattr(step, "inference", False)):
        start = time.perf_counter()
        for x, t in batches:
            step(x, t)
        return (time.perf_counter() - start) / len(batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    X, y = data.disk(1000, seed=0)
    T = data.one_hot(y)
    ratios = []
    print(f"{'optimizer':>9} {'batch':>5} {'minidl µs':>10} {'torch µs':>9} {'ratio':>6}")
    for optimizer_name in ("sgd", "adam", "rmsprop"):
        for batch in (1, 20):
            batches = [(X[i:i + batch], T[i:i + batch])
                       for i in range(0, args.steps * batch, batch)][:args.steps]
            batches = [(x, t) for x, t in batches if len(x) == batch]
            ours, theirs = minidl_step(optimizer_name), torch_step(optimizer_name)
            time_steps(ours, batches[:50]), time_steps(theirs, batches[:50])  # warm up
            best_ours, best_theirs = math.inf, math.inf
            for _ in range(args.repeats):  # interleaved, best of N: robust to a noisy machine
                best_ours = min(best_ours, time_steps(ours, batches))
                best_theirs = min(best_theirs, time_steps(theirs, batches))
            ratio = best_theirs / best_ours
            ratios.append(ratio)
            print(f"{optimizer_name:>9} {batch:>5} {1e6 * best_ours:>10.1f} "
                  f"{1e6 * best_theirs:>9.1f} {ratio:>5.2f}x")
    geo = math.exp(sum(map(math.log, ratios)) / len(ratios))
    print(f"geometric mean speed-up of minidl over torch.nn + autograd + torch.optim: {geo:.2f}x")


if __name__ == "__main__":
    main()
