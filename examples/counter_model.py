"""A model of your own: two threads bump a shared counter.

Copy this file to start a model of a kernel path that racecheck does not
ship. A scenario points at it with ``model: ./counter_model.py``; racecheck
calls ``build(params)`` with the scenario's ``params`` mapping.

The rules a model follows:

* all shared state lives in runtime objects (``rt.var``, ``rt.array``,
  ``rt.map``, ``rt.record``, ``rt.mutex``, ``rt.rwsem``): racecheck sees what
  each step touches only through them;
* each step starts with a ``yield``: ``yield "label"`` for an ordinary step,
  ``yield lock.lock()`` (or ``wait_until(...)``) for one that may have to wait;
  the code up to the next ``yield`` runs atomically;
* invariants read objects through ``.value`` / ``.values`` / ``.items``, so that
  checking does not count as an access.
"""

from types import SimpleNamespace

from racecheck import Invariant, Program, register


def init(rt):
    return SimpleNamespace(counter=rt.var("counter", 0), lock=rt.mutex("counter_lock"))


def increment(st):
    """counter++ as two steps: the load and the store can be split."""
    yield "tmp = counter"
    tmp = st.counter.get()
    yield "counter = tmp + 1"
    st.counter.set(tmp + 1)


def locked_increment(st):
    yield st.lock.lock()
    tmp = st.counter.get()
    yield "counter = tmp + 1; unlock"
    st.counter.set(tmp + 1)
    st.lock.unlock()


@register
class NoLostUpdate(Invariant):
    """Selectable by name from the scenario's ``invariants`` list."""

    name = "no_lost_update"
    description = "at the end, the counter counts every increment"

    def __init__(self, expected=2):
        self.expected = expected

    def at_end(self, st, execution):
        if st.counter.value != len(execution.threads):
            return f"counter is {st.counter.value} after {len(execution.threads)} increments"
        return None


def build(params):
    body = locked_increment if params.get("locked") else increment
    threads = [(f"t{i}", body) for i in range(params.get("threads", 2))]
    return Program("counter", init, threads)
