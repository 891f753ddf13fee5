"""The runtime a model runs on: shared objects that record each step's footprint,
and the blocking requests a thread yields.

A thread is a generator. The code between two ``yield``\\ s is one atomic step.
What a thread yields describes the step that follows it:

* ``yield "label"`` — an ordinary step, always enabled, named ``label``;
* ``yield mutex.lock()`` (or ``rwsem.down_read()``, ``wait_until(pred)``) — the
  step begins by taking the lock (or by finding ``pred`` true); the thread is
  disabled until it can.

Every access to shared state goes through the objects made by a
:class:`Runtime` (``var``, ``array``, ``map``, ``record``, ``mutex``,
``rwsem``). Each access is recorded in the current step's footprint: the set
of object keys it read and the set it wrote. Lock operations count as writes to
the lock, so any two operations on one lock conflict. State kept in plain
Python attributes is invisible to the scheduler and makes the reduction
unsound: keep all shared state in runtime objects.
"""

from __future__ import annotations

import itertools


ACQUIRE, RELEASE = "acquire", "release"


class Violation(Exception):
    """An invariant broke. Raised inside a step; stops the execution."""

    in_step = False  # raised by the model's own code (bug_on, check), not by a check after it
    also = ()  # other invariants the same step broke (execution.Execution.step)

    def __init__(self, invariant: str, message: str):
        super().__init__(f"{invariant}: {message}")
        self.invariant = invariant
        self.message = message


class ModelError(Exception):
    """The model itself is wrong (an exception, unlock of an unheld lock...)."""


def bug_on(condition, message="BUG_ON"):
    """The kernel's BUG_ON: a true condition is a violation of ``bug_on``."""
    if condition:
        raise Violation("bug_on", message)


def check(condition, message, invariant="assertion"):
    """An assertion in the model: a false condition is a violation."""
    if not condition:
        raise Violation(invariant, message)


class Runtime:
    """The world of one execution: the shared objects and the current footprint."""

    def __init__(self, tracing=False):
        self.tracing = tracing
        self.reads = set()
        self.writes = set()
        self.exclusive = []
        self.changes = []  # (name, old, new) per step, only when tracing
        self.thread = None  # id of the thread running the current step
        self.names = {}  # key -> printable name
        self.objects = []  # every shared object, in creation order
        self._ids = itertools.count()
        # Ghost history for invariants: operation begins and returns, in one
        # total order (clock). Not shared state: models must not read it.
        self.clock = 0
        self.history = []
        self.starting = False
        self.deferred = {}  # thread -> notes made before its first step
        # Requests made in the running step: each must be the one the
        # thread yields next (a lock() not yielded would be dropped unseen).
        self.requests = []
        # Lock dependencies for lock_order (racecheck/lockorder.py): the locks
        # each thread holds, in the order it took them, and every acquisition
        # with what its thread held then. Ghost data, like the history: models
        # never read it, and a thread's part follows from its own steps alone.
        self.step_no = 0  # 1-based number of the step running
        self.current_op = {}  # thread -> the operation it is in
        self.held = {}  # thread -> [(lock name, step, label), ...]
        self.acquisitions = []  # Acquisition, in the order they happened
        # Synthetic objects. Every operation begin and return writes HISTORY,
        # so that their order (which invariants compare) is the same in every
        # interleaving of a trace. WATCHED stands for the state that invariants
        # checked after steps or at returns look at (see Execution).
        self.HISTORY = self._register(_Synthetic(), "history")
        self.WATCHED = self._register(_Synthetic(), "watched by invariants")

    # -- making shared objects -------------------------------------------

    def _register(self, obj, name):
        key = next(self._ids)
        self.names[key] = name
        self.objects.append(obj)
        return key

    def var(self, name, value=None):
        return Var(self, name, value)

    def array(self, name, values):
        return Array(self, name, values)

    def map(self, name, items=None):
        return Map(self, name, items or {})

    def record(self, name, **fields):
        return Record(self, name, fields)

    def mutex(self, name):
        return Mutex(self, name)

    def rwsem(self, name):
        return RWSem(self, name)

    def ghost_map(self, name):
        return GhostMap(self, name)

    def thread_local(self, name):
        return ThreadLocal(self, name)

    def made(self, request):
        """Note a request made by the running step (see ``requests``)."""
        self.requests.append(request)
        return request

    # -- footprint ---------------------------------------------------------

    def begin_step(self, tid):
        self.thread = tid
        if tid is not None and not self.starting:
            self.step_no += 1
        self.reads = set()
        self.writes = set()
        self.exclusive = []  # (ACQUIRE | RELEASE, key) of exclusive locks, in order
        if self.tracing:
            self.changes = []

    def name_of(self, key):
        if isinstance(key, tuple):
            base, index = key
            return f"{self.names[base]}[{index!r}]"
        return self.names[key]

    # -- ghost history -------------------------------------------------------

    def note(self, kind, **data):
        """Record an event in the ghost history; returns its clock value.
        While threads are being started (before any step), an operation's
        begin is held back until its thread's first step: an operation begins
        when its thread first runs."""
        if self.starting:
            self.deferred.setdefault(self.thread, []).append((kind, data))
            return None
        self.clock += 1
        self.writes.add(self.HISTORY)
        if kind == "begin":
            self.current_op[self.thread] = data.get("op")
        data["kind"] = kind
        data["clock"] = self.clock
        data["thread"] = self.thread
        self.history.append(data)
        return self.clock

    # -- lock dependencies (lockdep's lock_map_acquire / lock_map_release) ---

    def lock_map_acquire(self, name, label=None, wait=False):
        """The running thread takes lock ``name`` (a mutex, a semaphore, or
        what lockdep cannot see: a journal handle, freeze protection). With
        ``wait``, it only waits for whoever holds it (``inode_dio_wait``):
        the dependency is recorded, nothing stays held."""
        tid = self.thread
        held = self.held.setdefault(tid, [])
        self.acquisitions.append(Acquisition(self.step_no, tid, self.current_op.get(tid),
                                             name, label, tuple(held), wait))
        if not wait:
            held.append((name, self.step_no, label))

    def lock_map_release(self, name):
        """The running thread lets lock ``name`` go (the last one it took of
        that name)."""
        held = self.held.get(self.thread, [])
        for i in range(len(held) - 1, -1, -1):
            if held[i][0] == name:
                del held[i]
                return

    def snapshot(self):
        """The value of every shared object, by name (for final-state checks)."""
        out = {}
        for obj in self.objects:
            out.update(obj.snapshot())
        return out


class Acquisition:
    """One lock taken (or waited for): in which step, by which thread and
    operation, with the request's label, and the locks the thread held then
    as ``(name, step, label)``."""

    __slots__ = ("step", "thread", "op", "lock", "label", "held", "wait")

    def __init__(self, step, thread, op, lock, label, held, wait):
        self.step, self.thread, self.op, self.lock = step, thread, op, lock
        self.label, self.held, self.wait = label, held, wait


class _Synthetic:
    def snapshot(self):
        return {}


class Var:
    """One shared variable."""

    __slots__ = ("rt", "key", "name", "value")

    def __init__(self, rt, name, value):
        self.rt = rt
        self.name = name
        self.value = value
        self.key = rt._register(self, name)

    def get(self):
        self.rt.reads.add(self.key)
        return self.value

    def set(self, value):
        rt = self.rt
        rt.writes.add(self.key)
        if rt.tracing and value != self.value:
            rt.changes.append((self.name, self.value, value))
        self.value = value

    def snapshot(self):
        return {self.name: self.value}

    def __repr__(self):
        return f"Var({self.name}={self.value!r})"


class Array:
    """A fixed-length shared array; each element is its own object."""

    __slots__ = ("rt", "key", "name", "values")

    def __init__(self, rt, name, values):
        self.rt = rt
        self.name = name
        self.values = list(values)
        self.key = rt._register(self, name)

    def __len__(self):
        return len(self.values)

    def get(self, index):
        self.rt.reads.add((self.key, index))
        return self.values[index]

    def set(self, index, value):
        rt = self.rt
        rt.writes.add((self.key, index))
        if rt.tracing and value != self.values[index]:
            rt.changes.append((f"{self.name}[{index}]", self.values[index], value))
        self.values[index] = value

    def snapshot(self):
        return {f"{self.name}[{i}]": v for i, v in enumerate(self.values)}


_ALL_KEYS = "*"


class Map:
    """A shared dictionary. Each key is its own object; listing the keys reads
    the map's structure, which inserting or deleting a key writes."""

    __slots__ = ("rt", "key", "name", "items")

    def __init__(self, rt, name, items):
        self.rt = rt
        self.name = name
        self.items = dict(items)
        self.key = rt._register(self, name)

    def get(self, k, default=None):
        self.rt.reads.add((self.key, k))
        return self.items.get(k, default)

    def contains(self, k):
        self.rt.reads.add((self.key, k))
        return k in self.items

    def set(self, k, value):
        rt = self.rt
        # Whether k is there decides whether the key set changes: that is
        # a read of k, so that a step whose footprint it changes is known
        # to depend on the step that added or deleted k.
        rt.reads.add((self.key, k))
        rt.writes.add((self.key, k))
        if k not in self.items:
            rt.writes.add((self.key, _ALL_KEYS))
        if rt.tracing and self.items.get(k, _ALL_KEYS) != value:
            rt.changes.append((f"{self.name}[{k!r}]", self.items.get(k), value))
        self.items[k] = value

    def delete(self, k):
        rt = self.rt
        rt.reads.add((self.key, k))  # as in set: whether k is there is read
        rt.writes.add((self.key, k))
        if k in self.items:
            rt.writes.add((self.key, _ALL_KEYS))
            if rt.tracing:
                rt.changes.append((f"{self.name}[{k!r}]", self.items[k], None))
            del self.items[k]

    def keys(self):
        self.rt.reads.add((self.key, _ALL_KEYS))
        return sorted(self.items, key=repr)

    def snapshot(self):
        return {self.name: tuple(sorted(self.items.items(), key=repr))}


class GhostMap(dict):
    """A dictionary that models write and only invariants read (I/O in
    flight, COW copies). Writes are recorded, so that the reduction orders
    the steps an invariant can tell apart; reads are not."""

    def __init__(self, rt, name):
        super().__init__()
        self.rt = rt
        self.name = name
        self.key = rt._register(self, name)

    def __setitem__(self, k, value):
        self.rt.writes.add(self.key)
        super().__setitem__(k, value)

    def __delitem__(self, k):
        self.rt.writes.add(self.key)
        super().__delitem__(k)

    def pop(self, k, *default):
        self.rt.writes.add(self.key)
        return super().pop(k, *default)

    def snapshot(self):
        return {self.name: tuple(sorted(self.items(), key=repr))}


class ThreadLocal(dict):
    """What each thread keeps for itself in the model's state, keyed by
    thread (the kernel's ``current->journal_info``). A thread reads and
    writes its own entry only, as it does its local variables: no footprint
    records it, and it conflicts with nothing. It is part of the state all
    the same (bfs fingerprints it), and the check for state kept outside
    runtime objects leaves it alone. Another thread's entry is out of reach:
    touching it is a model error."""

    def __init__(self, rt, name):
        super().__init__()
        self.rt = rt
        self.name = name

    def _own(self, k):
        if k != self.rt.thread:
            raise ModelError(f"{self.name}: thread {self.rt.thread} used thread {k}'s entry; "
                             f"a thread-local map is keyed by the running thread (rt.thread)")

    def __getitem__(self, k):
        self._own(k)
        return super().__getitem__(k)

    def get(self, k, default=None):
        self._own(k)
        return super().get(k, default)

    def __contains__(self, k):
        self._own(k)
        return super().__contains__(k)

    def __setitem__(self, k, value):
        self._own(k)
        super().__setitem__(k, value)

    def __delitem__(self, k):
        self._own(k)
        super().__delitem__(k)


class Record:
    """A named group of shared variables: ``rec.field`` is a :class:`Var`."""

    def __init__(self, rt, name, fields):
        self._name = name
        for field, value in fields.items():
            setattr(self, field, Var(rt, f"{name}.{field}", value))


# -- blocking requests ------------------------------------------------------


class Request:
    """Something a thread yields that may leave it disabled."""

    label = None

    def enabled(self) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    def grant(self, rt, tid):  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - interface
        raise NotImplementedError

    def footprint(self, rt):
        """(reads, writes) of the step that would take this request."""
        return set(), {self.lock_key()}

    def exclusive(self):
        """The exclusive lock the step taking this request acquires, as in
        an event's ``locks``; () for shared or no lock."""
        return ()

    def lock_key(self):  # pragma: no cover - interface
        raise NotImplementedError


class Mutex:
    """A sleeping lock with an owner (``mutex_lock`` / ``mutex_unlock``)."""

    __slots__ = ("rt", "key", "name", "owner")

    def __init__(self, rt, name):
        self.rt = rt
        self.name = name
        self.owner = None
        self.key = rt._register(self, name)

    def lock(self, label=None):
        return self.rt.made(_Acquire(self, label or f"mutex_lock({self.name})"))

    def unlock(self):
        rt = self.rt
        if self.owner != rt.thread:
            raise ModelError(f"mutex_unlock({self.name}) by a thread that does not hold it")
        rt.writes.add(self.key)
        rt.exclusive.append((RELEASE, self.key))
        rt.lock_map_release(self.name)
        if rt.tracing:
            rt.changes.append((self.name, _holder(self.owner), None))
        self.owner = None

    def held_by_me(self):
        self.rt.reads.add(self.key)
        return self.owner == self.rt.thread

    def holders(self):
        return [] if self.owner is None else [self.owner]

    def snapshot(self):
        return {self.name: self.owner}


def _holder(tid):
    return None if tid is None else f"held by thread {tid}"


class _Acquire(Request):
    __slots__ = ("mutex", "label")

    def __init__(self, mutex, label):
        self.mutex = mutex
        self.label = label

    def enabled(self):
        return self.mutex.owner is None

    def grant(self, rt, tid):
        m = self.mutex
        rt.writes.add(m.key)
        rt.exclusive.append((ACQUIRE, m.key))
        rt.lock_map_acquire(m.name, self.label)
        if rt.tracing:
            rt.changes.append((m.name, None, _holder(tid)))
        m.owner = tid

    def describe(self):
        return f"waiting for {self.mutex.name} (held by thread {self.mutex.owner})"

    def lock_key(self):
        return self.mutex.key

    def exclusive(self):
        return ((ACQUIRE, self.mutex.key),)


class RWSem:
    """A reader-writer semaphore (``down_read`` / ``down_write``)."""

    __slots__ = ("rt", "key", "name", "readers", "writer")

    def __init__(self, rt, name):
        self.rt = rt
        self.name = name
        self.readers = []
        self.writer = None
        self.key = rt._register(self, name)

    def down_read(self, label=None):
        return self.rt.made(_DownRead(self, label or f"down_read({self.name})"))

    def down_write(self, label=None):
        return self.rt.made(_DownWrite(self, label or f"down_write({self.name})"))

    def up_read(self):
        rt = self.rt
        if rt.thread not in self.readers:
            raise ModelError(f"up_read({self.name}) by a thread that does not hold it")
        rt.writes.add(self.key)
        self.readers.remove(rt.thread)
        rt.lock_map_release(self.name)
        if rt.tracing:
            rt.changes.append((self.name, f"+reader {rt.thread}", f"-reader {rt.thread}"))

    def up_write(self):
        rt = self.rt
        if self.writer != rt.thread:
            raise ModelError(f"up_write({self.name}) by a thread that does not hold it")
        rt.writes.add(self.key)
        rt.exclusive.append((RELEASE, self.key))
        rt.lock_map_release(self.name)
        self.writer = None
        if rt.tracing:
            rt.changes.append((self.name, _holder(rt.thread), None))

    def holders(self):
        return list(self.readers) + ([] if self.writer is None else [self.writer])

    def snapshot(self):
        return {self.name: (tuple(sorted(self.readers)), self.writer)}


class _DownRead(Request):
    __slots__ = ("sem", "label")

    def __init__(self, sem, label):
        self.sem = sem
        self.label = label

    def enabled(self):
        return self.sem.writer is None

    def grant(self, rt, tid):
        rt.writes.add(self.sem.key)
        rt.lock_map_acquire(self.sem.name, self.label)
        self.sem.readers.append(tid)
        if rt.tracing:
            rt.changes.append((self.sem.name, None, f"+reader {tid}"))

    def describe(self):
        return f"waiting to read {self.sem.name} (written by thread {self.sem.writer})"

    def lock_key(self):
        return self.sem.key


class _DownWrite(Request):
    __slots__ = ("sem", "label")

    def __init__(self, sem, label):
        self.sem = sem
        self.label = label

    def enabled(self):
        return self.sem.writer is None and not self.sem.readers

    def grant(self, rt, tid):
        rt.writes.add(self.sem.key)
        rt.exclusive.append((ACQUIRE, self.sem.key))
        rt.lock_map_acquire(self.sem.name, self.label)
        self.sem.writer = tid
        if rt.tracing:
            rt.changes.append((self.sem.name, None, _holder(tid)))

    def describe(self):
        return f"waiting to write {self.sem.name} (held by {self.sem.holders()})"

    def lock_key(self):
        return self.sem.key

    def exclusive(self):
        return ((ACQUIRE, self.sem.key),)


class WaitUntil(Request):
    """Wait until ``predicate()`` holds. The predicate reads shared objects;
    its reads belong to the step that finds it true. ``lock``: the lock
    class the wait depends on, for lock_order (``inode_dio_wait`` waits for
    whoever holds ``i_dio_count``)."""

    __slots__ = ("predicate", "label", "rt", "lock")

    def __init__(self, rt, predicate, label, lock=None):
        self.rt = rt
        self.predicate = predicate
        self.label = label
        self.lock = lock

    def enabled(self):
        rt = self.rt
        saved = rt.reads
        rt.reads = set()  # an enabledness probe is not part of any step
        try:
            return bool(self.predicate())
        finally:
            rt.reads = saved

    def grant(self, rt, tid):
        if not self.predicate():  # records the reads into this step
            raise ModelError(f"{self.label}: predicate changed between probe and grant")
        if self.lock is not None:
            rt.lock_map_acquire(self.lock, self.label, wait=True)

    def describe(self):
        return f"waiting until {self.label}"

    def footprint(self, rt):
        saved = rt.reads
        rt.reads = set()
        try:
            self.predicate()
            return rt.reads, set()
        finally:
            rt.reads = saved


def wait_until(rt, predicate, label="condition", lock=None):
    """A request: the thread is disabled until ``predicate()`` is true
    (``lock``: the lock class it waits for, see :class:`WaitUntil`)."""
    return rt.made(WaitUntil(rt, predicate, label, lock))
