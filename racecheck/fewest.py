"""The counterexample with the fewest preemptions, then the fewest steps, by a
search over states (the minimiser's main search, minimise.py).

Whether a step preempts depends only on the thread that ran the step
before and on whether that thread can still run: so what a schedule can still
reach, and at what cost, depends on where it is (the model's state and the
thread that ran last), not on how it got there. "Is there a violation within
k preemptions" is then a question of reachability, which a search that
caches states answers without enumerating schedules (Musuvathi and Qadeer's
iterative context bounding counts schedules; here two schedules that meet in
a state are one).

The search is Dijkstra's (uniform cost) over pairs (state, last thread). A
path costs (preemptions, steps), compared lexicographically: a step costs
(1, 1) when it switches away from a thread that could still run, else
(0, 1). The last thread is forgotten once it cannot run (it waits or has
finished): from there every thread costs the same. A pair reached again at a
cost no lower than before is cut, since whatever follows it followed from
there before at no higher cost. Pairs leave the queue cheapest first. The
search is given the cost of the counterexample in hand and never looks at a
path that costs as much; each violation it meets lowers that bound to its
own cost, and the search ends when nothing in the queue costs less: the last
violation met is then the cheapest there is (or, if none was met, the
counterexample in hand is).

Two shortcuts keep the work down. Where the last thread can go on and any
switch would cost as much as the bound, it steps on at once, its state kept
against the cost table (a spin comes back to it) but not queued. And a
state reached with its last thread forgotten at a cost no higher than now
covers any last thread, so it is looked up before the threads that can run
are asked.

A schedule ends at its first violation, as a replay does: a step that breaks
the target invariant ends a path as a goal, one that breaks another ends it
as a dead end. Where no thread can run, the deadlock and final-state checks
decide. States, and what steps do, are bfs's (strategies.BreadthFirst: the
fingerprints of fingerprint.py and the transition cache of transitions.py),
so the same rules hold about what a model may keep where; a model bfs cannot
fingerprint raises FingerprintError, and one whose invariants compare
executions (``across``) is refused (StrategyError). As in bfs, a thread's
step count is not part of a state: a thread that runs past the step bound
makes the search incomplete, never wrong. Pairs are kept as 64-bit digests
of their fingerprints (``exact``: whole), as bfs keeps states: a collision
could hide a cheaper counterexample, never make a wrong one.
"""

from __future__ import annotations

import heapq
from array import array

from .execution import ModelFailure, StepBoundHit
from .fingerprint import Constants
from .runtime import Violation
from .search import Counterexample, Halt, Reason, Stop
from .strategies import BreadthFirst
from .transitions import FINISHED, UNKNOWN, Transitions


class FewestPreemptions(BreadthFirst):
    """Least-cost search for a violation of ``target`` cheaper than ``below``
    ((preemptions, steps), the counterexample in hand). ``found`` is the
    cheapest (its ``preemptions`` the count); when the outcome has no reason
    and no error, nothing cheaper exists. One step of the search expands the
    cheapest pair in the queue."""

    def __init__(self, model, target, below, bounds=None):
        super().__init__(model, bounds, target=target, stop_on_violation=False)
        self.below = tuple(below)  # the cost a goal must be under (lowered by each goal found)
        self.queue = []  # a heap of (cost, tie, key, node, state, last, enabled, live)
        self.costs = {}  # digest of (state, last thread) -> the least cost it was reached at
        self._tie = 0

    # -- the search -------------------------------------------------------------------

    def begin(self):
        self._memory_at = (0.0, 0)
        self.constants = Constants(self.model)
        self.parent, self.via = array("q"), array("h")  # node -> its parent, the thread that stepped
        live = self._execution()
        try:
            found = live[0].initial_violations()
        except ModelFailure as failure:
            self._failed(failure, [])
        if found:  # every schedule replays to the initial state's violation
            v = next((v for v in found if v.invariant == self.target), None)
            if v is not None:
                self._goal([], v.invariant, v.message, True, (0, 0))
            raise Halt
        self.learned = Transitions(live[0])
        self._arrived(self.learned.whole(*live), live, -1, -1, (0, 0))

    def advance(self):
        queue = self.queue
        while queue and queue[0][0] < self.below:
            entry = heapq.heappop(queue)
            if self.costs.get(entry[2]) == entry[0]:  # else reached since at a lower cost
                self._expand(entry, queue)
                return True
        return False

    def finish(self):
        self.stats.queue = len(self.queue)

    def frontier(self):
        """The least cost not yet explored: no goal costs less (``below`` when
        the search ran to its end)."""
        return min(self.queue[0][0], self.below) if self.queue else self.below

    # -- states -----------------------------------------------------------------------

    def _expand(self, entry, queue):
        (p, d), _, _, node, state, last, enabled, live = entry
        for tid in sorted(enabled, key=lambda t: t != last) if last is not None else enabled:
            cost = (p + (last is not None and tid != last), d + 1)
            if cost >= self.below:
                self.stats.pruned += 1
                continue
            live = self._go(node, state, tid, cost, live)

    def _go(self, node, state, tid, cost, live):
        """Thread ``tid``'s step from ``state`` (``node``) at ``cost``, and its
        next ones for as long as it can go on and a switch would cost too
        much: there is no choice to queue then. ``live``: an execution in
        ``state`` or None; returned if the step did not use it."""
        learned, costs, stats = self.learned, self.costs, self.stats
        parent, via = self.parent, self.via
        checked, exact, max_steps = learned.checked, self.exact, self.bounds.max_steps
        spare = live
        while True:
            step = learned.step(tid, state) if cost[1] <= max_steps else None
            after, verdict = None, UNKNOWN
            if step is None:  # a step not learned yet: run it, on the live execution or a replay
                if live is None:
                    live = self._replay(self.schedule(node))
                after, live, spare = live, None, None
                before = len(after[0].rt.history)
                ran = self._run(after, tid, node)
                if ran is None:
                    return None  # the step bound
                violation, verdict = ran
                step = learned.learn(*after, tid, state, before, violation)
            else:
                stats.cached_steps += 1
            state = learned.apply(state, tid, step)
            stats.states_generated += 1
            if (step.violation is not None or checked) and not self._passes(
                    node, tid, step, state, verdict, after, cost):
                return spare
            p, d = cost
            below = self.below
            if (p + 1, d + 1) < below or not learned.enabled(tid, state):
                self._arrived(state, after, node, tid, cost)
                return spare
            # The thread goes on: its state is kept (a spin comes back to
            # it), and no queue entry is made for it.
            key = (state, tid) if exact else hash((state, tid))
            if costs.get(key, below) <= cost:
                return spare
            costs[key] = cost
            parent.append(node)
            via.append(tid)
            node = len(via) - 1
            stats.distinct_states += 1
            if d > stats.max_depth:
                stats.max_depth = d
            cost = (p, d + 1)
            if cost >= below:
                stats.pruned += 1
                return spare
            live = after

    def _path(self, node, tid):
        """The schedule of the state thread ``tid``'s step leads to from ``node``."""
        return self.schedule(node) + [tid]

    def _run(self, live, tid, node):
        """As BreadthFirst._run, but the checks' verdict names the target
        when it is among the invariants the step breaks."""
        ex = live[0]
        ex.checks = True
        try:
            ex.step(tid)
        except Violation as v:
            self.stats.steps += 1
            return (v if v.in_step else None), self._verdict(v)
        except StepBoundHit as hit:
            self.incomplete = Reason(Stop.step_bound, str(hit))
            self.stats.pruned += 1
            return None
        except ModelFailure as failure:
            self._failed(failure, self._path(node, tid))
        self.stats.steps += 1
        return None, None

    def _verdict(self, v):
        """What the step and return checks said in a step that raised ``v``:
        (invariant, message) of the target if it broke, else of the first
        that did, else None (the model's own violation is the step's)."""
        checks = [v, *v.also][1 if v.in_step else 0:]
        pick = next((x for x in checks if x.invariant == self.target), checks[0] if checks else None)
        return None if pick is None else (pick.invariant, pick.message)

    def _passes(self, node, tid, step, state, verdict, after, cost):
        """Whether the path goes on past thread ``tid``'s step from ``node``
        to ``state``: not if the step broke an invariant (a goal if the
        target, a dead end if another)."""
        learned = self.learned
        broken = []  # (invariant, message, confirmed)
        if step.violation is not None:
            broken.append((*step.violation, after is not None))
        if learned.checked:
            verdict, confirmed, _ = self._checked(state, verdict, lambda: self._path(node, tid))
            if verdict is not None:
                broken.append((*verdict, confirmed))
        for invariant, message, confirmed in broken:
            if invariant == self.target:
                self._goal(self._path(node, tid), invariant, message, confirmed, cost)
                break
        return not broken

    def _arrived(self, state, live, parent, tid, cost):
        """A state reached at ``cost`` by thread ``tid``'s step: checked if
        no thread can run, else queued unless it was reached as cheaply."""
        if self._reached(state, None, cost) or (
                parent >= 0 and self.learned.enabled(tid, state) and self._reached(state, tid, cost)):
            return  # (with the last thread forgotten, any switch is free: that covers the rest)
        path = self._path(parent, tid) if parent >= 0 else []
        enabled, live = self._enabled(state, live, path)
        if not enabled:  # (what the final checks say depends on the state alone: checked once)
            self.costs[self._key((state, None))] = cost
            self._final(state, live, cost, path)
            return
        last = tid if tid in enabled else None  # (None: a switch from it is free)
        key = self._key((state, last))
        if self.costs.get(key, self.below) <= cost:
            return
        self.costs[key] = cost
        node = self._add(state, parent, tid, cost[1])
        if not self.live_cap or len(self.queue) >= self.live_cap:
            live = None
        self._tie += 1
        heapq.heappush(self.queue, (cost, self._tie, key, node, state, last, enabled, live))

    def _reached(self, state, last, cost):
        """Whether (``state``, ``last``) was reached at ``cost`` or less."""
        return self.costs.get(self._key((state, last)), self.below) <= cost

    def _add(self, state, parent, tid, depth):
        self.parent.append(parent)
        self.via.append(tid)
        self.stats.distinct_states += 1
        if depth > self.stats.max_depth:
            self.stats.max_depth = depth
        return len(self.parent) - 1

    def _final(self, state, live, cost, path):
        """No thread can run: the deadlock, or the first final-state check that breaks."""
        learned = self.learned
        if not learned.end_checked and (self.target != "deadlock_free" or
                                        all(learned.kinds[t] is FINISHED for t in state[2])):
            return  # nothing that could break here is the target
        ex = (live or self._replay(path))[0]
        try:
            v = ex.final_violation()
        except ModelFailure as failure:
            self._failed(failure, path)
        if v is not None and v.invariant == self.target:
            self._goal(path, v.invariant, v.message, True, cost)

    def _goal(self, path, invariant, message, confirmed, cost):
        if cost >= self.below:
            return
        if not confirmed:
            message = self._confirm(invariant, path)
        self.found = Counterexample(list(path), invariant, message, cost[0])
        self.below = cost
