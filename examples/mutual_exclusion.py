"""Peterson's and Dekker's mutual exclusion, with the spin loops they are
known by: models on which stateless search cannot finish (a thread that
waits spins, step after step, for as long as the other lets it) and
breadth-first search over states does.

``build(params)``: ``algorithm`` is ``peterson``, ``dekker`` or
``peterson_swapped`` (Peterson's with the writes of ``flag[i]`` and ``turn``
in the other order, which lets both threads in); ``rounds`` is how many times
each thread enters its critical section (absent: forever, as the textbook
processes do). Each read of a shared variable is a step of its own.

    peterson(i), j = 1 - i              dekker(i), j = 1 - i
      flag[i] = true                      flag[i] = true
      turn = j                            while (flag[j])
      while (flag[j] && turn == j)          if (turn != i)
        ;                                     flag[i] = false
      critical section                        while (turn != i)
      flag[i] = false                           ;
                                              flag[i] = true
                                          critical section
                                          turn = j
                                          flag[i] = false

The invariant ``mutual_exclusion`` is checked after every step: at most one
thread is in its critical section (``critical[i]`` is set on entry, cleared
on exit).
"""

from types import SimpleNamespace

from racecheck import Invariant, Program, register

ALGORITHMS = ("peterson", "dekker", "peterson_swapped")


def init(rt):
    return SimpleNamespace(flag=rt.array("flag", [False, False]), turn=rt.var("turn", 0),
                           critical=rt.array("critical", [False, False]))


def critical_section(st, i):
    yield f"critical section {i}"
    st.critical.set(i, True)
    yield f"leave critical section {i}"
    st.critical.set(i, False)


def peterson(i, rounds, swapped=False):
    j = 1 - i

    def body(st):
        n = 0
        while rounds is None or n < rounds:
            if swapped:
                yield f"turn = {j}"
                st.turn.set(j)
                yield f"flag[{i}] = true"
                st.flag.set(i, True)
            else:
                yield f"flag[{i}] = true"
                st.flag.set(i, True)
                yield f"turn = {j}"
                st.turn.set(j)
            while True:  # while (flag[j] && turn == j) ;
                yield f"while (flag[{j}] ..."
                if not st.flag.get(j):
                    break
                yield f"... && turn == {j})"
                if st.turn.get() != j:
                    break
            yield from critical_section(st, i)
            yield f"flag[{i}] = false"
            st.flag.set(i, False)
            if rounds is not None:
                n += 1

    return body


def dekker(i, rounds):
    j = 1 - i

    def body(st):
        n = 0
        while rounds is None or n < rounds:
            yield f"flag[{i}] = true"
            st.flag.set(i, True)
            while True:
                yield f"while (flag[{j}])"
                if not st.flag.get(j):
                    break
                yield f"if (turn != {i})"
                if st.turn.get() != i:
                    yield f"flag[{i}] = false"
                    st.flag.set(i, False)
                    while True:
                        yield f"while (turn != {i})"
                        if st.turn.get() == i:
                            break
                    yield f"flag[{i}] = true"
                    st.flag.set(i, True)
            yield from critical_section(st, i)
            yield f"turn = {j}"
            st.turn.set(j)
            yield f"flag[{i}] = false"
            st.flag.set(i, False)
            if rounds is not None:
                n += 1

    return body


@register
class MutualExclusion(Invariant):
    name = "mutual_exclusion"
    description = "at most one thread is in its critical section"

    def watches(self, st):
        return [st.critical]

    def after_step(self, st, execution):
        inside = [i for i, c in enumerate(st.critical.values) if c]
        if len(inside) > 1:
            return f"threads {' and '.join(map(str, inside))} are both in their critical sections"
        return None


def build(params):
    algorithm = params.get("algorithm", "peterson")
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {', '.join(ALGORITHMS)}, not {algorithm!r}")
    rounds = params.get("rounds")
    if algorithm == "dekker":
        bodies = [dekker(i, rounds) for i in (0, 1)]
    else:
        bodies = [peterson(i, rounds, algorithm == "peterson_swapped") for i in (0, 1)]
    return Program(algorithm, init, [(f"P{i}", b) for i, b in enumerate(bodies)],
                   [MutualExclusion()])
