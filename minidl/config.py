"""``Config``: every setting of one training run, as plain values, checked by the settings table.

One field per row of ``minidl.hparams.TABLE`` that appears in ``"config"``, in the
table's order, with the table's default (the seed report's network, SGD + Tanh);
``tests/test_config.py`` keeps the fields and the table in step.  Construction
checks every field (``ValueError`` naming the first bad one) and brings each to
its type (a list of widths becomes a tuple, 20.0 becomes 20).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from . import hparams

_D = hparams.defaults("config")


@dataclass
class Config:
    """Every setting of one run; see the module docstring and ``hparams.TABLE`` for each."""

    # data
    problem: str = _D["problem"]
    dataset: str = _D["dataset"]
    n_train: int = _D["n_train"]
    n_test: int = _D["n_test"]
    noise: float = _D["noise"]
    jitter: float = _D["jitter"]
    split: float = _D["split"]
    data_seed: int = _D["data_seed"]
    inputs: str = _D["inputs"]
    features: tuple[str, ...] = _D["features"]
    # network
    hidden: tuple[int, ...] = _D["hidden"]
    activation: str = _D["activation"]
    # initialisation
    init: str = _D["init"]
    gain: float = _D["gain"]
    init_scale: str = _D["init_scale"]
    init_dist: str = _D["init_dist"]
    init_bias: str = _D["init_bias"]
    init_seed: int = _D["init_seed"]
    # optimizer
    optimizer: str = _D["optimizer"]
    lr: float = _D["lr"]
    momentum: float = _D["momentum"]
    beta1: float = _D["beta1"]
    beta2: float = _D["beta2"]
    rho: float = _D["rho"]
    eps: float = _D["eps"]
    weight_decay: float = _D["weight_decay"]
    l1: float = _D["l1"]
    # training
    batch_size: int = _D["batch_size"]
    loss: str = _D["loss"]
    targets: str = _D["targets"]
    epochs: int = _D["epochs"]
    shuffle: bool = _D["shuffle"]

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field with the settings table (``ValueError`` naming the first bad
        one) and bring each to its type."""
        for name in hparams.names("config"):
            setattr(self, name, hparams.check(name, getattr(self, name)))
        hparams.check_problem(self.problem, self.dataset, self.noise)

    def optimizer_kwargs(self) -> dict:
        """The hyperparameters the chosen optimizer reads (``hparams.optimizer_keys``)."""
        return {k: getattr(self, k) for k in hparams.optimizer_keys(self.optimizer)}

    @property
    def regression(self) -> bool:
        return self.problem == "regression"

    def sizes(self) -> list[int]:
        """The network's layer sizes: its input features, the hidden widths, and two outputs
        (one score per class) or, for regression, one (the predicted value)."""
        return [len(self.features), *self.hidden, 1 if self.regression else 2]

    def to_dict(self) -> dict:
        return asdict(self)

    def replace(self, **changes) -> Config:
        """A checked copy with ``changes``."""
        return Config(**{**self.to_dict(), **changes})

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


# Config fields that define the data, the network or its initial weights: changing
# one needs a fresh Run; every other field can change during a run.
RESET_FIELDS = tuple(n for n in hparams.names("config") if hparams.TABLE[n].fresh_run)
