"""What the engine must never get wrong off the corpus: programs whose steps
write depending on what they read, invariants the initial state breaks,
steps that break several invariants at once, checks that raise, models
written against the rules, and steps that never yield."""

import itertools
import time
from types import SimpleNamespace

import pytest

from racecheck.execution import BadModel
from racecheck.invariants import Always, FinalState, Invariant
from racecheck.lockorder import LockOrder
from racecheck.minimise import minimise
from racecheck.model import Program
from racecheck.runtime import check
from racecheck.scheduler import Bounds, Explorer, replay, trace_signature


def run_all(model, reduction):
    """Explore to the end; (outcome, violated invariants, trace signatures)."""
    sigs = set()
    ex = Explorer(model, reduction, Bounds(),
                  on_execution=lambda e, v: sigs.add(trace_signature(e.events)),
                  stop_on_violation=False)
    out = ex.run()
    return out, set(ex.violations), sigs


# -- a compare-and-swap whose write depends on what it read ----------------------


def cas_program(order):
    """T1's compare-and-swap writes x only when it reads 2. The violation
    needs T1 to read x (no write) before T2 adds one and T0 reads the sum:
    schedule T2 T1 T1 T2 T0 T0."""

    def init(rt):
        return SimpleNamespace(x=rt.var("x", 0), y=rt.var("y", 0), r0=rt.var("r0", -1),
                               s1=rt.var("s1", -1))

    def t0(st):
        yield "r0 = x"
        st.r0.set(st.x.get())
        yield "x = 2"
        st.x.set(2)

    def t1(st):
        yield "cas(x, 2, 0)"
        if st.x.get() == 2:
            st.x.set(0)
        yield "s1 = x"
        st.s1.set(st.x.get())

    def t2(st):
        yield "y = 1"
        st.y.set(1)
        yield "x += 1"
        st.x.set(st.x.get() + 1)

    threads = [("T0", t0), ("T1", t1), ("T2", t2)]
    final = FinalState("not_x2_r1_s0",
                       lambda st: not (st.x.value == 2 and st.r0.value == 1 and st.s1.value == 0),
                       "x is 2, T0 read 1 and T1 read 0")
    return Program("cas", init, [threads[i] for i in order], [final])


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_dpor_finds_the_compare_and_swap_violation_in_every_thread_order(order):
    model = cas_program(order)
    assert Explorer(model, "dpor").run().verdict == "violation"
    none, none_violated, none_sigs = run_all(model, "none")
    dpor, dpor_violated, dpor_sigs = run_all(model, "dpor")
    assert dpor_violated == none_violated == {"not_x2_r1_s0"}
    assert dpor_sigs == none_sigs


# -- the initial state --------------------------------------------------------------


def broken_from_the_start(swap):
    """x starts at 1, which the after-step invariant forbids; both threads'
    first steps write something."""

    def init(rt):
        return SimpleNamespace(x=rt.var("x", 1), a=rt.var("a", 0), b=rt.var("b", 0))

    def ta(st):
        yield "a = 1"
        st.a.set(1)

    def tb(st):
        yield "b = 1"
        st.b.set(1)
        yield "x = 0"
        st.x.set(0)

    threads = [("A", ta), ("B", tb)]
    if swap:
        threads.reverse()
    return Program("initial", init, threads, [Always("x_is_0", lambda st: st.x.value == 0, "x is not 0")])


@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize("reduction", ["dpor", "none"])
def test_an_invariant_the_initial_state_breaks_is_reported_with_the_empty_schedule(reduction, swap):
    model = broken_from_the_start(swap)
    out = Explorer(model, reduction).run()
    assert out.verdict == "violation"
    assert out.violation.invariant == "x_is_0"
    assert out.violation.schedule == []
    assert minimise(model, out.violation).schedule == []
    again = replay(model, [])
    assert again.violation.invariant == "x_is_0" and again.mismatch is None
    assert replay(model, [0]).mismatch is not None  # a schedule past it does not fit


# -- several invariants in one step -------------------------------------------------


def check_and_state():
    """T's one step fails a check() and leaves y == 1, which an after-step
    invariant forbids; U's step sets y back."""

    def init(rt):
        return SimpleNamespace(y=rt.var("y", 0))

    def t(st):
        yield "y = 1; check"
        st.y.set(1)
        check(False, "t's own check")

    def u(st):
        yield "y = 0"
        st.y.set(0)

    return Program("two at once", init, [("T", t), ("U", u)],
                   [Always("y_is_0", lambda st: st.y.value == 0, "y is 1")])


def test_a_step_whose_check_fails_still_runs_the_after_step_checks():
    model = check_and_state()
    for reduction in ("dpor", "none"):
        out, violated, _ = run_all(model, reduction)
        assert violated == {"assertion", "y_is_0"}, reduction


def test_lock_order_sees_a_lock_taken_in_a_step_whose_check_fails():
    """An ABBA pair where the second lock of one thread is taken in a step
    that then fails a check(): the edge is still recorded."""

    def init(rt):
        return SimpleNamespace(a=rt.mutex("a"), b=rt.mutex("b"))

    def ab(st):
        yield st.a.lock()
        yield st.b.lock()
        check(False, "fails after taking b")

    def ba(st):
        yield st.b.lock()
        yield st.a.lock()
        yield "unlock"
        st.a.unlock()
        st.b.unlock()

    order = LockOrder()
    model = Program("abba", init, [("AB", ab), ("BA", ba)], [order])
    explorer = Explorer(model, "dpor", stop_on_violation=False)
    explorer.run()
    assert explorer.gathered[order].cycles() == [["a", "b"]]


# -- checks that misbehave --------------------------------------------------------


class RaisesAtEnd(Invariant):
    name = "raises_at_end"

    def at_end(self, state, execution):
        raise RuntimeError("the check itself is broken")


class SaysNumber(Invariant):
    name = "says_number"

    def at_end(self, state, execution):
        return 42


def one_thread(*invariants):
    def init(rt):
        return SimpleNamespace(x=rt.var("x", 0))

    def t(st):
        yield "x = 1"
        st.x.set(1)

    return Program("one", init, [("T", t)], list(invariants))


def test_an_at_end_check_that_raises_is_a_model_error_not_a_traceback():
    out = Explorer(one_thread(RaisesAtEnd())).run()
    assert out.verdict == "error"
    assert "RuntimeError: the check itself is broken" in out.error["exception"]


def test_a_message_that_is_not_text_is_shown_as_text():
    out = Explorer(one_thread(SaysNumber())).run()
    assert out.verdict == "violation" and out.violation.message == "42"


# -- models written against the rules ------------------------------------------------


def test_a_thread_that_is_not_a_generator_is_refused_by_name():
    def init(rt):
        return SimpleNamespace(x=rt.var("x", 0))

    def plain(st):
        st.x.set(1)

    with pytest.raises(BadModel, match="thread worker: its function returned NoneType"):
        Explorer(Program("p", init, [("worker", plain)])).run()


def test_two_threads_of_one_name_are_refused():
    def init(rt):
        return SimpleNamespace()

    def t(st):
        yield "nothing"

    with pytest.raises(BadModel, match="two threads are named 'w'"):
        Explorer(Program("p", init, [("w", t), ("w", t)])).run()


def test_a_lock_request_that_is_not_yielded_is_refused():
    def init(rt):
        return SimpleNamespace(m=rt.mutex("m"), x=rt.var("x", 0))

    def t(st):
        yield "take m"
        st.m.lock()  # forgot the yield: the lock would silently not be taken
        st.x.set(1)
        yield "done"

    with pytest.raises(BadModel, match="thread T: the request 'mutex_lock\\(m\\)' was made but not yielded"):
        Explorer(Program("p", init, [("T", t)])).run()


# -- bounds inside steps ----------------------------------------------------------------


def test_the_time_limit_stops_a_step_that_never_yields():
    def init(rt):
        return SimpleNamespace(x=rt.var("x", 0))

    def spin(st):
        yield "spin"
        while st.x.value == 0:  # nothing shared is recorded: no yield ever comes
            pass

    start = time.monotonic()
    out = Explorer(Program("p", init, [("T", spin)]), bounds=Bounds(timeout=0.3)).run()
    assert out.verdict == "incomplete" and "time limit" in out.reason
    assert time.monotonic() - start < 5


def test_merged_steps_past_the_step_bound_are_incomplete_not_a_model_error():
    def init(rt):
        return SimpleNamespace()

    def idle(st):
        while True:
            yield "touches nothing"  # merged with the next: one endless step

    out = Explorer(Program("p", init, [("T", idle)]), bounds=Bounds(max_steps=50)).run()
    assert out.verdict == "incomplete"
    assert "more than 50 steps" in out.reason


# -- minimisation --------------------------------------------------------------------


def test_a_minimised_schedule_never_passes_through_another_violation():
    """The shortest way to bug_on goes through T's check(), which fails
    first; the minimised schedule must avoid it and replay to bug_on."""

    def init(rt):
        return SimpleNamespace(x=rt.var("x", 0), y=rt.var("y", 0))

    def t(st):
        yield "x = 1"
        st.x.set(1)
        check(st.y.get() == 0, "y was set first")

    def u(st):
        yield "y = 1"
        st.y.set(1)
        yield "read x"
        if st.x.get() == 1:
            raise_bug()

    def v(st):
        yield "x = 1"
        st.x.set(1)

    def raise_bug():
        from racecheck.runtime import bug_on
        bug_on(True, "x seen as 1")

    model = Program("p", init, [("T", t), ("U", u), ("V", v)])
    out = Explorer(model, "none").run()
    assert out.verdict == "violation"
    found = Explorer(model, "none", target="bug_on", stop_on_violation=True).run().violation
    best = minimise(model, found)
    again = replay(model, best.schedule)
    assert again.violation is not None and again.violation.invariant == "bug_on"
    assert again.mismatch is None


def test_a_model_that_calls_sys_exit_in_a_step_is_a_model_error():
    import sys

    def init(rt):
        return SimpleNamespace(x=rt.var("x", 0))

    def t(st):
        yield "exit"
        sys.exit(0)

    out = Explorer(Program("p", init, [("T", t)])).run()
    assert out.verdict == "error" and "SystemExit" in out.error["exception"]


def test_a_model_against_the_rules_is_bad_input_on_the_command_line(tmp_path):
    from click.testing import CliRunner

    from racecheck.cli import main

    (tmp_path / "m.py").write_text(
        "from types import SimpleNamespace\n"
        "from racecheck.model import Program\n"
        "def init(rt):\n    return SimpleNamespace(x=rt.var('x', 0))\n"
        "def plain(st):\n    st.x.set(1)\n"
        "def build(params):\n    return Program('p', init, [('worker', plain)])\n")
    sc = tmp_path / "s.yaml"
    sc.write_text("name: s\nmodel: ./m.py\ninvariants: []\n")
    out = CliRunner().invoke(main, ["run", str(sc), "--trace-out", str(tmp_path / "t.json")])
    assert out.exit_code == 2, out.output
    assert "thread worker" in out.output and "Traceback" not in out.output


# -- shared state outside runtime objects ------------------------------------------


def plain_table_model():
    """Two threads share a plain dict: the lost update is there, but no
    footprint shows the dict, so dpor would take the steps for independent."""

    def init(rt):
        return SimpleNamespace(table={"n": 0}, done=rt.var("done", 0))

    def incr(st):
        yield "tmp = table[n]"
        tmp = st.table["n"]
        yield "table[n] = tmp + 1"
        st.table["n"] = tmp + 1

    return Program("plain", init, [("A", incr), ("B", incr)],
                   [FinalState("no_lost_update", lambda st: st.table["n"] == 2, "lost")])


@pytest.mark.parametrize("reduction", ["dpor", "none"])
def test_shared_state_in_a_plain_dict_is_refused_naming_it_and_the_step(reduction):
    # No runtime object is touched, so both of A's yields make one step.
    with pytest.raises(BadModel, match=r"thread A, step 1 \('tmp = table\[n\]'\) changed "
                                       r"state.table\['n'\], which is not a runtime object"):
        Explorer(plain_table_model(), reduction).run()


def test_a_thread_local_map_holds_each_threads_own_entry_only():
    def init(rt):
        return SimpleNamespace(rt=rt, mine=rt.thread_local("mine"))

    def own(st):
        yield "mine[me] = 1"
        st.mine[st.rt.thread] = 1

    def other(st):
        yield "read mine[0]"
        st.mine.get(0)

    assert Explorer(Program("own", init, [("A", own), ("B", own)])).run().verdict == "clean"
    out = Explorer(Program("other", init, [("A", own), ("B", other)]), "none").run()
    assert out.verdict == "error" and "thread 1 used thread 0's entry" in out.error["exception"]


def test_a_plain_write_that_only_a_later_execution_makes_is_found_at_its_end():
    """The first execution (A first) writes no plain state; the one where B
    runs first does, and is run again step by step to name the step."""

    def init(rt):
        return SimpleNamespace(x=rt.var("x", 0), seen={})

    def a(st):
        yield "if x: seen[a] = 1"
        if st.x.get():
            st.seen["a"] = 1

    def b(st):
        yield "x = 1"
        st.x.set(1)

    with pytest.raises(BadModel, match=r"thread A, step 1 .* changed state.seen\['a'\]"):
        Explorer(Program("later", init, [("A", a), ("B", b)])).run()


def test_lockgraph_on_a_model_against_the_rules_is_bad_input(tmp_path):
    from click.testing import CliRunner

    from racecheck.cli import main

    (tmp_path / "m.py").write_text(
        "from types import SimpleNamespace\n"
        "from racecheck.model import Program\n"
        "def init(rt):\n    return SimpleNamespace(t={})\n"
        "def w(st):\n    yield 'w'\n    st.t['k'] = 1\n"
        "def build(params):\n    return Program('p', init, [('worker', w)])\n")
    sc = tmp_path / "s.yaml"
    sc.write_text("name: s\nmodel: ./m.py\ninvariants: []\n")
    out = CliRunner().invoke(main, ["lockgraph", str(sc), "--output", str(tmp_path / "g")])
    assert out.exit_code == 2, out.output
    assert "state.t['k']" in out.output and "Traceback" not in out.output
