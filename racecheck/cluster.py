"""dfs on a Dask cluster: the work units of parallel.py past one machine.

``racecheck run --cluster tcp://HOST:8786`` splits the search as ``--jobs``
does (parallel.split) and sends each unit to the cluster as one task; the
outcomes are taken in unit order (parallel.InOrder), so the verdict and the
counterexample are those of ``--jobs N`` on one machine. Dask (the
``racecheck[dask]`` extra) is imported here only.

The model reaches the workers as its scenario file's path, not as a pickled
model: a model holds generator functions and closures built when the file is
loaded, and a worker loads the file itself (once per worker process). So the
workers must see the same files at the same path (a shared filesystem, or
the same checkout everywhere), with racecheck installed: a worker whose file
differs from the coordinator's (a digest of its bytes travels with each
task) refuses the unit. Tests pass any picklable function that builds the
model instead (:func:`explore`'s ``load``).

A worker that dies loses nothing: the scheduler runs its units again on
another worker (Dask's ``allowed-failures``, 3 by default, after which the
unit is lost and the run says ``incomplete``), and a unit that raised is
retried (``retries``). Ctrl-C and the time limit cancel what is left and
report what was explored, ``incomplete``.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from .search import Bounds, Reason, Stop

RETRIES = 2  # a unit that raised (a file that could not be read) runs again this many times
GRACE_S = 5.0  # past the time limit, how long units have to stop by themselves
CONNECT_S = 10  # seconds to reach the scheduler and to see a first worker
POLL_S = 0.5  # how often a running unit asks whether the run was stopped


class ClusterError(Exception):
    """The cluster cannot run the search (said in words for the user)."""


@dataclass(frozen=True)
class ScenarioModel:
    """What a worker calls to build the model: the scenario file at ``path``,
    which must be the coordinator's (``digest``: SHA-256 of its bytes)."""

    path: str
    digest: str

    def __call__(self):
        from .scenario import load  # the front: only on a worker, where the file is loaded
        data = Path(self.path).read_bytes()
        if hashlib.sha256(data).hexdigest() != self.digest:
            import socket
            raise ClusterError(f"{self.path} on {socket.gethostname()} is not the file racecheck was "
                               f"started with: the workers must see the same scenario files")
        return load(self.path).model


def scenario_model(path):
    """The loader of the scenario file at ``path``, for the workers."""
    path = Path(path).resolve()
    return ScenarioModel(str(path), hashlib.sha256(path.read_bytes()).hexdigest())


_MODELS = {}  # in a worker process: the pickled loader -> the model it built


def _run(load, unit, reduction, bounds, deadline, stop):
    """One unit's outcome, on a worker; it ends early, incomplete, once the
    Dask event named ``stop`` is set."""
    import cloudpickle
    key = cloudpickle.dumps(load)
    if key not in _MODELS:
        _MODELS[key] = load()
    from . import parallel  # (here, not at the top: a plain run imports ClusterError alone)
    return parallel.explore_unit(_MODELS[key], unit, reduction, bounds, deadline, _stopped(stop))


def _stopped(name):
    """The explorer's should_stop for the event ``name``, asked of the
    scheduler at most every POLL_S seconds (a message each time)."""
    from dask.distributed import Event
    event, asked = Event(name), [time.monotonic()]

    def should_stop(search):
        now = time.monotonic()
        if now - asked[0] < POLL_S:
            return None
        asked[0] = now
        return Reason(Stop.interrupted, "the run was stopped") if event.is_set() else None
    return should_stop


def connect(address):
    """A Dask client of the scheduler at ``address`` with a worker at least."""
    try:
        from dask.distributed import Client
    except ImportError:
        raise ClusterError("--cluster needs Dask: pip install 'racecheck[dask]'") from None
    try:
        client = Client(address, timeout=f"{CONNECT_S}s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(f"--cluster {address}: no Dask scheduler answers there ({exc})") from None
    try:
        client.wait_for_workers(1, timeout=CONNECT_S)
    except TimeoutError:
        client.close()
        raise ClusterError(f"--cluster {address}: the scheduler has no worker "
                           f"(start some: dask worker {address})") from None
    return client


def explore(model, load, address=None, reduction="dpor", bounds=None, progress=None, client=None):
    """dfs over the Dask cluster at ``address`` (or ``client``): a
    :class:`parallel.Result`. ``model`` splits the search here; ``load()``,
    picklable, builds the same model on a worker."""
    from dask.distributed import Event

    from . import parallel

    bounds = bounds or Bounds()
    own = client is None
    client = connect(address) if own else client
    try:
        workers = len(client.scheduler_info()["workers"])
        found, pruned = parallel.split(model, reduction, bounds, parallel.wanted(workers))
        deadline = time.time() + bounds.timeout if bounds.timeout is not None else None
        taken = parallel.InOrder(len(found), bounds, progress, pruned)
        run = uuid.uuid4().hex
        stop = Event(f"racecheck-stop-{run}", client=client)
        futures = [client.submit(_run, load, u, reduction, bounds, deadline, stop.name, pure=False,
                                 retries=RETRIES, priority=-u.index, key=f"racecheck-unit-{run}-{u.index}")
                   for u in found]
        try:
            _collect(futures, taken, deadline)
        except KeyboardInterrupt:
            taken.stop(Reason.interrupted())
        finally:
            # Running tasks cannot be cancelled: the units still running see
            # the event and end; those not started are cancelled.
            stop.set()
            client.cancel(futures)
    finally:
        if own:
            client.close()
    return parallel.Result(taken.outcome(), len(found), parallel.depth_of(found), workers)


def _collect(futures, taken, deadline):
    """Take the units' outcomes as they come, until the search is decided,
    every unit is taken, or the time is up."""
    from dask.distributed import wait

    index = {f.key: u for u, f in enumerate(futures)}
    pending = set(futures)
    while pending and not taken.finished:
        if deadline is not None and time.time() > deadline + GRACE_S:
            taken.stop(Reason.time_limit(taken.bounds.timeout))
            return
        try:
            done, pending = wait(pending, timeout=1.0, return_when="FIRST_COMPLETED")
        except TimeoutError:
            continue
        for f in sorted(done, key=lambda f: index[f.key]):
            if f.status == "error":
                exc = f.exception()
                if type(exc).__name__ == "KilledWorker":  # died on every worker it was given to
                    taken.stop(Reason(Stop.interrupted, f"work unit {index[f.key]} was lost: {exc}"))
                    return
                if isinstance(exc, ClusterError):
                    raise exc
                raise ClusterError(f"work unit {index[f.key]} failed on the cluster: "
                                   f"{type(exc).__name__}: {exc}")
            if taken.put(index[f.key], f.result()):
                return
