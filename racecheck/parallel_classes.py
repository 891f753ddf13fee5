"""The classes of a symbolic scenario's values on several processes.

The class loop (symbolic.ClassSearch) picks each class's values with z3
outside every class found so far, so the choice of values is sequential;
the searches of the classes are not. Here the loop runs in the coordinator
as it runs in one process, the same solver given the same assertions in the
same order, so z3 picks the same values; and the workers search classes
ahead of it. While the loop waits for the class of the values z3 picked,
each idle worker searches an assignment of the space that no class found or
being searched holds yet (the space's assignments in their order). When z3
then picks values that a class a worker found holds, the loop takes that
class as it is: every assignment of a class makes the same decisions in
every execution of the search, so the search with z3's values explores the
same executions with the same verdict, decisions and counterexample (the
module docstring of symbolic.py). The class keeps z3's values, as in one
process.

So the classes the run takes, their order, the deciding class, its values
and its counterexample are one process's, and so are the statistics (the
taken classes' searches). The workers' other searches are the price: an
assignment searched ahead whose class the loop never reaches (the run
stopped at a violation) or that a class searched at the same time also
holds; ``searched`` counts every search. ``--max-executions`` runs in one
process (each class's share of it depends on the classes before it).
"""

from __future__ import annotations

import multiprocessing

from .parallel import _result, _WorkerDied, stop_workers
from .search import Halt, Reason, Stats, Stop
from .symbolic import ClassSearch, ParamClass, _search

SCAN = 10_000  # assignments looked at for one search ahead, at most (a large space's)

_JOB = {}  # what the workers search: set before they fork


def _worker(tasks, results):
    """A worker: the class of each assignment from ``tasks`` until None."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator stops the workers

    from .model import instantiate

    model, reduction, bounds = _JOB["job"]
    while True:
        task = tasks.get()
        if task is None:
            return
        n, env, left_s = task
        try:
            out = _search(instantiate(model, env), env, reduction, bounds, Stats(), left_s, None, 0.0)
        except BaseException as exc:  # noqa: BLE001 - raised in the coordinator, as in one process
            out = exc
        results.put((n, out))


class ParallelClassSearch(ClassSearch):
    """The class loop of one process, with ``jobs`` workers searching the
    classes (see the module docstring)."""

    def __init__(self, space, model, reduction="dpor", bounds=None, stop_on_violation=True,
                 progress=None, jobs=2):
        super().__init__(space, model, reduction, bounds, stop_on_violation, progress)
        self.jobs = jobs
        self.known = []  # classes the workers found that the loop has not taken
        self.running = {}  # task number -> the assignment a worker searches
        self.searched = 0  # class searches the workers ran (or run)
        self.workers = []

    def begin(self):
        super().begin()
        _JOB["job"] = (self.model, self.reduction, self.bounds)
        ctx = multiprocessing.get_context("fork")  # the workers inherit the model: nothing to pickle
        self.tasks, self.results = ctx.Queue(), ctx.Queue()
        self.workers = [ctx.Process(target=_worker, args=(self.tasks, self.results), daemon=True)
                        for _ in range(self.jobs)]
        for w in self.workers:
            w.start()
        self.ahead = iter(self.space.assignments())

    def finish(self):
        if self.workers:
            stop_workers(self.workers, (self.tasks, self.results))
        _JOB.clear()

    def search_class(self, env):
        """The class of z3's values ``env``: one a worker found, or the one
        a worker finds when it has searched them."""
        while True:
            for n, cls in enumerate(self.known):
                if cls.contains(env):
                    del self.known[n]
                    return ParamClass(env, cls.literals, cls.outcome)
            if env not in self.running.values():
                self._submit(env)
            self._fill()
            try:
                n, out = _result(self.results, self.workers)
            except _WorkerDied as exc:  # what its class holds is unknown: incomplete, never clean
                self.incomplete = Reason(Stop.interrupted, str(exc))
                raise Halt from None
            self.running.pop(n)
            if isinstance(out, BaseException):
                raise out
            self.known.append(out)

    def take(self, cls):
        going_on = super().take(cls)
        if self.class_progress is not None:
            self.class_progress(self.stats, self.stats.max_depth, self.elapsed())
        return going_on

    def _submit(self, env):
        self.searched += 1
        self.running[self.searched] = env
        self.tasks.put((self.searched, env, self.remaining_s()))

    def _fill(self):
        """Idle workers search ahead: assignments no class found or being
        searched holds."""
        looked = 0
        while len(self.running) < self.jobs and looked < SCAN:
            env = next(self.ahead, None)
            if env is None:
                return
            looked += 1
            if env in self.running.values() or any(c.contains(env) for c in self.classes + self.known):
                continue
            self._submit(env)

    def outcome(self):
        out = super().outcome()
        out.searched = self.searched
        return out


def explore_classes(space, model, reduction="dpor", bounds=None, stop_on_violation=True, progress=None,
                    jobs=2):
    """symbolic.explore_classes with the classes searched on ``jobs`` processes."""
    return ParallelClassSearch(space, model, reduction, bounds, stop_on_violation, progress, jobs).run()
