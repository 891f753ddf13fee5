"""Scenario files: YAML in, a checked :class:`Scenario` out.

Every mistake in a file is a :class:`ScenarioError` that names the file, the
line and the key, and says what to do; nothing here lets a traceback through.
The file is read by racecheck/scenario_file.py; its model is built by the
builder it names in racecheck.model.BUILDERS (the kernel library registers
``kernel``, also named ``dax``, the default) or by a model file of the user's.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import math
from dataclasses import dataclass, field
from pathlib import Path

from . import invariants as inv
from . import lockorder, models, ranges  # noqa: F401  (lock_order and the kernel library register themselves)
from .model import BUILDERS, Model
from .scenario_file import (  # noqa: F401  (read from here by the rest of racecheck and by tests)
    MAX_BLOCK_SIZE,
    MAX_DEPTH,
    MAX_DEVICE_UNITS,
    MAX_FILE_BLOCKS,
    MAX_FILE_BYTES,
    MAX_INT_DIGITS,
    MAX_NAME,
    MAX_OPS,
    MAX_SPARE_BLOCKS,
    MAX_THREAD_NAME,
    MAX_THREADS,
    MAX_VALUES,
    ScenarioError,
    Section,
    _plain,
    did_you_mean,
    parse_yaml,
    read_scenario_text,
)
from .scheduler import REDUCTIONS, Bounds

# -- the scenario -------------------------------------------------------------------

# The model a scenario file builds when it names none: the kernel library's
# (racecheck/models/catalogue.py).
DEFAULT_MODEL = "kernel"

# The keys of a scenario file, each with what it says: the loader reads
# these tables, and racecheck/schema.py makes the file's JSON schema of them
# (an editor shows the text on hover).
TOP_KEYS = {
    "name": "The scenario's name; the trace file is named after it (traces/NAME.json).",
    "description": "What the scenario shows, in a sentence or two.",
    "model": "kernel (the built-in model, also named dax; the default) or a .py file of your own, relative "
             "to the scenario, that defines build(params).",
    "filesystem": "The get_block flavour the built-in model runs (racecheck list filesystems); default ext2.",
    "file": "The file's initial state: its size, block geometry and the state of each block.",
    "threads": "The threads, each a name and the operations it runs in order.",
    "fixes": "Named fixes to apply (racecheck list fixes); [] is the code as posted.",
    "invariants": "The invariants to check (racecheck list invariants); a model of your own adds its own.",
    "bounds": "Limits of the search; a run that hits one reports incomplete, never clean.",
    "reduction": "dpor (default: one interleaving of each class of equivalent ones) or none (every "
                 "interleaving).",
    "expect": "What racecheck check and the pytest plugin compare the run with.",
    "params": "A mapping handed to build(params) of a model of your own (model: ./my_model.py).",
    "where": "Conditions between arguments given as ranges or sets of values, in Python syntax over "
             "<thread>.<argument> names: a string, or a list of them.",
    "crash": "true: explore a power failure after every step, and check crash_consistent.",
    "edits": "Locking designs as data: add a lock around kernel functions, drop a call or a lock, replace a "
             "function (docs/edits.md).",
    "kernel": "The kernel release the modelled functions run at: one release (4.5) for all, or a mapping of "
              "functions to releases (racecheck list functions).",
}
BOUND_KEYS = {
    "max_preemptions": "At most this many preemptions in an execution (iterative context bounding).",
    "max_executions": "Stop after this many executions.",
    "max_steps": "At most this many steps in a thread.",
    "timeout": "Stop after this many seconds.",
}
EXPECT_KEYS = {
    "verdict": "clean, violation or incomplete.",
    "invariant": "The invariant a violation breaks (required with verdict: violation).",
}
VERDICTS = ("clean", "violation", "incomplete")


@dataclass
class Scenario:
    name: str
    path: Path
    digest: str  # of the scenario file's text
    model: Model
    models_digest: str  # of the model code it runs on
    description: str = ""
    bounds: Bounds = field(default_factory=Bounds)
    reduction: str = "dpor"
    expect: dict | None = None
    fixes: list = field(default_factory=list)
    invariant_names: list = field(default_factory=list)
    thread_names: list = field(default_factory=list)
    expect_line: int | None = None
    space: object = None  # ranges.Space when arguments are ranges or sets (racecheck/symbolic.py)
    crash: bool = False  # explore a power failure after every step (racecheck/models/crash.py)


def models_digest(extra_files=()):
    """A digest of the racecheck code a counterexample depends on."""
    h = _library_hash().copy()
    for p in [Path(f) for f in extra_files]:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


@functools.cache
def _library_hash():
    """racecheck's own source, hashed once a process (3 ms, at every
    scenario load of a ``check`` otherwise): a process runs the code it
    imported, whatever happens to the files later. A scenario's own files
    (``models_digest``'s ``extra_files``) are read at every load."""
    root = Path(__file__).parent
    h = hashlib.sha256()
    for p in sorted(root.glob("*.py")) + sorted((root / "models").glob("*.py")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h


def load(path):
    """Read and check a scenario file. Raises :class:`ScenarioError`."""
    path = Path(path)
    text = read_scenario_text(path)
    root = Section(path, parse_yaml(text, path), "", TOP_KEYS)
    name = root.get("name", str, required=True)
    problem = name_problem(name, MAX_NAME)
    if problem is None and ("/" in name or "\\" in name):
        problem = "must not hold '/' or '\\'"
    if problem is None and name.startswith("."):
        problem = "must not begin with '.'"
    if problem is not None:
        raise root.error("name", f"{problem}: the trace file is named after it (traces/NAME.json)")
    model_ref = root.get("model", str, DEFAULT_MODEL)
    extra = []
    if model_ref in BUILDERS:
        _check_builtin(root, path)
        model = BUILDERS[model_ref](root, path, name, ranges.parse_arg)
        extra.extend(getattr(model, "source_files", ()))  # files of its own that it runs (edits: replace)
    else:
        model_file = _user_model_file(root, path, model_ref)
        extra.append(model_file)
        model = _load_user_model(root, path, model_file)
    space = ranges.load_space(root, path, model)  # None unless arguments are ranges or sets
    names = _select_invariants(root, path, model)
    crash = root.get("crash", bool, False)
    from .models.crash import configure
    names = configure(root, model, names, crash)
    bounds = _bounds(root, path)
    reduction = root.get("reduction", str, "dpor")
    if reduction not in REDUCTIONS:
        raise root.error("reduction", f"unknown reduction {reduction!r}" + did_you_mean(reduction, REDUCTIONS))
    expect = None
    if root.has("expect"):
        ex = Section(path, root.node("expect"), "expect", EXPECT_KEYS, root.line_of("expect"))
        verdict = ex.get("verdict", str, required=True)
        if verdict not in VERDICTS:
            raise ex.error("verdict", f"unknown verdict {verdict!r}" + did_you_mean(verdict, VERDICTS))
        invariant = ex.get("invariant", str)
        known = set(inv.REGISTRY) | set(names)  # a model of your own may check invariants of its own
        if invariant is not None and invariant not in known:
            raise ex.error("invariant", f"unknown invariant {invariant!r}" + did_you_mean(invariant, known))
        if verdict == "violation" and invariant is None:
            raise ex.error("invariant", "a violation is expected: say of which invariant")
        expect = {"verdict": verdict, "invariant": invariant}
    return Scenario(
        name=name, path=path, digest=hashlib.sha256(text.encode()).hexdigest()[:16],
        model=model, models_digest=models_digest(extra),
        description=root.get("description", str, ""), bounds=bounds, reduction=reduction,
        expect=expect, fixes=list(getattr(model, "fixes", [])), invariant_names=names,
        thread_names=[n for n, _ in getattr(model, "threads_spec", [])],
        expect_line=root.line_of("expect") if root.has("expect") else None, space=space, crash=crash)


def _bounds(root, path):
    b = Bounds()
    if not root.has("bounds"):
        return b
    sec = Section(path, root.node("bounds"), "bounds", BOUND_KEYS, root.line_of("bounds"))
    for key, least in (("max_preemptions", 0), ("max_executions", 1), ("max_steps", 1)):
        value = sec.get(key, int)
        if value is not None:
            if value < least:
                raise sec.error(key, f"must not be negative, not {value}" if least == 0 else
                                f"must be at least {least}, not {value} (leave it out for no bound)")
            setattr(b, key, value)
    timeout = sec.get("timeout", "number")
    if timeout is not None:
        if not math.isfinite(timeout) or timeout <= 0:
            raise sec.error("timeout", f"must be a positive number of seconds, not {timeout} "
                                       f"(leave it out for no time limit)")
        b.timeout = float(timeout)
    return b


def _select_invariants(root, path, model):
    """What is checked: a model's own invariants (a model of your own may
    have some), and the scenario's ``invariants`` added to them, never in
    their place."""
    own = list(getattr(model, "invariants", None) or [])
    names = root.get("invariants", list, None)
    if names is None:
        if own:
            return [i.name for i in own]
        raise ScenarioError(path, root.line, "invariants", "missing required key: list what to check")
    node = root.node("invariants")
    chosen = []
    for item in node.value:
        if not isinstance(item.value, str):
            raise ScenarioError(path, item.line, "invariants", f"must be invariant names, not {_plain(item)!r}")
        if item.value not in inv.REGISTRY:
            raise ScenarioError(path, item.line, "invariants",
                                f"unknown invariant {item.value!r}" + did_you_mean(item.value, inv.REGISTRY))
        chosen.append(item.value)
    have = {i.name for i in own}
    added = [n for n in chosen if n not in have]
    model.invariants = own + inv.select(added)
    return [i.name for i in own] + added


def name_problem(name, limit):
    """What is wrong with a scenario's or a thread's name, or None."""
    if not name.strip():
        return "must not be empty"
    if len(name) > limit:
        return f"is {len(name)} characters long; a name has at most {limit} characters"
    if len(name.encode("utf-8")) > limit:
        return f"is {len(name.encode('utf-8'))} bytes long in UTF-8; a name has at most {limit}"
    bad = next((c for c in name if ord(c) < 32 or 127 <= ord(c) < 160), None)
    if bad is not None:
        return f"holds the control character {bad!r}"
    return None


BUILTIN_KEYS = ("filesystem", "file", "threads", "fixes", "edits", "kernel")


def _check_builtin(root, path):
    """What the built-in model's builder (models/catalogue.py) takes for
    granted: its keys' shapes, and the limits on the file, the threads and
    the operations."""
    if root.has("params"):
        raise root.error("params", "goes to build(params) of a model of your own (model: ./my_model.py); "
                                   f"the built-in model takes {', '.join(BUILTIN_KEYS)}")
    if root.has("file") and isinstance(root.node("file").value, dict):
        _check_file(Section(path, root.node("file"), "file", tuple(root.node("file").value), root.line_of("file")),
                    root)
    fixes = root.node("fixes").value if root.has("fixes") else None
    for item in fixes if isinstance(fixes, list) else ():
        if not isinstance(item.value, str):
            raise ScenarioError(path, item.line, "fixes", f"must be fix names (racecheck list shows them), "
                                                          f"not {_plain(item)!r}")
    threads = root.node("threads").value if root.has("threads") else None
    if not isinstance(threads, list):
        return
    if len(threads) > MAX_THREADS:
        raise ScenarioError(path, threads[MAX_THREADS].line, f"threads[{MAX_THREADS}]",
                            f"a scenario has at most {MAX_THREADS} threads; this one has {len(threads)}")
    count = 0
    for n, thread in enumerate(threads):
        if not isinstance(thread.value, dict):
            continue
        tname = thread.value.get("name")
        if tname is not None and isinstance(tname[1].value, str):
            problem = name_problem(tname[1].value, MAX_THREAD_NAME)
            if problem is not None:
                raise ScenarioError(path, tname[0], f"threads[{n}].name", f"{problem}: a thread's name heads "
                                                                         f"its column and names its parameters")
        ops = thread.value.get("ops")
        for i, op in enumerate(ops[1].value if ops is not None and isinstance(ops[1].value, list) else ()):
            count += 1
            if count > MAX_OPS:
                raise ScenarioError(path, op.line, f"threads[{n}].ops[{i}]",
                                    f"a scenario has at most {MAX_OPS} operations in all its threads")
            if isinstance(op.value, dict) and "op" in op.value and not isinstance(op.value["op"][1].value, str):
                raise ScenarioError(path, op.value["op"][0], f"threads[{n}].ops[{i}].op",
                                    f"must be an operation name (racecheck list shows them), "
                                    f"not {_plain(op.value['op'][1])!r}")


def _check_file(sec, root):
    """The limits on the file and the device: sizes a scenario could give
    would otherwise allocate gigabytes. Values of the wrong type are left
    to the builder, which says so."""
    def given(key, default):
        if not sec.has(key):
            return default
        value = sec.node(key).value
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    blocks = sec.node("blocks").value if sec.has("blocks") else []
    if not isinstance(blocks, list):
        raise sec.error("blocks", f"must be a list of extent states (hole, unwritten, written), one per block, "
                                  f"not {_plain(blocks)!r}")
    if len(blocks) > MAX_FILE_BLOCKS:
        raise sec.error("blocks", f"lists {len(blocks)} blocks; a file has at most {MAX_FILE_BLOCKS} blocks")
    bs, us = given("block_size", 4096), given("unit_size", 512)
    if bs is not None and bs > MAX_BLOCK_SIZE:
        raise sec.error("block_size", f"must be at most {MAX_BLOCK_SIZE} bytes (1 MiB), not {bs}")
    spare = given("spare_blocks", 2)
    if spare is not None and spare > MAX_SPARE_BLOCKS:
        raise sec.error("spare_blocks", f"must be at most {MAX_SPARE_BLOCKS} blocks, not {spare}")
    if bs is None or bs <= 0:
        return
    file_blocks = max(len(blocks), 1)
    for key in ("size", "max_size"):
        value = given(key, 0)
        if value is None:
            continue
        if value > MAX_FILE_BLOCKS * bs:
            raise sec.error(key, f"{value} bytes is beyond the largest file racecheck models: at most "
                                 f"{MAX_FILE_BLOCKS} blocks of block_size ({MAX_FILE_BLOCKS * bs} bytes)")
        file_blocks = max(file_blocks, -(-value // bs))
    if us is None or us <= 0 or bs % us or spare is None or spare < 0:
        return
    units = (file_blocks + spare) * (bs // us)
    if units > MAX_DEVICE_UNITS:
        raise root.error("file", f"the device would hold {units} units (({file_blocks} file blocks + {spare} spare) "
                                 f"x {bs // us} units a block); it holds at most {MAX_DEVICE_UNITS} units: "
                                 f"use a larger unit_size or fewer blocks")


def _user_model_file(root, path, model_ref):
    """The model file a scenario names, checked before anything runs."""
    if not model_ref.endswith(".py"):
        raise root.error("model", f"must be kernel (the built-in model, also named dax) or a .py file of your "
                                  f"own, relative to the scenario (./my_model.py), not {model_ref!r}")
    for key in BUILTIN_KEYS:
        if root.has(key):
            raise root.error(key, f"is for the built-in model (model: kernel); {model_ref} builds its own threads "
                                  f"and state: give it settings through params")
    if root.has("params") and not isinstance(root.node("params").value, dict):
        raise root.error("params", f"must be a mapping (build(params) gets it as a dict), "
                                   f"not {_plain(root.node('params'))!r}")
    model_file = (path.parent / model_ref).resolve()
    if not model_file.exists():
        raise root.error("model", f"no such model file {model_file} (a path relative to the scenario, or 'kernel')")
    if not model_file.is_file():
        raise root.error("model", f"{model_file} is not a regular file: give the model's .py file")
    return model_file


def _load_user_model(root, path, model_file):
    if not model_file.exists():
        raise root.error("model", f"no such model file {model_file} (a path relative to the scenario, or 'kernel')")
    spec = importlib.util.spec_from_file_location(f"racecheck_user_model_{model_file.stem}", model_file)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # the user's file itself is broken, or exits (SystemExit)
        raise root.error("model", f"{model_file} raised {_raised(exc)} while being imported") from None
    build = getattr(module, "build", None)
    if build is None:
        raise root.error("model", f"{model_file} must define build(params) returning a racecheck Model")
    params = _plain(root.node("params")) if root.has("params") else {}
    try:
        model = build(params)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        key = "params" if root.has("params") else "model"
        raise root.error(key, f"build() in {model_file} raised {_raised(exc)}") from None
    if not isinstance(model, Model):
        raise root.error("model", f"build() in {model_file} returned {type(model).__name__}, not a Model")
    own = getattr(model, "invariants", None)
    if not isinstance(own, (list, tuple)) or not all(isinstance(i, inv.Invariant) for i in own):
        raise root.error("model", f"build() in {model_file} returned a model whose invariants are not a list "
                                  f"of racecheck invariants")
    model.fixes = getattr(model, "fixes", [])
    return model


def _raised(exc):
    if isinstance(exc, SystemExit):
        return f"SystemExit({exc.code!r}) (a model must not exit)"
    return f"{type(exc).__name__}: {exc}"

