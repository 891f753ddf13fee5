"""``rt.mutex(name)``: a sleeping lock with an owner (``mutex_lock`` / ``mutex_unlock``)."""

from __future__ import annotations

from .base import ACQUIRE, RELEASE, ModelError, Primitive, Request


class Mutex(Primitive):
    """A sleeping lock with an owner. ``yield m.lock()`` takes it (the thread
    is disabled while another holds it), ``m.unlock()`` lets it go. Both
    write the lock's key, so any two operations on one lock conflict; they
    are noted as exclusive acquire and release (the scheduler's
    happens-before) and in lock_order's log. Shown as ``{"held_by": tid}``
    (None when free)."""

    __slots__ = ("rt", "key", "name", "owner")
    kind = "mutex"

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
            rt.changes.append((self.name, self.shown(), {"held_by": None}))
        self.owner = None

    def held_by_me(self):
        self.rt.reads.add(self.key)
        return self.owner == self.rt.thread

    def holders(self):
        return [] if self.owner is None else [self.owner]

    def snapshot(self):
        return {self.name: self.owner}

    def fingerprint_value(self, value):
        return value(self.owner)

    def shown(self):
        return {"held_by": self.owner}


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
            rt.changes.append((m.name, m.shown(), {"held_by": tid}))
        m.owner = tid

    def describe(self):
        return f"waiting for {self.mutex.name} (held by thread {self.mutex.owner})"

    def lock_key(self):
        return self.mutex.key

    def exclusive(self):
        return ((ACQUIRE, self.mutex.key),)

    def waits_for(self):
        return self.mutex
