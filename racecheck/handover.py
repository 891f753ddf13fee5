"""Dynamic hand-over: a running work unit gives away part of its own subtree.

A unit of the split (parallel.py) can hold most of the work (under sleep
sets the first units of a level hold most of it), and splitting it deeper
in advance costs more per execution. So a unit that another worker could
relieve hands over, between two executions, the untried branches of its
shallowest choice point below its root: for dpor the branches of that
node's wakeup tree not yet explored, for ``none`` its threads not yet run.
Each becomes a unit of its own (:meth:`HandingExplorer.hand_over`): its
prefix is the path to that node and the branch's thread; its sleep set is
the one that node gives the branch under optimal DPOR (the node's sleep,
its explored branches and the branch being explored, each where its step
commutes with the branch's), held as the units of the split hold theirs:
it prunes, and a reversal is skipped for it only where it starts v (an
initial, not only a weak one). The node counts the branch
as explored (it is, by the new unit), and later branches there sleep on it
as pruning only (see below).

What that loses, and how it is found again. A race inside the handed-over
subtree whose reversal point lies above its root (at the node it was
handed from, or higher) would, in one process, go into that node's wakeup
tree while the owner is still below that node. The new unit reverses such
races into the wakeup trees of its prefix's nodes, from the depth of the
split unit's root down (the explorer's ``low``: above that root the
split's other units cover every order), and returns the threads those
trees start with (:meth:`HandingExplorer.returns`): whatever branch a race
adds there explores traces that start at that node with one of them. Its
copy of each such node starts with the node's context (below) as a sleep
set, so that a reversal there starts with a thread outside it whenever v
has one, as the owner's would: a thread in the context is dropped when
returned, and a reversal that started with one, though v had another
initial, lost its trace (random programs with an rwsem showed it). Of
that sleep set, a thread explored at the node (before the hand-over, or
being explored at it) counts as explored, as in one process: a reversal
there is skipped for it as a weak initial, since its subtree, with the
units handed over from it and made for what they return, explores every
trace it starts. What was asleep there, or what the owner held as pruning
only there (:func:`_held_at`), is held so (``unit.held``): the owner's
held threads counted as explored missed traces in 6 of 1,200 random
programs with an rwsem. (All of the context held as pruning only, the
reversals one process skips for an explored thread were made, and the
branches they added owned no trace: lastzero(13) on 2 workers cut short
14,108 executions, now 6,144.)

The owner has gone on meanwhile, and may explore other branches at that
node before the returned thread is explored, where one process would
explore the thread first. Each unit carries, for every node of its prefix
from ``low``, what was explored or asleep there when it was handed over
(its ``context``: what one process explores there before the returned
thread, whatever the owner does next). A returned thread in that context
is dropped (one process would find it explored or asleep). The branches
the owner explores there later may count as asleep for the returned
thread only because they do not count on the handed subtrees (below):
before the owner held them so, units made for returned threads that took
the owner's later branches as asleep missed 6 of readers(7)'s 128 traces.

The owner's own branches after a hand-over. In one process the races of
a handed subtree go into the wakeup trees of the nodes above it, where the
branches explored after it follow them, and such a branch skips a
reversal for a thread asleep at its start (a weak initial) trusting them;
here they go to the coordinator. So the node the owner handed over from
and each node above it, down from the unit's root, ``holds``: every branch
the owner takes there from then on holds all that is asleep at its start
as pruning only (:meth:`HandingExplorer._hold`), the thread of the branch
it was exploring when it handed over included. At those nodes themselves
the handed branches, and above the hand-over the branch being explored
(it holds the handed subtrees), are held as pruning only too. Such a
thread prunes, and a reversal is skipped for it only where it starts v
(``inherited``, as a unit's starting sleep set), so each branch the owner
explores after a hand-over explores every trace that starts with it by
itself. (Holding only the handed branches and the branch being explored
above them, a branch taken later skipped a reversal for the thread of a
branch explored before it: a random program with an rwsem ran 47 of its
48 traces, and lastzero(5), handing over from a deep choice point, 63 of
its 64.) A returned
thread is then decided once the unit that owns its node is done
(:class:`Ledger`): if the owner explored it there, or handed it over,
nothing is made; else it becomes a unit of its own, once per node and
thread: the path to the node and the thread, asleep on the context, on
what the owner explored there after the hand-over, and on the units made
there before for other returned threads (one process explores a node's
branches one after another), where its step commutes.

The price is the work of the units made for returned threads, and the
reversals the owner no longer skips after a hand-over.
bench/bench_parallel.py measures the executions beyond one process's
(redundancy), tests/test_handover.py checks the union on random programs
against exhaustive exploration and the interpreter.
"""

from __future__ import annotations

from dataclasses import replace

from .scheduler import Explorer


class HandingExplorer(Explorer):
    """The explorer of a unit that can hand over untried branches of its
    shallowest choice point (see the module docstring). ``unit.low``: the
    depth of the split unit's root it descends from (None: its own);
    ``unit.context``: path -> {thread: Event} explored or asleep at each
    node of its prefix from ``low`` when it was handed over; ``unit.held``:
    path -> the threads of it held as pruning only there."""

    def __init__(self, model, reduction, bounds, unit, **options):
        super().__init__(model, reduction, bounds, unit=unit, **options)
        if unit.low is not None:
            self.low = unit.low  # (the scheduler's hook: races above the root reversed too)
        # The nodes of the prefix from low start with what was explored or
        # asleep there at the hand-over: a reversal there starts with a
        # thread outside it when v has one, as the owner's would (a thread
        # in it, returned, is dropped). What was asleep there is held as
        # pruning only; what was explored there counts as explored, as in
        # one process (see the module docstring).
        held = _held_of(unit)
        for path, here in (unit.context or {}).items():
            self.prefix_sleep[len(path)] = (here, held[path])
        self.unit = unit
        self.given = []  # the prefixes of the units handed over
        self.owned = {}  # path -> the node there, for the nodes at and above a hand-over

    def hand_over(self, pick=None):
        """The untried branches of the shallowest choice point below the
        root that has any, as Units (index 0: the caller numbers them); []
        when there is none. Call between executions (from ``should_stop``).
        ``pick``: given the choice points with untried branches as
        (depth, branches), shallowest first, the one to hand over from
        (tests pick any: the union is complete whichever it is)."""
        if self.bounded:
            return []  # bounded partial-order reduction has no wakeup trees to hand over
        stack = self.stack
        found = ((d, b) for d in range(self.floor, len(stack)) if (b := self._untried(stack[d])))
        if pick is None:
            chosen = next(found, None)
        else:
            found = list(found)
            chosen = pick(found) if found else None
        if chosen is None:
            return []
        depth, branches = chosen
        node = stack[depth]
        if self.dpor:
            taken = {tid for tid, _ in branches}
            node.wakeup[:] = [b for b in node.wakeup if b[0] not in taken]
        path = tuple(n.chosen for n in stack[:depth])
        sleeps = []
        for tid, event in branches:
            # The sleep set one process would give the branch: what is
            # asleep or explored here, and the branch being explored.
            here = {**node.sleep, **node.done, node.chosen: node.event}
            sleeps.append(_asleep(here, tid, event) if self.dpor else {})
            node.done[tid] = event  # explored, by the new unit
        context, held, owners = {}, None, None
        if self.dpor:
            context, held = self._handed_context(depth)
            owners = self._hold(depth, [tid for tid, _ in branches])
        out = [replace(self.unit, index=0, prefix=path + (tid,), sleep=sleep,
                       low=self.low if self.dpor else None, context=context, held=held, owners=owners)
               for (tid, _), sleep in zip(branches, sleeps)]
        self.given += [u.prefix for u in out]
        return out

    def _hold(self, depth, handed):
        """After handing over ``handed`` from the node at ``depth``: the
        races of the handed subtrees go to the ledger, not into this unit's
        wakeup trees, so the branches this unit explores from now on at
        that node and at the nodes above it must not count on them. In one
        process such a branch skips a reversal for a thread asleep at its
        start (a weak initial) trusting that the races of every branch
        explored before it, the handed ones included, put into its wakeup
        tree what that skip leaves out. So those nodes ``holds``: each
        branch taken there from now on holds every thread asleep at its
        start as pruning only, and explores every trace that starts with it
        by itself. The handed branches there, and the branch being explored
        at each node above (it holds the handed subtrees), are held as
        pruning only at the node itself (``inherited``): a reversal there
        is skipped for them only where one starts v. Returns the owners of
        the new units' context: path -> the prefix of the unit that
        explores that node."""
        stack = self.stack
        node = stack[depth]
        node.inherited += tuple(handed)
        for d in range(self.floor, depth + 1):
            above = stack[d]
            above.holds = True
            if d < depth and above.chosen not in above.inherited:
                above.inherited += (above.chosen,)
        owners = dict(self.unit.owners or {})
        for d in range(self.floor, depth + 1):
            path = tuple(n.chosen for n in stack[:d])
            self.owned[path] = stack[d]
            owners[path] = self.unit.prefix
        return owners

    def record(self):
        """What the ledger takes from this unit once it is done: the threads
        it returns (:meth:`returns`), and what it explored or handed over at
        each node it owned at a hand-over (path -> {thread: Event})."""
        return {"returns": self.returns(), "explored": {p: dict(n.done) for p, n in self.owned.items()}}

    def _handed_context(self, depth):
        """The context of units handed over from the node at ``depth``: this
        unit's own, and what is explored or asleep at each node of the stack
        down to that one (the branch being explored included); and of it,
        the threads held as pruning only at each node (:func:`_held_at`)."""
        out = dict(self.unit.context or {})
        held = _held_of(self.unit)
        for d in range(self.floor, depth + 1):
            node = self.stack[d]
            path = tuple(n.chosen for n in self.stack[:d])
            out[path] = {**node.sleep, **node.done, node.chosen: node.event}
            held[path] = _held_at(node)
        return out, held

    def _untried(self, node):
        """(thread, Event) of the branches still to explore from ``node``."""
        if self.dpor:
            out, seen = [], set()
            for tid, event, _ in node.wakeup:
                if (tid not in node.done and tid not in node.sleep and tid in node.enabled
                        and tid != node.chosen and tid not in seen and event is not None):
                    out.append((tid, event))
                    seen.add(tid)
            return out
        bound = self.bounds.max_preemptions  # (a thread past it stays, for the owner to count as cut)
        return [(q, None) for q in sorted(node.backtrack)
                if q not in node.done and q not in node.sleep and q != node.chosen
                and (bound is None or node.base + node.cost(q) <= bound)]

    def returns(self):
        """path -> {thread: Event}: the threads the wakeup trees of this
        unit's prefix nodes (from ``low``) start with, races of this subtree
        whose reversal belongs above its root."""
        out = {}
        for depth in range(self.low, min(self.floor, len(self.stack))):
            node = self.stack[depth]
            if node.wakeup:
                out[tuple(n.chosen for n in self.stack[:depth])] = {b[0]: b[1] for b in node.wakeup}
        return out


def _held_at(node):
    """The threads of a node's context that a unit handed over below it
    holds as pruning only there: those asleep there (one process skips a
    reversal for one as a weak initial trusting the wakeup subtree that the
    node follows, which a unit has not got; counted as explored they missed
    nothing on 1,200 random programs, but gained nothing either), and those
    the owner holds so (handed over, asleep at its own root or at the start
    of a branch taken after a hand-over: counted as explored, they missed
    traces). A thread explored there, before the hand-over or being
    explored at it, counts as explored: its subtree, with the units handed
    over from it and made for what they return, explores every trace it
    starts, as in one process."""
    return tuple(set(node.sleep).union(node.inherited))


def _held_of(unit):
    """path -> the threads ``unit`` holds as pruning only at that node of
    its context (all of the context where ``unit.held`` says nothing)."""
    kept = unit.held or {}
    return {path: kept.get(path, tuple(here)) for path, here in (unit.context or {}).items()}


def _asleep(here, tid, event):
    """What of ``here`` (thread -> Event) a branch of ``tid`` running
    ``event`` has asleep: the steps that commute with it."""
    return {q: e for q, e in here.items()
            if q != tid and e is not None and event is not None and not e.conflicts(event)}


class Ledger:
    """The coordinator's record of the threads returned for nodes above
    handed-over units' roots. A returned thread not in the returning unit's
    context is decided once the unit that owns the node (the one that
    explores it) is done: if that unit explored or handed over the thread
    there, nothing is made; else it becomes a new unit, once per node and
    thread (see the module docstring)."""

    def __init__(self, roots):
        self.roots = {u.prefix for u in roots}  # the split's units: returns go no higher
        self.unit = roots[0] if roots else None  # (new units are made like them)
        self.made = set()  # (path, thread) decided
        self.made_at = {}  # path -> {thread: Event} of the units made there, in order
        self.explored = {}  # owner's prefix -> path -> {thread: Event}, once that unit is done
        self.waiting = {}  # owner's prefix -> [(unit, path, thread, Event)] returned before

    def add(self, unit, record):
        """What ``unit``, now done, recorded (HandingExplorer.record): the
        new units, for its own returns and for those that waited for it."""
        self.explored[unit.prefix] = record.get("explored", {})
        new = [u for args in self.waiting.pop(unit.prefix, []) for u in self._decide(*args)]
        for path, threads in record.get("returns", {}).items():
            here = unit.context[path]
            for tid, event in sorted(threads.items()):
                if tid in here:
                    continue  # explored or asleep there before the hand-over
                owner = unit.owners[path]
                if owner in self.explored:
                    new += self._decide(unit, path, tid, event)
                else:
                    self.waiting.setdefault(owner, []).append((unit, path, tid, event))
        return new

    def _decide(self, unit, path, tid, event):
        """[] or the unit for ``tid`` returned at ``path``, the node's owner done."""
        if (path, tid) in self.made:
            return []
        self.made.add((path, tid))
        explored = self.explored[unit.owners[path]].get(path, {})
        if tid in explored:
            return []  # its owner explored it there, or handed it over
        # Asleep: what was explored or asleep there at the hand-over, what
        # the owner explored there after it (each of those branches
        # explores every trace it starts, as the owner held the handed
        # subtrees as pruning only), and the units made there before for
        # other returned threads, as one process explores the branches of a
        # node one after the other (without them two returned threads that
        # commute each explored the traces that start with both).
        made_here = self.made_at.setdefault(path, {})
        here = {**unit.context[path], **explored, **made_here}
        made_here[tid] = event
        context = {p: c for p, c in unit.context.items() if len(p) < len(path)}
        context[path] = {**here, tid: event}
        # Held as pruning only: what the returning unit held at the nodes
        # above and at this one, and here what the owner explored and the
        # units made here.
        held = {p: h for p, h in _held_of(unit).items() if len(p) <= len(path)}
        held[path] = tuple(set(held[path]).union(explored, made_here))
        owners = {p: o for p, o in unit.owners.items() if len(p) <= len(path)}
        return [replace(self.unit, index=0, prefix=path + (tid,), sleep=_asleep(here, tid, event),
                        low=self._root(path), context=context, held=held, owners=owners,
                        family=unit.family)]

    def _root(self, path):
        """The depth of the split unit's root above ``path``."""
        return next(m for m in range(len(path), -1, -1) if path[:m] in self.roots)


def explore_here(model, reduction, bounds, found, every, seed=0, make=HandingExplorer, anywhere=False):
    """The units ``found`` explored one after another in this process, each
    handing over after every ``every`` executions, the next unit picked by
    a seeded random number generator. For tests: returns (the units'
    outcomes, every unit explored). ``make``: the explorer of a unit,
    HandingExplorer's arguments. ``anywhere``: hand over from any choice
    point with untried branches, picked at random, not the shallowest."""
    import random

    rng = random.Random(seed)
    pick = rng.choice if anywhere else None
    ledger = Ledger(found)
    todo, done, outcomes = list(found), [], []
    while todo:
        unit = todo.pop(rng.randrange(len(todo)))
        handed = []

        def give(search, handed=handed):
            if (search.stats.executions + search.stats.blocked) % every == every - 1:
                handed.extend(search.hand_over(pick))

        explorer = make(model, reduction, bounds, unit, should_stop=give)
        outcomes.append(explorer.run())
        done.append(unit)
        todo += handed + ledger.add(unit, explorer.record())
    return outcomes, done
