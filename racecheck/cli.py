"""The ``racecheck`` command line (the contract in DESIGN.md).

Exit statuses: 0 clean, 1 violation, 2 bad input or usage, 3 incomplete,
4 the model itself raised an error.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from . import invariants as inv
from . import report as text
from . import runner
from . import trace as tracefile
from .cluster import ClusterError
from .execution import BadModel
from .fingerprint import FingerprintError
from .progress import Progress, color_wanted
from .scheduler import REDUCTIONS
from .scheduler import replay as replay_schedule
from .strategies import PCT_DEPTH, STRATEGIES, StrategyError


def fail(message, status=2):
    click.echo(f"racecheck: {message}", err=True)
    sys.exit(status)


def load_or_fail(path):
    # Here, not at the top: the scenario reader brings PyYAML and the whole
    # kernel library, which --help, show and view do not need.
    from .scenario import ScenarioError, load

    try:
        return load(path)
    except ScenarioError as exc:
        fail(str(exc))


@click.group()
@click.version_option(package_name="racecheck")
def main():
    """racecheck: a model checker for kernel concurrency races."""


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.option("--trace-out", type=click.Path(dir_okay=False),
              help="Where to save a counterexample (default: traces/NAME.json).")
@click.option("--reduction", type=click.Choice(REDUCTIONS), help="dpor (default) or none (every interleaving).")
@click.option("--max-preemptions", type=click.IntRange(min=0), help="Preemption bound; a search it cuts is incomplete.")
@click.option("--max-executions", type=click.IntRange(min=1), help="Stop after this many executions (incomplete).")
@click.option("--max-steps", type=click.IntRange(min=1), help="Steps allowed per thread.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="Wall-clock limit in seconds.")
@click.option("--strategy", type=click.Choice(STRATEGIES), default="auto", show_default=True,
              help="dfs (stateless, with the reduction), bfs (over states: terminates on loops, "
                   "shortest counterexample), random or pct (sampling: incomplete when nothing "
                   "is found); auto is dfs, or bfs when a thread loops.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for randomised strategies.")
@click.option("--bug-depth", type=click.IntRange(min=1), default=PCT_DEPTH, show_default=True,
              help="PCT's bug depth d: d-1 priority change points per execution.")
@click.option("--max-states", type=click.IntRange(min=1),
              help="bfs: stop after this many distinct states (incomplete; default 5,000,000).")
@click.option("--max-memory", "max_memory_mib", type=click.IntRange(min=1),
              help="bfs: stop when the process's resident memory reaches this many MiB "
                   "(incomplete; default 2048, or half the machine's memory).")
@click.option("--no-minimise", is_flag=True, help="Report the first counterexample as found.")
@click.option("--jobs", default="1", show_default=True, metavar="N|auto",
              help="Explore on N processes (auto: the cores there are); dfs only.")
@click.option("--cluster", metavar="tcp://HOST:8786",
              help="Explore on the workers of this Dask scheduler (pip install 'racecheck[dask]'); dfs only.")
def run(scenario, as_json, trace_out, reduction, max_preemptions, max_executions, max_steps,
        timeout, strategy, seed, bug_depth, max_states, max_memory_mib, no_minimise, jobs, cluster):
    """Explore one scenario and report the verdict."""
    jobs = jobs_of(jobs)
    if cluster and jobs > 1:
        fail("--cluster and --jobs: the cluster's workers are the jobs; give one or the other")
    sc = load_or_fail(scenario)
    bounds = runner.bounds_with(sc.bounds, max_preemptions=max_preemptions,
                                max_executions=max_executions, max_steps=max_steps, timeout=timeout,
                                max_states=max_states,
                                max_memory=max_memory_mib << 20 if max_memory_mib else None)
    progress = Progress(sys.stderr.isatty() and not as_json)
    try:
        rep = runner.check(sc, reduction, bounds, progress=progress, trace_out=trace_out,
                           do_minimise=not no_minimise, strategy=strategy, seed=seed,
                           bug_depth=bug_depth, jobs=jobs, cluster=cluster)
    except (StrategyError, FingerprintError, BadModel, ClusterError) as exc:
        fail(f"{scenario}: {exc}")
    progress.done()
    if as_json:
        click.echo(json.dumps(rep.as_json(), indent=1))
    else:
        print_report(rep, color=sys.stdout.isatty())
    sys.exit(rep.exit_status)


def jobs_of(value):
    """``--jobs N|auto`` as a number of processes (exit 2 otherwise)."""
    if value == "auto":
        from .parallel import cores
        return cores()
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        fail(f"--jobs must be a number of processes (1 or more) or auto, not {value!r}")
    return n


def plural(n, word):
    return f"{n} {word}" + ("" if n == 1 else "s")


def print_report(rep, color=False):
    """``rep`` as text; ``color``: whether standard output is a terminal
    (NO_COLOR and FORCE_COLOR have the last word)."""
    color = color_wanted(color)
    o = rep.outcome
    v = o.violation
    click.echo(text.verdict_line(rep.scenario.name, rep.verdict, v.invariant if v else None, color), color=color)
    click.echo("  " + text.stats_line(o.stats.as_dict(), rep.reduction, rep.strategy))
    if rep.strategy_reason and rep.strategy != "dfs":  # (dfs's line says "reduction ...")
        click.echo(f"  ({rep.strategy_reason})")
    if rep.parallel is not None:
        p = rep.parallel
        where = f"{p['jobs']} workers of {p['cluster']}" if "cluster" in p else f"{p['jobs']} processes"
        if "units" in p:
            split = (f": {p['units']} work unit{'s' if p['units'] != 1 else ''} of {p['unit_depth']} steps"
                     + (f", {p['units_handed_over']} handed over" if p.get("units_handed_over") else ""))
        elif "classes_searched" in p:
            split = f": {p['classes_searched']} searches of classes of values (ahead of z3's choice too)"
        else:
            split = ", levels in step, each state with the worker that made it"
        click.echo(f"  on {where}{split}")
    if rep.checks and "crash_states" in rep.checks:  # crash: true (racecheck/crash.py)
        click.echo(f"  crash states: {rep.checks['crash_states']:,} checked, "
                   f"{rep.checks['crash_points_pruned']:,} crash points pruned")
    if rep.symbolic is not None:  # ranges or sets of values: racecheck/symbolic.py
        from .symbolic import report_lines
        for line in report_lines(rep.symbolic, rep.verdict):
            click.echo("  " + line)
    if rep.verdict == "incomplete":
        click.echo(f"  incomplete: {o.reason}; nothing was found, but not every interleaving was explored")
    if rep.verdict == "error":
        e = o.error
        click.echo(f"  the model raised in thread {e['thread']}: {e['exception']}")
        click.echo(f"  schedule: {text.schedule_runs(rep.error_schedule()) or '(none: before the first step)'}")
        click.echo("  " + e["traceback"].rstrip().replace("\n", "\n  "))
    if v is not None:
        steps = len(v.schedule)
        found = rep.found
        note = ""
        if found is not None and (len(found.schedule), found.preemptions) != (steps, v.preemptions):
            note = f" (minimised from {len(found.schedule)} steps, {found.preemptions} preemptions)"
        click.echo(f"  counterexample: {steps} steps, {plural(v.preemptions, 'preemption')}{note}")
        if o.reason:
            click.echo(f"  (the search stopped early: {o.reason})")
    for line in rep.notes:
        click.echo(f"  note: {line}")
    if rep.trace is not None:
        click.echo("")
        click.echo(text.format_trace(rep.trace, color), color=color)
        click.echo("")
        if rep.trace_path:
            click.echo(f"trace saved to {rep.trace_path}")
            click.echo(f"  replay: racecheck replay {rep.trace_path}")
            click.echo(f"  read:   racecheck show {rep.trace_path}")
            click.echo(f"  view:   racecheck view {rep.trace_path}   (swimlanes and state in a browser)")


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--junit", type=click.Path(dir_okay=False), help="Write JUnit XML here.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per scenario, one per line.")
@click.option("--reduction", type=click.Choice(REDUCTIONS), help="Override every scenario's reduction.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Wall-clock limit per scenario (incomplete past it).")
@click.option("--jobs", default="1", show_default=True, metavar="N|auto",
              help="Run N scenarios at a time, each in a process of its own (auto: the cores there are).")
@click.option("--traces-dir", type=click.Path(file_okay=False),
              help="Save there the trace of every scenario that does not match its expect.")
@click.option("--sarif", type=click.Path(dir_okay=False), help="Write SARIF 2.1.0 here (code-scanning views).")
@click.option("--annotations", type=click.Choice(["github", "none"]),
              help="Print GitHub Actions error annotations (default: github when GITHUB_ACTIONS=true).")
@click.option("--cluster", metavar="tcp://HOST:8786",
              help="Explore each scenario on the workers of this Dask scheduler.")
def check(paths, junit, as_json, reduction, timeout, jobs, traces_dir, sarif, annotations, cluster):
    """Run every scenario under PATHS and compare each with its expect.
    Exit 0 when all match, 1 when one does not, 2 when a file does not
    load, 3 when interrupted."""
    from . import checkrun, ciformats

    jobs = jobs_of(jobs)
    if cluster and jobs > 1:
        fail("--cluster and --jobs: the cluster's workers explore one scenario at a time; give one of them")
    files = checkrun.find_scenarios(paths)
    if not files:
        fail(f"no scenario files (*.yaml) under {', '.join(paths)}")
    options = checkrun.Options(reduction=reduction, timeout=timeout, cluster=cluster)
    progress = Progress(sys.stderr.isatty() and not as_json)
    color = color_wanted(sys.stdout.isatty())
    saved = set()
    if traces_dir:
        try:
            Path(traces_dir).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            fail(f"--traces-dir {traces_dir}: cannot make the directory: {exc.strerror}")

    def emit(res):
        progress.done()
        if traces_dir:
            checkrun.save_trace(res, traces_dir, saved)
        if as_json:
            click.echo(json.dumps(checkrun.result_json(res)))
        else:
            for line in checkrun.row(res, color):
                click.echo(line, color=color)

    if not as_json:
        click.echo(checkrun.HEADER)
    if jobs > 1 and len(files) > 1:
        results = checkrun.run_parallel(files, options, min(jobs, len(files)), progress, emit)
    else:
        try:
            results = checkrun.run_serial(files, options, progress, emit)
        except ClusterError as exc:  # the scheduler does not answer: no scenario can run
            progress.done()
            fail(f"--cluster {cluster}: {exc}")
    if not as_json:
        click.echo("\n" + checkrun.summary(results))
    if ciformats.annotations_wanted(annotations, as_json):
        for line in ciformats.github_annotations(results):
            click.echo(line)
    if junit:
        from .junit import write_junit
        write_junit(junit, results)
    if sarif:
        ciformats.write_sarif(sarif, results)
    sys.exit(checkrun.exit_status(results))


def load_trace_or_fail(trace_file):
    try:
        return tracefile.load(trace_file)
    except tracefile.TraceError as exc:
        fail(str(exc))


@main.command()
@click.argument("trace_file", metavar="TRACE", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def replay(trace_file, as_json):
    """Re-run a saved counterexample against the current models."""
    doc = load_trace_or_fail(trace_file)
    saved = doc["scenario"]
    sc_path = tracefile.scenario_path(doc, trace_file)
    if not sc_path.exists():
        fail(f"{trace_file}: scenario.path: {saved['path']}: no such scenario file "
             f"(looked for it as saved and beside the trace)")
    if sc_path.is_dir():
        fail(f"{trace_file}: scenario.path: {sc_path} is a directory, not a scenario file")
    sc = load_or_fail(sc_path)
    if saved["name"] != sc.name:
        fail(f"{trace_file}: saved from scenario {saved['name']!r}, but {sc_path} is {sc.name!r}")
    if saved["digest"] != sc.digest:
        fail(f"{trace_file}: saved from another version of {sc_path} (the file changed since); "
             f"run the scenario again to get a new trace")
    models_changed = doc.get("models_digest") != sc.models_digest
    if models_changed:
        click.echo(f"note: {trace_file} was saved with another version of the models; "
                   f"replaying against the current ones", err=True)
    model = sc.model
    if sc.space is not None:  # ranges or sets: the trace holds the values it ran with
        from .ranges import model_with_values
        try:
            model = model_with_values(sc.space, sc.model, doc.get("params"))
        except ValueError as exc:
            fail(f"{trace_file}: params: {exc}")
    try:
        schedule = tracefile.schedule_ids(doc, tracefile.model_thread_names(model) or doc["threads"])
    except tracefile.TraceError as exc:
        fail(f"{trace_file}: {exc}")
    start = time.monotonic()
    try:
        out = replay_schedule(model, schedule, sc.bounds.max_steps)
    except BadModel as exc:
        fail(f"{sc.path}: {exc}")
    elapsed = time.monotonic() - start
    if out.mismatch:
        what = out.mismatch
        if out.violation is not None:  # a violation before the schedule's end
            what = (f"{out.violation.invariant} broke at step {len(out.records)}, "
                    f"{len(schedule) - len(out.records)} steps before the schedule's end")
        fail(f"{trace_file}: schedule: the trace no longer fits the model: {what}")
    if out.error:
        verdict, status = "error", 4
    elif out.violation:
        verdict, status = "violation", 1
    else:
        verdict, status = "clean", 0
    # The replay ends as the trace says (exit 1 or 4); or, the models having
    # changed since, the saved schedule in full now breaks nothing (exit 0: the
    # violation no longer happens). Anything else is a mismatch.
    same = _same_as_saved(doc, verdict, out, len(schedule))
    edited = [s["thread"] for s in doc["steps"]] != doc["schedule"]
    if not same and (verdict != "clean" or edited or not models_changed):
        why = ("; the models changed since it was saved" if models_changed else
               "; the scenario and the models are the same as when it was saved")
        fail(f"{trace_file}: the replay does not reproduce the trace: the trace reports "
             f"{_saved_outcome(doc)}, but replaying its schedule gave {_replayed_outcome(out, verdict, schedule)}"
             + (_edited_note(doc) if edited else why))
    if as_json:
        v = out.violation
        click.echo(json.dumps({"scenario": sc.name, "verdict": verdict,
                               "invariant": v.invariant if v else None,
                               "message": v.message if v else (out.error["exception"] if out.error else None),
                               "executions": 1, "steps": len(schedule), "elapsed_s": round(elapsed, 3),
                               "same_as_saved": same}))
        sys.exit(status)
    color = color_wanted(sys.stdout.isatty())
    click.echo(text.verdict_line(sc.name, verdict, out.violation.invariant if out.violation else None, color),
               color=color)
    if out.violation:
        click.echo(f"  replayed {len(schedule)} steps: the same violation as saved")
        click.echo(f"  {out.violation.message}")
    elif out.error:
        click.echo(f"  replayed {len(schedule)} steps: the same error as saved")
        click.echo(f"  the model raised in thread {out.error['thread']}: {out.error['exception']}")
        click.echo("  " + out.error["traceback"].rstrip().replace("\n", "\n  "))
    else:
        click.echo(f"  replayed {len(schedule)} steps: the saved {_saved_outcome(doc, at=False)} "
                   f"no longer happens with the current models")
    sys.exit(status)


def _same_as_saved(doc, verdict, out, steps):
    """Whether the replay ended as the trace says its schedule ends."""
    if doc.get("verdict", "violation") == "error":
        return (verdict == "error" and out.error["exception"] == doc["error"]["exception"]
                and len(out.error["schedule"]) == steps)
    return verdict == "violation" and out.violation.invariant == doc["invariant"]


def _saved_outcome(doc, at=True):
    where = f" at step {len(doc['steps'])}" if at else ""
    if doc.get("verdict", "violation") == "error":
        return f"the model raising {doc['error']['exception']}{where}"
    return f"a violation of {doc['invariant']}{where}"


def _replayed_outcome(out, verdict, schedule):
    if verdict == "error":
        return f"the model raising {out.error['exception']} at step {len(out.error['schedule'])}"
    if verdict == "violation":
        return f"a violation of {out.violation.invariant} at step {len(schedule)}"
    left = [t.name for t in out.execution.unfinished()] if out.execution is not None else []
    return (f"nothing broken in the {len(schedule)} steps of its schedule"
            + (f" (threads {', '.join(left)} unfinished)" if left else ""))


def _edited_note(doc):
    """How the schedule differs from the trace's steps, if it does."""
    saved = [s["thread"] for s in doc["steps"]]
    schedule = doc["schedule"]
    if saved == schedule:
        return ""
    if schedule == saved[:len(schedule)]:
        return (f"; the schedule stops {len(saved) - len(schedule)} steps short of the trace's "
                f"{len(saved)} steps")
    if saved == schedule[:len(saved)]:
        return f"; the schedule runs {len(schedule) - len(saved)} steps past the trace's {len(saved)} steps"
    n = next(k for k, (a, b) in enumerate(zip(saved, schedule)) if a != b) + 1
    return f"; the schedule and the trace's steps differ from step {n} on"


@main.command()
@click.argument("trace_file", metavar="TRACE", type=click.Path(dir_okay=False))
@click.option("--color/--no-color", default=None,
              help="Colour (default: when writing to a terminal, unless NO_COLOR is set, or FORCE_COLOR).")
def show(trace_file, color):
    """Print a saved counterexample, one column per thread."""
    doc = load_trace_or_fail(trace_file)
    color = color_wanted(sys.stdout.isatty(), color)
    if doc.get("verdict") == "error":
        what = f"the model raised in thread {doc['error']['thread']}"
    else:
        what = f"violation of {doc['invariant']}"
    click.echo(f"{doc['scenario']['name']}: {what} "
               f"({plural(len(doc['steps']), 'step')}, "
               + (plural(doc["preemptions"], "preemption") if "preemptions" in doc else "? preemptions") + ")")
    if doc.get("fixes"):
        click.echo(f"fixes: {', '.join(doc['fixes'])}")
    if doc.get("params"):
        click.echo("values: " + ", ".join(f"{k} = {v}" for k, v in doc["params"].items()))
    click.echo("")
    click.echo(text.format_trace(doc, color), color=color)
    if doc.get("verdict") == "error" and doc["error"]["traceback"]:
        click.echo("")
        click.echo(doc["error"]["traceback"].rstrip())


@main.command()
@click.argument("trace_file", metavar="TRACE", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Where to write the page (default: TRACE with .html).")
def view(trace_file, output):
    """Write a saved counterexample as one self-contained HTML page."""
    from . import viewer

    doc = load_trace_or_fail(trace_file)
    out = Path(output) if output else Path(trace_file).with_suffix(".html")
    try:
        viewer.write(doc, out)
    except viewer.ViewerError as exc:
        fail(f"{trace_file}: {exc}")
    except OSError as exc:
        fail(f"{out}: cannot write the page: {exc.strerror}")
    click.echo(f"wrote {out}")
    click.echo(f"  open it in a browser (no network needed): {out.resolve().as_uri()}")


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Stem of the files to write: STEM.dot and STEM.graphml (default: traces/NAME.locks).")
@click.option("--reduction", type=click.Choice(REDUCTIONS), help="dpor (default) or none (every interleaving).")
@click.option("--max-executions", type=click.IntRange(min=1), help="Stop after this many executions (incomplete).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="Wall-clock limit in seconds.")
def lockgraph(scenario, output, reduction, max_executions, timeout):
    """Explore a scenario to its end and write its lock-class graph (DOT and
    GraphML), the edges of cycles marked; exit 1 if there is a cycle."""
    from .lockorder import cycle_edges, describe_edge, explore_lock_graph, write_lock_graph

    sc = load_or_fail(scenario)
    bounds = runner.bounds_with(sc.bounds, max_executions=max_executions, timeout=timeout)
    try:
        order, out = explore_lock_graph(sc.model, reduction or sc.reduction, bounds)
    except BadModel as exc:
        fail(f"{sc.path}: {exc}")
    if out.verdict == "error":
        click.echo(f"{sc.name}: ERROR: the model raised in thread {out.error['thread']}: {out.error['exception']}")
        sys.exit(4)
    graph, cycles = order.graph, order.cycles()
    click.echo(f"{sc.name}: {graph.number_of_nodes()} lock classes, {graph.number_of_edges()} edges "
               f"(A -> B: B taken while A held), over {out.stats.executions:,} executions")
    for cycle in cycles:
        click.echo("cycle: " + " -> ".join(cycle + cycle[:1]))
        for a, b in cycle_edges(cycle):
            click.echo("  " + describe_edge(a, b, graph.edges[a, b]["witness"], schedule=True))
    if not cycles:
        click.echo("no cycle" + (f" among the executions explored ({out.reason})" if out.reason else ""))
    try:
        dot, gml = write_lock_graph(graph, cycles, output or Path("traces") / f"{sc.name}.locks", sc.name)
    except OSError as exc:
        fail(f"{output}: cannot write the graph: {exc.strerror}")
    click.echo(f"wrote {dot} and {gml}")
    sys.exit(1 if cycles else 3 if out.reason else 0)


@main.command(name="suggest-fix")
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--depth", type=click.IntRange(1, 20), default=2, show_default=True,
              help="How deep below an operation a lock may go: 1 is the first kernel function it calls.")
@click.option("--max-size", type=click.IntRange(1, 4), default=3, show_default=True,
              help="The most functions one placement puts the lock around.")
@click.option("--max-candidates", type=click.IntRange(1), default=2000, show_default=True,
              help="Stop after trying this many placements.")
@click.option("--timeout", type=click.FloatRange(0, min_open=True), default=300.0, show_default=True,
              help="Stop trying placements after this many seconds.")
@click.option("--out-dir", type=click.Path(file_okay=False), default="suggested", show_default=True,
              help="Where to write each proven placement as a scenario file.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def suggest_fix(scenario, depth, max_size, max_candidates, timeout, out_dir, as_json):
    """Search lock placements that make a violating scenario clean, with no
    deadlock and no lock-order cycle, each proven by a complete search.
    Exit 0 when some are found, 1 when none is, 3 when the budget ran out
    before any was."""
    from . import suggest

    sc = load_or_fail(scenario)
    if sc.space is not None:
        fail(f"{scenario}: suggest-fix takes a scenario with one value per argument, not ranges or sets")
    shown = Progress(sys.stderr.isatty() and not as_json)
    started = time.monotonic()

    def progress(n, total, cand):
        if shown.enabled and time.monotonic() - started > 1:
            click.echo(f"\r  placement {n + 1} of {total} ", err=True, nl=False)
            shown.shown = True
    try:
        result = suggest.suggest(sc, depth=depth, timeout=timeout, max_candidates=max_candidates,
                                 max_size=max_size, progress=progress)
    except BadModel as exc:
        fail(f"{scenario}: {exc}")
    shown.done()
    if result.original.verdict != "violation":
        fail(f"{scenario}: suggest-fix needs a scenario that violates; this one is "
             f"{result.original.verdict} ({result.original.as_json()['message'] or 'no counterexample'})",
             3 if result.original.verdict == "incomplete" else 2)
    files = suggest.write_scenarios(result, out_dir)
    if as_json:
        click.echo(json.dumps(text.suggestions_json(result, files)))
    else:
        click.echo(text.suggestions(result))
    sys.exit(result.exit_status)


LISTS = ("operations", "filesystems", "functions", "fixes", "invariants")


@main.command(name="list")
@click.argument("what", required=False, type=click.Choice(LISTS))
def list_(what):
    """The operations, get_block flavours (filesystems), kernel functions,
    fixes and invariants available; WHAT lists one of them."""
    from .models import catalogue

    sections = [what] if what else [w for w in LISTS if w != "functions"]
    for n, section in enumerate(sections):
        if n:
            click.echo("")
        {"operations": _list_operations, "filesystems": _list_filesystems, "functions": _list_functions,
         "fixes": _list_fixes, "invariants": _list_invariants}[section](catalogue)
    if not what:
        click.echo(f"\nkernel functions: {len(catalogue.FUNCTIONS)} (racecheck list functions shows them, "
                   f"with what each calls and which locks it takes: what edits can name)")


def _list_operations(catalogue):
    click.echo("operations:")
    for name, op in sorted(catalogue.OPERATIONS.items()):
        params = ", ".join(p.name + ("" if p.required else "?") for p in op.params)
        click.echo(f"  {name:16} {op.description} ({params})")


def _list_filesystems(catalogue):
    click.echo("filesystems (get_block flavours):")
    for name, (_, desc) in sorted(catalogue.FLAVOURS.items()):
        click.echo(f"  {name:16} {desc}")


def _list_functions(catalogue):
    click.echo("kernel functions (the names edits use: add_lock around them, drop their calls and locks, "
               "replace them):")
    for row in catalogue.function_rows():
        click.echo(f"  {row['name']}  {row['file']}, {row['version']}"
                   + ("" if row["steps"] else "  (runs within its caller's step)"))
        if row["calls"] or row["pointers"]:
            calls = ", ".join(row["calls"])
            if row["pointers"]:
                calls += ("; " if calls else "") + "through pointers: " + ", ".join(row["pointers"])
            click.echo(f"      calls: {calls}")
        for release, file, version in row["releases"]:
            click.echo(f"      kernel: {release}  {file}, {version}")
        if row["locks"]:
            click.echo("      locks: " + ", ".join(lock if where == row["name"] else f"{lock} (in {where})"
                                               for lock, where in row["locks"].items()))


def _list_fixes(catalogue):
    click.echo("fixes:")
    for name, desc in sorted(catalogue.FIXES.items()):
        click.echo(f"  {name:34} {desc}")
        if name in catalogue.PRESETS:
            click.echo(f"  {'':34} edits: {json.dumps(catalogue.PRESETS[name])}")


def _list_invariants(catalogue):
    click.echo("invariants:")
    for name, cls in sorted(inv.library().items()):
        click.echo(f"  {name:24} {cls.description}")


# -- racecheck schema ------------------------------------------------------------------------


@main.command("schema")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="Write the schema to this file instead of printing it.")
@click.option("--path", "show_path", is_flag=True, help="Print where the package keeps its copy of the schema.")
@click.option("--stamp", is_flag=True, help="Put the line that names the package's schema, by a path relative to "
                                            "each file, at the top of the scenario FILES.")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False))
def schema_command(output, show_path, stamp, files):
    """The JSON schema (draft 2020-12) of scenario files, for an editor: it
    completes keys and names, shows what each means, and marks mistakes
    (docs/scenarios.md, "In an editor")."""
    from . import schema

    if show_path:
        click.echo(schema.SCHEMA_FILE)
        return
    if files and not stamp:
        fail("FILES go with --stamp: racecheck schema --stamp FILE...")
    if stamp:
        for file in files:
            try:
                changed = schema.stamp(file)
            except (OSError, UnicodeDecodeError) as exc:
                fail(f"{file}: cannot stamp it: {exc}")
            click.echo(f"{file}: {'stamped' if changed else 'already names the schema'}")
        return
    text = schema.schema_text()
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)


if __name__ == "__main__":  # pragma: no cover
    main()
