"""Random programs built to break racecheck's reductions, and an independent
interpreter that says what they can do.

The language
============

A program is plain data (dicts, tuples, strings and ints: picklable, and
printed as pseudo-code by :func:`show`)::

    {"vars":     (("x", 0), ("y", 0)),          # shared variables and their initial values
     "maps":     (("m", ((0, 1),)),),           # shared maps and their initial items
     "mutexes":  ("a", "b"),
     "rwsems":   ("s",),
     "locals":   2,                             # r0, r1 in every thread, 0 at the start
     "threads":  (thread, ...),                 # a thread is a tuple of steps
     "always":   None or {"forbid": cond, "watches": "all" | "exact"},
     "final":    None or cond}

A step is ``(header, actions)``. The header says how the step begins, as what
a racecheck thread yields:

* ``("label", text)``         an ordinary step (``yield "text"``)
* ``("lock", m)``             ``yield m.lock()``: begins by taking mutex ``m``
* ``("down_read", s)``, ``("down_write", s)``   the same for rwsem ``s``
* ``("wait", x, c)``          ``yield wait_until(x == c)``

and the actions are what the step then does, atomically, in order:

* ``("read", r, x)``           r = x
* ``("write", x, c)``          x = c
* ``("copy", x, r, k)``        x = r + k
* ``("add", x, k)``            x = x + k                  (a read and a write)
* ``("cond", x, c, y, d)``     if x == c: y = d           (reads x; writes y only sometimes)
* ``("cas", x, old, new, r)``  r = cas(x, old, new)       (r = 1 if it swapped, else 0)
* ``("if", r, c, then, else)`` branch on a local: which objects the step
  touches depends on a value read earlier
* ``("check", r, c)``          check(r != c)              (invariant ``assertion``)
* ``("mget", r, m, k)``        r = m.get(k, -1)
* ``("mset", m, k, c)``        m[k] = c
* ``("mdel", m, k)``           del m[k]                   (a write even when absent)
* ``("mkeys", r, m)``          r = len(m.keys())          (reads the key set)
* ``("unlock", m)``, ``("up_read", s)``, ``("up_write", s)``

A step with no actions touches nothing (a label alone). A condition ``cond``
is a tuple of ``(object, key, value)`` equalities, ``key`` None for a
variable and a map key otherwise (value -1 for an absent key); it is the
forbidden combination: the invariant holds unless all of them hold at once.
``always`` is checked after every step and on the initial state (invariant
``always``; ``watches`` "exact" names the objects it reads, "all" leaves them
unsaid); ``final`` on every state where every thread has finished (invariant
``final``). A state where unfinished threads remain and none can run is a
deadlock (invariant ``deadlock_free``).

The semantics are racecheck's (racecheck/execution.py, ``_advance``): a step
that touched no shared object and is followed by a label goes straight on
into the next step; one followed by a request goes on into it if it can be
granted now (and counts as having touched the request's objects), else the
thread waits there. A check that fails ends its thread at once (racecheck's
generator dies of the exception); the always invariant is checked after that
step too.

The parts
=========

* :func:`generate` makes a random program from a ``random.Random``;
* :func:`show` prints one as pseudo-code;
* :func:`explore` is the interpreter: an explicit-state search of every
  interleaving with a visited set, where a thread's state is its step index
  and its locals. It imports nothing from racecheck and shares no code with
  it;
* :func:`build` turns a program into a ``racecheck.model.Program``;
* :func:`compare` explores a program with racecheck (``none``, ``dpor``,
  ``bfs``) and with the interpreter and says where they differ;
* :func:`shrink` makes a program that shows a difference smaller.

Only :func:`build` and :func:`compare` import racecheck, and only when
called.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

# -- the language ------------------------------------------------------------------

ACCESS = ("read", "write", "copy", "add", "cond", "cas", "mget", "mset", "mdel", "mkeys")
RELEASES = {"unlock": "lock", "up_read": "down_read", "up_write": "down_write"}
REQUESTS = ("lock", "down_read", "down_write", "wait")


def program(threads, vars=(("x", 0),), maps=(), mutexes=(), rwsems=(), always=None,
            final=None, locals=2):
    """A program description with defaults for what it does not use."""
    return {"vars": tuple(vars), "maps": tuple(maps), "mutexes": tuple(mutexes),
            "rwsems": tuple(rwsems), "locals": locals, "threads": tuple(threads),
            "always": always, "final": final}


def step(actions, header=None):
    """A step; an ordinary one labelled with its own pseudo-code by default."""
    actions = tuple(actions)
    if header is None:
        header = ("label", "; ".join(show_action(a) for a in actions) or "nop")
    return (header, actions)


def size(prog):
    """Steps and actions in all (to pick the smallest of several programs)."""
    def count(actions):
        return sum(1 + (count(a[3]) + count(a[4]) if a[0] == "if" else 0) for a in actions)
    return sum(1 + count(acts) for thread in prog["threads"] for _, acts in thread)


# -- printing -------------------------------------------------------------------------

def show_action(a):
    kind = a[0]
    if kind == "read":
        return f"r{a[1]} = {a[2]}"
    if kind == "write":
        return f"{a[1]} = {a[2]}"
    if kind == "copy":
        return f"{a[1]} = r{a[2]}" + (f" + {a[3]}" if a[3] else "")
    if kind == "add":
        return f"{a[1]} += {a[2]}"
    if kind == "cond":
        return f"if {a[1]} == {a[2]}: {a[3]} = {a[4]}"
    if kind == "cas":
        return f"r{a[4]} = cas({a[1]}, {a[2]}, {a[3]})"
    if kind == "if":
        then = "; ".join(show_action(b) for b in a[3]) or "pass"
        other = "; ".join(show_action(b) for b in a[4])
        return f"if r{a[1]} == {a[2]}: {{{then}}}" + (f" else {{{other}}}" if other else "")
    if kind == "check":
        return f"check(r{a[1]} != {a[2]})"
    if kind == "mget":
        return f"r{a[1]} = {a[2]}.get({a[3]}, -1)"
    if kind == "mset":
        return f"{a[1]}[{a[2]}] = {a[3]}"
    if kind == "mdel":
        return f"del {a[1]}[{a[2]}]"
    if kind == "mkeys":
        return f"r{a[1]} = len({a[2]}.keys())"
    if kind in RELEASES:
        return f"{kind}({a[1]})"
    raise ValueError(f"unknown action {a!r}")


def show_header(h):
    if h[0] == "label":
        return repr(h[1])
    if h[0] == "wait":
        return f"wait_until({h[1]} == {h[2]})"
    return f"{h[0]}({h[1]})"


def show_cond(cond):
    parts = [f"{o} == {v}" if k is None else f"{o}[{k}] == {v}" for o, k, v in cond]
    return f"not ({' and '.join(parts)})" if len(parts) > 1 else f"not {parts[0]}"


def show(prog):
    """The program as pseudo-code, one line per thread."""
    shared = [f"{n} = {v}" for n, v in prog["vars"]]
    shared += [f"map {n} = {dict(items)}" for n, items in prog["maps"]]
    shared += [f"mutex {n}" for n in prog["mutexes"]] + [f"rwsem {n}" for n in prog["rwsems"]]
    lines = ["# shared: " + ", ".join(shared)]
    for i, thread in enumerate(prog["threads"]):
        steps = []
        for header, actions in thread:
            body = "; ".join(show_action(a) for a in actions)
            steps.append(f"{show_header(header)}: {body}" if body else show_header(header))
        lines.append(f"T{i}: " + ";  ".join(steps))
    if prog["always"]:
        lines.append(f"always: {show_cond(prog['always']['forbid'])}"
                     f"  (watches {prog['always']['watches']})")
    if prog["final"]:
        lines.append(f"final: {show_cond(prog['final'])}")
    return "\n".join(lines)


# -- the generator ----------------------------------------------------------------------

VALUES = (0, 1, 2)


def generate(rng, max_steps=8, plain=False, rwsems=0.15):
    """A random program: 2-4 threads, 1-3 variables, at most ``max_steps``
    steps in all; often a map, mutexes taken in either order, an rwsem,
    waits, and invariants (the always one now and then false at the start).
    ``plain`` leaves out what reductions find hardest (conditional writes,
    compare-and-swap, branches, an always invariant false at the start).
    One program in three is "tight": one or two variables, no locks, and
    mostly steps whose footprints change with the order of the steps:
    compare-and-swap and conditional writes, or a map's sets and deletes
    (which change its key set only when the key is new or present) with
    listings of its keys. ``rwsems``: the share of programs with an rwsem
    (1: every one, the tight ones too)."""
    nthreads = rng.randint(2, 4)
    tight = None if plain or rng.random() >= 0.3 else rng.choice(("cas", "map"))
    names = ["x", "y", "z"][:rng.randint(1, 2 if tight else 3)]
    maps = (("m", ((0, 1),) if rng.random() < 0.5 else ()),) if rng.random() < 0.25 else ()
    mutexes = ("a", "b")[:rng.choice((0, 0, 1, 2, 2))]
    share = rwsems
    rwsems = ("s",) if rng.random() < share else ()
    if tight:
        maps = (("m", ((0, 1),) if rng.random() < 0.5 else ()),) if tight == "map" else ()
        mutexes = ()
        rwsems = rwsems if share >= 1 else ()
    total = rng.randint(nthreads, max(nthreads, max_steps))
    counts = [1] * nthreads
    for _ in range(total - nthreads):
        counts[rng.randrange(nthreads)] += 1
    env = {"vars": names, "maps": [m for m, _ in maps], "locals": 2, "rng": rng, "plain": plain,
           "tight": tight}
    # Now and then each thread has a variable of its own where it publishes
    # what it read (at once, or at its end), so that what it read shows in
    # the final state.
    outputs = rng.random() < (0.8 if tight else 0.5)
    threads = []
    for i, n in enumerate(counts):
        env["out"] = f"o{i}" if outputs else None
        threads.append(gen_thread(env, n, mutexes, rwsems))
    vars = tuple((n, 0 if rng.random() < 0.8 else rng.choice(VALUES)) for n in names)
    if outputs:
        threads = [publish(thread, f"o{i}", rng.randrange(env["locals"])) if rng.random() < 0.7
                   else thread for i, thread in enumerate(threads)]
        vars += tuple((f"o{i}", -1) for i in range(nthreads))
    prog = program(threads, vars, maps, mutexes, rwsems)
    if rng.random() < 0.35:
        broken = not plain and rng.random() < 0.3
        prog["always"] = {"forbid": gen_cond(rng, prog, 2, broken),
                          "watches": rng.choice(("all", "exact"))}
    if rng.random() < 0.6:
        prog["final"] = gen_cond(rng, prog, 3, False)
    return prog


def gen_thread(env, n, mutexes, rwsems):
    rng = env["rng"]
    headers = [None] * n
    tails = [[] for _ in range(n)]  # releases, appended after a step's actions
    # Critical sections: mutexes nested in a random order (two threads may
    # take them in opposite orders), an rwsem's read or write side.
    locks = [("lock", m) for m in rng.sample(mutexes, len(mutexes)) if rng.random() < 0.6]
    if rwsems and rng.random() < 0.6:
        locks.append((rng.choice(("down_read", "down_write")), rwsems[0]))
    lo, hi = 0, n - 1
    for kind, name in locks:
        if lo > hi:
            break
        start = rng.randint(lo, hi)
        end = rng.randint(start, hi)
        headers[start] = (kind, name)
        if rng.random() < 0.92:  # now and then a thread ends holding it
            release = {"lock": "unlock", "down_read": "up_read", "down_write": "up_write"}[kind]
            tails[end].insert(0, (release, name))
        lo, hi = start + 1, end
    for i in range(n):
        if headers[i] is None and rng.random() < 0.15:
            headers[i] = ("wait", rng.choice(env["vars"]), rng.choice(VALUES))
    steps = []
    for i in range(n):
        r = rng.random()
        count = 0 if r < 0.1 else 1 if r < 0.8 else 2
        actions = []
        for _ in range(count):
            actions.append(gen_action(env))
            local = read_into(actions[-1])
            if env["out"] and local is not None and rng.random() < 0.4:
                actions.append(("copy", env["out"], local, 0))
        actions += tails[i]
        steps.append(step(actions, headers[i]))
    return tuple(steps)


def read_into(a):
    """The local an action reads a shared value into, or None."""
    if a[0] in ("read", "mget", "mkeys"):
        return a[1]
    if a[0] == "cas":
        return a[4]
    return None


def publish(thread, var, r):
    """``thread`` with ``var = r`` added at the end of its last step."""
    header, actions = thread[-1]
    last = step(actions + (("copy", var, r, 0),), None if header[0] == "label" else header)
    return thread[:-1] + (last,)


def gen_action(env, nested=False):
    rng = env["rng"]
    kinds = ["read"] * 3 + ["write"] * 2 + ["copy"] * 2 + ["add", "check"]
    if not env["plain"]:
        kinds += ["cond", "cond", "cas", "cas"] + ([] if nested else ["if", "if"])
    if env.get("tight") == "cas":
        kinds += ["cas"] * 10 + ["cond"] * 4
    elif env.get("tight") == "map":
        kinds += ["mget", "mset", "mset", "mdel", "mdel", "mkeys", "mkeys"] * 2
    if env["maps"]:
        kinds += ["mget", "mset", "mdel", "mkeys"]
    kind = rng.choice(kinds)
    x, y = rng.choice(env["vars"]), rng.choice(env["vars"])
    r, c, d = rng.randrange(env["locals"]), rng.choice(VALUES), rng.choice(VALUES)
    m, k = (env["maps"] or [None])[0], rng.choice((0, 1))
    return {
        "read": lambda: ("read", r, x),
        "write": lambda: ("write", x, c),
        "copy": lambda: ("copy", x, r, rng.choice((0, 1))),
        "add": lambda: ("add", x, 1),
        "cond": lambda: ("cond", x, c, y, d),
        "cas": lambda: ("cas", x, c, d, r),
        "check": lambda: ("check", r, rng.choice((1, 2))),  # locals start at 0
        "if": lambda: ("if", r, c, (gen_action(env, True),),
                       (gen_action(env, True),) if rng.random() < 0.4 else ()),
        "mget": lambda: ("mget", r, m, k),
        "mset": lambda: ("mset", m, k, c),
        "mdel": lambda: ("mdel", m, k),
        "mkeys": lambda: ("mkeys", r, m),
    }[kind]()


def gen_cond(rng, prog, most, initially_true):
    """A forbidden combination of 1 to ``most`` variable or map values; with
    ``initially_true``, the initial state's own values."""
    entries = [(n, None, v) for n, v in prog["vars"]]
    for n, items in prog["maps"]:
        items = dict(items)
        entries += [(n, k, items.get(k, -1)) for k in (0, 1)]
    chosen = rng.sample(entries, rng.randint(1, min(most, len(entries))))
    if not initially_true:
        chosen = [(o, k, rng.choice(VALUES if k is None else (-1,) + VALUES)) for o, k, _ in chosen]
    return tuple(sorted(chosen, key=repr))


# -- the interpreter ----------------------------------------------------------------------
#
# Shares no code with racecheck and imports nothing from it: it runs the
# description itself. A state is (shared values, threads); shared values are
# one entry per object in the order vars, maps, mutexes, rwsems (a map as its
# sorted items, a mutex as its owner, an rwsem as (sorted readers, writer)); a
# thread is (index of the step it is about to take, its locals), or None once
# finished.

class ProgramError(Exception):
    """The program is ill-formed (a release of what its thread does not hold)."""


@dataclass
class Result:
    finals: set = field(default_factory=set)  # (canonical shared values, deadlocked)
    violations: set = field(default_factory=set)  # invariant names
    states: int = 0


class Interpreter:
    def __init__(self, prog):
        self.prog = prog
        self.threads = prog["threads"]
        self.names = ([n for n, _ in prog["vars"]] + [n for n, _ in prog["maps"]]
                      + list(prog["mutexes"]) + list(prog["rwsems"]))
        self.at = {n: i for i, n in enumerate(self.names)}
        self.kind = {n: "var" for n, _ in prog["vars"]}
        self.kind.update({n: "map" for n, _ in prog["maps"]})
        self.kind.update({n: "mutex" for n in prog["mutexes"]})
        self.kind.update({n: "rwsem" for n in prog["rwsems"]})

    def initial(self):
        shared = ([v for _, v in self.prog["vars"]]
                  + [tuple(sorted(items)) for _, items in self.prog["maps"]]
                  + [None for _ in self.prog["mutexes"]]
                  + [((), None) for _ in self.prog["rwsems"]])
        zero = (0,) * self.prog["locals"]
        threads = tuple((0, zero) if thread else None for thread in self.threads)
        return tuple(shared), threads

    # -- reading state --

    def value(self, shared, obj, key=None):
        v = shared[self.at[obj]]
        if key is None:
            return v
        return dict(v).get(key, -1)

    def holds(self, cond, shared):
        return not all(self.value(shared, o, k) == v for o, k, v in cond)

    def values(self, shared):
        """The shared values by name, as canonical() takes them."""
        return {n: shared[i] for i, n in enumerate(self.names)}

    def enabled(self, shared, tid, header):
        kind = header[0]
        if kind == "label":
            return True
        if kind == "wait":
            return self.value(shared, header[1]) == header[2]
        v = shared[self.at[header[1]]]
        if kind == "lock":
            return v is None
        if kind == "down_read":
            return v[1] is None
        return v[1] is None and not v[0]  # down_write

    # -- running a step --

    def grant(self, shared, tid, header):
        kind, name = header[0], header[1]
        i = self.at[name]
        if kind == "lock":
            shared[i] = tid
        elif kind == "down_read":
            shared[i] = (tuple(sorted(shared[i][0] + (tid,))), shared[i][1])
        elif kind == "down_write":
            shared[i] = (shared[i][0], tid)
        # wait: nothing changes; the step has read the variable

    def run(self, actions, shared, local, tid):
        """Run actions in order: (touched a shared object, no check failed)."""
        touched = False
        for a in actions:
            kind = a[0]
            if kind == "check":
                if local[a[1]] == a[2]:
                    return touched, False
                continue
            if kind == "if":
                branch = a[3] if local[a[1]] == a[2] else a[4]
                t, ok = self.run(branch, shared, local, tid)
                touched = touched or t
                if not ok:
                    return touched, False
                continue
            touched = True
            self.access(a, shared, local, tid)
        return touched, True

    def access(self, a, shared, local, tid):
        kind, at = a[0], self.at
        if kind == "read":
            local[a[1]] = shared[at[a[2]]]
        elif kind == "write":
            shared[at[a[1]]] = a[2]
        elif kind == "copy":
            shared[at[a[1]]] = local[a[2]] + a[3]
        elif kind == "add":
            shared[at[a[1]]] += a[2]
        elif kind == "cond":
            if shared[at[a[1]]] == a[2]:
                shared[at[a[3]]] = a[4]
        elif kind == "cas":
            swap = shared[at[a[1]]] == a[2]
            if swap:
                shared[at[a[1]]] = a[3]
            local[a[4]] = int(swap)
        elif kind == "mget":
            local[a[1]] = dict(shared[at[a[2]]]).get(a[3], -1)
        elif kind == "mset":
            items = dict(shared[at[a[1]]])
            items[a[2]] = a[3]
            shared[at[a[1]]] = tuple(sorted(items.items()))
        elif kind == "mdel":
            items = dict(shared[at[a[1]]])
            items.pop(a[2], None)
            shared[at[a[1]]] = tuple(sorted(items.items()))
        elif kind == "mkeys":
            local[a[1]] = len(shared[at[a[2]]])
        elif kind == "unlock":
            if shared[at[a[1]]] != tid:
                raise ProgramError(f"T{tid} unlocks {a[1]}, which it does not hold")
            shared[at[a[1]]] = None
        elif kind == "up_read":
            readers, writer = shared[at[a[1]]]
            if tid not in readers:
                raise ProgramError(f"T{tid} up_reads {a[1]}, which it does not hold")
            readers = list(readers)
            readers.remove(tid)
            shared[at[a[1]]] = (tuple(readers), writer)
        elif kind == "up_write":
            readers, writer = shared[at[a[1]]]
            if writer != tid:
                raise ProgramError(f"T{tid} up_writes {a[1]}, which it does not hold")
            shared[at[a[1]]] = (readers, None)
        else:
            raise ValueError(f"unknown action {a!r}")

    def step(self, state, tid):
        """Thread ``tid``'s step from ``state``: (new state, a check failed,
        a probe: the step touched nothing but a request it could not take).

        As racecheck runs it: the step begins by granting its header's
        request; after its actions, a step that touched nothing goes on into
        the next one (through a request only if it can be granted now; the
        request's objects then count as touched)."""
        shared, threads = list(state[0]), list(state[1])
        pc, local = threads[tid][0], list(threads[tid][1])
        steps = self.threads[tid]
        header, actions = steps[pc]
        touched = False
        if header[0] != "label":
            self.grant(shared, tid, header)
            touched = True
        while True:
            t, ok = self.run(actions, shared, local, tid)
            touched = touched or t
            pc += 1
            if not ok or pc == len(steps):
                threads[tid] = None
                return (tuple(shared), tuple(threads)), not ok, False
            header, actions = steps[pc]
            if touched:
                break
            if header[0] == "label":
                continue
            touched = True  # whether it can go on depends on the request's objects
            if not self.enabled(shared, tid, header):
                threads[tid] = (pc, tuple(local))
                return (tuple(shared), tuple(threads)), False, True
            self.grant(shared, tid, header)
        threads[tid] = (pc, tuple(local))
        return (tuple(shared), tuple(threads)), False, False

    def runnable(self, state):
        shared, threads = state
        return [tid for tid, t in enumerate(threads)
                if t is not None and self.enabled(shared, tid, self.threads[tid][t[0]][0])]


def explore(prog, stop_on_violation=False):
    """Every state the program can reach, by brute force: the final states
    (canonical shared values, deadlocked) and the invariants violated.

    With ``stop_on_violation`` an execution ends at its first violation (the
    violations are those that can come first); without, it goes on past
    violations as racecheck's ``stop_on_violation=False`` does: an assertion
    ends its thread only, an ``always`` violation nothing."""
    it = Interpreter(prog)
    always, final = prog["always"], prog["final"]
    out = Result()
    start = it.initial()
    if always and not it.holds(always["forbid"], start[0]):
        out.violations.add("always")
        if stop_on_violation:
            return out
    seen = {start}
    todo = [start]
    while todo:
        state = todo.pop()
        out.states += 1
        runnable = it.runnable(state)
        if not runnable:
            deadlocked = any(t is not None for t in state[1])
            out.finals.add((canonical(prog, it.values(state[0])), deadlocked))
            if deadlocked:
                out.violations.add("deadlock_free")
            elif final and not it.holds(final, state[0]):
                out.violations.add("final")
            continue
        for tid in runnable:
            after, failed, _ = it.step(state, tid)
            violated = {"assertion"} if failed else set()
            if always and not it.holds(always["forbid"], after[0]):
                violated.add("always")  # checked after a failed check too
            if violated:
                out.violations |= violated
                if stop_on_violation:
                    continue
            if after not in seen:
                seen.add(after)
                todo.append(after)
    return out


def probes(prog, schedule, it=None):
    """Which steps of ``schedule`` (thread ids) are probes: a step that
    touched nothing but found the request after it could not be taken. It
    changes no shared state, yet racecheck counts it as a step that reads
    the request's objects (a trace of its own)."""
    it = it or Interpreter(prog)
    state, out = it.initial(), []
    for tid in schedule:
        state, _, probe = it.step(state, tid)
        out.append(probe)
    return out


def canonical(prog, values):
    """Shared values by name in one form whoever computed them: racecheck's
    snapshot() or the interpreter's values()."""
    kinds = {n: "map" for n, _ in prog["maps"]}
    kinds.update({n: "rwsem" for n in prog["rwsems"]})
    out = []
    for name, v in values.items():
        if kinds.get(name) == "map":
            v = tuple(sorted(dict(v).items()))
        elif kinds.get(name) == "rwsem":
            v = (tuple(sorted(v[0])), v[1])
        out.append((name, v))
    return tuple(sorted(out))


def well_formed(prog):
    """False if some interleaving releases a lock its thread does not hold."""
    try:
        explore(prog)
    except ProgramError:
        return False
    return True


# -- racecheck's side ---------------------------------------------------------------------

def build(prog):
    """The racecheck model of a program (racecheck imported here only)."""
    from types import SimpleNamespace

    from racecheck.invariants import Always, FinalState, Invariant
    from racecheck.model import Program
    from racecheck.runtime import check, wait_until

    nlocals = prog["locals"]

    def init(rt):
        obj = {}
        for name, v in prog["vars"]:
            obj[name] = rt.var(name, v)
        for name, items in prog["maps"]:
            obj[name] = rt.map(name, dict(items))
        for name in prog["mutexes"]:
            obj[name] = rt.mutex(name)
        for name in prog["rwsems"]:
            obj[name] = rt.rwsem(name)
        return SimpleNamespace(rt=rt, obj=obj)

    def request(st, header):
        kind = header[0]
        if kind == "label":
            return header[1]
        if kind == "wait":
            var, value = st.obj[header[1]], header[2]

            def ready():
                return var.get() == value
            return wait_until(st.rt, ready, f"{header[1]} == {value}")
        return getattr(st.obj[header[1]], kind)()

    def run(st, actions, local):
        o = st.obj
        for a in actions:
            kind = a[0]
            if kind == "read":
                local[a[1]] = o[a[2]].get()
            elif kind == "write":
                o[a[1]].set(a[2])
            elif kind == "copy":
                o[a[1]].set(local[a[2]] + a[3])
            elif kind == "add":
                o[a[1]].set(o[a[1]].get() + a[2])
            elif kind == "cond":
                if o[a[1]].get() == a[2]:
                    o[a[3]].set(a[4])
            elif kind == "cas":
                swap = o[a[1]].get() == a[2]
                if swap:
                    o[a[1]].set(a[3])
                local[a[4]] = int(swap)
            elif kind == "if":
                run(st, a[3] if local[a[1]] == a[2] else a[4], local)
            elif kind == "check":
                check(local[a[1]] != a[2], f"r{a[1]} is {a[2]}")
            elif kind == "mget":
                local[a[1]] = o[a[2]].get(a[3], -1)
            elif kind == "mset":
                o[a[1]].set(a[2], a[3])
            elif kind == "mdel":
                o[a[1]].delete(a[2])
            elif kind == "mkeys":
                local[a[1]] = len(o[a[2]].keys())
            elif kind in RELEASES:
                getattr(o[a[1]], kind)()
            else:
                raise ValueError(f"unknown action {a!r}")

    def thread(steps):
        def body(st):
            local = [0] * nlocals
            for header, actions in steps:
                yield request(st, header)
                run(st, actions, local)
        return body

    def forbidden(cond):
        def holds(st):
            return not all((st.obj[o].value if k is None else st.obj[o].items.get(k, -1)) == v
                           for o, k, v in cond)
        return holds

    class WatchedAlways(Invariant):
        """The always invariant, naming the objects it reads."""

        name = "always"

        def __init__(self, cond):
            self.holds = forbidden(cond)
            self.objects = sorted({o for o, _, _ in cond})

        def watches(self, st):
            return [st.obj[n] for n in self.objects]

        def after_step(self, st, execution):
            return None if self.holds(st) else f"{show_cond(cond)} broke"

    invariants = []
    if prog["always"]:
        cond = prog["always"]["forbid"]
        if prog["always"]["watches"] == "exact":
            invariants.append(WatchedAlways(cond))
        else:
            invariants.append(Always("always", forbidden(cond), f"{show_cond(cond)} broke"))
    if prog["final"]:
        invariants.append(FinalState("final", forbidden(prog["final"]),
                                     f"{show_cond(prog['final'])} broke at the end"))
    return Program("random", init, [(f"T{i}", thread(t)) for i, t in enumerate(prog["threads"])],
                   invariants)


def racecheck_dfs(prog, reduction):
    """Explore with racecheck's stateless search to the end, past violations:
    finals, violations, traces (one per execution), executions, blocked."""
    from racecheck.scheduler import Bounds, Explorer, trace_signature

    finals, traces, unprobed = set(), [], []
    it = Interpreter(prog)
    waits = any(h[0] != "label" for thread in prog["threads"] for h, _ in thread)

    def seen(ex, violation):
        deadlocked = any(not t.finished for t in ex.threads)
        finals.add((canonical(prog, ex.rt.snapshot()), deadlocked))
        # Steps that touch nothing commute with everything: not part of the trace.
        traces.append(trace_signature([e for e in ex.events if e.reads or e.writes]))
        probe = probes(prog, [n.chosen for n in explorer.stack], it) if waits else ()
        if any(probe):
            unprobed.append(trace_signature([e for e, p in zip(ex.events, probe)
                                             if (e.reads or e.writes) and not p]))
        else:
            unprobed.append(traces[-1])

    explorer = Explorer(build(prog), reduction, Bounds(), on_execution=seen, stop_on_violation=False)
    outcome = explorer.run()
    return {"outcome": outcome, "finals": finals, "violations": set(explorer.violations),
            "traces": traces, "unprobed": unprobed, "executions": outcome.stats.executions,
            "blocked": outcome.stats.blocked}


def racecheck_bfs(prog):
    from racecheck.strategies import BreadthFirst

    finals = set()

    def final(ex, violation):
        finals.add((canonical(prog, ex.rt.snapshot()), any(not t.finished for t in ex.threads)))

    bfs = BreadthFirst(build(prog), on_final=final, stop_on_violation=False)
    outcome = bfs.run()
    return {"outcome": outcome, "finals": finals, "violations": set(bfs.violations)}


def racecheck_first(prog, strategy):
    """The verdict of an ordinary run (stopping at the first violation)."""
    from racecheck.scheduler import Explorer
    from racecheck.strategies import BreadthFirst

    model = build(prog)
    if strategy == "bfs":
        return BreadthFirst(model).run()
    return Explorer(model, strategy).run()


@dataclass
class Comparison:
    prog: dict
    expected: Result
    differences: dict = field(default_factory=dict)  # strategy -> [(kind, words)]
    traces: int = 0  # Mazurkiewicz traces (none's executions, distinct)
    dpor_missed: int = 0  # of them, dpor ran none
    dpor_missed_unprobed: int = 0  # traces missed once probes are left out
    dpor_extra: int = 0  # dpor executions beyond one per trace it ran
    dpor_blocked: int = 0  # dpor executions cut short by sleep sets
    handover_missed: int = 0  # traces the units of "handover" missed, probes left out
    executions: dict = field(default_factory=dict)  # strategy -> executions


def differences(prog, got, expected, first=None, expected_first=None):
    """What a racecheck search got wrong, as (kind, words) pairs: the kind
    names the class of disagreement (which invariant was missed, whether the
    always invariant was false at the start, final states missing...)."""
    out = []
    outcome = got["outcome"]
    if outcome.verdict not in ("clean", "violation"):
        out.append((f"verdict {outcome.verdict}", f"{outcome.reason or outcome.error}"))
    for name in sorted(expected.violations - got["violations"]):
        out.append((f"missed {name}",
                    f"violations {sorted(got['violations'])}, expected {sorted(expected.violations)}"))
    for name in sorted(got["violations"] - expected.violations):
        out.append((f"unreachable {name}",
                    f"violations {sorted(got['violations'])}, expected {sorted(expected.violations)}"))
    missing, extra = expected.finals - got["finals"], got["finals"] - expected.finals
    if missing:
        out.append(("final states missing",
                    f"{len(missing)} final states missing, e.g. {show_final(min(missing, key=repr))}"))
    if extra:
        out.append(("final states unreachable",
                    f"{len(extra)} final states unreachable, e.g. {show_final(min(extra, key=repr))}"))
    if first is not None:
        if first.verdict == "clean" and expected_first.violations:
            out.append(("first violation: clean",
                        "stopping at the first violation: clean, expected one of "
                        + str(sorted(expected_first.violations))))
        elif first.verdict == "violation" and first.violation.invariant not in expected_first.violations:
            v = first.violation
            out.append((f"first violation: {v.invariant} not first",
                        f"stopping at the first violation: {v.invariant} first (schedule "
                        + f"{v.schedule}), expected one of {sorted(expected_first.violations)}"))
        elif first.verdict not in ("clean", "violation"):
            out.append((f"first violation: verdict {first.verdict}",
                        f"stopping at the first violation: {first.reason or first.error}"))
    return out


def initially_false(prog):
    it = Interpreter(prog)
    return bool(prog["always"]) and not it.holds(prog["always"]["forbid"], it.initial()[0])


def show_final(final):
    values, deadlocked = final
    text = ", ".join(f"{n} = {v}" for n, v in values)
    return text + (" (deadlock)" if deadlocked else "")


def compare(prog, strategies=("none", "dpor", "bfs")):
    """Explore ``prog`` with each strategy and with the interpreter: what
    differs, per strategy, and dpor's traces against none's."""
    expected = explore(prog)
    expected_first = explore(prog, stop_on_violation=True)
    out = Comparison(prog, expected)
    runs = {}
    for strategy in strategies:
        if strategy == "handover":  # dpor's units of --jobs (the whole tree), each handing over after every 2 executions
            got = racecheck_units(prog, "dpor", 0, handover=2, seed=len(show(prog)))
        else:
            got = racecheck_bfs(prog) if strategy == "bfs" else racecheck_dfs(prog, strategy)
        runs[strategy] = got
        first = None if strategy in ("none", "handover") else racecheck_first(prog, strategy)
        diff = differences(prog, got, expected, first, expected_first)
        if diff and initially_false(prog):
            # racecheck did not check the initial state: one class apart
            diff = [(kind + " [always false initially]", words) for kind, words in diff]
        if diff:
            out.differences[strategy] = diff
        out.executions[strategy] = got["outcome"].stats.executions
    if "none" in runs and "dpor" in runs:
        traces = set(runs["none"]["traces"])
        ran = runs["dpor"]["traces"]
        out.traces = len(traces)
        out.dpor_missed = len(traces - set(ran))
        out.dpor_extra = len(ran) - len(set(ran))
        out.dpor_blocked = runs["dpor"]["blocked"]
        unprobed = set(runs["none"]["unprobed"])
        out.dpor_missed_unprobed = len(unprobed - set(runs["dpor"]["unprobed"]))
        if out.dpor_missed_unprobed:
            words = (f"dpor ran {len(set(ran))} of the {len(traces)} traces; "
                     f"{out.dpor_missed_unprobed} missed beyond probes")
            out.differences.setdefault("dpor traces", []).append(("traces missed", words))
        elif out.dpor_missed:
            words = (f"dpor ran {len(set(ran))} of the {len(traces)} traces; the ones missed differ "
                     f"from one it ran only by a probe (a step that found a request it could not take)")
            out.differences.setdefault("dpor traces", []).append(("traces missed (probes only)", words))
    if "none" in runs and "handover" in runs:
        out.handover_missed = len(set(runs["none"]["unprobed"]) - set(runs["handover"]["unprobed"]))
        if out.handover_missed:
            words = f"the units missed {out.handover_missed} of the traces beyond probes"
            out.differences.setdefault("handover traces", []).append(("traces missed", words))
    return out


# -- shrinking ----------------------------------------------------------------------------

def shrink(prog, fails, budget=400):
    """A smaller program for which ``fails(prog)`` still holds: threads,
    steps, actions and invariants taken out, branches flattened, requests
    turned into labels, while the program stays well-formed."""
    tries = 0
    improved = True
    while improved and tries < budget:
        improved = False
        for candidate in smaller(prog):
            tries += 1
            if tries > budget:
                break
            if well_formed(candidate) and fails(candidate):
                prog, improved = candidate, True
                break
    return prog


def smaller(prog):
    """Programs one simplification away from ``prog``, biggest cuts first."""
    threads = prog["threads"]
    for i in range(len(threads)):
        if len(threads) > 1:
            yield {**prog, "threads": threads[:i] + threads[i + 1:]}
    unused = unreferenced(prog)
    if unused:
        yield {**prog, **{key: tuple(o for o in prog[key] if (o[0] if key in ("vars", "maps") else o)
                                     not in unused)
                          for key in ("vars", "maps", "mutexes", "rwsems")}}
    for k, (name, v) in enumerate(prog["vars"]):
        if v:
            yield {**prog, "vars": prog["vars"][:k] + ((name, 0),) + prog["vars"][k + 1:]}
    for key in ("always", "final"):
        if prog[key]:
            yield {**prog, key: None}
    for i, thread in enumerate(threads):
        for j, (header, actions) in enumerate(thread):
            if len(thread) > 1:
                yield replace_thread(prog, i, thread[:j] + thread[j + 1:])
            if header[0] != "label":
                yield replace_step(prog, i, j, step(actions))
            for k, a in enumerate(actions):
                rest = actions[:k] + actions[k + 1:]
                yield replace_step(prog, i, j, (header, rest))
                if a[0] == "if":
                    for branch in (a[3], a[4]):
                        yield replace_step(prog, i, j, (header, actions[:k] + branch + actions[k + 1:]))
    cond = prog["always"] and prog["always"]["forbid"]
    if cond and len(cond) > 1:
        for k in range(len(cond)):
            yield {**prog, "always": {**prog["always"], "forbid": cond[:k] + cond[k + 1:]}}
    if prog["final"] and len(prog["final"]) > 1:
        for k in range(len(prog["final"])):
            yield {**prog, "final": prog["final"][:k] + prog["final"][k + 1:]}


def replace_thread(prog, i, thread):
    threads = prog["threads"]
    return {**prog, "threads": threads[:i] + (tuple(thread),) + threads[i + 1:]}


def replace_step(prog, i, j, new):
    """``prog`` with step j of thread i replaced (relabelled if it is an
    ordinary step, so that its label says what it now does)."""
    if new[0][0] == "label":
        new = step(new[1])
    thread = prog["threads"][i]
    return replace_thread(prog, i, thread[:j] + (new,) + thread[j + 1:])


def unreferenced(prog):
    """The names of the shared objects nothing in ``prog`` mentions."""
    named = set()

    def mention(actions):
        for a in actions:
            if a[0] == "if":
                mention(a[3])
                mention(a[4])
            else:
                named.update(x for x in a[1:] if isinstance(x, str))

    for thread in prog["threads"]:
        for header, actions in thread:
            named.update(x for x in header[1:2] if header[0] != "label")
            mention(actions)
    for cond in (prog["always"] and prog["always"]["forbid"], prog["final"]):
        named.update(o for o, _, _ in cond or ())
    names = ([n for n, _ in prog["vars"]] + [n for n, _ in prog["maps"]]
             + list(prog["mutexes"]) + list(prog["rwsems"]))
    return set(names) - named


def nth(seed, n, max_steps=8, plain=False, rwsems=0.15):
    """Program ``n`` of ``seed``: generated from ``Random(f"{seed}:{n}")``, so
    that any one can be made again alone."""
    return generate(random.Random(f"{seed}:{n}"), max_steps, plain, rwsems)


def programs(seed, count, max_steps=8, plain=False, rwsems=0.15):
    """Programs 0 to ``count`` - 1 of ``seed``."""
    return [nth(seed, n, max_steps, plain, rwsems) for n in range(count)]


def racecheck_units(prog, reduction, depth, refine=None, wanted=None, handover=None, seed=0, anywhere=False):
    """Explore with racecheck's work units (racecheck/parallel.py), each unit
    in turn in this process, to the end past violations: what
    :func:`racecheck_dfs` returns, over all units together. ``refine(unit)``:
    True for the units to split one step deeper (a split of mixed depths);
    ``wanted``: the units of ``split()`` for that many instead; ``handover``:
    each unit hands over its untried branches after every that many
    executions (racecheck/handover.py, in an order ``seed`` picks; from any
    choice point with untried branches when ``anywhere``)."""
    from racecheck.parallel import units
    from racecheck.scheduler import Bounds, Explorer, trace_signature
    from racecheck.search import Outcome, Stats, Verdict

    model = build(prog)
    finals, traces, unprobed, violations = set(), [], [], set()
    it = Interpreter(prog)
    waits = any(h[0] != "label" for thread in prog["threads"] for h, _ in thread)
    total = Stats()
    verdicts = set()
    found = units(model, reduction, Bounds(), depth)[0]
    if wanted is not None:
        from racecheck.parallel import split
        found = split(model, reduction, Bounds(), wanted)[0]
    if refine is not None:
        from racecheck.parallel import children
        found = [c for u in found for c in (children(model, u, reduction, Bounds())[0] if refine(u) else [u])]
    explorers = []

    def seen(ex, violation):
        finals.add((canonical(prog, ex.rt.snapshot()), any(not t.finished for t in ex.threads)))
        traces.append(trace_signature([e for e in ex.events if e.reads or e.writes]))
        probe = probes(prog, [n.chosen for n in explorers[-1].stack], it) if waits else ()
        unprobed.append(trace_signature([e for e, p in zip(ex.events, probe or [False] * len(ex.events))
                                         if (e.reads or e.writes) and not p]))

    def make(*args, base=Explorer, **kw):
        explorers.append(base(*args, on_execution=seen, stop_on_violation=False, **kw))
        return explorers[-1]

    if handover is not None:
        from racecheck.handover import HandingExplorer, explore_here
        outcomes, found = explore_here(model, reduction, Bounds(), found, handover, seed,
                                       make=lambda *a, **kw: make(*a, base=HandingExplorer, **kw),
                                       anywhere=anywhere)
    else:
        outcomes = [make(model, reduction, Bounds(), unit=unit).run() for unit in found]
    for e in explorers:
        violations |= set(e.violations)
    for outcome in outcomes:
        verdicts.add(outcome.verdict)
        total.executions += outcome.stats.executions
        total.blocked += outcome.stats.blocked
    verdict = Verdict.violation if Verdict.violation in verdicts else (
        Verdict.clean if verdicts <= {Verdict.clean} else sorted(verdicts)[0])
    return {"outcome": Outcome(verdict, total), "finals": finals, "violations": violations,
            "traces": traces, "unprobed": unprobed, "executions": total.executions,
            "blocked": total.blocked}
