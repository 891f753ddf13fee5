"""The protocol a model implements, and :class:`Program` for writing one from
plain functions.

A model has an initial state, threads and invariants (as stateright's models
have an initial state, actions and properties)::

    def init(rt):
        return SimpleNamespace(x=rt.var("x", 0))

    def incr(st):
        yield "load x"
        v = st.x.get()
        yield "store x"
        st.x.set(v + 1)

    model = Program("counter", init, [("A", incr), ("B", incr)],
                    [FinalState("no_lost_update", lambda st: st.x.value == 2,
                                "an increment was lost")])
"""

from __future__ import annotations


class Model:
    """What the scheduler explores.

    ``init(rt)`` builds the shared state on a fresh runtime and returns it;
    ``threads(state)`` returns ``[(name, generator), ...]``; ``invariants``
    lists the invariant objects to check. ``describe(state, rt)`` returns the
    state worth showing in a counterexample (default: every shared object).
    """

    name = "model"
    invariants: list = []

    def init(self, rt):  # pragma: no cover - interface
        raise NotImplementedError

    def threads(self, state):  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self, state, rt):
        return rt.snapshot()


class Program(Model):
    """A model made of an ``init`` function and one function per thread."""

    def __init__(self, name, init, threads, invariants=()):
        self.name = name
        self._init = init
        self._threads = list(threads)
        self.invariants = list(invariants)

    def init(self, rt):
        return self._init(rt)

    def threads(self, state):
        return [(name, body(state)) for name, body in self._threads]
