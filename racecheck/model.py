"""The protocol a model implements, and :class:`Program` for writing one from
plain functions.

A model has an initial state, threads and invariants (as stateright's models
have an initial state, actions and properties)::

    def init(rt):
        return SimpleNamespace(x=rt.var("x", 0))

    def incr(st):
        yield "load x"
        v = st.x.get()
        yield "store x"
        st.x.set(v + 1)

    model = Program("counter", init, [("A", incr), ("B", incr)],
                    [FinalState("no_lost_update", lambda st: st.x.value == 2,
                                "an increment was lost")])
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: the engine's model protocol imports nothing at run time
    from .invariants import Invariant
    from .runtime import Runtime


class Model:
    """What the scheduler explores.

    ``init(rt)`` builds the shared state on a fresh runtime and returns it;
    ``threads(state)`` returns ``[(name, generator), ...]``; ``invariants``
    lists the invariant objects to check. ``describe(state, rt)`` returns the
    state worth showing in a counterexample (default: every shared object).
    """

    name: str = "model"
    invariants: list[Invariant] = []

    def init(self, rt: Runtime) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def threads(self, state: Any) -> list[tuple[str, Generator]]:  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self, state: Any, rt: Runtime) -> dict:
        return rt.snapshot()

    def with_values(self, env, symbolic_values=True):
        """A copy whose :class:`Unknown` arguments take the values of ``env``
        (see :func:`instantiate`); a model with such arguments defines it."""
        raise TypeError(f"{type(self).__name__} has no arguments given as ranges or sets of values")


class Program(Model):
    """A model made of an ``init`` function and one function per thread."""

    def __init__(self, name: str, init: Callable[[Runtime], Any],
                 threads: Iterable[tuple[str, Callable[[Any], Generator]]],
                 invariants: Iterable[Invariant] = ()):
        self.name = name
        self._init = init
        self._threads = list(threads)
        self.invariants = list(invariants)

    def init(self, rt: Runtime) -> Any:
        return self._init(rt)

    def threads(self, state: Any) -> list[tuple[str, Generator]]:
        return [(name, body(state)) for name, body in self._threads]


def did_you_mean(word, options):
    """`` (did you mean ...?)`` for a name not among ``options`` (or the
    known ones, when they are few), for the errors of scenario files and of
    the libraries that read their keys."""
    import difflib

    close = difflib.get_close_matches(str(word), list(options), n=3, cutoff=0.5)
    if close:
        return f" (did you mean {' or '.join(close)}?)"
    return f" (known: {', '.join(sorted(options))})" if len(options) <= 12 else ""


# -- model builders ---------------------------------------------------------------------------
#
# A scenario file names its model: a builder of this registry, or a model file
# of the user's own. A library of models registers its builder when it is
# imported (racecheck/models/ registers the kernel library's). A builder is
# ``build(root, path, name, parse_values) -> Model``: ``root`` reads the
# scenario file's keys (a racecheck.scenario_file.Section: ``get``, ``has``,
# ``node``, ``section``, ``item``, ``error``, ``error_at``, ``did_you_mean``),
# ``parse_values(section, param, op, align, limit)`` reads an argument given
# as a range or a set of values (an :class:`Unknown`).

BUILDERS: dict = {}


def builder(name, *aliases):
    """Decorator: register a model builder under ``name`` (and ``aliases``)."""
    def register(fn):
        for n in (name, *aliases):
            BUILDERS[n] = fn
        return fn
    return register


# -- arguments given as ranges or sets of values ------------------------------------------------


@dataclass
class Unknown:
    """An operation argument given as a range or a set (racecheck/ranges.py);
    racecheck/symbolic.py gives it values."""

    op: str
    param: str
    values: tuple  # every value the argument may take, ascending
    spec: str  # as the scenario gave it: "range [0, 8191], align 512"
    line: int
    name: str = ""  # thread.param, set once the threads are known
    limit: int | None = None  # the largest value an argument of its kind may take


def instantiate(model, env, symbolic_values=True):
    """A copy of ``model`` whose unknown arguments take the values of ``env``
    (name -> int): as :class:`~racecheck.symbolic.SymInt` (the value and the
    parameter it stands for) or, with ``symbolic_values=False``, plain ints.
    The model says where its arguments are (``with_values``)."""
    return model.with_values(env, symbolic_values)
