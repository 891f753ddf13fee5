"""The explorer on small programs whose answers are known.

Shows that a lost update, a deadlock from two locks taken in opposite orders
and a stale read are found by both reductions, and that their locked or
correctly ordered versions are clean; that minimise() gives the shortest,
least-preempting counterexample; that bounds which cut the search give
"incomplete", never "clean"; that exploration is deterministic; and that
replay() reproduces a counterexample and reports a schedule that does not fit
as a mismatch. The dpor regression tests are bugs fixed in ad23da1; the xfail
tests are engine bugs still open, each with a minimal program.
"""

from types import SimpleNamespace

import pytest
from programs import abba, counter, reader_waits_for_writer

from racecheck.invariants import Always
from racecheck.minimise import minimise
from racecheck.model import Program
from racecheck.runtime import bug_on, check, wait_until
from racecheck.scheduler import (
    Bounds,
    Counterexample,
    Explorer,
    explore,
    preemptions,
    replay,
    trace_signature,
)

REDUCTIONS = ["none", "dpor"]


def run_all(model, reduction, bounds=None):
    """Explore everything; the outcome, each finished execution's schedule,
    final state and violated invariant (or None)."""
    runs = []

    def seen(ex, violation):
        runs.append(([e.tid for e in ex.events], ex.rt.snapshot(),
                     violation.invariant if violation else None))

    out = Explorer(model, reduction, bounds, on_execution=seen, stop_on_violation=False).run()
    return out, runs


# -- known answers -------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_lost_update_is_found_and_minimised_to_four_steps(reduction):
    model = counter()
    out = explore(model, reduction)
    assert out.verdict == "violation"
    assert out.violation.invariant == "no_lost_update"
    best = minimise(model, out.violation)
    assert best.invariant == "no_lost_update"
    assert len(best.schedule) == 4
    assert best.preemptions == 1 == preemptions(model, best.schedule)
    again = replay(model, best.schedule)
    assert again.mismatch is None
    assert again.violation.invariant == "no_lost_update"
    assert [r["label"] for r in again.records].count("load x") == 2


def test_minimise_shortens_a_long_counterexample():
    model = counter(threads=3)
    out, runs = run_all(model, "none")
    assert out.verdict == "violation"
    longest = max((r for r in runs if r[2] == "no_lost_update"),
                  key=lambda r: (preemptions(model, r[0]), r[0]))
    start = Counterexample(longest[0], "no_lost_update", "", preemptions(model, longest[0]))
    assert start.preemptions >= 2
    best = minimise(model, start)
    assert best.preemptions == 1
    assert len(best.schedule) == 6  # every thread must finish for the final check
    assert replay(model, best.schedule).violation.invariant == "no_lost_update"


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_locked_counter_is_clean(reduction):
    out, runs = run_all(counter(locked=True), reduction)
    assert out.verdict == "clean"
    assert {final["x"] for _, final, _ in runs} == {2}


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_opposite_lock_order_deadlocks(reduction):
    model = abba()
    out = explore(model, reduction)
    assert out.verdict == "violation"
    assert out.violation.invariant == "deadlock_free"
    assert "AB waiting for b" in out.violation.message
    assert "BA waiting for a" in out.violation.message
    assert replay(model, out.violation.schedule).violation.invariant == "deadlock_free"


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_reader_waiting_for_writer_is_clean(reduction):
    out, runs = run_all(reader_waits_for_writer(), reduction)
    assert out.verdict == "clean"
    assert runs and all(v is None for _, _, v in runs)
    assert all(final["seen"] == 42 for _, final, _ in runs)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_stale_read_without_the_wait_is_found(reduction):
    def init(rt):
        return SimpleNamespace(data=rt.var("data", 0), ready=rt.var("ready", 0))

    def writer(st):
        yield "write data"
        st.data.set(42)
        yield "publish"
        st.ready.set(1)

    def reader(st):
        yield "poll"
        if st.ready.get():
            yield "read data"
            check(st.data.get() == 42, "ready but stale")

    def reordering_writer(st):
        yield "publish"
        st.ready.set(1)
        yield "write data"
        st.data.set(42)

    good = Program("ordered", init, [("reader", reader), ("writer", writer)])
    bad = Program("reordered", init, [("reader", reader), ("writer", reordering_writer)])
    assert explore(good, reduction).verdict == "clean"
    out = explore(bad, reduction)
    assert out.verdict == "violation"
    assert out.violation.message == "ready but stale"


def test_dpor_runs_one_execution_for_independent_threads():
    def init(rt):
        return SimpleNamespace(x=[rt.var(f"x{i}", 0) for i in range(3)])

    def writer(i):
        def body(st):
            yield "first"
            st.x[i].set(1)
            yield "second"
            st.x[i].set(2)
        return body

    model = Program("independent", init, [(f"T{i}", writer(i)) for i in range(3)])
    none, runs = run_all(model, "none")
    assert none.stats.executions == 90  # 6! / (2! 2! 2!)
    assert len({trace_signature_of(model, s) for s, _, _ in runs}) == 1
    dpor = explore(model, "dpor")
    assert dpor.verdict == "clean"
    assert dpor.stats.executions == 1


def trace_signature_of(model, schedule):
    return trace_signature(replay(model, schedule).execution.events)


# -- bounds -----------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_max_executions_cut_is_incomplete(reduction):
    model = counter(locked=True)
    assert explore(model, reduction).stats.executions == 2
    out = explore(model, reduction, Bounds(max_executions=1))
    assert out.verdict == "incomplete"
    assert "max-executions 1" in out.reason
    assert out.stats.executions == 1


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_preemption_bound_that_cuts_is_incomplete(reduction):
    out = explore(counter(), reduction, Bounds(max_preemptions=0))
    assert out.verdict == "incomplete"  # the lost update needs a preemption
    assert out.stats.pruned > 0
    assert explore(counter(), reduction, Bounds(max_preemptions=1)).verdict == "violation"


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_preemption_bound_never_hit_is_clean(reduction):
    # The lock holder runs until it unlocks and finishes, so no schedule preempts.
    out = explore(counter(locked=True), reduction, Bounds(max_preemptions=0))
    assert out.verdict == "clean"
    assert out.stats.pruned == 0


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_depth_bound_that_cuts_is_incomplete(reduction):
    # Was "clean" after 0 executions before ad23da1.
    out = explore(counter(locked=True), reduction, Bounds(max_depth=2))
    assert out.verdict == "incomplete"
    assert out.stats.executions == 0
    assert explore(counter(locked=True), reduction, Bounds(max_depth=8)).verdict == "clean"


# -- determinism ----------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("make", [counter, abba, reader_waits_for_writer])
def test_exploration_is_deterministic(reduction, make):
    first, runs1 = run_all(make(), reduction)
    second, runs2 = run_all(make(), reduction)
    stats1, stats2 = first.stats.as_dict(), second.stats.as_dict()
    del stats1["elapsed_s"], stats2["elapsed_s"]
    assert stats1 == stats2
    assert runs1 == runs2
    assert first.verdict == second.verdict
    assert explore(make(), reduction).violation == explore(make(), reduction).violation


# -- replay -------------------------------------------------------------------------------


def test_replay_records_each_step():
    out = replay(counter(), [0, 1, 1, 0])
    assert [(r["thread"], r["label"]) for r in out.records] == [
        ("T0", "load x"), ("T1", "load x"), ("T1", "store x"), ("T0", "store x")]
    assert out.records[0]["reads"] == ["x"] and out.records[0]["writes"] == []
    assert out.records[2]["changes"] == [["x", 0, 1]]
    assert all(r["line"] and "programs.py" in r["line"] for r in out.records)
    assert out.violation.invariant == "no_lost_update"
    assert "x is 1" in out.violation.message


@pytest.mark.parametrize("model, schedule, words", [
    (counter(locked=True), [0, 1], "not enabled"),  # T1 waits for m
    (counter(), [0, 0, 0], "already finished"),
    (counter(), [2], "no thread number 2"),
    (abba(), [0, 1, 0], "not enabled"),  # deadlocked: nothing can run
])
def test_replay_of_schedule_that_does_not_fit_is_a_mismatch(model, schedule, words):
    out = replay(model, schedule)
    assert isinstance(out.mismatch, str)
    assert words in out.mismatch
    assert out.violation is None


def test_replay_that_violates_before_the_end_says_so():
    out = replay(abba(), [0, 1])  # deadlocked after two steps
    assert out.violation.invariant == "deadlock_free"
    out = replay(Program("early", lambda rt: SimpleNamespace(), [("T", failing), ("U", idle)]),
                 [0, 1])
    assert out.violation.invariant == "bug_on"
    assert "before the schedule's end" in out.mismatch


def failing(st):
    yield "fail"
    bug_on(True, "always")


def idle(st):
    yield "idle"


# -- dpor regressions (each was a bug before ad23da1) ------------------------------------


def writer_and_waiter():
    """A sets x to 1; B waits until x is 0, then sets y. Run A first and B
    waits for ever; run B first and both finish."""

    def init(rt):
        return SimpleNamespace(rt=rt, x=rt.var("x", 0), y=rt.var("y", 0))

    def a(st):
        yield "x = 1"
        st.x.set(1)

    def b(st):
        yield wait_until(st.rt, lambda: st.x.get() == 0, "x is 0")
        st.y.set(1)

    return Program("writer and waiter", init, [("A", a), ("B", b)])


def test_dpor_explores_the_waiter_before_the_write():
    model = writer_and_waiter()
    none = {tuple(sorted(final.items())) for _, final, _ in run_all(model, "none")[1]}
    dpor = {tuple(sorted(final.items())) for _, final, _ in run_all(model, "dpor")[1]}
    assert none == {(("x", 1), ("y", 0)), (("x", 1), ("y", 1))}
    assert dpor == none


def check_then_bug_on():
    """B reads back x after setting it: its own 1 fails a check(), A's 2 a
    bug_on(). Only the order B, A, B reaches the bug_on."""

    def init(rt):
        return SimpleNamespace(x=rt.var("x", 0))

    def a(st):
        yield "x = 2"
        st.x.set(2)

    def b(st):
        yield "x = 1"
        st.x.set(1)
        yield "read x"
        r = st.x.get()
        check(r != 1, "read back its own 1")
        bug_on(r == 2, "read the other thread's 2")

    return Program("check then bug_on", init, [("A", a), ("B", b)])


def test_exhaustive_search_finds_both_violations():
    out, runs = run_all(check_then_bug_on(), "none")
    assert {v for _, _, v in runs} == {"assertion", "bug_on"}
    assert ([1, 0, 1], {"x": 2}, "bug_on") in runs


def test_dpor_finds_every_violated_invariant():
    _, runs = run_all(check_then_bug_on(), "dpor")
    assert {v for _, _, v in runs} == {"assertion", "bug_on"}


def test_dpor_search_for_one_invariant_finds_it():
    out = Explorer(check_then_bug_on(), "dpor", target="bug_on").run()
    assert out.verdict == "violation"


def both_flags():
    """Two threads each raise and lower their own flag; both are up at once
    only if one is preempted while its flag is up."""

    def init(rt):
        return SimpleNamespace(x=rt.var("x", 0), y=rt.var("y", 0))

    def flip(name):
        def body(st):
            flag = getattr(st, name)
            yield "raise"
            flag.set(1)
            yield "lower"
            flag.set(0)
        return body

    return init, [("X", flip("x")), ("Y", flip("y"))]


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_always_reading_through_get_is_checked_by_both(reduction):
    init, threads = both_flags()
    inv = Always("not_both", lambda st: not (st.x.get() and st.y.get()), "both flags up")
    out = explore(Program("flags", init, threads, [inv]), reduction)
    assert out.verdict == "violation"
    assert out.violation.invariant == "not_both"


def test_dpor_checks_always_on_intermediate_states():
    # The predicate reads through .value, as racecheck's own invariants do: no
    # footprint of its own, so the reduction has to order the steps it watches.
    init, threads = both_flags()
    inv = Always("not_both", lambda st: not (st.x.value and st.y.value), "both flags up")
    model = Program("flags", init, threads, [inv])
    assert explore(model, "none").verdict == "violation"
    assert explore(model, "dpor").verdict == "violation"


# -- engine bugs ---------------------------------------------------------------------------


def fails_then_two_writers():
    """T fails a check in its only step; X and Y write their own variables."""

    def init(rt):
        return SimpleNamespace(x=rt.var("x", 0), y=rt.var("y", 0))

    def bad(st):
        yield "fail"
        check(False, "always fails")

    def writer(name):
        def body(st):
            yield f"{name} = 1"
            getattr(st, name).set(1)
        return body

    return Program("fails first", init, [("T", bad), ("X", writer("x")), ("Y", writer("y"))])


def test_every_execution_reports_its_violation():
    _, runs = run_all(fails_then_two_writers(), "none")
    assert len(runs) == 6
    assert [v for _, _, v in runs] == ["assertion"] * 6  # T's check fails in every order


def waiter_copier_setter():
    """W thinks (touching nothing), then waits until x is 0; C copies x into y;
    S looks at x, then sets it to 1. If C copies before S sets x and W thinks
    only after that, C saw 0 and W waits for ever."""

    def init(rt):
        return SimpleNamespace(rt=rt, x=rt.var("x", 0), y=rt.var("y", None))

    def waiter(st):
        yield "think"
        yield wait_until(st.rt, lambda: st.x.get() == 0, "x is 0")

    def copier(st):
        yield "copy x to y"
        st.y.set(st.x.get())

    def setter(st):
        yield "look at x"
        st.x.get()
        yield "x = 1"
        st.x.set(1)

    return Program("waiter, copier, setter", init,
                   [("W", waiter), ("C", copier), ("S", setter)])


def test_exhaustive_search_finds_the_stuck_waiter_after_a_stale_copy():
    _, runs = run_all(waiter_copier_setter(), "none")
    finals = {(final["y"], v) for _, final, v in runs}
    assert finals == {(0, None), (1, None), (0, "deadlock_free"), (1, "deadlock_free")}


def test_dpor_finds_the_stuck_waiter_after_a_stale_copy():
    _, runs = run_all(waiter_copier_setter(), "dpor")
    assert (0, "deadlock_free") in {(final["y"], v) for _, final, v in runs}


def test_a_step_that_runs_into_a_request_reads_it():
    """A step that touches nothing runs on into the request it ends at when
    the request can be granted, and stops before it otherwise: its extent
    depends on the request's state, so the step reads the predicate's
    variables. The setter's write and the waiter's first step then conflict,
    and dpor explores both orders (two traces), as none does."""

    def init(rt):
        return SimpleNamespace(rt=rt, x=rt.var("x", 0))

    def setter(st):
        yield "x = 1"
        st.x.set(1)

    def waiter(st):
        yield "think"
        yield wait_until(st.rt, lambda: st.x.get() == 1, "x is 1")

    model = Program("think then wait", init, [("S", setter), ("W", waiter)])
    _, runs = run_all(model, "none")
    assert [schedule for schedule, _, _ in runs] == [[0, 1], [1, 0, 1]]
    assert len({trace_signature_of(model, s) for s, _, _ in runs}) == 2
    dpor = explore(model, "dpor")
    assert (dpor.stats.executions, dpor.stats.blocked) == (2, 0)


def test_a_probe_finds_the_step_the_whole_sequence_gives(monkeypatch):
    """A dpor probe runs only the steps the probed step can depend on, and
    is given again what a run of the same schedule found: on random
    programs (an rwsem in half of them), each probe's answer must be the
    step a fresh execution of the whole sequence gives (or that its thread
    waits there in both)."""
    import randprog

    probe = Explorer._probe
    compared = []

    def footprint(ev):
        if ev is None or ev.__class__.__name__ == "_Waiting":
            return None
        return (type(ev).__name__, ev.tid, ev.reads, ev.writes, tuple(ev.locks), ev.blocking)

    def checked(self, i, rest, p):
        got = probe(self, i, rest, p)
        schedule = [n.chosen for n in self.stack[:i]] + [self.stack[k].chosen for k in rest]
        whole = self._fresh_probe(schedule, p, False)
        compared.append((footprint(got), footprint(whole)))
        return got

    monkeypatch.setattr(Explorer, "_probe", checked)
    for n in range(120):
        prog = randprog.nth("probes", n, 8, False, 0.5)
        Explorer(randprog.build(prog), "dpor", Bounds(), stop_on_violation=False).run()
    print(len(compared), "probes compared")
    assert len(compared) > 1000
    assert all(got == whole for got, whole in compared)
