"""Fingerprints of model states (racecheck/fingerprint.py).

Two schedules that reach the same state give one fingerprint; states that
differ anywhere (a shared value, a local variable, where a thread is paused,
how far a for loop has gone, a closure's variable, the order operations
returned in, values whose Python hashes coincide) give different ones; a
thread that spins comes back to the same fingerprint; a value that cannot be
fingerprinted is refused with the thread, function and variable named; the
state bfs pieces together from the parent state and what the step changed
(transitions.py) is the one computed from scratch, on the corpus and the
examples.
"""

import copy
import random
from pathlib import Path
from types import SimpleNamespace

import pytest

from racecheck.execution import Execution
from racecheck.fingerprint import Fingerprinter, FingerprintError, _frame_stack
from racecheck.model import Program
from racecheck.runtime import wait_until
from racecheck.scenario import load
from racecheck.strategies import BreadthFirst

ROOT = Path(__file__).resolve().parent.parent


def state_after(model, schedule):
    ex = Execution(model)
    for tid in schedule:
        ex.step(tid)
    return Fingerprinter(ex).state()


def two_writers():
    def init(rt):
        return SimpleNamespace(x=rt.var("x", 0), y=rt.var("y", 0))

    def wx(st):
        yield "x = 1"
        st.x.set(1)

    def wy(st):
        yield "y = 1"
        st.y.set(1)

    return Program("writers", init, [("A", wx), ("B", wy)])


def test_commuting_steps_reach_one_fingerprint():
    model = two_writers()
    assert state_after(model, [0, 1]) == state_after(model, [1, 0])
    assert hash(state_after(model, [0, 1])) == hash(state_after(model, [1, 0]))
    assert state_after(model, [0]) != state_after(model, [1])


def one_thread(body, init=lambda rt: SimpleNamespace(x=rt.var("x", 0))):
    return Program("one", init, [("T", body)])


def test_a_local_variable_alone_tells_states_apart():
    def body(st):
        yield "read"
        v = st.x.get()
        yield "a step that only counts"  # the same place, a different v
        v += 1
        yield "done"

    model = one_thread(body)
    ex = Execution(model)
    ex.step(0)
    before = Fingerprinter(ex).state()
    ex2 = Execution(model)
    ex2.step(0)
    ex2.threads[0].gen.gi_frame.f_locals  # (reading locals changes nothing)
    assert Fingerprinter(ex2).state() == before
    ex.step(0)
    assert Fingerprinter(ex).state() != before


def test_where_a_thread_is_paused_tells_states_apart():
    def body(st):
        yield "one"
        yield "two"  # nothing shared, nothing local differs: only the position

    model = one_thread(body)
    assert state_after(model, []) != state_after(model, [0])


def test_a_for_loop_over_equal_items_is_told_apart_by_its_iterator():
    # The loop variable is 7 each time: only the iterator on the frame's
    # stack says how many rounds are left.
    def body(st):
        for x in [7, 7, 7]:
            yield "round"
            st.x.set(x)

    model = one_thread(body)
    fps = [state_after(model, [0] * n) for n in (1, 2, 3)]
    assert len(set(fps)) == 3


def test_closure_variables_are_part_of_the_state():
    def make(k):
        def body(st):
            yield wait_until(st.rt, lambda: st.x.get() == k, f"x == {k}")  # same label text for both
        return body

    def init(rt):
        return SimpleNamespace(rt=rt, x=rt.var("x", 0))

    a = Execution(Program("a", init, [("T", make(0))]))
    b = Execution(Program("b", init, [("T", make(1))]))
    fa, fb = Fingerprinter(a).thread(a.threads[0]), Fingerprinter(b).thread(b.threads[0])
    assert fa != fb  # the predicate's k differs (the labels differ too; check the request alone)
    assert fa[0][:2] == fb[0][:2]  # the same kind of request...
    assert fa[0][2][0] != fb[0][2][0]  # ...whose predicate closes over another k


def test_the_order_operations_returned_in_is_part_of_the_state():
    def op(name):
        def body(st):
            yield "begin"
            st.rt.note("begin", op=name, args={}, seq=1)
            yield "return"
            st.rt.note("return", op=name, args={}, seq=1, result=None)
        return body

    def init(rt):
        return SimpleNamespace(rt=rt)

    model = Program("ops", init, [("A", op("a")), ("B", op("b"))])
    # Both operations begun and returned, in two orders: all else equal.
    assert state_after(model, [0, 1, 0, 1]) != state_after(model, [0, 1, 1, 0])


def test_a_spin_comes_back_to_the_same_state():
    def spinner(st):
        while True:
            yield "while (!flag)"
            if st.x.get():
                break
        yield "after"

    model = one_thread(spinner)
    assert state_after(model, [0]) == state_after(model, [0, 0]) == state_after(model, [0, 0, 0])


@pytest.mark.parametrize("a, b", [(True, 1), (-1, -2), (1.0, 1), (b"a", "a"), (2 ** 61 - 1, 0)])
def test_values_whose_python_hashes_coincide_are_told_apart(a, b):
    def init(rt):
        return SimpleNamespace(v=rt.var("v", None))

    def idle(st):
        yield "idle"

    fps = []
    for value in (a, b):
        ex = Execution(Program("v", init, [("T", idle)]))
        ex.state.v.value = value
        fps.append(Fingerprinter(ex).state())
    assert fps[0] != fps[1]
    assert hash(fps[0]) != hash(fps[1])


def test_a_cycle_among_a_threads_values_is_fingerprinted():
    def body(st):
        a = {"name": "io"}
        a["self"] = a  # an iocb that points back at its I/O
        yield "submitted"
        yield "done"

    model = one_thread(body)
    assert state_after(model, []) == state_after(model, [])


def test_a_value_racecheck_cannot_see_into_is_refused_by_name():
    class Opaque:
        pass

    def body(st):
        rng = random.Random(1)
        token = Opaque()
        yield "use them"
        st.x.set(rng.random() + len(str(token)))

    ex = Execution(one_thread(body))
    with pytest.raises(FingerprintError) as info:
        Fingerprinter(ex).state()
    msg = str(info.value)
    assert "thread T" in msg and "body()" in msg
    assert "rng" in msg and "random.Random" in msg


def test_the_frame_stack_is_read_past_cells_and_unset_locals():
    def outer(c):
        def inner():
            return c  # c is a cell shared with inner
        unset = None
        del unset  # a local slot left empty
        for x in iter([1, 2]):
            yield inner
            y = x  # noqa: F841 (set after the first yield only)

    gen = outer("C")
    next(gen)
    frame = gen.gi_frame
    stack = _frame_stack(gen, frame, frame.f_locals)
    assert len(stack) == 1 and type(stack[0]).__name__ == "list_iterator"
    next(gen)
    stack = _frame_stack(gen, frame, frame.f_locals)
    assert len(stack) == 1 and stack[0].__reduce__()[-1] == 2


def pair(a, b):
    return (a, b)


def sub():
    yield "sub"


class Exit:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def stacks(gen):
    """The value stack at each yield of ``gen``, run to its end (an
    iterator on it as the items it had left then)."""
    out = []
    for _ in gen:
        frame = gen.gi_frame
        out.append(tuple(list(copy.copy(v)) if "iterator" in type(v).__name__ else v
                         for v in _frame_stack(gen, frame, frame.f_locals)))
    return out


def test_the_frame_stack_holds_what_the_bytecode_left_there_at_each_yield():
    cm = Exit()
    free = "free"

    def body(a):
        cell = a
        yield "plain"  # nothing on the stack
        for i in range(2):  # noqa: UP028 (the range iterator)
            yield i
        r = pair(a, (yield "operand"))  # pair and a (the NULL before pair left out)
        for k in [3]:
            yield from sub()  # the list iterator, the generator yield from runs
        try:
            raise ValueError
        except ValueError:
            pass
        for j in range(1):  # noqa: UP028 (after a handled exception: 3.11, 3.12 keep a None)
            yield j
        with cm:
            yield "in with"  # __exit__
        yield (lambda: cell + free, r, k)

    got = stacks(body(7))
    assert [len(s) for s in got] == [0, 1, 1, 2, 2, 1, 1, 0]
    assert got[1:3] == [([1],), ([],)]  # what the range iterator has left
    assert got[3] == (pair, 7)
    assert got[4][0] == [] and got[4][1].gi_code is sub.__code__
    assert got[5] == ([],)
    assert got[6][0].__self__ is cm  # the bound __exit__


def test_a_not_started_or_finished_generator_holds_nothing():
    gen = sub()
    assert _frame_stack(gen, gen.gi_frame, gen.gi_frame.f_locals) == ()
    list(gen)
    assert gen.gi_frame is None


def test_an_operand_computed_before_the_yield_tells_states_apart():
    # Both end with x == 0, W finished and R paused at the same yield with
    # the same locals: only the operand R read before it (on the value stack) differs.
    def reader(st):
        yield "read x"
        r = pair(st.x.get(), (yield "pause"))
        yield f"got {r}"

    def writer(st):
        yield "x = 1"
        st.x.set(1)
        yield "x = 0"
        st.x.set(0)

    model = Program("operand", lambda rt: SimpleNamespace(x=rt.var("x", 0)),
                    [("R", reader), ("W", writer)])
    assert state_after(model, [0, 1, 1]) != state_after(model, [1, 0, 1])


def test_two_yields_on_one_line_are_two_places():
    def body(st):
        yield "one"; yield "two"

    model = one_thread(body)
    assert state_after(model, []) != state_after(model, [0])


def test_a_yield_among_a_method_calls_operands_is_refused_with_its_line():
    # obj.m(...) pushes (method, self) or (NULL, attribute) depending on what
    # obj.m is: a stack with a NULL in either place reads alike.
    def body(st):
        yield "start"
        st.log.append(st.x.get() + (yield "inside the call"))

    model = one_thread(body, init=lambda rt: SimpleNamespace(x=rt.var("x", 0), log=[]))
    ex = Execution(model)
    ex.step(0)
    with pytest.raises(FingerprintError) as info:
        Fingerprinter(ex).state()
    line = body.__code__.co_firstlineno + 2
    msg = str(info.value)
    assert "thread T" in msg and "body()" in msg and f"line {line}" in msg
    assert "method call" in msg


def test_a_yield_inside_an_except_block_is_refused_by_name():
    def body(st):
        try:
            raise KeyError("k")
        except KeyError:
            yield "handling"

    with pytest.raises(FingerprintError) as info:
        Fingerprinter(Execution(one_thread(body))).state()
    line = body.__code__.co_firstlineno + 4
    msg = str(info.value)
    assert "body()" in msg and "KeyError" in msg and f"line {line}" in msg


SMALL = ["fault_vs_truncate.yaml", "xip_io_hole_size_fixed.yaml", "buffered_short_copy.yaml",
         "unaligned_dio_zeroing.yaml"]


@pytest.mark.parametrize("name", SMALL)
def test_states_pieced_together_equal_whole_ones(name):
    sc = load(ROOT / "scenarios" / name)
    out = BreadthFirst(sc.model, sc.bounds, verify=True, stop_on_violation=False).run()
    assert out.verdict in ("clean", "violation")
    assert out.stats.distinct_states > 10


@pytest.mark.parametrize("name", ["peterson.yaml", "dekker.yaml", "peterson_swapped.yaml"])
def test_no_two_states_share_a_digest_in_the_examples(name):
    sc = load(ROOT / "examples" / name)
    hashed = BreadthFirst(sc.model, sc.bounds, stop_on_violation=False).run()
    whole = BreadthFirst(sc.model, sc.bounds, stop_on_violation=False, exact=True, verify=True).run()
    assert hashed.stats.distinct_states == whole.stats.distinct_states > 40


def test_what_a_thread_keeps_in_a_thread_local_map_is_part_of_the_state():
    # Like current->journal_info in models/journal.py: each thread reads and
    # writes only its own entry, outside runtime objects and outside its frame.
    def init(rt):
        return SimpleNamespace(rt=rt, x=rt.var("x", 0), mine=rt.thread_local("mine"))

    def body(st):
        yield "remember"
        st.mine[st.rt.thread] = st.x.get()
        yield "later"

    model = Program("mine", init, [("T", body), ("W", lambda st: (yield "x = 1") or st.x.set(1))])
    assert state_after(model, [0, 1]) != state_after(model, [1, 0])
