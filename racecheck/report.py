"""Text for people: verdict lines, statistics, and a counterexample laid out
one column per thread.

A counterexample reads top to bottom, one row per step in schedule order, in
the column of the thread that ran it: the operation when a new one begins, the
step's label, the model's source line. On the right, what the step changed
(``i_size``, extents, device units folded into runs, page-table entries,
locks) and the threads left waiting. The two steps of the racing pair are
marked ``*``; below the steps come the happens-before edges between threads,
the racing pair in words, and the invariant's message last.
"""

from __future__ import annotations

import re
import textwrap

import click

from .execution import runs as schedule_runs

COLUMN = 36


def _style(text, color, **kw):
    return click.style(text, **kw) if color else text


def stats_line(stats, reduction, strategy="dfs"):
    if "distinct_states" in stats:  # bfs: TLC's figures
        return (f"{stats['distinct_states']:,} distinct states, {stats['states_generated']:,} "
                f"generated ({stats['cached_steps']:,} from the cache), depth {stats['depth']}, "
                f"{stats['queue']:,} left on the queue, "
                f"{stats['elapsed_s']:.2f} s, strategy {strategy}")
    if "seed" in stats:  # random, pct
        d = f", bug depth {stats['bug_depth']}" if "bug_depth" in stats else ""
        n = stats["executions"]
        return (f"{n:,} execution{'' if n == 1 else 's'}, {stats['steps']:,} steps, longest "
                f"{stats['max_depth']:,}, {stats['elapsed_s']:.2f} s, strategy {strategy} "
                f"(seed {stats['seed']}{d})")
    blocked = f" (+{stats['blocked']:,} cut short as redundant)" if stats.get("blocked") else ""
    return (f"{stats['executions']:,} executions{blocked}, {stats['steps']:,} steps, "
            f"depth {stats['max_depth']}, {stats['elapsed_s']:.2f} s, reduction {reduction}")


def verdict_line(name, verdict, invariant=None, color=False):
    colors = {"clean": "green", "violation": "red", "incomplete": "yellow", "error": "magenta"}
    word = _style(verdict.upper(), color, fg=colors.get(verdict), bold=True)
    what = f" of {invariant}" if invariant else ""
    return f"{name}: {word}{what}"


def compress_changes(changes):
    """Fold runs of array elements that changed the same way: dev[0..7]: A -> B."""
    out = []
    for name, old, new in changes:
        m = re.fullmatch(r"(.*)\[(\d+)\]", name)
        if out and m:
            prev = out[-1]
            pm = re.fullmatch(r"(.*)\[(\d+)(?:\.\.(\d+))?\]", prev[0])
            if (pm and pm.group(1) == m.group(1) and prev[1] == old and prev[2] == new
                    and int(pm.group(3) or pm.group(2)) + 1 == int(m.group(2))):
                out[-1] = (f"{pm.group(1)}[{pm.group(2)}..{m.group(2)}]", old, new)
                continue
        out.append((name, old, new))
    return out


def _natural(name):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def object_name(name):
    """An object's name as people read it: a map's key set is ``pte.shared[*]``."""
    return name.replace("['*']", "[*]")


def compress_names(names):
    """Object names sorted naturally, runs of array elements folded: dev[8..15]."""
    out = []
    for name in sorted(set(names), key=_natural):
        m = re.fullmatch(r"(.*)\[(\d+)\]", name)
        if out and m:
            pm = re.fullmatch(r"(.*)\[(\d+)(?:\.\.(\d+))?\]", out[-1])
            if pm and pm.group(1) == m.group(1) and int(pm.group(3) or pm.group(2)) + 1 == int(m.group(2)):
                out[-1] = f"{pm.group(1)}[{pm.group(2)}..{m.group(2)}]"
                continue
        out.append(name)
    return [object_name(n) for n in out]


def _thread(tid, threads):
    return threads[tid] if isinstance(tid, int) and 0 <= tid < len(threads) else f"thread {tid}"


def lock_text(state, threads):
    """A lock's state as a trace shows it (``{"held_by": tid}``, ``{"readers":
    [...], "writer": tid}``) in words, threads by name: ``held by truncate``,
    ``read by fault, read``, ``-`` when free; None for a value that is no lock's."""
    if not isinstance(state, dict):
        return None
    if set(state) == {"held_by"}:
        tid = state["held_by"]
        return "-" if tid is None else f"held by {_thread(tid, threads)}"
    if set(state) == {"readers", "writer"} and isinstance(state["readers"], list):
        parts = []
        if state["readers"]:
            parts.append("read by " + ", ".join(_thread(t, threads) for t in state["readers"]))
        if state["writer"] is not None:
            parts.append(f"written by {_thread(state['writer'], threads)}")
        return "; ".join(parts) or "-"
    return None


def _value(v, threads=()):
    if isinstance(v, list):
        return "(" + ", ".join(_value(x, threads) for x in v) + ")"
    words = lock_text(v, threads)
    if words is not None:
        return words
    return "-" if v is None else str(v)


def thread_names(text, threads):
    """``thread N`` (and ``reader N``) in model values spelt with the thread's name."""
    return re.sub(r"(thread|reader) (\d+)", lambda m: (
        (m.group(1) + " " if m.group(1) == "reader" else "") + threads[int(m.group(2))]
        if int(m.group(2)) < len(threads) else m.group(0)), text)


def _block_of(name, geometry):
    """`` (block B)`` after a run of device units that is one whole block."""
    m = re.fullmatch(r"dev\[(\d+)(?:\.\.(\d+))?\]", name)
    if not m or not geometry:
        return ""
    upb = geometry["units_per_block"]
    first, last = int(m.group(1)), int(m.group(2) or m.group(1))
    if first // upb == last // upb:
        whole = first % upb == 0 and last - first + 1 == upb
        return f" (block {first // upb})" if whole else f" (block {first // upb} units {first % upb}..{last % upb})"
    return ""


def change_text(changes, threads, geometry=None):
    parts = []
    for name, old, new in compress_changes([tuple(c) for c in changes]):
        text = (f"{object_name(name)}{_block_of(name, geometry)}: {_value(old, threads)} -> "
                f"{_value(new, threads)}")
        parts.append(thread_names(text, threads))
    return parts


def wait_text(waiting, before=()):
    """The waits that begin at a step: ``fault waits for i_mutex (held by truncate)``."""
    seen = {(w["thread"], w["for"]) for w in before}
    out = []
    for w in waiting:
        if (w["thread"], w["for"]) in seen:
            continue
        held = f" (held by {', '.join(w['held_by'])})" if w.get("held_by") else ""
        out.append(f"{w['thread']} waits for {w['for']}{held}")
    return out


def _step_words(step):
    return f"step {step['step']} ({step['thread']}: {step['label']})"


def conflict_words(a, b):
    """How steps ``a`` (earlier) and ``b`` (later) conflict, in words."""
    ra, wa, rb, wb = set(a["reads"]), set(a["writes"]), set(b["reads"]), set(b["writes"])
    both = compress_names(wa & wb)
    read_then_write = compress_names((ra - wa) & wb)
    write_then_read = compress_names(wa & (rb - wb))
    parts = []
    if write_then_read:
        parts.append(f"writes {', '.join(write_then_read)}, which {_step_words(b)} then reads")
    if read_then_write:
        parts.append(f"reads {', '.join(read_then_write)}, which {_step_words(b)} then writes")
    if both:
        parts.append(f"writes {', '.join(both)}, which {_step_words(b)} then writes again")
    return f"{_step_words(a)} " + "; and ".join(parts) if parts else ""


def race_text(doc):
    """The racing pair in words, or why there is none; None for old traces."""
    if "race" not in doc:
        return None
    if not doc["race"]:
        return ("racing pair: none. Run the other way round, no single pair of conflicting steps "
                "of two threads avoids the violation (or the pair cannot be reversed: a lock, a "
                "step that enabled the other)")
    i, j = doc["race"]
    a, b = doc["steps"][i - 1], doc["steps"][j - 1]
    words = conflict_words(a, b) or f"step {i} and step {j} conflict"
    avoided = "the model raises nothing" if doc.get("verdict") == "error" else "no invariant breaks"
    return (f"racing pair: steps {i} and {j}. {words[0].upper()}{words[1:]}. "
            f"With step {j} run before step {i}, and the rest after, {avoided} "
            f"(schedule: {schedule_runs(doc.get('race_reversed_schedule') or [])}).")


def hb_text(doc):
    """The happens-before edges between threads, one phrase each."""
    edges = doc.get("happens_before")
    if not edges:
        return None
    parts = [f"{e['from']} -> {e['to']} ({', '.join(compress_names(e['objects']))})" for e in edges]
    return "happens-before between threads: " + "; ".join(parts)


def format_trace(doc, color=False, width=COLUMN):
    """The counterexample of a trace document, one column per thread."""
    threads = doc["threads"]
    race = set(doc.get("race") or ())
    geometry = doc.get("geometry")
    lines = []
    head = "  #  " + "".join(t[:width - 1].ljust(width) for t in threads) + "state changed"
    lines.append(_style(head, color, bold=True))
    last_op = {}
    waiting_before = []
    for step in doc["steps"]:
        col = threads.index(step["thread"])
        pad = " " * (width * col)
        cells = []
        if last_op.get(step["thread"]) != step["op"] and step["op"]:
            cells.append(_style(f"[{step['op']}]", color, fg="cyan"))
            last_op[step["thread"]] = step["op"]
        label = step["label"] or ""
        racing = step["step"] in race
        cells.extend(_style(c, racing and color, fg="magenta", bold=True)
                     for c in textwrap.wrap(label, width - 2) or [""])
        where = _short_line(step["line"])
        changes = change_text(step["changes"], threads, geometry)
        waiting = step.get("waiting") or []
        changes += [_style(w, color, fg="yellow") for w in wait_text(waiting, waiting_before)]
        waiting_before = waiting
        right_at = width * len(threads)
        rows = max(len(cells) + 1, len(changes))
        for r in range(rows):
            if r < len(cells):
                text = cells[r]
            elif r == len(cells):
                text = _style(where, color, dim=True)
            else:
                text = ""
            visible = len(click.unstyle(text))
            body = pad + text + " " * max(1, width - visible)
            body = body + " " * max(0, right_at - width * col - width)
            if r == 0:
                num = f"{step['step']:>3}" + (_style("*", color, fg="magenta", bold=True) if racing else " ") + " "
            else:
                num = "     "
            change = changes[r] if r < len(changes) else ""
            lines.append((num + body + change).rstrip())
    lines.append("")
    wrap = max(60, width * len(threads) + 30)
    for extra in (hb_text(doc), race_text(doc)):
        if extra:
            lines.extend(textwrap.wrap(extra, wrap, subsequent_indent="  "))
    if race:
        lines.append(_style("(* marks the racing pair)", color, dim=True))
    lines.append("")
    lines.append(_style(f"{outcome_head(doc)}: ", color, fg="red", bold=True) + doc["message"])
    return "\n".join(lines)


def outcome_head(doc):
    """What the last step of a trace broke: the invariant, or for a model that
    raised, ``the model raised in thread T``."""
    if doc.get("verdict") == "error":
        return f"the model raised in thread {doc['error']['thread']}"
    return doc["invariant"]


def _short_line(where):
    if not where:
        return ""
    path, _, line = where.rpartition(":")
    return f"{path.rsplit('/', 1)[-1]}:{line}"


# -- suggest-fix --------------------------------------------------------------------------------


def _schedule_words(schedule):
    """``fault x3, truncate x2, fault``: a schedule by runs of one thread."""
    out = []
    for name in schedule:
        if out and out[-1][0] == name:
            out[-1][1] += 1
        else:
            out.append([name, 1])
    return ", ".join(n if k == 1 else f"{n} x{k}" for n, k in out)


def suggestions(result, shown=10, near=5):
    """The text of ``racecheck suggest-fix``: what was searched, the proven
    placements ranked, the near-misses with what still breaks, and what the
    budget left untried."""
    orig = result.original.as_json()
    lines = [f"{result.scenario.name}: VIOLATION of {orig['invariant']} "
             f"({orig['executions']:,} executions)"]
    tried = len(result.tried)
    proven = result.proven
    sizes = sorted({t.candidate.size for t in result.tried}) or [0]
    lines.append(f"  {tried:,} lock placements tried (around 1-{sizes[-1]} functions, to depth {result.depth}), "
                 f"{len(proven):,} proven clean, {tried - len(proven):,} rejected, "
                 f"{result.not_reached:,} not reached, {result.elapsed:.1f} s")
    if result.stopped:
        lines.append(f"  stopped by {result.stopped}: {result.not_reached:,} placements were not tried")
    if proven:
        lines.append("")
        lines.append("proven clean, with no deadlock and no lock-order cycle (fewest functions first, "
                     "shared before exclusive):")
        for n, t in enumerate(proven[:shown], 1):
            lines.append(f"  {n}. {t.candidate.describe()}")
            if t.file is not None:
                lines.append(f"     {t.file}")
        if len(proven) > shown:
            lines.append(f"  ... and {len(proven) - shown} more (--json lists them all)")
    misses = [t for t in result.tried if t.verdict != "clean"]
    misses.sort(key=lambda t: (t.candidate.size, t.candidate.exclusive, t.invariant != orig["invariant"]))
    if misses:
        lines.append("")
        lines.append("rejected near-misses (each still has a counterexample):")
        for t in misses[:near]:
            what = f"{t.verdict}" + (f" of {t.invariant}" if t.invariant else "")
            lines.append(f"  - {t.candidate.describe()}")
            lines.append(f"    {what}: {t.message or ''}")
            if t.schedule:
                lines.append(f"    schedule: {_schedule_words(t.schedule)}")
    if not proven:
        lines.append("")
        lines.append("no placement of these closes the race: try --depth, --max-size, or a fix that is not "
                     "a lock placement (a wait, a recheck, zeroing: edits drop and replace)")
    return "\n".join(lines)


def suggestions_json(result, files):
    def row(t):
        c = t.candidate
        return {"lock": c.lock, "kind": c.kind, "new_lock": c.lock == "fix_lock",
                "shared": [f for f, s in c.placement if s], "exclusive": [f for f, s in c.placement if not s],
                "verdict": str(t.verdict), "invariant": t.invariant, "message": t.message,
                "schedule": t.schedule, "file": str(t.file) if t.file else None}
    orig = result.original.as_json()
    return {"scenario": result.scenario.name, "invariant": orig["invariant"], "depth": result.depth,
            "candidates": result.candidates, "tried": len(result.tried), "proven": [row(t) for t in result.proven],
            "rejected": [row(t) for t in result.tried if t.verdict != "clean"],
            "not_reached": result.not_reached, "stopped": result.stopped, "elapsed_s": round(result.elapsed, 3),
            "files": [str(f) for f in files]}
