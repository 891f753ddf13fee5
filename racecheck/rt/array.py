"""``rt.array(name, values)``: a fixed-length shared array."""

from __future__ import annotations

from .base import Primitive


class Array(Primitive):
    """A fixed-length shared array; each element is its own object (key
    ``(array key, index)``)."""

    __slots__ = ("rt", "key", "name", "values")
    kind = "array"

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

    def fingerprint_value(self, value):
        return value(self.values)

    def shown(self):
        return list(self.values)

    def saved_form(self):
        """One entry per element (``dev[3]``), and the length."""
        return ({"kind": "array", "length": len(self.values)},
                {f"{self.name}[{i}]": v for i, v in enumerate(self.values)})
