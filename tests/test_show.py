"""The counterexample as text (`racecheck show`) and the trace document behind
it: initial state, reconstructable states, filtered footprints, the
happens-before edges and the racing pair."""

import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import click
import pytest
from click.testing import CliRunner

from racecheck import report, runner
from racecheck import trace as tracefile
from racecheck.cli import main
from racecheck.execution import Execution
from racecheck.invariants import FinalState
from racecheck.model import Program
from racecheck.scenario import load
from racecheck.scheduler import replay

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "fault_vs_truncate.yaml"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """fault_vs_truncate run once: (trace path, trace document, scenario)."""
    out = tmp_path_factory.mktemp("show") / "fault_vs_truncate.json"
    sc = load(SCENARIO)
    rep = runner.check(sc, trace_out=out)
    assert rep.verdict == "violation"
    return out, json.loads(out.read_text()), sc


def show(path, *options):
    result = CliRunner().invoke(main, ["show", str(path), *options])
    assert result.exit_code == 0, result.output
    return result.output


# -- the trace document ------------------------------------------------------------


def test_footprints_leave_out_the_engines_synthetic_objects(saved):
    _, doc, _ = saved
    shown = {o for s in doc["steps"] for o in s["reads"] + s["writes"]}
    assert shown and not shown & {"history", "watched by invariants"}
    assert "i_size" in shown


def test_initial_state_is_a_fresh_execution_of_the_model(saved):
    _, doc, sc = saved
    init = doc["initial"]
    snap = Execution(sc.model).rt.snapshot()
    assert init["i_size"] == snap["i_size"] == 8192
    assert init["dev[0]"] == "DATA(init,0)"
    assert init["i_blocks[1]"] == ["written", 1]
    assert init["i_mutex"] == {"held_by": None}  # a lock's state as data
    assert doc["objects"]["dev"] == {"kind": "array", "length": len([k for k in snap if k.startswith("dev[")])}
    assert doc["objects"]["pte.shared"]["kind"] == "map"
    assert doc["geometry"]["units_per_block"] == 8


def test_every_state_is_reconstructable_from_initial_and_changes(saved):
    """Applying every step's changes to the initial state gives the state a
    replay of the schedule ends in."""
    _, doc, sc = saved
    ids = tracefile.schedule_ids(doc, doc["threads"])
    end = replay(sc.model, ids).execution
    final = tracefile.state_at(doc, len(doc["steps"]))
    expected = {}
    for obj in end.rt.objects:
        if not hasattr(obj, "name") or obj.name not in doc["objects"]:
            continue
        kind = doc["objects"][obj.name]["kind"]
        if kind == "map":
            expected.update({f"{obj.name}[{k!r}]": tracefile.plain(v) for k, v in obj.items.items()})
        elif kind in ("mutex", "rwsem"):
            expected[obj.name] = tracefile.plain(obj.shown())
        else:
            expected.update({k: tracefile.plain(v) for k, v in obj.snapshot().items()})
    assert final == expected
    # The freed block is mapped at the end, and was not at the start.
    pte = [c for c in doc["steps"][-1]["changes"] if c[0].startswith("pte.")]
    assert pte and tracefile.state_at(doc, 0).get(pte[0][0]) is None
    assert final[pte[0][0]] == pte[0][2]


def test_happens_before_edges_are_conflicts_between_threads(saved):
    _, doc, _ = saved
    by = {s["step"]: s for s in doc["steps"]}
    assert doc["happens_before"]
    for e in doc["happens_before"]:
        a, b = by[e["from"]], by[e["to"]]
        assert a["thread"] != b["thread"] and e["from"] < e["to"]
        assert e["objects"] == tracefile.conflict(a, b) != []
    assert any("i_size" in e["objects"] for e in doc["happens_before"])


def test_racing_pair_reversed_avoids_the_violation_and_is_the_latest(saved):
    _, doc, sc = saved
    i, j = doc["race"]
    steps = doc["steps"]
    assert steps[i - 1]["thread"] != steps[j - 1]["thread"]
    assert {"from": i, "to": j} in [{"from": e["from"], "to": e["to"]} for e in doc["happens_before"]]
    ids = tracefile.schedule_ids(doc, doc["threads"])
    assert replay(sc.model, ids).violation.invariant == doc["invariant"]
    reversed_ids = tracefile.schedule_ids({"schedule": doc["race_reversed_schedule"]}, doc["threads"])
    again = replay(sc.model, reversed_ids)
    assert again.violation is None and again.mismatch is None and again.error is None
    # No later candidate pair avoids the violation when reversed.
    graph = tracefile.happens_before(steps)
    for a, b in tracefile.race_candidates(graph, steps):
        if (b, a) > (j, i):
            run = tracefile._run_to_end(sc.model, tracefile.reversed_order(ids, graph, a, b), 10_000)
            assert run is None or replay(sc.model, run).violation is not None


def _counter_model():
    def init(rt):
        return SimpleNamespace(x=rt.var("x", 0))

    def incr(st):
        yield "tmp = x"
        tmp = st.x.get()
        yield "x = tmp + 1"
        st.x.set(tmp + 1)

    return Program("counter", init, [("A", incr), ("B", incr)],
                   [FinalState("no_lost_update", lambda st: st.x.value == 2, "an update was lost")])


def test_racing_pair_of_a_lost_update():
    """A reads x, B reads x, A writes x, B writes x: reversing the last
    pair (the two writes) still loses an update; reversing B's read and A's
    write (A writes before B reads) does not. So the pair is steps 2 and 3."""
    model = _counter_model()
    schedule = [0, 1, 0, 1]
    out = replay(model, schedule)
    assert out.violation is not None
    steps = [tracefile._step(n, r) for n, r in enumerate(out.records, 1)]
    graph = tracefile.happens_before(steps)
    assert tracefile.race_candidates(graph, steps) == [(3, 4), (2, 3)]
    (pair, run) = tracefile.racing_pair(model, schedule, steps, graph)
    assert pair == (2, 3)
    assert run == [0, 0, 1, 1]
    assert "reads x, which step 3 (A: x = tmp + 1) then writes" in report.conflict_words(steps[1], steps[2])


def test_no_racing_pair_when_no_reversal_helps():
    def init(rt):
        return SimpleNamespace(x=rt.var("x", 0))

    def wrong(st):
        yield "x = 5"
        st.x.set(5)

    model = Program("alone", init, [("A", wrong)],
                    [FinalState("x_is_zero", lambda st: st.x.value == 0, "x changed")])
    out = replay(model, [0])
    steps = [tracefile._step(n, r) for n, r in enumerate(out.records, 1)]
    assert tracefile.racing_pair(model, [0], steps) is None


# -- the text --------------------------------------------------------------------


def test_show_plain_text_layout(saved):
    path, doc, _ = saved
    out = show(path)
    assert "\x1b[" not in out  # CliRunner's output is not a terminal
    lines = out.splitlines()
    assert lines[0].startswith("fault_vs_truncate: violation of no_freed_block_mapped")
    head = lines[2]
    assert head.startswith("  #  fault") and "truncate" in head and head.rstrip().endswith("state changed")
    col = {t: head.index(t) for t in doc["threads"]}
    # One row per step, in schedule order, the label in its thread's column.
    numbered = [(int(m.group(1)), line) for line in lines
                if (m := re.match(r"^\s*(\d+)[* ] ", line))]
    assert [n for n, _ in numbered] == list(range(1, len(doc["steps"]) + 1))
    for (n, line), step in zip(numbered, doc["steps"]):
        text = line[col[step["thread"]]:]
        first = f"[{step['op']}]" if text.startswith("[") else step["label"][:10]
        assert text.startswith(first), (n, line)
    # The racing pair is marked, and only it.
    marked = [n for n, line in numbered if re.match(r"^\s*\d+\*", line)]
    assert marked == doc["race"]
    # State changes, units of whole blocks folded.
    assert "i_size: 8192 -> 0" in out
    assert "dev[8..15] (block 1): DATA(init,0) -> STALE" in out
    assert "i_mutex: - -> held by truncate" in out
    assert "pte.shared[1]: - -> (block, 1)" in out
    # The source line of the model.
    assert re.search(r"truncate\.py:\d+", out)
    # Happens-before edges, the racing pair in words, the invariant last.
    assert "happens-before between threads:" in out and "(i_size)" in out
    i, j = doc["race"]
    assert f"racing pair: steps {i} and {j}." in out
    assert lines[-1] == f"no_freed_block_mapped: {doc['message']}"


def test_show_colour_is_the_plain_text_styled(saved):
    path, _, _ = saved
    plain = show(path, "--no-color")
    coloured = show(path, "--color")
    assert "\x1b[" in coloured
    assert click.unstyle(coloured) == plain


def test_show_colours_a_terminal_by_default(saved):
    """Through a pseudo-terminal the default is colour; through a pipe, plain."""
    path, _, _ = saved
    exe = shutil.which("racecheck")
    cmd = [exe, "show", str(path)] if exe else [sys.executable, "-m", "racecheck.cli", "show", str(path)]
    piped = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert piped.returncode == 0 and "\x1b[" not in piped.stdout
    leader, follower = pty.openpty()
    proc = subprocess.Popen(cmd, stdout=follower, stderr=follower, stdin=subprocess.DEVNULL,
                            env={**os.environ, "COLUMNS": "200"})
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 30)
        if not ready:
            break
        try:
            data = os.read(leader, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=30)
    os.close(leader)
    tty_out = b"".join(chunks).decode()
    assert proc.returncode == 0
    assert "\x1b[" in tty_out
    assert ANSI.sub("", tty_out).replace("\r\n", "\n").strip() == piped.stdout.strip()


def test_show_waits_and_no_racing_pair(saved):
    """A thread left waiting is said so; a trace without a racing pair says
    that no single reversal avoids the violation."""
    _, doc, _ = saved
    doc = json.loads(json.dumps(doc))
    doc["steps"][3]["waiting"] = [{"thread": "fault", "for": "i_mutex", "held_by": ["truncate"]}]
    doc["race"] = None
    text = report.format_trace(doc)
    assert "fault waits for i_mutex (held by truncate)" in text
    assert text.count("fault waits for i_mutex") == 1
    assert "racing pair: none" in text
    assert not re.search(r"^\s*\d+\*", text, re.M)


def test_show_reads_a_trace_saved_before_the_viewer(saved, tmp_path):
    path, doc, _ = saved
    old = {k: v for k, v in doc.items()
           if k not in ("initial", "objects", "geometry", "race", "race_reversed_schedule", "happens_before")}
    p = tmp_path / "old.json"
    p.write_text(json.dumps(old))
    out = show(p)
    assert "racing pair" not in out
    assert out.splitlines()[-1].startswith("no_freed_block_mapped: ")


def test_run_mentions_view_next_to_the_violation(tmp_path):
    out = CliRunner().invoke(main, ["run", str(SCENARIO), "--trace-out", str(tmp_path / "t.json")])
    assert out.exit_code == 1
    assert f"view:   racecheck view {tmp_path / 't.json'}" in out.output


def test_vector_clock_happens_before_is_reachability_in_the_conflict_graph():
    """The happens-before of racecheck/happens_before.py (vector clocks) orders
    two steps exactly when a chain of program order and conflicts between
    threads leads from one to the other, and its race candidates are the
    edges between threads of that graph's transitive reduction."""
    import random

    import networkx as nx

    from racecheck.happens_before import HappensBefore

    rng = random.Random(7)
    for _ in range(200):
        n = rng.randint(1, 14)
        steps = [{"step": k, "thread": rng.choice("abc"),
                  "reads": rng.sample("xyz", rng.randint(0, 2)),
                  "writes": rng.sample("xyz", rng.randint(0, 1))} for k in range(1, n + 1)]
        g = nx.DiGraph()
        g.add_nodes_from(range(1, n + 1))
        for j, b in enumerate(steps):
            for a in steps[:j]:
                if a["thread"] == b["thread"] or tracefile.conflict(a, b):
                    g.add_edge(a["step"], b["step"])
        hb = HappensBefore(steps)
        for i in range(1, n + 1):
            assert hb.after(i) == nx.descendants(g, i)
        reduced = nx.transitive_reduction(g)
        thread = {s["step"]: s["thread"] for s in steps}
        assert hb.unordered_by_others() == sorted((i, j) for i, j in reduced.edges if thread[i] != thread[j])
        for i, j in hb.unordered_by_others():
            h = g.copy()
            h.remove_edge(i, j)
            assert hb.without(i, j).after(i) == nx.descendants(h, i)


def _as_saved_before(doc):
    """``doc`` with its locks spelt as traces spelt them before lock states
    were data."""
    old = json.loads(json.dumps(doc))
    kinds = {n: o["kind"] for n, o in old["objects"].items()}

    def text(name, v):
        if kinds[name] == "mutex":
            return None if v["held_by"] is None else f"held by thread {v['held_by']}"
        return [f"+reader {t}" for t in v["readers"]] + (
            [] if v["writer"] is None else [f"held by thread {v['writer']}"])

    for name in kinds:
        if kinds[name] in ("mutex", "rwsem"):
            old["initial"][name] = text(name, old["initial"][name])
    for step in old["steps"]:
        for change in step["changes"]:
            if kinds.get(change[0]) == "mutex":
                change[1], change[2] = text(change[0], change[1]), text(change[0], change[2])
    return old


def test_a_trace_saved_with_locks_as_text_loads_with_locks_as_data(saved, tmp_path):
    _, doc, _ = saved
    assert any(kinds["kind"] == "mutex" for kinds in doc["objects"].values())
    old = _as_saved_before(doc)
    assert old != doc
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    assert tracefile.load(path) == tracefile.load(tracefile.save(doc, tmp_path / "new.json"))


def test_an_rwsem_saved_as_text_loads_as_its_states(tmp_path):
    doc = {"objects": {"sem": {"kind": "rwsem"}, "m": {"kind": "mutex"}},
           "initial": {"sem": ["+reader 1"], "m": "held by thread 0"},
           "steps": [{"changes": [["sem", None, "+reader 0"]]},
                     {"changes": [["sem", "+reader 1", "-reader 1"], ["m", "held by thread 0", None]]},
                     {"changes": [["sem", "+reader 0", "-reader 0"], ["sem", None, "held by thread 2"]]},
                     {"changes": [["sem", "held by thread 2", None]]}]}
    tracefile._lock_states_as_data(doc)
    free = {"readers": [], "writer": None}
    assert doc["initial"] == {"sem": {"readers": [1], "writer": None}, "m": {"held_by": 0}}
    assert [s["changes"] for s in doc["steps"]] == [
        [["sem", {"readers": [1], "writer": None}, {"readers": [0, 1], "writer": None}]],
        [["sem", {"readers": [0, 1], "writer": None}, {"readers": [0], "writer": None}],
         ["m", {"held_by": 0}, {"held_by": None}]],
        [["sem", {"readers": [0], "writer": None}, free], ["sem", free, {"readers": [], "writer": 2}]],
        [["sem", {"readers": [], "writer": 2}, free]]]
