"""The Playground's UI state, without Streamlit: settings ↔ URL, change classification,
pacing of live training, and the snapshot a frame draws.

A *setting* is one value of the settings table (``minidl.hparams``) that the
Playground offers: ``SETTINGS`` are the table's rows used in ``"app"``, and the
page draws one widget per row from the row's kind, label, help and app range.

- ``parse_query(params)`` turns URL query parameters into a complete settings
  dict plus human-readable warnings: an unknown, malformed or out-of-range
  value falls back to its default (a value between a slider's stops snaps to
  the nearest stop) — never an exception;
- ``to_query(settings)`` is the inverse: only values that differ from the
  defaults, formatted so that ``parse_query`` reads them back exactly;
- ``to_config(settings)`` builds the ``minidl.Config`` of a run; ``from_widgets``
  turns widget values (a multiselect's list) into settings, ``offered`` says which
  choices the page offers (the problem type's data sets; not ``custom``: your own points
  never come from a link); a link's data set is made to fit its problem type
  (``hparams.fit_problem``);
  old links' ``layers=3&width=25`` read as ``hidden=25,25,25``;
- ``share(n_train, n_test)`` and ``counts(share, total)``: a drawn data set's training share,
  a view over its two counts, and the counts a share sets;
- ``classify_change(old, new)`` tells which changed fields need a fresh run
  (data, architecture, init) and which a live run can absorb;
- what the live view draws of a run at one moment is ``ui.frames``'s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from minidl import Config, hparams
from minidl.config import RESET_FIELDS
from minidl.text import cut

Setting = hparams.Setting
SETTINGS: dict[str, Setting] = {n: hparams.TABLE[n] for n in hparams.names("app")}
# the compact bar above the network diagram (TensorFlow Playground's), in this order; every
# other setting stays in the sidebar.  A setting has one widget: here or there, never both.
BAR = ("problem", "dataset", "features", "hidden", "activation", "lr", "weight_decay", "l1")
# Config fields whose change needs a fresh run (all others are applied live)
# query parameters Streamlit itself understands; never warned about
_STREAMLIT_PARAMS = ("embed", "embed_options")


def defaults() -> dict:
    """The settings the Playground opens with (``Setting.app_value``)."""
    return {name: s.app_value for name, s in SETTINGS.items()}


REPORT_HIDDEN = SETTINGS["hidden"].default  # the report's 2-25-25-25-2, the CLI's default


def other_network(hidden: tuple[int, ...]) -> tuple[int, ...]:
    """The hidden widths the bar's preset button offers: the report's network, or from it
    back to the Playground's small default."""
    return SETTINGS["hidden"].app_value if tuple(hidden) == REPORT_HIDDEN else REPORT_HIDDEN


SHOWN_CHARACTERS = 40   # of a name or value from a link, in a message
BOUNDARY_ALT = "the network's output over the unit square"  # the boundary chart's alt text
SHOWN_WARNINGS = 10     # link problems listed; the rest are counted


def shorten(text: str, limit: int = SHOWN_CHARACTERS) -> str:
    """``text`` on one line (control characters as spaces), cut to ``limit`` characters with
    an ellipsis: a link may carry 20,000 characters and line breaks."""
    return cut("".join(c if c.isprintable() else " " for c in text), limit)


def _parse_one(s: Setting, text: str) -> tuple[object, str | None]:
    """``(value, warning)``; on failure the value is the default.  Warnings are plain text
    (the page never renders them as Markdown) with the link's text shortened."""
    given = f"{s.name}={shorten(text)}"
    fallback = f"using the default {format_value(s.app_value)}"
    try:
        value = hparams.parse(s.name, text)
    except ValueError:
        return s.app_value, f"{given}: not {s.expectation()}; {fallback}."
    low, high = s.app_low, s.app_high
    if not hparams.in_app_range(s.name, value):
        layers = f"at most {s.ui_length} layers, each in " if s.ui_length else ""
        return s.app_value, (f"{given}: outside {layers}[{format_value(low)}, "
                           f"{format_value(high)}]; {fallback}.")
    if s.stops and value not in s.stops:
        positive = [stop for stop in s.stops if stop > 0]
        if value <= 0 or not positive:
            nearest = min(s.stops, key=lambda stop: abs(stop - value))
        else:
            nearest = min(positive, key=lambda stop: abs(math.log(stop) - math.log(value)))
        return nearest, (f"{given}: not one of the slider's values; using the nearest, "
                         f"{format_value(nearest)}.")
    return value, None


def parse_query(params: Mapping[str, str | list[str]]) -> tuple[dict, list[str]]:
    """URL query parameters → (complete settings, warnings).  Never raises; every warning is
    plain text naming the parameter (names and values shortened to ``SHOWN_CHARACTERS``)."""
    settings, given = defaults(), {}
    params, warnings = _old_widths(params)
    for name, raw in params.items():
        text = raw[-1] if isinstance(raw, list) and raw else raw
        if name in _STREAMLIT_PARAMS:
            continue
        if name not in SETTINGS:
            warnings.append(f"{shorten(name)}: not a setting; ignored.")
            continue
        if not isinstance(text, str):
            warnings.append(f"{name}: no value; using the default.")
            continue
        given[name] = text
        settings[name], warning = _parse_one(SETTINGS[name], text)
        if name == "dataset" and settings[name] == "custom":
            settings[name] = SETTINGS[name].app_value
            warning = f"{name}={shorten(text)}: your own points cannot come from a link; " \
                      f"using the default {format_value(SETTINGS[name].app_value)}."
        if warning:
            warnings.append(warning)
    if "dataset" in given and "problem" not in given:  # a link that names only the data set
        settings["problem"] = hparams.problem_of(settings["dataset"])
    settings, changed = hparams.fit_problem(settings)
    warnings += [f"{name}={shorten(given[name])}: {why}" for name, why in changed.items()
                 if name in given]
    return settings, warnings


def _old_widths(params: Mapping[str, str | list[str]]) -> tuple[dict, list[str]]:
    """Links from before per-layer widths said ``layers=3&width=25``: read as
    ``hidden=25,25,25``, what was left out as the default of then (the report's network).
    Returns the parameters with those two replaced, and warnings."""
    params = dict(params)
    old = {k: params.pop(k) for k in ("layers", "width") if k in params}
    if not old:
        return params, []
    if "hidden" in params:
        return params, [f"{', '.join(old)}: ignored (hidden is given)."]
    s = SETTINGS["hidden"]
    given = {"layers": len(s.default), "width": s.default[0]}
    highs = {"layers": s.ui_length, "width": int(s.app_high)}
    warnings = []
    for name, raw in old.items():
        text = raw[-1] if isinstance(raw, list) and raw else raw
        try:
            value = int(text)
        except (TypeError, ValueError):
            value = None
        if value is None or not 1 <= value <= highs[name]:
            warnings.append(f"{name}={shorten(str(text))}: not an integer in [1, {highs[name]}]; "
                            f"using the default {given[name]}.")
        else:
            given[name] = value
    params["hidden"] = ",".join([str(given["width"])] * given["layers"])
    return params, warnings


def offered(s: Setting, problem: str = "classification") -> tuple:
    """The choices a link may bring: for the data set, those of the ``problem`` type but your
    own points (they come from an upload or a drawing)."""
    if s.name != "dataset":
        return s.choices
    return tuple(c for c in hparams.datasets_of(problem) if c != "custom")


def from_widgets(values: Mapping[str, object]) -> dict:
    """Widget values as settings: a multiselect's list as a tuple, an empty one (every
    feature off) as the default."""
    out = dict(values)
    for name, value in values.items():
        s = SETTINGS[name]
        if s.kind in ("set", "widths") and isinstance(value, list):
            out[name] = hparams.check(name, value) if value else s.app_value
    return out


def share(n_train: int, n_test: int) -> float:
    """A drawn data set's training share, ``n_train / (n_train + n_test)``, as the ``split``
    slider shows it: rounded to its step, within its range.  Not a setting of its own: the
    two counts are the facts, and the share a view over them."""
    s = SETTINGS["split"]
    value = round(n_train / (n_train + n_test) / s.ui_step) * s.ui_step
    return round(min(max(value, s.app_low), s.app_high), 10)  # 0.8, not 0.8000000000000002


def counts(share: float, total: int) -> tuple[int, int]:
    """``(n_train, n_test)`` for a training ``share`` of ``total`` points: the total kept,
    ``n_train = round(share · total)`` moved into the range both counts' widgets offer (so each
    is at least 1).  ``counts(0.8, 2000) == (1600, 400)``; ``counts(0.9, 20) == (18, 2)``."""
    train, test = SETTINGS["n_train"], SETTINGS["n_test"]
    low = max(train.app_low, total - test.app_high)
    high = min(train.app_high, total - test.app_low)
    n_train = int(min(max(round(share * total), low), high))
    return n_train, total - n_train


def toggle_feature(features: tuple[str, ...], feature: str) -> tuple[str, ...]:
    """``features`` with ``feature`` switched on or off, in the table's order; the last
    feature stays on (a network needs an input)."""
    if feature not in features:
        return hparams.check("features", (*features, feature))
    return tuple(f for f in features if f != feature) or features


def warnings_text(warnings: list[str]) -> str:
    """The link's problems as one plain-text block: at most ``SHOWN_WARNINGS`` lines, then a
    count of the rest."""
    shown = warnings[:SHOWN_WARNINGS]
    rest = len(warnings) - len(shown)
    return "\n".join(shown + ([f"… and {rest} more"] if rest else []))


format_value = hparams.format_value


def to_query(settings: Mapping[str, object]) -> dict[str, str]:
    """The settings that differ from the defaults, as query parameters, in ``SETTINGS`` order."""
    return {name: format_value(settings[name]) for name, s in SETTINGS.items()
            if name in settings and settings[name] != s.app_value}


def to_config(settings: Mapping[str, object]) -> Config:
    """The ``Config`` of a run with these settings (raises ``ValueError`` if one is invalid)."""
    return Config(**{k: v for k, v in settings.items() if k in Config.field_names()})


def from_config(config: Mapping[str, object]) -> dict:
    """The Playground settings of a configuration (e.g. a sweep's result row): every app
    setting it names."""
    settings = defaults()
    settings.update({k: v for k, v in config.items() if k in SETTINGS})
    return settings


def classify_change(old: Config, new: Config) -> tuple[list[str], dict]:
    """``(reset_reasons, live_updates)`` between two configs.

    ``reset_reasons`` describes every changed field that needs a fresh run
    ("activation: tanh → relu"); ``live_updates`` maps every other changed
    field to its new value (for ``Run.set_hyperparameters``).
    """
    reasons, live = [], {}
    for name in Config.field_names():
        before, after = getattr(old, name), getattr(new, name)
        if before == after:
            continue
        if name in RESET_FIELDS:
            reasons.append(f"{hparams.label(name)}: {describe(name, before)} → "
                           f"{describe(name, after)}")
        else:
            live[name] = after
    return reasons, live


def describe(name: str, value: object) -> str:
    if name == "hidden":
        return f"{len(value)} × {value[0]}" if len(set(value)) == 1 else "-".join(map(str, value))
    return hparams.display(name, value)
