"""``racecheck check``: every scenario under some paths, run and compared
with its ``expect``.

Each scenario file gives one :class:`Result`, plain data that a worker
process can send back (``--jobs``) and that every output is made from: the
rows for people, ``--json``, JUnit, SARIF and GitHub annotations
(racecheck/ciformats.py). A file that does not load is its own result (a bad
file), and the run goes on. Ctrl-C stops the whole run: the scenario it
interrupted and those not started are skipped, never failed.

Exit status (:func:`exit_status`): 2 when a file did not load, else 1 when a
scenario did not match its expect (or its model raised), else 3 when the run
was interrupted, else 0.
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
import traceback
from dataclasses import dataclass
from multiprocessing import connection
from pathlib import Path

import click

from . import report as text
from . import runner
from . import trace as tracefile
from .cluster import ClusterError
from .execution import BadModel
from .fingerprint import FingerprintError
from .scenario import ScenarioError, load
from .search import Stop, kind_of
from .strategies import StrategyError

PASSED, FAILED, ERROR, SKIPPED, BAD_FILE = "passed", "failed", "error", "skipped", "bad_file"


@dataclass
class Options:
    reduction: str | None = None
    timeout: float | None = None  # seconds, per scenario
    cluster: str | None = None  # a Dask scheduler's address (racecheck/cluster.py)


@dataclass
class Result:
    path: str
    name: str  # the scenario's name; the file's stem when it did not load or did not run
    status: str  # PASSED, FAILED, ERROR, SKIPPED or BAD_FILE
    expected: str = ""  # "violation (invariant)", "clean", ...
    got: str = ""
    line: int | None = None  # the expect line, or the line of a bad file's error
    key: str | None = None  # a bad file's key in error
    message: str = ""  # one line: why it did not pass
    detail: str = ""  # the counterexample as text, the traceback, or why the search stopped
    executions: int = 0
    elapsed_s: float = 0.0
    interrupted: bool = False  # Ctrl-C stopped it: the run stops here
    invariant: str | None = None  # of the violation found
    schedule: str = ""  # the counterexample's schedule in runs of thread names
    json: dict | None = None  # rep.as_json() without the trace, for --json
    trace: dict | None = None  # the counterexample of a scenario that did not pass, to save
    trace_path: str | None = None  # where --traces-dir saved it

    @property
    def ok(self):
        return self.status == PASSED


def matches(expect, rep):
    """Whether report ``rep`` is what ``expect`` (a scenario's) says."""
    if rep.verdict != expect["verdict"]:
        return False
    if expect["verdict"] == "violation":
        return rep.outcome.violation.invariant == expect["invariant"]
    return True


def find_scenarios(paths):
    """The scenario files under ``paths``: each directory's ``*.yaml`` in
    sorted order, each file as given."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(p.rglob("*.yaml")))
        else:
            out.append(p)
    return out


def _verdict_text(verdict, invariant):
    return verdict + (f" ({invariant})" if invariant else "")


def run_one(path, options, progress=None):
    """Load, run and compare one scenario file: its :class:`Result`."""
    try:
        return _run_one(path, options, progress)
    except ClusterError:  # no scenario can run: the command says so and stops
        raise
    except Exception as exc:  # noqa: BLE001 - racecheck's own failure: this scenario's error, the run goes on
        return Result(str(path), Path(path).stem, ERROR, got="error",
                      message=f"{path}: racecheck raised {type(exc).__name__}: {exc}", detail=traceback.format_exc())


def _run_one(path, options, progress):
    try:
        sc = load(path)
    except ScenarioError as exc:
        return Result(str(path), Path(path).stem, BAD_FILE, line=exc.line, key=exc.key, message=str(exc))
    if sc.expect is None:
        return Result(str(path), sc.name, BAD_FILE, key="expect",
                      message=f"{path}: expect: missing: check compares each scenario with its expect "
                              f"(add expect: {{verdict: clean}} or run it with racecheck run)")
    expected = _verdict_text(sc.expect["verdict"], sc.expect["invariant"])
    try:
        rep = runner.check(sc, options.reduction, runner.bounds_with(sc.bounds, timeout=options.timeout),
                           progress=progress, save_trace=False, cluster=options.cluster)
    except (BadModel, FingerprintError, StrategyError) as exc:
        return Result(str(path), sc.name, ERROR, expected=expected, got="error", line=sc.expect_line,
                      message=f"{path}: {exc}", detail=str(exc))
    return from_report(sc, rep, expected)


def from_report(sc, rep, expected):
    """The :class:`Result` of scenario ``sc`` whose run gave report ``rep``."""
    o, v = rep.outcome, rep.outcome.violation
    got = _verdict_text(rep.verdict, v.invariant if v else None)
    interrupted = kind_of(o.reason) == Stop.interrupted
    if rep.verdict == "incomplete" and interrupted:
        status = SKIPPED
    elif matches(sc.expect, rep):
        status = PASSED
    else:
        status = ERROR if rep.verdict == "error" else FAILED
    out = rep.as_json()
    out.update(ok=status == PASSED, status=status, trace=None)
    res = Result(str(sc.path), sc.name, status, expected=expected, got=got, line=sc.expect_line,
                 executions=o.stats.executions, elapsed_s=o.stats.elapsed_s, interrupted=interrupted,
                 invariant=v.invariant if v else None, json=out)
    if status == PASSED:
        return res
    res.message, res.detail = _why(rep, status, expected, got)
    if rep.verdict == "error":
        res.schedule = text.schedule_runs(rep.error_schedule())
    elif rep.trace is not None:
        res.schedule = text.schedule_runs(rep.trace["schedule"])
    if status != SKIPPED:
        res.trace = rep.trace
    return res


def _why(rep, status, expected, got):
    """The one-line message and the detail of a result that did not pass."""
    o = rep.outcome
    if status == SKIPPED:
        return (f"interrupted after {o.stats.executions:,} executions ({o.stats.elapsed_s:.1f} s)",
                "Ctrl-C stopped the run before the search was complete")
    message = f"expected {expected}, got {got}"
    if rep.verdict == "error":
        e = o.error
        message += f": the model raised in thread {e['thread']}: {e['exception']}"
        return message, e["traceback"].rstrip()
    if o.violation is not None:
        message += f": {o.violation.message}"
        detail = text.format_trace(rep.trace) if rep.trace is not None else o.violation.message
        return message, detail
    if rep.verdict == "incomplete":
        message += f": {o.reason}"
    return message, o.reason or f"the search explored {o.stats.executions:,} executions and found nothing"


def not_run(path, started=False):
    """The result of a file whose run Ctrl-C stopped before it had one
    (``started``) or before it began."""
    why = "interrupted while it ran" if started else "not started: the run was interrupted"
    return Result(str(path), Path(path).stem, SKIPPED, got="(interrupted)" if started else "(not started)",
                  message=why, detail=why, interrupted=True)


def run_serial(files, options, progress, emit):
    """Run ``files`` one after the other; ``emit`` each result as it comes.
    Ctrl-C ends the run: the rest are skipped."""
    results = []
    try:
        for i, path in enumerate(files):
            progress.start(f"[{i + 1}/{len(files)}] {Path(path).stem}")
            try:
                res = run_one(path, options, progress)
            except KeyboardInterrupt:  # outside the search (loading, minimising): the same stop
                res = not_run(path, started=True)
            progress.done()
            results.append(res)
            emit(res)
            if res.interrupted:
                break
    except KeyboardInterrupt:  # between two scenarios
        progress.done()
    for path in files[len(results):]:
        results.append(not_run(path))
        emit(results[-1])
    return results


def run_parallel(files, options, jobs, progress, emit):
    """Run ``files`` ``jobs`` at a time, each in a process of its own
    (forked: it inherits what is loaded); ``emit`` the results in file
    order, each as soon as those before it are in. Ctrl-C ends every
    process: what had not finished is skipped."""
    ctx = multiprocessing.get_context("fork")
    running = {}  # index -> (process, the end of its pipe we read)
    done = {}
    nxt = started = 0
    try:
        while nxt < len(files):
            while started < len(files) and len(running) < jobs:
                reader, writer = ctx.Pipe(duplex=False)
                sys.stdout.flush()  # or the child would write again what is in the buffer
                sys.stderr.flush()
                proc = ctx.Process(target=_child, args=(writer, files[started], options), daemon=True)
                proc.start()
                writer.close()  # ours: the child has its own copy
                running[started] = (proc, reader)
                started += 1
            _collect(running, done, files)
            while nxt in done:
                emit(done[nxt])
                nxt += 1
            progress.show(f"{nxt} of {len(files)} done; running " + ", ".join(
                Path(files[i]).stem for i in sorted(running)))
    except KeyboardInterrupt:
        pass
    finally:
        for proc, reader in running.values():
            proc.terminate()
        for proc, reader in running.values():
            proc.join(5)
            reader.close()
        progress.done()
    results = [done.get(i) or not_run(files[i], started=i < started) for i in range(len(files))]
    for res in results[nxt:]:
        emit(res)
    return results


def _collect(running, done, files, wait=1.0):
    """Take the results of the processes that have ended, within ``wait``
    seconds; a process that died without one is that scenario's error."""
    readers = {reader: i for i, (_, reader) in running.items()}
    for reader in connection.wait(list(readers), timeout=wait):
        i = readers[reader]
        proc, _ = running.pop(i)
        try:
            done[i] = reader.recv()
        except EOFError:
            proc.join(5)
            why = f"the process running it died (exit status {proc.exitcode}) before it had a result"
            done[i] = Result(str(files[i]), Path(files[i]).stem, ERROR, got="error", message=f"{files[i]}: {why}",
                             detail=why)
        reader.close()
        proc.join(5)


def _child(writer, path, options):
    """A --jobs process: one scenario's result to ``writer``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the children
    try:
        res = run_one(path, options)
    except BaseException as exc:  # noqa: BLE001 - any failure is this scenario's, and the parent waits for it
        res = Result(str(path), Path(path).stem, ERROR, got="error", message=f"{path}: {type(exc).__name__}: {exc}",
                     detail=traceback.format_exc())
    writer.send(res)
    writer.close()


def exit_status(results):
    """2 a file did not load, 1 a scenario did not match, 3 interrupted, 0 all as expected."""
    statuses = {r.status for r in results}
    if BAD_FILE in statuses:
        return 2
    if statuses & {FAILED, ERROR}:
        return 1
    if any(r.interrupted for r in results):
        return 3
    return 0


def save_trace(res, directory, used):
    """Save the trace of ``res`` when it did not pass and has one, as
    ``directory``/NAME.json (NAME-2.json, ... for a name in ``used``, the
    names taken so far); set its ``trace_path``."""
    if res.trace is None or res.ok:
        return
    stem, n = res.name, 1
    while stem in used:
        n += 1
        stem = f"{res.name}-{n}"
    used.add(stem)
    path = Path(directory) / f"{stem}.json"
    try:
        res.trace_path = str(tracefile.save(res.trace, path))
    except OSError as exc:  # the run goes on; the row says why there is no trace
        res.message += f" (its trace could not be saved as {path}: {exc.strerror})"


# -- for people ----------------------------------------------------------------------

HEADER = f"{'scenario':40} {'expected':36} {'got':36} {'executions':>10} {'time':>7}"

MARKS = {PASSED: ("", None), FAILED: ("MISMATCH", "red"), ERROR: ("ERROR", "magenta"),
         SKIPPED: ("SKIPPED", "yellow"), BAD_FILE: ("BAD FILE", "red")}


def row(res, color=False):
    """The lines that show ``res`` in the table: its row, then why it did
    not pass and where its trace is."""
    word, fg = MARKS[res.status]
    mark = "  " + (click.style(word, fg=fg, bold=True) if color else word) if word else ""
    if res.status == BAD_FILE:
        return [f"{res.name:40} {'-':36} {'(the file does not load)':36} {'':>10} {'':>7}{mark}",
                f"  {res.message}"]
    if res.status == SKIPPED and not res.expected:  # never ran
        return [f"{res.name:40} {'-':36} {res.got:36} {'':>10} {'':>7}{mark}"]
    lines = [f"{res.name:40} {res.expected:36} {res.got:36} {res.executions:>10,} {res.elapsed_s:>6.2f}s{mark}"]
    if not res.ok:
        lines.append(f"  {res.message}")
    if res.trace_path:
        lines.append(f"  trace: {res.trace_path}   (racecheck view {res.trace_path})")
    return lines


def summary(results):
    """The line after the table."""
    bad = [r for r in results if r.status in (FAILED, ERROR)]
    files = [r for r in results if r.status == BAD_FILE]
    skipped = [r for r in results if r.status == SKIPPED]
    ran = [r for r in results if r.status != BAD_FILE]
    line = f"{sum(r.ok for r in results)} of {len(ran)} scenarios as expected"
    if bad:
        line += f"; mismatched: {', '.join(r.name for r in bad)}"
    if skipped:
        line += f"; interrupted: {len(skipped)} skipped"
    if files:
        line += f"; {len(files)} file{'s' if len(files) > 1 else ''} did not load: " + \
            ", ".join(r.path for r in files)
    return line


def result_json(res):
    """One --json line's object."""
    if res.json is not None:
        return dict(res.json, trace_file=res.trace_path)
    return {"scenario": res.name if res.status != BAD_FILE else None, "path": res.path, "status": res.status,
            "ok": False, "verdict": None, "message": res.message, "line": res.line, "key": res.key}
