"""``rt.var(name, value)``: one shared variable."""

from __future__ import annotations

from .base import Primitive


class Var(Primitive):
    """One shared variable: ``get`` reads it, ``set`` writes it."""

    __slots__ = ("rt", "key", "name", "value")
    kind = "var"

    def __init__(self, rt, name, value):
        self.rt = rt
        self.name = name
        self.value = value
        self.key = rt._register(self, name)

    def get(self):
        self.rt.reads.add(self.key)
        return self.value

    def set(self, value):
        rt = self.rt
        rt.writes.add(self.key)
        if rt.tracing and value != self.value:
            rt.changes.append((self.name, self.value, value))
        self.value = value

    def snapshot(self):
        return {self.name: self.value}

    def fingerprint_value(self, value):
        return value(self.value)

    def shown(self):
        return self.value

    def __repr__(self):
        return f"Var({self.name}={self.value!r})"
