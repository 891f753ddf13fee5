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
``rwsem``, ``seqcount``). Each access is recorded in the current step's
footprint: the set of object keys it read and the set it wrote. Lock
operations count as writes to the lock, so any two operations on one lock
conflict, except an rwsem's shared ones: a reader writes a slot of its own
and reads the writer's key, so readers of different threads commute while
every writer operation conflicts with them (:mod:`racecheck.rt.rwsem`).
State kept in plain Python attributes is invisible to the scheduler and
makes the reduction unsound: keep all shared state in runtime objects.

The primitives themselves live in :mod:`racecheck.rt`, one module each; this
module holds the :class:`Runtime` that makes them and re-exports them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .rt import (
    ACQUIRE,
    ALL_KEYS,
    RELEASE,
    Array,
    GhostMap,
    Map,
    ModelError,
    Mutex,
    Primitive,
    Record,
    Request,
    RWSem,
    SeqCount,
    Synthetic,
    ThreadLocal,
    Var,
    Violation,
    WaitUntil,
    _Acquire,
    _DownRead,
    _DownWrite,
    bug_on,
    check,
    read_seqcount_begin,
    read_seqcount_retry,
    wait_until,
    write_seqcount_begin,
    write_seqcount_end,
)

_Synthetic = Synthetic
_ALL_KEYS = ALL_KEYS

__all__ = [
    "ACQUIRE", "RELEASE", "Acquisition", "Array", "GhostMap", "Map", "ModelError", "Mutex",
    "Primitive", "RWSem", "Record", "Request", "Runtime", "SeqCount", "ThreadLocal", "Var",
    "Violation", "WaitUntil", "bug_on", "check", "read_seqcount_begin", "read_seqcount_retry",
    "wait_until", "write_seqcount_begin", "write_seqcount_end",
    # the requests, by their old names
    "_Acquire", "_DownRead", "_DownWrite", "_Synthetic", "_ALL_KEYS",
]


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
        self.objects = []  # every shared object, in creation order (its key is its place)
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
        self.HISTORY = self._register(Synthetic(), "history")
        self.WATCHED = self._register(Synthetic(), "watched by invariants")

    # -- making shared objects -------------------------------------------

    def _register(self, obj, name):
        key = len(self.objects)
        self.names[key] = name
        self.objects.append(obj)
        return key

    def var(self, name: str, value: Any = None) -> Var:
        return Var(self, name, value)

    def array(self, name: str, values: Iterable[Any]) -> Array:
        return Array(self, name, values)

    def map(self, name: str, items: dict | None = None) -> Map:
        return Map(self, name, items or {})

    def record(self, name: str, **fields: Any) -> Record:
        return Record(self, name, fields)

    def mutex(self, name: str) -> Mutex:
        return Mutex(self, name)

    def rwsem(self, name: str) -> RWSem:
        return RWSem(self, name)

    def ghost_map(self, name: str) -> GhostMap:
        return GhostMap(self, name)

    def thread_local(self, name: str) -> ThreadLocal:
        return ThreadLocal(self, name)

    def seqcount(self, name: str, value: int = 0) -> SeqCount:
        return SeqCount(self, name, value)

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
