"""Checking a scenario end to end: explore, minimise, replay with tracing,
save the trace. The command line and the pytest plugin both use this."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from . import trace as tracefile
from .scheduler import Explorer, minimise, replay

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
    symbolic: dict | None = None  # classes, z3 queries, values (symbolic.summary)

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
            "reason": o.reason,
            "error": o.error,
            "expect": self.scenario.expect,
            "trace_file": str(self.trace_path) if self.trace_path else None,
            "trace": self.trace,
        })
        if self.symbolic is not None:
            out["symbolic"] = self.symbolic
        return out


def bounds_with(base, **overrides):
    """A copy of ``base`` with the options given on the command line."""
    changes = {k: v for k, v in overrides.items() if v is not None}
    return dataclasses.replace(base, **changes)


def check(scenario, reduction=None, bounds=None, progress=None, trace_out=None,
          save_trace=True, do_minimise=True):
    """Explore ``scenario``; on a violation, minimise it and build its trace."""
    reduction = reduction or scenario.reduction
    bounds = bounds or scenario.bounds
    if getattr(scenario, "space", None) is not None:  # ranges or sets of values
        from .symbolic import check_space
        return check_space(scenario, reduction, bounds, progress, trace_out, save_trace, do_minimise)
    explorer = Explorer(scenario.model, reduction, bounds, progress=progress)
    outcome = explorer.run()
    report = Report(scenario, outcome.verdict, outcome, reduction, "dfs")
    if outcome.violation is not None:
        report.found = outcome.violation
        cex = outcome.violation
        if do_minimise:
            cex = minimise(scenario.model, cex, bounds)
            outcome.violation = cex
        replayed = replay(scenario.model, cex.schedule, bounds.max_steps)
        report.trace = tracefile.build(scenario, cex, replayed, reduction)
        if save_trace:
            path = Path(trace_out) if trace_out else default_trace_path(scenario)
            report.trace_path = tracefile.save(report.trace, path)
    return report


def default_trace_path(scenario):
    return Path("traces") / f"{scenario.name}.json"
