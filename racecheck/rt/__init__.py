"""The runtime's primitives, one module each.

Each module owns everything about its primitive: the accesses it records in
the running step's footprint (``rt.reads`` / ``rt.writes``, and its changes
when tracing), how bfs fingerprints it (``fingerprint_value``), how a trace
saves it in its initial state (``saved_form``), and how its state is shown
(``shown``: plain data, a mutex as ``{"held_by": tid}``, a reader-writer
semaphore as ``{"readers": [...], "writer": tid}``). The fingerprinter
(racecheck/fingerprint.py), the trace files (racecheck/trace.py), ``racecheck
show`` (racecheck/report.py) and the viewer call these methods and read these
structures; none of them knows the primitives by name.

* :mod:`.var` ``rt.var``, :mod:`.array` ``rt.array``, :mod:`.map` ``rt.map``,
  :mod:`.record` ``rt.record``: shared data;
* :mod:`.ghost_map` ``rt.ghost_map``: data only invariants read;
* :mod:`.thread_local` ``rt.thread_local``: what each thread keeps for itself;
* :mod:`.mutex` ``rt.mutex``, :mod:`.rwsem` ``rt.rwsem``: sleeping locks;
* :mod:`.wait_until` ``wait_until(rt, pred)``: waiting for a condition;
* :mod:`.seqcount` ``rt.seqcount``: a sequence counter (``read_seqcount_begin``
  / ``read_seqcount_retry``, ``write_seqcount_begin`` / ``write_seqcount_end``).

:mod:`.base` holds what they share: :class:`~.base.Primitive` (the methods
above, with their defaults), :class:`~.base.Request` (what a thread yields
that may leave it disabled), ``Violation``, ``ModelError``.

Adding a primitive is one module here, a subclass of ``Primitive`` (and of
``Request`` for what a thread waits on), plus its tests in
tests/test_primitives.py (its footprint, fingerprint, saved form and shown
state); a ``Runtime`` method that makes it (racecheck/runtime.py) and its name
among the kinds a trace may hold (``trace.KINDS``) if traces save it.
"""

from __future__ import annotations

from .array import Array
from .base import ACQUIRE, RELEASE, ModelError, Primitive, Request, Synthetic, Violation, bug_on, check
from .ghost_map import GhostMap
from .map import ALL_KEYS, Map
from .mutex import Mutex, _Acquire
from .record import Record
from .rwsem import RWSem, _DownRead, _DownWrite
from .seqcount import SeqCount, read_seqcount_begin, read_seqcount_retry, write_seqcount_begin, write_seqcount_end
from .thread_local import ThreadLocal
from .var import Var
from .wait_until import WaitUntil, wait_until

__all__ = [
    "ACQUIRE", "ALL_KEYS", "Array", "GhostMap", "Map", "ModelError", "Mutex", "Primitive", "RELEASE",
    "RWSem", "Record", "Request", "SeqCount", "Synthetic", "ThreadLocal", "Var", "Violation",
    "WaitUntil", "_Acquire", "_DownRead", "_DownWrite", "bug_on", "check", "read_seqcount_begin",
    "read_seqcount_retry", "wait_until", "write_seqcount_begin", "write_seqcount_end",
]
