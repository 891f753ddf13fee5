"""``rt.record(name, **fields)``: a named group of shared variables."""

from __future__ import annotations

from .base import Primitive
from .var import Var


class Record(Primitive):
    """A named group of shared variables: ``rec.field`` is a :class:`Var`
    named ``name.field``. The record itself is no runtime object (its
    variables are): it has no footprint, fingerprint or saved form of its own."""

    def __init__(self, rt, name, fields):
        self._name = name
        for field, value in fields.items():
            setattr(self, field, Var(rt, f"{name}.{field}", value))

    def fields(self):
        """The record's variables, by field name."""
        return {k: v for k, v in vars(self).items() if isinstance(v, Var)}

    def snapshot(self):
        out = {}
        for v in self.fields().values():
            out.update(v.snapshot())
        return out

    def shown(self):
        return {k: v.shown() for k, v in self.fields().items()}

    def saved_form(self):
        return None  # its variables are saved, each as a var
