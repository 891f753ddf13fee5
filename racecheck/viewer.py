"""The counterexample viewer: one self-contained HTML file per trace.

``racecheck view TRACE`` writes a page that opens from disk and needs no
network: the style sheet, the script (``viewer_assets/``) and the trace itself
are inline, and the page's content security policy forbids every fetch. The
script draws one swimlane per thread with the steps in schedule order, the
happens-before edges between threads, and, at a cursor moved with the arrow
keys or by clicking (the address's ``#N`` follows it), the state after that
step, rebuilt from the trace's ``initial`` state and each step's ``changes``.
It also draws what the trace carries for it: the racing pair's other order
(``race_reversed``) beside the trace, and a deadlock's wait-for graph
(``final_threads``); and it filters the steps by the object they touch.

What text can be worked out once is worked out here, with the same functions
as ``racecheck show`` (:mod:`racecheck.report`), so that both say the same.
"""

from __future__ import annotations

import html
import json
from importlib import resources

from . import __version__, report

CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
       "img-src data:; base-uri 'none'; form-action 'none'")


class ViewerError(Exception):
    """The trace cannot be drawn (saved by an older racecheck)."""


def _asset(name):
    return resources.files("racecheck").joinpath("viewer_assets", name).read_text(encoding="utf-8")


def view_data(doc):
    """What the page's script reads: the trace, and the text of each step
    (of the trace, and of the racing pair's other order)."""
    if "initial" not in doc:
        raise ViewerError("the trace has no initial state (it was saved by an older racecheck): "
                          "run the scenario again to save a new one")
    doc = page_doc(doc)
    threads = doc["threads"]
    geometry = doc.get("geometry")
    steps = [_step_text(s, threads, geometry) for s in doc["steps"]]
    reversed_run = doc.get("race_reversed") or {"steps": []}
    race = doc.get("race")
    race_words = None
    if race:
        i, j = race
        race_words = report.conflict_words(doc["steps"][i - 1], doc["steps"][j - 1])
    edges = [dict(e, label=", ".join(report.compress_names(e["objects"])))
             for e in doc.get("happens_before") or []]
    return {
        "doc": doc,
        "steps": steps,
        "edges": edges,
        "race_text": report.race_text(doc),
        "race_words": race_words,
        "reversed_runs": report.schedule_runs(doc.get("race_reversed_schedule") or []),
        "reversed_steps": [_step_text(s, threads, geometry) for s in reversed_run["steps"]],
        "racecheck_version": __version__,
    }


def _step_text(s, threads, geometry):
    return {
        "where": report._short_line(s.get("line")),
        "changes_text": report.change_text(s["changes"], threads, geometry),
        "reads_text": report.compress_names(s.get("reads") or []),
        "writes_text": report.compress_names(s.get("writes") or []),
        "waits_text": report.wait_text(s.get("waiting") or []),
    }


MODEL_ERROR = "no_model_error"


def page_doc(doc):
    """The trace as the page states it. A model that raised is drawn as the
    violation of ``no_model_error`` with the exception as its message (the
    page names what breaks at the last step as an invariant)."""
    if doc.get("verdict") != "error":
        return doc
    error = doc["error"]
    return dict(doc, invariant=MODEL_ERROR,
                invariant_description="the model's code runs without raising an exception",
                message=f"the model raised in thread {error['thread']}: {error['exception']}")


def _json_for_script(data):
    """JSON that cannot end its <script> element early."""
    text = json.dumps(data, separators=(",", ":"), sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render(doc):
    """The viewer page of trace document ``doc``, as one HTML string."""
    data = view_data(doc)
    title = f"racecheck: {doc['scenario']['name']}: {page_doc(doc)['invariant']}"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{html.escape(CSP, quote=False)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="racecheck {html.escape(__version__)}">
<title>{html.escape(title)}</title>
<style>
{_asset("viewer.css")}
</style>
</head>
<body>
<noscript>This counterexample viewer needs JavaScript;
<code>racecheck show TRACE</code> prints the same trace as text.</noscript>
<div id="app"></div>
<script type="application/json" id="trace-data">{_json_for_script(data)}</script>
<script>
{_asset("viewer.js")}
</script>
</body>
</html>
"""


def write(doc, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(doc), encoding="utf-8")
    return path
