"""The minimiser: the counterexample with the fewest preemptions, then the
fewest steps, for the same invariant.

It runs after a search has found a violation (runner.py), in stages:

1. The counterexample's own trace, run in another order. Steps that do not
   conflict can swap without changing what any step does, so any order of
   the same steps that keeps every conflicting pair (and each thread's
   steps) in place ends in the same state. The order is built greedily:
   the running thread goes on while its next step may; where it may not,
   the next thread is one that will wait or finish at the end of its run
   (the switch after it is then free). Kept only when it replays to the
   same violation with fewer preemptions.
2. A least-cost search over states (fewest.py): Dijkstra's over pairs
   (model state, thread that ran last), a path costing (preemptions,
   steps), bounded by the cost of the counterexample in hand. It settles
   both at once: what it finds, or the counterexample in hand when it
   finds nothing cheaper, has the fewest preemptions and then the fewest
   steps there are. States are bfs's fingerprints, so it terminates on
   threads that spin.
3. Where that search cannot go (a model bfs cannot fingerprint, an
   invariant that compares executions, a thread past the step bound, a
   model that raised), searches under a preemption bound that grows one at
   a time from zero, as CHESS does, with bounded partial-order reduction
   (the explorer's dpor under a preemption bound), each stopping at the
   first violation of the invariant. Each search within its bound is
   exhaustive; the first bound with a violation is the fewest preemptions
   there are. (In a model whose threads loop, whose executions the step
   bound cuts, the search is the exhaustive one over schedules no longer
   than the counterexample.) Then a search for a shorter schedule with as
   many preemptions (dpor under a depth bound: it may miss one, as races
   with steps past the depth are not seen).

The searches share a budget (time, and executions per search). When it
runs out, the counterexample is the best found so far, and ``notes`` says
what was and was not established.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .execution import Execution, ModelFailure, StepBoundHit
from .fewest import FewestPreemptions
from .fingerprint import FingerprintError
from .runtime import Violation
from .scheduler import Explorer, preemptions, replay
from .search import BUDGET, Bounds, Counterexample, Stop, kind_of
from .strategies import StrategyError

if TYPE_CHECKING:  # annotations only
    from .model import Model


def minimise(model: Model, cex: Counterexample, bounds: Bounds | None = None,
             budget_executions: int = 20_000, budget_s: float = 20.0,
             notes: list | None = None) -> Counterexample:
    """The counterexample with the fewest preemptions, then the fewest steps,
    for the same invariant. Past the budget, the best found so far; then a
    sentence saying so is appended to ``notes``."""
    base = bounds or Bounds()
    if not cex.schedule:
        return cex  # the initial state breaks it: nothing to shorten
    start = time.monotonic()
    deadline = start + budget_s
    found = preemptions(model, cex.schedule, base.max_steps)
    best = Counterexample(list(cex.schedule), cex.invariant, cex.message, found)
    best = _reordered(model, best, base.max_steps) or best
    best, settled = _fewest(model, best, base, deadline, (budget_s, budget_executions), found, notes)
    if settled:
        return best
    unsettled = None  # the lowest bound whose search the budget cut
    # A thread that runs several times as many steps as the whole
    # counterexample is taken to loop (a spin): dpor stops there and the
    # search falls back on the schedules no longer than the counterexample.
    loop_steps = max(4 * len(cex.schedule), 256)

    def search(k, reduction, depth=None, share=1.0, shortest=False):
        remaining = (deadline - time.monotonic()) * share
        if remaining <= 0:
            return None, False, None
        steps = base.max_steps if reduction == "none" else min(base.max_steps, loop_steps)
        b = Bounds(max_preemptions=k, max_steps=steps,
                   max_executions=budget_executions, timeout=remaining, max_depth=depth)
        ex = Explorer(model, reduction, b, target=cex.invariant, should_stop=_looping)
        ex.shortest = shortest
        out = ex.run()
        # A bound cut is what a bounded search is; any other reason (time,
        # executions, the step bound) or a model error leaves it unfinished.
        done = out.error is None and kind_of(out.reason) in (None, Stop.bound_cut)
        return out.violation, done, kind_of(out.reason)

    def fewer(k, share):
        """A violation with ``k`` preemptions or fewer, and whether the
        search for one finished."""
        violation, done, why = search(k, "dpor", share=share)
        if violation is None and why == Stop.step_bound:
            # A thread loops (a spin): no execution ends within the step
            # bound. Every schedule up to the counterexample's length, as
            # the bound is exhaustive there; dpor's races would not show
            # what lies past a depth cut.
            violation, done, _ = search(k, "none", len(best.schedule), share)
        return violation, done

    k = 0
    while k < best.preemptions:
        # Later bounds get a share of the time too: a search cut at a low
        # bound settles nothing, and one at a higher bound may still find less.
        violation, done = fewer(k, 1.0 / (best.preemptions - k))
        if violation is not None and violation.preemptions < best.preemptions:
            best = violation
            break
        if not done and unsettled is None:
            unsettled = k
        if time.monotonic() >= deadline:
            break
        k += 1
    # Shorter: dpor under a depth bound misses races with the steps past it,
    # so this search may miss a shorter schedule; it never lengthens one.
    shorter, _, _ = search(best.preemptions, "dpor", len(best.schedule) - 1, shortest=True)
    if shorter is not None and len(shorter.schedule) < len(best.schedule):
        best = shorter
    best.preemptions = preemptions(model, best.schedule, base.max_steps)
    if notes is not None and unsettled is not None and unsettled < best.preemptions:
        notes.append(_budget_note(budget_s, budget_executions, found, best.preemptions, unsettled))
    return best


def _fewest(model, best, base, deadline, budget, found, notes):
    """Stage 2 by a search over states (fewest.py): (the cheapest
    counterexample found, whether the search settled it or ran out of budget
    with a note said). (``best``, False) when the model is not one for it: its
    states cannot be fingerprinted, an invariant compares executions, a thread
    ran past the step bound, the states or the memory went past their
    bounds, or the model raised."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return best, False
    b = Bounds(max_steps=base.max_steps, max_executions=budget[1], timeout=remaining)
    try:
        search = FewestPreemptions(model, best.invariant, (best.preemptions, len(best.schedule)), b)
        out = search.run()
    except (FingerprintError, StrategyError):
        return best, False
    if out.violation is not None:
        best = out.violation
    if out.error is not None or (out.reason is not None and kind_of(out.reason) not in BUDGET):
        return best, False  # (the step bound, or the bound on states or memory: a model too big for it)
    if out.reason is not None and notes is not None:
        unsettled = search.frontier()[0]
        if unsettled < best.preemptions:
            notes.append(_budget_note(*budget, found, best.preemptions, unsettled, out.reason))
        else:
            notes.append(_shorter_note(*budget, found, best, out.reason))
    return best, True


def _looping(search):
    """Stop a search at the first execution the step bound cut: a thread
    loops, and each execution would spin to the bound."""
    return search.incomplete if kind_of(search.incomplete) == Stop.step_bound else None


def _budget_note(budget_s, budget_executions, start, reached, unsettled, why=None):
    if unsettled == 0:
        settled = "the search for a schedule with 0 did not finish"
    else:
        settled = (f"none with {unsettled - 1} or fewer exists, but the search for one with "
                   f"{unsettled} did not finish")
    return (f"{_stopped(budget_s, budget_executions, why)}: {_plural(reached)} (from {start}); "
            f"{settled}, so fewer may exist")


def _shorter_note(budget_s, budget_executions, start, best, why=None):
    return (f"{_stopped(budget_s, budget_executions, why)}: {_plural(best.preemptions)} (from "
            f"{start}), the fewest there are, but a schedule with as many and fewer than "
            f"{len(best.schedule)} steps may exist")


def _stopped(budget_s, budget_executions, why):
    if kind_of(why) == Stop.interrupted:
        return "minimisation interrupted"
    return f"minimisation stopped at its budget ({budget_s:g} s, {budget_executions} executions a search)"


def _plural(n):
    return f"{n} preemption" + ("" if n == 1 else "s")


# -- stage 1: the same trace, another order --------------------------------------------------


def _reordered(model, cex, max_steps):
    """``cex``'s steps in an order with fewer preemptions that keeps every
    conflicting pair in place, when it replays to the same violation; else
    None."""
    events = _events(model, cex.schedule, max_steps)
    if events is None:
        return None
    order = _greedy_order(model, events, max_steps)
    if order is None:
        return None
    again = replay(model, order, max_steps)
    v = again.violation
    if again.error is not None or v is None or v.invariant != cex.invariant:
        return None
    if again.mismatch is not None:  # the violation came earlier: the prefix is the schedule
        order = order[:len(again.execution.events)]
        if replay(model, order, max_steps).violation is None:
            return None
    count = preemptions(model, order, max_steps)
    if count >= cex.preemptions:
        return None
    return Counterexample(order, cex.invariant, v.message, count)


def _events(model, schedule, max_steps):
    """The steps of ``schedule`` (Events), or None if it does not run."""
    try:
        ex = Execution(model, max_steps=max_steps, plain_checks=None, gathered={})
        for tid in schedule:
            if not ex.is_enabled(tid):
                return None
            try:
                ex.step(tid)
            except Violation:
                pass
    except (ModelFailure, StepBoundHit):
        return None
    return ex.events


def _greedy_order(model, events, max_steps):
    """The steps ``events`` in an order of the same trace (program order and
    every conflicting pair kept): the running thread goes on while its next
    step's predecessors have run; otherwise the next thread is the first (in
    the order of the schedule) whose run ends with it waiting or finished,
    else the first that can go."""
    n = len(events)
    preds = []
    for j, ej in enumerate(events):
        preds.append({i for i in range(j) if events[i].tid == ej.tid or events[i].conflicts(ej)})
    queues = {}
    for j, ev in enumerate(events):
        queues.setdefault(ev.tid, []).append(j)
    placed = set()
    order = []
    cur = None

    def run_of(t):
        steps, seen = [], set(placed)
        for j in queues[t]:
            if j in placed:
                continue
            if not preds[j] <= seen:
                break
            steps.append(j)
            seen.add(j)
        return steps

    while len(order) < n:
        ready = [t for t in queues if run_of(t)]
        if not ready:
            return None
        if cur not in ready:
            cur = _quiet_thread(model, events, order, ready, run_of, max_steps)
        for j in run_of(cur):
            placed.add(j)
            order.append(j)
    return [events[j].tid for j in order]


def _quiet_thread(model, events, order, ready, run_of, max_steps):
    """Of the threads ``ready``, the first that, once its run has gone, waits
    or has finished (so that switching away from it is no preemption)."""
    if len(ready) == 1:
        return ready[0]
    prefix = [events[j].tid for j in order]
    for t in ready:
        schedule = prefix + [events[j].tid for j in run_of(t)]
        try:
            ex = Execution(model, max_steps=max_steps, plain_checks=None, gathered={})
            ex.checks = False
            for tid in schedule:
                try:
                    ex.step(tid)
                except Violation:
                    pass
        except (ModelFailure, StepBoundHit):
            continue
        if not ex.is_enabled(t):
            return t
    return ready[0]
