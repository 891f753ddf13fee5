"""Exploration: which interleavings to run, in what order, and when to stop.

Stateless search. Each execution is a fresh :class:`~racecheck.execution.Execution`
that replays a schedule prefix (a list of thread ids) and then runs on, one
choice per step, until every thread has finished, a violation is found, or a
bound cuts it. The exploration tree lives only as the stack of choice points of
the current execution, so memory is proportional to its depth.

Reductions:

``none``
    every interleaving of enabled threads (the oracle the others are tested
    against);
``dpor``
    optimal dynamic partial-order reduction: source sets, sleep sets and
    wakeup trees (Abdulla, Aronis, Jonsson, Sagonas, POPL 2014, Algorithm 2).
    After each execution every pair of conflicting steps of different
    threads that happen-before does not order otherwise is a race; for each,
    the steps after the first one that do not depend on it, then the second
    one, are inserted into the wakeup tree of the choice point before the
    first step, unless a branch explored or asleep there already starts
    that sequence; the choice points below follow the tree's branch, so that
    an execution is not started only to be found redundant. The
    happens-before of the prefix an execution replays is kept from the one
    before (happens_before.Growing). Under a preemption bound it is bounded
    partial-order reduction instead (Coons, Musuvathi, McKinley, OOPSLA
    2013; see Explorer._reverse_bounded): complete within the bound.

Bounds (preemptions, steps per thread, executions, wall clock, depth) never
give ``clean``: a search that a bound cut is ``incomplete``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .execution import BadModel, Event, Execution, ModelFailure, StepBoundHit
from .happens_before import Growing
from .runtime import ACQUIRE, Request, Violation
from .search import Bounds, Counterexample, Outcome, Reason, Search, Stats, Stop, failure_record

if TYPE_CHECKING:  # annotations only
    from .model import Model

__all__ = ["REDUCTIONS", "Bounds", "Counterexample", "Explorer", "Outcome", "Replay", "Stats",
           "explore", "preemptions", "replay", "trace_signature"]

REDUCTIONS = ("dpor", "none")

# How many probe runs dpor keeps (Explorer._run_probe): memory stays bounded
# whatever the search's length.
_PROBE_RUNS = 4096


class _Node:
    """A choice point: the state after ``depth`` steps of the current execution."""

    __slots__ = ("enabled", "chosen", "backtrack", "done", "sleep", "event", "last", "base",
                 "wakeup", "follow", "inherited", "holds", "probed", "reversed")

    def __init__(self, enabled, sleep, last, base):
        self.enabled = enabled
        self.sleep = sleep  # thread -> Event it would run (already covered)
        self.last = last  # thread that ran the step before this point
        self.base = base  # preemptions before this point
        self.done = {}  # thread -> Event it ran from here
        self.backtrack = None  # none: the threads still to run from here (a set)
        # dpor: the wakeup tree of the branches still to explore from here, a
        # list of [thread, Event, subtree] (leftmost first), and the subtree
        # of the branch being explored, which the next choice point follows.
        self.wakeup = []
        self.follow = []
        self.chosen = None
        self.event = None
        # threads asleep here because a work unit started with them asleep
        # (racecheck/parallel.py), and branches explored here that were
        # handed over or hold a handed-over subtree (racecheck/handover.py):
        # pruned; a reversal is skipped for them only where one starts v,
        # never for a weak initial
        self.inherited = ()
        # a work unit handed over part of its subtree from here or below
        # (racecheck/handover.py): the branches taken here from now on hold
        # every thread asleep at their start as pruning only
        self.holds = False
        # dpor: race (first step) -> what this step's thread did when probed
        # where the reversal put it (see Explorer._probed)
        self.probed = {}
        # dpor: race (first step) -> the steps v took, the last time the race
        # was reversed. Node i's branch stays while this node is on the stack,
        # so its done and sleep sets stay as they were and its wakeup tree
        # only grows: reversing the same v again changes nothing.
        self.reversed = {}

    def covered(self):
        """thread -> Event: the branches explored or asleep here, which a
        reversal need not start again (those asleep because the work unit
        started so are not: see Explorer._reverse)."""
        if not self.inherited:
            if not self.sleep:
                return self.done
            if not self.done:
                return self.sleep
        covered = {**self.sleep, **self.done}
        for q in self.inherited:
            covered.pop(q, None)
        return covered

    def cost(self, tid):
        """1 if running ``tid`` here preempts the thread that was running."""
        return 1 if (self.last is not None and self.last != tid
                     and self.last in self.enabled) else 0


def preemptions(model: Model, schedule: list[int], max_steps: int = 10_000) -> int:
    """Number of preemptions in ``schedule`` (a switch away from an enabled thread)."""
    ex = Execution(model, max_steps=max_steps)
    count, last = 0, None
    for tid in schedule:
        if last is not None and tid != last and ex.is_enabled(last):
            count += 1
        try:
            ex.step(tid)
        except (Violation, ModelFailure, StepBoundHit):
            break
        last = tid
    return count


class Explorer(Search):
    """dfs: the stateless depth-first search, with the reduction ``none`` or
    ``dpor``. One step of the search is one execution along the stack's
    schedule; then the stack moves to the next branch."""

    def __init__(self, model: Model, reduction: str = "dpor", bounds: Bounds | None = None,
                 target: str | None = None, on_execution=None, progress=None,
                 stop_on_violation: bool = True, should_stop=None, unit=None):
        if reduction not in REDUCTIONS:
            raise ValueError(f"unknown reduction {reduction!r}: use one of {', '.join(REDUCTIONS)}")
        super().__init__(model, bounds, progress, should_stop)
        self.dpor = reduction == "dpor"
        # dpor under a preemption bound: bounded partial-order reduction
        # (see _reverse_bounded), without sleep sets.
        self.bounded = self.dpor and self.bounds.max_preemptions is not None
        self.target = target  # stop only on this invariant (minimisation)
        self.on_execution = on_execution
        self.stack = []
        self.shortest = False  # keep searching for shorter violations
        self.stop_on_violation = stop_on_violation
        self.violations = {}  # invariant -> count, when not stopping at the first
        self.nthreads = 0
        # A work unit (racecheck/parallel.py): explore only the subtree below
        # its schedule prefix, whose last node starts with the unit's sleep
        # set; the prefix's own nodes are no choice points here.
        self.prefix = list(unit.prefix) if unit is not None else []
        self.root_sleep = dict(unit.sleep) if unit is not None else {}
        # depth in the prefix -> (thread -> Event, the threads of it held as
        # pruning only) (racecheck/handover.py)
        self.prefix_sleep = {}
        self.floor = len(self.prefix)
        # Races whose reversal point lies at this depth or deeper are reversed
        # (those in the prefix into its nodes' wakeup trees, which a unit
        # handed over from a running one returns: racecheck/handover.py).
        self.low = self.floor
        self._hb = None  # the current execution's happens-before (dpor)
        self._fresh = 0  # the first step of the current execution that no earlier one ran
        self._contexts = {}
        self._started = set()
        self._probe_runs = {}  # dpor: (*schedule, thread) -> what _run_probe found

    # -- the search ------------------------------------------------------------

    def advance(self):
        self.error = self._execute()
        if self.error is not None:
            return False
        return not (self.found is not None and self.stop_on_violation and not self.shortest)

    def proceed(self):
        return self._next_branch()

    def depth(self):
        return len(self.stack)

    def cut(self):
        if self.stats.pruned:
            return Reason(Stop.bound_cut, f"{self.stats.pruned} choices cut by a bound")
        return None

    def _execute(self):
        """Run one execution along the stack's schedule, then onwards.
        Returns an error dict if the model raised, else None."""
        stats = self.stats
        stack = self.stack
        fresh = max(len(stack) - 1, 0)  # steps before this one ran in earlier executions
        self._fresh = fresh
        self._ended = "finished"
        self._last_violation = None
        try:
            # State kept outside runtime objects: every step of the first
            # execution is checked, the others at their end (see _plain_end).
            ex = Execution(self.model, max_steps=self.bounds.max_steps, gathered=self.gathered,
                           plain_checks=not (stats.executions or stats.blocked))
            self.nthreads = len(ex.threads)
            stop = False
            if not stack:  # the initial state, checked once, by the first execution
                found = ex.initial_violations()
                for v in found:
                    self._violation(v)
                stop = bool(found) and self._stops(found)
            for depth, node in enumerate(stack):
                stop = self._step(ex, node, depth >= fresh)
            while not stop:
                enabled = ex.enabled()
                if not enabled:
                    violation = ex.final_violation()
                    if violation is not None:
                        self._violation(violation)
                    break
                if self.bounds.max_depth is not None and len(stack) >= self.bounds.max_depth:
                    self._ended = "cut"
                    if self.found is None or not self.shortest:
                        stats.pruned += 1
                    break
                node = self._new_node(enabled)
                if node is None:
                    self._ended = "cut"
                    break
                stack.append(node)
                stop = self._step(ex, node, True)
        except ModelFailure as failure:
            return failure_record(failure, [n.chosen for n in stack])
        if ex.plain_changed():
            self._plain_end()
        if self._ended == "finished":
            stats.executions += 1
            if self.on_execution is not None:
                self.on_execution(ex, self._last_violation)
        if len(stack) > stats.max_depth:
            stats.max_depth = len(stack)
        if self.dpor:
            # A probe may run only the steps its own depends on, and start
            # only their threads (see _probe), when every step ran as a step
            # (none cut by the step bound) and no thread's start or step made
            # a runtime object (a key the keys made after it follow).
            self._partial = self._ended == "finished" and len(ex.rt.objects) == ex.initial_objects
            self._add_backtracks(self._pending_events(ex))
        return None

    def _plain_end(self):
        """An execution ended with the model's plain state changed: run its
        schedule again checking every step, which raises BadModel naming the
        step and the object."""
        ex = Execution(self.model, max_steps=self.bounds.max_steps, gathered={})
        for node in self.stack:
            try:
                ex.step(node.chosen)
            except (Violation, ModelFailure, StepBoundHit):
                pass
        raise BadModel("the model's state changed outside runtime objects, though no single "
                       "step showed it on a second run: the model is not deterministic")

    def _step(self, ex, node, fresh):
        """Run one step; True when the execution must stop here."""
        try:
            node.event = ex.step(node.chosen)
        except Violation as v:
            node.event = ex.events[-1]
            self.stats.steps += 1
            self._last_violation = v
            found = [v, *v.also]
            if fresh:  # a replayed step's violation was counted when it first ran
                for x in found:
                    self._violation(x)
            return self._stops(found)
        except StepBoundHit as hit:
            # The step never ran: it stands in the tree as an empty one.
            node.event = Event(node.chosen, set(), set())
            self.incomplete = Reason(Stop.step_bound, str(hit))
            self._ended = "cut"
            return True
        self.stats.steps += 1
        return False

    def _stops(self, found):
        """Do the violations ``found`` in one step end the execution? When
        the search stops at violations, yes; otherwise it goes on, so that
        what happens after them is explored too. Minimisation (a target
        invariant, no reduction) stops at any: a schedule that passes
        through another violation replays to that one, not to the target."""
        if self.target is not None:
            # dpor goes on past another invariant's violation: stopping
            # there would disable every thread, a dependency that no
            # footprint shows, and the reduction would miss schedules.
            return not self.dpor or any(x.invariant == self.target for x in found)
        return self.stop_on_violation or self.shortest

    @staticmethod
    def _pending_events(ex):
        """What the threads left waiting would do next: a race with a step
        that never ran can still need reversing (a lock another thread took
        first, and kept)."""
        out = []
        for t in ex.threads:
            if not t.finished and isinstance(t.pending, Request):
                reads, writes = t.pending.footprint(ex.rt)
                out.append(Event(t.tid, reads, writes, t.pending.exclusive(), True))
        return out

    def _violation(self, v):
        if self._last_violation is None:
            self._last_violation = v
        if self.target is not None and v.invariant != self.target:
            return  # a different bug: not what minimisation is after
        self.violations[v.invariant] = self.violations.get(v.invariant, 0) + 1
        schedule = [n.chosen for n in self.stack]
        count = sum(n.cost(n.chosen) for n in self.stack)
        if self.found is None or len(schedule) < len(self.found.schedule):
            self.found = Counterexample(schedule, v.invariant, v.message, count)
        if self.shortest:
            # Only shorter violations are of interest from now on.
            self.bounds.max_depth = len(schedule) - 1

    def _new_node(self, enabled):
        stack = self.stack
        depth = len(stack)
        if depth < self.floor:  # the unit's prefix: one choice, made for it
            tid = self.prefix[depth]
            if tid not in enabled:
                raise ValueError(f"work unit: thread {tid} cannot run at step {depth + 1} of its prefix")
            parent = stack[-1] if stack else None
            last = parent.chosen if parent else None
            base = parent.base + parent.cost(parent.chosen) if parent else 0
            node = _Node(enabled, {}, last, base)
            node.chosen = tid
            here = self.prefix_sleep.get(depth)
            if here:  # (a unit handed over: what was explored or asleep there, and what of it is held)
                node.sleep, node.inherited = dict(here[0]), here[1]
            return node
        parent = stack[-1] if stack else None
        if parent is None:
            sleep, last, base = {}, None, 0
        else:
            last = parent.chosen
            base = parent.base + parent.cost(parent.chosen)
            sleep = dict(self.root_sleep) if depth == self.floor else {}
            inherited = tuple(sleep) if sleep else ()
            if self.dpor and depth > self.floor and not self.bounded:
                ev = parent.event
                for q, e in parent.sleep.items():
                    if not e.conflicts(ev):
                        sleep[q] = e
                for q, e in parent.done.items():
                    if not e.conflicts(ev):
                        sleep[q] = e
                if parent.holds:  # (a branch taken after a hand-over below: handover.py)
                    inherited = tuple(sleep)
                elif parent.inherited:  # (a branch handed over is done there and held so: handover.py)
                    inherited = tuple(q for q in parent.inherited if q in sleep)
        node = _Node(enabled, sleep, last, base)
        if parent is not None:
            node.inherited = inherited
        choices = [t for t in enabled if t not in sleep] if sleep else enabled  # (not changed)
        if not choices:
            self.stats.blocked += 1
            return None
        bound = self.bounds.max_preemptions
        if bound is not None:
            allowed = [t for t in choices if base + node.cost(t) <= bound]
            self.stats.pruned += len(choices) - len(allowed)
            if not allowed:
                return None
            choices = allowed
        if self.dpor and parent is not None:
            # Follow the wakeup tree the parent's branch handed down: its
            # leftmost branch whose thread can run here (one that cannot, as
            # a lock held in this order, is dropped and the search goes on
            # as source-DPOR would).
            wakeup = parent.follow
            while wakeup and node.chosen is None:
                tid, _, subtree = wakeup.pop(0)
                if tid in choices:
                    node.chosen, node.follow = tid, subtree
            node.wakeup = wakeup
        if node.chosen is None:
            node.chosen = last if last in choices else choices[0]
        if not self.dpor:
            node.backtrack = set(choices)
        return node

    def _next_branch(self):
        """Move the stack to the next unexplored choice. False when done."""
        stack = self.stack
        bound = self.bounds.max_preemptions
        while len(stack) > self.floor:
            node = stack[-1]
            node.done[node.chosen] = node.event
            if self.dpor:
                if self._next_wakeup(node, bound):
                    return True
                stack.pop()
                continue
            for q in sorted(node.backtrack):
                if q in node.done or q in node.sleep:
                    continue
                if bound is not None and node.base + node.cost(q) > bound:
                    self.stats.pruned += 1
                    node.backtrack.discard(q)
                    continue
                node.chosen = q
                node.event = None
                node.probed, node.reversed = {}, {}
                return True
            stack.pop()
        return False

    def _next_wakeup(self, node, bound):
        """Move ``node`` to the leftmost branch of its wakeup tree still to
        explore; False when there is none."""
        while node.wakeup:
            tid, _, subtree = node.wakeup.pop(0)
            if tid in node.done or tid in node.sleep or tid not in node.enabled:
                continue
            if bound is not None and node.base + node.cost(tid) > bound:
                self.stats.pruned += 1
                continue
            node.chosen, node.follow, node.event = tid, subtree, None
            node.probed, node.reversed = {}, {}
            return True
        return False

    # -- race detection (optimal DPOR: source sets and wakeup trees) --------------

    def _add_backtracks(self, pending=()):
        """Reverse every race of the execution that just ended. Its
        happens-before is kept from the execution before: the steps it
        replayed keep theirs (they did the same), and only the steps from
        the one where it took another branch on are added."""
        stack = self.stack
        hb = self._hb
        if hb is None:
            hb = self._hb = Growing(self.nthreads)
        hb.truncate(min(self._fresh, len(stack)))
        for node in stack[len(hb):]:
            hb.add(node.event)
        ran = len(hb)
        for ev in pending:
            hb.add(ev)
        events, races = hb.events, hb.races
        floor = self.low
        self._contexts = {}  # first step of a race -> Explorer._context
        self._started = set()  # first steps whose rest an explored branch starts
        for j in range(len(events)):
            for i in races[j]:
                # Two waiting threads: no choice point between them. Above a work
                # unit's root: the other orders are other units' prefixes.
                if floor <= i < ran:
                    if self.bounded:
                        self._reverse_bounded(i, j, events)
                    else:
                        self._reverse(i, j, hb)
        hb.truncate(ran)  # the pending steps never ran

    def _reverse_bounded(self, i, j, events):
        """Reverse the race between steps ``i`` and ``j`` under a preemption
        bound, as bounded partial-order reduction does (Coons, Musuvathi,
        McKinley, OOPSLA 2013): schedule step ``j``'s thread before step
        ``i``, and also at the start of the block step ``i`` belongs to (the
        run of its thread's steps that step ``i`` ends), where switching
        to it may cost a preemption fewer; where that thread cannot run,
        every thread that can. Optimal DPOR's shortcuts are left out here:
        a branch explored, or a thread asleep, stands for the traces that
        start with its step, but only for those the bound let it reach,
        and the trace wanted may fit the bound only in another order."""
        if _held_across(events, i, j):
            return
        stack = self.stack
        p = events[j].tid
        ti = stack[i].chosen
        start = i
        while start > self.floor and stack[start - 1].chosen == ti:
            start -= 1
        for node in (stack[start], stack[i]) if start != i else (stack[i],):
            for q in [p] if p in node.enabled else node.enabled:
                if q != node.chosen and q not in node.done and all(b[0] != q for b in node.wakeup):
                    node.wakeup.append([q, None, []])

    def _reverse(self, i, j, hb):
        """Reverse the race between steps ``i`` and ``j``: insert into the
        wakeup tree before step ``i`` the steps that ran after it without
        depending on it, then step ``j`` (notdep(e, E).e'), unless a branch
        explored or asleep there already starts that sequence."""
        node = self.stack[i]
        events, clocks, conflicts = hb.events, hb.clocks, hb.conflicts
        ti, pi = events[i].tid, hb.pos[i]
        if events[j].locks and _held_across(events, i, j):
            return
        ran = len(self.stack)
        context = self._contexts.get(i)
        if context is None:
            context = self._contexts[i] = self._context(i, hb)
        rest, in_rest, first, initials, _, runnable, covered = context
        if j < self._fresh and (not rest or rest[-1] < self._fresh):
            # The race and v are where an earlier execution left them (every
            # step of v is one it replayed): reversed again, v would go
            # where it went then, or into a branch since explored (see
            # _Node.reversed).
            kept = self.stack[j].reversed
            if kept.get(i) == rest:
                return
            kept[i] = rest
        if i in self._started:
            return
        if initials and (not covered.keys().isdisjoint(initials)
                         or _leaf_starts(node.wakeup, initials)):
            # A branch explored, asleep or to explore alone there starts
            # with an initial of rest, so v, whatever its last step: so for
            # every race with step i, as the choice point keeps its done
            # and sleep sets and its wakeup tree keeps its leaves.
            self._started.add(i)
            return
        if node.inherited and _held_starts(node.inherited, initials):
            self._started.add(i)
            return
        # v = rest.e', with e' what thread p does next after rest. That is
        # step j itself only if it reads what it read here: a step's code
        # branches on the values it reads (a compare-and-swap writes or
        # not), so once a step that v leaves out (step i, or one after it
        # that depends on it) no longer writes what step j read, step j may
        # touch other objects. A pending step never ran. Either way, the
        # step is found by running it where v puts it.
        ej = events[j]
        p = ej.tid
        # What follows returns whatever thread p's step turns out to be, in
        # these cases: decided before running it (see _probe).
        if p not in first:
            # Thread p comes in as an initial (as it does when rest is
            # empty), and then there is nothing to do if it cannot run here
            # or a branch explored, asleep or to explore starts with it;
            # else nothing either if no other initial can run here.
            taken = (p not in node.enabled or p in covered
                     or _leaf_starts(node.wakeup, (p,)))
            if taken and (not rest or not runnable):
                return
        elif not runnable:
            return
        # Probe when a step v leaves out (step i, or one after it that
        # depends on it) wrote what step j read, or step j never ran.
        probe = j >= ran
        reads = ej.reads
        if not probe and reads:  # (a step that reads nothing does what it did)
            for k in conflicts[j]:
                if k >= i and clocks[k][ti] >= pi and not events[k].writes.isdisjoint(reads):
                    probe = True
                    break
        if probe:
            ej = self._probed(i, j, rest, in_rest, hb)
            if ej is None:
                # p cannot run there: a step of v may be what keeps it
                # waiting; try v without it.
                self._reverse_unblocked(i, j, hb, rest)
                return
            if not _depends(ej, events[i]):
                # Where v puts it, p's step no longer conflicts with step i:
                # v.(step i) is then the same trace as (step i).v, which
                # starts with step i and so is explored below step i. Not
                # a race to reverse (and treating it as one would hand the
                # trace to branches that rely on it being one).
                return
        if p not in first and not (rest and (ej.__class__ is _Unknown
                                             or hb.conflicts_among(ej, in_rest))):
            if p not in node.enabled:
                # The second step is its thread's next one and cannot run
                # before the first: the first (or what follows it) enables
                # it, as an unlock does the lock it lets through. Nothing
                # to reverse; the earlier step that did conflict (the other
                # lock) carries the race.
                return
            if p in covered:
                return
            if _leaf_starts(node.wakeup, (p,)):
                return
            if p not in node.inherited:
                runnable = runnable + [p]  # p joins the initials; it can run here
            elif _held_starts(node.inherited, (p,)):
                return  # p starts v and is held as pruning only
        if not runnable:
            return
        all_rest = _all_rest(context, events)
        # all of v as one step
        reads, writes = ej.reads | all_rest.reads, ej.writes | all_rest.writes
        for q, ev in covered.items() if ej.__class__ is not _Unknown else ():
            # q's step commutes with all of v: a weak initial, explored. Not
            # when the step takes a request: a step after v can refuse it
            # for good (a wait whose condition it breaks, a lock it keeps),
            # and the traces where q never runs again start with no branch.
            if q != p and q not in first and ev.__class__ is not _Unknown and not ev.blocking and (
                    ev.writes.isdisjoint(writes) and ev.writes.isdisjoint(reads)
                    and writes.isdisjoint(ev.reads)):
                return
        # Start with the race's thread when it can run here, else another
        # initial: its first step in v depends on nothing before it in v.
        steps = [events[k] for k in rest]
        steps.append(ej)
        hbtids = hb.tids
        tids = [hbtids[k] for k in rest]
        tids.append(p)
        lead = p if p in runnable else runnable[0]
        n0 = tids.index(lead)
        if n0:
            tids.insert(0, tids.pop(n0))
            steps.insert(0, steps.pop(n0))
        # (v as one step is made above: no step of the execution is unknown)
        _insert(node.wakeup, tids, steps, (reads, writes, ej.__class__ is _Unknown))

    def _reverse_unblocked(self, i, j, hb, rest):
        """Step ``j``'s thread cannot run after the first ``i`` steps and
        ``rest``: a step of rest that it conflicts with can keep it waiting
        (two readers of an rwsem commute, and each is in the rest of a race
        between the other and a writer waiting for both: neither reversal
        lets the writer in). Reverse the race with v made of rest without
        those steps and what happens after them; such a v is what an
        execution that lets the thread in starts with."""
        events, clocks, pos = hb.events, hb.clocks, hb.pos
        ej = events[j]
        blockers = [k for k in rest if _depends(events[k], ej)]
        if not blockers:
            return
        keep = [k for k in rest
                if not any(k == m or clocks[k][events[m].tid] >= pos[m] for m in blockers)]
        p = ej.tid
        ev = self._probe(i, keep, p)
        if ev is None or not _depends(ev, events[i]):
            return
        node = self.stack[i]
        tids = [events[k].tid for k in keep] + [p]
        if tids[0] in node.inherited:
            return  # asleep where the unit started: another unit's
        _insert(node.wakeup, tids, [events[k] for k in keep] + [ev])

    def _context(self, i, hb):
        """What the reversals of every race with step ``i`` as its first step
        share: the steps that ran after step ``i`` without depending on it
        (rest: the second step, which its conflict orders after step ``i``,
        is not among them, and pending steps of waiting threads did not
        run), as a list and a set, the threads with a step in it, and its
        initials: threads whose first step in it conflicts with no step
        before it there (in its own order: what orders them in this
        execution through steps left out does not count); and all of it as
        one Event (None until _all_rest makes it); the initials that can
        run at step ``i``'s choice point (see _runnable); and the branches
        explored or asleep there (_Node.covered: they stay as they are while
        the races are reversed)."""
        clocks, conflicts, tids = hb.clocks, hb.conflicts, hb.tids
        ti, pi = tids[i], hb.pos[i]
        rest = [k for k in range(i + 1, len(self.stack)) if clocks[k][ti] < pi]
        in_rest = set(rest)
        first = set()
        initials = []
        for k in rest:
            tk = tids[k]
            if tk not in first:
                first.add(tk)
                if in_rest.isdisjoint(conflicts[k]):
                    initials.append(tk)
        node = self.stack[i]
        return [rest, in_rest, first, initials, None, _runnable(initials, node), node.covered()]

    def _probed(self, i, j, rest, in_rest, hb):
        """What step ``j``'s thread does where the reversal of the race
        (``i``, ``j``) puts it: after the first ``i`` steps and then the
        steps ``rest``. A step does what it did before when every object it
        read (or wrote) holds what it held then: its thread is where it was
        (its steps before step ``j`` all run first, as before), and its code
        branches on nothing else. So the step a probe found is kept on step
        ``j``'s choice point with the step that last wrote each of those
        objects, and a later execution that replays step ``j`` takes it
        again instead of probing when those are the same steps (steps up to
        step ``j``, which it replays)."""
        p = hb.events[j].tid
        node = self.stack[j] if j < len(self.stack) else None
        if node is not None:
            kept = node.probed.get(i)
            if kept is not None:
                ev, writers = kept
                if all(hb.last_writer(key, i, in_rest) == k for key, k in writers.items()):
                    return ev
        ev = self._probe(i, rest, p)
        if node is not None and ev is not None and ev.__class__ is not _Unknown:
            writers = {key: hb.last_writer(key, i, in_rest) for key in ev.reads | ev.writes}
            if all(k <= j for k in writers.values()):
                node.probed[i] = (ev, writers)
        return ev

    def _probe(self, i, rest, p):
        """What thread ``p`` does when it runs after the first ``i`` steps of
        the current execution and then the steps ``rest``: its Event, or
        None when it cannot run there.

        Every step of that sequence does what it did in the execution (what
        it depends on is in the sequence too), so it is enough to run the
        steps that happen before thread ``p``'s last step there (a set that
        holds, with each step, every earlier step it conflicts with), then
        thread ``p``: the steps left out commute with those run, so they can
        all come after. When they also commute with what thread ``p`` did
        (its step, or the look that found it waiting), they could come after
        it as well, and it is what it would be after the whole sequence.
        Otherwise the whole sequence is run."""
        self.stats.probes += 1
        hb = self._hb
        sequence = [*range(i), *rest]
        if self._partial:
            past = _past(hb, sequence, p)
            if len(past) < len(sequence):
                ev = self._run_probe([hb.tids[k] for k in past], p, True)
                if ev.__class__ is not _Unknown and not hb.conflicts_among(
                        ev, set(sequence).difference(past)):
                    return None if ev.__class__ is _Waiting else ev
        ev = self._run_probe([hb.tids[k] for k in sequence], p, self._partial)
        return None if ev.__class__ is _Waiting else ev

    def _run_probe(self, schedule, p, partial):
        """Run ``schedule``, then thread ``p``'s step: its Event; _Unknown
        if the model raised or a thread ran past the step bound; _Waiting
        when ``p`` cannot run there. ``partial``: start only the threads
        that run.

        A schedule from the initial state decides every step (a model is
        deterministic), so what a run found is kept and given again for the
        same schedule and thread (most probes of lastzero, readers and
        indexer run a schedule run before). The last _PROBE_RUNS are kept."""
        key = (*schedule, p)
        runs = self._probe_runs
        ev = runs.get(key)
        if ev is None:
            if len(runs) >= _PROBE_RUNS:
                del runs[next(iter(runs))]  # the oldest
            ev = runs[key] = self._fresh_probe(schedule, p, partial)
        return ev

    def _fresh_probe(self, schedule, p, partial):
        """_run_probe's run: a fresh execution."""
        start = None
        if partial:
            start = set(schedule)
            start.add(p)
        # Only the step's footprint is wanted: no checks (they add nothing
        # to it), and what they would gather is not the search's.
        ex = Execution(self.model, max_steps=self.bounds.max_steps, plain_checks=None, gathered={},
                       start=start)
        ex.checks = False
        try:
            ex.rerun(schedule)  # as it ran in the execution, violations too
            if not ex.is_enabled(p):
                t = ex.threads[p]
                if t.finished:  # (its own steps ended it: so after any others)
                    return _Waiting(p, set(), set())
                reads, writes = t.pending.footprint(ex.rt)
                return _Waiting(p, reads, writes)
            try:
                return ex.step(p)
            except Violation:
                return ex.events[-1]
        except (ModelFailure, StepBoundHit):
            return _Unknown(p)


def _past(hb, sequence, p):
    """The steps of ``sequence`` (steps of the execution, in order) that
    happen before thread ``p``'s last step in it, or are it."""
    tids = hb.tids
    for k in reversed(sequence):
        if tids[k] == p:
            clock, pos = hb.clocks[k], hb.pos
            return [m for m in sequence if clock[tids[m]] >= pos[m]]
    return []


def _all_rest(context, events):
    """All of a context's rest as one step (a step conflicts with it when
    it conflicts with one of its steps), made when first needed."""
    whole = context[4]
    if whole is None:
        rest = context[0]
        whole = context[4] = Event(None, set().union(*[events[k].reads for k in rest]),
                                   set().union(*[events[k].writes for k in rest]))
    return whole


def _leaf_starts(wakeup, threads):
    """Whether a branch of the wakeup tree ``wakeup`` to explore alone (a
    leaf) starts with one of ``threads``."""
    for branch in wakeup:
        if not branch[2] and branch[0] in threads:
            return True
    return False


def _held_starts(inherited, initials):
    """Whether a thread held as pruning only here (``inherited``: asleep
    because a work unit started so, or handed over) is one of ``initials``
    of v. Such a thread is no weak initial of a reversal (a step after v can
    still wake it), but as an initial it starts every trace that starts
    with v, and the unit or branch that explores it where it fell asleep
    explores those traces: the reversal is skipped."""
    for q in initials:
        if q in inherited:
            return True
    return False


def _runnable(initials, node):
    """The initials that can run at ``node`` and were not handed down asleep."""
    return [q for q in initials if q in node.enabled and q not in node.inherited]


def _insert(tree, tids, events, whole=None):
    """Insert a sequence (its threads ``tids`` and their steps ``events``,
    two lists of one length, taken over) into a wakeup tree: go down the
    leftmost branch whose step can come first in what is left of the
    sequence (its thread's first step there depends on no earlier one, or
    its thread is not in it and its step commutes with all of it), taking
    that step out; a leaf reached, or nothing left, means an execution that
    starts with the sequence is already to be explored. Otherwise the rest
    becomes a new branch, rightmost. ``whole``: all of the sequence as one
    step, as _after makes it, if already made."""
    whole = [whole]  # all of the sequence as one step, while it stays the same
    while tids:
        head = tids[0]
        for branch in tree:
            if branch[0] == head:  # (the most common case, told without a call)
                n = 0
            else:
                n = _after(branch[0], branch[1], tids, events, whole)
                if n is None:
                    continue
            if n >= 0:  # the branch's step is the sequence's n-th: taken out
                del tids[n], events[n]
                whole[0] = None
            if not branch[2]:
                return
            tree = branch[2]
            break
        else:
            for tid, event in zip(tids, events):
                branch = [tid, event, []]
                tree.append(branch)
                tree = branch[2]
            return


def _after(tid, event, tids, events, whole):
    """Whether ``tid``'s step can run first in the sequence ``tids``,
    ``events`` (whose first step is another thread's) without changing its
    outcome: None if not, else the place of ``tid``'s first step in it, or
    -1 when ``tid`` has no step in it (and its step commutes with all of it). ``whole`` keeps all of the sequence
    as one step (its reads, its writes, whether a step of it is unknown)
    once made: a step commutes with all of the sequence when it commutes
    with every step of it."""
    # (Event.conflicts written out: this is the search's innermost loop)
    if tid in tids:
        n = tids.index(tid)
        ev = events[n]
        if ev.__class__ is _Unknown:
            return None
        writes, reads = ev.writes, ev.reads
        for m in range(n):
            e = events[m]
            if (e.__class__ is _Unknown or not writes.isdisjoint(e.writes)
                    or not writes.isdisjoint(e.reads) or not reads.isdisjoint(e.writes)):
                return None
        return n
    if whole[0] is None:
        reads, writes = set(), set()
        unknown = False
        for e in events:
            reads |= e.reads
            writes |= e.writes
            unknown = unknown or e.__class__ is _Unknown
        whole[0] = (reads, writes, unknown)
    reads, writes, unknown = whole[0]
    # A step that takes a request is no weak initial (see Explorer._reverse).
    if unknown or event.__class__ is _Unknown or event.blocking:
        return None
    if (not event.writes.isdisjoint(writes) or not event.writes.isdisjoint(reads)
            or not event.reads.isdisjoint(writes)):
        return None
    return -1


class _Unknown(Event):
    """A step whose footprint is not known (it raised when probed, see
    Explorer._probe): it depends on every step."""

    __slots__ = ()

    def __init__(self, tid):
        super().__init__(tid, set(), set())

    def conflicts(self, other):
        return True


class _Waiting(Event):
    """A thread found waiting by a probe, with the footprint of the look
    that found it so (its request's)."""

    __slots__ = ()


def _depends(a, b):
    # (an _Unknown's own conflicts() says True; an Event's cannot know)
    return a.conflicts(b) or b.__class__ is _Unknown


def _held_across(events, i, j):
    """True if step j starts by taking an exclusive lock that the thread of
    step i holds just before step i: only that thread can release it, and its
    next step is step i, so step j cannot run before step i (an unlock and the
    lock it lets through, or any step inside the critical section)."""
    locks = events[j].locks
    if not locks or locks[0][0] != ACQUIRE:
        return False
    key = locks[0][1]
    holder = None
    for ev in events[:i]:
        for op, k in ev.locks:
            if k == key:
                holder = ev.tid if op == ACQUIRE else None
    return holder is not None and holder == events[i].tid != events[j].tid


def explore(model: Model, reduction: str = "dpor", bounds: Bounds | None = None, on_execution=None,
            progress=None) -> Outcome:
    """Explore ``model`` and return an :class:`Outcome` (no minimisation)."""
    return Explorer(model, reduction, bounds, on_execution=on_execution, progress=progress).run()


@dataclass
class Replay:
    violation: Violation | None = None
    records: list = field(default_factory=list)
    mismatch: str | None = None  # the schedule no longer fits the model
    error: dict | None = None
    execution: Execution | None = None


def replay(model: Model, schedule: list[int], max_steps: int = 10_000) -> Replay:
    """Run ``schedule`` (thread ids) deterministically with full tracing."""
    try:
        ex = Execution(model, tracing=True, max_steps=max_steps)
    except ModelFailure as failure:
        return Replay(error=failure_record(failure, []))
    out = Replay(execution=ex)
    out.records = ex.records
    names = [t.name for t in ex.threads]
    found = ex.initial_violations()
    if found:
        out.violation = found[0]
        if schedule:
            out.mismatch = (f"the initial state already breaks {found[0].invariant}, "
                            f"{len(schedule)} steps before the schedule's end")
        return out
    for n, tid in enumerate(schedule):
        if not 0 <= tid < len(ex.threads):
            out.mismatch = f"step {n + 1}: the model has no thread number {tid}"
            return out
        t = ex.threads[tid]
        if t.finished:
            out.mismatch = f"step {n + 1}: thread {names[tid]} has already finished"
            return out
        if not ex.is_enabled(tid):
            out.mismatch = (f"step {n + 1}: thread {names[tid]} is not enabled "
                            f"({t.pending.describe()})")
            return out
        try:
            ex.step(tid)
        except Violation as v:
            out.violation = v
            if n + 1 < len(schedule):
                out.mismatch = (f"the violation came at step {n + 1}, "
                                f"{len(schedule) - n - 1} steps before the schedule's end")
            return out
        except ModelFailure as failure:
            out.error = failure_record(failure, schedule[:n + 1])
            return out
        except StepBoundHit as hit:
            out.mismatch = str(hit)
            return out
    if not ex.enabled():
        out.violation = ex.final_violation()
    return out


def trace_signature(events):
    """A key shared by exactly the executions of one Mazurkiewicz trace: the
    steps (thread, index in thread) and the order of every conflicting pair."""
    ids = []
    counts = {}
    for ev in events:
        counts[ev.tid] = counts.get(ev.tid, 0) + 1
        ids.append((ev.tid, counts[ev.tid]))
    order = []
    for j, ej in enumerate(events):
        for i in range(j):
            ei = events[i]
            if ei.tid != ej.tid and ei.conflicts(ej):
                order.append((ids[i], ids[j]))
    return frozenset(ids), frozenset(order)
