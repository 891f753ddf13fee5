"""Text for people: verdict lines, statistics, and a counterexample laid out
one column per thread."""

from __future__ import annotations

import re
import textwrap

import click

COLUMN = 36


def _style(text, color, **kw):
    return click.style(text, **kw) if color else text


def stats_line(stats, reduction):
    blocked = f" (+{stats['blocked']} cut short as redundant)" if stats.get("blocked") else ""
    return (f"{stats['executions']} executions{blocked}, {stats['steps']} steps, "
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


def _value(v):
    if isinstance(v, list):
        return "(" + ", ".join(_value(x) for x in v) + ")"
    return "-" if v is None else str(v)


def change_text(changes, threads):
    parts = []
    for name, old, new in compress_changes([tuple(c) for c in changes]):
        text = f"{name}: {_value(old)} -> {_value(new)}"
        parts.append(re.sub(r"thread (\d+)", lambda m: threads[int(m.group(1))]
                            if int(m.group(1)) < len(threads) else m.group(0), text))
    return parts


def format_trace(doc, color=False, width=COLUMN):
    """The counterexample of a trace document, one column per thread."""
    threads = doc["threads"]
    lines = []
    head = "  #  " + "".join(t[:width - 1].ljust(width) for t in threads) + "state changed"
    lines.append(_style(head, color, bold=True))
    last_op = {}
    for step in doc["steps"]:
        col = threads.index(step["thread"])
        pad = " " * (width * col)
        cells = []
        if last_op.get(step["thread"]) != step["op"] and step["op"]:
            cells.append(_style(f"[{step['op']}]", color, fg="cyan"))
            last_op[step["thread"]] = step["op"]
        label = step["label"] or ""
        cells.extend(textwrap.wrap(label, width - 2) or [""])
        where = _short_line(step["line"])
        changes = change_text(step["changes"], threads)
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
            num = f"{step['step']:>3}  " if r == 0 else "     "
            change = changes[r] if r < len(changes) else ""
            lines.append((num + body + change).rstrip())
    lines.append("")
    lines.append(_style(f"{doc['invariant']}: ", color, fg="red", bold=True) + doc["message"])
    return "\n".join(lines)


def _short_line(where):
    if not where:
        return ""
    path, _, line = where.rpartition(":")
    return f"{path.rsplit('/', 1)[-1]}:{line}"
