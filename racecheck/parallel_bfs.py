"""bfs on several processes: the states partitioned by fingerprint.

As in parallel Murphi (Stern and Dill) and TLC's distributed mode, every
state has one owner, the worker ``hash(fingerprint) % workers``, which alone
keeps it in its visited set and expands it. The search goes level by level:
each worker expands the states of the current level it owns (with its own
transition cache, transitions.py), keeps the successors it owns and sends
the others to their owners, one batch per owner; then each owner adds the
states it had not seen, and they are the next level. A state crosses
processes as its fingerprints (Transitions.export), not the cache's ids,
which are each process's own, with its schedule from the initial state.

So the distinct states are one process's (a state is new at exactly one
owner), and the search ends at the same level. The counterexample is a
shortest one as in one process: a level ends before the next begins, every
worker finishes its part of the level where a violation appears, and the
one reported is the least of that level's by (length, schedule), whatever
the number of workers (one process reports the first its queue reaches, of
the same length). The hash of a fingerprint is the same in every worker
because the workers are forked from one process (one string hash seed):
so bfs runs on the processes of one machine, not on a cluster.
"""

from __future__ import annotations

import multiprocessing
import time
from collections import deque

from .fingerprint import Constants
from .parallel import stop_workers
from .scheduler import preemptions
from .search import Bounds, Checks, Counterexample, Halt, Outcome, Reason, Stop, Verdict, kind_of
from .strategies import MAX_STATES, BreadthFirst, StateStats
from .transitions import Transitions

_SUMMED = ("executions", "blocked", "steps", "pruned", "probes", "distinct_states", "states_generated",
           "queue", "cached_steps")


class _Part(BreadthFirst):
    """One worker's share of the search: the states it owns."""

    def __init__(self, model, bounds, me, workers):
        super().__init__(model, bounds, stop_on_violation=False)
        self.me, self.workers = me, workers
        self.outbox = None
        self.best = None  # the least (length, schedule, invariant, message) of this level
        self.owners = {}  # interned state -> (digest, owner, exported), this level's
        self.visited.add(_ELSEWHERE)

    # -- the level ---------------------------------------------------------------------

    def setup(self):
        """The initial state, queued at its owner."""
        self.reset()
        self.start = time.monotonic()
        self.constants = Constants(self.model)
        live = self._execution()
        self.learned = Transitions(live[0])
        state = self.learned.whole(*live)
        self._memory_at = (0.0, 0)
        if self._owner(state)[1] == self.me:
            self._initial(live[0])
            self._add(state, None, None, 0)
            self._arrived(state, live, (), [], self.queue)

    def expand(self, deadline):
        """Expand the states of this level; the batches for the other owners."""
        self.best, self.outbox, self.owners = None, [dict() for _ in range(self.workers)], {}
        stop = None
        while self.queue and stop is None:
            if deadline is not None and time.time() > deadline:
                stop = Reason.time_limit(self.bounds.timeout)
            else:
                stop = self._memory_reached()
            if stop is None:
                self._expand(self.queue.popleft(), None)
        self.incomplete = stop or self.incomplete  # (a step bound cuts one path: the search goes on)
        self.queue = deque()
        return self.outbox

    def adopt(self, batches):
        """The states this worker owns that the level reached (its own batch
        and the others'): each new one is queued with the least of the
        schedules that reached it, so that which schedule a state keeps does
        not depend on the number of workers."""
        merged = {}
        for batch in batches:
            for digest, entry in batch.items():
                old = merged.get(digest)
                if old is None or entry[0] < old[0]:
                    merged[digest] = entry
        for digest, entry in sorted(merged.items(), key=lambda item: item[1][0]):
            if digest in self.visited:
                continue
            path, exported, state, after = entry if len(entry) == 4 else (*entry, None, None)
            if state is None:
                state = self.learned.adopt(exported)
            self.visited.add(digest)
            self.stats.distinct_states += 1
            self._arrived(state, after, path, list(path), self.queue)

    # -- BreadthFirst's hooks --------------------------------------------------------------

    def _owner(self, state):
        found = self.owners.get(state)
        if found is None:
            exported = self.learned.export(state)
            digest = hash(exported)
            found = self.owners[state] = (digest, digest % self.workers, exported)
        return found

    def _key(self, state):
        # A state another worker owns reads as seen here: the live execution
        # of the state expanded is kept for a successor this worker owns.
        digest, owner, _ = self._owner(state)
        return digest if owner == self.me else _ELSEWHERE

    def schedule(self, node):
        return list(node)

    def _add(self, state, parent, tid, depth):
        self.visited.add(self._key(state))
        self.stats.distinct_states += 1
        self.stats.max_depth = max(self.stats.max_depth, depth)

    def _reached(self, entry, tid, state, after, path, queue):
        digest, owner, exported = self._owner(state)
        self.stats.max_depth = max(self.stats.max_depth, len(path))
        if owner == self.me and digest in self.visited:
            return
        box, path = self.outbox[owner], tuple(path)
        old = box.get(digest)
        if old is None or path < old[0]:
            if owner != self.me:
                box[digest] = (path, exported)
            else:  # kept with its live execution while there is room, as one process does
                box[digest] = (path, exported, state, after if len(box) < self.live_cap else None)

    def _violation(self, invariant, message, path, confirmed):
        if self.target is not None and invariant != self.target:
            return
        key = (len(path), tuple(path), invariant)
        if self.best is None or key < self.best[:3]:
            if not confirmed:
                message = self._confirm(invariant, path)
            self.best = (*key, message)


# -- the workers ------------------------------------------------------------------------------

_MODEL = {}


_ELSEWHERE = object()  # the key of a state another worker owns


def _worker(me, workers, bounds, control, inboxes, reports):
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator stops the workers
    part = _Part(_MODEL["model"], bounds, me, workers)
    try:
        part.setup()
    except Halt:
        pass
    except BaseException as exc:  # noqa: BLE001 - reported, so nothing waits for it
        reports.put((me, exc))
        return
    reports.put((me, _report(part)))
    while True:
        deadline = control.get()
        try:
            # Every worker sends every other one a batch, and reads one from
            # each, whatever happened in its part: none waits without end.
            outbox = [{} for _ in range(workers)]
            try:
                outbox = part.expand(deadline)
            except Halt:  # the model raised: part.error holds it
                pass
            for owner, batch in enumerate(outbox):
                if owner != me:
                    inboxes[owner].put(batch)
            batches = [outbox[me]] + [inboxes[me].get() for _ in range(workers - 1)]
            try:
                if part.error is None:
                    part.adopt(batches)
            except Halt:
                pass
        except BaseException as exc:  # noqa: BLE001
            reports.put((me, exc))
            return
        reports.put((me, _report(part)))


def _report(part):
    part.stats.queue = len(part.queue)
    return {"stats": part.stats, "best": part.best, "error": part.error, "incomplete": part.incomplete,
            "queue": len(part.queue), "cpu_s": time.process_time(), "checks": part.counted(),
            "gathered": part.mergeable()}


def explore(model, bounds=None, jobs=2, progress=None):
    """bfs over ``jobs`` processes: the outcome of the whole search."""
    return run(model, bounds, jobs, progress)[0]


def run(model, bounds=None, jobs=2, progress=None):
    """:func:`explore`'s outcome, and each worker's CPU time (seconds)."""
    bounds = bounds or Bounds()
    start = time.monotonic()
    deadline = time.time() + bounds.timeout if bounds.timeout is not None else None
    _MODEL["model"] = model
    ctx = multiprocessing.get_context("fork")
    control = [ctx.Queue() for _ in range(jobs)]
    inboxes = [ctx.Queue() for _ in range(jobs)]
    reports = ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(i, jobs, bounds, control[i], inboxes, reports), daemon=True)
               for i in range(jobs)]
    stats, found, error, reason = StateStats(), None, None, None
    cpu, got = [0.0] * jobs, []
    try:
        for w in workers:
            w.start()
        while True:
            got = _gather(reports, workers, jobs)
            stats = _merged(got)
            cpu = [r["cpu_s"] for r in got]
            error = next((r["error"] for r in got if r["error"] is not None), None)
            best = min((r["best"] for r in got if r["best"] is not None), default=None)
            reason = next((r["incomplete"] for r in got if r["incomplete"] is not None), None)
            if best is not None:
                path, invariant, message = list(best[1]), best[2], best[3]
                found = Counterexample(path, invariant, message, preemptions(model, path, bounds.max_steps))
            if progress is not None:
                progress(stats, stats.max_depth, time.monotonic() - start)
            if error is not None or found is not None or not stats.queue:
                break
            limit = MAX_STATES if bounds.max_states is None else bounds.max_states
            if limit and stats.distinct_states >= limit:
                reason = reason or Reason(Stop.max_states, f"stopped at --max-states {limit}")
            if bounds.max_executions is not None and stats.executions >= bounds.max_executions:
                reason = reason or Reason.max_executions(bounds.max_executions)
            if reason is not None and kind_of(reason) is not Stop.step_bound:
                break  # (a step bound cuts one path and lets the rest go on)
            for c in control:
                c.put(deadline)
    except KeyboardInterrupt:
        reason = Reason.interrupted()
    except _Died as exc:
        reason = Reason(Stop.interrupted, str(exc))
    finally:
        stop_workers(workers, [*control, *inboxes, reports])
        _MODEL.clear()
    stats.elapsed_s = time.monotonic() - start
    counted = Checks()  # every worker's checks over the search so far (each report holds all of it)
    for r in got:
        counted.add(r["checks"], r["gathered"])
    checks = counted.counted()
    if error is not None:
        return Outcome(Verdict.error, stats, error=error, checks=checks), cpu
    if found is not None:
        return Outcome(Verdict.violation, stats, violation=found, checks=checks), cpu
    if reason is not None:
        return Outcome(Verdict.incomplete, stats, reason=reason, checks=checks), cpu
    return Outcome(Verdict.clean, stats, checks=checks), cpu


class _Died(Exception):
    pass


def _gather(reports, workers, jobs):
    """One report from every worker for this level (an exception a worker
    raised is raised here)."""
    import queue
    got = {}
    while len(got) < jobs:
        try:
            me, report = reports.get(timeout=1.0)
        except queue.Empty:
            dead = [w for w in workers if w.exitcode not in (None, 0)]
            if dead:
                raise _Died(f"a worker process died (exit status {dead[0].exitcode}) "
                            f"before the search was done") from None
            continue
        if isinstance(report, BaseException):
            raise report
        got[me] = report
    return [got[i] for i in range(jobs)]


def _merged(reports):
    out = StateStats()
    for r in reports:
        s = r["stats"]
        for name in _SUMMED:
            setattr(out, name, getattr(out, name) + getattr(s, name))
        out.max_depth = max(out.max_depth, s.max_depth)
    return out
