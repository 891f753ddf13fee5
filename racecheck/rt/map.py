"""``rt.map(name, items)``: a shared dictionary."""

from __future__ import annotations

from .base import Primitive

ALL_KEYS = "*"


class Map(Primitive):
    """A shared dictionary. Each key is its own object (``(map key, k)``);
    listing the keys reads the map's structure (``(map key, "*")``), which
    inserting or deleting a key writes."""

    __slots__ = ("rt", "key", "name", "items")
    kind = "map"

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
            rt.writes.add((self.key, ALL_KEYS))
        if rt.tracing and self.items.get(k, ALL_KEYS) != value:
            rt.changes.append((f"{self.name}[{k!r}]", self.items.get(k), value))
        self.items[k] = value

    def delete(self, k):
        rt = self.rt
        rt.reads.add((self.key, k))  # as in set: whether k is there is read
        rt.writes.add((self.key, k))
        if k in self.items:
            rt.writes.add((self.key, ALL_KEYS))
            if rt.tracing:
                rt.changes.append((f"{self.name}[{k!r}]", self.items[k], None))
            del self.items[k]

    def keys(self):
        self.rt.reads.add((self.key, ALL_KEYS))
        return sorted(self.items, key=repr)

    def snapshot(self):
        return {self.name: tuple(sorted(self.items.items(), key=repr))}

    def shown(self):
        return dict(sorted(self.items.items(), key=repr))

    def saved_form(self):
        """One entry per key (``pte.shared[1]``); a key set to None is gone."""
        return {"kind": "map"}, {f"{self.name}[{k!r}]": v for k, v in sorted(self.items.items(), key=repr)}
