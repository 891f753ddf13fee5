"""The three layers of racecheck import one way, and no module imports itself
back through others: the engine imports nothing from the kernel library or the
front; the kernel library (racecheck/models/) imports only the engine; the
front imports both. Imports are read from the source (every ``import``,
including those inside functions), so a lazy import counts as much as one at
the top of a module."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parent.parent / "racecheck"

ENGINE, KERNEL, FRONT = "engine", "kernel library", "front"

# A module's layer is that of its own name here, else its package's.
LAYERS = {
    "racecheck": ENGINE,  # the user model API, loaded lazily from the engine
    "racecheck.models": KERNEL,
    "racecheck.rt": ENGINE,
    "racecheck.runtime": ENGINE,
    "racecheck.execution": ENGINE,
    "racecheck.scheduler": ENGINE,
    "racecheck.minimise": ENGINE,
    "racecheck.fewest": ENGINE,
    "racecheck.search": ENGINE,
    "racecheck.happens_before": ENGINE,
    "racecheck.strategies": ENGINE,
    "racecheck.transitions": ENGINE,
    "racecheck.fingerprint": ENGINE,
    "racecheck.timelimit": ENGINE,
    "racecheck.model": ENGINE,
    "racecheck.invariants": ENGINE,
    "racecheck.lockorder": ENGINE,
    "racecheck.symbolic": ENGINE,
    "racecheck.scenario": FRONT,
    "racecheck.scenario_file": FRONT,
    "racecheck.ranges": FRONT,
    "racecheck.runner": FRONT,
    "racecheck.parallel": ENGINE,
    "racecheck.cluster": FRONT,
    "racecheck.parallel_bfs": ENGINE,
    "racecheck.parallel_classes": ENGINE,
    "racecheck.handover": ENGINE,
    "racecheck.suggest": FRONT,
    "racecheck.trace": FRONT,
    "racecheck.report": FRONT,
    "racecheck.viewer": FRONT,
    "racecheck.cli": FRONT,
    "racecheck.checkrun": FRONT,
    "racecheck.ciformats": FRONT,
    "racecheck.junit": FRONT,
    "racecheck.progress": FRONT,
    "racecheck.__main__": FRONT,
    "racecheck.pytest_plugin": FRONT,
    "racecheck.schema": FRONT,
}


def modules():
    """Module name -> source path, for every module of the package."""
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def layer(name):
    """The layer of module ``name``; KeyError when the table has none for it."""
    if name in LAYERS:
        return LAYERS[name]
    package = name.rpartition(".")[0]
    if package and package != "racecheck":
        return layer(package)
    raise KeyError(name)


def imports(name, path, known):
    """The package modules that ``name`` imports, anywhere in its source.
    ``from P import X`` is an import of the module P.X when there is one,
    else of P."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in known else source
                       for a in node.names]
        else:
            continue
        for target in targets:
            # import a.b.c names a.b.c; the nearest module of the package
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def graph():
    known = modules()
    g = nx.DiGraph()
    for name, path in known.items():
        g.add_node(name)
        for target in imports(name, path, known):
            g.add_edge(name, target)
    return g


def layered_edges():
    """Every import between two modules with a layer, with both layers."""
    for a, b in graph().edges:
        la, lb = _layer_or_none(a), _layer_or_none(b)
        if la is not None and lb is not None:
            yield a, la, b, lb


def test_every_module_has_a_layer():
    missing = [m for m in modules() if _layer_or_none(m) is None]
    assert not missing, f"modules with no layer in LAYERS: {missing}"


def _layer_or_none(name):
    try:
        return layer(name)
    except KeyError:
        return None


def test_engine_imports_no_kernel_or_front():
    bad = sorted(f"{a} imports {b} ({lb})" for a, la, b, lb in layered_edges()
                 if la == ENGINE and lb != ENGINE)
    assert not bad, "the engine imports from the layers above it:\n" + "\n".join(bad)


def test_kernel_imports_no_front():
    bad = sorted(f"{a} imports {b}" for a, la, b, lb in layered_edges()
                 if la == KERNEL and lb == FRONT)
    assert not bad, "the kernel library imports from the front:\n" + "\n".join(bad)


def test_no_import_cycles():
    cycles = sorted(sorted(c) for c in nx.strongly_connected_components(graph()) if len(c) > 1)
    assert not cycles, "modules that import each other: " + "; ".join(", ".join(c) for c in cycles)
