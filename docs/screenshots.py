#!/usr/bin/env python3
"""Regenerate the viewer's pictures in docs/ from the scenarios' counterexamples.

    python3 docs/screenshots.py          # every picture
    python3 docs/screenshots.py deadlock # only the ones named

Each picture is a page written by ``racecheck view``, opened from disk in
Debian's headless Chromium (``/usr/bin/chromium``, driven by Playwright; it
never downloads a browser) and driven as tests/test_viewer.py drives it:

* viewer.png: fault_vs_truncate at its violating step, 1500 x 1000;
* viewer-other-order.png: the same, with the racing pair's other order
  beside, the panel at that run's last step;
* viewer-watch.png: fault_vs_truncate's steps that touch ``pte.shared[1]``,
  and its value after each;
* viewer-deadlock.png: ext4_dax_fault_deadlock at its last step, the
  wait-for graph in view;
* viewer-900.png: the same three-thread trace in a window 900 pixels wide.
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from racecheck import runner, trace, viewer  # noqa: E402
from racecheck.scenario import load  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def page_of(scenario, where):
    """The viewer page of ``scenario``'s counterexample, written in ``where``."""
    path = Path(where) / (scenario + ".json")
    report = runner.check(load(ROOT / "scenarios" / (scenario + ".yaml")), trace_out=path)
    if report.verdict != "violation":
        raise SystemExit(f"screenshots: {scenario} is {report.verdict}, not a violation")
    return viewer.write(trace.load(path), path.with_suffix(".html"))


def at_the_end(page):
    page.keyboard.press("End")


def other_order(page):
    page.keyboard.press("End")
    page.click("#other-toggle")
    page.locator("#other-order .step").last.click()


def watch(page):
    page.fill("#watch", "pte.shared[1]")
    page.keyboard.press("Tab")


def wait_graph(page):
    page.keyboard.press("End")
    page.locator("#wait-for").scroll_into_view_if_needed()


# name: (scenario, width, height, what to do on the page)
PICTURES = {
    "viewer": ("fault_vs_truncate", 1500, 1000, at_the_end),
    "viewer-other-order": ("fault_vs_truncate", 1500, 1000, other_order),
    "viewer-watch": ("fault_vs_truncate", 1500, 1000, watch),
    "viewer-deadlock": ("ext4_dax_fault_deadlock", 1500, 1000, wait_graph),
    "viewer-900": ("ext4_dax_fault_deadlock", 900, 900, at_the_end),
}


def shoot(names, out_dir=ROOT / "docs"):
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="racecheck-screenshots.") as tmp, sync_playwright() as p:
        pages = {}
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for name in names:
                scenario, width, height, act = PICTURES[name]
                if scenario not in pages:
                    pages[scenario] = page_of(scenario, tmp)
                page = browser.new_page(viewport={"width": width, "height": height})
                page.goto(pages[scenario].as_uri())
                page.wait_for_selector("#lanes .step")
                act(page)
                out = Path(out_dir) / (name + ".png")
                page.screenshot(path=str(out))
                page.close()
                print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
        finally:
            browser.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", metavar="NAME",
                    help=f"pictures to make ({', '.join(PICTURES)}); default all")
    opts = ap.parse_args(argv)
    unknown = [n for n in opts.names if n not in PICTURES]
    if unknown:
        ap.error(f"no picture named {', '.join(unknown)} (pictures: {', '.join(PICTURES)})")
    if not os.path.exists(CHROMIUM):
        raise SystemExit(f"screenshots: {CHROMIUM} is missing (apt-get install chromium)")
    shoot(opts.names or list(PICTURES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
