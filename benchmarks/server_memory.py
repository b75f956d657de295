"""Measure a public server's memory under heavy visitors: the figure the README's Deploy
section quotes (issue 24, finding 14).

1. Starts ``streamlit run streamlit_app.py`` with ``MINIDL_PUBLIC=1`` (its defaults: every
   visitor trains, in the server's one training service).
2. Opens ``--visitors`` Playground tabs in headless Chromium, each at the heaviest settings
   the public app offers (5,000 + 5,000 points, six layers of 64 units, every input
   feature, batch 1), and one Compare tab racing the report's nine pairs; presses Train in
   every tab.
3. Once the first tab has trained an epoch, for ``--seconds`` s samples the proportional set
   size (PSS) of the server's process tree — the server, its fork server and training
   processes — and times the health check.
4. Closes every tab, waits ``--settle`` s and samples again.

Prints the peak and settled PSS in MB and the slowest health check.  The browser's own
memory is not counted: on a real demo it runs on the visitors' machines.
Usage: python benchmarks/server_memory.py [--visitors 5] [--seconds 30] [--settle 15]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from live_update import CHROMIUM, CHROMIUM_ARGS, IDLE, free_port, streamlit_server  # noqa: E402

HEAVY = ("n_train=5000&n_test=5000&hidden=64,64,64,64,64,64&batch_size=1&epochs=10000"
         "&features=x1,x2,x1sq,x2sq,x1x2,sinx1,sinx2")


def tree(root: int) -> list[int]:
    """``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def pss_mb(root: int) -> float:
    """PSS of ``root``'s process tree, in MB."""
    total = 0
    for pid in tree(root):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                total += sum(int(line.split()[1]) for line in f if line.startswith("Pss:"))
        except OSError:
            continue
    return total / 1024


def health_seconds(url: str) -> float:
    began = time.perf_counter()
    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=60):
        pass
    return time.perf_counter() - began


def trained(page, timeout: float) -> None:
    """Wait until the Playground in ``page`` shows epoch 1 or later."""
    value = page.locator("[data-testid='stMetric']").filter(
        has=page.get_by_text("Epoch", exact=True)).locator("[data-testid='stMetricValue']").first
    deadline = time.monotonic() + timeout
    while int(value.inner_text().split("/")[0]) < 1:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no epoch trained in {timeout:g} s")
        time.sleep(0.5)


def measure(visitors: int, seconds: float, settle: float) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    os.environ["MINIDL_PUBLIC"] = "1"
    started: list = []
    with streamlit_server(free_port(), started) as url:
        server = started[0].pid
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            pages = []
            for path in [f"/?{HEAVY}"] * visitors + ["/compare"]:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(url + path)
                page.wait_for_selector(IDLE, timeout=120_000)
                page.get_by_role("button", name="Train", exact=True).first.click()
                pages.append(page)
            # sampled from when the first tab's training process has trained an epoch, not
            # from a time: on a busy machine the processes take longer to be at full size
            trained(pages[0], timeout=600)
            peak, slowest, end = 0.0, 0.0, time.monotonic() + seconds
            while time.monotonic() < end:
                peak = max(peak, pss_mb(server))
                slowest = max(slowest, health_seconds(url))
                time.sleep(0.5)
            for page in pages:
                page.close()
            browser.close()
        time.sleep(settle)
        settled = pss_mb(server)
    return {"peak": peak, "settled": settled, "health": slowest}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--settle", type=float, default=15.0)
    args = parser.parse_args()
    m = measure(args.visitors, args.seconds, args.settle)
    print(f"public server, {args.visitors} heavy Playground tabs + a nine-pair race, "
          f"{args.seconds:g} s: peak {m['peak']:.0f} MB PSS (server + fork server + "
          f"training processes), {m['settled']:.0f} MB {args.settle:g} s after every tab "
          f"closed; slowest health check {m['health']:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
