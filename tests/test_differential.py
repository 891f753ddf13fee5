"""Differential soundness test: dpor against exhaustive search.

Hypothesis generates small programs (2-4 threads, 1-3 shared variables, 0-2
mutexes; each thread 1-4 operations: reads, writes, properly nested lock and
unlock, assertions on locals, and now and then a wait_until). Each program is
explored to the end with reduction "none" and with "dpor", without stopping at
violations (executions then run on past them, to their end). The two must:

* reach the same final states (with whether the execution deadlocked);
* violate the same invariants (deadlock_free included);
* see the same Mazurkiewicz traces, counting steps that touch nothing as
  absent (see ``trace``);

and dpor must not run more executions than "none".

How far dpor is from one execution per trace is measured, not asserted: the
traces are the distinct trace_signature()s of the executions "none" ran. The
totals are printed (run with -s) and recorded as properties (--junitxml).
"""

from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from programs import build, show

from racecheck.scheduler import Bounds, Explorer, trace_signature

MAX_OPS = 9  # operations in a whole program, to keep "none" small
KINDS = ["read", "read", "write", "inc", "check", "read", "write", "inc", "check", "wait"]


@st.composite
def operation(draw, nvars):
    kind = draw(st.sampled_from(KINDS))  # wait_until: one draw in ten
    var = draw(st.integers(0, nvars - 1))
    local = draw(st.integers(0, 1))
    if kind == "read":
        return ("read", var, local)
    if kind == "write":
        return ("write", var, draw(st.integers(1, 2)))
    if kind == "inc":
        return ("inc", var, local)
    if kind == "check":
        return ("check", local, draw(st.integers(1, 2)))
    return ("wait", var, draw(st.integers(0, 2)))


@st.composite
def thread(draw, nvars, nmutexes, most):
    """1 to ``most`` operations; each mutex taken at most once, nested, released."""
    nlocks = draw(st.integers(0, min(nmutexes, most // 2)))
    nplain = draw(st.integers(0 if nlocks else 1, most - 2 * nlocks))
    ops = [draw(operation(nvars)) for _ in range(nplain)]
    if nlocks:
        order = draw(st.permutations(range(nmutexes)))[:nlocks]
        # Lock order[0] around ops[a:b], and order[1] (if any) around a part of that.
        a = draw(st.integers(0, nplain))
        b = draw(st.integers(a, nplain))
        inner = ops[a:b]
        if nlocks == 2:
            c = draw(st.integers(0, len(inner)))
            d = draw(st.integers(c, len(inner)))
            inner = (inner[:c] + [("lock", order[1])] + inner[c:d]
                     + [("unlock", order[1])] + inner[d:])
        ops = ops[:a] + [("lock", order[0])] + inner + [("unlock", order[0])] + ops[b:]
    return tuple(ops)


@st.composite
def programs(draw):
    nvars = draw(st.integers(1, 3))
    nmutexes = draw(st.integers(0, 2))
    nthreads = draw(st.integers(2, 4))
    budget = MAX_OPS
    threads = []
    for i in range(nthreads):
        most = min(4, budget - (nthreads - i - 1))  # leave one for each later thread
        ops = draw(thread(nvars, nmutexes, most))
        budget -= len(ops)
        threads.append(ops)
    return (nvars, nmutexes, tuple(threads))


def trace(events):
    """trace_signature() without the steps that touch nothing (a thread's
    last step can be one): they commute with everything and tell no two
    interleavings apart."""
    return trace_signature([e for e in events if e.reads or e.writes])


def explore_all(model, reduction):
    finals, signatures, traces = set(), set(), set()

    def seen(ex, violation):
        deadlocked = any(not t.finished for t in ex.threads)
        finals.add((tuple(sorted(ex.rt.snapshot().items())), deadlocked))
        signatures.add(trace_signature(ex.events))
        traces.add(trace(ex.events))

    explorer = Explorer(model, reduction, Bounds(), on_execution=seen, stop_on_violation=False)
    outcome = explorer.run()
    return outcome, set(explorer.violations), finals, signatures, traces


def compare(spec, totals=None):
    model = build(spec)
    none, none_violated, none_finals, signatures, none_traces = explore_all(model, "none")
    dpor, dpor_violated, dpor_finals, dpor_signatures, dpor_traces = explore_all(model, "dpor")
    text = show(spec)
    assert none.verdict in ("clean", "violation"), (text, none.verdict, none.error)
    assert dpor.verdict == none.verdict, (text, dpor.error)
    assert dpor_violated == none_violated, text
    assert dpor_finals == none_finals, text
    assert dpor_traces == none_traces, text
    assert dpor.stats.executions <= none.stats.executions, text

    if totals is not None:
        totals["programs"] += 1
        totals["none_executions"] += none.stats.executions
        totals["traces"] += len(signatures)
        totals["traces_without_empty_steps"] += len(none_traces)
        totals["dpor_executions"] += dpor.stats.executions
        totals["dpor_distinct_traces"] += len(dpor_signatures)
        totals["dpor_sleep_blocked"] += dpor.stats.blocked
        totals["programs_with_violations"] += bool(none_violated)
        totals["programs_one_execution_per_trace"] += dpor.stats.executions == len(signatures)
        totals["programs_dpor_above_traces"] += dpor.stats.executions > len(signatures)
        totals["programs_dpor_below_traces"] += dpor.stats.executions < len(signatures)


def report(totals, record_property):
    print("\n[differential] " + ", ".join(f"{k}={v}" for k, v in totals.items()))
    for key, value in totals.items():
        record_property(key, value)


def test_dpor_agrees_with_exhaustive_search(record_property):
    totals = Counter()

    @settings(max_examples=150, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(programs())
    def agree(spec):
        compare(spec, totals)

    try:
        agree()
    finally:
        report(totals, record_property)
    assert totals["programs"] == 150


@pytest.mark.parametrize("spec", [
    # A thread left waiting: dpor must still try it before the write that
    # disabled it.
    (1, 0, ((("write", 0, 1),), (("wait", 0, 0),))),
    # T1 reads back its own 1 and fails the check, or reads T0's 2: the
    # second needs T0 between T1's two steps.
    (1, 0, ((("write", 0, 2),), (("write", 0, 1), ("read", 0, 0), ("check", 0, 1)))),
    # ABBA: a deadlock and two clean orders.
    (1, 2, ((("lock", 0), ("lock", 1), ("unlock", 1), ("unlock", 0)),
            (("lock", 1), ("lock", 0), ("unlock", 0), ("unlock", 1)))),
    # A step that touches nothing runs on into its wait only when the wait can
    # be granted: it reads x0, so T2's write is a race with it.
    (2, 0, ((("check", 0, 1), ("wait", 0, 0)),
            (("read", 0, 0), ("inc", 1, 0)),
            (("read", 0, 0), ("write", 0, 1)))),
])
def test_dpor_agrees_on_known_programs(spec):
    compare(spec)
