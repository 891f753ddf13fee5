"""dfs on several processes: the exploration split into work units.

A work unit is a subtree of the exploration as plain data: the schedule
prefix that leads to its root, and the sleep set it starts with (empty, see
below). The units are the nodes at depth ``k`` of the tree that the first
``k`` steps make, explored with sleep sets alone (every thread not asleep is
a branch): so every execution's first ``k`` steps are some unit's prefix, or
it is equivalent to an execution that starts with one (sleep sets are
sound). A worker explores its unit's subtree with the search's reduction
(:class:`~racecheck.scheduler.Explorer` with ``unit=``), from the unit's
root as from an initial state: dpor from a state with nothing asleep
explores every trace from that state. A race whose reversal belongs above
the root is left to the unit whose prefix the reversal starts. So the union
is complete: the same verdict as one process.

Unbounded dpor on this machine's processes starts instead from the whole
tree as one unit (:func:`start`), and the workers share it by hand-over
alone (handover.py): a branch becomes a unit only when a race makes it, as
in one process. A split makes a unit of every thread not asleep at its
nodes, and under sleep sets some of those own no trace yet cost as much as
the rest (see :func:`start`). The split stays for ``none``, for dpor under
a preemption bound (which hands nothing over) and for the cluster.

Why the units start with nothing asleep: optimal DPOR skips a reversal when
a thread asleep there could start it (a weak initial), because the race
above the node that put the thread to sleep handed a wakeup subtree down
that explores the rest. A unit has no such subtree: with the sleep set of
its prefix it misses traces (the test of this module shows it on random
programs). So its sleep set prunes, and skips a reversal only where one of
its threads starts v (an initial: its step is in v, after nothing of v it
depends on): every trace that begins with v then begins with that thread,
and the unit that explores it covers them, whatever comes after v. The
price is redundancy: a unit explores again the traces an earlier unit's
sleep entry stood for, and the first ``k`` levels branch on
every thread not asleep where optimal DPOR branches only on races;
:class:`Result` counts the executions.

The verdict does not depend on the number of workers: units are numbered in
the order one process would reach them, results are taken in that order, and
the first unit with a violation (or a model error) decides, as it would
alone; later units are dropped once it is known. A worker with nothing to do
takes half of another's units not yet started or, when none has two, part
of a running unit's subtree (handover.py). The units handed over from a
unit of the split (and those made for what they return) are its family,
taken with it once all are done; which of them meets a violation first
depends on timing, so when a family with several units has one, its split
unit is explored again alone to its first violation, which is what the
run reports (:func:`first_in_order`): the same for any timing.

Invariants that compare executions with each other (``across``, such as
lock_order) need one search to see every execution: such models run in one
process.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import time
from dataclasses import dataclass, field

from .execution import Execution, ModelFailure, StepBoundHit
from .handover import HandingExplorer, Ledger
from .runtime import Violation
from .scheduler import Explorer, preemptions
from .search import Bounds, Checks, Outcome, Reason, Stats, Stop, Verdict


@dataclass(frozen=True)
class Unit:
    """A subtree of the exploration: plain, picklable data."""

    index: int  # the order one process would reach it in
    prefix: tuple  # thread ids, one per step, from the initial state to the unit's root
    sleep: dict = field(default_factory=dict)  # thread -> Event at the root, covered elsewhere
    # handed over from a running unit (handover.py): the depth of the split
    # unit's root it descends from, up to which its races are reversed, and
    # what was explored or asleep at its prefix's nodes from there (path ->
    # {thread: Event}) when it was handed over
    low: int | None = None
    context: dict | None = None
    owners: dict | None = None  # path -> the prefix of the unit that explores that node
    # of the context, the threads held as pruning only at each node (path ->
    # tuple): asleep there, or held so by its owner; None: all of them
    held: dict | None = None
    family: int = 0  # the index of the split's unit it comes from (parallel.InOrder)


def units(model, reduction="dpor", bounds=None, depth=2, root=None):
    """The work units at ``depth``: prefixes of ``depth`` steps (shorter when
    every thread has finished or waits), with their sleep sets under dpor.
    Returns ``(units, pruned)``: prefixes a preemption bound cut are counted.
    ``root``: only those below that unit's prefix (see :func:`children`)."""
    bounds = bounds or Bounds()
    dpor = reduction == "dpor"
    out, pruned = [], [0]

    def run(prefix):
        ex = Execution(model, max_steps=bounds.max_steps, plain_checks=None, gathered={})
        ex.checks = False
        for tid in prefix:
            ex.step(tid)
        return ex

    def visit(prefix, sleep, last, base):
        try:
            ex = run(prefix)
            enabled = ex.enabled()
        except (ModelFailure, StepBoundHit, Violation):
            enabled = []  # its unit runs it and reports what happens
        if len(prefix) >= depth or not enabled:
            # The sleep set prunes equivalent prefixes, but the unit starts
            # without it: optimal DPOR skips a reversal whose weak initial is
            # asleep, trusting the wakeup subtree that the race above the
            # root would have handed down, which a unit has not got.
            out.append(Unit(len(out), tuple(prefix), dict(sleep)))
            return
        done = {}
        # The order the explorer takes branches in (the running thread first,
        # then by id): the units come in the order one process reaches them.
        for tid in sorted(enabled, key=lambda t: (t != last, t)):
            if tid in sleep:
                continue
            cost = 1 if last is not None and last != tid and last in enabled else 0
            if bounds.max_preemptions is not None and base + cost > bounds.max_preemptions:
                pruned[0] += 1
                continue
            child = run(prefix)
            try:
                event = child.step(tid)
            except Violation:
                event = child.events[-1]
            except (ModelFailure, StepBoundHit):
                out.append(Unit(len(out), tuple(prefix) + (tid,), {}))
                continue
            child_sleep = {}
            if dpor:
                child_sleep = {q: e for q, e in {**sleep, **done}.items() if not e.conflicts(event)}
            visit(prefix + [tid], child_sleep, tid, base + cost)
            done[tid] = event

    if root is None:
        visit([], {}, None, 0)
    else:
        prefix = list(root.prefix)
        base = preemptions(model, prefix, bounds.max_steps) if prefix else 0
        visit(prefix, dict(root.sleep), prefix[-1] if prefix else None, base)
    return out, pruned[0]


def children(model, unit, reduction="dpor", bounds=None):
    """``unit`` split one step deeper: the units below its root, enumerated
    from its sleep set as :func:`units` enumerates from the initial state.
    A split may mix depths (some units split, others not): every unit is
    still explored from its root with nothing asleep, and the sleep sets
    that prune the prefixes are those of one tree; that is what makes a
    subtree of a slow unit something to hand to an idle worker. Returns
    ``(units, pruned)`` as :func:`units` does: a preemption bound's cuts
    must reach the outcome."""
    return units(model, reduction, bounds, len(unit.prefix) + 1, root=unit)


# Units a split aims at, whatever the number of workers (see split()). Few:
# a unit costs more per execution the deeper its root (its root has no sleep
# set to spare reversals: more probes), and lastzero(9) split 10, 54 and 210
# ways costs 1.4, 1.7 and 2.3 times one process, in one process; split 90
# ways on 2 workers, lastzero(12) took 17.9 s against 14.3 s alone.
UNITS = 8
PER_WORKER = 4  # units a worker past UNITS / PER_WORKER workers
RUNS = 2  # runs a worker at least (tasks())


PROBE = 32  # executions (blocked ones included) a unit is tried for before the split calls it large
PATIENCE = 16  # executions a unit asked to hand over tries for before it says it has nothing


def split(model, reduction, bounds, wanted=UNITS, most=12, probe=PROBE):
    """At least ``wanted`` units (when the first ``most`` steps have that
    many), grown by splitting large units first. Each unit is tried for
    ``probe`` executions (sleep-set blocked ones included: a unit can cost
    much and finish none); one that ends within them is small and stays
    whole; of the others, the shallowest (the first in unit order of those)
    is split one step deeper (:func:`children`), and so on until there are
    enough or none is large.
    Under sleep sets a few units hold most of the work (lastzero(12) split
    at one step: one unit of 13 holds half of it), so units of one depth for
    all leave workers idle behind the largest. The tries are counted in
    executions, not time: the split depends on the model alone (and on the
    number of workers past :data:`UNITS` / PER_WORKER), and so does the
    counterexample, the first unit's in unit order that has one. Any mix of
    depths explores every trace."""
    found, pruned = units(model, reduction, bounds, 1)
    known = {}  # prefix -> whether the unit is large
    while len(found) < wanted:
        for i, u in enumerate(found):
            if u.prefix not in known:
                known[u.prefix] = len(u.prefix) < most and _large(model, u, reduction, bounds, probe)
        large = [i for i, u in enumerate(found) if known[u.prefix]]
        if not large:
            break
        i = min(large, key=lambda i: (len(found[i].prefix), i))  # the shallowest first: breadth first
        kids, cut = children(model, found[i], reduction, bounds)
        if len(kids) <= 1:
            known[found[i].prefix] = False  # no step left to split on
            continue
        found[i:i + 1] = kids
        pruned += cut
    return [dataclasses.replace(u, index=n, family=n) for n, u in enumerate(found)], pruned


def _large(model, unit, reduction, bounds, probe):
    """Whether ``unit`` runs past ``probe`` executions (blocked ones included)."""
    def enough(search):
        s = search.stats
        return Reason(Stop.max_executions, "large") if s.executions + s.blocked >= probe else None
    b = Bounds(max_steps=bounds.max_steps, max_preemptions=bounds.max_preemptions)
    return Explorer(model, reduction, b, unit=unit, should_stop=enough).run().verdict == Verdict.incomplete


def start(model, reduction, bounds, workers):
    """The units a run on ``workers`` processes starts from, and the
    prefixes a preemption bound cut. Unbounded dpor: the whole tree as one
    unit, which hands over the branches its races make to the workers that
    ask (handover.py). A split under sleep sets makes a unit for every
    thread not asleep, and a unit whose sleep set (held as pruning only)
    holds a thread that nothing wakes owns no trace yet explores every
    order of the others, each cut short: 12 of lastzero(13)'s 14 units at
    one step, half the CPU of the split. Otherwise (``none``, dpor under a
    preemption bound, which hands nothing over, and the cluster, whose
    units are Dask tasks): :func:`split`."""
    if reduction == "dpor" and bounds.max_preemptions is None:
        return [Unit(0, ())], 0
    return split(model, reduction, bounds, wanted(workers))


def wanted(workers):
    """The units of a split for ``workers``: the same split for up to
    :data:`UNITS` / PER_WORKER workers, and that many a worker past them."""
    return max(UNITS, PER_WORKER * workers)


def tasks(found, workers):
    """The units in contiguous runs that share a prefix (a subtree each),
    two runs a worker or more: what a worker is handed at a time. A worker
    explores its run's units in order, and gives the back half of what it
    has not started to a worker with nothing left (see :func:`explore`)."""
    runs = [[u] for u in found]
    for depth in range(1, depth_of(found)):
        grouped = {}
        for u in found:
            grouped.setdefault(tuple(u.prefix[:depth]), []).append(u)
        if len(grouped) >= RUNS * workers:
            runs = list(grouped.values())
            break
    return runs


def explore_unit(model, unit, reduction, bounds, deadline, should_stop=None):
    """One unit's outcome (in a worker), within the run's ``deadline``
    (seconds since the epoch: workers on other machines share no monotonic
    clock); ``should_stop`` as the explorer's."""
    left = within(bounds, deadline)
    if left is None:
        return Outcome(Verdict.incomplete, Stats(), reason=Reason.time_limit(bounds.timeout))
    return Explorer(model, reduction, left, unit=unit, should_stop=should_stop).run()


def within(bounds, deadline):
    """``bounds`` with the time left before ``deadline``; None when none is."""
    if deadline is None:
        return bounds
    left = deadline - time.time()
    return dataclasses.replace(bounds, timeout=left) if left > 0 else None


class InOrder:
    """The units' outcomes, arriving in any order, taken in unit order as one
    search's: the first unit with a violation or an error decides, as it
    would alone, and the units after it do not count. A unit of the split
    and the units handed over from it (or made for what they returned) are
    one family, taken together once all of them are done: a family whose
    units found a violation or an error decides, and when more than one
    unit explored its subtree, which of them met one first depends on
    timing, so :attr:`again` names the split unit to explore again alone
    for the one it meets first (:func:`first_in_order`). ``progress`` gets
    the merged statistics of every unit done so far, taken or waiting."""

    def __init__(self, count, bounds, progress=None, pruned=0):
        self.count = count  # the split's units: one family each
        self.bounds = bounds
        self.progress = progress
        self.start = time.monotonic()
        self.total = Stats()
        self.total.pruned = pruned
        self.merged = _Merge(self.total)
        self.family = list(range(count))  # unit index -> its family
        self.open = [1] * count  # family -> its units not done
        self.waiting = {}  # family -> [(index, outcome)] of its units done
        self.next = 0  # the next family to take
        self.again = None  # the family whose first violation is to be found again
        self.held = []  # that family's outcomes, counted if it is not found again

    @property
    def finished(self):
        return self.next >= self.count or self.merged.decided

    def extend(self, family, count):
        """Room for ``count`` more units of ``family`` (handed over while the
        search runs): the index of the first."""
        first = len(self.family)
        self.family += [family] * count
        self.open[family] += count
        return first

    def put(self, index, outcome):
        """Take one unit's outcome; True when the search is over."""
        f = self.family[index]
        self.waiting.setdefault(f, []).append((index, outcome))
        self.open[f] -= 1
        if (f == self.next and self.open[f] and not self.finished and not isinstance(outcome, BaseException)
                and (outcome.error is not None or outcome.violation is not None)):
            # The family's answer is its split unit's first violation alone
            # (first_in_order), whatever its other units find: no need to
            # wait for them (from the whole tree, they may run for long).
            self._take(sorted(self.waiting.pop(f), key=lambda io: io[0]), several=True)
            self.next += 1
        while self.next < self.count and not self.open[self.next] and not self.finished:
            self._take(sorted(self.waiting.pop(self.next, []), key=lambda io: io[0]))
            self.next += 1
            limit = self.bounds.max_executions
            if limit is not None and self.total.executions >= limit and not self.merged.decided:
                self.stop(Reason.max_executions(limit))
        limit = self.bounds.max_executions
        if (self.progress is not None or limit is not None) and not self.finished:
            shown = dataclasses.replace(self.total)
            for o in (o for done in self.waiting.values() for _, o in done):
                if not isinstance(o, BaseException):
                    shown.executions += o.stats.executions
                    shown.max_depth = max(shown.max_depth, o.stats.max_depth)
            if limit is not None and shown.executions >= limit:
                # The units done, taken or not, ran that many: a family that
                # is not taken yet (the whole tree, handed over in units that
                # each have the limit) would otherwise run on past it.
                self.stop(Reason.max_executions(limit))
            elif self.progress is not None:
                self.progress(shown, shown.max_depth, time.monotonic() - self.start)
        return self.finished

    def _take(self, done, several=False):
        """One family's outcomes, in unit order; ``several``: more units
        explored its subtree than are done."""
        for _, outcome in done:
            if isinstance(outcome, BaseException):
                raise outcome
        found = [o for _, o in done if o.error is not None or o.violation is not None]
        if (len(done) > 1 or several) and found:
            self.merged.error, self.merged.violation = found[0].error, found[0].violation
            self.merged.decided = True
            self.again, self.held = self.next, [o for _, o in done]  # (for first_in_order)
            return
        for _, outcome in done:
            self.merged.add(outcome)

    def stop(self, reason):
        """The run ends before every unit is taken: incomplete for ``reason``
        (unless a unit already decided). The units done out of order count
        in the statistics (they were explored, as the progress line showed),
        not in the verdict."""
        if not self.merged.decided:
            self.merged.reason = self.merged.reason or reason
            self.merged.decided = True
            for o in (o for done in self.waiting.values() for _, o in done):
                if not isinstance(o, BaseException):
                    self.merged.count(o)
            self.waiting = {}

    def outcome(self):
        self.total.elapsed_s = time.monotonic() - self.start
        return self.merged.outcome()


def first_in_order(model, unit, reduction, bounds, deadline, taken):
    """The violation or error a family met, made the one its split unit
    ``unit`` meets first when explored alone, and the executions counted
    for the family those it takes to get there: what the run reports
    whatever the timing of the hand-overs. When that does not finish in the
    time left, what the family found and explored stands."""
    try:
        outcome = explore_unit(model, unit, reduction, bounds, deadline)
    except KeyboardInterrupt:
        outcome = None
    merged = taken.merged
    if outcome is not None and (outcome.error is not None or outcome.violation is not None):
        taken.held = [outcome]
        merged.error, merged.violation = outcome.error, outcome.violation
    for o in taken.held:
        merged.count(o)
        merged.checks.add(o.checks, o.gathered)


# -- the workers ---------------------------------------------------------------------------

_MODEL = {}  # what a worker process explores: set before the pool forks


def _worker(me, tasks, results, give, job):
    """A worker process: runs of units from ``tasks`` until None; for each
    unit its outcome to ``results``, with how many units of the run are left,
    and the races it returns (handover.py); the back half of those when
    ``give[me]`` is set, or, with one unit left, part of the running unit's
    subtree."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator stops the workers
    reduction, bounds, deadline = job
    while True:
        todo = tasks.get()
        if todo is None:
            return
        give[me] = 0
        results.put(("took", me, None, len(todo)))
        while todo:
            if give[me] and len(todo) >= 2:
                give[me] = 0
                half = len(todo) // 2
                todo, rest = todo[:half], todo[half:]
                results.put(("rest", me, rest, len(todo)))
            unit = todo.pop(0)
            record = {}
            try:
                outcome, record = _explore_handing(_MODEL["model"], unit, job, me, give, results, todo)
            except BaseException as exc:  # noqa: BLE001 - any failure goes back, so nothing waits for it
                outcome = exc
            results.put(("done", me, (unit, outcome, time.process_time(), record), len(todo)))
        results.put(("idle", me, None, 0))


def _explore_handing(model, unit, job, me, give, results, todo):
    """One unit's outcome in a worker, and the races it returns (for the
    Ledger); asked (``give[me]``) with no other unit of its run left, it
    hands over part of its subtree between two executions."""
    reduction, bounds, deadline = job

    tries = [0]

    def asked(search):
        if give[me] and len(todo) < 2:
            # A unit's wakeup trees fill as it runs (the whole tree has
            # nothing to give before its first execution's races): asked
            # with nothing to give, it tries again after its next
            # executions before it says so.
            new = search.hand_over()
            tries[0] += 1
            if new or tries[0] >= PATIENCE:
                give[me] = 0
                tries[0] = 0
                results.put(("handed", me, new, 0))

    left = within(bounds, deadline)
    if left is None:
        return Outcome(Verdict.incomplete, Stats(), reason=Reason.time_limit(bounds.timeout)), {}
    search = HandingExplorer(model, reduction, left, unit, should_stop=asked)
    return search.run(), search.record()


@dataclass
class Result:
    outcome: Outcome
    units: int
    depth: int
    workers: int
    runs: int = 0  # runs of units handed out at first (tasks())
    steals: int = 0  # halves of runs handed from a busy worker to an idle one
    handed: int = 0  # units handed over by running units, or made for races they returned
    cpu_s: list = field(default_factory=list)  # each worker's CPU time (a shared machine's measure)


def explore(model, reduction="dpor", bounds=None, jobs=2, progress=None):
    """dfs over ``jobs`` processes; the outcome of the whole search.

    Work stealing by subtrees: the workers take runs of units (:func:`tasks`)
    from one queue; once the queue is empty, a worker with nothing to do
    gets the back half of the units not yet started of the worker with the
    most left, which that worker hands over between two units. Which worker
    explores a unit changes nothing of its outcome, and outcomes are taken
    in unit order."""
    bounds = bounds or Bounds()
    found_units, pruned = start(model, reduction, bounds, jobs)
    deadline = time.time() + bounds.timeout if bounds.timeout is not None else None
    taken = InOrder(len(found_units), bounds, progress, pruned)
    _MODEL["model"] = model
    ctx = multiprocessing.get_context("fork")  # the workers inherit the model: nothing to pickle
    queue, results = ctx.Queue(), ctx.Queue()
    give = ctx.RawArray("b", jobs)  # give[w]: worker w hands over half of what it has left
    job = (reduction, bounds, deadline)
    workers = [ctx.Process(target=_worker, args=(w, queue, results, give, job), daemon=True) for w in range(jobs)]
    runs = tasks(found_units, jobs)
    steal = _Stealing(jobs, len(runs), give)
    ledger = Ledger(found_units)
    cpu = [0.0] * jobs  # each worker's CPU time at its last unit
    handed = 0
    try:
        for w in workers:
            w.start()
        for run in runs:
            queue.put(run)
        while not taken.finished:
            kind, w, what, left = _result(results, workers)
            new = []
            if kind == "done":
                unit, outcome, cpu[w], record = what
                index = unit.index
                new = ledger.add(unit, record)
            elif kind == "rest":
                queue.put(what)
            elif kind == "handed":
                new = what
            for unit in new:
                queue.put([dataclasses.replace(unit, index=taken.extend(unit.family, 1))])
            handed += len(new)
            steal.update(kind, w, left, len(new))
            if kind == "done":
                taken.put(index, outcome)
    except KeyboardInterrupt:
        taken.stop(Reason.interrupted())
    except _WorkerDied as exc:  # what its units would have found is unknown: incomplete, never clean
        taken.stop(Reason(Stop.interrupted, str(exc)))
    finally:
        stop_workers(workers, (queue, results))
        _MODEL.clear()
    if taken.again is not None:
        first_in_order(model, found_units[taken.again], reduction, bounds, deadline, taken)
    return Result(taken.outcome(), len(taken.family), depth_of(found_units), jobs, len(runs), steal.steals,
                  handed, cpu)


class _Stealing:
    """The coordinator's view of the workers: how many units each has left,
    which have nothing, and runs not yet taken; when a worker has nothing
    and no run waits, the worker with the most left is asked for half."""

    def __init__(self, jobs, runs, give):
        self.left = [0] * jobs
        self.idle = set(range(jobs))  # until a worker takes a run
        self.waiting = runs  # runs in the queue (handed back halves included)
        self.asked = None  # the worker asked to give, until it does or ends its run
        self.barren = set()  # workers whose running unit had nothing to hand over
        self.give = give
        self.steals = 0

    def update(self, kind, w, left, new=0):
        """A worker's message; ``new``: the units it brought (handed over by
        a running unit, or made for the races a unit returned)."""
        self.waiting += new
        if kind == "took":
            self.waiting -= 1
            self.idle.discard(w)
            self.barren.discard(w)
        elif kind == "rest":
            self.waiting += 1
            self.steals += 1
        elif kind == "handed" and not new:
            self.barren.add(w)  # its unit has nothing to hand over: not asked again during it
        elif kind == "done":
            self.barren.discard(w)
        if kind == "idle":
            self.idle.add(w)
        self.left[w] = left
        if self.asked == w and kind != "done":  # it gave, or it has nothing left to give
            self.asked = None
        if self.idle and not self.waiting and self.asked is None:
            victim = max(range(len(self.left)), key=self.left.__getitem__)
            if self.left[victim] >= 2:
                self.asked = victim
                self.give[victim] = 1
                return
            # No run to halve: a worker busy with its last unit hands over
            # part of that unit's subtree (handover.py).
            busy = [v for v in range(len(self.left)) if v not in self.idle and v not in self.barren]
            if busy:
                self.asked = busy[0]
                self.give[busy[0]] = 1


def depth_of(found_units):
    return max((len(u.prefix) for u in found_units), default=0)


class _WorkerDied(Exception):
    pass


def _result(results, workers):
    """The next ``(unit index, outcome)`` a worker sends; a worker that died
    without one is an error, not a wait without end."""
    import queue
    while True:
        try:
            return results.get(timeout=1.0)
        except queue.Empty:
            dead = [w for w in workers if w.exitcode not in (None, 0)]
            if not dead and not any(w.is_alive() for w in workers):
                raise _WorkerDied("every worker process ended before the units were done") from None
            if dead:
                raise _WorkerDied(f"a worker process died (exit status {dead[0].exitcode}) "
                                  f"before its work units were done") from None


class _Merge:
    """The units' outcomes, taken in unit order, as one search's."""

    def __init__(self, stats):
        self.stats = stats
        self.violation = None
        self.error = None
        self.reason = None
        self.checks = Checks()
        self.decided = False  # a violation or an error: later units do not count

    def add(self, outcome):
        """Take one unit's outcome; True when it decides the search."""
        self.count(outcome)
        self.checks.add(outcome.checks, outcome.gathered)
        if outcome.error is not None:
            self.error = outcome.error
        elif outcome.violation is not None:
            self.violation = outcome.violation
        elif outcome.verdict == Verdict.incomplete and self.reason is None:
            self.reason = outcome.reason
        self.decided = self.error is not None or self.violation is not None
        return self.decided

    def count(self, outcome):
        """Add a unit's statistics (what it explored) to the search's."""
        s, o = self.stats, outcome.stats
        for name in ("executions", "blocked", "steps", "pruned", "probes"):
            setattr(s, name, getattr(s, name) + getattr(o, name))
        s.max_depth = max(s.max_depth, o.max_depth)

    def outcome(self):
        checks = self.checks.counted()
        if self.error is not None:
            return Outcome(Verdict.error, self.stats, error=self.error, checks=checks)
        if self.violation is not None:
            return Outcome(Verdict.violation, self.stats, violation=self.violation, reason=self.reason,
                           checks=checks)
        if self.reason is not None:
            return Outcome(Verdict.incomplete, self.stats, reason=self.reason, checks=checks)
        return Outcome(Verdict.clean, self.stats, checks=checks)


def stop_workers(workers, queues):
    """End the worker processes (they may be mid-unit) and drop what is
    left in ``queues``: nothing in them is wanted any more."""
    for w in workers:
        if w.is_alive():
            w.terminate()
    for w in workers:
        if w.pid is not None:
            w.join(5)
    for q in queues:
        q.cancel_join_thread()
        q.close()


def cores():
    """The cores this process may use (``--jobs auto``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
