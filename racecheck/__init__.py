"""racecheck: a model checker for kernel concurrency races.

The API a model of your own uses (see ``examples/counter_model.py``)::

    from racecheck import Program, FinalState, Invariant, register, check, bug_on, wait_until

Everything else in the package is internal and free to move. The names are
loaded when first used, so that ``import racecheck`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# name -> the module that defines it
_API = {
    "Model": "racecheck.model",
    "Program": "racecheck.model",
    "Invariant": "racecheck.invariants",
    "FinalState": "racecheck.invariants",
    "Always": "racecheck.invariants",
    "register": "racecheck.invariants",
    "check": "racecheck.runtime",
    "bug_on": "racecheck.runtime",
    "wait_until": "racecheck.runtime",
    "Violation": "racecheck.runtime",
    "ModelError": "racecheck.runtime",
}

__all__ = sorted(_API)

if TYPE_CHECKING:  # what type checkers and editors see
    from racecheck.invariants import Always as Always
    from racecheck.invariants import FinalState as FinalState
    from racecheck.invariants import Invariant as Invariant
    from racecheck.invariants import register as register
    from racecheck.model import Model as Model
    from racecheck.model import Program as Program
    from racecheck.runtime import ModelError as ModelError
    from racecheck.runtime import Violation as Violation
    from racecheck.runtime import bug_on as bug_on
    from racecheck.runtime import check as check
    from racecheck.runtime import wait_until as wait_until


def __getattr__(name: str):
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'racecheck' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_API))
