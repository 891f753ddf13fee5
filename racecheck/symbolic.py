"""Symbolic offsets, lengths and sizes: concolic exploration of a scenario
whose operation arguments are ranges or sets of values (racecheck/ranges.py).

A symbolic argument is a :class:`SymInt`: a concrete value, which the models
compute with as they always do, and a :class:`Term`, the expression over the
scenario's parameters that the value stands for. Arithmetic on a SymInt gives
a SymInt. Every use of one that the models' behaviour can depend on records a
*decision* in the current :class:`Recorder`: a comparison (``<``, ``==``,
``min``, ``sorted``...), a truth test (``if offset % bs``), and every use that
needs a plain int (a list index, ``range()`` bounds, a dict key or set member,
``int()``, formatting into a label) concretises the value with a recorded
equality. Nothing else about the value can reach the models' control flow or
the state the scheduler sees: a footprint key is an index or a key, so it is
concrete, fixed by a recorded equality.

The class loop (:class:`ClassSearch`, :func:`explore_classes`). Pick values in the parameter space
with z3, run the whole interleaving search with those values, and collect the
conjunction PC of every decision recorded anywhere in that search. PC is the
class of the values: every assignment that satisfies it makes the same
decisions, with the same outcomes, in every execution of the search (the
search is deterministic given them), so it explores the same executions and
gets the same verdict. Then ask z3 for values in the space outside every class
found so far, and repeat. When z3 says there are none, every value of the
space has been covered. Soundness rests on one rule: every way a symbolic
value can influence what runs goes through a method below that records it.
SymInt is not an ``int`` subclass for that reason (CPython would use an int's
value in ``range()`` or indexing without asking).
"""

from __future__ import annotations

import dataclasses
import operator
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from .scheduler import Explorer, replay
from .search import BUDGET, Outcome, Reason, Search, Stats, Stop, Verdict, error_record, kind_of

# -- terms ------------------------------------------------------------------------------


class Term:
    """An expression over the parameters, hash-consed (one object per distinct
    expression, so terms compare and hash by identity). Sums are kept as
    linear combinations, so that ``(o + l) - o`` is the term ``l`` and two
    decisions that say the same thing are one decision."""

    __slots__ = ("args", "op", "serial", "z3")

    def __init__(self, op, args, serial):
        # "var": (name,); "lin": (constant, ((atom, coefficient), ...));
        # "*", "//", "%": (a, b), Terms or ints; "abs": (a,)
        self.op = op
        self.args = args
        self.serial = serial  # creation order: a stable order for the atoms of a sum
        self.z3 = None

    def __repr__(self):
        return f"Term({text(self)})"

    def __reduce__(self):
        # Sent to another process (a class searched there, parallel_classes.py):
        # made again through term(), so that it is that process's one object
        # for the expression; its z3 form is the context's, not sent.
        return term, (self.op, *self.args)


_TERMS: dict = {}  # (op, *args) -> Term


def term(op, *args):
    key = (op,) + args
    t = _TERMS.get(key)
    if t is None:
        t = _TERMS[key] = Term(op, args, len(_TERMS))
    return t


def _linear(x):
    """``x`` (an int or a Term) as (constant, {atom: coefficient})."""
    if x.__class__ is int:
        return x, {}
    if x.op == "lin":
        return x.args[0], dict(x.args[1])
    return 0, {x: 1}


def _sum(const, items):
    """The term (or int) for ``const + sum(coefficient * atom)``."""
    items = {a: c for a, c in items.items() if c}
    if not items:
        return const
    if const == 0 and len(items) == 1:
        (atom, coeff), = items.items()
        if coeff == 1:
            return atom
    return term("lin", const, tuple(sorted(items.items(), key=lambda ac: ac[0].serial)))


_MEMO: dict = {}  # (what, a, b) -> the term of an operation, or the normalisation in _decide


def _add(a, b, sign=1):
    key = ("+", a, b, sign)
    out = _MEMO.get(key)
    if out is None:
        out = _MEMO[key] = _add_uncached(a, b, sign)
    return out


def _add_uncached(a, b, sign):
    ca, ia = _linear(a)
    cb, ib = _linear(b)
    for atom, coeff in ib.items():
        ia[atom] = ia.get(atom, 0) + sign * coeff
    return _sum(ca + sign * cb, ia)


def _scale(a, k):
    key = ("*", a, k)
    out = _MEMO.get(key)
    if out is None:
        c, items = _linear(a)
        out = _MEMO[key] = _sum(c * k, {atom: coeff * k for atom, coeff in items.items()})
    return out


def variable(name, value):
    """A parameter ``name`` whose concrete value is ``value``."""
    return SymInt(value, term("var", name))


# -- decisions ---------------------------------------------------------------------------


class Recorder:
    """The decisions made on symbolic values during one search: a comparison
    ``(op, term, constant)`` -> its outcome."""

    __slots__ = ("decisions",)

    def __init__(self):
        self.decisions = {}

    def decide(self, op, a, b, outcome):
        key = (op, a, b)
        if key not in self.decisions:
            self.decisions[key] = outcome

    def literals(self):
        """The decisions as comparisons that hold (negated when the outcome
        was false), in the order they were first made."""
        return [(op if outcome else NEGATE[op], a, b) for (op, a, b), outcome in self.decisions.items()]


NEGATE = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}
MIRROR = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
           "==": operator.eq, "!=": operator.ne}

_recorder = Recorder()


@contextmanager
def recording(rec):
    """Record the decisions made inside the block in ``rec``."""
    global _recorder
    saved, _recorder = _recorder, rec
    try:
        yield rec
    finally:
        _recorder = saved


def _decide(op, a, b, outcome):
    """Record that ``a op b`` came out as ``outcome``, and return it. The
    decision is normalised to ``sum <= c`` or ``sum == c`` (over the
    integers every comparison is one of these or its negation) with a
    positive first coefficient, so that one question asked in two ways is one
    decision. A comparison whose terms cancel (``x == x``) depends on no
    parameter and is not recorded."""
    key = (op, a, b)
    norm = _MEMO.get(key)
    if norm is None:
        norm = _MEMO[key] = _normalise(op, a, b)
    if norm is not False:
        op2, lhs, rhs, flip = norm
        _recorder.decide(op2, lhs, rhs, outcome != flip)
    return outcome


def _normalise(op, a, b):
    """(op, lhs, rhs, flip): ``a op b`` is ``(lhs op rhs) != flip``; False
    when the terms cancel."""
    const, items = _linear(_add(a, b, -1))
    if not items:
        return False
    lhs, rhs = _sum(0, items), -const  # a op b  <=>  lhs op rhs
    first = lhs.args[1][0][1] if lhs.op == "lin" else 1
    if first < 0:
        lhs, rhs, op = _scale(lhs, -1), const, MIRROR[op]
    if op == "<":
        return "<=", lhs, rhs - 1, False
    if op == ">":
        return "<=", lhs, rhs, True
    if op == ">=":
        return "<=", lhs, rhs - 1, True
    if op == "!=":
        return "==", lhs, rhs, True
    return op, lhs, rhs, False


# -- the symbolic integer ------------------------------------------------------------------


def _operand(x):
    """(value, term-or-int) of an operand, or None when it is not an integer."""
    if x.__class__ is SymInt:
        return x.value, x.term
    if isinstance(x, int):
        x = int(x)
        return x, x
    return None


def _is_mask(m):
    return isinstance(m, int) and m >= 0 and (m + 1) & m == 0


def _arith(op, av, at, bv, bt):
    """``a op b`` where at least one side is symbolic: a SymInt, or a plain
    int when the result depends on no parameter (``x * 0``, ``x - x``)."""
    if op in ("//", "%"):
        if bt.__class__ is Term:
            _decide("!=", bt, 0, bv != 0)  # a zero divisor raises: another path
        value = av // bv if op == "//" else av % bv  # ZeroDivisionError as for ints
    else:
        value = av + bv if op == "+" else av - bv if op == "-" else av * bv
    key = ("arith", op, at, bt)
    t = _MEMO.get(key)
    if t is None:
        t = _MEMO[key] = _arith_term(op, at, bt)
    if t.__class__ is int:
        return value
    return SymInt(value, t)


def _arith_term(op, at, bt):
    if op == "+":
        return _add(at, bt)
    if op == "-":
        return _add(at, bt, -1)
    if op == "*":
        if bt.__class__ is int:
            return _scale(at, bt)
        if at.__class__ is int:
            return _scale(bt, at)
        return term("*", at, bt)
    return _divide(op, at, bt) if bt.__class__ is int else term(op, at, bt)


def _divide(op, a, k):
    """``a // k`` or ``a % k`` for a constant ``k``: the multiples of ``k`` in
    ``a`` come out of the division exactly ((k*m + r) // k == m + r // k and
    (k*m + r) % k == r % k, for all integers), so ``(4096 * (x // 4096)) //
    4096`` is ``x // 4096``."""
    const, items = _linear(a)
    whole = {atom: c // k for atom, c in items.items() if c % k == 0}
    rest = {atom: c for atom, c in items.items() if c % k}
    r = _sum(const % k, rest)
    if op == "//":
        part = r // k if r.__class__ is int else term("//", r, k)
        return _add(_sum(const // k, whole), part)
    return r % k if r.__class__ is int else term("%", r, k)


def _concrete(x):
    """The plain int of ``x``, recording that the term equals it."""
    if x.__class__ is SymInt:
        _decide("==", x.term, x.value, True)
        return x.value
    return x


def _binary(op):
    def forward(self, other):
        o = _operand(other)
        if o is None:
            return _with_float(op, self, other, False)
        return _arith(op, self.value, self.term, o[0], o[1])

    def reverse(self, other):
        o = _operand(other)
        if o is None:
            return _with_float(op, self, other, True)
        return _arith(op, o[0], o[1], self.value, self.term)

    return forward, reverse


_PY = {"+": operator.add, "-": operator.sub, "*": operator.mul, "//": operator.floordiv,
       "%": operator.mod, "/": operator.truediv, "**": operator.pow, "&": operator.and_,
       "|": operator.or_, "^": operator.xor, "<<": operator.lshift, ">>": operator.rshift}


def _with_float(op, self, other, reflected):
    if not isinstance(other, float):
        return NotImplemented
    v = float(_concrete(self))
    return _PY[op](other, v) if reflected else _PY[op](v, other)


def _concrete_binary(op):
    """Operators z3's integers do not have in general: the operands are
    concretised (recorded), and the result is a plain value."""
    def forward(self, other):
        if _operand(other) is None and not isinstance(other, float):
            return NotImplemented
        return _PY[op](_concrete(self), _concrete(other))

    def reverse(self, other):
        if _operand(other) is None and not isinstance(other, float):
            return NotImplemented
        return _PY[op](_concrete(other), _concrete(self))

    return forward, reverse


def _compare(op):
    fn = COMPARE[op]

    def method(self, other):
        o = _operand(other)
        if o is None:
            if isinstance(other, float):
                return fn(float(_concrete(self)), other)
            return NotImplemented
        return _decide(op, self.term, o[1], fn(self.value, o[0]))

    return method


class SymInt:
    """An integer with a concrete value and the term it stands for."""

    __slots__ = ("term", "value")

    def __init__(self, value, term_):
        self.value = value
        self.term = term_

    __add__, __radd__ = _binary("+")
    __sub__, __rsub__ = _binary("-")
    __mul__, __rmul__ = _binary("*")
    __floordiv__, __rfloordiv__ = _binary("//")
    __mod__, __rmod__ = _binary("%")
    __truediv__, __rtruediv__ = _concrete_binary("/")
    __pow__, __rpow__ = _concrete_binary("**")
    __or__, __ror__ = _concrete_binary("|")
    __xor__, __rxor__ = _concrete_binary("^")
    __rlshift__ = _concrete_binary("<<")[1]
    __rrshift__ = _concrete_binary(">>")[1]
    __lt__ = _compare("<")
    __le__ = _compare("<=")
    __gt__ = _compare(">")
    __ge__ = _compare(">=")
    __eq__ = _compare("==")
    __ne__ = _compare("!=")

    def __divmod__(self, other):
        return self // other, self % other

    def __rdivmod__(self, other):
        return other // self, other % self

    def __and__(self, other):
        # x & (2**k - 1) is x % 2**k, for every x (fs/direct-io.c masks offsets so)
        if _is_mask(other):
            return self % (other + 1)
        return _concrete_binary("&")[0](self, other)

    def __rand__(self, other):
        if _is_mask(other):
            return self % (other + 1)
        return _concrete_binary("&")[1](self, other)

    def __lshift__(self, other):
        k = _concrete(other)
        if not isinstance(k, int):
            return NotImplemented
        if k < 0:
            raise ValueError("negative shift count")
        return self * (1 << k)

    def __rshift__(self, other):
        k = _concrete(other)
        if not isinstance(k, int):
            return NotImplemented
        if k < 0:
            raise ValueError("negative shift count")
        return self // (1 << k)

    def __neg__(self):
        return SymInt(-self.value, _scale(self.term, -1))

    def __pos__(self):
        return self

    def __abs__(self):
        return SymInt(abs(self.value), term("abs", self.term))

    def __invert__(self):
        return -self - 1

    # Uses that need a plain value: recorded.

    def __bool__(self):
        return _decide("!=", self.term, 0, self.value != 0)

    def __index__(self):
        return _concrete(self)

    __int__ = __index__

    def __float__(self):
        return float(_concrete(self))

    def __hash__(self):
        return hash(_concrete(self))

    def __round__(self, ndigits=None):
        return round(_concrete(self), ndigits) if ndigits is not None else _concrete(self)

    __trunc__ = __floor__ = __ceil__ = __index__

    def __format__(self, spec):
        # Labels and messages are concretised too: text built from a value
        # could be compared later, and a label names a step.
        return format(_concrete(self), spec)

    def __str__(self):
        return str(_concrete(self))

    __repr__ = __str__

    def __getattr__(self, name):
        # int's other methods (bit_length, to_bytes, ...): on the plain value.
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(_concrete(self), name)


def is_symbolic(x):
    return x.__class__ is SymInt


def plain(x):
    """The concrete value of ``x`` without recording anything (for reports)."""
    return x.value if x.__class__ is SymInt else x


# -- reading terms: text, evaluation, z3 ------------------------------------------------------


def text(t):
    """A term in Python syntax, as a scenario's ``where`` is written."""
    if t.__class__ is not Term:
        return str(t)
    if t.op == "var":
        return t.args[0]
    if t.op == "abs":
        return f"abs({text(t.args[0])})"
    if t.op == "lin":
        const, items = t.args
        out = ""
        for atom, coeff in items:
            sign = "-" if coeff < 0 else "+"
            k = abs(coeff)
            body = _paren(atom) if k == 1 else f"{k} * {_paren(atom)}"
            out += (f"-{body}" if sign == "-" else body) if not out else f" {sign} {body}"
        if const:
            out += f" {'-' if const < 0 else '+'} {abs(const)}"
        return out
    a, b = t.args
    return f"{_paren(a)} {t.op} {_paren(b)}"


def _paren(t):
    s = text(t)
    compound = t.__class__ is Term and t.op not in ("var", "abs")
    return f"({s})" if compound or (t.__class__ is int and t < 0) else s


def literal_text(lit):
    op, a, b = lit
    return f"{text(a)} {op} {text(b)}"


def evaluate(t, env):
    """The value of term ``t`` for the assignment ``env`` (name -> int)."""
    if t.__class__ is not Term:
        return t
    if t.op == "var":
        return env[t.args[0]]
    if t.op == "lin":
        const, items = t.args
        return const + sum(coeff * evaluate(atom, env) for atom, coeff in items)
    if t.op == "abs":
        return abs(evaluate(t.args[0], env))
    return _PY[t.op](evaluate(t.args[0], env), evaluate(t.args[1], env))


def holds(literals, env):
    """Do all ``literals`` hold for the assignment ``env``? (A division by
    zero in a literal means the assignment took another path: False.)"""
    try:
        return all(COMPARE[op](evaluate(a, env), evaluate(b, env)) for op, a, b in literals)
    except ZeroDivisionError:
        return False


_z3ctx = None  # the z3 context of the current run: fresh per run, so that z3's answers
# (which values it picks) depend on the run alone, not on what the process did before


def z3_context():
    import z3
    return _z3ctx or z3.main_ctx()


def z3_floordiv(a, b):
    """Python's ``a // b`` over z3 integers (SMT-LIB ``div`` rounds so that
    the remainder is non-negative: Python's floor for a positive divisor).
    ``b`` may be a Python int."""
    import z3
    if isinstance(b, int) or z3.is_int_value(b):
        k = b if isinstance(b, int) else b.as_long()
        return a / k if k > 0 else (-a) / (-k)
    return z3.If(b > 0, a / b, (-a) / (-b))


def z3_mod(a, b):
    """Python's ``a % b`` over z3 integers (the sign of the divisor)."""
    import z3
    if isinstance(b, int) and b > 0 or not isinstance(b, int) and z3.is_int_value(b) and b.as_long() > 0:
        return a % b
    return a - b * z3_floordiv(a, b)


def z3_binary(op, a, b):
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "//":
        return z3_floordiv(a, b)
    if op == "%":
        return z3_mod(a, b)
    raise ValueError(f"no z3 form for {op}")


def to_z3(t):
    """Term ``t`` as a z3 integer expression (in the run's context)."""
    import z3
    ctx = z3_context()
    if t.__class__ is not Term:
        return z3.IntVal(t, ctx)
    if t.z3 is None or t.z3.ctx is not ctx:
        if t.op == "var":
            t.z3 = z3.Int(t.args[0], ctx)
        elif t.op == "lin":
            const, items = t.args
            t.z3 = z3.Sum([z3.IntVal(const, ctx)] + [coeff * to_z3(atom) for atom, coeff in items])
        elif t.op == "abs":
            a = to_z3(t.args[0])
            t.z3 = z3.If(a >= 0, a, -a)
        else:
            t.z3 = z3_binary(t.op, to_z3(t.args[0]), _z3_operand(t.args[1]))
    return t.z3


def _z3_operand(x):
    return x if x.__class__ is int else to_z3(x)


def literal_z3(lit):
    op, a, b = lit
    return COMPARE[op](to_z3(a), to_z3(b))


# -- the class loop -----------------------------------------------------------------------------


@dataclass
class ParamClass:
    """One class of parameters: the assignment its search ran with, the
    decisions of that search as comparisons that hold (the class is every
    assignment that satisfies them all), and the search's outcome."""

    values: dict
    literals: list
    outcome: object

    @property
    def verdict(self):
        return self.outcome.verdict

    def contains(self, env):
        return holds(self.literals, env)


@dataclass
class SpaceOutcome(Outcome):
    """The outcome of a symbolic run: the verdict over every class, the
    classes, whether z3 found the space covered; ``violation`` and ``error``
    are those of the deciding class."""

    classes: list = field(default_factory=list)
    covered: bool = False  # z3 found no value outside the classes explored
    z3_queries: int = 0
    z3_s: float = 0.0
    searched: int = 0  # class searches run: with --jobs, searches ahead too (parallel_classes.py)

    @property
    def deciding(self):
        """The class whose verdict is the run's (violation or error), or None."""
        for c in self.classes:
            if c.verdict in ("violation", "error"):
                return c
        return None


class ClassSearch(Search):
    """The class loop as a search (see the module docstring): one step asks
    z3 for values outside the classes found so far and runs the interleaving
    search of their class. ``bounds.timeout`` and ``bounds.max_executions``
    are for the whole run: each class's search gets what is left of them, and
    arms the time limit itself. A class whose search stops for a reason of
    :data:`~racecheck.search.BUDGET` ends the run."""

    alarm = False  # the searches of the classes arm it, with the time left

    def __init__(self, space, model, reduction="dpor", bounds=None, stop_on_violation=True,
                 progress=None):
        super().__init__(model, bounds)
        self.space = space
        self.reduction = reduction
        self.stop_on_violation = stop_on_violation
        self.class_progress = progress  # (the classes' searches report progress)
        self.classes = []
        self.covered = False
        self.z3_queries = 0
        self.z3_s = 0.0

    def reset(self):
        pass  # each class's search gathers for its own checks

    def begin(self):
        import z3

        global _z3ctx
        _TERMS.clear()  # the terms of earlier runs: nothing refers to them any more
        _MEMO.clear()
        ctx = _z3ctx = z3.Context()
        self.solver = z3.Solver(ctx=ctx)
        self.solver.add(*self.space.z3_domain())
        self.variables = {name: z3.Int(name, ctx) for name in self.space.names}

    def limit(self):
        return self.time_reached() or self.executions_reached()

    def remaining_s(self):
        t = self.bounds.timeout
        return None if t is None else t - self.elapsed()

    def advance(self):
        env = self.next_values()
        if env is None:
            return False
        return self.take(self.search_class(env))

    def next_values(self):
        """The values z3 picks outside every class found so far, or None when
        there are none (covered) or z3 cannot tell (incomplete)."""
        import z3

        solver = self.solver
        left = self.remaining_s()
        if left is not None:
            solver.set("timeout", max(1, int(left * 1000)))
        t0 = time.perf_counter()
        answer = solver.check()
        self.z3_s += time.perf_counter() - t0
        self.z3_queries += 1
        if answer == z3.unsat:
            self.covered = True
            return None
        if answer == z3.unknown:
            if left is not None and solver.reason_unknown() in ("timeout", "canceled"):
                # z3 was given what was left of the run's time, and used it
                self.incomplete = Reason.time_limit(self.bounds.timeout)
            else:
                self.incomplete = Reason(Stop.solver, f"z3 could not tell whether values are left "
                                                      f"({solver.reason_unknown()})")
            return None
        m = solver.model()
        return {n: m.eval(v, model_completion=True).as_long() for n, v in self.variables.items()}

    def search_class(self, env):
        """The ParamClass of the values ``env``: its search, run here."""
        from .model import instantiate

        return _search(instantiate(self.model, env), env, self.reduction, self.bounds, self.stats,
                       self.remaining_s(), self.class_progress, self.start)

    def take(self, cls):
        """The class of the values just picked, next in the run; False when
        the run ends with it."""
        import z3

        solver = self.solver
        self.classes.append(cls)
        _add_stats(self.stats, cls.outcome.stats)
        o = cls.outcome
        if o.verdict == Verdict.error or (o.verdict == Verdict.violation and self.stop_on_violation):
            return False
        if o.verdict == Verdict.incomplete and kind_of(o.reason) in BUDGET:
            # A class's search was given what was left of the run's time:
            # the limit to name is the run's own.
            self.incomplete = (Reason.time_limit(self.bounds.timeout)
                               if kind_of(o.reason) is Stop.time_limit and self.bounds.timeout
                               else o.reason)
            return False
        solver.add(z3.Not(z3.And(*[literal_z3(lit) for lit in cls.literals], solver.ctx)))
        return True

    def outcome(self):
        out = SpaceOutcome(Verdict.clean, self.stats, reason=self.incomplete, classes=self.classes,
                           covered=self.covered, z3_queries=self.z3_queries, z3_s=self.z3_s,
                           searched=len(self.classes))
        out.verdict = _verdict(out)
        cls = out.deciding
        if cls is not None:
            out.violation, out.error = cls.outcome.violation, cls.outcome.error
        out.checks = _add_checks(c.outcome.checks for c in self.classes)
        return out


def explore_classes(space, model, reduction="dpor", bounds=None, stop_on_violation=True,
                    progress=None):
    """Explore every class of the parameter ``space`` of ``model`` (whose
    unknown arguments racecheck/ranges.py parsed): one full interleaving
    search per class, until z3 finds no value left or a bound ends the run.
    ``bounds.timeout`` and ``bounds.max_executions`` are for the whole run."""
    return ClassSearch(space, model, reduction, bounds, stop_on_violation, progress).run()


def _search(model, env, reduction, bounds, totals, left_s, progress, start):
    """The interleaving search of one class, recording its decisions."""
    b = dataclasses.replace(bounds)
    if left_s is not None:
        b.timeout = max(left_s, 0.001)
    if bounds.max_executions is not None:
        b.max_executions = max(bounds.max_executions - totals.executions, 1)
    on_progress = None
    if progress is not None:
        def on_progress(stats, depth, _elapsed):
            both = Stats(executions=totals.executions + stats.executions, steps=totals.steps + stats.steps)
            progress(both, depth, time.monotonic() - start)
    rec = Recorder()
    with recording(rec):
        outcome = Explorer(model, reduction, b, progress=on_progress).run()
    literals = rec.literals()
    if not holds(literals, env):  # the values must satisfy their own decisions
        raise AssertionError(f"the decisions recorded for {env} do not hold for it")
    return ParamClass(env, literals, outcome)


def _add_checks(counts):
    """What the checks counted over every class's search, summed."""
    out = {}
    for c in counts:
        for k, v in (c or {}).items():
            out[k] = out.get(k, 0) + v
    return out or None


def _add_stats(total, s):
    total.executions += s.executions
    total.blocked += s.blocked
    total.steps += s.steps
    total.pruned += s.pruned
    total.max_depth = max(total.max_depth, s.max_depth)


def _verdict(out):
    verdicts = [c.verdict for c in out.classes]
    if Verdict.error in verdicts:
        return Verdict.error
    if Verdict.violation in verdicts:
        return Verdict.violation
    if out.covered and all(v == Verdict.clean for v in verdicts):
        return Verdict.clean
    return Verdict.incomplete


# -- what the classes stand for -----------------------------------------------------------------


def class_condition(space, cls, budget_s=5.0):
    """The decisions of ``cls`` that the others and the space do not imply
    (z3 decides; a literal it cannot decide within the budget is kept), as
    text. Checking the class needs all of them; reading it, only these."""
    import z3

    domain = space.z3_domain()
    kept = list(cls.literals)
    deadline = time.monotonic() + budget_s
    # Try the longest first, so that the plainer statements are the ones kept.
    for lit in sorted(cls.literals, key=lambda lit: -len(literal_text(lit))):
        if time.monotonic() > deadline:
            break
        others = [k for k in kept if k is not lit]
        s = z3.Solver(ctx=z3_context())
        s.set("timeout", 1000)
        s.add(*domain, *[literal_z3(k) for k in others], z3.Not(literal_z3(lit)))
        if s.check() == z3.unsat:
            kept = others
    return [literal_text(lit) for lit in kept]


def class_members(space, cls, limit=200_000):
    """What the assignments of the space in ``cls`` look like: their count,
    each parameter's values among them, and whether the class is every
    assignment of the space with those values (a box). None when the space
    has more than ``limit`` candidates."""
    if space.box_size() > limit:
        return None
    members = [env for env in space.assignments() if cls.contains(env)]
    values = {u.name: sorted({env[u.name] for env in members}) for u in space.unknowns}
    in_box = sum(1 for env in space.assignments() if all(env[k] in v for k, v in values.items()))
    return {"size": len(members), "values": values, "box": in_box == len(members)}


def _values_text(name, values, unknown):
    if len(values) == 1:
        return f"{name} = {values[0]}"
    run = list(unknown.values)
    i = run.index(values[0])
    if run[i:i + len(values)] == values:
        return f"{name} in [{values[0]}, {values[-1]}]"
    return f"{name} in {{{', '.join(map(str, values))}}}"


def summary(space, out, describe_class=True):
    """The facts of a symbolic run, for the report and ``--json``."""
    doc = {
        "parameters": {u.name: u.spec for u in space.unknowns},
        "constraints": [c.text for c in space.constraints],
        "values_in_space": space.size(),
        "classes": len(out.classes),
        "covered": out.covered,
        "z3_queries": out.z3_queries,
        "z3_s": round(out.z3_s, 3),
        "values": None,
        "class": None,
    }
    cls = out.deciding
    if cls is None:
        return doc
    doc["values"] = dict(cls.values)
    if not describe_class:
        return doc
    members = class_members(space, cls)
    c = {"size": None, "box": False, "text": None, "condition": None}
    if members is not None:
        unknowns = {u.name: u for u in space.unknowns}
        c.update(size=members["size"], box=members["box"])
        c["text"] = " and ".join(_values_text(k, v, unknowns[k]) for k, v in members["values"].items())
    if not c["box"]:
        c["condition"] = class_condition(space, cls)
    doc["class"] = c
    return doc


def report_lines(doc, verdict):
    """The lines ``racecheck run`` prints about a symbolic run."""
    params = "; ".join(f"{k}: {v}" for k, v in doc["parameters"].items())
    lines = [f"parameters: {params}"]
    if doc["constraints"]:
        lines.append("  where " + " and ".join(f"({c})" if " or " in c else c for c in doc["constraints"]))
    total = doc["values_in_space"]
    space = f"{total} assignment{'s' if total != 1 else ''}" if total is not None else "assignments"
    n = doc["classes"]
    classes = f"{n} parameter class{'es' if n != 1 else ''}"
    z3 = f"z3: {doc['z3_queries']} quer{'ies' if doc['z3_queries'] != 1 else 'y'}, {doc['z3_s']:.2f} s"
    if verdict == "clean":
        lines.append(f"clean for all {space} of values in the space: {classes}, each searched "
                     f"exhaustively; {z3}")
    else:
        how = "covered the space" if doc["covered"] else (
            "stopped at the first violation" if verdict == "violation" else "did not cover the space")
        lines.append(f"{classes} explored ({how}; the space holds {space} of values); {z3}")
    if doc["values"] is not None:
        lines.append("values: " + ", ".join(f"{k} = {v}" for k, v in doc["values"].items()))
        c = doc["class"]
        if c is not None:
            of = f" of {total}" if total is not None else ""
            if c["size"] == 1:
                lines.append(f"their class: these values alone (1{of})")
            elif c["box"]:
                lines.append(f"their class ({c['size']}{of} values): every value with {c['text']}")
            else:
                size = f"{c['size']}{of} values; {c['text']}" if c["size"] is not None else "its values"
                lines.append(f"their class ({size}): every value with")
                lines.append("  " + " and ".join(c["condition"]) if c["condition"] else "  (any value)")
    return lines


# -- end to end: racecheck/runner.py runs symbolic scenarios through here -------------------------


@dataclass
class SpaceRun:
    """What runner.check() needs of a symbolic run: its outcome, why dfs ran,
    the summary for the report, and the concrete model and values of the
    deciding class (None when there is none, or when its schedule does not
    replay concretely)."""

    outcome: SpaceOutcome
    strategy_reason: str | None
    summary: dict
    model: object = None
    params: dict | None = None


def search_space(scenario, reduction, bounds, progress=None, strategy="dfs", explore=explore_classes):
    """The search of runner.check() for a scenario with ranges or sets:
    explore its classes, each with a depth-first search (whatever ``strategy``
    asks: the decisions of a class are those of one exhaustive search). A
    violation must replay on the concrete model, with the class's values, to
    the same invariant; runner.check() then minimises, replays and traces it
    as any other. ``explore``: what explores the classes (with ``--jobs``,
    parallel_classes.explore_classes)."""
    from .model import instantiate

    out = explore(scenario.space, scenario.model, reduction, bounds, progress=progress)
    why = None if strategy == "dfs" else (
        "auto: dfs for each class of values" if strategy == "auto"
        else f"--strategy {strategy} does not run on ranges of values: dfs for each class of values")
    run = SpaceRun(out, why, summary(scenario.space, out))
    cls = out.deciding
    if cls is None:
        return run
    model = instantiate(scenario.model, cls.values, symbolic_values=False)
    cex = out.violation
    if cex is not None:
        same = replay(model, cex.schedule, bounds.max_steps)
        if same.violation is None or same.violation.invariant != cex.invariant:
            # The concrete run must take the path the class's search took; if
            # it does not, a use of a symbolic value escaped the recorder.
            out.verdict, out.violation = Verdict.error, None
            out.error = error_record(
                "(symbolic run)", f"with the values {cls.values} the schedule that broke "
                                  f"{cex.invariant} symbolically does not break it concretely "
                                  f"(a use of a symbolic value the recorder missed)", "", cex.schedule)
            return run
    run.model, run.params = model, cls.values
    return run
