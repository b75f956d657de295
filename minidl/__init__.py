"""minidl: a deep-learning mini-framework written with PyTorch tensor operations only.

Gradients are derived and coded by hand (``minidl.nn``); optimizers own their
state (``minidl.optim``); every setting is declared once in ``minidl.hparams``.
``minidl.train`` runs one model, ``minidl.population`` many as one batched
population, ``minidl.cv`` cross-validates a grid, and ``minidl.sweeps`` /
``minidl.studies`` run the report's experiments as saved, resumable jobs.
"""

from . import data, hparams, nn, optim, train

__all__ = ["data", "hparams", "nn", "optim", "train"]
__version__ = "0.1.0"
