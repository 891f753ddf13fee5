"""The runtime's primitives, one at a time.

Shows that each shared object records the footprint the scheduler relies on
(Var, Array, Map, Record), that mutexes exclude, that a rwsem lets readers
share and keeps a writer alone, that wait_until disables a thread until its
predicate holds, and how the explorer reports what goes wrong inside a model:
check() and bug_on() are violations; an unlock of an unheld mutex, any other
exception, or touching shared state before the first yield is an "error" with
the schedule that led to it; a thread that never stops is cut by
Bounds(max_steps) and the search is "incomplete".
"""

from types import SimpleNamespace

import pytest

from racecheck.execution import Execution
from racecheck.invariants import Always
from racecheck.model import Program
from racecheck.runtime import bug_on, check, wait_until
from racecheck.scheduler import Bounds, Explorer, explore, replay

REDUCTIONS = ["none", "dpor"]


def names(rt, keys):
    return sorted(rt.name_of(k) for k in keys)


def only_execution(model):
    """The single execution of a one-thread model."""
    runs = []
    Explorer(model, "none", on_execution=lambda ex, v: runs.append(ex)).run()
    assert len(runs) == 1
    return runs[0]


# -- footprints -----------------------------------------------------------------


def test_footprints_of_var_array_map_record():
    def init(rt):
        return SimpleNamespace(
            v=rt.var("v", 1), w=rt.var("w", 0), a=rt.array("a", [0, 1, 2]),
            m=rt.map("m", {"k": 1}), r=rt.record("r", f=1, g=2))

    def body(st):
        yield "var"
        st.w.set(st.v.get() + 1)
        yield "array"
        st.a.set(2, st.a.get(1) + 10)
        yield "map update"
        st.m.set("k", st.m.get("k") + 1)
        yield "map insert"
        st.m.set("new", 7)
        yield "map keys"
        assert st.m.keys() == ["k", "new"]
        yield "map delete"
        st.m.delete("k")
        yield "record"
        st.r.g.set(st.r.f.get() + 5)

    ex = only_execution(Program("footprints", init, [("T", body)]))
    got = [(names(ex.rt, e.reads), names(ex.rt, e.writes)) for e in ex.events]
    assert got == [
        (["v"], ["w"]),
        (["a[1]"], ["a[2]"]),
        (["m['k']"], ["m['k']"]),
        # inserting a key writes the map's structure; whether the key was
        # there, which decides that, is read
        (["m['new']"], ["m['*']", "m['new']"]),
        (["m['*']"], []),  # listing the keys reads it
        (["m['k']"], ["m['*']", "m['k']"]),
        (["r.f"], ["r.g"]),
    ]
    assert all(e.tid == 0 for e in ex.events)
    assert ex.rt.snapshot() == {"v": 1, "w": 2, "a[0]": 0, "a[1]": 1, "a[2]": 11,
                                "m": (("new", 7),), "r.f": 1, "r.g": 6}


def two_writers(init, first, second):
    return Program("two", init, [("A", first), ("B", second)])


@pytest.mark.parametrize("what, init, a, b, executions", [
    ("one var", lambda rt: rt.var("x", 0),
     lambda x: x.set(1), lambda x: x.set(2), 2),
    ("two array elements", lambda rt: rt.array("a", [0, 0]),
     lambda a: a.set(0, 1), lambda a: a.set(1, 1), 1),
    ("one array element", lambda rt: rt.array("a", [0, 0]),
     lambda a: a.set(0, 1), lambda a: a.get(0), 2),
    ("two existing map keys", lambda rt: rt.map("m", {"p": 0, "q": 0}),
     lambda m: m.set("p", 1), lambda m: m.set("q", 1), 1),
    ("two new map keys", lambda rt: rt.map("m"),
     lambda m: m.set("p", 1), lambda m: m.set("q", 1), 2),
    ("insert and lookup of another key", lambda rt: rt.map("m"),
     lambda m: m.set("p", 1), lambda m: m.get("q"), 1),
    ("insert and keys()", lambda rt: rt.map("m"),
     lambda m: m.set("p", 1), lambda m: m.keys(), 2),
    ("two record fields", lambda rt: rt.record("r", f=0, g=0),
     lambda r: r.f.set(1), lambda r: r.g.set(1), 1),
    ("two readers", lambda rt: rt.var("x", 0),
     lambda x: x.get(), lambda x: x.get(), 1),
])
def test_footprints_decide_what_dpor_reorders(what, init, a, b, executions):
    def thread(op):
        def body(obj):
            yield "op"
            op(obj)
        return body

    model = Program(what, init, [("A", thread(a)), ("B", thread(b))])
    assert explore(model, "none").stats.executions == 2
    assert explore(model, "dpor").stats.executions == executions


# -- mutex -------------------------------------------------------------------------


def mutex_program(locked=True):
    def init(rt):
        return SimpleNamespace(m=rt.mutex("m"), owner=rt.var("owner", None))

    def body(me):
        def run(st):
            if locked:
                yield st.m.lock()
            yield "enter"
            st.owner.set(me)
            yield "still mine?"
            check(st.owner.get() == me, f"{me} lost the critical section")
            st.owner.set(None)
            if locked:
                st.m.unlock()
        return run

    return Program("mutex", init, [("A", body("A")), ("B", body("B"))])


def test_mutex_holder_runs_alone():
    ex = Execution(mutex_program())
    assert ex.enabled() == [0, 1]
    ex.step(0)  # A takes m
    assert ex.state.m.owner == 0
    assert ex.enabled() == [0]
    ex.step(0)
    ex.step(0)  # A releases m and finishes
    assert ex.enabled() == [1]


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mutex_excludes(reduction):
    assert explore(mutex_program(locked=True), reduction).verdict == "clean"
    out = explore(mutex_program(locked=False), reduction)
    assert out.verdict == "violation"
    assert out.violation.invariant == "assertion"


def test_unlock_of_unheld_mutex_is_an_error():
    def init(rt):
        return SimpleNamespace(m=rt.mutex("m"), x=rt.var("x", 0))

    def body(st):
        yield "work"
        st.x.set(1)
        yield "unlock"
        st.m.unlock()

    out = explore(Program("bad unlock", init, [("T", body)]), "dpor")
    assert out.verdict == "error"
    assert out.violation is None
    assert out.error["thread"] == "T"
    assert out.error["schedule"] == [0, 0]
    assert "does not hold it" in out.error["exception"]


# -- rwsem --------------------------------------------------------------------------


def rwsem_program():
    def init(rt):
        return SimpleNamespace(sem=rt.rwsem("sem"), inside=rt.var("inside", 0))

    def reader(st):
        yield st.sem.down_read()
        st.inside.set(st.inside.get() + 1)
        yield "leave"
        st.inside.set(st.inside.get() - 1)
        st.sem.up_read()

    def writer(st):
        yield st.sem.down_write()
        check(st.inside.get() == 0, "a writer got in while readers held the rwsem")
        yield "leave"
        st.sem.up_write()

    return Program("rwsem", init, [("R0", reader), ("R1", reader), ("W", writer)])


def test_rwsem_readers_share_and_exclude_the_writer():
    ex = Execution(rwsem_program())
    ex.step(0)
    assert ex.enabled() == [0, 1]  # the writer waits, the other reader does not
    ex.step(1)
    assert ex.state.inside.value == 2
    assert ex.enabled() == [0, 1]
    ex.step(0)
    assert ex.enabled() == [1]
    ex.step(1)
    assert ex.enabled() == [2]


def test_rwsem_writer_excludes_readers():
    ex = Execution(rwsem_program())
    ex.step(2)
    assert ex.state.sem.writer == 2
    assert ex.enabled() == [2]
    ex.step(2)
    assert ex.enabled() == [0, 1]


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_rwsem_program_is_clean(reduction):
    assert explore(rwsem_program(), reduction).verdict == "clean"


def test_up_read_without_down_read_is_an_error():
    def init(rt):
        return SimpleNamespace(sem=rt.rwsem("sem"))

    def body(st):
        yield "up"
        st.sem.up_read()

    out = explore(Program("bad up_read", init, [("T", body)]), "none")
    assert out.verdict == "error"
    assert "up_read(sem)" in out.error["exception"]


# -- wait_until ------------------------------------------------------------------------


def test_wait_until_blocks_until_the_predicate_holds():
    def init(rt):
        return SimpleNamespace(rt=rt, flag=rt.var("flag", 0), seen=rt.var("seen", None))

    def waiter(st):
        yield wait_until(st.rt, lambda: st.flag.get() == 2, "flag is 2")
        st.seen.set(st.flag.get())

    def setter(st):
        yield "flag = 1"
        st.flag.set(1)
        yield "flag = 2"
        st.flag.set(2)

    ex = Execution(Program("wait", init, [("waiter", waiter), ("setter", setter)]))
    assert ex.enabled() == [1]
    ex.step(1)
    assert ex.enabled() == [1]
    assert ex.events[-1].reads == set()  # the probes are in no step's footprint
    ex.step(1)
    assert ex.enabled() == [0]
    event = ex.step(0)
    assert names(ex.rt, event.reads) == ["flag"]  # the granting step reads the predicate
    assert ex.state.seen.value == 2


def test_wait_that_never_holds_is_a_deadlock():
    def init(rt):
        return SimpleNamespace(rt=rt, flag=rt.var("flag", 0))

    def waiter(st):
        yield wait_until(st.rt, lambda: st.flag.get() == 1, "flag is 1")

    out = explore(Program("stuck", init, [("waiter", waiter)]), "dpor")
    assert out.verdict == "violation"
    assert out.violation.invariant == "deadlock_free"
    assert "waiting until flag is 1" in out.violation.message


# -- violations and errors -------------------------------------------------------------


def racy_reader(assertion):
    """B reads x; A may have set it to 0 first; the assertion looks at what B read."""

    def init(rt):
        return SimpleNamespace(x=rt.var("x", 1))

    def a(st):
        yield "x = 0"
        st.x.set(0)

    def b(st):
        yield "read x"
        assertion(st.x.get())

    return Program("racy", init, [("A", a), ("B", b)])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("assertion, invariant", [
    (lambda v: check(v == 1, "x is no longer 1"), "assertion"),
    (lambda v: bug_on(v == 0, "x is 0"), "bug_on"),
])
def test_check_and_bug_on_are_violations(reduction, assertion, invariant):
    model = racy_reader(assertion)
    out = explore(model, reduction)
    assert out.verdict == "violation"
    assert out.violation.invariant == invariant
    assert out.violation.schedule == [0, 1]
    assert replay(model, out.violation.schedule).violation.invariant == invariant


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_exception_in_model_is_an_error_not_a_violation(reduction):
    model = racy_reader(lambda v: 10 // v)
    out = explore(model, reduction)
    assert out.verdict == "error"
    assert out.violation is None
    assert out.error["thread"] == "B"
    assert out.error["exception"].startswith("ZeroDivisionError")
    assert out.error["schedule"] == [0, 1]
    assert "ZeroDivisionError" in out.error["traceback"]
    again = replay(model, out.error["schedule"])
    assert again.violation is None
    assert again.error["exception"].startswith("ZeroDivisionError")


def test_shared_state_before_the_first_yield_is_an_error():
    def init(rt):
        return SimpleNamespace(x=rt.var("x", 0))

    def body(st):
        st.x.set(1)
        yield "too late"

    out = explore(Program("early", init, [("T", body)]), "dpor")
    assert out.verdict == "error"
    assert "before its first yield" in out.error["exception"]


def test_always_is_checked_after_every_step():
    def init(rt):
        return SimpleNamespace(x=rt.var("x", 0))

    def body(st):
        yield "x = 1"
        st.x.set(1)
        yield "x = 0"
        st.x.set(0)

    model = Program("blip", init, [("T", body)],
                    [Always("x_stays_0", lambda st: st.x.value == 0, "x became 1")])
    out = explore(model, "none")
    assert out.verdict == "violation"
    assert out.violation.invariant == "x_stays_0"
    assert out.violation.schedule == [0]


# -- step bound -------------------------------------------------------------------------


def spinner():
    def init(rt):
        return SimpleNamespace(x=rt.var("x", 0))

    def body(st):
        while True:
            yield "spin"
            st.x.set(st.x.get() + 1)

    return Program("spin", init, [("spinner", body)])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_endless_thread_is_cut_by_max_steps(reduction):
    out = explore(spinner(), reduction, Bounds(max_steps=50))
    assert out.verdict == "incomplete"
    assert "spinner ran more than 50 steps" in out.reason
    assert out.stats.executions == 0
