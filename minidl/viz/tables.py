"""Tables and short texts for people: pure functions from results to pandas / strings.

Labels come from the settings table (``hparams.label``, ``hparams.display``),
percentages from ``reproduce.percent``, so every page and file says the same
thing the same way.  No Streamlit, no Altair.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import pandas as pd

from .. import hparams, jobs
from ..experiments import reproduce

# One format for an accuracy wherever a page shows one: 2 decimals of a percent (70.27 %,
# 48.20 %) in tables and in charts' tooltips alike (axis ticks may round further).
ACCURACY_DECIMALS = 2
ACCURACY_FORMAT = f".{ACCURACY_DECIMALS}%"  # d3-format, for Altair tooltips
# Streamlit's "percent" number format shows as many decimals as its column's step has
# (beyond the two that "%" consumes); without a step it drops trailing zeros (48.2 %)
ACCURACY_STEP = 10.0 ** -(ACCURACY_DECIMALS + 2)


def ordinal(n: int) -> str:
    """1 → "1st", 2 → "2nd", 11 → "11th"."""
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def plural(n: int, word: str) -> str:
    """``plural(3, "epoch")`` → ``"3 epochs"``; ``plural(1, "run")`` → ``"1 run"``."""
    return f"{n:,} {word}{'s' * (n != 1)}"


def summary_table(summary: pd.DataFrame) -> pd.DataFrame:
    """``Study.summary`` as text, one row per pair: mean ± SE (%), final loss, the report's %."""
    rows = []
    for r in summary.to_dict("records"):
        paper, loss = r["paper_test_acc"], r["final_loss"]
        rows.append({
            "pair": hparams.pair_label((r["activation"], r["optimizer"])),
            "test accuracy % (mean ± SE)": reproduce.percent(r["test_acc"], r["test_acc_se"]),
            "train accuracy % (mean ± SE)": reproduce.percent(r["train_acc"], r["train_acc_se"]),
            "final train loss": f"{loss:.4f}" if math.isfinite(loss) else "—",
            "report %": (reproduce.percent(paper) if math.isfinite(paper)
                         else f"≥ {100 * reproduce.PAPER_MIN_ACCURACY:.1f}"),
            "diverged runs": f"{r['diverged']} of {r['runs']}",
        })
    return pd.DataFrame(rows)


def configs_table(configs: Mapping[hparams.Pair, Mapping]) -> pd.DataFrame:
    """Each pair's configuration as text, a column per setting in table order (blank where
    the pair's optimizer does not read it)."""
    keys = [k for k in hparams.TABLE if any(k in c for c in configs.values())]
    return pd.DataFrame([{"pair": hparams.pair_label(pair),
                          **{hparams.label(k): hparams.display(k, c.get(k)) for k in keys}}
                         for pair, c in configs.items()])


def extras_note(activations: Iterable[str]) -> str:
    """What the chosen activations add to their pairs' grids, in words:
    ``"Sigmoid also tries Xavier gain 1, 16."``; ``""`` when nothing."""
    notes = []
    for a in activations:
        extras = hparams.activation_grid(a)
        if extras:
            notes.append(f"{hparams.label(a)} also tries " + "; ".join(
                f"{hparams.label(k)} {', '.join(hparams.display(k, v) for v in values)}"
                for k, values in extras.items()) + ".")
    return " ".join(notes)


def pairs_text(activations: Iterable[str], optimizers: Iterable[str]) -> str:
    """``"ReLU, Tanh × SGD, Adam"``."""
    return (", ".join(map(hparams.label, activations)) + " × "
            + ", ".join(map(hparams.label, optimizers)))


def jobs_overview(saved: Iterable[jobs.JobInfo], unit: str) -> pd.DataFrame:
    """One row per saved job: when, its name, status and how many ``unit``s are saved."""
    return pd.DataFrame([{"created": j.created_text, "name": j.name, "status": j.status,
                          f"{unit}s": f"{j.done} / {j.total}"} for j in saved])


def sweeps_overview(saved: Iterable[jobs.JobInfo]) -> pd.DataFrame:
    """Every saved sweep: when, what (pairs, folds, epochs, seeds), status, how far (a
    damaged one's settings left blank)."""
    saved = list(saved)
    table = jobs_overview(saved, "configuration")
    specs = [s.spec for s in saved]
    table.insert(2, "pairs", [pairs_text(s.activations, s.optimizers) if s else ""
                              for s in specs])
    for i, name in enumerate(("folds", "epochs", "seed", "data_seed"), start=3):
        table.insert(i, name.replace("_", " "), [getattr(s, name) if s else None for s in specs])
    return table


def column_label(column: str) -> str:
    """An optimal-table column as people read it: ``"adam beta1"`` → ``"Adam β₁"``."""
    optimizer, _, name = column.partition(" ")
    return f"{hparams.label(optimizer)} {hparams.label(name)}"
