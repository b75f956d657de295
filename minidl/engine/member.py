"""A member: one training run inside a population (``minidl.engine.population``).

A member is its settings (the settings table's values: activation, optimizer and its
hyperparameters, batch size, loss reduction, encodings, initialisation), the rows of
the population's shared data it trains on and is evaluated on, and the seed of the
generator that draws its initial weights and then its minibatch orders.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from .. import hparams

# A member whose training loss (mean squared error against targets in [−1, 1]) is non-finite
# or above this has diverged: a network that learns keeps it below ~1, and one that explodes
# passes 1e24 on its way to inf — showing such a number as a loss helps nobody.
DIVERGED_LOSS = 1e6
# what a Member's settings must say of every init convention the report leaves open
INIT_CONVENTIONS = tuple(n for n in hparams.names(part="init") if hparams.TABLE[n].convention)
# what the members of one population share: the shape of their work
SHARED = ("batch_size", "shuffle")


def diverged(loss: torch.Tensor | float) -> torch.Tensor | bool:
    """Whether a training loss (a float, or one per member) says the run diverged."""
    if isinstance(loss, torch.Tensor):
        return ~torch.isfinite(loss) | (loss.abs() > DIVERGED_LOSS)
    return not math.isfinite(loss) or abs(loss) > DIVERGED_LOSS


@dataclass
class Member:
    """One training run inside a population.

    ``settings``: the run's values of the settings table — ``activation``, ``optimizer``
    and the hyperparameters it reads, ``batch_size``, ``loss``, ``inputs``, ``targets``,
    ``init``, ``gain`` and the init conventions (``shuffle`` defaults to True); other keys
    are ignored.  ``train_rows`` / ``eval_rows``: indices into the population's ``X``, ``y``.
    """

    settings: Mapping[str, Any]
    train_rows: torch.Tensor
    eval_rows: torch.Tensor
    seed: int

    def get(self, name: str) -> Any:
        return self.settings.get(name, hparams.TABLE[name].default)


def shape_of(member: Member) -> tuple:
    """What must be equal for members to share a population: batch size and shuffling, and
    how many rows they train and are evaluated on."""
    return (*(member.get(k) for k in SHARED), len(member.train_rows), len(member.eval_rows))
