"""Checking a scenario end to end: explore, minimise, replay with tracing,
save the trace. The command line and the pytest plugin both use this."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from . import trace as tracefile
from . import strategies
from .scheduler import minimise, replay

EXIT = {"clean": 0, "violation": 1, "incomplete": 3, "error": 4}


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
            "error": o.error,
            "expect": self.scenario.expect,
            "trace_file": str(self.trace_path) if self.trace_path else None,
            "trace": self.trace,
        })
        if self.symbolic is not None:
            out["symbolic"] = self.symbolic
        out.update(self.checks or {})
        return out


def bounds_with(base, **overrides):
    """A copy of ``base`` with the options given on the command line."""
    changes = {k: v for k, v in overrides.items() if v is not None}
    return dataclasses.replace(base, **changes)


def check(scenario, reduction=None, bounds=None, progress=None, trace_out=None,
          save_trace=True, do_minimise=True, strategy="auto", seed=0, bug_depth=None):
    """Explore ``scenario`` with ``strategy`` (strategies.py); on a violation,
    minimise it and build its trace."""
    reduction = reduction or scenario.reduction
    bounds = bounds or scenario.bounds
    if getattr(scenario, "space", None) is not None:  # ranges or sets of values
        from .symbolic import check_space
        return check_space(scenario, reduction, bounds, progress, trace_out, save_trace, do_minimise,
                           strategy)
    outcome, used, why = strategies.search(scenario.model, strategy, reduction, bounds, progress,
                                           seed, bug_depth)
    if used != "dfs":
        reduction = "none"  # bfs and the random strategies reduce nothing
    report = Report(scenario, outcome.verdict, outcome, reduction, used, strategy_reason=why,
                    checks=invariant_counts(scenario.model))
    if outcome.violation is not None:
        report.found = outcome.violation
        cex = outcome.violation
        if do_minimise:  # (minimise() never lengthens: bfs's stay shortest, with fewer preemptions)
            if used in ("random", "pct"):
                cex = strategies.shortest(scenario.model, cex, bounds)
            cex = minimise(scenario.model, cex, bounds)
            outcome.violation = cex
        replayed = replay(scenario.model, cex.schedule, bounds.max_steps)
        report.trace = tracefile.build(scenario, cex, replayed, reduction)
        if save_trace:
            path = Path(trace_out) if trace_out else default_trace_path(scenario)
            report.trace_path = tracefile.save(report.trace, path)
    return report


def invariant_counts(model):
    """What the invariants counted over the search just run (crash.py's
    crash states), before minimisation's searches reset them."""
    out = {}
    for inv in model.invariants:
        if hasattr(inv, "stats"):
            out.update(inv.stats())
    return out or None


def default_trace_path(scenario):
    return Path("traces") / f"{scenario.name}.json"
