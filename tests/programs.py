"""Small programs shared by the tests.

Fixed programs with known answers (a counter with and without a lock, two
locks taken in opposite orders, a reader that waits for a writer), and
:func:`build`, which turns a random program description into a Program for the
differential test.

A description is ``(nvars, nmutexes, threads)``; each thread is a tuple of
operations, each operation one step:

* ``("read", v, r)``    local ``r`` = shared ``x<v>``
* ``("write", v, c)``   ``x<v>`` = constant ``c``
* ``("inc", v, r)``     ``x<v>`` = local ``r`` + 1
* ``("lock", m)`` / ``("unlock", m)``  mutex ``m<m>``
* ``("wait", v, c)``    wait until ``x<v>`` == ``c``
* ``("check", r, c)``   ``check(local r != c)``

Every thread has two locals, both 0 at the start; every variable starts at 0.
"""

from types import SimpleNamespace

from racecheck.invariants import FinalState
from racecheck.model import Program
from racecheck.runtime import check, wait_until


def counter(locked=False, threads=2):
    """Threads that each add 1 to x by a load and a store (under m if locked)."""

    def init(rt):
        return SimpleNamespace(x=rt.var("x", 0), m=rt.mutex("m"))

    def unlocked(st):
        yield "load x"
        v = st.x.get()
        yield "store x"
        st.x.set(v + 1)

    def with_lock(st):
        yield st.m.lock()
        yield "load x"
        v = st.x.get()
        yield "store x"
        st.x.set(v + 1)
        yield "unlock"
        st.m.unlock()

    body = with_lock if locked else unlocked
    return Program("counter", init, [(f"T{i}", body) for i in range(threads)],
                   [FinalState("no_lost_update", lambda st: st.x.value == threads,
                               lambda st: f"x is {st.x.value}, not {threads}")])


def abba():
    """Two threads taking locks a and b in opposite orders."""

    def init(rt):
        return SimpleNamespace(a=rt.mutex("a"), b=rt.mutex("b"))

    def take(first, second):
        def body(st):
            yield getattr(st, first).lock()
            yield getattr(st, second).lock()
            yield "unlock"
            getattr(st, second).unlock()
            getattr(st, first).unlock()
        return body

    return Program("abba", init, [("AB", take("a", "b")), ("BA", take("b", "a"))])


def reader_waits_for_writer():
    """A reader that waits until the writer has published its data."""

    def init(rt):
        return SimpleNamespace(rt=rt, data=rt.var("data", 0), ready=rt.var("ready", 0),
                               seen=rt.var("seen", None))

    def writer(st):
        yield "write data"
        st.data.set(42)
        yield "publish"
        st.ready.set(1)

    def reader(st):
        yield wait_until(st.rt, lambda: st.ready.get() == 1, "ready is 1")
        st.seen.set(st.data.get())

    return Program("publish", init, [("reader", reader), ("writer", writer)],
                   [FinalState("reader_sees_data", lambda st: st.seen.value == 42,
                               "the reader saw stale data")])


def build(spec):
    """The Program a random description stands for (see the module docstring)."""
    nvars, nmutexes, threads = spec

    def init(rt):
        return SimpleNamespace(rt=rt, x=[rt.var(f"x{i}", 0) for i in range(nvars)],
                               m=[rt.mutex(f"m{i}") for i in range(nmutexes)])

    def make(ops):
        def body(st):
            local = [0, 0]
            for op in ops:
                kind = op[0]
                if kind == "lock":
                    yield st.m[op[1]].lock()
                elif kind == "wait":
                    var, value = st.x[op[1]], op[2]
                    yield wait_until(st.rt, lambda var=var, value=value: var.get() == value,
                                     f"x{op[1]} == {value}")
                else:
                    yield kind
                    if kind == "read":
                        local[op[2]] = st.x[op[1]].get()
                    elif kind == "write":
                        st.x[op[1]].set(op[2])
                    elif kind == "inc":
                        st.x[op[1]].set(local[op[2]] + 1)
                    elif kind == "unlock":
                        st.m[op[1]].unlock()
                    elif kind == "check":
                        check(local[op[1]] != op[2], f"r{op[1]} is {op[2]}")
                    else:
                        raise ValueError(f"unknown operation {op!r}")
        return body

    return Program("random", init, [(f"T{i}", make(ops)) for i, ops in enumerate(threads)])


def show(spec):
    """A description as readable pseudo-code, one line per thread."""
    nvars, nmutexes, threads = spec
    words = {
        "read": lambda v, r: f"r{r} = x{v}",
        "write": lambda v, c: f"x{v} = {c}",
        "inc": lambda v, r: f"x{v} = r{r} + 1",
        "lock": lambda m: f"lock m{m}",
        "unlock": lambda m: f"unlock m{m}",
        "wait": lambda v, c: f"wait x{v} == {c}",
        "check": lambda r, c: f"check r{r} != {c}",
    }
    lines = [f"{nvars} variables, {nmutexes} mutexes"]
    for i, ops in enumerate(threads):
        lines.append(f"T{i}: " + "; ".join(words[op[0]](*op[1:]) for op in ops))
    return "\n".join(lines)
