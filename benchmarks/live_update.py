"""Measure the Playground's live training in headless Chromium against the bare library.

1. Starts ``streamlit run streamlit_app.py`` on a free port and opens the
   Playground (default settings with the report's 2-25-25-25-2 unless ``--query`` says
   otherwise) in Debian's
   Chromium, with ``CanvasRenderingContext2D.drawImage`` wrapped so that every
   *new* boundary image Vega paints is timestamped.
2. Presses Train, waits ``--warmup`` s, then for ``--seconds`` s counts
   boundary repaints and reads the epoch counter at both ends.
3. Times ``Run.train_epoch`` for the same settings in this process (one torch
   thread, as the app), right before and right after the browser window.

Prints boundary updates per second and app epochs/s as a fraction of the bare
library's (a ``Run`` as the app makes it, layer health records included; the
same without them is printed too).  The page draws the network diagram and the
health panel beside the boundary.  Targets (issue 10): ≥ 5 updates/s and ≥ 80 %.
Exits 1 when a target is missed, unless ``--report-only``.
Usage: python benchmarks/live_update.py [--seconds 10] [--query "optimizer=adam&lr=0.003"]
       [--bare-seconds 3] [--report-only]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import parse_qsl

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `python benchmarks/<name>.py` puts benchmarks/, not ROOT, on sys.path

from minidl import Run  # noqa: E402
from ui import playground  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"

# Wraps drawImage: a boundary repaint is a draw of a PNG data URL not drawn last time.
COUNT_REPAINTS = """
window.__repaints = [];
const draw = CanvasRenderingContext2D.prototype.drawImage;
let last = null;
CanvasRenderingContext2D.prototype.drawImage = function (image, ...rest) {
  const src = image && image.src;
  if (src && src.startsWith('data:image/png') && image.naturalWidth >= 100 && src !== last) {
    last = src;
    window.__repaints.push(performance.now());
  }
  return draw.call(this, image, ...rest);
};
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(port: int, started: list | None = None):
    """A server on ``port`` (its URL); ``started`` gets the server's process."""
    command = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py",
               "--server.headless", "true", "--server.port", str(port),
               "--browser.gatherUsageStats", "false"]
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    if started is not None:
        started.append(server)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("streamlit server did not start") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


def epoch_of(page) -> int:
    text = page.locator("[data-testid='stMetric']").filter(has_text="Epoch").inner_text()
    return int(re.search(r"(\d+)\s*/", text).group(1))


def bare_epochs_per_second(query: str, seconds: float, health: bool = True) -> float:
    settings, warnings = playground.parse_query(dict(parse_qsl(query)))
    if warnings:
        raise SystemExit("bad --query: " + " ".join(warnings))
    run = Run(playground.to_config(settings), track_health=health)
    run.train_epoch()  # warm-up
    start, epochs = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        run.train_epoch()
        epochs += 1
    return epochs / (time.perf_counter() - start)


def measure_app(base_url: str, query: str, warmup: float, seconds: float) -> tuple[float, float]:
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.add_init_script(COUNT_REPAINTS)
        page.goto(f"{base_url}/?{query}" if query else base_url)
        page.wait_for_selector(IDLE, timeout=60_000)
        page.get_by_role("button", name="Train", exact=True).click()
        page.get_by_role("button", name="Pause").wait_for(timeout=30_000)
        deadline = time.monotonic() + 60  # its training process starts: seconds on a busy machine
        while epoch_of(page) < 1:
            if time.monotonic() > deadline:
                raise SystemExit("training did not start within 60 s")
            time.sleep(0.1)
        time.sleep(warmup)
        e0, t0 = epoch_of(page), page.evaluate("performance.now()")
        time.sleep(seconds)
        e1, t1 = epoch_of(page), page.evaluate("performance.now()")
        repaints = page.evaluate(f"window.__repaints.filter(t => t >= {t0} && t <= {t1}).length")
        running = page.get_by_role("button", name="Pause").count() == 1
        browser.close()
    if not running:
        raise SystemExit("training stopped inside the window (budget or divergence)")
    elapsed = (t1 - t0) / 1000
    return repaints / elapsed, (e1 - e0) / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring window")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--query", default="", help="Playground URL query, e.g. 'lr=0.02'")
    parser.add_argument("--bare-seconds", type=float, default=3.0,
                        help="timing window of the bare library, before and after the browser's")
    parser.add_argument("--report-only", action="store_true",
                        help="exit 0 even when a target is missed (a quick check that it runs)")
    args = parser.parse_args()
    if "epochs=" not in args.query:  # a budget that outlasts the measurement
        args.query = "&".join(filter(None, [args.query, "epochs=10000"]))
    if "hidden=" not in args.query:  # the report's network, as measured before the
        args.query += "&hidden=25,25,25"  # Playground opened on a smaller one
    if not os.path.exists(CHROMIUM):
        raise SystemExit(f"{CHROMIUM} not found: apt-get install chromium")
    torch.set_num_threads(1)
    load_before = os.getloadavg()[0]

    bare_before = bare_epochs_per_second(args.query, args.bare_seconds)
    with streamlit_server(free_port()) as url:
        updates, app_rate = measure_app(url, args.query, args.warmup, args.seconds)
    bare_after = bare_epochs_per_second(args.query, args.bare_seconds)
    bare = (bare_before + bare_after) / 2
    no_health = bare_epochs_per_second(args.query, args.bare_seconds, health=False)

    print(f"settings: {args.query or 'defaults'}; {os.cpu_count()} CPUs, 1-min load average "
          f"{load_before:.1f} before and {os.getloadavg()[0]:.1f} after (other processes "
          "slow both sides)")
    print(f"boundary updates in the browser: {updates:.1f} per second (target >= 5)")
    print(f"app training: {app_rate:.2f} epochs/s; bare library: {bare:.2f} epochs/s "
          f"(before {bare_before:.2f}, after {bare_after:.2f}); without layer health "
          f"records {no_health:.2f}")
    print(f"app / bare: {100 * app_rate / bare:.0f} % (target >= 80 %); "
          f"against the bare library without health records: {100 * app_rate / no_health:.0f} %")
    return 0 if args.report_only or (updates >= 5 and app_rate >= 0.8 * bare) else 1


if __name__ == "__main__":
    sys.exit(main())
