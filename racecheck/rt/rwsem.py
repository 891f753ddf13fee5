"""``rt.rwsem(name)``: a reader-writer semaphore (``down_read`` / ``down_write``)."""

from __future__ import annotations

from .base import ACQUIRE, RELEASE, ModelError, Primitive, Request


class RWSem(Primitive):
    """A reader-writer semaphore. ``yield s.down_read()`` waits while a
    writer holds it, ``yield s.down_write()`` while anyone does; ``up_read``
    and ``up_write`` let it go; ``downgrade_write`` turns the writer into a
    reader without letting go. Shown as ``{"readers": [tid, ...], "writer":
    tid}`` (readers sorted, writer None when there is none).

    Its footprint has a key for the writer (the semaphore's own key) and
    one per reader slot (``(key, tid)``), so that shared acquisitions and
    releases of different threads commute, as they do: a reader's
    ``down_read`` / ``up_read`` writes its own slot and reads the writer
    key (whether it may enter depends on the writer alone). Every writer
    operation writes the writer key, so it conflicts with every reader
    operation, as it must (``down_write`` waits for the readers to leave;
    ``up_write`` lets them in): the writer key stands for "every slot" as a
    map's key set does. A look that finds the write side taken by readers
    reads their slots, so that it conflicts with the down_read that made it
    fail (see ``_DownWrite.footprint``). Only the writer's operations are
    exclusive acquires and releases; ``holders()`` is sorted, so that the
    order readers came in shows nowhere."""

    __slots__ = ("rt", "key", "name", "readers", "writer")
    kind = "rwsem"

    def __init__(self, rt, name):
        self.rt = rt
        self.name = name
        self.readers = []
        self.writer = None
        self.key = rt._register(self, name)

    def down_read(self, label=None):
        return self.rt.made(_DownRead(self, label or f"down_read({self.name})", self.rt.thread))

    def down_write(self, label=None):
        return self.rt.made(_DownWrite(self, label or f"down_write({self.name})"))

    def up_read(self):
        rt = self.rt
        if rt.thread not in self.readers:
            raise ModelError(f"up_read({self.name}) by a thread that does not hold it")
        rt.reads.add(self.key)
        rt.writes.add((self.key, rt.thread))
        old = self.shown() if rt.tracing else None
        self.readers.remove(rt.thread)
        rt.lock_map_release(self.name)
        if rt.tracing:
            rt.changes.append((self.name, old, self.shown()))

    def up_write(self):
        rt = self.rt
        if self.writer != rt.thread:
            raise ModelError(f"up_write({self.name}) by a thread that does not hold it")
        rt.writes.add(self.key)
        rt.exclusive.append((RELEASE, self.key))
        rt.lock_map_release(self.name)
        old = self.shown() if rt.tracing else None
        self.writer = None
        if rt.tracing:
            rt.changes.append((self.name, old, self.shown()))

    def downgrade_write(self):
        """downgrade_write(): the writer holds it shared from here on, with no
        moment in between where another writer could take it (readers may
        now enter). The exclusive hold ends, so it is a release for the
        reduction; lockdep sees the lock held throughout."""
        rt = self.rt
        if self.writer != rt.thread:
            raise ModelError(f"downgrade_write({self.name}) by a thread that does not hold it for writing")
        rt.writes.add(self.key)
        rt.writes.add((self.key, rt.thread))
        rt.exclusive.append((RELEASE, self.key))
        old = self.shown() if rt.tracing else None
        self.writer = None
        self.readers.append(rt.thread)
        if rt.tracing:
            rt.changes.append((self.name, old, self.shown()))

    def holders(self):
        return sorted(self.readers) + ([] if self.writer is None else [self.writer])

    def snapshot(self):
        return {self.name: (tuple(sorted(self.readers)), self.writer)}

    def shown(self):
        return {"readers": sorted(self.readers), "writer": self.writer}


class _DownRead(Request):
    __slots__ = ("sem", "label", "tid")

    def __init__(self, sem, label, tid):
        self.sem = sem
        self.label = label
        self.tid = tid  # the thread that asks: whose slot the step writes

    def enabled(self):
        return self.sem.writer is None

    def grant(self, rt, tid):
        sem = self.sem
        rt.reads.add(sem.key)
        rt.writes.add((sem.key, tid))
        rt.lock_map_acquire(sem.name, self.label)
        old = sem.shown() if rt.tracing else None
        sem.readers.append(tid)
        if rt.tracing:
            rt.changes.append((sem.name, old, sem.shown()))

    def describe(self):
        return f"waiting to read {self.sem.name} (written by thread {self.sem.writer})"

    def footprint(self, rt):
        return {self.sem.key}, {(self.sem.key, self.tid)}

    def lock_key(self):
        return self.sem.key

    def waits_for(self):
        return self.sem


class _DownWrite(Request):
    __slots__ = ("sem", "label")

    def __init__(self, sem, label):
        self.sem = sem
        self.label = label

    def enabled(self):
        return self.sem.writer is None and not self.sem.readers

    def grant(self, rt, tid):
        sem = self.sem
        rt.writes.add(sem.key)
        rt.exclusive.append((ACQUIRE, sem.key))
        rt.lock_map_acquire(sem.name, self.label)
        old = sem.shown() if rt.tracing else None
        sem.writer = tid
        if rt.tracing:
            rt.changes.append((sem.name, old, sem.shown()))

    def describe(self):
        return f"waiting to write {self.sem.name} (held by {self.sem.holders()})"

    def footprint(self, rt):
        """It reads every reader slot: the ones taken keep it waiting. A
        step that looks and finds it held (execution's probe) must conflict
        with each reader's down_read and up_read, not only with the writer
        key they read, or another reader's down_read would seem to commute
        with the look it made fail."""
        sem = self.sem
        return {(sem.key, t) for t in sem.readers}, {sem.key}

    def lock_key(self):
        return self.sem.key

    def exclusive(self):
        return ((ACQUIRE, self.sem.key),)

    def waits_for(self):
        return self.sem
