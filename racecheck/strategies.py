"""Search strategies beside the stateless depth-first search of scheduler.py.

``bfs``
    Breadth-first search over fingerprinted states (fingerprint.py), as TLC
    and SPIN's BFS mode do; a visited set of 64-bit digests prunes states
    seen before. Most successors come from the transition cache
    (transitions.py), which knows what a step does from what it touches,
    without running it; a step not seen before runs on a live execution of
    the state: the one kept with it in the queue, or a replay of its
    schedule from the initial state (generators cannot be copied). It
    terminates on models whose threads loop until something changes (a spin
    on a flag, a ``goto again`` retry), which stateless search cannot, and the
    first violation it finds has the fewest steps of all. No partial-order
    reduction: every enabled thread is tried from every state. A model with
    no end of states (threads that count up forever) ends at the state bound
    (``max_states``, 5 million by default) or the memory bound
    (``max_memory``, 2 GiB of resident memory or half the machine's),
    ``incomplete`` with the bound named.
``random``
    Uniformly random schedules, ``--max-executions`` of them, from ``--seed``.
``pct``
    Probabilistic concurrency testing (Burckhardt, Kothari, Musuvathi,
    Nagarakatte, ASPLOS 2010): random distinct thread priorities, ``d - 1``
    random priority change points among the ``k`` steps of an execution; the
    enabled thread of highest priority runs. A bug of depth ``d`` is found by
    one execution with probability at least ``1 / (n * k**(d - 1))``.

A random search that finds nothing is ``incomplete``, never ``clean``.
"""

from __future__ import annotations

import dataclasses
import os
import random
import sys
from array import array
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .execution import Execution, ModelFailure, StepBoundHit
from .fingerprint import Constants, Fingerprinter, FingerprintError
from .runtime import Violation
from .scheduler import Explorer, preemptions
from .search import Bounds, Counterexample, Halt, Outcome, Reason, Search, Stats, Stop, Verdict, failure_record, kind_of
from .transitions import FINISHED, UNKNOWN, WAITING, Transitions

if TYPE_CHECKING:  # annotations only
    from .model import Model

STRATEGIES = ("auto", "dfs", "bfs", "random", "pct")
RANDOM_EXECUTIONS = 1000  # executions of random and pct when --max-executions is not given
AUTO_STEPS = 1000  # auto's dfs: steps per thread before it calls a thread looping
WALK_DEPTH = 1000  # steps after which a random execution ends (a model may loop forever)
PCT_DEPTH = 3  # PCT's bug depth d by default
LIVE_CAP = 4096  # queued states that keep their execution, so that one successor needs no replay
# bfs stops (incomplete) past either, unless told otherwise: a model whose
# threads loop independently of each other (two counters that never stop) has
# no end of states, and the visited set grows with every one of them. Five
# million states is some minutes of search and, at the 360 bytes a state a
# search takes in all, about 1.7 GiB; the memory bound is the resident size of
# the whole process.
MAX_STATES = 5_000_000
MEMORY_EVERY = (0.1, 256)  # the resident size is read again after so many seconds or new states


def _physical_memory():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def default_max_memory():
    """bfs's memory bound when none is given: 2 GiB, or half the machine's
    memory if that is less."""
    physical = _physical_memory()
    return min(2 << 30, physical // 2) if physical else 2 << 30


MAX_MEMORY = default_max_memory()


def resident_memory():
    """This process's resident memory in bytes (its peak where the current
    size cannot be read); None where neither can."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


class StrategyError(Exception):
    """The strategy cannot check this model (said in words for the user)."""


@dataclass
class StateStats(Stats):
    """bfs: TLC's figures beside the common ones (``executions`` counts the
    executions run to reach states, ``max_depth`` is the search's depth)."""

    distinct_states: int = 0
    states_generated: int = 0
    queue: int = 0  # states left to expand when the search stopped
    cached_steps: int = 0  # successors computed from the transition cache, no step run

    def as_dict(self):
        out = super().as_dict()
        out.update(distinct_states=self.distinct_states, states_generated=self.states_generated,
                   depth=self.max_depth, queue=self.queue, cached_steps=self.cached_steps)
        return out


@dataclass
class RandomStats(Stats):
    seed: int = 0
    bug_depth: int | None = None  # pct's d
    cut: int = 0  # executions a step bound ended

    def as_dict(self):
        out = super().as_dict()
        out.update(seed=self.seed, cut=self.cut)
        if self.bug_depth is not None:
            out["bug_depth"] = self.bug_depth
        return out


class _Entry:
    """A state waiting in the queue: its node, its interned state, the
    threads that can step in it, and (while there is room) a live execution
    in it with its fingerprinter, so that a step not in the cache needs no
    replay."""

    __slots__ = ("node", "state", "enabled", "live")

    def __init__(self, node, state, enabled, live):
        self.node = node
        self.state = state
        self.enabled = enabled
        self.live = live


def _bound(given, bounds, name, default):
    if given is not None:
        return given
    value = getattr(bounds, name, None)
    return default if value is None else value


def _mib(n):
    return (n + (1 << 19)) >> 20


def refuse_across(model, strategy):
    names = [i.name for i in model.invariants if i.across is not None]
    if names:
        raise StrategyError(
            f"{', '.join(names)} compares executions with each other, which --strategy {strategy} "
            f"does not run one by one: use --strategy dfs")


class BreadthFirst(Search):
    """Breadth-first search over states (see the module docstring). One step
    of the search expands the state at the head of the queue.

    ``stop_on_violation=False`` goes on past violations, as the differential
    tests need; ``on_final(execution, violation)`` is called once for every
    distinct state where no thread can run; ``exact`` keeps whole states in
    the visited set instead of 64-bit digests (for tests: no collision can
    merge two states); ``cache=False`` runs every step instead of taking
    what is learned (transitions.py), and ``verify`` recomputes every
    successor from a live execution and fails if it differs (for tests).

    ``max_states`` (distinct states) and ``max_memory`` (bytes of the
    process's resident memory) end the search as incomplete; when not given
    they are the bounds' fields of those names if set, else
    :data:`MAX_STATES` and :data:`MAX_MEMORY` (``0`` for no bound)."""

    stats_class = StateStats

    def __init__(self, model, bounds=None, target=None, stop_on_violation=True, on_final=None,
                 progress=None, exact=False, live_cap=LIVE_CAP, verify=False, cache=True,
                 max_states=None, max_memory=None, should_stop=None):
        refuse_across(model, "bfs")
        super().__init__(model, bounds, progress, should_stop)
        self.max_states = _bound(max_states, self.bounds, "max_states", MAX_STATES)
        self.max_memory = _bound(max_memory, self.bounds, "max_memory", MAX_MEMORY)
        self.target = target
        self.stop_on_violation = stop_on_violation
        self.on_final = on_final
        self.exact = exact
        self.live_cap = live_cap
        self.verify = verify
        self.cache = cache
        self.violations = {}  # invariant -> the first (shortest) Counterexample
        self.queue = deque()
        self.visited = set()

    # -- the search -------------------------------------------------------------------

    def finish(self):
        self.stats.queue = len(self.queue)
        self.stats.distinct_states = len(self.visited)

    def begin(self):
        self._memory_at = (0.0, 0)  # when to read the resident size next: seconds, states
        self.constants = Constants(self.model)
        self.parent = array("q")
        self.via = array("h")
        self.depth_of = array("l")
        live = self._execution()
        self._initial(live[0])
        self.learned = Transitions(live[0])
        state = self.learned.whole(*live)
        self._add(state, -1, -1, 0)
        self._arrived(state, live, 0, [], self.queue)

    def advance(self):
        if not self.queue:
            return False
        self._expand(self.queue.popleft(), self.queue)
        return True

    def _initial(self, ex):
        """The after-step checks on the initial state (the empty schedule)."""
        try:
            found = ex.initial_violations()
        except ModelFailure as failure:
            self._failed(failure, [])
        for v in found:
            self._violation(v.invariant, v.message, [], confirmed=True)

    def limit(self):
        if not self.queue:
            return None  # nothing left: advance() ends the search
        reason = self.executions_reached()
        if reason is None and self.max_states and self.stats.distinct_states >= self.max_states:
            reason = Reason(Stop.max_states,
                            f"stopped at --max-states {self.max_states} (the bound on distinct "
                            f"states: the model may have no end of them)")
        if reason is None:
            reason = self.time_reached()
        if reason is None:
            reason = self._memory_reached()
        return reason

    def _memory_reached(self):
        elapsed = self.elapsed()
        if self.max_memory and (elapsed >= self._memory_at[0]
                                or self.stats.distinct_states >= self._memory_at[1]):
            self._memory_at = (elapsed + MEMORY_EVERY[0], self.stats.distinct_states + MEMORY_EVERY[1])
            resident = resident_memory()
            if resident is not None and resident >= self.max_memory:
                return Reason(Stop.max_memory,
                              f"stopped at --max-memory {_mib(self.max_memory)} MiB (the "
                              f"bound on resident memory: the process holds "
                              f"{_mib(resident)} MiB, with {self.stats.distinct_states} "
                              f"distinct states; the model may have no end of them)")
        return None

    # -- states -------------------------------------------------------------------------

    def _add(self, state, parent, tid, depth):
        """Record a new state; its node number."""
        self.visited.add(self._key(state))
        self.parent.append(parent)
        self.via.append(tid)
        self.depth_of.append(depth)
        self.stats.distinct_states += 1
        if depth > self.stats.max_depth:
            self.stats.max_depth = depth
        return len(self.parent) - 1

    def schedule(self, node):
        """The thread ids that lead from the initial state to ``node``."""
        out = []
        while node > 0:
            out.append(self.via[node])
            node = self.parent[node]
        out.reverse()
        return out

    def _expand(self, entry, queue):
        schedule = self.schedule(entry.node)
        live = entry.live
        learned = self.learned
        # The thread step bound counts a thread's steps along the path, which
        # the state does not hold: near it, every step runs.
        cached = self.cache and len(schedule) < self.bounds.max_steps
        for tid in entry.enabled:
            step = learned.step(tid, entry.state) if cached else None
            after, verdict = None, UNKNOWN
            if step is None:
                if live is None:
                    live = self._replay(schedule)
                after, live = live, None
                before = len(after[0].rt.history)
                ran = self._run(after, tid, schedule)
                if ran is None:
                    continue  # the step bound
                violation, verdict = ran
                step = learned.learn(*after, tid, entry.state, before, violation)
                state = learned.apply(entry.state, tid, step)
            else:
                self.stats.cached_steps += 1
                state = learned.apply(entry.state, tid, step)
                if live is not None and self._key(state) not in self.visited:
                    # The live execution would go unused: it follows the step
                    # (no fingerprinting), and the new state is queued with it.
                    after, live = live, None
                    ran = self._run(after, tid, schedule)
                    after, verdict = (after, ran[1]) if ran is not None else (None, UNKNOWN)
            self._successor(entry, tid, step, state, verdict, after, schedule + [tid], queue)

    def _run(self, live, tid, schedule):
        """Run thread ``tid``'s step on a live execution, the step and return
        checks included: (what the model's own code raised, the checks'
        verdict: (invariant, message), None, or UNKNOWN if the model raised
        first). None at the step bound."""
        ex = live[0]
        violation, verdict = None, None
        ex.checks = True
        try:
            ex.step(tid)
        except Violation as v:
            violation = v if v.in_step else None
            verdict = _checks_verdict(v)
        except StepBoundHit as hit:
            self.incomplete = Reason(Stop.step_bound, str(hit))
            self.stats.pruned += 1
            return None
        except ModelFailure as failure:
            self._failed(failure, schedule + [tid])
        self.stats.steps += 1
        return violation, verdict

    def _key(self, state):
        return state if self.exact else hash(state)

    def _successor(self, entry, tid, step, state, verdict, after, path, queue):
        self.stats.states_generated += 1
        learned = self.learned
        if step.violation is not None:
            self._violation(*step.violation, path, confirmed=after is not None)
        if learned.checked:
            verdict, confirmed, replayed = self._checked(state, verdict, lambda: path)
            if replayed is not None:
                after = replayed
            if verdict is not None:
                self._violation(*verdict, path, confirmed=confirmed)
        if self.verify:
            after = self._verify(state, step, after, path)
        self._reached(entry, tid, state, after, path, queue)

    def _checked(self, state, verdict, path_of):
        """What the after-step checks say at a successor ``state`` ((invariant,
        message) or None), whether a live execution showed it, and the
        execution replayed to learn it (None if none was): the step's own
        ``verdict`` when it ran live, else the cache's, else the path
        ``path_of()`` replayed (made only then: it costs a walk to the root)."""
        learned = self.learned
        if verdict is not UNKNOWN:
            learned.learn_verdict(state, verdict)
            return verdict, True, None
        verdict = learned.verdict(state)
        if verdict is not UNKNOWN:
            return verdict, False, None
        after, v = self._replay(path_of(), check_last=True)
        verdict = None if v is None else self._verdict(v)
        learned.learn_verdict(state, verdict)
        return verdict, True, after

    def _verdict(self, v):
        return _checks_verdict(v)

    def _reached(self, entry, tid, state, after, path, queue):
        """A successor, checked: a new state is added and queued."""
        if self._key(state) in self.visited:
            return
        node = self._add(state, entry.node, tid, len(path))
        self._arrived(state, after, node, path, queue)

    def _verify(self, state, step, after, path):
        """Tests: the state the cache computed is the one a live execution of
        ``path`` is in, and so are which threads can step and which invariant
        the step and return checks say breaks."""
        if after is None:
            after, live = self._replay(path, check_last=True)
            if self.learned.checked and step.violation is None:
                cached = self.learned.verdict(state)
                cached = cached and cached[0]
                if cached != (live and live.invariant):
                    raise AssertionError(f"the transition cache says the checks give {cached} after "
                                         f"schedule {path}, a live execution {live}")
        ex, fpr = after
        whole = self.learned.whole(ex, fpr, state[5])
        if whole != state:
            raise AssertionError(f"the transition cache's state differs from a live execution's "
                                 f"after schedule {path}")
        enabled, _ = self._enabled(state, None, path)
        if enabled != ex.enabled():
            raise AssertionError(f"the transition cache has threads {enabled} enabled after "
                                 f"schedule {path}, a live execution {ex.enabled()}")
        return after

    def _enabled(self, state, live, path):
        """The threads that can step in ``state`` (and the live execution in
        it, if one had to be made to find out)."""
        out = []
        learned = self.learned
        for tid in range(len(state[2])):
            enabled = learned.enabled(tid, state) if self.cache else None
            if enabled is None:
                if live is None:
                    live = self._replay(path)
                enabled = live[0].is_enabled(tid)
                if learned.kinds[state[2][tid]] is WAITING:
                    learned.learn_wait(live[0], tid, state)
            if enabled:
                out.append(tid)
        return out, live

    def _arrived(self, state, live, node, path, queue):
        """A new state: check it if no thread can run, else queue it."""
        enabled, live = self._enabled(state, live, path)
        if enabled:
            if not self.live_cap or len(queue) >= self.live_cap:
                live = None
            queue.append(_Entry(node, state, enabled, live))
            return
        if live is None and self.on_final is None and not self.learned.end_checked:
            # Only deadlock_free is left to check, and the interned state
            # tells whether a thread waits; a replay gives the message.
            if all(self.learned.kinds[t] is FINISHED for t in state[2]) or \
                    "deadlock_free" in self.violations or self.target not in (None, "deadlock_free"):
                return
        ex = (live or self._replay(path))[0]
        violation = ex.final_violation()
        if self.on_final is not None:
            self.on_final(ex, violation)
        if violation is not None:
            self._violation(violation.invariant, violation.message, path, confirmed=True)

    def _violation(self, invariant, message, path, confirmed):
        """Report a violation at the end of ``path``. One the cache gave
        (``confirmed=False``) is run again first: the message is the live
        one (a check may name the step number), and a cache that disagrees
        with the model stops the search."""
        if self.target is not None and invariant != self.target:
            return
        if invariant not in self.violations:
            if not confirmed:
                message = self._confirm(invariant, path)
            cex = Counterexample(list(path), invariant, message,
                                 preemptions(self.model, path, self.bounds.max_steps))
            self.violations[invariant] = cex
            if self.found is None:
                self.found = cex
        if self.stop_on_violation:
            raise Halt

    def _confirm(self, invariant, path):
        _, verdict = self._replay(path, check_last=True)
        for v in [verdict, *verdict.also] if verdict is not None else ():
            if v.invariant == invariant:
                return v.message
        raise AssertionError(f"the transition cache says {invariant} breaks after schedule "
                             f"{path}, but running it gives {verdict}")

    def _failed(self, failure, path):
        self.error = failure_record(failure, path)
        raise Halt

    # -- executions -------------------------------------------------------------------

    def _execution(self):
        """A new execution in the initial state, with its fingerprinter."""
        try:
            ex = Execution(self.model, max_steps=self.bounds.max_steps, gathered=self.gathered,
                           verdicts_by_state=True)
        except ModelFailure as failure:
            self._failed(failure, [])
        self.stats.executions += 1
        return ex, Fingerprinter(ex, self.constants)

    def _replay(self, schedule, check_last=False):
        """A new execution at the end of ``schedule``. Its steps ran before,
        and were checked then: they run again without the checks. With
        ``check_last``, the last step's checks run: (execution, the Violation
        it raised or None)."""
        live = self._execution()
        ex = live[0]
        ex.checks = False
        ex.plain_checks = False  # (and for state outside runtime objects)
        verdict = None
        last = len(schedule) - 1
        for i, tid in enumerate(schedule):
            ex.checks = check_last and i == last
            try:
                ex.step(tid)
            except Violation as v:
                if i == last:  # (the others were reported when the step first ran)
                    verdict = v
        ex.checks = ex.plain_checks = True
        self.stats.steps += len(schedule)
        return (live, verdict) if check_last else live


# -- randomised strategies ----------------------------------------------------------------


class RandomSearch(Search):
    """``random`` (``bug_depth=None``) or ``pct`` (see the module docstring).
    One step of the search is one random execution."""

    stats_class = RandomStats

    def __init__(self, model, bounds=None, seed=0, bug_depth=None, progress=None, should_stop=None):
        refuse_across(model, "pct" if bug_depth else "random")
        super().__init__(model, bounds, progress, should_stop)
        self.seed = seed
        self.bug_depth = bug_depth
        self.rng = random.Random(seed)
        self.stats.seed, self.stats.bug_depth = seed, bug_depth
        self.depth_bound = self.bounds.max_depth or WALK_DEPTH
        self.longest = 0  # PCT's k: the most steps an execution has taken so far
        given = self.bounds.max_executions
        self.executions = given if given is not None else RANDOM_EXECUTIONS

    def limit(self):
        if self.stats.executions >= self.executions:
            # the text is the outcome's: what was tried
            kind = Stop.sampled if self.bounds.max_executions is None else Stop.max_executions
            return Reason(kind, "")
        return self.time_reached()

    def advance(self):
        self._execute()
        return self.found is None and self.error is None

    def depth(self):
        return self.longest

    def outcome(self):
        if self.error is not None:
            return Outcome(Verdict.error, self.stats, error=self.error, checks=self.counted())
        if self.found is not None:
            return Outcome(Verdict.violation, self.stats, violation=self.found, checks=self.counted())
        name = f"pct (bug depth {self.bug_depth})" if self.bug_depth else "random"
        tried = (f"no violation in {self.stats.executions:,} {name} executions (seed {self.seed}); "
                 f"a random search never shows that none exists")
        if self.stats.cut:
            tried += (f"; {self.stats.cut} of them ended by a bound (--max-steps, or "
                      f"{self.depth_bound} steps in all) before the threads finished")
        reason = self.incomplete
        if reason is None:
            reason = Reason(Stop.sampled, tried)
        elif reason.kind in (Stop.sampled, Stop.max_executions):
            reason = reason.but(tried)
        else:
            reason = reason.but(f"{reason}: {tried}")
        return Outcome(Verdict.incomplete, self.stats, reason=reason, checks=self.counted())

    def _execute(self):
        try:
            ex = Execution(self.model, max_steps=self.bounds.max_steps, gathered=self.gathered)
        except ModelFailure as failure:
            self.error = failure_record(failure, [])
            return
        chooser = self._pct(ex) if self.bug_depth else self._uniform
        schedule = []
        self.stats.executions += 1
        try:
            found = ex.initial_violations()
        except ModelFailure as failure:
            self.error = failure_record(failure, [])
            return
        if found:
            self._found(found[0], schedule)
            return
        while True:
            enabled = ex.enabled()
            if not enabled:
                violation = ex.final_violation()
                if violation is not None:
                    self._found(violation, schedule)
                break
            if len(schedule) >= self.depth_bound:
                self.stats.cut += 1
                break
            tid = chooser(ex, enabled, len(schedule))
            schedule.append(tid)
            try:
                ex.step(tid)
            except Violation as v:
                self._found(v, schedule)
                break
            except StepBoundHit:
                self.stats.cut += 1
                schedule.pop()
                break
            except ModelFailure as failure:
                self.error = failure_record(failure, schedule)
                break
            finally:
                self.stats.steps += 1
        self.longest = max(self.longest, len(schedule))
        self.stats.max_depth = max(self.stats.max_depth, len(schedule))

    def _found(self, v, schedule):
        self.found = Counterexample(list(schedule), v.invariant, v.message,
                                    preemptions(self.model, schedule, self.bounds.max_steps))

    def _uniform(self, ex, enabled, step):
        return self.rng.choice(enabled)

    def _pct(self, ex):
        """A PCT chooser for one execution: priorities d .. d+n-1 shuffled over
        the threads, d-1 change points among the first k steps; at the i-th
        change point the running thread's priority drops to i (below every
        initial one). A thread that spins (its steps write nothing and bring
        it back to where it already was since it last wrote) drops below
        everyone: PCT's rule for a thread that yields, without which a
        spinning thread of high priority would starve the one it waits for."""
        d = self.bug_depth
        n = len(ex.threads)
        rng = self.rng
        order = list(range(n))
        rng.shuffle(order)
        priority = {tid: d + i for i, tid in enumerate(order)}
        k = max(self.longest, d)
        points = rng.sample(range(1, k + 1), min(d - 1, k))
        changes = {point: d - 1 - i for i, point in enumerate(points)}
        lowest = [0]
        visited = {tid: set() for tid in range(n)}  # where each thread was since it last wrote

        def choose(ex, enabled, step):
            if step:
                last = ex.events[-1]
                if step in changes:  # the step just run was a change point
                    priority[last.tid] = changes[step]
                t = ex.threads[last.tid]
                if last.writes or t.finished:
                    visited[t.tid].clear()
                else:
                    here = location(t.gen)
                    if here in visited[t.tid]:
                        lowest[0] -= 1
                        priority[t.tid] = lowest[0]
                        visited[t.tid].clear()
                    visited[t.tid].add(here)
            return max(enabled, key=priority.__getitem__)

        return choose


def _checks_verdict(v):
    """What the step and return checks said in a step that raised ``v``:
    (invariant, message) or None. The model's own violation (in_step) comes
    first and the checks' after it: Execution.step runs them whatever the
    step's code raised."""
    checks = [v, *v.also][1 if v.in_step else 0:]
    return (checks[0].invariant, checks[0].message) if checks else None


def location(gen):
    """Where a thread is paused: the instruction of each generator of its
    ``yield from`` chain."""
    out = []
    while gen is not None and getattr(gen, "gi_frame", None) is not None:
        out.append((id(gen.gi_code), gen.gi_frame.f_lasti))
        gen = gen.gi_yieldfrom
    return tuple(out)


# -- choosing a strategy ---------------------------------------------------------------------


def looping(search):
    """``auto``'s should_stop for dfs: an execution cut by the step bound (the
    only thing that makes dfs incomplete while it runs: a thread that loops)
    ends it, with that reason."""
    reason = search.incomplete
    return reason if kind_of(reason) is Stop.step_bound else None


def search(model: Model, strategy: str = "auto", reduction: str = "dpor", bounds: Bounds | None = None,
           progress=None, seed: int = 0, bug_depth: int | None = None) -> tuple[Outcome, str, str | None]:
    """Run ``strategy`` on ``model``: ``(outcome, strategy used, why)``.

    ``auto`` runs dfs (stateless, with the reduction: the cheapest exhaustive
    search when every execution ends) and, when a thread runs past the step
    bound (a spin or a retry loop that stateless search cannot get out of),
    starts again with bfs, which does terminate on such models. Models whose
    invariants compare executions with each other stay with dfs."""
    bounds = bounds or Bounds()
    if strategy in ("bfs", "random", "pct") and bounds.max_preemptions is not None:
        raise StrategyError(f"--strategy {strategy} does not bound preemptions: "
                            f"--max-preemptions goes with dfs")
    if strategy == "dfs":
        return Explorer(model, reduction, bounds, progress=progress).run(), "dfs", None
    if strategy == "bfs":
        return BreadthFirst(model, bounds, progress=progress).run(), "bfs", None
    if strategy in ("random", "pct"):
        depth = (bug_depth or PCT_DEPTH) if strategy == "pct" else None
        return RandomSearch(model, bounds, seed, depth, progress).run(), strategy, None
    if strategy != "auto":
        raise StrategyError(f"unknown strategy {strategy!r}: use one of {', '.join(STRATEGIES)}")
    if bounds.max_preemptions is not None or any(i.across is not None for i in model.invariants):
        # bfs can do neither: stay with dfs, incomplete if a thread loops
        return Explorer(model, reduction, bounds, progress=progress).run(), "dfs", None
    # A thread that loops runs into the step bound in dfs's first executions;
    # a lower bound for this try keeps dpor's analysis of that execution short.
    trial = dataclasses.replace(bounds, max_steps=min(bounds.max_steps, AUTO_STEPS))
    explorer = Explorer(model, reduction, trial, progress=progress, should_stop=looping)
    outcome = explorer.run()
    loop = explorer.halted
    if loop is None:
        return outcome, "dfs", f"auto: dfs with {reduction}"
    try:
        outcome = BreadthFirst(model, bounds, progress=progress).run()
    except FingerprintError as exc:
        reason = loop.but(f"dfs cannot finish: {loop}; bfs cannot fingerprint the model: {exc}")
        return (Outcome(Verdict.incomplete, explorer.stats, reason=reason),
                "dfs", "auto: dfs; bfs cannot fingerprint this model")
    return outcome, "bfs", f"auto: bfs, since dfs cannot finish ({loop.split(':')[0]}: a loop)"


def shortest(model, cex, bounds, budget_s=20.0):
    """The shortest schedule that violates ``cex``'s invariant, by bfs within
    ``budget_s``; ``cex`` itself if bfs finds nothing shorter in time or
    cannot fingerprint the model. A random search's counterexample on a model
    that loops can be thousands of steps long: minimise() then starts from
    this one."""
    b = Bounds(max_steps=bounds.max_steps, timeout=budget_s)
    try:
        out = BreadthFirst(model, b, target=cex.invariant).run()
    except FingerprintError:
        return cex
    if out.violation is not None and len(out.violation.schedule) < len(cex.schedule):
        return out.violation
    return cex
