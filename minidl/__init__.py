"""minidl: a deep-learning mini-framework written with PyTorch tensor operations only.

Gradients are derived and coded by hand (``minidl.nn``); optimizers own their
state (``minidl.optim``); ``minidl.train`` runs one model and ``minidl.cv`` a
population of them for cross-validation.
"""

from . import data, nn, optim, train

__all__ = ["data", "nn", "optim", "train"]
__version__ = "0.1.0"
