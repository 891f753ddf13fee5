"""Fingerprints of a model state, for stateful search (``--strategy bfs``).

A state is everything that decides what the execution can do next and what
the invariants will say about it:

* the shared state: the value of every runtime object (``rt.objects``);
* the ghost history: the order in which operations began and returned, and
  what each returned (invariants such as ``no_lost_write`` compare them), and
  the locks each thread holds as lock_order's log has them;
* the contents of the plain objects the model state is built of (what a
  thread keeps for itself in a dict of the state, like ``journal_info``);
* each thread: finished or not, what it last yielded (its label, or the lock
  or ``wait_until`` request it waits on), and its generator stack: for every
  generator of the ``yield from`` chain, the instruction it is paused at
  (``f_lasti``), its local variables, and what its frame's value stack holds
  (the iterator of a ``for`` loop the ``yield`` is inside, the generator a
  ``yield from`` runs, an operand computed before the ``yield``): how many
  values that is at each yield comes from the bytecode, and they are read on
  CPython 3.11, 3.12 and 3.13 (see :func:`_frame_stack`). A thread's step
  count is not part of it: a thread that spins comes back to the same state.

Two states with the same fingerprint behave alike, so a search keeps one of
them. This is exact when every value a thread holds (in a local variable, or
inside one) is one of

* ``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``;
* tuples, lists, dicts, sets and frozensets of such values; dataclasses,
  named tuples, ``SimpleNamespace`` and enum members (by their fields);
* runtime objects (``rt.var`` ...), the model's state object and anything
  reachable from it (``fs``, ``fs.ptes``, ``fs.geo``): by which one it is,
  since their contents are the shared state;
* functions and lambdas (by their code and the values they close over),
  bound methods, lock and ``wait_until`` requests, generators (by their own
  frames), the built-in iterators (``range``, ``enumerate``, list, tuple and
  dict iterators: by their position);
* objects reachable from the model itself (a scenario's list of operations):
  the model must not change them while it runs, and they are fingerprinted
  once per search.

Anything else (an instance of a plain class, a ``random.Random``) raises
:class:`FingerprintError`, naming the thread, the function and the variable:
racecheck cannot see its state, so it cannot tell two of them apart. Cycles
(an I/O whose iocb points back at it) are allowed. So are refused, naming the
function and the line: a ``yield`` inside the operands of a method call
(``obj.m(a, (yield))``, whose stack CPython lays out in two ways), a thread
paused while it handles an exception, and, on a Python other than CPython
3.11 to 3.13, a ``yield`` with values beneath it on the stack other than a
``yield from``'s generator (a ``yield`` in a ``for`` loop, or in an expression).

The values whose equality or hashes coincide by construction (``True`` and
``1``, ``-1`` and ``-2``, ``1.0`` and ``1``, ``b"a"`` and ``"a"``, integers
beyond 2**61) are tagged apart, so that equal fingerprints mean equal values:
bfs interns the pieces of a state by their whole fingerprints, and its
visited set stores the 64-bit hash of the interned state (transitions.py;
TLC's fingerprints are 64-bit too). Two distinct states collide only by
chance: with probability about ``n**2 / 2**65`` among ``n`` states (1 in 37
million for a million states).
"""

from __future__ import annotations

import dataclasses
import dis
import enum
import gc
import sys
import types

from . import runtime as _runtime
from .runtime import Primitive, Request

_SIMPLE = frozenset((str, type(None)))
_BIG = 1 << 60


class FingerprintError(Exception):
    """A value a thread holds cannot be fingerprinted."""

    def __init__(self, what, where=None):
        super().__init__(what if where is None else f"{where}: {what}")
        self.what = what
        self.where = where

    def locate(self, thread, function, variable=None):
        self.where = f"thread {thread}, in {function}()"
        if variable is not None:
            self.where += f": {variable}"
        self.args = (f"{self.where} {self.what}",)


class _Tag:
    """A marker in a fingerprint: equal only to itself."""

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name

    def __reduce__(self):
        # Unpickled, a tag is the module's own (parallel bfs sends fingerprints between processes).
        return self.name


(LIST, DICT, SET, OBJ, STATE, RUNTIME, PART, GEN, DONE, FUNC, METHOD, CELL, EMPTY, REQ, DATA, NS,
 ENUM, ITER, TYPE, BUILTIN, RANGE, NAMED, BACK, TRUE, FALSE, INT, FLOAT, BYTES, KEY) = (
    _Tag(n) for n in ("LIST", "DICT", "SET", "OBJ", "STATE", "RUNTIME", "PART", "GEN", "DONE",
                      "FUNC", "METHOD", "CELL", "EMPTY", "REQ", "DATA", "NS", "ENUM", "ITER",
                      "TYPE", "BUILTIN", "RANGE", "NAMED", "BACK", "TRUE", "FALSE", "INT",
                      "FLOAT", "BYTES", "KEY"))


class Constants:
    """Fingerprints of what lives as long as the search: what the model
    object holds (a scenario's operations and their arguments) and what the
    globals of the model's modules hold (the operation registry), computed
    once. The model must not change them while it runs (it could not be
    replayed if it did)."""

    def __init__(self, model):
        self.owned = _reachable(model, {}, stop=())
        self.modules = set()  # ids of the globals dicts walked
        self.cache = {}

    def add_module(self, globals_):
        if id(globals_) not in self.modules:
            self.modules.add(id(globals_))
            self.owned.update(_reachable(globals_, {}, stop=()))


class Fingerprinter:
    """Fingerprints of the states of one execution (one per execution: it
    knows that execution's objects)."""

    def __init__(self, execution, constants=None):
        self.ex = execution
        self.rt = execution.rt
        self.objects = {id(o): i for i, o in enumerate(execution.rt.objects)}
        self.constants = constants
        self._parts = None  # id -> path of the fixed parts of the model state (lazily)
        self._threads = {}  # tid -> (steps, fingerprint): a thread changes only when it steps
        self._open = []  # ids of the values being fingerprinted (for cycles)
        # While one thread is fingerprinted (nothing runs meanwhile): id ->
        # (value, fingerprint) of the values met so far. The frames of a
        # ``yield from`` chain pass the same objects down (an iocb), each
        # fingerprinted once. The value is kept so that its id is not reused
        # meanwhile (a range iterator's __reduce__ makes a new range each time).
        self._memo = None
        self._backs = 0  # cycle references made so far (a value holding one is not memoised)

    # -- the whole state ------------------------------------------------------------

    def state(self, added=0):
        """The fingerprint, a nested tuple. ``added``: how many history
        entries the last step added, for models with ``on_return`` checks
        (what they check is the last step's, not the state's)."""
        ex = self.ex
        return (self.shared(), self.history(), tuple(self.thread(t) for t in ex.threads),
                added, self.held(), self.parts())

    def parts(self):
        """The contents of the plain objects the model state is built of
        (not runtime objects: their values are :meth:`shared`). Most never
        change (``fs.geo``); some hold what each thread keeps for itself
        outside its frames (``current->journal_info`` as a dict keyed by
        thread), which is as much the state as a local variable is."""
        state = self.ex.state
        if not hasattr(state, "__dict__"):
            return None
        try:
            return self._content(state, [])
        except FingerprintError as exc:
            if exc.where is None:
                exc.where = "the model's state object"
                exc.args = (f"{exc.where} {exc.what}",)
            raise

    def _content(self, obj, path):
        cls = type(obj)
        if cls is str or obj is None or cls is int or cls is bool:
            return self.value(obj)
        key = self.objects.get(id(obj))
        if key is not None:
            return (OBJ, key)
        if id(obj) in path:
            return (BACK, len(path) - path.index(id(obj)))
        if cls is dict:
            items = obj.items()
        elif isinstance(obj, Primitive) and hasattr(obj, "fingerprint_items"):
            items = obj.fingerprint_items()  # a thread-local map: what each thread keeps
        elif cls is list or cls is tuple:
            items = enumerate(obj)
        elif (cls not in _LEAVES and hasattr(obj, "__dict__") and obj is not self.rt
              and not isinstance(obj, (type, types.FunctionType, types.ModuleType))
              and not dataclasses.is_dataclass(cls)):
            items = sorted(vars(obj).items())
        else:
            return self.value(obj)
        path.append(id(obj))
        out = tuple([(k, self._content(v, path)) for k, v in items])
        path.pop()
        return (cls.__qualname__, out)

    def held(self):
        """The locks each thread holds as lock_order's ghost log has them
        (a journal handle has no runtime object): which edges a thread's next
        acquisition adds depends on them. Names only: the step numbers kept
        with them grow with every path."""
        held = getattr(self.rt, "held", None)
        if not held:
            return ()
        return tuple(sorted((tid, self.locks_held(tid)) for tid, locks in held.items() if locks))

    def locks_held(self, tid):
        """The names of the locks thread ``tid`` holds, in the order it took them."""
        return tuple(h[0] for h in self.rt.held.get(tid, ()))

    def shared(self):
        """The runtime objects' values."""
        return tuple([self.object(o) for o in self.rt.objects])

    def history(self):
        return tuple([self.entry(e) for e in self.rt.history])

    def entry(self, e):
        """One history entry: what it is, whose, and what an operation returned
        (not its clock: the order of the entries is what counts)."""
        return (e["kind"], e["thread"], e.get("seq"), e.get("op"), self.value(e.get("result")))

    def thread(self, t):
        cached = self._threads.get(t.tid)
        if cached is not None and cached[0] == t.steps:
            return cached[1]
        if t.finished:
            fp = (DONE,)
        else:
            try:
                pending = self.value(t.pending)
            except FingerprintError as exc:
                if exc.where is None:
                    exc.locate(t.name, "(its last yield)", "what it yielded")
                raise
            self._memo = {}
            try:
                fp = (pending, self.generator(t.gen, t.name))
            finally:
                self._memo = None
        self._threads[t.tid] = (t.steps, fp)
        return fp

    # -- shared objects -------------------------------------------------------------------

    def object(self, obj):
        """The value of one runtime object: what its own module says it is
        (``fingerprint_value``, racecheck/rt/)."""
        return obj.fingerprint_value(self.value)

    # -- thread stacks -------------------------------------------------------------------

    def generator(self, gen, thread):
        frame = gen.gi_frame
        if frame is None:  # ran to its end (or raised)
            return (DONE, id(gen.gi_code))
        code = gen.gi_code
        if self.constants is not None:
            self.constants.add_module(frame.f_globals)
        names = frame.f_locals  # (on 3.11 and 3.12 also makes the frame keep a locals dict)
        try:
            stack = _frame_stack(gen, frame, names)
        except FingerprintError as exc:
            if exc.where is None:
                exc.locate(thread, code.co_qualname)
            raise
        fp = [GEN, id(code), frame.f_lasti]
        value = self.value
        name = None
        try:
            # In the order of the code's slots: the dict's own order depends on
            # when it was first read (CPython adds a local bound since then at
            # its end). The values on the stack follow: how many there are is
            # fixed by the code and the offset, so the pairs before them are
            # the locals.
            for name in _slots_of(code)[0]:
                if name in names:
                    v = names[name]
                    fp.append(name)
                    fp.append(v if v.__class__ is str or v is None else value(v))
            name = None
            for v in stack:
                fp.append(value(v))
        except FingerprintError as exc:
            if exc.where is not None:
                raise
            what = name or (f"its frame's value stack at line {frame.f_lineno} (a for loop's "
                            f"iterator, or an operand computed before the yield)")
            exc.locate(thread, code.co_qualname, what)
            raise
        return tuple(fp)

    # -- values ---------------------------------------------------------------------------

    def value(self, v):
        """The fingerprint of one value (see the module docstring)."""
        cls = type(v)
        if cls is str or v is None:
            return v
        if cls is int:
            return v if -_BIG < v < _BIG and v != -1 else (INT, str(v))
        if cls is tuple:
            if _SIMPLE.issuperset(map(type, v)):
                return v
            return tuple([self.value(x) for x in v])
        if cls is bool:
            return TRUE if v else FALSE
        key = self.objects.get(id(v))
        if key is not None:
            return (OBJ, key)
        if v is self.ex.state:
            return (STATE,)
        const = self.constants
        if const is not None and id(v) in const.owned:
            fp = const.cache.get(id(v))
            if fp is None:
                fp = const.cache[id(v)] = self._guarded(v, cls)
            return fp
        return self._guarded(v, cls)

    def _guarded(self, v, cls):
        memo = self._memo
        if memo is not None:
            seen = memo.get(id(v))
            if seen is not None:
                return seen[1]
        open_ = self._open
        if id(v) in open_:
            # A cycle: name the enclosing value by how far up it is (which
            # depends on where it is met: not memoised).
            self._backs += 1
            return (BACK, len(open_) - open_.index(id(v)))
        open_.append(id(v))
        backs = self._backs
        try:
            fp = self._value(v, cls)
        finally:
            open_.pop()
        if memo is not None and self._backs == backs:
            memo[id(v)] = (v, fp)
        return fp

    def _value(self, v, cls):
        value = self.value
        if cls is list:
            if _SIMPLE.issuperset(map(type, v)):
                return (LIST, tuple(v))
            return (LIST, tuple([value(x) for x in v]))
        if cls is dict:
            return (DICT, tuple([(value(k), value(x)) for k, x in v.items()]))
        if cls is float:
            return (FLOAT, repr(v))
        if cls is bytes:
            return (BYTES, v)
        if v is self.rt:
            return (RUNTIME,)
        if cls in (set, frozenset):
            items = [value(x) for x in v]
            return (SET, tuple(sorted(items, key=repr)))
        if cls is types.GeneratorType:
            return self.generator(v, "(a generator it holds)")
        if isinstance(v, Request):
            return (REQ, cls.__qualname__, tuple([value(getattr(v, s)) for s in _slots(cls)]))
        if cls is types.FunctionType:
            cells = tuple([value(c) for c in (v.__closure__ or ())])
            return (FUNC, id(v.__code__), cells, value(v.__defaults__))
        if cls is types.CellType:
            try:
                return (CELL, value(v.cell_contents))
            except ValueError:
                return (CELL, EMPTY)
        if cls is types.MethodType:
            return (METHOD, value(v.__self__), value(v.__func__))
        if isinstance(v, enum.Enum):
            return (ENUM, cls.__module__, cls.__qualname__, v.name)
        if isinstance(v, tuple):  # a named tuple
            return (NAMED, cls.__module__, cls.__qualname__, tuple([value(x) for x in v]))
        names = _FIELDS.get(cls)
        if names is None and dataclasses.is_dataclass(cls):
            names = _FIELDS[cls] = (cls.__module__, cls.__qualname__,
                                    tuple(f.name for f in dataclasses.fields(cls)))
        if names is not None:
            return (DATA, names[0], names[1], tuple([value(getattr(v, n)) for n in names[2]]))
        if cls is types.SimpleNamespace:
            return (NS, tuple(sorted((k, value(x)) for k, x in vars(v).items())))
        if cls is range:
            return (RANGE, v.start, v.stop, v.step)
        if isinstance(v, type):
            return (TYPE, v.__module__, v.__qualname__)
        if cls is types.BuiltinFunctionType:
            return (BUILTIN, getattr(v.__self__, "__name__", None), v.__name__)
        if cls in _ITERATORS:
            return (ITER, cls.__name__, value(v.__reduce__()))
        path = self._part(v)
        if path is not None:
            return (PART, path)
        raise FingerprintError(
            f"holds a {cls.__module__}.{cls.__qualname__}, which racecheck cannot fingerprint "
            f"(its state is not visible to it). Keep what threads hold to numbers, strings, "
            f"tuples, lists, dicts, dataclasses and runtime objects (see racecheck/fingerprint.py), "
            f"or use --strategy dfs")

    def _part(self, v):
        """The path from the model's state object to ``v``, if it is one of the
        fixed parts the state is built from (``fs.geo``, ``fs.ptes``). What
        changes in them lives in runtime objects."""
        if self._parts is None:
            self._parts = _reachable(self.ex.state, self.objects, stop=(self.rt,))
        return self._parts.get(id(v))


_FIELDS = {}  # dataclass -> (module, qualname, field names)
_LEAVES = {frozenset, set, float, bytes, types.FunctionType, types.BuiltinFunctionType}


def _slots(cls):
    out = []
    for c in cls.__mro__:
        for s in getattr(c, "__slots__", ()):
            if s != "rt" and s not in out:
                out.append(s)
    return out


def _reachable(root, objects, stop):
    """id -> path of every container or plain object reachable from ``root``
    through attributes, items and values, not through runtime objects, nor
    functions, types and modules."""
    paths = {}
    stop_ids = {id(s) for s in stop}
    todo = [(root, ())]
    while todo:
        obj, path = todo.pop()
        i = id(obj)
        if type(obj) in (str, int, bool, float, bytes, type(None)) or i in objects or i in paths \
                or i in stop_ids:
            continue
        if isinstance(obj, (types.FunctionType, type, types.ModuleType, types.BuiltinFunctionType,
                            types.GeneratorType)):
            continue
        paths[i] = path
        if isinstance(obj, dict):
            items = obj.items()
        elif isinstance(obj, (list, tuple, set, frozenset)):
            items = enumerate(obj)
        elif hasattr(obj, "__dict__"):
            items = vars(obj).items()
        else:
            continue
        for k, x in items:
            todo.append((x, path + (k if type(k) in (str, int) else repr(k),)))
    paths.pop(id(root), None)
    return paths


_ITERATORS = frozenset(type(x) for x in (
    iter([]), iter(()), iter(range(1)), iter(range(1 << 70)), enumerate([]), zip(), iter({}),
    iter({}.values()), iter({}.items()), reversed([]), iter(set()), iter(""), map(len, [])))


_SLOTS = {}  # code -> (its local names in slot order, its cell and free variables, how many)


def _slots_of(code):
    out = _SLOTS.get(code)
    if out is None:
        varnames = code.co_varnames
        extra = tuple(c for c in code.co_cellvars if c not in varnames) + code.co_freevars
        shared = frozenset(code.co_cellvars) | frozenset(code.co_freevars)
        out = _SLOTS[code] = (varnames + extra, shared, len(shared))
    return out


# -- the value stack of a suspended generator ------------------------------------------------
#
# A generator paused at a ``yield`` may hold values on its frame's value stack:
# the iterator of each ``for`` loop the yield is inside, the generator a
# ``yield from`` runs, the operands of an expression computed before the yield
# (``f(a, (yield))`` holds ``f`` and ``a``), a ``with`` block's ``__exit__``.
# Python shows none of them but the ``yield from`` generator (``gi_yieldfrom``).
#
# What the stack holds at each yield is fixed by the bytecode: a dataflow over
# ``dis`` (stack effects, jumps, exception handlers) gives its depth and which
# of its slots hold the NULL that CPython pushes before a call's callable
# (PUSH_NULL, LOAD_GLOBAL's NULL bit). So at each yield racecheck knows how
# many values the stack holds: none at most yields, where nothing more is
# read; only the ``yield from`` generator, taken from ``gi_yieldfrom``;
# otherwise they are read through the garbage collector's view of the
# generator (``gc.get_referents``), which lists, for CPython 3.11 to 3.13, a
# fixed head (the code, name and qualname, the frame object, the locals dict,
# the function, the code: each version has its own), then the local slots that
# are set, then the stack without its NULLs, then the exception the generator
# handles, if any. Every piece is checked (the head by identity, each local
# slot against ``f_locals``, the count against the bytecode's), and anything
# unexpected refuses the model rather than guess.
#
# A slot whose NULL depends on the run (a method call's ``obj.m`` pushes a
# NULL or not, depending on what ``m`` is) would make two different stacks
# read alike: a yield inside the operands of such a call is refused by name
# and line.

_VERSION = sys.version_info[:2]
_VALUE, _NULL, _MAYBE = 0, 1, 2  # what a stack slot holds, to the dataflow
_NO_FALLTHROUGH = frozenset((
    "RETURN_VALUE", "RETURN_CONST", "RAISE_VARARGS", "RERAISE", "JUMP_FORWARD", "JUMP_BACKWARD",
    "JUMP_BACKWARD_NO_INTERRUPT", "JUMP_ABSOLUTE", "JUMP", "JUMP_NO_INTERRUPT", "INTERPRETER_EXIT"))
_CALLS = frozenset(("CALL", "CALL_FUNCTION_EX", "CALL_KW"))  # pop the callable's pair, push 1
_JUMPS = frozenset(dis.hasjrel) | frozenset(dis.hasjabs) | frozenset(getattr(dis, "hasjump", ()))
_YIELDS = {}  # code -> offset -> _Yield, or a str saying why it could not be worked out


class _Yield:
    """What a generator of one code object paused at one yield holds on its
    value stack: ``count`` values (NULLs left out), the last of them the
    ``yield from`` generator when ``sends``; ``maybe``: a slot may hold a NULL
    or not, depending on the run."""

    __slots__ = ("count", "maybe", "sends")

    def __init__(self, count, sends, maybe):
        self.count = count
        self.sends = sends
        self.maybe = maybe


class _Unknown(Exception):
    pass


def _yields_of(code):
    out = _YIELDS.get(code)
    if out is None:
        try:
            out = _stack_at_yields(code)
        except (_Unknown, ValueError, TypeError, IndexError) as exc:
            out = str(exc) or type(exc).__name__
        _YIELDS[code] = out
    return out


def _stack_at_yields(code):
    """offset -> :class:`_Yield`, for each offset ``f_lasti`` shows for a
    generator of ``code`` paused at a yield (the YIELD_VALUE, and the RESUME
    after it, where 3.13 points). A dataflow over the stack's slots, each a
    value, a NULL, or either."""
    instrs = list(dis.get_instructions(code))
    index = {ins.offset: i for i, ins in enumerate(instrs)}
    handlers = dis.Bytecode(code).exception_entries
    states = {}
    todo = []

    def reach(offset, stack):
        old = states.get(offset)
        if old == stack:
            return
        if old is not None:
            if len(old) != len(stack):
                raise _Unknown(f"the stack depth at offset {offset} differs between paths")
            stack = tuple(a if a == b else _MAYBE for a, b in zip(old, stack))
            if stack == old:
                return
        if offset not in index:
            raise _Unknown(f"a jump to offset {offset}, which is no instruction")
        states[offset] = stack
        todo.append(offset)

    reach(instrs[0].offset, ())
    while todo:
        offset = todo.pop()
        stack = states[offset]
        i = index[offset]
        ins = instrs[i]
        name = ins.opname
        for h in handlers:
            if h.start <= offset < h.end:
                if len(stack) < h.depth:
                    raise _Unknown(f"an exception handler deeper than the stack at offset {offset}")
                reach(h.target, stack[:h.depth] + (_VALUE,) * (1 + bool(h.lasti)))
        arg = ins.arg if ins.opcode >= dis.HAVE_ARGUMENT else None
        for jump in ((False, True) if ins.opcode in _JUMPS else (False,)):
            if not jump and (name in _NO_FALLTHROUGH or i + 1 == len(instrs)):
                continue
            if name == "RETURN_GENERATOR":
                effect = 1  # the value the first send() pushes (3.11, 3.12 count 0)
            else:
                effect = dis.stack_effect(ins.opcode, arg, jump=jump)
            depth = len(stack)
            after = depth + effect
            if after < 0:
                raise _Unknown(f"the stack runs below empty at offset {offset}")
            if name == "SWAP":
                out = list(stack)
                out[-1], out[-arg] = out[-arg], out[-1]
                out = tuple(out)
            elif name == "COPY":
                out = stack + (stack[-arg],)
            elif name in _CALLS:  # pops the callable, its NULL or self, the arguments
                out = stack[:after - 1] + (_VALUE,)
            elif name == "PUSH_NULL":
                out = stack + (_NULL,)
            elif name == "LOAD_GLOBAL" and arg & 1:
                out = stack + ((_NULL, _VALUE) if ins.argrepr.startswith("NULL") else (_VALUE, _NULL))
            elif name == "LOAD_METHOD" or (name == "LOAD_ATTR" and effect == 1) or (
                    name == "LOAD_SUPER_ATTR" and effect == -1):
                # 3.12's method bit (3.11's LOAD_ATTR has none): (method, self)
                # or (NULL, attribute), depending on what the attribute is
                out = stack[:after - 2] + (_MAYBE, _MAYBE)
            elif name == "LOAD_FAST_AND_CLEAR":
                out = stack + (_MAYBE,)
            else:
                keep = min(depth, after)
                out = stack[:keep] + (_VALUE,) * (after - keep)
            if len(out) != after:
                raise _Unknown(f"{name} at offset {offset}")
            reach(ins.argval if jump else instrs[i + 1].offset, out)
    table = {}
    for i, ins in enumerate(instrs):
        if ins.opname == "YIELD_VALUE" and ins.offset in states:
            below = states[ins.offset][:-1]  # the yielded value is popped when it pauses
            at = _Yield(len(below) - below.count(_NULL), i > 0 and instrs[i - 1].opname == "SEND",
                        _MAYBE in below)
            table[ins.offset] = at
            if i + 1 < len(instrs):
                table[instrs[i + 1].offset] = at
    return table


def _frame_stack(gen, frame, names):
    """The values on the value stack of ``gen``'s frame (``names``: its
    ``f_locals``), bottom first, NULLs left out: a tuple of as many values as
    the bytecode says are there at the yield it is paused at."""
    if not gen.gi_suspended:
        if gen.gi_running:
            raise FingerprintError("is running: racecheck fingerprints threads between steps only")
        return ()  # created, not started: an empty stack
    code = gen.gi_code
    table = _yields_of(code)
    at = table.get(frame.f_lasti) if type(table) is dict else None
    if at is None:
        why = table if type(table) is str else f"no yield at offset {frame.f_lasti}"
        raise FingerprintError(
            f"is paused at line {frame.f_lineno}, where racecheck cannot work out from the "
            f"bytecode what the frame's value stack holds ({why}); use --strategy dfs")
    if at.maybe:
        raise FingerprintError(
            f"is paused at line {frame.f_lineno} by a yield inside the operands of a method call "
            f"(obj.method(..., (yield ...))): what CPython keeps for that call on the frame's "
            f"value stack differs from run to run in a way racecheck cannot read. Assign the "
            f"yielded value to a variable first, or use --strategy dfs")
    if at.count == 0:
        return ()
    if at.count == 1 and at.sends:
        return (gen.gi_yieldfrom,)
    return _read_stack(gen, frame, names, code, at.count, frame.f_lineno)


def _read_stack(gen, frame, names, code, count, line):
    refs = gc.get_referents(gen)
    i = _head(gen, frame, names, code, refs)
    if i is not None:
        slots, shared, _ = _slots_of(code)
        for name in slots:
            if name in shared:  # a cell, set or not
                if i >= len(refs) or type(refs[i]) is not types.CellType or (
                        name in names and refs[i].cell_contents is not names[name]):
                    i = None
                    break
                i += 1
            elif name in names:
                if i >= len(refs) or refs[i] is not names[name]:
                    i = None
                    break
                i += 1
    if i is not None:
        stack, rest = refs[i:i + count], refs[i + count:]
        # After the stack: the exception the generator handles, if any
        # (None once it has handled one, on 3.11 and 3.12: no exception).
        if len(stack) == count and (not rest or len(rest) == 1 and rest[0] is None):
            return tuple(stack)
        if len(stack) == count and len(rest) == 1 and isinstance(rest[0], BaseException):
            raise FingerprintError(
                f"is paused at line {line} while it handles a {type(rest[0]).__qualname__} (in an "
                f"except or finally block), which racecheck cannot fingerprint; yield outside "
                f"the handler, or use --strategy dfs")
    raise FingerprintError(
        f"is paused at line {line} with {count} values on its frame's value stack (a for "
        f"loop's iterator, an operand computed before the yield), which racecheck cannot read "
        f"on this Python ({sys.implementation.name} {_VERSION[0]}.{_VERSION[1]}: it reads the "
        f"generator frames of CPython 3.11 to 3.13). Keep such yields out of expressions and "
        f"for loops, or use --strategy dfs")


def _head(gen, frame, names, code, refs):
    """Where the local slots start in ``gc.get_referents(gen)``, or None."""
    if _VERSION == (3, 11):
        head = (code, gen.__name__, gen.__qualname__, frame, names)
    elif _VERSION == (3, 12):
        head = (gen.__name__, gen.__qualname__, frame, names)
    elif _VERSION == (3, 13):
        head = (gen.__name__, gen.__qualname__, frame)
    else:
        return None
    n = len(head)
    if len(refs) < n + 2 or any(a is not b for a, b in zip(refs, head)):
        return None
    func = refs[n]
    if type(func) is not types.FunctionType or func.__code__ is not code or refs[n + 1] is not code:
        return None
    return n + 2


# -- the plain part of a model's state ------------------------------------------------------
#
# Shared state belongs in runtime objects, which record every access; a model
# that keeps some in a plain dict of its state (``st.table[k] = v``) is
# explored as if that dict did not exist, and dpor may call it clean. What
# follows lets an execution see such a change after a step: a digest of
# everything reachable from the model's state object through plain
# containers and attributes (runtime objects are named, not entered; their
# contents are recorded by the runtime), and the paths where two digests
# differ.

_RUNTIME_TYPES = (_runtime.Runtime, Primitive, Request)
_SKIPPED = (types.FunctionType, types.BuiltinFunctionType, types.MethodType, types.ModuleType,
            type, types.GeneratorType, types.CodeType, types.BuiltinMethodType)
_ITEMS, _ATTRS, _SETLIKE = "items", "attrs", "set"  # how a node's children are named


def plain_digest(state):
    """A digest of the plain part of ``state`` (what ``model.init(rt)``
    returned): every dict, list, tuple, set and plain object reachable from it
    through items and attributes, not through runtime objects (the
    primitives of racecheck/rt/, the ``Runtime``, requests: by identity,
    their values left to the runtime).
    Functions, methods, modules, classes and generators are named by their
    qualified name, not entered; enum members by their name. An immutable
    nested tuple, to compare with another digest of the same execution's
    state (it holds its runtime objects): two are equal exactly when the
    plain state holds equal values in the same shape (``True`` and ``1``,
    ``1.0`` and ``1`` told apart; a float NaN equals itself; a dict's order
    counts, as a model iterating it sees it); compare them with ``==``, and
    hand two that differ to :func:`plain_changes`. Cycles are allowed."""
    return _Plain().digest(state)


def plain_changes(before, after, root="state"):
    """The paths where two digests of :func:`plain_digest` differ, as Python
    expressions from ``root``: ``state.table['k']`` (a value set, added or
    removed there), ``state.log[3]``, ``state.mine`` (a value of another
    kind, or a dict's keys reordered). The deepest path that tells each
    change, in the order the state holds them; ``[]`` when they are equal."""
    out = []
    _diff(before, after, root, out)
    return out


# How plain_digest takes a value of each class (worked out once per class).
_LEAF, _RT_SELF, _RT_ID, _NAMED_ENUM, _NAMED_FUNC, _MAPPING, _SEQUENCE, _SETS, _OBJECT = range(9)
# (a value of a kind up to _RT_SELF is its own digest)
_KINDS = {str: _LEAF, int: _LEAF, type(None): _LEAF}
_PLAIN_KEYS = frozenset((str, int))


def _kind_of(cls):
    kind = _KINDS.get(cls)
    if kind is None:
        if issubclass(cls, _RUNTIME_TYPES):
            # By identity: the object itself where its class compares by
            # identity, else its id (a GhostMap compares as a dict).
            kind = _RT_SELF if cls.__eq__ is object.__eq__ else _RT_ID
        elif issubclass(cls, enum.Enum):
            kind = _NAMED_ENUM
        elif issubclass(cls, _SKIPPED):
            kind = _NAMED_FUNC
        elif issubclass(cls, dict):
            kind = _MAPPING
        elif issubclass(cls, (list, tuple)):
            kind = _SEQUENCE
        elif issubclass(cls, (set, frozenset)):
            kind = _SETS
        else:
            kind = _OBJECT
        _KINDS[cls] = kind
    return kind


class _Plain:
    __slots__ = ("backs", "memo", "path")

    def __init__(self):
        self.path = []  # ids of the containers being digested (for cycles)
        self.memo = {}  # id -> (container, digest): one digest per container met twice
        self.backs = 0  # cycle references made so far (a digest holding one is not memoised)

    def digest(self, v):
        cls = v.__class__
        kind = _KINDS.get(cls)
        if kind is None:
            if cls is bool:
                return TRUE if v else FALSE
            if cls is float:
                return (FLOAT, repr(v))
            if cls is bytes:
                return (BYTES, v)
            kind = _kind_of(cls)
        if kind < _MAPPING:
            if kind == _LEAF or kind == _RT_SELF:
                return v
            if kind == _RT_ID:
                return (RUNTIME, id(v))
            if kind == _NAMED_ENUM:
                return (ENUM, cls.__qualname__, v.name)
            return (FUNC, cls.__qualname__, getattr(v, "__qualname__", None))
        i = id(v)
        seen = self.memo.get(i)
        if seen is not None:
            return seen[1]
        path = self.path
        if i in path:
            self.backs += 1
            return (BACK, len(path) - path.index(i))
        if kind == _MAPPING:
            node, keys, values = _ITEMS, list(v), list(v.values())
        elif kind == _SEQUENCE:
            node, keys, values = _ITEMS, range(len(v)), list(v)
        elif kind == _SETS:
            node = _SETLIKE
        else:
            attrs = getattr(v, "__dict__", None)
            if attrs is not None:
                node, keys, values = _ATTRS, list(attrs), list(attrs.values())
            else:
                names = _slots(cls)
                if not names:  # nothing racecheck can look into
                    return (OBJ, cls.__module__, cls.__qualname__)
                keys = [n for n in names if hasattr(v, n)]
                node, values = _ATTRS, [getattr(v, n) for n in keys]
        path.append(i)
        backs = self.backs
        digest = self.digest
        if node is _SETLIKE:
            keys, values = (), tuple(sorted([digest(x) for x in v], key=repr))
        else:
            # Most values are their own digests (numbers, strings, runtime
            # objects): only the others are taken one by one.
            for j, k in enumerate(map(_KINDS.get, map(type, values))):
                if k is None or k > _RT_SELF:
                    values[j] = digest(values[j])
            if kind == _MAPPING and not _PLAIN_KEYS.issuperset(map(type, keys)):
                keys = [k if k.__class__ is str or k.__class__ is int else (KEY, digest(k), repr(k))
                        for k in keys]
            keys, values = tuple(keys), tuple(values)
        path.pop()
        out = (node, cls.__qualname__, keys, values)
        if self.backs == backs:
            self.memo[i] = (v, out)  # (v kept so that its id is not reused meanwhile)
        return out


def _node(d):
    return d.__class__ is tuple and len(d) == 4 and d[0] in (_ITEMS, _ATTRS, _SETLIKE)


def _step(path, kind, key):
    if kind is _ATTRS:
        return f"{path}.{key}"
    if key.__class__ is tuple and key[:1] == (KEY,):
        return f"{path}[{key[2]}]"
    return f"{path}[{key!r}]"


def _diff(a, b, path, out):
    if a == b:
        return
    if not (_node(a) and _node(b)) or a[0] != b[0] or a[1] != b[1] or a[0] is _SETLIKE:
        out.append(path)
        return
    kind = a[0]
    old, new = dict(zip(a[2], a[3])), dict(zip(b[2], b[3]))
    if len(old) != len(a[2]) or len(new) != len(b[2]):  # keys digested alike: no finer path
        out.append(path)
        return
    before = len(out)
    for k, x in old.items():
        if k not in new:
            out.append(_step(path, kind, k))
        else:
            _diff(x, new[k], _step(path, kind, k), out)
    for k in new:
        if k not in old:
            out.append(_step(path, kind, k))
    if len(out) == before:  # the same items in another order
        out.append(path)
