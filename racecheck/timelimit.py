"""A wall-clock limit that also stops a step that never yields.

Searches check their time limit between executions; a model step that loops
without yielding never returns to that check. :func:`time_limit` arms a
SIGALRM timer that raises :class:`TimeLimit` wherever the program is, model
code included. It is a BaseException, as KeyboardInterrupt is, so that the
``except Exception`` that turns a model's own errors into ModelFailure lets
it through to the search, which then reports ``incomplete``.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

# How long after the limit the alarm fires: the searches' own checks
# between executions come first and stop more tidily.
GRACE_S = 0.25


class TimeLimit(BaseException):
    """The wall-clock limit passed while a step was running."""


def _raise(signum, frame):
    raise TimeLimit()


@contextmanager
def time_limit(seconds):
    """Raise :class:`TimeLimit` in the main thread ``seconds`` (plus a grace)
    from now; nothing when ``seconds`` is None, off the main thread, or
    where there is no SIGALRM."""
    if (seconds is None or not hasattr(signal, "setitimer")
            or threading.current_thread() is not threading.main_thread()):
        yield
        return
    previous = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds + GRACE_S)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
