"""Links between pages, without Streamlit: a sweep's result row → the Playground's URL.

The Playground keeps its settings in its URL (``ui.playground``: ``from_config``
and ``to_query``); a link opens one configuration of a sweep there, on the
sweep's own training set (its data seed and size) with the sweep's epochs.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode, urljoin

from minidl import hparams
from minidl.experiments import sweeps
from ui import playground


def playground_config(row: Mapping, spec: sweeps.SweepSpec) -> dict:
    """The configuration of a result row: its pair, its grid keys that have a value, and the
    sweep's epochs and training set (each value checked by the settings table)."""
    optimizer = row["optimizer"]
    config = {"activation": row["activation"], "optimizer": optimizer,
              "epochs": spec.epochs, "data_seed": spec.data_seed, "n_train": spec.n_train,
              "dataset": sweeps.DATASET}
    config.update({k: row[k] for k in hparams.grid_keys(optimizer)
                   if k in row and not hparams.is_missing(row[k])})
    # check: numpy scalars and floats read back from a CSV become the setting's own type
    return hparams.check_all(config)


def playground_query(row: Mapping, spec: sweeps.SweepSpec) -> dict[str, str]:
    """Query parameters that open one result row's configuration in the Playground."""
    return playground.to_query(playground.from_config(playground_config(row, spec)))


def playground_link(row: Mapping, spec: sweeps.SweepSpec, page: str = "./") -> str:
    """A link to the Playground with ``row``'s configuration: ``<page>?activation=relu&…``.

    ``page``: the Playground's address — ``"./"`` (relative to another page of the
    app) while it is the app's default page, served at the root.
    """
    return f"{page}?{urlencode(playground_query(row, spec))}"


def playground_page(here: str | None, default_page: str = "playground") -> str:
    """The Playground's address seen from another page at ``here`` (the browser's URL, if
    known): the app's root while the Playground is the default page (``/playground`` is
    "Page not found"); absolute when ``here`` is, so a link means the same wherever opened."""
    page = "./" if default_page == "playground" else "playground"
    here = here or ""
    return urljoin(here, page) if here.startswith(("http://", "https://")) else page
