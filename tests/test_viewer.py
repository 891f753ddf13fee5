"""`racecheck view`: the self-contained HTML page, and the page itself in a
real browser (headless Chromium driven by Playwright, opened from disk).

The browser test needs Debian's ``chromium`` (``.ci/run`` installs it) and the
``playwright`` package of the ``test`` extra; it never downloads a browser.
Without them it is skipped, unless ``RACECHECK_REQUIRE_BROWSER=1`` (as in CI),
where it fails. docs/screenshots.py makes the pictures in the docs the same way.
"""

import json
import os
import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from racecheck import runner, trace, viewer
from racecheck.cli import main
from racecheck.scenario import load
from racecheck.scheduler import replay

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


# -- each interaction, in one browser for the module ---------------------------------


DEADLOCK = ROOT / "scenarios" / "ext4_dax_fault_deadlock.yaml"


@pytest.fixture(scope="module")
def deadlock_file(tmp_path_factory):
    """A 3-thread deadlock's counterexample and its page: (page path, trace)."""
    where = tmp_path_factory.mktemp("deadlock")
    trace = where / "deadlock.json"
    rep = runner.check(load(DEADLOCK), trace_out=trace)
    assert rep.verdict == "violation"
    doc = json.loads(trace.read_text())
    assert doc["invariant"] == "deadlock_free" and len(doc["threads"]) == 3
    return viewer.write(doc, where / "deadlock.html"), doc


@pytest.fixture(scope="module")
def browser():
    sync_playwright = _browser_or_skip()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def open_page(browser):
    """open_page(path, width, height, fragment): a page with no script errors."""
    pages, errors = [], []

    def opened(path, width=1500, height=1000, fragment=""):
        page = browser.new_page(viewport={"width": width, "height": height})
        page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
        page.on("console", lambda msg: errors.append(f"console {msg.type}: {msg.text}")
                if msg.type in ("error", "warning") else None)
        page.goto(path.resolve().as_uri() + fragment)
        page.wait_for_selector("#lanes .step")
        pages.append(page)
        return page

    yield opened
    for page in pages:
        page.close()
    assert not errors, errors


def cursor(page):
    return int(page.get_attribute("body", "data-cursor"))


def test_address_follows_the_cursor(page_file, open_page):
    path, doc = page_file
    page = open_page(path, fragment="#5")
    assert cursor(page) == 5  # opening page.html#5 selects step 5
    assert page.get_attribute('#lanes [data-step="5"]', "aria-selected") == "true"
    page.keyboard.press("ArrowDown")
    assert cursor(page) == 6 and page.url.endswith("#6")
    page.click('#lanes .step[data-step="2"]')
    assert page.url.endswith("#2")
    page.evaluate("location.hash = '#9'")  # a link to a step, followed in the open page
    page.wait_for_function("document.body.dataset.cursor === '9'")
    page.keyboard.press("End")
    assert page.url.endswith(f"#{len(doc['steps'])}")


def test_steps_are_a_listbox_reached_with_tab(page_file, open_page):
    path, doc = page_file
    n = len(doc["steps"])
    page = open_page(path, fragment="#3")
    assert page.get_attribute("#lanes", "role") == "listbox"
    options = page.locator('#lanes [role="option"]')
    assert options.count() == n + 1  # the initial state and each step
    labels = page.locator('#lanes .step[role="option"]').evaluate_all("bs => bs.map(b => b.getAttribute('aria-label'))")
    for k, (label, step) in enumerate(zip(labels, doc["steps"]), 1):
        assert label.startswith(f"Step {k} of {n}, {step['thread']}")
        assert step["label"] in label
    # In the listbox only the options speak: all other text is hidden from
    # screen readers (it repeats, for the eye, what the labels say).
    loose = page.evaluate("""() => {
        const out = [], walk = document.createTreeWalker(document.getElementById('lanes'), NodeFilter.SHOW_TEXT);
        while (walk.nextNode()) {
            const e = walk.currentNode.parentElement;
            if (walk.currentNode.textContent.trim() && !e.closest('[role=option], [aria-hidden=true]'))
                out.push(walk.currentNode.textContent);
        }
        return out; }""")
    assert not loose, loose
    # One tab stop: the selected step.
    assert page.locator('#lanes [tabindex="0"]').evaluate_all("bs => bs.map(b => b.dataset.step)") == ["3"]
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.getAttribute('role')") == "option":
            break
    assert page.evaluate("document.activeElement.dataset.step") == "3"
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.dataset.step") == "4"  # focus moves with the cursor
    assert page.get_attribute('#lanes [data-step="4"]', "aria-selected") == "true"
    assert page.get_attribute('#lanes [data-step="3"]', "aria-selected") == "false"
    assert page.get_attribute("#live", "aria-live") == "polite"
    assert page.inner_text("#live").startswith(f"Step 4 of {n}, {doc['steps'][3]['thread']}")
    page.keyboard.press("End")
    assert doc["message"][:30] in page.inner_text("#live")


def _overlaps(a, b):
    return a["x"] < b["x"] + b["width"] - 0.5 and b["x"] < a["x"] + a["width"] - 0.5 and \
        a["y"] < b["y"] + b["height"] - 0.5 and b["y"] < a["y"] + a["height"] - 0.5


RECTS = "els => els.map(e => { const r = e.getBoundingClientRect(); return {x: r.x, y: r.y, width: r.width, height: r.height, text: e.textContent}; })"


def _check_layout(page):
    cards = page.locator("#lanes .step").evaluate_all(RECTS)
    labels = page.locator("#edge-labels .edge-label").evaluate_all(RECTS)
    assert labels and cards
    for label in labels:
        for card in cards:
            assert not _overlaps(label, card), (label, card)
    for group in (cards, labels):
        for i, a in enumerate(group):
            for b in group[i + 1:]:
                assert not _overlaps(a, b), (a, b)
    # Code breaks between identifiers only: every identifier is on one line.
    split = page.locator("#lanes .id, #panel .id").evaluate_all(
        "ids => ids.filter(e => e.getClientRects().length > 1).map(e => e.textContent)")
    assert not split, split
    assert page.locator("#lanes .id").count() > len(cards)


def test_three_threads_at_900px_stay_readable(deadlock_file, open_page):
    path, doc = deadlock_file
    page = open_page(path, width=900, height=900)
    assert page.locator("#lanes .lane-head").count() == 3
    for k in (0, 13, len(doc["steps"])):
        page.evaluate(f"location.hash = '#{k}'")
        page.wait_for_function(f"document.body.dataset.cursor === '{k}'")
        _check_layout(page)
    # Every lane fits the window: no sideways scrolling to read a thread.
    assert page.evaluate("document.getElementById('lanes').scrollWidth <= "
                         "document.getElementById('lanes-wrap').clientWidth")
    # The state panel is below the lanes, not squeezed beside them.
    lanes, panel = (page.locator(s).bounding_box() for s in ("#lanes-wrap", "#panel"))
    assert panel["y"] >= lanes["y"] + lanes["height"] - 1


def test_labels_never_cover_cards_at_1500px(page_file, open_page):
    path, _ = page_file
    page = open_page(path)
    _check_layout(page)
    page.keyboard.press("End")
    _check_layout(page)
    race_label = page.locator("#edge-labels .edge-label.race-edge")
    assert race_label.count() == 1 and race_label.inner_text().startswith("race")
    # Each label fits its gap whole (a longer one would be cut short, whole on hover).
    cut = page.locator("#edge-labels .edge-label").evaluate_all(
        "ls => ls.filter(l => l.scrollWidth > l.clientWidth).map(l => l.textContent)")
    assert not cut, cut


def test_a_deadlock_trace_carries_who_holds_and_waits_for_what(deadlock_file):
    _, doc = deadlock_file
    final = {t["thread"]: t for t in doc["final_threads"]}
    assert list(final) == doc["threads"]
    assert final["fault"]["holds"] == ["page_lock[0]"]
    assert final["writeback"]["waits_for"] == {"kind": "lock", "name": "page_lock[0]", "on": ["fault"]}
    fault, kjournald = final["fault"]["waits_for"], final["kjournald"]["waits_for"]
    assert fault["kind"] == kjournald["kind"] == "condition"
    assert fault["objects"] == ["transaction.t_state"] and fault["on"] == ["kjournald"]
    assert kjournald["objects"] == ["transaction.t_updates"] and kjournald["on"] == ["writeback"]
    # Against the trace's own state after the last step (its changes applied):
    # each thread holds exactly the locks whose state names it.
    end = trace.state_at(doc, len(doc["steps"]))
    for tid, name in enumerate(doc["threads"]):
        held = {lock for lock, o in doc["objects"].items() if o["kind"] in ("mutex", "rwsem")
                and (end[lock].get("held_by") == tid or end[lock].get("writer") == tid
                     or tid in end[lock].get("readers", []))}
        assert set(final[name]["holds"]) == held, name
        assert not final[name]["finished"]
    # ... and waits as the last step's waits say.
    waits = {w["thread"]: w["for"] for w in doc["steps"][-1]["waiting"]}
    assert {t: final[t]["waits_for"]["name"] for t in final} == waits


def test_the_reversed_schedule_is_replayed_into_the_trace(page_file):
    _, doc = page_file
    rev = doc["race_reversed"]
    assert rev["schedule"] == doc["race_reversed_schedule"]
    assert rev["outcome"] == "clean" and rev["message"] == "no invariant breaks"
    assert [s["thread"] for s in rev["steps"]] == rev["schedule"]
    assert [s["step"] for s in rev["steps"]] == list(range(1, len(rev["steps"]) + 1))
    # Replayed independently, the schedule runs the same steps and ends clean.
    model = load(SCENARIO).model
    got = replay(model, trace.schedule_ids({"schedule": rev["schedule"]}, doc["threads"]))
    assert got.violation is None and got.mismatch is None and got.error is None
    assert [(r["thread"], r["label"], json.loads(json.dumps(r["changes"]))) for r in got.records] == \
        [(s["thread"], s["label"], s["changes"]) for s in rev["steps"]]


def test_deadlock_shows_its_wait_for_graph(deadlock_file, open_page, page_file):
    path, doc = deadlock_file
    page = open_page(path, fragment=f"#{len(doc['steps'])}")
    # A step after which a thread waits says so to a screen reader too.
    k = next(k for k, s in enumerate(doc["steps"], 1) if s["waiting"])
    assert "writeback waits for page_lock[0] (held by fault)" in page.get_attribute(
        f'#lanes [data-step="{k}"]', "aria-label")
    graph = page.locator("#wait-graph")
    assert graph.count() == 1
    for t in doc["threads"]:
        assert page.locator(f'#wait-graph [data-node="t:{t}"]').count() == 1
    assert page.locator('#wait-graph [data-node="l:page_lock[0]"]').count() == 1
    # The cycle: each node of it has one cycle edge out, to the next.
    edges = page.locator("#wait-graph path.wf-edge.cycle").evaluate_all(
        "ps => ps.map(p => [p.dataset.from, p.dataset.to])")
    nxt = dict(edges)
    assert len(nxt) == len(edges) == 6
    node, seen = edges[0][0], []
    while node not in seen:
        seen.append(node)
        node = nxt[node]
    assert node == edges[0][0] and len(seen) == 6
    assert {f"t:{t}" for t in doc["threads"]} <= set(seen)
    assert ["t:writeback", "l:page_lock[0]"] in edges and ["l:page_lock[0]", "t:fault"] in edges
    assert page.inner_text("#wf-cycle").startswith("Cycle: ")
    nodes = page.locator("#wait-graph .wf-node rect").evaluate_all(RECTS)
    for i, a in enumerate(nodes):
        for b in nodes[i + 1:]:
            assert not _overlaps(a, b), (a, b)
    # A violation that is no deadlock draws none.
    other = open_page(page_file[0], fragment="#1")
    other.keyboard.press("End")
    assert other.locator("#wait-graph").count() == 0


def test_racing_pair_other_order_opens_beside(page_file, open_page):
    path, doc = page_file
    rev = doc["race_reversed"]
    i, j = doc["race"]
    # Stored when the trace was written: the reversed schedule, replayed.
    assert rev["schedule"] == doc["race_reversed_schedule"] and rev["outcome"] == "clean"
    assert [s["thread"] for s in rev["steps"]] == rev["schedule"]

    def nth(steps, k):  # (thread, how many of its steps up to k)
        t = steps[k - 1]["thread"]
        return t, sum(1 for s in steps[:k] if s["thread"] == t)

    where = {nth(rev["steps"], k): k for k in range(1, len(rev["steps"]) + 1)}
    ri, rj = where[nth(doc["steps"], i)], where[nth(doc["steps"], j)]
    assert rj < ri  # the pair the other way round
    page = open_page(path, fragment=f"#{j}")
    assert not page.locator("#other-order").is_visible()
    page.click("#other-toggle")
    assert page.locator("#other-order").is_visible()
    assert page.get_attribute("#other-toggle", "aria-pressed") == "true"
    assert page.locator("#other-order .step").count() == len(rev["steps"])
    assert "no invariant breaks" in page.inner_text("#other-outcome")
    assert page.locator("#other-order .step.race").evaluate_all("bs => bs.map(b => +b.dataset.step)") == sorted([ri, rj])
    assert page.locator("#other-order .step.race .badge").all_inner_texts() == [
        f"race: was step {j}", f"race: was step {i}"]
    assert page.get_attribute("#other-order .step.same", "data-step") == str(rj)  # the cursor's step, there
    main, beside, panel = (page.locator(s).bounding_box() for s in ("#lanes-wrap", "#other-order", "#panel"))
    assert main["x"] + main["width"] <= beside["x"] + 1 and beside["x"] + beside["width"] <= panel["x"] + 1
    page.keyboard.press("ArrowUp")  # the keys still move the cursor after a click on the button
    assert cursor(page) == j - 1
    # A click there shows that run's state after the step, in the panel.
    page.click(f'#other-order .step[data-step="{ri}"]')
    assert page.get_attribute("body", "data-other-cursor") == str(ri) and cursor(page) == j - 1
    assert page.inner_text("#cursor-title").startswith(f"The other order: Step {ri} of {len(rev['steps'])}")
    assert "it ends with no invariant broken" in page.inner_text("#other-box")
    page.click(f'#other-order .step[data-step="{len(rev["steps"])}"]')
    assert "freed block still mapped" not in page.inner_text("#page-tables")  # the violation's state is not there
    # The other order's steps are a list box of their own, for the keyboard.
    page.focus('#other-order .step[data-step="1"]')
    page.keyboard.press("ArrowDown")
    assert page.get_attribute("body", "data-other-cursor") == "2" and cursor(page) == j - 1
    assert page.evaluate("[document.activeElement.closest('#other-order') !== null, document.activeElement.dataset.step]") \
        == [True, "2"]
    assert page.get_attribute('#other-order [data-step="2"]', "aria-selected") == "true"
    assert page.inner_text("#live").startswith(f"The other order: Step 2 of {len(rev['steps'])}")
    page.click("#back-as-found")
    assert cursor(page) == j - 1 and page.get_attribute("body", "data-other-cursor") is None
    page.click(f'#other-order .step[data-step="{ri}"]')
    page.click("#find-as-found")  # the same step, as found
    assert cursor(page) == i and page.inner_text("#cursor-title").startswith(f"Step {i} of")
    page.keyboard.press("End")
    assert "freed block still mapped" in page.inner_text("#page-tables")
    page.click("#other-toggle")
    assert not page.locator("#other-order").is_visible()


def _touches(step, q):
    base = q.rpartition("[")[0]
    names = set(step["reads"]) | set(step["writes"]) | {c[0] for c in step["changes"]}
    return any(n == q or n.startswith(q + "[") or (base and n == base + "['*']") for n in names)


def test_watch_filters_steps_by_object(page_file, open_page):
    path, doc = page_file
    steps = doc["steps"]
    page = open_page(path)
    visible = "bs => bs.filter(b => b.offsetParent !== null).map(b => +b.dataset.step)"
    for q in ("i_size", "pte.shared[1]", "pte.shared"):
        page.fill("#watch", q)
        want = [k for k, s in enumerate(steps, 1) if _touches(s, q)]
        assert want and len(want) < len(steps)
        assert page.locator("#lanes .step").evaluate_all(visible) == want
        assert page.inner_text("#watch-note") == f"{len(want)} of {len(steps)} steps touch {q}"
    # A step that reads the whole map touches each entry of it.
    assert any("pte.shared['*']" in s["reads"] + s["writes"] and "pte.shared[1]" not in s["reads"] + s["writes"]
               for s in steps)
    # The value after each step: i_size's, from the initial state and the changes.
    page.fill("#watch", "i_size")
    cells = page.locator("#lanes .watch-cell").evaluate_all(
        "cs => cs.filter(c => c.offsetParent !== null).map(c => [c.style.gridRow, c.textContent, c.classList.contains('changed')])")
    size = doc["initial"]["i_size"]
    assert cells[0][1] == str(size)
    for (row, text, changed), k in zip(cells[1:], [k for k, s in enumerate(steps, 1) if _touches(s, "i_size")]):
        new = [c[2] for c in steps[k - 1]["changes"] if c[0] == "i_size"]
        size = new[-1] if new else size
        assert int(row) == k + 2 and text == str(size) and changed == bool(new)
    # The arrow keys move through the steps shown; the edges drawn join them.
    page.click("#lanes .initial")
    page.keyboard.press("ArrowDown")
    first = next(k for k, s in enumerate(steps, 1) if _touches(s, "i_size"))
    assert cursor(page) == first
    shown = set(page.locator("#lanes .step").evaluate_all(visible))
    for a, b in page.locator("svg.edges path[data-from]").evaluate_all("ps => ps.map(p => [+p.dataset.from, +p.dataset.to])"):
        assert a in shown and b in shown
    assert page.inner_text("#live").endswith(f"i_size after it: {cells[1][1]}")
    # A lock's value is who holds it.
    page.fill("#watch", "i_mutex")
    held, want = "free", []
    for k, s in enumerate(steps, 1):
        if _touches(s, "i_mutex"):
            for name, _, new in s["changes"]:
                if name == "i_mutex":
                    held = "free" if new["held_by"] is None else "held by " + doc["threads"][new["held_by"]]
            want.append(held)
    assert "held by truncate" in want
    got = page.locator("#lanes .watch-cell").evaluate_all(
        "cs => cs.filter(c => c.offsetParent !== null).map(c => c.textContent)")
    assert got == ["free"] + want
    page.fill("#watch", "")
    assert page.locator("#lanes .step").evaluate_all(visible) == list(range(1, len(steps) + 1))


def test_a_trace_saved_before_the_other_order_and_the_wait_for_graph(deadlock_file, open_page, tmp_path):
    _, doc = deadlock_file
    old = {k: v for k, v in doc.items() if k not in ("race_reversed", "final_threads")}
    page = open_page(viewer.write(old, tmp_path / "old.html"), fragment=f"#{len(doc['steps'])}")
    assert page.locator("#other-toggle").count() == 0 and page.locator("#other-order").count() == 0
    assert page.locator("#wait-graph").count() == 0
    assert "Racing pair: steps" in page.inner_text("#race")
    # The other order without a racing pair to name (a trace edited by hand) is left out.
    odd = open_page(viewer.write(dict(doc, race=None), tmp_path / "odd.html"))
    assert odd.locator("#other-toggle").count() == 0
