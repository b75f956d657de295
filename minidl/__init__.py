"""minidl: a deep-learning mini-framework written with PyTorch tensor operations only.

The framework a learner reads: ``nn`` (modules whose gradients are derived and coded by
hand), ``optim`` (optimizers that own their state), ``data`` (the 2-D data sets),
``hparams`` (every setting, declared once) and ``Config`` (one run's settings).

Above it, folder by folder: ``engine`` (the one training loop: ``Run`` is a population
of one), ``jobs`` (saved jobs, their store and how their tasks run), ``experiments``
(sweeps, studies, ablations, races), then ``cli`` and ``viz``.

The names below load when first used, so that ``import minidl`` (and ``minidl --version``)
costs nothing until one is.
"""

import importlib

__version__ = "0.1.0"
_PUBLIC = {"data": "minidl.data", "hparams": "minidl.hparams", "nn": "minidl.nn",
           "optim": "minidl.optim", "Config": "minidl.config", "Run": "minidl.engine.run",
           "train": "minidl.engine.run"}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'minidl' has no attribute {name!r}")
    module = importlib.import_module(_PUBLIC[name])
    return module if module.__name__ == f"minidl.{name}" else getattr(module, name)
