"""Dynamic hand-over: a running work unit gives away part of its own subtree.

A unit of the split (parallel.py) can hold most of the work (under sleep
sets the first units of a level hold most of it), and splitting it deeper
in advance costs more per execution. So a unit that another worker could
relieve hands over, between two executions, the untried branches of its
shallowest choice point below its root: for dpor the branches of that
node's wakeup tree not yet explored, for ``none`` its threads not yet run.
Each becomes a unit of its own (:func:`HandingExplorer.hand_over`): its
prefix is the path to that node and the branch's thread; its sleep set is
the one that node gives the branch under optimal DPOR (the node's sleep,
its explored branches and the branch being explored, each where its step
commutes with the branch's), held as the units of the split hold theirs:
it prunes, but no reversal is skipped for it. The node counts the branch
as explored (it is, by the new unit), so later branches there sleep on it.

What that loses, and how it is found again. A race inside the handed-over
subtree whose reversal point lies above its root (at the node it was
handed from, or higher) would, in one process, go into that node's wakeup
tree. The new unit reverses such races into the wakeup trees of its
prefix's nodes, from the depth of the split unit's root down (the
explorer's ``low``; above that root, the split's other units cover every
order), and returns, for each node, the threads those trees start with
(:meth:`HandingExplorer.returns`). Whatever branch of a wakeup tree a race
would add starts with one of them, or with a thread that starts one of
them (a weak initial): it explores traces that start there with that
thread. The owner of that node never takes them live; instead every unit,
when it leaves a node on the path to a point it handed work over from,
records which threads were explored or asleep there
(:meth:`HandingExplorer.ghosts`). A thread returned for a node is dropped
if the node's owner explored it or had it asleep there (as the explorer
drops a wakeup branch whose thread is done or asleep), and otherwise
becomes a new unit: the path to that node and the thread, with nothing
asleep, which explores every trace that starts so, a superset of what the
one process would have explored from the race (:class:`Ledger`). Such a
unit returns its own races in turn; the node records it, so a thread
becomes a unit there once. The path names the node: every node belongs to
exactly one unit (the one with the longest prefix of its path), and a
thread is explored from a node once. A returned thread for which no record
ever comes (its owner stopped early) makes the run ``incomplete``.

The price is the nodes left asleep-free: a new unit for a returned thread
explores its whole subtree with nothing asleep. bench/bench_parallel.py
measures it (``redundancy``), tests/test_handover.py proves the union on
random programs against exhaustive exploration and the interpreter.
"""

from __future__ import annotations

from dataclasses import replace

from .scheduler import Explorer


class HandingExplorer(Explorer):
    """The explorer of a unit that can hand over untried branches of its
    shallowest choice point (see the module docstring). ``unit.low``: the
    depth of the split unit's root it descends from (None: its own)."""

    def __init__(self, model, reduction, bounds, unit, **options):
        super().__init__(model, reduction, bounds, unit=unit, **options)
        if unit.low is not None:
            self.low = unit.low  # (the scheduler's hook: races above the root reversed too)
        self.unit = unit
        self.marked = set()  # depths on the stack at or above a node work was handed from
        self.left = {}  # path -> threads explored or asleep at a marked node when it was left
        self.given = []  # the prefixes of the units handed over

    def hand_over(self):
        """The untried branches of the shallowest choice point below the
        root that has any, as Units (index 0: the caller numbers them); []
        when there is none. Call between executions (from ``should_stop``)."""
        if self.bounded:
            return []  # bounded partial-order reduction has no wakeup trees to hand over
        stack = self.stack
        for depth in range(self.floor, len(stack)):
            node = stack[depth]
            branches = self._untried(node)
            if branches:
                break
        else:
            return []
        path = tuple(n.chosen for n in stack[:depth])
        out = []
        for tid, event in branches:
            sleep = {}
            if self.dpor:
                # The sleep set one process would give the branch: what is
                # asleep or explored here, and the branch being explored.
                here = {**node.sleep, **node.done, node.chosen: node.event}
                sleep = {q: e for q, e in here.items()
                         if q != tid and e is not None and not e.conflicts(event)}
            out.append(replace(self.unit, index=0, prefix=path + (tid,), sleep=sleep,
                               low=self.low if self.dpor else None))
            node.done[tid] = event  # explored, by the new unit
        self.marked.update(range(self.floor, depth + 1))
        self.given += [u.prefix for u in out]
        return out

    def _untried(self, node):
        """(thread, Event) of the branches still to explore from ``node``."""
        if self.dpor:
            out, seen = [], set()
            for tid, event, _ in node.wakeup:
                if (tid not in node.done and tid not in node.sleep and tid in node.enabled
                        and tid != node.chosen and tid not in seen and event is not None):
                    out.append((tid, event))
                    seen.add(tid)
            if out:
                node.wakeup[:] = [b for b in node.wakeup if b[0] not in seen]
            return out
        bound = self.bounds.max_preemptions  # (a thread past it stays, for the owner to count as cut)
        return [(q, None) for q in sorted(node.backtrack)
                if q not in node.done and q not in node.sleep and q != node.chosen
                and (bound is None or node.base + node.cost(q) <= bound)]

    def proceed(self):
        before = list(self.stack)
        chosen = tuple(n.chosen for n in before)  # (the node that takes its next branch changes its own)
        going = super().proceed()
        for depth in range(len(self.stack), len(before)):
            if depth in self.marked:  # left, with work handed over at or below it
                self.marked.discard(depth)
                node = before[depth]
                self.left[chosen[:depth]] = {**node.sleep, **node.done}
        return going

    def ghosts(self):
        """path -> the threads explored or asleep at each node this unit
        left after handing work over at or below it (thread -> Event)."""
        return self.left

    def returns(self):
        """path -> the threads the wakeup trees of this unit's prefix nodes
        (from ``low``) start with: races of this subtree whose reversal
        belongs above its root (thread -> the Event of its step there)."""
        out = {}
        for depth in range(self.low, min(self.floor, len(self.stack))):
            node = self.stack[depth]
            threads = {b[0]: b[1] for b in node.wakeup}
            if threads:
                out[tuple(n.chosen for n in self.stack[:depth])] = threads
        return out


class Ledger:
    """The coordinator's record of the nodes units left after handing work
    over, and of the threads returned for them: a returned thread that its
    node's owner neither explored nor had asleep becomes a new unit, with
    nothing asleep, once (see the module docstring)."""

    def __init__(self, roots):
        self.roots = {u.prefix for u in roots}  # the split's units: returns go no higher
        self.unit = roots[0] if roots else None  # (new units are made like them)
        self.left = {}  # path -> threads explored, asleep or given to a unit there (-> Event)
        self.waiting = {}  # path -> threads returned before the node's owner left it (-> Event)

    def add(self, ghosts, returns):
        """One unit's ghosts() and returns(); the new units they make (index 0)."""
        new = []
        for path, threads in ghosts.items():
            self.left[path] = dict(threads)
            new += self._give(path, self.waiting.pop(path, {}))
        for path, threads in returns.items():
            if path in self.left:
                new += self._give(path, threads)
            else:
                self.waiting.setdefault(path, {}).update(threads)
        return new

    def _give(self, path, threads):
        skip = self.left[path]
        out = []
        for tid, event in sorted(threads.items()):
            if tid not in skip:
                # Asleep: what was explored there before, where it commutes
                # (the branches of the node's owner come first, then these).
                sleep = {q: e for q, e in skip.items()
                         if e is not None and event is not None and not e.conflicts(event)}
                skip[tid] = event
                out.append(replace(self.unit, index=0, prefix=path + (tid,), sleep=sleep, low=self._root(path)))
        return out

    def _root(self, path):
        """The depth of the split unit's root above ``path``."""
        return next(m for m in range(len(path), -1, -1) if path[:m] in self.roots)

    def unanswered(self):
        """Paths returned for whose node no record came: not every trace is known explored."""
        return sorted(self.waiting)


def explore_here(model, reduction, bounds, found, every, seed=0, make=HandingExplorer):
    """The units ``found`` explored one after another in this process, each
    handing over after every ``every`` executions; the records of ghosts
    and returns reach the Ledger in an order a seeded random number
    generator picks (as messages between processes may). For tests: returns
    (the units' outcomes, every unit explored, the Ledger). ``make``: the
    explorer of a unit, HandingExplorer's arguments."""
    import random

    rng = random.Random(seed)
    ledger = Ledger(found)
    todo, records, done, outcomes = list(found), [], [], []
    while todo or records:
        if records and (not todo or rng.random() < 0.5):
            todo += ledger.add(*records.pop(rng.randrange(len(records))))
            continue
        unit = todo.pop(rng.randrange(len(todo)))
        handed = []

        def give(search, handed=handed):
            if (search.stats.executions + search.stats.blocked) % every == every - 1:
                handed.extend(search.hand_over())

        explorer = make(model, reduction, bounds, unit, should_stop=give)
        outcomes.append(explorer.run())
        done.append(unit)
        todo += handed
        records.append((explorer.ghosts(), explorer.returns()))
    return outcomes, done, ledger
