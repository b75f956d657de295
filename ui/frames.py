"""What the Playground's live view draws of a run at one moment, without Streamlit:
``snapshot(run)`` collects it (boundary image, mistakes, metrics, history) so the page never
touches the model while drawing; ``status(run)`` and ``done_text`` say where the run is."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyarrow as pa
import torch

from minidl import Config, Run, nn
from minidl.viz import boundary, live


@dataclass
class Frame:
    """What the live view draws of a run at one moment (computed while holding the run)."""

    epoch: int
    budget: int
    status: str
    parameters: int
    metrics: dict              # the last epoch's metrics (the initial ones before epoch 1)
    image: str                 # the boundary as a PNG data URL
    underlay: pa.Table         # live.underlay of it: what shows while the browser decodes it
    mistakes: pa.Table         # live.wrong_frame rows of training and test points
    history: list[dict]        # Run.history (a copy): one dict of metrics per epoch
    baseline: float = math.nan  # regression: Run.mean_guess_loss()


def snapshot(run: Run, resolution: int = 100, discrete: bool = False, test: bool = True,
             scores: torch.Tensor | None = None) -> Frame:
    """Everything the live view needs from ``run``, so drawing never touches the model: the
    mistakes among the training points (and the test points if ``test``), found in one
    forward pass (a regression has none).  ``scores``: the boundary's (``boundary.scores``)
    if the service sent them."""
    shown = [(run.X_train, run.y_train, "train")] + (
        [(run.X_test, run.y_test, "test")] if test else [])
    predicted = (torch.cat([y for _, y, _ in shown]) if run.config.regression else
                 run.predict(torch.cat([X for X, _, _ in shown])).argmax(1))
    parts, start = [], 0
    for X, y, name in shown:
        parts.append(live.wrong_frame(X, y, predicted[start:start + len(X)], name))
        start += len(X)
    if scores is None:
        scores = boundary.scores(run.predict, resolution)
    picture = boundary.colorize(scores, discrete)
    return Frame(epoch=run.epoch, budget=run.config.epochs, status=status(run),
                 parameters=nn.parameter_count(run.model),
                 metrics=run.history[-1] if run.history else run.metrics(),
                 image=boundary.data_url(boundary.png_bytes(picture)),
                 underlay=live.underlay(picture),
                 mistakes=pa.concat_tables(parts), history=run.history,
                 baseline=run.mean_guess_loss() if run.config.regression else math.nan)


def done_text(config: Config, metrics: dict) -> str:
    """What the page says when the epoch budget is used up; below 90 % test accuracy, what
    to try: with few optimizer steps in all (batch 1000 over 200 epochs is 200 steps) the
    batch size, else the budget or the learning rate."""
    steps_per_epoch = math.ceil(config.n_train / config.batch_size)
    steps = config.epochs * steps_per_epoch
    text = f"Epoch budget reached ({config.epochs} epochs, {steps:,} optimizer steps)."
    if config.regression or metrics["test_acc"] >= POOR_ACCURACY:
        return text + " Raise the budget to train on, or press **Reset**."
    if steps < FEW_STEPS:
        return text + (f" With batch size {config.batch_size} an epoch is only "
                       f"{steps_per_epoch} step{'s' * (steps_per_epoch != 1)}: lower the batch "
                       "size, or raise the epoch budget or the learning rate, and press "
                       "**Reset**.")
    return text + (" Still below 90 % test accuracy: raise the epoch budget or the learning "
                   "rate; the layer health panel shows where the gradient fades.")


# a run that ends below this test accuracy gets a hint; with fewer steps than this in all,
# about the batch size
POOR_ACCURACY, FEW_STEPS = 0.9, 5_000


def status(run: Run) -> str:
    """"diverged", "done" (epoch budget used up), "fresh" (no epoch yet) or "partial"."""
    if run.diverged:
        return "diverged"
    if run.epoch >= run.config.epochs:
        return "done"
    return "fresh" if run.epoch == 0 else "partial"
