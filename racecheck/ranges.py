"""Operation arguments given as a range or a set of values, the ``where``
constraints between them, and the parameter space they make.

In a scenario an integer argument may be::

    offset: {range: [0, 8191], align: 512}   # the multiples of 512 in [0, 8191]
    size: {one_of: [2048, 4096, 6144]}

and a top-level ``where`` (a string, or a list of them) constrains them, in
Python syntax over ``<thread>.<argument>`` names (``<thread>.op<N>.<argument>``
when a thread's operations take the argument more than once)::

    where: "aio1.offset + aio1.len <= aio2.offset"

An argument the operation requires aligned (``dio_write``'s offset and
length, to the unit size) must be given an ``align`` that is a multiple of
that size. What the operation needs of concrete values is part of the space
too: the model's builder says how an argument must be aligned and the largest
value it may take, and the operations' vocabulary (racecheck/models/registry.py)
which arguments are a byte range of the file, whose start must be below that
limit and whose end at most that limit. racecheck/symbolic.py explores the space.
"""

from __future__ import annotations

import ast
import itertools
import math
from dataclasses import dataclass, field

from .model import Unknown, instantiate  # noqa: F401  (racecheck.ranges.instantiate for the front and tests)
from .models.registry import OPERATIONS
from .scenario_file import ScenarioError, Section, _plain, did_you_mean

# The keys of an argument given as a range or a set of values, with what
# each says (racecheck/schema.py shows the text in an editor).
ARG_KEYS = {
    "range": "[low, high]: every value from low to high (with align: every multiple of align).",
    "align": "With range: only the multiples of this (a multiple of the size the operation needs).",
    "one_of": "A list of the values to explore.",
}

# Limits (README.md, "Limits of scenario files"): a range's values are
# listed one by one, and a condition is parsed and checked recursively.
MAX_VALUES = 1 << 16  # values of one range or set
MAX_CONDITIONS = 64  # conditions in where
MAX_CONDITION_CHARS = 1000  # characters of one condition
MAX_CONDITION_DEPTH = 100  # levels of its syntax tree


def parse_arg(sec, p, opname, need, limit):
    """The :class:`Unknown` for argument ``p`` of ``opname``, given in
    ``sec`` as a mapping; a ScenarioError names the file, line and key. Each
    value must be a multiple of ``need`` and, for a byte argument, at most
    ``limit`` (the model's builder says both)."""
    node = sec.node(p.name)
    arg = Section(sec.path, node, sec.key(p.name), ARG_KEYS, sec.line_of(p.name))
    if arg.has("range") == arg.has("one_of"):
        raise sec.error(p.name, "give a value, {range: [low, high]} (with align: N) or {one_of: [...]}")
    if arg.has("one_of"):
        if arg.has("align"):
            raise arg.error("align", "align goes with range, not one_of")
        items = arg.node("one_of").value
        if not isinstance(items, list) or not items:
            raise arg.error("one_of", "must be a non-empty list of integers")
        if len(items) > MAX_VALUES:
            raise arg.error("one_of", f"lists {len(items)} values; a set holds at most {MAX_VALUES} values")
        values = []
        for item in items:
            v = item.value
            if isinstance(v, bool) or not isinstance(v, int):
                raise ScenarioError(sec.path, item.line, arg.key("one_of"), f"must be integers, not {_plain(v)!r}")
            _check_value(sec.path, item.line, arg.key("one_of"), v, p, opname, limit, need)
            values.append(v)
        values = tuple(sorted(set(values)))
        return Unknown(opname, p.name, values, f"one of {list(values)}", sec.line_of(p.name), limit=limit)
    bounds = arg.get("range", list)
    if len(bounds) != 2 or any(isinstance(b.value, bool) or not isinstance(b.value, int) for b in bounds):
        raise arg.error("range", "must be [low, high], two integers")
    lo, hi = bounds[0].value, bounds[1].value
    if lo > hi:
        raise arg.error("range", f"low {lo} is above high {hi}")
    align = arg.get("align", int, 1)
    if align <= 0:
        raise arg.error("align", f"must be positive, not {align}")
    if align % need:
        key = "align" if arg.has("align") else "range"
        raise arg.error(key, f"{opname} needs {p.name} aligned to the {p.align} size ({need} bytes): "
                             f"give align: {need} (or a multiple)" + (f", not {align}" if align > 1 else ""))
    first = -(-lo // align) * align
    if first > hi:
        raise arg.error("range", f"holds no multiple of {align}")
    last = hi // align * align
    for v, what in ((first, "low"), (last, "high")):
        _check_value(sec.path, arg.line_of("range"), arg.key("range"), v, p, opname, limit, need, what)
    count = (last - first) // align + 1
    if count > MAX_VALUES:
        raise arg.error("range", f"holds {count} values; a range holds at most {MAX_VALUES} values: "
                                 f"give a larger align or a narrower range")
    spec = f"range [{lo}, {hi}]" + (f", align {align}" if align > 1 else "")
    return Unknown(opname, p.name, tuple(range(first, last + 1, align)), spec, sec.line_of(p.name), limit=limit)


def _check_value(path, line, key, v, p, opname, limit, need, what="value"):
    """What catalogue.py checks of a concrete argument, for one value."""
    if v < 0:
        raise ScenarioError(path, line, key, f"must not be negative, not {v}")
    if p.kind == "bytes" and v > limit:
        raise ScenarioError(path, line, key, f"{what} {v} is beyond the file's limit (max_size {limit})")
    if v % need:
        raise ScenarioError(path, line, key, f"{opname} needs {p.name} aligned to the {p.align} size "
                                             f"({need} bytes), not {v}")


# -- the space -----------------------------------------------------------------------------


@dataclass
class Constraint:
    """A condition over the parameters: its text, the line it came from, and
    its parsed form."""

    text: str
    tree: ast.AST
    line: int | None = None
    implied: bool = False  # what the operation needs of concrete values

    def holds(self, env):
        return bool(_eval(self.tree, env))

    def z3(self, env):
        return _eval(self.tree, env)


@dataclass
class Space:
    """The parameters of a scenario, their values and the constraints."""

    unknowns: list
    constraints: list = field(default_factory=list)

    @property
    def names(self):
        return [u.name for u in self.unknowns]

    def admits(self, env):
        return all(c.holds(env) for c in self.constraints)

    def assignments(self):
        """Every assignment of the space (name -> value), in order."""
        names = self.names
        for combo in itertools.product(*(u.values for u in self.unknowns)):
            env = dict(zip(names, combo))
            if self.admits(env):
                yield env

    def empty(self):
        """True when no assignment satisfies the space (z3 decides)."""
        import z3

        from . import symbolic
        solver = z3.Solver(ctx=symbolic.z3_context())
        solver.add(*self.z3_domain())
        return solver.check() == z3.unsat

    def box_size(self):
        return math.prod(len(u.values) for u in self.unknowns)

    def size(self, limit=200_000):
        """How many assignments the space holds (None past ``limit`` candidates)."""
        if self.box_size() > limit:
            return None
        return sum(1 for _ in self.assignments())

    def z3_domain(self):
        """The space as z3 constraints."""
        import z3

        from . import symbolic
        ctx = symbolic.z3_context()
        env = {u.name: z3.Int(u.name, ctx) for u in self.unknowns}
        out = []
        for u in self.unknowns:
            x = env[u.name]
            lo, hi = u.values[0], u.values[-1]
            step = u.values[1] - u.values[0] if len(u.values) > 1 else 1
            if u.spec.startswith("one of") or not _evenly_spaced(u.values):
                out.append(z3.Or([x == v for v in u.values]))
            else:
                out += [x >= lo, x <= hi]
                if step > 1:
                    out.append((x - lo) % step == 0)
        out += [c.z3(env) for c in self.constraints]
        return out

    def describe(self):
        """Lines for a report: each parameter and each constraint."""
        lines = [f"{u.name}: {u.spec}" for u in self.unknowns]
        lines += [f"where {c.text}" + (" (the operation's limit)" if c.implied else "")
                  for c in self.constraints]
        return lines


def _evenly_spaced(values):
    return len(values) < 3 or len({b - a for a, b in itertools.pairwise(values)}) == 1


def unknowns_of(model):
    """Every :class:`Unknown` among the model's operation arguments, named."""
    out = []
    for tname, ops in getattr(model, "threads_spec", []):
        counts = {}
        for _, args in ops:
            for pname, a in args.items():
                if isinstance(a, Unknown):
                    counts[pname] = counts.get(pname, 0) + 1
        for n, (_, args) in enumerate(ops, 1):
            for pname, a in args.items():
                if isinstance(a, Unknown):
                    a.name = f"{tname}.{pname}" if counts[pname] == 1 else f"{tname}.op{n}.{pname}"
                    out.append(a)
    return out


def load_space(root, path, model):
    """The scenario's :class:`Space`, or None when every argument is a value.
    Reads the top-level ``where``."""
    unknowns = unknowns_of(model)
    if not unknowns:
        if root.has("where"):
            raise root.error("where", "constrains ranges and sets of values, and the scenario gives none "
                                      "(write an argument as {range: [low, high]} or {one_of: [...]})")
        return None
    space = Space(unknowns)
    space.constraints += _implied(model)
    if root.has("where"):
        node = root.node("where")
        items = node.value if isinstance(node.value, list) else [node]
        if len(items) > MAX_CONDITIONS:
            raise root.error("where", f"lists {len(items)} conditions; where holds at most {MAX_CONDITIONS} "
                                      f"conditions")
        for item in items:
            if not isinstance(item.value, str):
                raise ScenarioError(path, item.line, "where", f"must be a condition in quotes, not {_plain(item)!r}")
            space.constraints.append(parse_where(item.value, space.names, path, item.line))
    if space.empty():
        key = "where" if root.has("where") else "threads"
        raise root.error(key, "no assignment of values satisfies the ranges, sets and constraints "
                              f"({'; '.join(space.describe())}): there is nothing to check")
    return space


def _implied(model):
    """What catalogue.py checks of concrete offsets and lengths, as
    constraints: an operation's byte range (its OFFSET and LENGTH arguments,
    as the vocabulary declares them) starts below the limit and ends within it."""
    out = []
    for tname, ops in model.threads_spec:
        for opname, args in ops:
            start, size = OPERATIONS[opname].byte_range
            offset, length = args.get(start), args.get(size)
            unknown = [a for a in (offset, length) if isinstance(a, Unknown)]
            if not unknown:
                continue
            max_size = unknown[0].limit
            if isinstance(offset, Unknown) and offset.values[-1] >= max_size:
                out.append(_constraint(f"{offset.name} < {max_size}"))
            if start in args and size in args:
                o = offset.name if isinstance(offset, Unknown) else offset
                n = length.name if isinstance(length, Unknown) else length
                top = (offset.values[-1] if isinstance(offset, Unknown) else offset) + \
                      (length.values[-1] if isinstance(length, Unknown) else length)
                if top > max_size:
                    out.append(_constraint(f"{o} + {n} <= {max_size}"))
    return out


def _constraint(text):
    return Constraint(text, ast.parse(text, mode="eval").body, implied=True)


# -- where: a small expression language (Python syntax) ----------------------------------------

_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.FloorDiv: "//", ast.Mod: "%"}
_COMPARE = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}


def parse_where(text, names, path, line):
    """One ``where`` condition; a ScenarioError says what is wrong with it."""
    if len(text) > MAX_CONDITION_CHARS:
        raise ScenarioError(path, line, "where", f"a condition of {len(text)} characters; a condition has at "
                                                 f"most {MAX_CONDITION_CHARS} characters: split it into a list "
                                                 f"of conditions")
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ScenarioError(path, line, "where", f"{text!r} does not parse: {exc.msg}") from None
    except (RecursionError, MemoryError):
        tree = None
    if tree is None or _depth(tree) > MAX_CONDITION_DEPTH:
        raise ScenarioError(path, line, "where", f"{text[:60]!r}... nests more than {MAX_CONDITION_DEPTH} levels "
                                                 f"deep: write it more simply")
    _check(tree, names, path, line, text)
    if not _is_condition(tree):
        raise ScenarioError(path, line, "where", f"{text!r} must be a condition (a comparison, "
                                                 f"and/or/not of comparisons)")
    return Constraint(text.strip(), tree, line)


def _depth(tree):
    """How deep the expression nests (counted without recursion)."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def _is_condition(node):
    if isinstance(node, ast.Compare):
        return True
    if isinstance(node, ast.BoolOp):
        return all(_is_condition(v) for v in node.values)
    return isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not) and _is_condition(node.operand)


def dotted(node):
    """``a.b.c`` for a Name/Attribute chain, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _check(node, names, path, line, text):
    def bad(what):
        raise ScenarioError(path, line, "where", f"{text!r}: {what}")

    name = dotted(node)
    if name is not None:
        if name not in names:
            bad(f"no parameter named {name}" + did_you_mean(name, names))
        return
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int):
            bad(f"{node.value!r} is not an integer")
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _BINARY:
            bad("use + - * // % (/ is not integer division: use //)" if isinstance(node.op, ast.Div)
                else f"the operator {type(node.op).__name__} is not allowed (use + - * // %)")
        if isinstance(node.op, (ast.FloorDiv, ast.Mod)) and not (
                isinstance(node.right, ast.Constant) and isinstance(node.right.value, int)
                and not isinstance(node.right.value, bool) and node.right.value != 0):
            bad("divide only by a non-zero integer constant")
        _check(node.left, names, path, line, text)
        _check(node.right, names, path, line, text)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd, ast.Not)):
        _check(node.operand, names, path, line, text)
    elif isinstance(node, ast.BoolOp):
        for v in node.values:
            _check(v, names, path, line, text)
    elif isinstance(node, ast.Compare):
        for v in [node.left, *node.comparators]:
            _check(v, names, path, line, text)
    else:
        bad(f"{ast.unparse(node)!r} is not allowed: use parameter names, integers, + - * // %, "
            f"comparisons, and, or, not")


def _eval(node, env):
    """Evaluate a checked condition over ints (Python) or z3 integers."""
    from . import symbolic  # only scenarios with ranges get here: keep it out of a plain run's imports
    name = dotted(node)
    if name is not None:
        return env[name]
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.BinOp):
        a, b = _eval(node.left, env), _eval(node.right, env)
        op = _BINARY[type(node.op)]
        if isinstance(a, int) and isinstance(b, int):
            return symbolic._PY[op](a, b)
        return symbolic.z3_binary(op, a, b)  # a Python int operand takes the other's context
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, env)
        if isinstance(node.op, ast.Not):
            return not v if isinstance(v, bool) else _z3_bool("Not", [v])
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BoolOp):
        vals = [_eval(v, env) for v in node.values]
        if all(isinstance(v, bool) for v in vals):
            return all(vals) if isinstance(node.op, ast.And) else any(vals)
        return _z3_bool("And" if isinstance(node.op, ast.And) else "Or", vals)
    parts = [_eval(v, env) for v in [node.left, *node.comparators]]
    results = [symbolic.COMPARE[_COMPARE[type(op)]](a, b)
               for op, a, b in zip(node.ops, parts, parts[1:])]
    if all(isinstance(r, bool) for r in results):
        return all(results)
    return _z3_bool("And", results)


def _z3_bool(fn, vals):
    import z3

    from . import symbolic
    ctx = symbolic.z3_context()
    vals = [z3.BoolVal(v, ctx) if isinstance(v, bool) else v for v in vals]
    return getattr(z3, fn)(*vals) if fn == "Not" else getattr(z3, fn)(*vals, ctx)


# -- models with values in place of the unknowns (racecheck.model.instantiate) -------------------


def model_with_values(space, model, params):
    """``model`` with the values a trace saved (``params``), checked against
    the space; ValueError says why they do not fit."""
    if not isinstance(params, dict):
        raise ValueError("the scenario has ranges or sets of values, and the trace does not say "
                         "which values it ran with (no params)")
    names = space.names
    if sorted(params) != sorted(names):
        raise ValueError(f"the trace's values are for {', '.join(sorted(params))}, the scenario's "
                         f"parameters are {', '.join(names)}")
    for u in space.unknowns:
        v = params[u.name]
        if isinstance(v, bool) or not isinstance(v, int) or v not in u.values:
            raise ValueError(f"{u.name} = {v!r} is not in the scenario's {u.spec}")
    if not space.admits(params):
        failing = [c.text for c in space.constraints if not c.holds(params)]
        raise ValueError(f"the trace's values break the scenario's constraint {failing[0]}")
    return instantiate(model, params, symbolic_values=False)
