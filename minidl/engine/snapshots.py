"""A run's weights at the ends of its epochs, kept so that the run can be replayed.

A *snapshot* is every parameter of the network, flattened into one float32 vector
``(P,)`` in ``model.param()`` order — 4·P bytes (5.7 KB for the default 2-25-25-25-2
network, 86 KB for the Playground's largest).  A long run would keep too many, so the
snapshots fit in ``max_bytes`` (``MAX_BYTES``: 2 MiB a run, ~367 epochs of the default
network, ~24 of the largest) by thinning them evenly:

- kept are the first epoch recorded, every epoch that is a multiple of ``every``, and
  the latest epoch (so the whole run is always covered, its ends included);
- ``every`` starts at 1 (every epoch) and doubles whenever the snapshots outgrow
  ``max_bytes``, dropping the epochs that are not multiples of the new value:
  1, 2, 3, 4, … → 2, 4, 6, … → 4, 8, 12, …

The first and the latest are kept even if those two alone outgrow ``max_bytes``.  A
snapshot's tensor is never changed once recorded, so copies of a run may share them.
"""

from __future__ import annotations

import torch

from ..nn import Module

MAX_BYTES = 2 << 20  # per run: ~1.5 GB serves a whole class, sessions each keep one run


def flat(model: Module) -> torch.Tensor:
    """Every parameter of ``model`` as one new ``(P,)`` vector, in ``param()`` order."""
    return torch.cat([p.reshape(-1) for p, _ in model.param()])


class Snapshots:
    """The weights at the ends of a run's epochs, thinned to fit ``max_bytes``; see the
    module docstring.  ``epochs`` lists the epochs kept, oldest first."""

    def __init__(self, max_bytes: int = MAX_BYTES):
        if max_bytes < 1:
            raise ValueError(f"Invalid snapshot budget (max_bytes): {max_bytes} "
                             "(expected a positive number of bytes)")
        self.max_bytes = max_bytes
        self.every = 1
        self._kept: dict[int, torch.Tensor] = {}  # epoch -> flat weights, oldest first

    def __len__(self) -> int:
        return len(self._kept)

    def __contains__(self, epoch: object) -> bool:
        return epoch in self._kept

    @property
    def epochs(self) -> list[int]:
        return list(self._kept)

    @property
    def nbytes(self) -> int:
        return sum(w.nbytes for w in self._kept.values())

    def record(self, epoch: int, model: Module) -> None:
        """Keep ``model``'s weights as they are at the end of ``epoch`` (later than any
        kept), thinning the older ones if they no longer fit."""
        weights = flat(model)
        if self._kept:
            first, latest = next(iter(self._kept)), next(reversed(self._kept))
            if epoch <= latest:
                raise ValueError(f"epoch {epoch} is not after the latest snapshot ({latest})")
            if latest != first and not self._on_grid(latest, first):
                del self._kept[latest]  # it was kept only as the latest
        self._kept[epoch] = weights
        # every snapshot is the same size: their count says their bytes, without a sum
        while len(self) * weights.nbytes > self.max_bytes and len(self) > 2:
            self.every *= 2
            first = next(iter(self._kept))
            self._kept = {e: w for e, w in self._kept.items()
                          if e == epoch or self._on_grid(e, first)}

    def _on_grid(self, epoch: int, first: int) -> bool:
        return epoch == first or epoch % self.every == 0

    def weights(self, epoch: int) -> torch.Tensor:
        """The flat weights kept for ``epoch`` (``KeyError`` if it is not kept)."""
        return self._kept[epoch]

    def load(self, epoch: int, model: Module) -> Module:
        """Copy the weights of ``epoch`` into ``model`` (a network of the same sizes);
        returns ``model``."""
        weights = self.weights(epoch)
        params = [p for p, _ in model.param()]
        if sum(p.numel() for p in params) != weights.numel():
            raise ValueError(f"a network of {sum(p.numel() for p in params)} parameters cannot "
                             f"take a snapshot of {weights.numel()}")
        for p, w in zip(params, weights.split([p.numel() for p in params])):
            p.copy_(w.view_as(p))
        return model
