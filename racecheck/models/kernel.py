"""The table of modelled kernel functions, and how calls between them go.

Each function of the library that mirrors a kernel function is registered
here under the kernel's name, with the kernel file and the release (or patch)
it mirrors: :func:`kernel_function`. The name a module defines is not the
function itself but a stub that looks the function up by name in the running
filesystem's table, ``fs.kernel``, at every call. So a scenario's ``edits``
(racecheck/models/edits.py) can hold a lock around a function, leave out a
call a function makes, or run the user's own version of a function wherever
the library calls it, without the library knowing.

Who called whom is read off the Python stack (the generator frames of a
thread chain through ``yield from``): the nearest frame whose code is a
registered function is the caller. Helpers that are not kernel functions are
transparent.

What each function calls and which locks it takes is read from its source
(:func:`calls_of`, :func:`locks_of`), so ``racecheck list functions`` and the
checks of ``drop`` cannot drift from the code.
"""

from __future__ import annotations

import ast
import builtins
import functools
import inspect
import re
import sys
import textwrap
from dataclasses import dataclass, field

from ..execution import GLUE

# The methods that take a lock (racecheck/rt/mutex.py, rwsem.py).
LOCK_METHODS = {"lock": "mutex", "down_read": "rwsem", "down_write": "rwsem"}


@dataclass
class KernelFunction:
    name: str
    fn: object  # the library's implementation
    file: str  # the kernel source file it mirrors: "fs/dax.c"
    version: str  # the release or patch it mirrors: "v4.0", "seed 002 patch 07"
    steps: bool  # a step generator; False: it runs inside its caller's step
    dropped: object = None  # what a call left out by ``drop`` returns
    module: str = ""
    stub: object = None  # what the module's name is: the call through ``fs.kernel``
    release: str | None = None  # the ``kernel:`` release it stands for (None: the seeds' code)


FUNCTIONS: dict[str, KernelFunction] = {}

# lock class -> "mutex", "rwsem" or "many" (one lock per page), as the
# library's code takes them (filled as sources are read: :func:`lock_kinds`).
LOCK_KINDS: dict[str, str] = {}

# Later releases of a function: name -> {release: KernelFunction}. A
# scenario's ``kernel:`` key picks, for each name, the newest release at or
# below the one it names (:func:`pick_releases`); without it, FUNCTIONS.
RELEASES: dict[str, dict[str, KernelFunction]] = {}

# code object -> the kernel function it implements (the library's, and the
# replacements scenarios bring: racecheck/models/edits.py registers those).
CODES: dict = {}


def kernel_function(file, version, dropped=None, name=None, release=None):
    """Decorator: register a model function as the kernel function it mirrors
    (``name``: the kernel's, if the Python name differs), and return the stub
    that calls it through ``fs.kernel``. ``dropped``: what the call returns
    when a scenario's ``drop`` leaves it out (the kernel's success value).
    ``release`` (``"4.3"``): the function as that kernel release has it, which
    a scenario's ``kernel:`` key picks; a function no earlier model has is
    also the default."""
    def register(fn):
        kname = name or fn.__name__
        steps = inspect.isgeneratorfunction(fn)
        kf = KernelFunction(kname, fn, file, version, steps, dropped, fn.__module__, release=release)
        if release is None or kname not in FUNCTIONS:
            FUNCTIONS[kname] = kf
        if release is not None:
            RELEASES.setdefault(kname, {})[release] = kf
        CODES[fn.__code__] = kname
        if steps:
            def stub(fs, *args, **kwargs):
                return fs.kernel.call(kname, fs, args, kwargs)
        else:
            def stub(fs, *args, **kwargs):
                return fs.kernel.call_plain(kname, fs, args, kwargs)
        functools.update_wrapper(stub, fn)
        stub.kernel_name = kname
        kf.stub = stub
        if FUNCTIONS[kname].stub is None:
            FUNCTIONS[kname].stub = stub
        return stub
    return register


# How a release is written: 4, 4.3, v5.15, 4.9.1.
RELEASE = re.compile(r"[vV]?[0-9]+(\.[0-9]+){0,2}")


def release_key(release):
    """``"v4.3"``, ``"4.3"``, ``"5.15"`` -> ``(4, 3)``, for ordering; a string that
    is not a release raises ValueError."""
    text = str(release).strip()
    if not RELEASE.fullmatch(text):
        raise ValueError(f"not a kernel release: {release!r} (write it as 4.3 or v5.15)")
    return tuple(int(p) for p in text.lstrip("vV").split("."))


def pick_releases(release):
    """``{name: KernelFunction}``: for each function with later releases, the
    newest at or below ``release`` (none below it: the seeds' model)."""
    want = release_key(release)
    out = {}
    for name, by_release in RELEASES.items():
        fitting = [(release_key(r), kf) for r, kf in by_release.items() if release_key(r) <= want]
        if fitting:
            out[name] = max(fitting, key=lambda x: x[0])[1]
    return out


def stack_functions(frame):
    """The kernel functions running at ``frame`` and below it, innermost first."""
    out = []
    codes = CODES
    while frame is not None:
        name = codes.get(frame.f_code)
        if name is not None:
            out.append(name)
        frame = frame.f_back
    return out


def caller(frame):
    """The innermost kernel function at ``frame`` or below it (None: an operation's own code)."""
    codes = CODES
    while frame is not None:
        name = codes.get(frame.f_code)
        if name is not None:
            return name
        frame = frame.f_back
    return None


@dataclass
class KernelTable:
    """What each kernel function name runs, for one scenario: the library's
    functions with a scenario's edits applied. Plain data (names, functions,
    frozensets), shared by every execution of the scenario."""

    impl: dict = field(default_factory=dict)  # function -> its replacement (replace edits)
    around: dict = field(default_factory=dict)  # function -> ((lock, shared), ...) taken around each call
    drop_calls: dict = field(default_factory=dict)  # callee -> frozenset of the callers it is left out of

    def call(self, name, fs, args, kwargs):
        if name in self.drop_calls and caller(sys._getframe(2)) in self.drop_calls[name]:
            return _left_out(name, FUNCTIONS[name].dropped)
        fn = self.impl.get(name) or FUNCTIONS[name].fn
        gen = fn(fs, *args, **kwargs)
        takes = self.around.get(name)
        if takes:
            return _holding(fs, name, takes, gen)
        return gen

    def call_plain(self, name, fs, args, kwargs):
        if name in self.drop_calls and caller(sys._getframe(2)) in self.drop_calls[name]:
            return FUNCTIONS[name].dropped
        return (self.impl.get(name) or FUNCTIONS[name].fn)(fs, *args, **kwargs)


LIBRARY = KernelTable()  # the library as it is: no edits


def _left_out(name, value):
    """A call that ``drop`` removed: no step, the kernel's success value."""
    return value
    yield  # a generator all the same


# (kind, shared) -> the lock's method that takes it, the one that lets it go
_ACQUIRE = {("mutex", False): ("lock", "unlock"), ("rwsem", True): ("down_read", "up_read"),
            ("rwsem", False): ("down_write", "up_write")}


def _holding(fs, name, takes, gen):
    """``gen`` (a call of ``name``) with the locks an ``add_lock`` edit puts
    around it: each taken in order in a step of its own before the function
    runs, released in reverse order with the function's last step."""
    for lock, shared in takes:
        obj = fs.lock_object(lock)
        take = _ACQUIRE[obj.kind, shared][0]
        verb = "mutex_lock" if take == "lock" else take
        yield getattr(obj, take)(f"{verb}({lock}) [edits: around {name}]")
    result = yield from gen
    for lock, shared in reversed(takes):
        obj = fs.lock_object(lock)
        getattr(obj, _ACQUIRE[obj.kind, shared][1])()
    return result


GLUE.add(_holding.__code__)


# -- what the source says: calls and locks -------------------------------------------------


@functools.lru_cache(maxsize=None)
def _source_facts(fn):
    """``(direct calls, indirect call names, locks, plain helpers called,
    kernel functions passed as arguments)`` of ``fn``'s own body."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return (), (), (), (), ()
    globs = getattr(fn, "__globals__", {})
    calls, indirect, locks, helpers, passed = [], [], [], [], []
    stepped = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.YieldFrom)}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        for arg in list(node.args) + [k.value for k in node.keywords]:
            if isinstance(arg, ast.Name) and getattr(globs.get(arg.id), "kernel_name", None):
                _add(passed, globs[arg.id].kernel_name)
        f = node.func
        if isinstance(f, ast.Attribute) and f.attr in LOCK_METHODS:
            many = isinstance(f.value, ast.Subscript)  # fs.page_lock[index]: one lock per page
            owner = f.value.value if many else f.value
            if isinstance(owner, ast.Attribute):
                _add(locks, owner.attr)
                LOCK_KINDS[owner.attr] = "many" if many else LOCK_METHODS[f.attr]
            continue
        if not isinstance(f, ast.Name):
            if isinstance(f, ast.Call) and id(node) in stepped:  # fault_handler(fs, handler)(...)
                _add(indirect, ast.unparse(f.func))
            continue
        target = globs.get(f.id)
        kname = getattr(target, "kernel_name", None)
        if kname is not None:
            _add(calls, kname)
        elif inspect.isfunction(target) and target is not fn and _is_model_code(target):
            _add(helpers, target)
        elif target is None and not hasattr(builtins, f.id) and id(node) in stepped:
            _add(indirect, f.id)  # a parameter or local: a function pointer (get_block, direct_IO)
    return tuple(calls), tuple(indirect), tuple(locks), tuple(helpers), tuple(passed)


def _add(seq, item):
    if item not in seq:
        seq.append(item)


def _is_model_code(fn):
    module = getattr(fn, "__module__", "") or ""
    return module.startswith("racecheck.models") or module.startswith("racecheck_user")


def _own(fn):
    """``(calls, indirect, locks)`` of ``fn`` with the helpers it calls
    folded in (helpers are not kernel functions: what they do, it does)."""
    calls, indirect, locks = [], [], []
    seen, todo = set(), [fn]
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        c, i, lk, helpers, _ = _source_facts(f)
        for seq, items in ((calls, c), (indirect, i), (locks, lk)):
            for item in items:
                _add(seq, item)
        todo.extend(helpers)
    return calls, indirect, locks


def calls_of(name, table=None):
    """The kernel functions ``name`` calls by name (through its helpers)."""
    return _own(_impl(name, table))[0]


def pointer_calls_of(name, table=None):
    """The function pointers ``name`` calls through (``get_block``, ...)."""
    return _own(_impl(name, table))[1]


def locks_of(name, table=None):
    """The lock classes ``name``'s own body (and its helpers) takes."""
    return _own(_impl(name, table))[2]


def all_locks_of(name, table=None):
    """``{lock class: the function that takes it}`` for ``name`` and every
    kernel function it calls, directly or further down (pointers not followed)."""
    out, seen, todo = {}, set(), [name]
    while todo:
        n = todo.pop(0)
        if n in seen or n not in FUNCTIONS:
            continue
        seen.add(n)
        for lock in locks_of(n, table):
            out.setdefault(lock, n)
        todo.extend(calls_of(n, table))
    return out


def _impl(name, table):
    return (table or LIBRARY).impl.get(name) or FUNCTIONS[name].fn


def pointer_targets():
    """Kernel functions the library passes around as function pointers (the
    get_block flavours, ->direct_IO, end_io): a function that calls through
    a pointer may call any of them."""
    out = {name for f in FUNCTIONS.values() for name in _source_facts(f.fn)[4]}
    for module in {sys.modules[f.module] for f in FUNCTIONS.values() if f.module in sys.modules}:
        for value in vars(module).values():  # tables of handlers: HANDLERS, DAX_FAULT
            if isinstance(value, dict):
                out.update(v.kernel_name for v in value.values() if getattr(v, "kernel_name", None))
    return out


def lock_kinds():
    """``{lock class: kind}`` of every lock the library's functions take."""
    for name in FUNCTIONS:
        locks_of(name)
    return dict(LOCK_KINDS)
