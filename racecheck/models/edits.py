"""A scenario's ``edits``: locking designs as data.

::

    edits:
      add_lock:
        - lock: i_mmap_sem              # a lock class: a new one, or one the models already take
          kind: rwsem                   # mutex | rwsem
          shared: [do_dax_fault]        # taken for read around each call of these (rwsem only)
          exclusive: [ext4_setattr]     # taken for write (or the mutex) around these
      drop:
        - {in: ext4_setattr, call: inode_dio_wait}   # that call, wherever that function makes it
        - {in: do_dax_fault, lock: i_mmap_mutex}     # that lock class's acquisitions while it runs
      replace:
        - {function: do_dax_fault, with: ./my_dax.py:do_dax_fault}

:class:`Edits` is the checked form; :meth:`Edits.install` applies it to a
fresh filesystem (racecheck/models/kernel.py dispatches the calls). A named
fix that is a placement of a lock, wait or call is a preset of edits
(``registry.PRESETS``), merged with the scenario's own.

What ``drop: {in: F, lock: L}`` means: every acquisition of a lock of class
``L`` made while ``F`` runs (in ``F`` or in anything it calls) is left out,
with the release that matches it; the step that took it still runs, without
the lock. ``drop: {in: F, call: G}``: the calls of ``G`` whose nearest
calling kernel function is ``F`` are left out (no step; they return the
kernel's success value).
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..lockorder import lock_class
from ..model import did_you_mean
from ..rt.base import Primitive
from .kernel import (
    CODES,
    FUNCTIONS,
    RELEASES,
    KernelTable,
    all_locks_of,
    calls_of,
    lock_kinds,
    pick_releases,
    pointer_calls_of,
    pointer_targets,
    release_key,
    stack_functions,
)
from .registry import FLAVOURS, PRESETS

KINDS = ("mutex", "rwsem")

# The keys of ``edits`` and of each of its entries, with what each says
# (racecheck/schema.py shows the text in an editor).
EDIT_KEYS = {
    "add_lock": "Locks to hold around kernel functions: a new lock class, or one the models already take.",
    "drop": "Calls or lock acquisitions to leave out of a kernel function.",
    "replace": "Kernel functions to run as your own copy (FILE.py:NAME) or as another kernel function.",
}
ADD_LOCK_KEYS = {
    "lock": "The lock class: a new name, or one the models take (i_mutex, i_mmap_mutex, ...).",
    "kind": "mutex or rwsem (required for a new lock class).",
    "shared": "Kernel functions around each call of which the rwsem is taken for read.",
    "exclusive": "Kernel functions around each call of which the lock is taken for write (or the mutex).",
}
DROP_KEYS = {
    "in": "The kernel function the drop applies to.",
    "call": "A kernel function it calls: the call is left out (it returns the kernel's success value).",
    "lock": "A lock class it (or what it calls) takes: the acquisitions are left out, with their releases.",
}
REPLACE_KEYS = {
    "function": "The kernel function to replace, wherever the library calls it.",
    "with": "FILE.py:NAME (a file relative to the scenario) or the name of another kernel function.",
}
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


class EditError(Exception):
    """An edit that cannot apply: ``line`` and ``key`` say where it is."""

    def __init__(self, line, key, message):
        super().__init__(message)
        self.line = line
        self.key = key
        self.message = message


@dataclass(frozen=True)
class AddLock:
    lock: str
    kind: str
    shared: tuple = ()
    exclusive: tuple = ()


@dataclass(frozen=True)
class Drop:
    function: str  # in
    call: str | None = None
    lock: str | None = None


@dataclass(frozen=True)
class Replace:
    function: str
    path: str  # the user's file, as resolved
    name: str  # the function's name in it
    fn: object = field(compare=False, default=None, repr=False)


@dataclass
class Edits:
    add_lock: list = field(default_factory=list)
    drop: list = field(default_factory=list)
    replace: list = field(default_factory=list)
    # the releases a scenario's ``kernel:`` key picks: name -> KernelFunction
    releases: dict = field(default_factory=dict)

    def __bool__(self):
        return bool(self.add_lock or self.drop or self.replace)

    def merged(self, other):
        return Edits(self.add_lock + other.add_lock, self.drop + other.drop, self.replace + other.replace,
                     {**self.releases, **other.releases})

    def table(self):
        """The kernel table these edits make (on the releases picked)."""
        t = KernelTable()
        for name, kf in self.releases.items():
            t.impl[name] = kf.fn
        for r in self.replace:
            t.impl[r.function] = r.fn
        around = {}
        for a in self.add_lock:
            for fn in a.shared:
                around.setdefault(fn, []).append((a.lock, True))
            for fn in a.exclusive:
                around.setdefault(fn, []).append((a.lock, False))
        t.around = {k: tuple(v) for k, v in around.items()}
        drops = {}
        for d in self.drop:
            if d.call is not None:
                drops.setdefault(d.call, set()).add(d.function)
        t.drop_calls = {k: frozenset(v) for k, v in drops.items()}
        return t

    def dropped_locks(self):
        """lock class -> frozenset of the functions it is dropped in."""
        out = {}
        for d in self.drop:
            if d.lock is not None:
                out.setdefault(d.lock, set()).add(d.function)
        return {k: frozenset(v) for k, v in out.items()}

    def source_files(self):
        return sorted({r.path for r in self.replace if r.path})

    def as_data(self):
        """The YAML shape (for traces, ``list fixes`` and suggest-fix's files)."""
        out = {}
        if self.add_lock:
            out["add_lock"] = [{"lock": a.lock, "kind": a.kind,
                                **({"shared": list(a.shared)} if a.shared else {}),
                                **({"exclusive": list(a.exclusive)} if a.exclusive else {})}
                               for a in self.add_lock]
        if self.drop:
            out["drop"] = [{"in": d.function, **({"call": d.call} if d.call else {"lock": d.lock})}
                           for d in self.drop]
        if self.replace:
            out["replace"] = [{"function": r.function, "with": f"{r.path}:{r.name}" if r.path else r.name}
                              for r in self.replace]
        return out

    # -- applying them to a fresh filesystem ----------------------------------------

    def install(self, fs, table):
        """Make ``fs`` run with these edits: its kernel table, the locks
        ``add_lock`` names (new ones made here), and the locks ``drop``
        leaves out wrapped so that they are not taken where they are dropped."""
        fs.kernel = table
        rt = fs.rt
        locks = {}
        for obj in rt.objects:
            if getattr(obj, "kind", None) in KINDS:
                locks.setdefault(obj.name, obj)
        added = {}
        for a in self.add_lock:
            if a.lock not in added:
                existing = locks.get(a.lock)
                added[a.lock] = existing if existing is not None else (
                    rt.mutex(a.lock) if a.kind == "mutex" else rt.rwsem(a.lock))
        fs.added_locks = added
        dropped = self.dropped_locks()
        if dropped:
            _wrap_dropped(fs, dropped)


def _wrap_dropped(fs, dropped):
    """Put a :class:`DroppedLock` in place of every lock of a dropped class
    that the filesystem's state holds (attributes, lists of locks, and the
    attributes of the plain objects it holds, such as its journal)."""
    def wrapped(value):
        if getattr(value, "kind", None) in KINDS and lock_class(value.name) in dropped:
            return DroppedLock(value, dropped[lock_class(value.name)], fs.rt.thread_local(f"dropped {value.name}"))
        return value

    holders = [fs] + [v for v in vars(fs).values()
                      if hasattr(v, "__dict__") and not isinstance(v, (Primitive, type)) and
                      type(v).__module__.startswith("racecheck.models")]
    for holder in holders:
        for attr, value in list(vars(holder).items()):
            if isinstance(value, list):
                value[:] = [wrapped(item) for item in value]
            elif (lock := wrapped(value)) is not value:
                setattr(holder, attr, lock)


class DroppedLock:
    """A lock whose acquisitions a ``drop`` edit leaves out while one of
    ``functions`` runs. Left out, ``lock()`` (``down_read``, ``down_write``)
    gives the step its label and no request: the step still runs, without
    the lock. The thread counts what it left out (a thread-local count: only
    it reads it), and a release of a lock it does not hold is the match of
    one of those. Everything else is the lock's own."""

    __slots__ = ("_lock", "_functions", "_skipped")

    def __init__(self, lock, functions, skipped):
        self._lock = lock
        self._functions = functions
        self._skipped = skipped

    def __getattr__(self, attr):
        return getattr(self._lock, attr)

    def _take(self, method, label):
        if self._functions.isdisjoint(stack_functions(sys._getframe(2))):
            return getattr(self._lock, method)(label)
        thread = self._lock.rt.thread
        self._skipped[thread] = self._skipped.get(thread, 0) + 1
        return f"{label or method + '(' + self._lock.name + ')'} [edits: dropped]"

    def _give(self, method, holds):
        thread = self._lock.rt.thread
        left = self._skipped.get(thread, 0)
        if left and not holds:
            self._skipped[thread] = left - 1
            return
        getattr(self._lock, method)()

    def lock(self, label=None):
        return self._take("lock", label)

    def down_read(self, label=None):
        return self._take("down_read", label)

    def down_write(self, label=None):
        return self._take("down_write", label)

    def unlock(self):
        self._give("unlock", self._lock.owner == self._lock.rt.thread)

    def up_read(self):
        self._give("up_read", self._lock.rt.thread in self._lock.readers)

    def up_write(self):
        self._give("up_write", self._lock.writer == self._lock.rt.thread)


# -- reading and checking them -------------------------------------------------------------


def read_edits(root, releases=None):
    """The ``edits`` of a scenario file (``root`` a scenario_file.Section),
    checked against the functions of the releases picked (``releases``, from
    :func:`read_kernel`). Raises the file's ScenarioError naming the line and key."""
    if not root.has("edits"):
        return Edits(releases=dict(releases or {}))
    sec = root.section("edits", EDIT_KEYS)
    try:
        return parse({k: _plain(sec.node(k)) for k in sec.items}, sec.path.parent, _lines(sec), releases)
    except EditError as exc:
        raise root.error_at(exc.line or sec.line_of("edits"), exc.key, exc.message) from None


def read_kernel(root):
    """The scenario's ``kernel:`` key: a release (``kernel: "4.3"``: every
    function as the newest model at or below it has it) or a mapping of
    functions to releases (``kernel: {do_dax_fault: "4.3"}``). Returns
    ``(as given, {name: KernelFunction})``; no key: the seeds' code."""
    if not root.has("kernel"):
        return None, {}
    value = _plain(root.node("kernel"))
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        try:
            release_key(value)
        except ValueError as exc:
            raise root.error("kernel", str(exc)) from None
        return str(value), pick_releases(value)
    if not isinstance(value, dict):
        raise root.error("kernel", f"must be a release (4.3) or a mapping of functions to releases, not {value!r}")
    out = {}
    for name, release in value.items():
        line = root.node("kernel").value[name][0]
        if name not in FUNCTIONS:
            raise root.error_at(line, f"kernel.{name}", f"unknown kernel function {name!r}"
                                + root.did_you_mean(name, FUNCTIONS))
        have = RELEASES.get(name, {})
        if str(release) not in have:
            known = ", ".join(sorted(have, key=release_key)) or "none but the seeds' model"
            raise root.error_at(line, f"kernel.{name}", f"{name} is not modelled at release {release!r} "
                                                        f"(modelled releases: {known})")
        out[name] = have[str(release)]
    return {k: str(v) for k, v in value.items()}, out


def _lines(sec):
    """``key path -> line`` for every node under ``edits``."""
    out = {}

    def walk(node, where, line):
        out[where] = line
        value = node.value
        if isinstance(value, dict):
            for k, (ln, child) in value.items():
                walk(child, f"{where}.{k}", ln)
        elif isinstance(value, list):
            for i, child in enumerate(value):
                walk(child, f"{where}[{i}]", child.line)
    for k in sec.items:
        walk(sec.node(k), f"edits.{k}", sec.line_of(k))
    return out


def _plain(node):
    """A scenario file's node (value and line) as plain values."""
    value = node.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, (_, v) in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def parse(data, base=Path("."), lines=None, releases=None):
    """Check ``data`` (the ``edits`` mapping as plain values) and return its
    :class:`Edits`. ``lines`` maps key paths (``edits.drop[0].in``) to lines;
    ``releases`` are the functions a ``kernel:`` key picked."""
    lines = lines or {}

    def err(where, message):
        line = lines.get(where)
        probe = where
        while line is None and ("." in probe or "[" in probe):
            probe = re.sub(r"(\.[^.\[]*|\[\d+\])$", "", probe)
            line = lines.get(probe)
        return EditError(line, where, message)

    if not isinstance(data, dict):
        raise err("edits", "must be a mapping with add_lock, drop and replace")
    out = Edits(releases=dict(releases or {}))
    for i, item in enumerate(_items(data, "replace", err)):
        out.replace.append(_replace(item, f"edits.replace[{i}]", base, err, out))
    table = out.table()
    for i, item in enumerate(_items(data, "add_lock", err)):
        out.add_lock.append(_add_lock(item, f"edits.add_lock[{i}]", err, out))
    for i, item in enumerate(_items(data, "drop", err)):
        out.drop.append(_drop(item, f"edits.drop[{i}]", err, table))
    return out


def _items(data, key, err):
    items = data.get(key, [])
    if not isinstance(items, list):
        raise err(f"edits.{key}", f"must be a list, not {items!r}")
    return items


def _keys(item, where, allowed, err):
    if not isinstance(item, dict):
        raise err(where, f"must be a mapping ({', '.join(allowed)}), not {item!r}")
    for k in item:
        if k not in allowed:
            raise err(f"{where}.{k}", "unknown key" + did_you_mean(k, allowed))


def _function(name, where, err, steps=None):
    if not isinstance(name, str):
        raise err(where, f"must be a kernel function's name (racecheck list functions), not {name!r}")
    if name not in FUNCTIONS:
        raise err(where, f"unknown kernel function {name!r}" + did_you_mean(name, FUNCTIONS)
                  + " (racecheck list functions shows them)")
    if steps and not FUNCTIONS[name].steps:
        raise err(where, f"{name} runs inside its caller's step (it never yields): a lock cannot be "
                         f"held around it; name a function that calls it")
    return name


def _add_lock(item, where, err, edits):
    _keys(item, where, ADD_LOCK_KEYS, err)
    lock = item.get("lock")
    if not isinstance(lock, str) or not NAME.match(lock):
        raise err(f"{where}.lock", f"must be a lock class name (letters, digits, _), not {lock!r}")
    existing = lock_kinds()
    kind = item.get("kind", existing.get(lock))
    if kind not in KINDS:
        raise err(f"{where}.kind", f"must be mutex or rwsem, not {kind!r}" if "kind" in item
                  else f"missing: {lock} is a new lock class, so say its kind (mutex or rwsem)")
    if existing.get(lock) == "many":
        raise err(f"{where}.lock", f"{lock} is one lock per page, not one lock: add_lock takes a class "
                                   f"with one lock (a new one, or i_mutex, i_mmap_mutex, ...)")
    if lock in existing and existing[lock] != kind:
        raise err(f"{where}.kind", f"{lock} is the models' own {existing[lock]}, not a {kind}")
    for other in edits.add_lock:
        if other.lock == lock:
            raise err(f"{where}.lock", f"{lock} is added twice: list all its functions in one entry")
    lists = {}
    for key in ("shared", "exclusive"):
        names = item.get(key, [])
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list):
            raise err(f"{where}.{key}", f"must be a list of kernel function names, not {names!r}")
        lists[key] = tuple(_function(n, f"{where}.{key}[{i}]", err, steps=True) for i, n in enumerate(names))
    if lists["shared"] and kind == "mutex":
        raise err(f"{where}.shared", "a mutex has no shared mode: use kind: rwsem, or exclusive")
    if not lists["shared"] and not lists["exclusive"]:
        raise err(where, f"names no function to take {lock} around (shared: [...] or exclusive: [...])")
    both = set(lists["shared"]) & set(lists["exclusive"])
    if both:
        raise err(f"{where}.exclusive", f"{', '.join(sorted(both))} is listed as shared and exclusive")
    return AddLock(lock, kind, lists["shared"], lists["exclusive"])


def _drop(item, where, err, table):
    _keys(item, where, DROP_KEYS, err)
    if "in" not in item:
        raise err(where, "missing key 'in': the kernel function the drop applies to")
    fn = _function(item["in"], f"{where}.in", err)
    if ("call" in item) == ("lock" in item):
        raise err(where, "give one of call (a call it makes) or lock (a lock class it takes)")
    if "call" in item:
        callee = _function(item["call"], f"{where}.call", err)
        calls = calls_of(fn, table)
        through_pointer = pointer_calls_of(fn, table) and callee in _pointer_targets()
        if callee not in calls and not through_pointer:
            raise err(f"{where}.call", f"{fn} does not call {callee}" + did_you_mean(callee, calls)
                      + (f" (it calls: {', '.join(calls)})" if calls else " (it calls no kernel function)"))
        return Drop(fn, call=callee)
    lock = item["lock"]
    taken = all_locks_of(fn, table)
    if not isinstance(lock, str) or lock not in taken:
        raise err(f"{where}.lock", f"{fn} takes no lock {lock!r}" + did_you_mean(str(lock), taken)
                  + (f" (it takes: {', '.join(taken)})" if taken else " (it takes none)"))
    return Drop(fn, lock=lock)


def _pointer_targets():
    return pointer_targets() | {getattr(fn, "kernel_name", None) for fn, _ in FLAVOURS.values()}


def _replace(item, where, base, err, edits):
    _keys(item, where, REPLACE_KEYS, err)
    fn = _function(item.get("function"), f"{where}.function", err)
    if any(r.function == fn for r in edits.replace):
        raise err(f"{where}.function", f"{fn} is replaced twice")
    spec = item.get("with")
    if isinstance(spec, str) and spec in FUNCTIONS:  # another kernel function of the library
        other = FUNCTIONS[spec]
        if spec == fn or other.steps != FUNCTIONS[fn].steps:
            raise err(f"{where}.with", f"{spec} cannot stand for {fn}" + (
                "" if spec != fn else ": it is the same function"))
        return Replace(fn, "", spec, other.stub)
    if not isinstance(spec, str) or ":" not in spec:
        raise err(f"{where}.with", f"must be FILE.py:NAME (a file relative to the scenario) or the name of "
                                   f"another kernel function, not {spec!r}")
    file, _, name = spec.rpartition(":")
    path = (base / file).resolve()
    if not file.endswith(".py") or not path.is_file():
        raise err(f"{where}.with", f"no Python file {path}" if file.endswith(".py")
                  else f"must name a .py file, not {file!r}")
    module = _load(path, f"{where}.with", err)
    new = getattr(module, name, None)
    if new is None:
        raise err(f"{where}.with", f"{path} defines no {name!r}"
                  + did_you_mean(name, [n for n in vars(module) if not n.startswith("_")]))
    new = getattr(new, "__wrapped__", new) if getattr(new, "kernel_name", None) else new
    if not inspect.isfunction(new):
        raise err(f"{where}.with", f"{name} in {path} is a {type(new).__name__}, not a function")
    if FUNCTIONS[fn].steps and not inspect.isgeneratorfunction(new):
        raise err(f"{where}.with", f"{name} in {path} must be a step generator (a function with yield), "
                                   f"as {fn} is")
    if not FUNCTIONS[fn].steps and inspect.isgeneratorfunction(new):
        raise err(f"{where}.with", f"{fn} runs inside its caller's step; {name} must not yield")
    CODES[new.__code__] = fn  # so that edits see it as the function it replaces
    return Replace(fn, str(path), name, new)


_MODULES: dict = {}


def _load(path, where, err):
    """Import the user's file once per run (a second scenario naming it gets the same module)."""
    key = (str(path), path.stat().st_mtime_ns)
    if key in _MODULES:
        return _MODULES[key]
    spec = importlib.util.spec_from_file_location(f"racecheck_user_edits_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        what = f"SystemExit({exc.code!r})" if isinstance(exc, SystemExit) else f"{type(exc).__name__}: {exc}"
        raise err(where, f"{path} raised {what} while being imported") from None
    _MODULES[key] = module
    return module


def preset(fixes):
    """The edits the named fixes stand for (those that are placements)."""
    out = Edits()
    for name in fixes:
        if name in PRESETS:
            out = out.merged(parse(PRESETS[name]))
    return out
