"""lock_order: lockdep's rule, over every explored execution.

Each time a thread takes lock B while it holds lock A, the lock-class graph
gets an edge A -> B, remembered with where it first happened: the thread, its
operation, the step and the request's label, and where A was taken. A cycle
in that graph is a possible deadlock, whether or not any explored execution
deadlocked: the inversion can need a third party (a journal commit) that the
scenario does not run, or a timing no schedule reaches.

Classes are lock names without their index: every ``page_lock[i]`` is one
class ``page_lock``, as lockdep has one class per lock initialisation site.
They include what lockdep cannot see: the page lock, the journal handle
(``jbd2_handle``, from transaction start to stop), superblock freeze
protection (``sb_pagefaults``), ``i_mmap_mutex``, ``i_mutex``, and waits
(``inode_dio_wait`` waits for whoever holds ``i_dio_count``: an edge from
each lock the waiter holds, nothing held after). Two locks of one class
(``page_lock[0]`` then ``page_lock[1]``) give no edge: lockdep needs nesting
annotations there, and the models take pages in index order.

Why the check stays sound under ``dpor``. The runtime records an acquisition
with the locks its thread holds at that moment, and which locks a thread
holds follows from its own steps alone. Two executions of one Mazurkiewicz
trace run the same steps in each thread, each step reading the same values
(it reads the same writes), so each thread takes the same locks while holding
the same others: the two executions give the same edges, only at other
global step numbers. ``dpor`` explores at least one execution of every trace
that ``none`` explores, so the union of edges, and with it every cycle, is the
same. The check only reads this ghost log (``watches`` is empty), so it asks
the reduction to order nothing. ``tests/test_lock_order.py`` compares the
graphs of ``dpor`` and ``none``.

When a violation is reported. (a) At the step where the current
execution's own edges close a cycle (the whole inversion in one schedule:
replaying it shows it again). (b) At the end of an execution that ran to its
end (the ``across`` hook), if edges gathered since the last such check, in
this execution or in earlier ones that deadlocked or were cut short, close a
cycle not reported before in this search. (b) finds inversions that no
single execution shows; its message gives, for the edges of other
executions, the schedule that reached them. The minimiser looks for shorter
counterexamples among executions cut at a depth: they never reach (b), so a
self-contained counterexample wins when there is one. A lock order is no
race between two steps: traces of lock_order name no racing pair.
"""

from __future__ import annotations

from pathlib import Path

from .execution import runs
from .invariants import Invariant, register


def lock_class(name):
    """``page_lock[3]`` -> ``page_lock``."""
    return name.split("[", 1)[0]


def _names(execution):
    return [t.name for t in execution.threads]


def _witness(execution, acq, held):
    """Where an edge was seen: a dict of plain values (it goes into GraphML)."""
    names = _names(execution)
    held_name, held_step, held_label = held
    schedule = [names[e.tid] for e in execution.events] + [names[acq.thread]]
    return {"thread": names[acq.thread], "op": acq.op or "", "step": acq.step,
            "label": acq.label or "", "wait": acq.wait, "lock": acq.lock,
            "held": held_name, "held_step": held_step, "held_label": held_label or "",
            "schedule": schedule[:acq.step]}


def edges_of(execution, start=0):
    """``(A, B, witness)`` for the acquisitions of ``execution`` from index
    ``start`` of its log on: one per lock held at each, classes differing."""
    out = []
    for acq in execution.rt.acquisitions[start:]:
        for held in acq.held:
            a, b = lock_class(held[0]), lock_class(acq.lock)
            if a != b:
                out.append((a, b, acq, held))
    return [(a, b, _witness(execution, acq, held)) for a, b, acq, held in out]


def find_cycle_through(graph, a, b):
    """The cycle ``a -> b -> ... -> a`` of ``graph`` (a list of classes,
    starting at ``a``), or None."""
    import networkx as nx  # only where lock order is checked: it is slow to import
    if a not in graph or b not in graph:
        return None
    try:
        path = nx.shortest_path(graph, b, a)
    except nx.NetworkXNoPath:
        return None
    return [a] + path[:-1]


def cycle_edges(cycle):
    return list(zip(cycle, cycle[1:] + cycle[:1]))


def describe_edge(a, b, w, current=None, schedule=False):
    """One edge of a cycle, as lockdep tells it: who took B while holding A;
    the schedule that reached it when it is not a prefix of ``current`` (or
    always, with ``schedule``)."""
    took = "waited for" if w["wait"] else "took"
    who = f"{w['thread']} ({w['op']})" if w["op"] else w["thread"]
    where = (f"{a} -> {b}: {who} {took} {w['lock']} at step {w['step']}: "
             f"{w['label']}, holding {w['held']} (taken at step {w['held_step']}: {w['held_label']})")
    if schedule:
        where += f"; schedule {runs(w['schedule'])}"
    elif current is not None and w["schedule"] != current[:len(w["schedule"])]:
        where += f"; in another execution, schedule {runs(w['schedule'])}"
    return where


def cycle_message(cycle, witness, current=None):
    """The violation: the cycle, then each edge with its witness."""
    head = " -> ".join(cycle + cycle[:1])
    lines = [f"possible circular locking dependency: {head}"]
    for a, b in cycle_edges(cycle):
        lines.append("  " + describe_edge(a, b, witness(a, b), current))
    return "\n".join(lines)


class LockGraph:
    """What lock_order gathers over one search: the lock-class graph of every
    execution explored (each edge with its first witness) and the cycles
    already reported; and, for the execution being followed, its own edges
    and how far its acquisition log has been read."""

    def __init__(self):
        import networkx as nx  # only where lock order is checked: it is slow to import
        self.graph = nx.DiGraph()  # classes; each edge has its first witness ("witness")
        self.reported = set()  # the cycles reported, as frozensets of edges
        self.pending = []  # edges new to the search since the last check (b)
        self.execution = None  # the execution being followed, its edges, its log read so far
        self.local = None
        self.read = 0

    def cycles(self):
        """Every elementary cycle of the graph gathered so far, each from
        its least class on."""
        import networkx as nx  # only where lock order is checked: it is slow to import
        out = []
        for c in nx.simple_cycles(self.graph):
            k = c.index(min(c))
            out.append(c[k:] + c[:k])
        return sorted(out, key=lambda c: (len(c), c))


@register
class LockOrder(Invariant):
    name = "lock_order"
    description = ("the order in which lock classes are taken (page lock, journal handle, freeze "
                   "protection, i_mmap_mutex, i_mutex, waits) forms no cycle across all explored executions")

    racing_pair = False  # see the module docstring

    def gather(self):
        return LockGraph()

    def watches(self, state):
        return []  # the acquisition log only: see the module docstring

    def after_step(self, state, execution):
        import networkx as nx  # only where lock order is checked: it is slow to import
        g = execution.gathered(self)
        log = execution.rt.acquisitions
        if execution is not g.execution:
            g.execution, g.local, g.read = execution, nx.DiGraph(), 0
        if g.read == len(log):
            return None
        fresh = edges_of(execution, g.read)
        g.read = len(log)
        new_here = []
        for a, b, w in fresh:
            if not g.local.has_edge(a, b):
                g.local.add_edge(a, b, witness=w)
                new_here.append((a, b))
            if not g.graph.has_edge(a, b):
                g.graph.add_edge(a, b, witness=w)
                g.pending.append((a, b))
        for a, b in new_here:
            cycle = find_cycle_through(g.local, a, b)
            if cycle:
                g.reported.add(frozenset(cycle_edges(cycle)))
                return cycle_message(cycle, lambda x, y: g.local.edges[x, y]["witness"])
        return None

    def across(self, state, execution):
        g = execution.gathered(self)
        pending, g.pending = g.pending, []
        current = [execution.threads[e.tid].name for e in execution.events]
        for a, b in pending:
            cycle = find_cycle_through(g.graph, a, b)
            if cycle and frozenset(cycle_edges(cycle)) not in g.reported:
                g.reported.add(frozenset(cycle_edges(cycle)))
                return cycle_message(cycle, lambda x, y: g.graph.edges[x, y]["witness"], current)
        return None


# -- the graph as files (racecheck lockgraph) ----------------------------------------


def marked_edges(graph, cycles):
    return {e for c in cycles for e in cycle_edges(c)}


def to_dot(graph, cycles, title="lock classes"):
    """The lock-class graph in Graphviz's DOT, the edges of cycles in red."""
    on_cycle = marked_edges(graph, cycles)
    lines = [f"digraph {_dot_id(title)} {{", "  rankdir=LR;", "  node [shape=box];"]
    for n in sorted(graph.nodes):
        red = any(n in c for c in cycles)
        lines.append(f"  {_dot_id(n)}" + (" [color=red, fontcolor=red];" if red else ";"))
    for a, b in sorted(graph.edges):
        w = graph.edges[a, b]["witness"]
        label = f"{w['thread']} ({w['op']}) step {w['step']}: {w['label']}"
        style = ", color=red, fontcolor=red, penwidth=2" if (a, b) in on_cycle else ""
        lines.append(f"  {_dot_id(a)} -> {_dot_id(b)} [label={_dot_id(label)}{style}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_id(text):
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_graphml(graph, cycles, path):
    """The graph as GraphML: per edge its witness, and ``cycle`` (true on a
    cycle); per node ``cycle`` too."""
    import networkx as nx  # only where lock order is checked: it is slow to import
    on_cycle = marked_edges(graph, cycles)
    out = nx.DiGraph()
    for n in graph.nodes:
        out.add_node(n, cycle=any(n in c for c in cycles))
    for a, b in graph.edges:
        w = dict(graph.edges[a, b]["witness"])
        w["schedule"] = " ".join(w["schedule"])
        out.add_edge(a, b, cycle=(a, b) in on_cycle, **w)
    nx.write_graphml(out, path)


def write_lock_graph(graph, cycles, stem, title):
    """Write ``stem.dot`` and ``stem.graphml``; returns the two paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    dot, gml = stem.with_name(stem.name + ".dot"), stem.with_name(stem.name + ".graphml")
    dot.write_text(to_dot(graph, cycles, title))
    to_graphml(graph, cycles, gml)
    return dot, gml


def explore_lock_graph(model, reduction="dpor", bounds=None, progress=None):
    """Explore ``model`` to the end, through every violation, with lock_order
    alone; returns ``(the LockGraph gathered, Outcome)``."""
    import copy

    from .scheduler import Explorer

    order = LockOrder()
    m = copy.copy(model)  # the same model, configured to check lock_order alone
    m.invariants = [order]
    explorer = Explorer(m, reduction, bounds, progress=progress, stop_on_violation=False)
    out = explorer.run()
    return explorer.gathered[order], out
