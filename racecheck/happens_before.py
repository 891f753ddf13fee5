"""Happens-before of one execution, by vector clocks.

An execution is a list of steps, each with its ``thread``, its 1-based
number ``step`` and its footprint (``reads``, ``writes``: object names or
keys). Step ``a`` happens before step ``b`` when a chain of program order
(steps of one thread, in order) and conflicts (``a`` earlier than ``b``, of
another thread, and one of them writes what the other reads or writes) leads
from ``a`` to ``b``.

Each step gets a vector clock: for every thread, how many of its steps
happen before it or are it. Then ``a`` happens before ``b`` exactly when
``b``'s clock counts ``a``'s thread up to ``a`` at least. Traces
(racecheck/trace.py) build their happens-before edges, the race candidates
and the reversal of a racing pair on it. :class:`Growing` is the same order
for the stateless search (racecheck/scheduler.py), over its Events, kept
from one execution to the next.
"""

from __future__ import annotations


def conflict(a, b):
    """The objects on which steps ``a`` and ``b`` conflict (one writes what
    the other reads or writes), sorted."""
    wa, wb = set(a["writes"]), set(b["writes"])
    return sorted((wa & (wb | set(b["reads"]))) | (set(a["reads"]) & wb))


class HappensBefore:
    """The happens-before order of ``steps`` (dicts with ``step``,
    ``thread``, ``reads``, ``writes``; numbered 1, 2, ... in order).
    ``without``: conflict edges ``(i, j)`` left out (a racing pair to
    reverse).

    * ``clock[n]``: the vector clock of step ``n`` (thread -> count);
    * ``edges``: ``(i, j) -> objects`` for every conflicting pair of steps of
      different threads, ``i`` before ``j`` (the conflict edges the order is
      built of, with the objects they conflict on).
    """

    def __init__(self, steps, without=()):
        self.steps = list(steps)
        self.thread = {s["step"]: s["thread"] for s in self.steps}
        self.clock = {}
        self.edges = {}
        skip = set(without)
        last = {}  # thread -> its last step so far
        readers, writers = {}, {}  # object -> the steps so far that read / write it
        for b in self.steps:
            n, t = b["step"], b["thread"]
            clock = dict(self.clock[last[t]]) if t in last else {}
            earlier = set()
            for o in b["writes"]:
                earlier.update(readers.get(o, ()))
                earlier.update(writers.get(o, ()))
            for o in b["reads"]:
                earlier.update(writers.get(o, ()))
            for i in sorted(earlier):
                a = self.steps[i]
                if a["thread"] == t:
                    continue
                self.edges[a["step"], n] = conflict(a, b)
                if (a["step"], n) in skip:
                    continue
                for u, c in self.clock[a["step"]].items():
                    if clock.get(u, 0) < c:
                        clock[u] = c
            clock[t] = clock.get(t, 0) + 1
            self.clock[n] = clock
            last[t] = n
            for index_, objs in ((readers, b["reads"]), (writers, b["writes"])):
                for o in objs:
                    index_.setdefault(o, []).append(len(self.clock) - 1)

    def before(self, i, j):
        """Whether step ``i`` happens before step ``j`` (``i != j``)."""
        if i == j:
            return False
        t = self.thread[i]
        return self.clock[j].get(t, 0) >= self.clock[i][t]

    def after(self, i):
        """The steps that step ``i`` happens before."""
        return {k for k in self.clock if k > i and self.before(i, k)}

    def without(self, i, j):
        """The order with the conflict edge ``(i, j)`` left out."""
        return HappensBefore(self.steps, without={(i, j)})

    def unordered_by_others(self):
        """The conflict edges ``(i, j)`` that no other chain of steps
        orders: no step ``k`` with ``i`` before ``k`` before ``j`` (the edges
        between threads of the transitive reduction). Sorted."""
        out = []
        for i, j in sorted(self.edges):
            if not any(self.before(i, k) and self.before(k, j) for k in range(i + 1, j)):
                out.append((i, j))
        return out


class Growing:
    """The happens-before order of a stateless search's current execution
    (racecheck/scheduler.py), kept from one execution to the next: the
    steps of the prefix an execution replays keep their vector clocks, their
    conflicts and their races, and only the steps after it are added.

    Steps are the scheduler's Events (``tid``, ``reads``, ``writes``:
    sets of object keys). Per step ``j``: ``tids[j]``, its thread;
    ``pos[j]``, its number in its thread (1-based); ``clocks[j]``, its
    vector clock (a list, one count per thread); ``conflicts[j]``, the
    earlier steps it conflicts with;
    ``races[j]``, those of other threads that do not happen before its
    thread's previous step (in increasing order). ``written[key]``: the
    steps that write ``key``, in order."""

    def __init__(self, nthreads):
        self.zero = [0] * nthreads
        self.events = []
        self.tids = []
        self.pos = []
        self.clocks = []
        self.conflicts = []
        self.races = []
        self.written = {}
        self._read = {}  # key -> the steps that read it, in order
        self._previous = []  # step -> its thread's step before it, or -1
        self._last = {}  # thread -> its last step

    def __len__(self):
        return len(self.events)

    def add(self, ev):
        """Add the step ``ev`` after the others."""
        j = len(self.events)
        t = ev.tid
        previous = self._last.get(t, -1)
        prior = self.clocks[previous] if previous >= 0 else self.zero
        clock = list(prior)
        clock[t] += 1
        read, tids, pos, clocks = self._read, self.tids, self.pos, self.clocks
        written = self.written
        writes, reads = ev.writes, ev.reads
        deps = set()
        for key in writes:
            steps = written.get(key)
            if steps:
                deps.update(steps)
            steps = read.get(key)
            if steps:
                deps.update(steps)
        for key in reads:
            steps = written.get(key)
            if steps:
                deps.update(steps)
        races = []
        if deps:
            # A step that happens before the thread's previous one is no race,
            # and its clock is already in the previous one's: the races'
            # clocks are all there is to merge, in one pass.
            for i in sorted(deps):
                ti = tids[i]
                if ti != t and prior[ti] < pos[i]:
                    races.append(i)
            if len(races) == 1:
                other = clocks[races[0]]
                if other[t] >= prior[t]:
                    # The thread's previous step happens before the race's
                    # first (a thread's first step has none): that clock
                    # holds the previous one's, and the step adds itself.
                    clock = list(other)
                    clock[t] += 1
                else:
                    clock = list(map(max, clock, other))
            elif races:
                clock = list(map(max, clock, *[clocks[i] for i in races]))
        self.events.append(ev)
        tids.append(t)
        pos.append(clock[t])
        clocks.append(clock)
        self.conflicts.append(deps)
        self.races.append(races)
        self._previous.append(previous)
        self._last[t] = j
        for key in reads:
            steps = read.get(key)
            if steps is None:
                read[key] = [j]
            else:
                steps.append(j)
        for key in writes:
            steps = written.get(key)
            if steps is None:
                written[key] = [j]
            else:
                steps.append(j)

    def truncate(self, n):
        """Keep the first ``n`` steps only."""
        events = self.events
        if len(events) <= n:
            return
        read, written, last, previous = self._read, self.written, self._last, self._previous
        for j in range(len(events) - 1, n - 1, -1):  # latest first: _last goes back step by step
            ev = events[j]
            for key in ev.reads:
                read[key].pop()
            for key in ev.writes:
                written[key].pop()
            if previous[j] < 0:
                del last[ev.tid]
            else:
                last[ev.tid] = previous[j]
        del events[n:], self.tids[n:], self.pos[n:], self.clocks[n:], self.conflicts[n:], self.races[n:], previous[n:]

    def conflicts_among(self, ev, among):
        """Whether the step ``ev`` (not one of the steps here) conflicts
        with one of the steps ``among`` (a set of steps here): it writes
        what one reads or writes, or reads what one writes. (As with all of
        them as one step, found through the steps that touch ``ev``'s keys.)"""
        written, read = self.written, self._read
        for key in ev.writes:
            steps = written.get(key)
            if steps and not among.isdisjoint(steps):
                return True
            steps = read.get(key)
            if steps and not among.isdisjoint(steps):
                return True
        for key in ev.reads:
            steps = written.get(key)
            if steps and not among.isdisjoint(steps):
                return True
        return False

    def last_writer(self, key, before, among):
        """The last step that writes ``key`` among the steps before step
        ``before`` and the steps ``among`` (a set); -1 if none does."""
        for k in reversed(self.written.get(key, ())):
            if k < before or k in among:
                return k
        return -1
