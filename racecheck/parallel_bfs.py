"""bfs on several processes: each state stays with the worker that made it.

The search goes level by level, as in one process, so that a counterexample
stays a shortest one (TLC and parallel Murphi keep their levels in step the
same way). Each worker expands its share of the level with its own
transition cache and the live executions it kept with its states; for each
successor it had not seen, it sends the coordinator the state's 64-bit
digest and its *key*: the rank of its parent in the level (the level's
states in the order one process's queue holds them) times the number of
threads, plus the thread that stepped. The key orders successors as one
process generates them, so the coordinator keeps, of the workers that made
one new state, the one whose key is least: that worker keeps the state with
the least schedule that reached it, which is the schedule one process
keeps. The kept states, sorted by key, are the next level, and their
positions its ranks. A state moves to another worker only when the level
is uneven enough to pay for it (it moves without a live execution). At
each level's end, what a worker's cache learned (steps, waits, check
verdicts) goes to the others, so that a step one worker ran, another
takes from its cache rather than running it again.

A digest must be the same in every worker, so the ids a worker's cache
interns the pieces of a state under (transitions.py) are the hashes of the
pieces' fingerprints, not counters: the state, a tuple of those ids, then
hashes alike everywhere, with no translation. The workers are forked from
one process, so they share its string hash seed: bfs runs on the processes
of one machine, not on a cluster.

So the distinct states are one process's, the search ends at the same
level, and the violation reported is the least of the first level with one
by (length, schedule), the first one process meets.
"""

from __future__ import annotations

import gc
import multiprocessing
import time
from array import array
from itertools import chain, compress

from .fingerprint import Constants, FingerprintError
from .parallel import stop_workers
from .scheduler import preemptions
from .search import Bounds, Checks, Counterexample, Halt, Outcome, Reason, Stop, Verdict, kind_of
from .strategies import MAX_STATES, BreadthFirst, StateStats, _Entry
from .transitions import FINISHED, RUNNABLE, WAITING, Transitions

_SUMMED = ("executions", "blocked", "steps", "pruned", "probes", "distinct_states", "states_generated",
           "queue", "cached_steps")
_IDS = (1 << 61) - 1  # ids below the Mersenne prime hash as themselves
_KINDS = {k: k for k in (RUNNABLE, WAITING, FINISHED)}  # (compared with `is`: the constants themselves)
# States move when the busiest worker holds more than the mean by this share
# of it and by more than FEW states: a moved state has no live execution.
BALANCE = 0.01
FEW = 16


class SharedIds(Transitions):
    """A transition cache whose ids are the hashes of what they name, the same
    in every worker forked from one process."""

    def __init__(self, execution):
        super().__init__(execution)
        self._taken = {}  # table's id() -> the ids given in it
        self.news = []  # what was learned since given() was last called: (table, key, entry)

    def _fresh(self, table, key):
        i = hash(key) % _IDS
        taken = self._taken.setdefault(id(table), {0} if table is self.histories else set())
        if i in taken:  # two fingerprints whose hashes coincide: as rare as 2**-61 a pair
            raise FingerprintError("two different pieces of state have the same 64-bit hash, which "
                                   "bfs on several processes cannot tell apart: run it in one process")
        taken.add(i)
        return i

    def _thread(self, fpr, t):
        known = len(self.threads)
        i = super()._thread(fpr, t)
        if len(self.threads) > known:
            self.news.append(("kinds", i, self.kinds[i]))
        return i

    # -- what the other workers learned ----------------------------------------------------

    def _entry(self, fpr, e):
        known = len(self.returns)
        i = super()._entry(fpr, e)
        if len(self.returns) > known:
            self.news.append(("returns", i, None))
        return i

    def learn(self, ex, fpr, tid, state, before, violation):
        step = super().learn(ex, fpr, tid, state, before, violation)
        key = (tid, state[2][tid], state[3][tid], state[4])
        self.news.append(("steps", key, self.steps[key][-1]))
        return step

    def learn_wait(self, ex, tid, state):
        enabled = super().learn_wait(ex, tid, state)
        key = (tid, state[2][tid])
        self.news.append(("waits", key, self.waits[key][-1]))
        return enabled

    def learn_verdict(self, state, verdict):
        super().learn_verdict(state, verdict)
        self.news.append(("verdicts", self._check_key(state), verdict))

    def given(self):
        """What this cache learned since it was last asked, for the others."""
        out, self.news = self.news, []
        return out

    def merge(self, news):
        """Take what another worker's cache learned (its ids are these)."""
        for table, key, entry in news:
            if table == "kinds":
                self.kinds.setdefault(key, _KINDS[entry])
            elif table == "returns":
                self.returns.add(key)
            elif table == "verdicts":
                self.verdicts.setdefault(key, entry)
            else:
                _merge_entry(getattr(self, table).setdefault(key, []), entry)


def _merge_entry(known, entry):
    """Add ``entry`` (getter, ids, value) to a list of the cache unless one
    reading the same objects with the same values is there."""
    getter, ids, _ = entry
    where = _indices(getter)
    if not any(i == ids and _indices(g) == where for g, i, _ in known):
        known.append(entry)


def _indices(getter):
    return getter and getter.__reduce__()[1]


class _Part(BreadthFirst):
    """One worker's share of the search: the states it made."""

    def __init__(self, model, bounds, me, workers):
        super().__init__(model, bounds, stop_on_violation=False)
        self.me, self.workers = me, workers
        self.best = None  # the least (length, schedule, invariant, message) of this level
        self.made = []  # this level's successors not seen before: (state, live execution, schedule)
        self.digests, self.keys = array("q"), array("q")

    def setup(self):
        """The initial state, queued at the first worker; every worker has seen it."""
        self.reset()
        self.start = time.monotonic()
        self.constants = Constants(self.model)
        live = self._execution()
        self.learned = SharedIds(live[0])
        state = self.learned.whole(*live)
        self._memory_at = (0.0, 0)
        self.visited.add(hash(state))
        if self.me == 0:
            self._initial(live[0])
            self.stats.distinct_states += 1
            self._arrived(state, live, (0, ()), [], self.queue)

    # -- the level ---------------------------------------------------------------------

    def expand(self, deadline):
        """Expand this worker's states of the level, in rank order: the
        digests and keys of the successors not seen before."""
        self.best, self.made, self.digests, self.keys = None, [], array("q"), array("q")
        stop = None
        for entry in self.queue:
            if deadline is not None and time.time() > deadline:
                stop = Reason.time_limit(self.bounds.timeout)
            else:
                stop = self._memory_reached()
            if stop is not None:
                break
            self._expand(entry, None)
        self.incomplete = stop or self.incomplete  # (a step bound cuts one path: the search goes on)
        self.queue = []
        return self.digests, self.keys

    def adopt(self, kept, ranks, seen, news):
        """Queue the successors the coordinator gave this worker (``kept``:
        their places in :attr:`made`; ``ranks``: their ranks in the next
        level); ``seen``: the digests the other workers made; ``news``:
        what their caches learned, so that a step one of them ran is not
        run again here."""
        for digests in seen:
            self.visited.update(digests)
        for given in news:
            self.learned.merge(given)
        queue = []
        made = self.made
        for i, rank in zip(kept, ranks):
            state, after, path = made[i]
            self.stats.distinct_states += 1
            self.stats.max_depth = len(path)
            self._arrived(state, after, (rank, path), list(path), queue)
        self.made = []
        self.queue = queue

    def give(self, count):
        """The last ``count`` states queued, taken off the queue, to move to
        another worker (whose cache knows the kinds of their threads: the
        caches' news of the level that made them went to every worker)."""
        out = [(e.node, e.state, e.enabled) for e in self.queue[-count:]]
        del self.queue[-count:]
        return out

    def take(self, batches):
        """States moved here; the queue is kept in rank order."""
        for batch in batches:
            for node, state, enabled in batch:
                self.queue.append(_Entry(node, state, enabled, None))
        if batches:
            self.queue.sort(key=lambda e: e.node[0])

    # -- BreadthFirst's hooks --------------------------------------------------------------

    def schedule(self, node):
        return list(node[1])

    def _reached(self, entry, tid, state, after, path, queue):
        digest = hash(state)
        if digest in self.visited:
            return
        self.visited.add(digest)  # (new this level: every worker adds it once the level is decided)
        if after is not None and len(self.made) >= self.live_cap:
            after = None
        self.made.append((state, after, tuple(path)))
        self.digests.append(digest)
        self.keys.append(entry.node[0] * len(state[2]) + tid)

    def _violation(self, invariant, message, path, confirmed):
        if self.target is not None and invariant != self.target:
            return
        key = (len(path), tuple(path))
        if self.best is None or key < self.best[:2]:  # (of one schedule, the first found, as one process)
            if not confirmed:
                message = self._confirm(invariant, path)
            self.best = (*key, invariant, message)


# -- the coordinator's part of a level ----------------------------------------------------------


def decide(made):
    """``made``: each worker's (digests, keys) of a level, each in key order.
    Of the workers that made a state, the one with the least key keeps it.
    Returns for each worker the places in its list of the states it keeps,
    and their ranks in the next level (the order of their keys). This is
    the one part of a level no worker shares, so it runs on whole arrays,
    not state by state (only a state two workers made is looked at alone)."""
    keep = [bytearray(b"\x01") * len(digests) for digests, _ in made]
    least = {}
    twice = _made_twice([digests for digests, _ in made])
    for w, (digests, keys) in enumerate(made):
        for i in compress(range(len(digests)), map(twice.__contains__, digests)):
            old = least.get(digests[i])
            if old is None or keys[i] < old[0]:
                if old is not None:
                    keep[old[1]][old[2]] = 0
                least[digests[i]] = (keys[i], w, i)
            else:
                keep[w][i] = 0
    kept = [array("q", compress(range(len(k)), k)) for k in keep]
    keys = [array("q", compress(made[w][1], k)) for w, k in enumerate(keep)]
    order = sorted(chain.from_iterable(keys))  # (runs already sorted: a merge)
    rank = dict(zip(order, range(len(order))))
    return kept, [array("q", map(rank.__getitem__, k)) for k in keys]


def _made_twice(lists):
    """The digests in more than one of ``lists``."""
    sets = [set(digests) for digests in lists]
    out = set()
    for a in range(len(sets)):
        for b in range(a + 1, len(sets)):
            out |= sets[a] & sets[b]
    return out


def moves(sizes):
    """Which worker gives how many states to which, so that no worker holds
    much more than the mean: [(giver, taker, count)], none when the level is
    even enough (a moved state has no live execution: a step its new
    worker's cache does not know costs a replay)."""
    mean = sum(sizes) / len(sizes)
    if max(sizes) <= mean + max(mean * BALANCE, FEW):
        return []
    target = [int(mean) + (1 if w < sum(sizes) - int(mean) * len(sizes) else 0) for w in range(len(sizes))]
    over = [[w, sizes[w] - target[w]] for w in range(len(sizes)) if sizes[w] > target[w]]
    under = [[w, target[w] - sizes[w]] for w in range(len(sizes)) if sizes[w] < target[w]]
    out = []
    while over and under:
        n = min(over[0][1], under[0][1])
        out.append((over[0][0], under[0][0], n))
        over[0][1] -= n
        under[0][1] -= n
        over = [o for o in over if o[1]]
        under = [u for u in under if u[1]]
    return out


# -- the workers ------------------------------------------------------------------------------

_MODEL = {}


def _worker(me, workers, bounds, control, inboxes, reports):
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator stops the workers
    part = _Part(_MODEL["model"], bounds, me, workers)
    try:
        try:
            part.setup()
        except Halt:
            pass
        _collect_by_level()
        reports.put((me, _report(part)))
        while True:
            order = control.get()
            if order[0] == "expand":
                made = (array("q"), array("q"))
                try:
                    made = part.expand(order[1])
                except Halt:  # the model raised: part.error holds it
                    pass
                reports.put((me, dict(_report(part), made=made, news=part.learned.given())))
                gc.collect()  # (the level's dropped executions, while the coordinator decides)
            else:
                _, kept, ranks, seen, news, give, takes = order
                _adopt(part, kept, ranks, seen, news, give, takes, inboxes)
                reports.put((me, _report(part)))
    except BaseException as exc:  # noqa: BLE001 - reported, so nothing waits for it
        reports.put((me, exc))


def _collect_by_level():
    """Python's full collections walk every live container, and a worker
    holds a level's states in containers, as many as there are states: the
    collector's own rule (a full collection each time the old objects grew
    by a quarter) made them 40 % of a worker's CPU time on the 4-thread XIP
    scenario. So the worker collects in full once a level, after expanding
    it and reporting (what it dropped then, executions with cycles among
    them, goes, while the coordinator decides the level), and
    freezes what setup made (the visited set and the cache's tables, which
    grow in place to millions of entries and are never garbage)."""
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, 1 << 30)


def _adopt(part, kept, ranks, seen, news, give, takes, inboxes):
    """The level decided: queue this worker's states, move those the
    coordinator said to, take those moved here. Every move is sent and
    read whatever happened in the part, so that none waits without end."""
    try:
        if part.error is None:
            part.adopt(kept, ranks, seen, news)
    except Halt:
        pass
    for taker, count in give:
        inboxes[taker].put(part.give(count) if part.error is None else [])
    batches = [inboxes[part.me].get() for _ in range(takes)]
    part.take(batches)


def _report(part):
    part.stats.queue = len(part.queue)
    return {"stats": part.stats, "best": part.best, "error": part.error, "incomplete": part.incomplete,
            "cpu_s": time.process_time(), "checks": part.counted(), "gathered": part.mergeable()}


def explore(model, bounds=None, jobs=2, progress=None):
    """bfs over ``jobs`` processes: the outcome of the whole search."""
    return run(model, bounds, jobs, progress)[0]


def run(model, bounds=None, jobs=2, progress=None, phases=None):
    """:func:`explore`'s outcome, and each worker's CPU time (seconds). A
    list given as ``phases`` gets each worker's CPU time at the end of each
    phase (setup, then two a level), for the benchmarks' critical path."""
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
        got = _gather(reports, workers, jobs, phases)
        while True:
            stats = _merged(got)
            cpu = [r["cpu_s"] for r in got]
            error = min((r["error"] for r in got if r["error"] is not None), default=None,
                        key=lambda e: (len(e["schedule"]), e["schedule"]))  # (one process meets it first)
            best = min((r["best"] for r in got if r["best"] is not None), default=None)
            reason = next((r["incomplete"] for r in got if r["incomplete"] is not None), None)
            if best is not None:
                path, invariant, message = list(best[1]), best[2], best[3]
                found = Counterexample(path, invariant, message, preemptions(model, path, bounds.max_steps))
            if progress is not None:
                progress(stats, stats.max_depth, time.monotonic() - start)
            if error is not None or found is not None or not stats.queue:
                break
            reason = reason or _bound_reached(stats, bounds)
            if _stopped(reason):
                break
            got = _level(control, reports, workers, jobs, deadline, phases)
    except KeyboardInterrupt:
        reason = Reason.interrupted()
    except _Died as exc:
        reason = Reason(Stop.interrupted, str(exc))
    finally:
        stop_workers(workers, [*control, *inboxes, reports])
        _MODEL.clear()
    stats.elapsed_s = time.monotonic() - start
    return _outcome(stats, got, error, found, reason), cpu


def _level(control, reports, workers, jobs, deadline, phases):
    """One level: the workers expand their states, the coordinator decides
    who keeps each new one and what moves, the workers queue them. The
    reports of the second half (whose ``best`` holds the whole level's)."""
    for c in control:
        c.put(("expand", deadline))
    got = _gather(reports, workers, jobs, phases)
    if any(r["error"] is not None or _stopped(r["incomplete"]) for r in got):
        return got  # (the search ends: nothing to adopt)
    kept, ranks = decide([r["made"] for r in got])
    plan = moves([len(k) for k in kept])
    for w, c in enumerate(control):
        give = [(taker, n) for giver, taker, n in plan if giver == w]
        takes = sum(1 for _, taker, _ in plan if taker == w)
        others = [r for v, r in enumerate(got) if v != w]  # (every state made is new: whoever keeps it)
        c.put(("adopt", kept[w], ranks[w], [r["made"][0] for r in others], [r["news"] for r in others],
               give, takes))
    return _gather(reports, workers, jobs, phases)


def _stopped(reason):
    """Whether ``reason`` ends the search (a step bound cuts one path only)."""
    return reason is not None and kind_of(reason) is not Stop.step_bound


def _bound_reached(stats, bounds):
    limit = MAX_STATES if bounds.max_states is None else bounds.max_states
    if limit and stats.distinct_states >= limit:
        return Reason(Stop.max_states, f"stopped at --max-states {limit}")
    if bounds.max_executions is not None and stats.executions >= bounds.max_executions:
        return Reason.max_executions(bounds.max_executions)
    return None


def _outcome(stats, got, error, found, reason):
    counted = Checks()  # every worker's checks over the search so far (each report holds all of it)
    for r in got:
        counted.add(r["checks"], r["gathered"])
    checks = counted.counted()
    if error is not None:
        return Outcome(Verdict.error, stats, error=error, checks=checks)
    if found is not None:
        return Outcome(Verdict.violation, stats, violation=found, checks=checks)
    if reason is not None:
        return Outcome(Verdict.incomplete, stats, reason=reason, checks=checks)
    return Outcome(Verdict.clean, stats, checks=checks)


class _Died(Exception):
    pass


def _gather(reports, workers, jobs, phases):
    """One report from every worker (an exception a worker raised is raised
    here)."""
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
    if phases is not None:
        phases.append([got[i]["cpu_s"] for i in range(jobs)])
    return [got[i] for i in range(jobs)]


def _merged(reports):
    out = StateStats()
    for r in reports:
        s = r["stats"]
        for name in _SUMMED:
            setattr(out, name, getattr(out, name) + getattr(s, name))
        out.max_depth = max(out.max_depth, s.max_depth)
    return out
