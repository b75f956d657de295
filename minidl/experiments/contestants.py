"""Who races (``minidl.experiments.race``): contestants, built from presets or a hand-made
list, checked, and named.

A contestant is a complete ``Config``.  Every contestant of a race shares ``SHARED`` —
one data draw and one epoch budget — so that differences come from their settings alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .. import hparams
from ..config import Config
from ..text import cut
from . import reproduce

MAX_CONTESTANTS = 9
# what every contestant shares: one data draw and one epoch budget
# races, sweeps and studies rank classifiers (by accuracy): what a regression run is told
CLASSIFIERS_ONLY = ("regression runs in the Playground and in minidl train (--problem "
                    "regression); races, sweeps and studies rank classifiers by accuracy")
SHARED = ("dataset", "n_train", "n_test", "noise", "jitter", "data_seed", "epochs")
PRESETS = hparams.TABLE["preset"].choices


def _pair_settings(changes: Mapping) -> dict:
    """``changes`` (a pair's chosen settings: Table I's, a sweep's) on top of the table's
    defaults for every optimizer setting: a pair does not inherit the base's other ones."""
    keys = [k for k in hparams.names("config", "optimizer") if k != "optimizer"]
    fields = hparams.names("config")
    return {**{k: hparams.TABLE[k].default for k in keys},
            **hparams.check_all({k: v for k, v in changes.items()
                                 if k in fields and not hparams.is_missing(v)})}


def pair_configs(base: Config, configs: Mapping[hparams.Pair, Mapping]) -> list[Config]:
    """One contestant per pair: ``base`` with the pair and its chosen settings (the
    optimizer's other settings at the table's defaults)."""
    return [base.replace(**{**_pair_settings(settings), "activation": a, "optimizer": o})
            for (a, o), settings in configs.items()]


def preset(name: str, base: Config, sweep_configs: Mapping[hparams.Pair, Mapping] | None = None,
           contestants: str = "") -> list[Config]:
    """The contestants of a preset (``hparams`` row ``preset``), built on ``base``:

    - ``paper``: the report's nine pairs with its Table I settings;
    - ``cv``: the pairs of a saved sweep with its chosen settings (``sweep_configs``,
      ``reproduce.configs_from_sweep``);
    - ``optimizers`` / ``activations`` / ``lrs``: ``base`` with only the optimizer (each
      of them), the activation (each of the report's) or the learning rate (each of the
      cross-validation grid's) varied;
    - ``custom``: ``contestants``, one a line (``parse_contestants``).
    """
    name = hparams.check("preset", name)
    if name == "paper":
        return pair_configs(base, reproduce.PAPER_CONFIGS)
    if name == "cv":
        if not sweep_configs:
            raise ValueError(f"{hparams.label('cv').capitalize()} need a "
                             "saved sweep with finished pairs: run one on the "
                             "Cross-validation page or with python -m minidl sweep")
        return pair_configs(base, {p: c for p, c in sweep_configs.items()})
    if name == "optimizers":
        return [base.replace(optimizer=o) for o in hparams.OPTIMIZERS]
    if name == "activations":
        return [base.replace(activation=a) for a in hparams.REPORT_ACTIVATIONS]
    if name == "lrs":
        return [base.replace(lr=lr) for lr in hparams.TABLE["lr"].grid["*"]]
    return [base.replace(**changes) for changes in parse_contestants(contestants)]


def parse_contestants(text: str) -> list[dict]:
    """``"activation=relu lr=0.001\\noptimizer=adam"`` → one dict of changes per line (or
    per ``;``): ``name=value`` pairs, each ``hparams.parse``d.  ``ValueError`` names the
    line and the setting."""
    text = hparams.check("contestants", text)
    lines = [line.strip() for line in text.replace(";", "\n").splitlines() if line.strip()]
    if not lines:
        raise ValueError("Invalid hand-made contestants (contestants): none given "
                         "(expected one contestant a line, e.g. activation=relu lr=0.001)")
    if len(lines) > MAX_CONTESTANTS:
        raise ValueError(f"Invalid hand-made contestants (contestants): {len(lines)} lines "
                         f"(expected at most {MAX_CONTESTANTS})")
    out = []
    for number, line in enumerate(lines, 1):
        changes = {}
        for item in line.split():
            name, sep, value = item.partition("=")
            if not sep or name not in hparams.names("config"):
                raise ValueError(f"Invalid contestant {number}: {cut(item, 30)!r} (expected "
                                 "name=value "
                                 f"with a setting's name, e.g. lr=0.001)")
            if name in SHARED:
                raise ValueError(f"Invalid contestant {number}: {name} is shared by the whole "
                                 "race (set it for all)")
            try:
                changes[name] = hparams.parse(name, value)
            except ValueError as error:
                raise ValueError(f"Contestant {number}: {error}") from None
        out.append(changes)
    return out


def check_contestants(configs: Sequence[Config]) -> list[Config]:
    """1 to ``MAX_CONTESTANTS`` configs that share ``SHARED`` (and not your own points)."""
    configs = list(configs)
    if not 1 <= len(configs) <= MAX_CONTESTANTS:
        raise ValueError(f"Invalid number of contestants: {len(configs)} (expected 1 to "
                         f"{MAX_CONTESTANTS})")
    for c in configs:
        if not isinstance(c, Config):
            raise TypeError(f"a contestant must be a train.Config, got {type(c).__name__}")
        c.validate()
        if c.regression:
            raise ValueError(f"a race cannot take a regression: {CLASSIFIERS_ONLY}")
        if c.dataset == "custom":
            raise ValueError("a race draws its data: the data set 'custom' (your own points) "
                             "cannot race")
    for name in SHARED:
        values = {getattr(c, name) for c in configs}
        if len(values) > 1:
            raise ValueError(f"contestants must share the {hparams.label(name)} ({name}); "
                             f"got {', '.join(map(hparams.format_value, sorted(values)))}")
    return configs


def details(configs: Sequence[Config]) -> list[str]:
    """Each contestant's settings that differ between contestants (``lr 0.001, batch 20``),
    the pair aside."""
    varying = [n for n in hparams.names("config") if n not in ("activation", "optimizer")
               and len({getattr(c, n) for c in configs}) > 1]
    return [hparams.describe(c.to_dict(), [n for n in varying
                                           if hparams.TABLE[n].applies_to(c.optimizer)])
            for c in configs]


def labels(configs: Sequence[Config]) -> list[str]:
    """Short names that tell the contestants apart: the pair (``SGD + Tanh``) when the pairs
    do, else the pair and the settings in which they differ (``SGD + Tanh, lr 0.001``); a
    repeated name gets ``#2``."""
    pairs = [hparams.pair_label((c.activation, c.optimizer)) for c in configs]
    if len(set(pairs)) == len(pairs):
        return pairs
    out: list[str] = []
    for pair, detail in zip(pairs, details(configs)):
        text = ", ".join(filter(None, [pair, detail]))
        count = sum(1 for o in out if o == text or o.startswith(text + " #"))
        out.append(text if count == 0 else f"{text} #{count + 1}")
    return out
