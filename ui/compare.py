"""The Compare page's state, without Streamlit: race settings ↔ URL, the contestants, the
frame a redraw draws.

A race's URL holds its *base* (the Playground's settings, ``ui.playground``: data, network,
seeds, optimizer, budget — only those that differ from the defaults) and its own settings
(``RACE_SETTINGS``: the ``hparams`` rows used in ``"race"`` — preset, target accuracy,
hand-made contestants, saved sweep).  ``parse_query`` never raises: a bad value falls back
to its default with a plain-text warning (the page never renders it as Markdown).

Every contestant is passed through the Playground's own reading of a link
(``playground.parse_query(playground.to_query(...))``), so the race trains exactly what
"open in the Playground" restores: a value between the Playground's slider stops snaps to
the nearest stop, with a warning, before the race starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

import pandas as pd
import torch

from minidl import Config, data, hparams
from minidl.experiments import race
from minidl.experiments.contestants import CLASSIFIERS_ONLY, check_contestants, preset
from minidl.experiments.race import Race
from minidl.viz import boundary, tiles
from ui import playground

RACE_SETTINGS = {n: hparams.TABLE[n] for n in hparams.names("race")}
_shorten = playground.shorten


def defaults() -> dict:
    return {name: s.default for name, s in RACE_SETTINGS.items()}


def parse_query(params: Mapping[str, str | list[str]]) -> tuple[dict, dict, list[str]]:
    """URL query parameters → (base settings, race settings, warnings); never raises."""
    base, warnings = playground.parse_query(
        {k: v for k, v in params.items() if k not in RACE_SETTINGS})
    if not {"hidden", "layers", "width"} & set(params):  # a race's network is the report's,
        base["hidden"] = hparams.TABLE["hidden"].default  # not the Playground's small one
    if base["problem"] != "classification":  # a race ranks classifiers
        warnings.append(f"problem={base['problem']}: a race cannot take a regression "
                        f"({CLASSIFIERS_ONLY}); using classification.")
        base, _ = hparams.fit_problem({**base, "problem": "classification"})
    settings = defaults()
    for name, s in RACE_SETTINGS.items():
        if name not in params:
            continue
        raw = params[name]
        text = raw[-1] if isinstance(raw, list) and raw else raw
        if not isinstance(text, str):
            warnings.append(f"{name}: no value; using the default.")
            continue
        try:
            value = hparams.parse(name, text)
        except ValueError:
            warnings.append(f"{name}={_shorten(text)}: not {s.expectation()}; using the "
                            f"default {hparams.format_value(s.default) or '(none)'}.")
            continue
        if not hparams.in_app_range(name, value):
            warnings.append(f"{name}={_shorten(text)}: outside [{s.app_low:g}, {s.app_high:g}]; "
                            f"using the default {hparams.format_value(s.default)}.")
            continue
        settings[name] = value
    return base, settings, warnings


def to_query(base: Mapping, settings: Mapping) -> dict[str, str]:
    """The race's URL query: the base's and the race's settings that differ from defaults."""
    query = playground.to_query(base)
    query.update({name: hparams.format_value(settings[name]) for name, s in RACE_SETTINGS.items()
                  if name in settings and settings[name] != s.default})
    return query


def contestants(base: Mapping, settings: Mapping,
                sweep_configs: Mapping[hparams.Pair, Mapping] | None = None
                ) -> tuple[list[Config], list[str]]:
    """The race's contestants as the Playground reads them back, and warnings (a value the
    Playground cannot show, snapped to its nearest stop).  ``ValueError``: a bad hand-made
    list, or a preset that cannot be built (no sweep)."""
    configs = preset(settings["preset"], playground.to_config(base), sweep_configs,
                     settings["contestants"])
    out, warnings = [], []
    for number, config in enumerate(configs, 1):
        shown, problems = playground.parse_query(contestant_query(config))
        warnings += [f"contestant {number}: {p}" for p in problems]
        out.append(playground.to_config(shown))
    check_contestants(out)
    return out, warnings


def contestant_query(config: Config) -> dict[str, str]:
    """The Playground query that opens ``config`` (its settings and seeds)."""
    return playground.to_query(playground.from_config(config.to_dict()))


def contestant_link(config: Config, page: str = "./") -> str:
    """A link to the Playground with exactly this contestant's settings and seeds."""
    return f"{page}?{urlencode(contestant_query(config))}"


# ---------------------------------------------------------------- a frame

@dataclass
class Frame:
    """What one redraw of the race shows (computed from a frozen copy of the race)."""

    epoch: int
    budget: int
    status: str                 # "fresh", "partial", "done" or "diverged" (every contestant)
    tiles: list[bytes]          # one PNG per contestant, in the race's order
    standings: pd.DataFrame     # race.standings
    history: pd.DataFrame       # Race.history_frame()


def status(match: Race) -> str:
    if match.diverged:
        return "diverged"
    if match.epoch >= match.budget:
        return "done"
    return "fresh" if match.epoch == 0 else "partial"


@torch.inference_mode()
def snapshot(match: Race, target: float, resolution: int = 60, scale: int = 3,
             discrete: bool = False) -> Frame:
    """Every contestant's boundary tile (its mistakes among the training points marked;
    before the first epoch none, and its colours faded; a diverged contestant's tile grey),
    the standings and the history."""
    grid = boundary.grid(resolution)
    scores = match.predict_all(grid)
    predicted = match.predict_all(match.X_train)
    c = match.contestants[0]
    disk = (data.DISK_CENTER, data.DISK_RADIUS) if c.dataset == "disk" else None
    pictures, out_of_race = [], match.out()
    none = torch.zeros_like(match.y_train, dtype=torch.bool)
    for i, out in enumerate(scores):
        score = (out[:, 1] - out[:, 0]).reshape(resolution, resolution)
        wrong = (predicted[i].argmax(1) != match.y_train) if match.epoch else none
        if i in out_of_race:  # frozen at zero weights: grey (NaN), no mistakes to mark
            score, wrong = torch.full_like(score, float("nan")), none
        pictures.append(tiles.tile_png(score, match.X_train, match.y_train, wrong, disk, scale,
                                       discrete, faded=match.epoch == 0))
    return Frame(epoch=match.epoch, budget=match.budget, status=status(match), tiles=pictures,
                 standings=race.standings(match, target), history=match.history_frame())


def ranking_table(standings: pd.DataFrame, target: float) -> pd.DataFrame:
    """The ranking as people read it: accuracy in percent, the epoch the target was first
    reached (or "not yet"), nothing for a diverged contestant's numbers."""
    reached = f"reached {100 * target:.1f} % at epoch"
    return pd.DataFrame({
        "rank": standings["rank"],
        "contestant": standings["name"],
        "test accuracy %": [None if d else 100 * a for a, d in zip(standings["test_acc"],
                                                                   standings["diverged"])],
        reached: ["not yet" if pd.isna(e) else str(int(e)) for e in standings["reached"]],
        "epoch": standings["epoch"],
        "training loss": [None if d else v for v, d in zip(standings["train_loss"],
                                                           standings["diverged"])],
        "diverged": ["diverged" if d else "" for d in standings["diverged"]],
        "settings": standings["settings"],  # last: on a phone the numbers come first
    })


MISSING = "—"  # a number not measured yet (before the first epoch) or lost (diverged)


def ranking_view(table: pd.DataFrame):
    """``ranking_table`` as ``st.dataframe`` shows it: numbers to the digits that matter and
    ``MISSING`` for none (pandas' Styler: Streamlit's grid would write "None")."""
    return table.style.format({"test accuracy %": "{:.1f}", "training loss": "{:.4f}"},
                              na_rep=MISSING)
