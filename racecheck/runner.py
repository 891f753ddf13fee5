"""Checking a scenario end to end: search, minimise, replay with tracing,
save the trace. The command line and the pytest plugin both use this, for
every scenario: a symbolic one's search is its classes' (symbolic.py), and
what follows is the same."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path

from . import strategies
from . import trace as tracefile
from .fingerprint import FingerprintError
from .minimise import minimise
from .scheduler import replay
from .search import Outcome, Stop, Verdict, kind_of

EXIT = {Verdict.clean: 0, Verdict.violation: 1, Verdict.incomplete: 3, Verdict.error: 4}


@dataclass
class Report:
    scenario: object
    verdict: str
    outcome: object
    reduction: str
    strategy: str
    trace: dict | None = None
    trace_path: Path | None = None
    found: object = None  # the counterexample before minimisation
    strategy_reason: str | None = None  # why auto chose the strategy it used
    symbolic: dict | None = None  # classes, z3 queries, values (symbolic.summary)
    checks: dict | None = None  # what invariants counted over the search (crash_states)
    notes: list = dataclasses.field(default_factory=list)  # what went otherwise than planned
    parallel: dict | None = None  # --jobs: workers, work units and their depth

    def error_schedule(self):
        """The schedule that made the model raise, as thread names."""
        if self.trace is not None and self.trace.get("verdict") == "error":
            return list(self.trace["schedule"])
        schedule = list((self.outcome.error or {}).get("schedule") or [])
        names = tracefile.model_thread_names(self.scenario.model) if schedule else None
        if names is None:
            return schedule
        return [names[t] if isinstance(t, int) and 0 <= t < len(names) else t for t in schedule]

    @property
    def exit_status(self):
        return EXIT[self.verdict]

    def as_json(self):
        o = self.outcome
        v = o.violation
        out = {
            "scenario": self.scenario.name,
            "path": str(self.scenario.path),
            "verdict": self.verdict,
            "invariant": v.invariant if v else None,
            "message": v.message if v else (o.reason or (o.error or {}).get("exception")),
        }
        out.update(o.stats.as_dict())
        out.update({
            "reduction": self.reduction,
            "strategy": self.strategy,
            "strategy_reason": self.strategy_reason,
            "reason": o.reason,
            "error": dict(o.error, schedule=self.error_schedule()) if o.error else None,
            "expect": self.scenario.expect,
            "trace_file": str(self.trace_path) if self.trace_path else None,
            "trace": self.trace,
        })
        if self.symbolic is not None:
            out["symbolic"] = self.symbolic
        out.update(self.parallel or {"jobs": 1})
        out.update(self.checks or {})
        if self.notes:
            out["notes"] = list(self.notes)
        return out


def bounds_with(base, **overrides):
    """A copy of ``base`` with the options given on the command line."""
    changes = {k: v for k, v in overrides.items() if v is not None}
    return dataclasses.replace(base, **changes)


def check(scenario, reduction=None, bounds=None, progress=None, trace_out=None,
          save_trace=True, do_minimise=True, strategy="auto", seed=0, bug_depth=None, jobs=1,
          cluster=None):
    """Search ``scenario`` with ``strategy`` (strategies.py; the classes of
    its values, symbolic.py, when it has ranges or sets); on a violation,
    minimise it and build its trace, as on a model that raised. ``jobs``:
    dfs on that many processes (racecheck/parallel.py); ``cluster``: the
    address of a Dask scheduler to run dfs's work units on (cluster.py)."""
    reduction = reduction or scenario.reduction
    bounds = bounds or scenario.bounds
    if getattr(progress, "bounds", False) is None:  # progress.Progress: the limits it shows the time left to
        progress.bounds = bounds
    run = None
    split = None
    notes = []
    if jobs > 1 or cluster:
        why = _one_process(scenario, strategy, cluster)
        if why is not None:
            where = f"--cluster {cluster}" if cluster else f"--jobs {jobs}"
            notes.append(f"{where}: {why}, so the search ran in one process here")
            jobs, cluster = 1, None
    if getattr(scenario, "space", None) is not None and jobs > 1 and bounds.max_executions is not None:
        notes.append(f"--jobs {jobs}: --max-executions shares its executions among the classes of values "
                     f"in their order, so the search ran in one process here")
        jobs = 1
    if (jobs > 1 and getattr(scenario, "space", None) is None) or cluster:
        outcome, used, why, split = _spread(scenario, strategy, reduction, bounds, progress, jobs, cluster,
                                            notes, seed, bug_depth)
        model, params, traced = scenario.model, None, scenario
    elif getattr(scenario, "space", None) is not None:  # ranges or sets of values
        from . import symbolic  # here only: a run without ranges does not need it
        explore = symbolic.explore_classes
        if jobs > 1:
            from .parallel_classes import explore_classes
            explore = functools.partial(explore_classes, jobs=jobs)
        run = symbolic.search_space(scenario, reduction, bounds, progress, strategy, explore)
        if jobs > 1:
            split = {"jobs": jobs, "classes_searched": run.outcome.searched}
        outcome, used, why = run.outcome, "dfs", run.strategy_reason
        model, params = run.model, run.params
        traced = dataclasses.replace(scenario, model=model) if model is not None else None
    else:
        outcome, used, why = strategies.search(scenario.model, strategy, reduction, bounds, progress,
                                               seed, bug_depth)
        model, params, traced = scenario.model, None, scenario
    if used != "dfs":
        reduction = "none"  # bfs and the random strategies reduce nothing
    report = Report(scenario, outcome.verdict, outcome, reduction, used, strategy_reason=why,
                    checks=outcome.checks)
    report.notes.extend(notes)
    report.parallel = split
    if run is not None:
        report.symbolic = run.summary
        if model is None:  # no deciding class, or its schedule does not replay concretely
            return report
    if outcome.violation is not None:
        report.found = outcome.violation
        cex, replayed = _replayable(model, outcome.violation, bounds, used, do_minimise, report.notes)
        if cex is not None:
            outcome.violation = cex
            report.trace = tracefile.build(traced, cex, replayed, reduction, params=params)
    elif outcome.error is not None:
        replayed = _replayed_error(model, outcome.error, bounds, report.notes)
        if replayed is not None:
            report.trace = tracefile.build_error(traced, outcome.error, replayed, reduction,
                                                 params=params)
    if report.trace is not None and save_trace:
        path = Path(trace_out) if trace_out else default_trace_path(scenario)
        report.trace_path = tracefile.save(report.trace, path)
    return report


def _spread(scenario, strategy, reduction, bounds, progress, jobs, cluster, notes, seed, bug_depth):
    """The search on ``jobs`` processes or on the Dask ``cluster``: (outcome,
    strategy used, why, what the report says of the split)."""
    model = scenario.model
    if strategy == "bfs":
        return _bfs(model, bounds, progress, jobs) + ({"jobs": jobs},)
    if cluster:
        from . import cluster as dask_cluster
        split = dask_cluster.explore(model, dask_cluster.scenario_model(scenario.path), cluster,
                                     reduction, bounds, progress)
        where = f"{split.workers} workers of the Dask cluster at {cluster}"
    else:
        from . import parallel
        split = parallel.explore(model, reduction, bounds, jobs, progress)
        where = f"{jobs} processes"
    said = {"jobs": split.workers, "units": split.units, "unit_depth": split.depth,
            "units_handed_over": getattr(split, "handed", 0)}
    if cluster:
        said["cluster"] = cluster
    outcome = split.outcome
    if strategy == "auto" and outcome.verdict == "incomplete" and kind_of(outcome.reason) == Stop.step_bound:
        # A thread loops: auto turns to bfs, which terminates on loops.
        if cluster:
            notes.append(f"{where}: a thread runs past the step bound; bfs ran in one process here")
            return (*strategies.search(model, strategy, reduction, bounds, progress, seed, bug_depth), None)
        try:
            found, used, _ = _bfs(model, bounds, progress, jobs)
        except FingerprintError as exc:
            reason = outcome.reason.but(f"dfs cannot finish: {outcome.reason}; bfs cannot fingerprint the "
                                        f"model: {exc}")
            return Outcome(Verdict.incomplete, outcome.stats, reason=reason), "dfs", f"dfs on {where}", said
        return found, used, f"auto: bfs on {where}, since dfs cannot finish (a loop)", {"jobs": jobs}
    return outcome, "dfs", f"dfs with {reduction} on {where}", said


def _bfs(model, bounds, progress, jobs):
    """bfs on ``jobs`` processes, level by level (parallel_bfs.py)."""
    from . import parallel_bfs
    if bounds.max_preemptions is not None:
        raise strategies.StrategyError("--strategy bfs does not bound preemptions: --max-preemptions goes "
                                       "with dfs")
    return parallel_bfs.explore(model, bounds, jobs, progress), "bfs", f"bfs on {jobs} processes"


def _one_process(scenario, strategy, cluster=None):
    """Why ``scenario`` cannot be split over processes, or None."""
    if strategy == "bfs" and cluster:
        return "bfs partitions its states over the processes of one machine (--jobs), not a cluster"
    if strategy not in ("auto", "dfs", "bfs"):
        return f"--strategy {strategy} runs in one process"
    if getattr(scenario, "space", None) is not None and cluster:
        return "a scenario with ranges or sets of values runs its classes on the processes of one machine"
    across = [i.name for i in scenario.model.invariants if getattr(i, "across", None) is not None]
    if across:
        return f"{', '.join(across)} compares every execution with the others"
    return None


def replays_to(model, cex, max_steps):
    """The replay of ``cex``'s schedule when it ends in the violation of
    ``cex.invariant`` exactly at its last step, else None."""
    replayed = replay(model, cex.schedule, max_steps)
    v = replayed.violation
    if replayed.mismatch is None and replayed.error is None and v is not None and v.invariant == cex.invariant:
        return replayed
    return None


def _why_not(model, cex, max_steps):
    """What the replay of ``cex``'s schedule does instead of ending in its violation."""
    replayed = replay(model, cex.schedule, max_steps)
    if replayed.mismatch:
        what = replayed.mismatch
        if replayed.violation is not None:
            what = f"{replayed.violation.invariant} breaks first ({what})"
    elif replayed.error:
        what = f"the model raised {replayed.error['exception']}"
    elif replayed.violation is not None:
        what = f"it breaks {replayed.violation.invariant} instead"
    else:
        what = "nothing breaks"
    return f"{len(cex.schedule)} steps: {what}"


def _replayable(model, found, bounds, used, do_minimise, notes):
    """The counterexample to show and its replay: ``found`` minimised, or
    ``found`` itself when the minimised schedule does not replay to the same
    violation at its end; (None, None) when not even ``found`` replays."""
    if do_minimise:  # (fewest preemptions first, then steps: a bfs one can come back longer)
        cex = found
        if used in ("random", "pct"):
            cex = strategies.shortest(model, cex, bounds)
        cex = minimise(model, cex, bounds, notes=notes)
        replayed = replays_to(model, cex, bounds.max_steps)
        if replayed is not None:
            return cex, replayed
        notes.append(f"the minimised counterexample did not replay to {found.invariant} at its end "
                     f"({_why_not(model, cex, bounds.max_steps)}): showing the one found instead")
    replayed = replays_to(model, found, bounds.max_steps)
    if replayed is not None:
        return found, replayed
    notes.append(f"the counterexample found does not replay to {found.invariant} "
                 f"({_why_not(model, found, bounds.max_steps)}): no trace saved; the model may keep "
                 f"state outside runtime objects, or act on something other than the schedule")
    return None, None


def _replayed_error(model, error, bounds, notes):
    """The replay of the schedule that made the model raise, when it raises
    the same way at its last step; else None, with a note."""
    schedule = error.get("schedule") or []
    if not schedule:
        notes.append("the model raised before its first step: no trace saved")
        return None
    replayed = replay(model, schedule, bounds.max_steps)
    e = replayed.error
    if e is not None and len(e["schedule"]) == len(schedule) and e["exception"] == error["exception"]:
        return replayed
    notes.append("the schedule that made the model raise does not raise the same way when replayed: "
                 "no trace saved")
    return None


def default_trace_path(scenario):
    return Path("traces") / f"{scenario.name}.json"
