"""The minimiser: the counterexample with the fewest preemptions, then the
fewest steps, for the same invariant.

It runs after a search has found a violation (runner.py) and searches again,
under a preemption bound that grows one at a time from zero, as CHESS does.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .scheduler import Explorer, preemptions
from .search import Bounds, Counterexample

if TYPE_CHECKING:  # annotations only
    from .model import Model


def minimise(model: Model, cex: Counterexample, bounds: Bounds | None = None,
             budget_executions: int = 20_000, budget_s: float = 20.0) -> Counterexample:
    """The counterexample with the fewest preemptions, then the fewest steps,
    for the same invariant (iterative preemption bounding, as CHESS does).
    Each search is exhaustive within its bound unless the budget runs out, in
    which case the best schedule found so far is kept."""
    base = bounds or Bounds()
    best = cex
    if not cex.schedule:
        return cex  # the initial state breaks it: nothing to shorten
    deadline = time.monotonic() + budget_s

    def search(k, depth):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        b = Bounds(max_preemptions=k, max_steps=base.max_steps,
                   max_executions=budget_executions, timeout=remaining, max_depth=depth)
        ex = Explorer(model, "none", b, target=cex.invariant)
        ex.shortest = True
        out = ex.run()
        return out.violation

    for k in range(best.preemptions):
        found = search(k, len(best.schedule))
        if found is not None:
            best = found
            break
    shorter = search(best.preemptions, len(best.schedule) - 1)
    if shorter is not None and len(shorter.schedule) < len(best.schedule):
        best = shorter
    best.preemptions = preemptions(model, best.schedule, base.max_steps)
    return best
