"""What a step does, learned once and reused: the transition cache of bfs.

A thread's step is a deterministic function of where the thread is (its
generator stack: its fingerprint) and of the values of the runtime objects
the step touches. Run it once from thread state ``t`` with the objects it
read or wrote holding values ``V``, and every later state where the same
thread is at ``t`` and those objects hold ``V`` has the same successor: the
same objects written with the same values, the same history entries, the
thread at the same new place. bfs then computes that successor from its
parent's fingerprint, running nothing; only a step not seen before with those
values runs, on a live execution (the one kept with a queued state, or a
replay of its schedule). Two more things are learned the same way: whether a
waiting thread's request can be taken (it depends on the objects the
request's footprint names) and what the step and return checks say (they read
the objects their ``watches()`` names, and the history).

A state is a tuple of small integers, each piece of its fingerprint
(fingerprint.py) interned once: ``(shared, history, threads, held, parts,
added)``, where ``shared`` has one id per runtime object, ``history`` names
the sequence of history entries, ``threads`` one id per thread, ``held`` one
id per thread for the locks lock_order's log has it hold, ``parts`` the
contents of the plain objects of the model state, ``added`` how many history
entries the last step added (when ``on_return`` checks run). Interning is
exact (a dict of whole fingerprints), so two states are equal exactly when
their fingerprints are.

This rests on the rules dpor and the fingerprints already rest on: every
change to shared state goes through a runtime object, which records it; a
model reads a runtime object only through it (ghost maps are written by
models, read by checks alone); a thread changes only when it steps; checks
read no more than their ``watches()`` and the history. A written object
counts as read: its new value may depend on the old one (one element of an
array set, a reader count raised). The bfs tests check the cache against
running every step (``BreadthFirst(cache=False)``, and ``verify=True``,
which recomputes every successor from a live execution).
"""

from __future__ import annotations

from operator import itemgetter

from .fingerprint import FingerprintError
from .runtime import Request

RUNNABLE, WAITING, FINISHED = "runnable", "waiting", "finished"
UNKNOWN = object()  # a check verdict not learned yet


class Step:
    """What one step did to a state (see :meth:`Transitions.apply`)."""

    __slots__ = ("thread", "changes", "entries", "held", "parts", "added", "violation")

    def __init__(self, thread, changes, entries, held, parts, added, violation):
        self.thread = thread  # the thread's new id
        self.changes = changes  # ((object index, new value id), ...)
        self.entries = entries  # ids of the history entries it added
        self.held = held  # id of the locks the thread holds after it
        self.parts = parts  # id of the model state's plain parts after it
        self.added = added
        self.violation = violation  # (invariant, message) the model's own code raised, or None


def _index(key):
    return key[0] if key.__class__ is tuple else key


def _getter(indices):
    """A function giving the ids at ``indices`` of a shared tuple (None: none)."""
    return itemgetter(*indices) if indices else None


class Transitions:
    """The interned pieces of states and what has been learned about steps."""

    def __init__(self, execution):
        self.returns_checked = bool(execution._return_checks)
        self.values = {}  # object value fingerprint -> id
        self.threads = {}  # thread fingerprint -> id
        self.kinds = {}  # thread id -> RUNNABLE | WAITING | FINISHED
        self.entries = {}  # history entry fingerprint -> id
        self.histories = {}  # (history id, entry id) -> history id (0: no entries)
        self.links = {0: None}  # history id -> (history id before its last entry, that entry's id)
        self.returns = set()  # ids of the entries that are returns
        self.helds = {}  # tuple of lock names -> id
        self.parts = {}  # fingerprint of the model state's plain parts -> id
        self.steps = {}  # (tid, thread id, held id, parts id) -> [(getter, ids, Step)]
        self.waits = {}  # (tid, thread id) -> [(getter, ids, enabled)]
        self.verdicts = {}  # check key -> (invariant, message) or None
        self.checked = bool(execution._step_checks or execution._return_checks)
        self.end_checked = bool(execution._end_checks)
        # Whether the verdicts depend on the whole history, or on the entries
        # the last step added alone (Invariant.reads_history).
        self._after_history = any(i.reads_history for i in execution._step_checks)
        self._return_history = any(i.reads_history for i in execution._return_checks)
        self._watch_all = execution._watch_all
        self._watched = _getter(sorted(k for k in execution._watched if k != execution.rt.HISTORY))

    # -- interning ----------------------------------------------------------------------

    def _fresh(self, table, key):
        """The id of ``key``, new in ``table``: the next number (history 0
        is the empty one). bfs on several processes gives hashes instead."""
        return len(table) + (table is self.histories)

    def _intern(self, table, fingerprint):
        i = table.get(fingerprint)
        if i is None:
            i = table[fingerprint] = self._fresh(table, fingerprint)
        return i

    def _thread(self, fpr, t):
        fp = fpr.thread(t)
        i = self.threads.get(fp)
        if i is None:
            i = self.threads[fp] = self._fresh(self.threads, fp)
            self.kinds[i] = (FINISHED if t.finished else
                             WAITING if isinstance(t.pending, Request) else RUNNABLE)
        return i

    def _held(self, fpr, tid):
        return self._intern(self.helds, fpr.locks_held(tid))

    def _entry(self, fpr, e):
        i = self._intern(self.entries, fpr.entry(e))
        if e["kind"] == "return":
            self.returns.add(i)
        return i

    def _history(self, history, entry):
        key = (history, entry)
        h = self.histories.get(key)
        if h is None:
            h = self.histories[key] = self._fresh(self.histories, key)
            self.links[h] = key
        return h

    def whole(self, ex, fpr, added=0):
        """The state a live execution is in, from scratch."""
        rt = ex.rt
        shared = tuple([self._intern(self.values, fpr.object(o)) for o in rt.objects])
        history = 0
        for e in rt.history:
            history = self._history(history, self._entry(fpr, e))
        threads = tuple([self._thread(fpr, t) for t in ex.threads])
        held = tuple([self._held(fpr, t.tid) for t in ex.threads])
        parts = self._intern(self.parts, fpr.parts())
        return (shared, history, threads, held, parts, added)

    # -- steps ----------------------------------------------------------------------------

    def step(self, tid, state):
        """What thread ``tid``'s step from ``state`` does, if learned; else None."""
        found = self.steps.get((tid, state[2][tid], state[3][tid], state[4]))
        if found is not None:
            shared = state[0]
            for getter, ids, step in found:
                if getter is None or getter(shared) == ids:
                    return step
        return None

    def learn(self, ex, fpr, tid, state, before, violation):
        """Record the step thread ``tid`` just took on ``ex`` from ``state``
        (``before``: the history's length before it; ``violation``: what the
        model's code raised). Returns its :class:`Step`."""
        rt = ex.rt
        shared = state[0]
        if len(rt.objects) != len(shared):
            raise FingerprintError("a step created a runtime object; --strategy bfs needs them all "
                                   "created in the model's init (or use --strategy dfs)",
                                   f"thread {ex.threads[tid].name}")
        event = ex.events[-1]
        written = sorted({_index(k) for k in event.writes})
        touched = sorted({_index(k) for k in event.reads}.union(written))
        changes = []
        for i in written:
            v = self._intern(self.values, fpr.object(rt.objects[i]))
            if v != shared[i]:
                changes.append((i, v))
        entries = tuple([self._entry(fpr, e) for e in rt.history[before:]])
        step = Step(self._thread(fpr, ex.threads[tid]), tuple(changes), entries,
                    self._held(fpr, tid), self._intern(self.parts, fpr.parts()),
                    len(entries) if self.returns_checked else 0,
                    None if violation is None else (violation.invariant, violation.message))
        getter = _getter(touched)
        key = (tid, state[2][tid], state[3][tid], state[4])
        self.steps.setdefault(key, []).append((getter, getter and getter(shared), step))
        return step

    def apply(self, state, tid, step):
        """The state ``step`` of thread ``tid`` leads to from ``state``."""
        shared, history, threads, held, _, _ = state
        if step.changes:
            values = list(shared)
            for i, v in step.changes:
                values[i] = v
            shared = tuple(values)
        for e in step.entries:
            history = self._history(history, e)
        threads = threads[:tid] + (step.thread,) + threads[tid + 1:]
        if held[tid] != step.held:
            held = held[:tid] + (step.held,) + held[tid + 1:]
        return (shared, history, threads, held, step.parts, step.added)

    # -- waiting threads ----------------------------------------------------------------------

    def enabled(self, tid, state):
        """Whether thread ``tid`` can step in ``state``: True, False, or None
        when its request has not been tried with these values."""
        kind = self.kinds[state[2][tid]]
        if kind is not WAITING:
            return kind is RUNNABLE
        found = self.waits.get((tid, state[2][tid]))
        if found is not None:
            shared = state[0]
            for getter, ids, enabled in found:
                if getter is None or getter(shared) == ids:
                    return enabled
        return None

    def learn_wait(self, ex, tid, state):
        """Try thread ``tid``'s request on ``ex``, live in ``state``."""
        request = ex.threads[tid].pending
        reads, writes = request.footprint(ex.rt)
        getter = _getter(sorted({_index(k) for k in reads}.union(_index(k) for k in writes)))
        enabled = request.enabled()
        self.waits.setdefault((tid, state[2][tid]), []).append(
            (getter, getter and getter(state[0]), enabled))
        return enabled

    # -- checks -----------------------------------------------------------------------------

    def _check_key(self, state):
        """What the step and return checks read of ``state``: the watched
        objects, the entries the last step added (``on_return``'s), the plain
        parts, and the whole history if a check that reads it will run."""
        shared, history, _, _, parts, added = state
        objects = shared if self._watch_all else self._watched and self._watched(shared)
        entries = []
        h = history
        for _ in range(added):
            h, e = self.links[h]
            entries.append(e)
        returned = not self.returns.isdisjoint(entries)
        whole = self._after_history or (returned and self._return_history)
        return (objects, history if whole else None, parts, tuple(entries))

    def verdict(self, state):
        """What the step and return checks say of ``state``: (invariant,
        message), None, or UNKNOWN."""
        return self.verdicts.get(self._check_key(state), UNKNOWN)

    def learn_verdict(self, state, verdict):
        """Record what the checks said of ``state``: (invariant, message) or None."""
        self.verdicts[self._check_key(state)] = verdict
