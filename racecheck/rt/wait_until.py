"""``yield wait_until(rt, predicate)``: a thread disabled until a condition holds."""

from __future__ import annotations

from collections.abc import Callable

from .base import ModelError, Request


class WaitUntil(Request):
    """Wait until ``predicate()`` holds. The predicate reads shared objects;
    its reads belong to the step that finds it true (its footprint: those
    reads, no writes). ``lock``: the lock class the wait depends on, for
    lock_order (``inode_dio_wait`` waits for whoever holds ``i_dio_count``).
    It is a request, not an object: it has no state of its own to
    fingerprint, save or show (bfs fingerprints a pending one by its fields)."""

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


def wait_until(rt, predicate: Callable[[], object], label: str = "condition",
               lock: str | None = None) -> WaitUntil:
    """A request: the thread is disabled until ``predicate()`` is true
    (``lock``: the lock class it waits for, see :class:`WaitUntil`)."""
    return rt.made(WaitUntil(rt, predicate, label, lock))
