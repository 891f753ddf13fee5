"""``rt.ghost_map(name)``: a dictionary that models write and only invariants read."""

from __future__ import annotations

from .base import Primitive


class GhostMap(dict, Primitive):
    """A dictionary that models write and only invariants read (I/O in
    flight, COW copies). Writes are recorded (one key: the whole map), so
    that the reduction orders the steps an invariant can tell apart; reads
    are not. Traces leave it out: steps do not record its changes."""

    kind = None

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

    def shown(self):
        return dict(sorted(self.items(), key=repr))
