"""What a long command shows while it works, on standard error, and whether
its output is in colour.

Progress is for a terminal only: a line rewritten in place (``\\r``), never
wider than the terminal, that a CI log (not a terminal) never sees. Colour
follows the command's own option when it has one, then ``NO_COLOR`` and
``FORCE_COLOR`` (no-color.org, force-color.org: set and not empty), then
whether the output is a terminal.
"""

from __future__ import annotations

import os
import shutil
import sys

import click


def color_wanted(is_terminal, option=None):
    """Whether to write colour: ``option`` (--color/--no-color) when given,
    else no when NO_COLOR is set, yes when FORCE_COLOR is, else
    ``is_terminal``."""
    if option is not None:
        return option
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return bool(is_terminal)


def width():
    """Columns of the terminal standard error writes to (80 when unknown)."""
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return shutil.get_terminal_size().columns


class Progress:
    """Executions (or bfs's states), rate, depth and time on standard error,
    for a terminal only, once a search has lasted a second; with the time
    left when the bounds have a timeout, or the share done of
    max_executions. ``label`` goes in front (check: which scenario of how
    many)."""

    def __init__(self, enabled, bounds=None, label=""):
        self.enabled = enabled
        self.bounds = bounds
        self.label = label
        self.last = 0.0
        self.shown = False

    def start(self, label, bounds=None):
        """A new search: its label and bounds, shown at once."""
        self.label, self.bounds, self.last = label, bounds, 0.0
        self.show("")

    def __call__(self, stats, depth, elapsed):
        if not self.enabled or elapsed < 1.0 or elapsed - self.last < 0.25:
            return
        self.last = elapsed
        states = getattr(stats, "distinct_states", None)  # bfs counts states
        count, what = (stats.executions, "executions") if states is None else (states, "states")
        rate = count / elapsed if elapsed else 0
        self.show(f"{count:,} {what}, {rate:,.0f}/s, depth {depth}, {elapsed:.1f} s"
                  + self._left(stats.executions, elapsed))

    def _left(self, executions, elapsed):
        b = self.bounds
        if b is None:
            return ""
        if b.timeout is not None:
            left = max(b.timeout - elapsed, 0)
            return f" ({left:.0f} s left of {b.timeout:g})" if left >= 10 else f" ({left:.1f} s left of {b.timeout:g})"
        if b.max_executions:
            return f" ({100 * executions / b.max_executions:.0f} % of {b.max_executions:,} executions)"
        return ""

    def show(self, text):
        """``text`` after the label, as the line, cut to the terminal's width."""
        if not self.enabled:
            return
        line = f"{self.label}: {text}" if self.label and text else self.label or text
        cols = max(width() - 1, 10)  # the last column would wrap on some terminals
        if len(line) > cols:
            line = line[:cols - 3] + "..."
        click.echo("\r" + line.ljust(cols), err=True, nl=False)
        self.shown = True

    def done(self):
        """Clear the line, so that what is printed next starts on a clean one."""
        if self.shown:
            click.echo("\r" + " " * max(width() - 1, 10) + "\r", err=True, nl=False)
            self.shown = False
