"""`racecheck view`: the self-contained HTML page, and the page itself in a
real browser (headless Chromium driven by Playwright, opened from disk).

The browser test needs Debian's ``chromium`` (``.ci/run`` installs it) and the
``playwright`` package of the ``test`` extra; it never downloads a browser.
Without them it is skipped, unless ``RACECHECK_REQUIRE_BROWSER=1`` (as in CI),
where it fails. ``RACECHECK_UPDATE_SCREENSHOT=1`` also copies its screenshot
to docs/viewer.png, the picture in the README.
"""

import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from racecheck import runner, viewer
from racecheck.cli import main
from racecheck.scenario import load

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "fault_vs_truncate.yaml"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def page_file(tmp_path_factory):
    """fault_vs_truncate's counterexample and its viewer page, made through
    the command line: (page path, trace document)."""
    where = tmp_path_factory.mktemp("viewer")
    trace = where / "fault_vs_truncate.json"
    rep = runner.check(load(SCENARIO), trace_out=trace)
    assert rep.verdict == "violation"
    out = CliRunner().invoke(main, ["view", str(trace), "-o", str(where / "fault_vs_truncate.html")])
    assert out.exit_code == 0, out.output
    assert "file://" in out.output
    return where / "fault_vs_truncate.html", json.loads(trace.read_text())


def test_page_is_self_contained(page_file):
    path, doc = page_file
    html = path.read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert "<link" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//)""", html, re.I)
    assert not re.search(r"@import|url\(\s*['\"]?(https?:|//)", html, re.I)
    assert "<script src" not in html
    assert "default-src 'none'" in html  # the page may fetch nothing at all
    assert doc["message"].split(",")[0] in html


def test_default_output_is_beside_the_trace(tmp_path, page_file):
    _, doc = page_file
    trace = tmp_path / "t.json"
    trace.write_text(json.dumps(doc))
    out = CliRunner().invoke(main, ["view", str(trace)])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "t.html").exists()


def test_script_cannot_be_closed_by_trace_text(page_file):
    _, doc = page_file
    doc = json.loads(json.dumps(doc))
    doc["message"] = "</script><script>alert(1)</script> & <!--"
    html = viewer.render(doc)
    body = html.split('id="trace-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in body and ">" not in body
    assert json.loads(body)["doc"]["message"] == doc["message"]


def test_old_trace_without_initial_state_is_refused(tmp_path, page_file):
    _, doc = page_file
    old = {k: v for k, v in doc.items() if k not in ("initial", "objects")}
    p = tmp_path / "old.json"
    p.write_text(json.dumps(old))
    out = CliRunner().invoke(main, ["view", str(p)])
    assert out.exit_code == 2
    assert "run the scenario again" in out.output
    assert not (tmp_path / "old.html").exists()


def test_not_a_trace_is_refused(tmp_path):
    p = tmp_path / "x.json"
    p.write_text("{}")
    out = CliRunner().invoke(main, ["view", str(p)])
    assert out.exit_code == 2 and "not a racecheck trace" in out.output


# -- in a browser ---------------------------------------------------------------------


def _browser_or_skip():
    required = os.environ.get("RACECHECK_REQUIRE_BROWSER") == "1"
    why = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        why, sync_playwright = "the playwright package is not installed (pip install -e '.[test]')", None
    if why is None and not os.path.exists(CHROMIUM):
        why = f"{CHROMIUM} is missing (apt-get install chromium chromium-driver)"
    if why:
        if required:
            pytest.fail(why)
        pytest.skip(why)
    return sync_playwright


def test_viewer_in_headless_chromium(page_file, tmp_path):
    sync_playwright = _browser_or_skip()
    path, doc = page_file
    steps = doc["steps"]
    n = len(steps)
    last = steps[-1]
    pte_name, _, (kind, block) = next(c for c in last["changes"] if c[0].startswith("pte."))
    assert kind == "block"
    page_no = re.search(r"\[(\d+)\]$", pte_name).group(1)
    errors, requests = [], []
    started = time.monotonic()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
            page.on("console", lambda msg: errors.append(f"console {msg.type}: {msg.text}")
                    if msg.type in ("error", "warning") else None)
            page.on("request", lambda req: requests.append(req.url))
            page.goto(path.resolve().as_uri())
            page.wait_for_selector(".step")

            # One swimlane per thread, one box per step, in schedule order.
            assert page.locator("#lanes .lane-head").count() == len(doc["threads"])
            assert page.locator("#lanes .lane-head").all_inner_texts()[0].startswith(doc["threads"][0])
            boxes = page.locator("#lanes .step")
            assert boxes.count() == n
            assert [int(x) for x in boxes.evaluate_all("bs => bs.map(b => b.dataset.step)")] == list(range(1, n + 1))
            assert boxes.evaluate_all("bs => bs.map(b => b.dataset.thread)") == [s["thread"] for s in steps]
            assert page.get_attribute("body", "data-cursor") == "0"

            # The racing pair and the happens-before edges are drawn.
            i, j = doc["race"]
            assert page.locator("#lanes .step.race").evaluate_all("bs => bs.map(b => +b.dataset.step)") == [i, j]
            paths = page.locator("svg.edges path[data-from]")
            assert paths.count() == len(doc["happens_before"])
            race_edge = page.locator(f'svg.edges path.race-edge[data-from="{i}"][data-to="{j}"]')
            assert race_edge.count() == 1
            assert "Racing pair: steps" in page.inner_text("#race")

            # Arrow keys move the cursor to the violating step.
            for _ in range(n):
                page.keyboard.press("ArrowDown")
            assert page.get_attribute("body", "data-cursor") == str(n)
            assert page.get_attribute("#lanes .step.cursor", "data-step") == str(n)
            page.keyboard.press("ArrowDown")  # no step past the last
            assert page.get_attribute("body", "data-cursor") == str(n)
            ptes = page.inner_text("#page-tables")
            assert f"page {page_no} \u2192 device block {block}" in ptes
            assert "freed block still mapped" in ptes
            bad = page.locator("#page-tables .pte.bad")
            assert bad.count() == 1 and "changed" in bad.get_attribute("class")
            assert "another file's" in page.inner_text(f'#device [data-device-block="{block}"]')
            assert "The invariant breaks here" in page.inner_text("#breaks")
            assert doc["message"][:40] in page.inner_text("#breaks")
            shot = tmp_path / "viewer.png"
            page.screenshot(path=str(shot))
            assert shot.stat().st_size > 10_000

            # One step back the page is not mapped yet; a click moves the cursor too.
            page.keyboard.press("ArrowUp")
            assert "freed block still mapped" not in page.inner_text("#page-tables")
            size_step = next(s["step"] for s in steps if any(c[0] == "i_size" for c in s["changes"]))
            page.click(f'.step[data-step="{size_step}"]')
            assert page.get_attribute("body", "data-cursor") == str(size_step)
            assert page.inner_text("#i-size").startswith("0 bytes")
            page.keyboard.press("Home")
            assert page.inner_text("#i-size").startswith(str(doc["initial"]["i_size"]))
            assert page.locator("#page-tables .pte").count() == 0
            page.keyboard.press("End")
            assert page.get_attribute("body", "data-cursor") == str(n)

            # Locks: their holders come from the lock's state as data
            # ({"held_by": tid}), at every step where a change set it.
            held = 0
            for k, step in enumerate(steps, 1):
                after = {name: new for name, _, new in step["changes"]}  # a step may take and drop one
                for name, new in after.items():
                    if doc["objects"].get(name, {}).get("kind") == "mutex":
                        page.click(f'.step[data-step="{k}"]')
                        if new["held_by"] is None:
                            assert name in page.inner_text("#locks .lock.free")
                        else:
                            holder = doc["threads"][new["held_by"]]
                            assert page.inner_text(f'#locks [data-lock="{name}"]') == f"{name}: held by {holder}"
                            held += 1
            assert held
        finally:
            browser.close()
    elapsed = time.monotonic() - started
    print(f"browser test: {elapsed:.1f} s, screenshot {shot}")
    assert not errors, errors
    assert all(u.startswith(("file:", "data:", "about:")) for u in requests), requests
    if os.environ.get("RACECHECK_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, ROOT / "docs" / "viewer.png")
