"""A classroom on a public server: N visitors train in the Playground at once (issue 21, item 3).

For each number of visitors and each scenario, a fresh server: ``streamlit run
streamlit_app.py`` with ``MINIDL_PUBLIC=1`` and the ``--env`` overrides, warmed by one page
load.  Then N simulated visitors arrive evenly over ``--ramp`` s; each opens the Playground,
presses Train once the page has loaded, moves the learning rate one stop up halfway through
its stay, and leaves ``--seconds`` s after it arrived.  Scenario ``default``: every visitor
on the default settings with the report's 2-25-25-25-2 (``hidden=25,25,25``: the
Playground itself opens on a smaller network); ``mixed``: visitor i on preset i mod 5 of ``PRESETS``.  Every
preset asks for 10,000 epochs, a budget no visitor uses up.

A visitor is no browser but speaks the browser's protocol (``Visitor``): Streamlit's
websocket, ``/_stcore/stream``, with ``BackMsg`` / ``ForwardMsg`` protobufs.  On a real demo
the browsers run on the visitors' machines; here only the server's side of the work is done.
So "page load" is the server's part of it: no HTML or JavaScript is fetched.  All visitors
share one asyncio loop and the ``websockets`` client that Streamlit's server itself depends
on (no load tool: locust would need gevent and a websocket plugin for the same), and parse
only the messages' types, the widgets, the Epoch metric and the boundary chart's alt text.

Per visitor, from what the server sends: epochs/s (the "Epoch" metric's ``e / budget`` at
leaving, over the time since Train), redraws/s (replacements of the boundary chart, over
the same time), page load (connect → the end of the page's first run).  Per row: the
server's CPU (the cores its process tree used on average while visitors were there: utime
and stime from /proc, its exited children included) and memory (peak PSS of that tree,
sampled every ``--sample`` s), and this script's own CPU.

Targets (issue 21) for default visitors on a 2-core machine: up to 25 visitors, every one
≥ 2 epochs/s and ≥ 2 redraws/s, page load p95 ≤ 3 s, server < 1.5 GB (1,536 MB); at 50, every
visitor still trains (≥ 1 epoch/s).  Exits 1 when one is missed, unless ``--report-only``.
``--quick``: 2 default visitors for 15 s (or ``--seconds``).  ``--json FILE``: every row and visitor as JSON.
Usage: python benchmarks/classroom.py [--visitors 1,10,25,50] [--seconds 60]
       [--scenario default,mixed] [--env MINIDL_TRAINING_SESSIONS=50] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import parse_qsl

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `python benchmarks/<name>.py` puts benchmarks/, not ROOT, on sys.path

from live_update import free_port, streamlit_server  # noqa: E402
from server_memory import pss_mb, tree  # noqa: E402

from minidl import hparams  # noqa: E402
from ui import playground  # noqa: E402

# the report's 2-25-25-25-2, named: the Playground now opens on a smaller network, and these
# figures have always measured the report's (README: capacity per replica)
BUDGET = "hidden=25,25,25&epochs=10000"
PRESETS = {  # the Playground's URL query of each (ui/playground.py: settings ↔ URL)
    "default": BUDGET,
    "spiral with features": f"dataset=spiral&features=x1,x2,x1sq,x2sq,sinx1,sinx2&{BUDGET}",
    "8-8 ReLU": "hidden=8,8&activation=relu&epochs=10000",
    "batch 20 Adam": f"optimizer=adam&batch_size=20&{BUDGET}",
    "XOR": f"dataset=xor&{BUDGET}",
}
TRAIN, LR = "pg_train", "pg_lr"  # widget keys (pages/playground.py)
BOUNDARY = playground.BOUNDARY_ALT  # how a visitor tells the boundary chart from the others
ALL_TRAIN, ALL_REDRAW, LOAD_P95, MEMORY_MB, ALL_TRAIN_50 = 2.0, 2.0, 3.0, 1536, 1.0


@dataclass
class Visitor:
    """One simulated visitor: what it does, what it saw.

    The browser's side of the protocol, as Streamlit 1.67's frontend speaks it:

    - it connects with the subprotocol ``streamlit`` (the same header may carry an XSRF
      token and a reconnecting session's id; a new visitor needs neither);
    - a run of the page is a ``rerun_script`` BackMsg: the URL's query string, the page
      (none on the first run: the default page, the Playground; then the hash that the
      server's ``new_session`` names) and the state of every widget drawn so far, as the
      browser keeps it (``browser_state``; a fragment's run needs the others' too: without
      them the server forgets their values);
    - a button press adds ``trigger_value`` for the button's id; the learning rate, a
      select slider, holds its option's text (``string_array_value``); ids are the
      widgets' in the deltas, which end in their keys;
    - ``auto_rerun`` (a fragment's ``run_every``): rerun that fragment (``fragment_id``,
      ``is_auto_rerun``) every ``interval`` s, whether or not its last run has ended, until
      ``stop_auto_rerun`` names it or a run of the whole page begins (a ``new_session``
      without fragment ids);
    - the URL follows ``page_info_changed``; the next run of the page sends it back.

    It keeps no ForwardMsg cache: the browser lists the hashes of the large messages it
    holds (``cached_message_hashes``) and gets a ``ref_hash`` for a repeat; a visitor lists
    none, so it gets every message whole.  Nothing else needs an answer.
    """

    name: str                        # its preset
    query: str                       # its URL's query string
    loaded: float = math.inf         # connect → end of the page's first run, s
    trained: float = 0.0             # s from pressing Train to leaving
    first_epoch: float | None = None  # s from pressing Train to epoch 1 shown
    epoch: int = 0                   # the last epoch shown
    redraws: int = 0                 # boundary charts received since Train
    lr: str | None = None            # the learning rate it chose (its URL text)
    lr_in_url: bool = False          # the server's URL shows it: the change reached the page
    epoch_at_lr: int | None = None   # the epoch shown when it changed it
    restarted: bool = False          # the epoch went down: the run was replaced
    error: str | None = None
    # the protocol's state
    _page: str = ""
    _widgets: dict = field(default_factory=dict, repr=False)  # key -> widget proto
    _states: dict = field(default_factory=dict, repr=False)   # widget id -> WidgetState
    _timers: dict = field(default_factory=dict, repr=False)   # fragment id -> (task, interval)
    _ready: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _pressed: float | None = None

    def result(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name[0] != "_"}
        out["epochs_per_s"] = self.epoch / self.trained if self.trained else 0.0
        out["redraws_per_s"] = self.redraws / self.trained if self.trained else 0.0
        return out

    async def visit(self, url: str, seconds: float) -> None:
        """Open the page, press Train, change the learning rate halfway, leave after
        ``seconds`` s."""
        began = time.monotonic()
        async with connect(url, subprotocols=["streamlit"], max_size=None,
                           open_timeout=seconds, ping_interval=None) as ws:
            listening = asyncio.create_task(self.listen(ws, began))
            try:
                await self.open(ws, seconds)
                self._pressed = time.monotonic()
                await self.send(ws, pressed=self._widgets[TRAIN].id)
                await asyncio.sleep(began + seconds / 2 - time.monotonic())
                await self.change_lr(ws)
                await asyncio.sleep(began + seconds - time.monotonic())
                self.trained = time.monotonic() - self._pressed
            except (TimeoutError, KeyError) as error:  # not loaded in time, no Train button
                self.error = f"{type(error).__name__}: {error}"
            finally:
                for task, _ in self._timers.values():
                    task.cancel()
                listening.cancel()

    async def open(self, ws: ClientConnection, timeout: float) -> None:
        """Ask for the page's first run and wait for its end (its ``script_finished``)."""
        await self.send(ws)
        await asyncio.wait_for(self._ready.wait(), timeout)

    async def send(self, ws: ClientConnection, pressed: str = "", fragment: str = "") -> None:
        """Ask for a run of the page (of ``fragment`` only, if given) with every widget's
        state, as the browser does; ``pressed``: the id of a button pressed."""
        msg = BackMsg()
        run = msg.rerun_script
        run.query_string, run.page_script_hash = self.query, self._page
        run.fragment_id, run.is_auto_rerun = fragment, bool(fragment)
        run.widget_states.widgets.extend(self._states.values())
        if pressed:
            run.widget_states.widgets.add(id=pressed, trigger_value=True)
        await ws.send(msg.SerializeToString())

    async def change_lr(self, ws: ClientConnection) -> None:
        """Move the learning rate's select slider one stop up (down from the last)."""
        slider = self._widgets[LR]
        index = list(slider.options).index(self._states[slider.id].string_array_value.data[0])
        index += 1 if index + 1 < len(slider.options) else -1
        self.lr, self.epoch_at_lr = slider.options[index], self.epoch
        self._states[slider.id].string_array_value.data[:] = [self.lr]
        await self.send(ws)

    async def listen(self, ws: ClientConnection, began: float) -> None:
        async for raw in ws:
            self.receive(ws, ForwardMsg.FromString(raw), began)

    def receive(self, ws: ClientConnection, msg: ForwardMsg, began: float) -> None:
        """Take in one message from the server (``began``: when the visitor connected)."""
        kind = msg.WhichOneof("type")
        if kind == "delta":
            self.on_delta(msg.delta)
        elif kind == "script_finished" and not self._ready.is_set():
            self.loaded = time.monotonic() - began
            self._ready.set()
        elif kind == "new_session":
            self._page = msg.new_session.page_script_hash
            if not msg.metadata.run.fragment_ids:
                for task, _ in self._timers.values():
                    task.cancel()
                self._timers.clear()
        elif kind == "auto_rerun":
            self.rerun_every(ws, msg.auto_rerun.fragment_id, msg.auto_rerun.interval)
        elif kind == "stop_auto_rerun":
            for fragment in msg.stop_auto_rerun.fragment_ids:
                if fragment in self._timers:
                    self._timers.pop(fragment)[0].cancel()
        elif kind == "page_info_changed":
            self.query = msg.page_info_changed.query_string
            if self.lr is not None:
                shown = dict(parse_qsl(self.query)).get("lr", DEFAULT_LR)
                self.lr_in_url = shown == self.lr

    def on_delta(self, delta) -> None:
        if delta.WhichOneof("type") != "new_element":
            return
        element = delta.new_element
        kind = element.WhichOneof("type")
        if kind == "metric" and element.metric.label == "Epoch":
            epoch = int(element.metric.body.split("/")[0])
            self.restarted |= epoch < self.epoch
            self.epoch = epoch
            if epoch and self.first_epoch is None and self._pressed is not None:
                self.first_epoch = time.monotonic() - self._pressed
        elif kind == "vega_lite_chart":
            if element.vega_lite_chart.alt == BOUNDARY and self._pressed is not None:
                self.redraws += 1
        elif kind in WIDGETS:
            widget = getattr(element, kind)
            # as the browser: a widget's first drawing gives its state, later ones only
            # when the server sets its value (else they carry the widget's default)
            if widget.id not in self._states or getattr(widget, "set_value", False):
                state = browser_state(kind, widget)
                if state is not None:
                    self._states[widget.id] = state
            key = widget.id.rsplit("-", 1)[-1]
            if key in (TRAIN, LR):
                self._widgets[key] = widget

    def rerun_every(self, ws: ClientConnection, fragment: str, interval: float) -> None:
        if fragment in self._timers and self._timers[fragment][1] == interval:
            return  # as the browser: a timer already set keeps its phase

        async def tick() -> None:
            while True:
                await asyncio.sleep(interval)
                await self.send(ws, fragment=fragment)

        if fragment in self._timers:
            self._timers[fragment][0].cancel()
        self._timers[fragment] = (asyncio.create_task(tick()), interval)


WIDGETS = ("button", "checkbox", "number_input", "selectbox", "radio", "multiselect", "slider")


def browser_state(kind: str, widget) -> WidgetState | None:
    """The state the browser takes for a widget the server drew: the value the server set,
    else the widget's default (widgets of ``WIDGETS`` kinds; None for a button, whose state
    is sent only when pressed)."""
    state = WidgetState(id=widget.id)
    if kind == "checkbox":
        state.bool_value = widget.value if widget.set_value else widget.default
    elif kind == "number_input":
        state.double_value = widget.value if widget.HasField("value") else widget.default
    elif kind in ("selectbox", "radio"):
        state.string_value = widget.raw_value or widget.options[widget.default]
    elif kind == "multiselect":
        state.string_array_value.data.extend(widget.raw_values)
    elif kind == "slider" and widget.type == widget.SELECT_SLIDER:
        state.string_array_value.data.extend(
            widget.raw_value or [widget.options[int(i)] for i in widget.default])
    elif kind == "slider":
        state.double_array_value.data.extend(widget.value or widget.default)
    else:
        return None
    return state


DEFAULT_LR = hparams.format_value(hparams.TABLE["lr"].default)


def cpu_seconds(root: int) -> float:
    """CPU time of ``root``'s process tree, s: each one's own and its exited children's."""
    ticks = 0
    for pid in tree(root):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


async def classroom(url: str, server: int, presets: list[str], seconds: float, ramp: float,
                    sample: float) -> dict:
    """Run one classroom against the server at ``url`` (process ``server``)."""
    stream = url.replace("http", "ws", 1) + "/_stcore/stream"
    visitors = [Visitor(name, PRESETS[name]) for name in presets]
    peak = 0.0

    async def sampling() -> None:
        nonlocal peak
        while True:
            peak = max(peak, await asyncio.to_thread(pss_mb, server))
            await asyncio.sleep(sample)

    async def arrive(i: int, visitor: Visitor) -> None:
        await asyncio.sleep(i * ramp / len(visitors))
        try:
            await visitor.visit(stream, seconds)
        except (OSError, WebSocketException) as error:  # refused, reset, closed
            visitor.error = f"{type(error).__name__}: {error}"

    load = os.getloadavg()[0]
    cpu, mine, began = cpu_seconds(server), time.process_time(), time.monotonic()
    sampler = asyncio.create_task(sampling())
    await asyncio.gather(*(arrive(i, v) for i, v in enumerate(visitors)))
    wall = time.monotonic() - began
    server_cores = (cpu_seconds(server) - cpu) / wall
    client_cores = (time.process_time() - mine) / wall
    sampler.cancel()
    return {"visitors": [v.result() for v in visitors], "server_cores": server_cores,
            "pss_mb": max(peak, pss_mb(server)), "client_cores": client_cores,
            "load_average": (load, os.getloadavg()[0])}


async def warm_up(url: str) -> None:
    """One page load, so that the visitors meet a server whose imports are done."""
    visitor = Visitor("warm-up", BUDGET)
    async with connect(url.replace("http", "ws", 1) + "/_stcore/stream",
                       subprotocols=["streamlit"], max_size=None) as ws:
        listening = asyncio.create_task(visitor.listen(ws, time.monotonic()))
        await visitor.open(ws, 120)
        listening.cancel()


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q`` percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def summary(n: int, scenario: str, row: dict) -> dict:
    seen = row["visitors"]
    epochs = [v["epochs_per_s"] for v in seen]
    redraws = [v["redraws_per_s"] for v in seen]
    load = percentile([v["loaded"] for v in seen], 0.95)
    missed = []
    if scenario == "default" and n <= 25:
        missed += [text for text, ok in (
            (f"epochs/s < {ALL_TRAIN:g}", min(epochs) >= ALL_TRAIN),
            (f"redraws/s < {ALL_REDRAW:g}", min(redraws) >= ALL_REDRAW),
            (f"load p95 > {LOAD_P95:g} s", load <= LOAD_P95),
            (f"PSS ≥ {MEMORY_MB} MB", row["pss_mb"] < MEMORY_MB)) if not ok]
    elif scenario == "default":
        missed += [f"epochs/s < {ALL_TRAIN_50:g}"] * (min(epochs) < ALL_TRAIN_50)
    targets = "—" if scenario != "default" else ("met" if not missed else
                                                 "missed: " + ", ".join(missed))
    return {"n": n, "scenario": scenario, "epochs_median": statistics.median(epochs),
            "epochs_worst": min(epochs), "redraws_median": statistics.median(redraws),
            "redraws_worst": min(redraws), "load_p95": load, "targets": targets,
            "met": not missed, **row}


HEADER = (f"{'N':>3}  {'scenario':<8}  {'epochs/s med':>12} {'worst':>6}  "
          f"{'redraws/s med':>13} {'worst':>6}  {'load p95 s':>10}  {'server CPU':>10}  "
          f"{'PSS MB':>7}  targets")


def line(s: dict) -> str:
    load = f"{s['load_p95']:.2f}" if math.isfinite(s["load_p95"]) else "never"
    return (f"{s['n']:>3}  {s['scenario']:<8}  {s['epochs_median']:>12.2f} "
            f"{s['epochs_worst']:>6.2f}  {s['redraws_median']:>13.2f} {s['redraws_worst']:>6.2f}  "
            f"{load:>10}  {s['server_cores']:>10.2f}  {s['pss_mb']:>7.0f}  {s['targets']}")


def notes(s: dict) -> str:
    seen = s["visitors"]
    firsts = [v["first_epoch"] for v in seen if v["first_epoch"] is not None]
    lr = sum(v["lr_in_url"] for v in seen)
    on = sum(v["epoch_at_lr"] is not None and v["epoch"] > v["epoch_at_lr"]
             and not v["restarted"] for v in seen)
    errors = sorted({v["error"] for v in seen if v["error"]})
    return (f"     {len(firsts)}/{len(seen)} trained (Train → epoch 1 slowest "
            f"{max(firsts) if firsts else math.nan:.1f} s); learning rate in the URL "
            f"{lr}/{len(seen)}, run went on after it {on}/{len(seen)}; this script "
            f"{s['client_cores']:.2f} cores; 1-min load average {s['load_average'][0]:.1f} "
            f"before, {s['load_average'][1]:.1f} after" + (f"; errors: {'; '.join(errors)}" if errors
                                                else ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", default="1,10,25,50", help="numbers of visitors, e.g. 1,10")
    parser.add_argument("--seconds", type=float, help="each visitor's stay (60; --quick: 15)")
    parser.add_argument("--ramp", type=float, default=10.0,
                        help="the visitors arrive evenly over this many seconds")
    parser.add_argument("--scenario", default="default,mixed", help="default, mixed or both")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="an environment variable for the server, e.g. "
                        "MINIDL_TRAINING_SESSIONS=50 (repeatable)")
    parser.add_argument("--sample", type=float, default=2.0,
                        help="seconds between samples of the server's memory")
    parser.add_argument("--quick", action="store_true", help="2 default visitors")
    parser.add_argument("--json", type=Path, help="write every row and visitor here")
    parser.add_argument("--report-only", action="store_true",
                        help="exit 0 even when a target is missed")
    args = parser.parse_args()
    if args.quick:
        args.visitors, args.ramp, args.scenario = "2", 1.0, "default"
    args.seconds = args.seconds or (15.0 if args.quick else 60.0)
    counts = [int(n) for n in args.visitors.split(",")]
    scenarios = args.scenario.split(",")
    if not set(scenarios) <= {"default", "mixed"}:
        parser.error("--scenario: default and/or mixed")
    os.environ.update({"MINIDL_PUBLIC": "1", **dict(e.split("=", 1) for e in args.env)})

    print(f"{os.cpu_count()} CPUs; server env MINIDL_PUBLIC=1 {' '.join(args.env)}; each "
          f"visitor stays {args.seconds:g} s, arrivals over {args.ramp:g} s")
    print(HEADER)
    rows = []
    for n in counts:
        for scenario in scenarios:
            names = list(PRESETS)
            presets = ["default"] * n if scenario == "default" else [
                names[i % len(names)] for i in range(n)]
            started: list = []
            with streamlit_server(free_port(), started) as url:
                server = started[0].pid
                try:
                    asyncio.run(warm_up(url))
                    row = asyncio.run(classroom(url, server, presets, args.seconds,
                                                args.ramp if n > 1 else 0.0, args.sample))
                finally:
                    leftovers = tree(server)[1:]
            end_all(leftovers)
            rows.append(summary(n, scenario, row))
            print(line(rows[-1]))
            print(notes(rows[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0 if args.report_only or all(r["met"] for r in rows) else 1


def end_all(pids: list[int]) -> None:
    """Kill the server's children that outlived it (its training processes)."""
    for pid in pids:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass


if __name__ == "__main__":
    sys.exit(main())
