"""``rt.thread_local(name)``: what each thread keeps for itself in the model's state."""

from __future__ import annotations

from .base import ModelError, Primitive


class ThreadLocal(dict, Primitive):
    """What each thread keeps for itself in the model's state, keyed by
    thread (the kernel's ``current->journal_info``). A thread reads and
    writes its own entry only, as it does its local variables: no footprint
    records it, and it conflicts with nothing. It is part of the state all
    the same (bfs fingerprints its entries, :meth:`fingerprint_items`), and
    the check for state kept outside runtime objects leaves it alone.
    Another thread's entry is out of reach: touching it is a model error.
    It is no runtime object of its own (not in ``rt.objects``): traces
    leave it out."""

    kind = None

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

    def fingerprint_items(self):
        """The entries the fingerprint of the model's plain state enters
        (thread -> value), as it enters a dict's."""
        return dict.items(self)

    def snapshot(self):
        return {}

    def shown(self):
        return {t: v for t, v in dict.items(self)}
