"""``rt.seqcount(name)``: a sequence counter (include/linux/seqlock.h's ``seqcount_t``).

A writer makes the count odd on entering its section and even again on
leaving it; a reader samples an even count before it reads and checks after
that the count has not moved, else it reads again. Writers must be kept
apart by a lock of their own, as in the kernel (the count does not check it).

Every operation is an access to one object, the sequence: the readers'
operations read it, the writers' read and write it (``s->sequence++``).

``read_seqcount_begin`` spins while the count is odd, as
``__read_seqcount_begin()`` does (``cpu_relax(); goto repeat``): each look at
the count is its own step, so it is a generator to run with ``yield from``::

    seq = yield from read_seqcount_begin(s)
    ...
    yield "read_seqcount_retry(&s, seq)"
    if read_seqcount_retry(s, seq):
        ...
"""

from __future__ import annotations

from .base import Primitive


class SeqCount(Primitive):
    """A ``seqcount_t``: the sequence, starting at ``value`` (0)."""

    __slots__ = ("rt", "key", "name", "sequence")
    kind = "seqcount"

    def __init__(self, rt, name, value=0):
        self.rt = rt
        self.name = name
        self.sequence = value
        self.key = rt._register(self, name)

    @property
    def value(self):
        """The count, read without a footprint (as a var's ``value``): for
        invariants and final-state checks, never for threads."""
        return self.sequence

    @value.setter
    def value(self, count):
        self.sequence = count

    def _read(self):
        self.rt.reads.add(self.key)
        return self.sequence

    def read_begin(self, label=None):
        """``read_seqcount_begin()``: ``ret = ACCESS_ONCE(s->sequence)``, one
        step each time, again while it is odd; returns it."""
        label = label or f"read_seqcount_begin(&{self.name}): ret = ACCESS_ONCE(s->sequence)"
        while True:
            yield label
            ret = self._read()
            if not ret & 1:
                return ret
            # if (unlikely(ret & 1)) { cpu_relax(); goto repeat; }

    def read_retry(self, start):
        """``read_seqcount_retry()``: whether the count moved since ``start``
        (a writer ran meanwhile: read again). Reads the sequence, in the
        running step."""
        return self._read() != start

    def _bump(self):
        rt = self.rt
        old = self._read()
        rt.writes.add(self.key)
        if rt.tracing:
            rt.changes.append((self.name, old, old + 1))
        self.sequence = old + 1

    def write_begin(self):
        """``write_seqcount_begin()``: ``s->sequence++`` (odd: a writer is inside)."""
        self._bump()

    def write_end(self):
        """``write_seqcount_end()``: ``s->sequence++`` (even again)."""
        self._bump()

    def snapshot(self):
        return {self.name: self.sequence}

    def fingerprint_value(self, value):
        return value(self.sequence)

    def shown(self):
        return self.sequence


# The kernel's names, taking the seqcount as their first argument.

def read_seqcount_begin(s, label=None):
    """``seq = yield from read_seqcount_begin(s)``: see :meth:`SeqCount.read_begin`."""
    return s.read_begin(label)


def read_seqcount_retry(s, start):
    return s.read_retry(start)


def write_seqcount_begin(s):
    s.write_begin()


def write_seqcount_end(s):
    s.write_end()
