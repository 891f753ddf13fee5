"""Scenario files: YAML in, a checked :class:`Scenario` out.

Every mistake in a file is a :class:`ScenarioError` that names the file, the
line and the key, and says what to do; nothing here lets a traceback through.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import invariants as inv
from .model import Model
from .scheduler import REDUCTIONS, Bounds


class ScenarioError(Exception):
    def __init__(self, path, line, key, message):
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {key}: {message}" if key else f"{where}: {message}")
        self.path, self.line, self.key, self.message = path, line, key, message


def did_you_mean(word, options):
    close = difflib.get_close_matches(str(word), list(options), n=3, cutoff=0.5)
    if close:
        return f" (did you mean {' or '.join(close)}?)"
    return f" (known: {', '.join(sorted(options))})" if len(options) <= 12 else ""


# -- YAML with line numbers -----------------------------------------------------


class Node:
    """A parsed YAML value with the line it came from (1-based)."""

    __slots__ = ("value", "line")

    def __init__(self, value, line):
        self.value = value
        self.line = line


def _convert(node):
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out = {}
        for k, v in node.value:
            key = _convert(k)
            out[key.value] = (key.line, _convert(v))
        return Node(out, line)
    if isinstance(node, yaml.SequenceNode):
        return Node([_convert(v) for v in node.value], line)
    return Node(yaml.SafeLoader.construct_object(_LOADER, node), line)


_LOADER = yaml.SafeLoader("")


def parse_yaml(text, path):
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError(path, line, None, f"YAML does not parse: {problem}") from None
    if root is None:
        raise ScenarioError(path, 1, None, "the file is empty")
    return _convert(root)


class Section:
    """A YAML mapping being read: tracks which keys were used and where."""

    def __init__(self, path, node, where, allowed, line=None):
        self.path = path
        self.where = where  # dotted key of this section, for messages
        if not isinstance(node.value, dict):
            raise ScenarioError(path, node.line, where or "scenario", "must be a mapping of keys")
        self.items = node.value
        self.line = line or node.line  # the line of the key that opened this section
        for key, (line, _) in self.items.items():
            if key not in allowed:
                raise ScenarioError(path, line, self.key(key),
                                    "unknown key" + did_you_mean(key, allowed))

    def key(self, k):
        return f"{self.where}.{k}" if self.where else str(k)

    def has(self, k):
        return k in self.items

    def node(self, k):
        return self.items[k][1]

    def line_of(self, k):
        return self.items[k][0] if k in self.items else self.line

    def error(self, k, message):
        return ScenarioError(self.path, self.line_of(k), self.key(k), message)

    def get(self, k, kind, default=None, required=False):
        if k not in self.items:
            if required:
                raise ScenarioError(self.path, self.line, self.key(k), "missing required key")
            return default
        value = self.items[k][1].value
        if kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise self.error(k, f"must be an integer, not {value!r}")
        elif kind is str:
            if not isinstance(value, str):
                raise self.error(k, f"must be a string, not {value!r}")
        elif kind is list:
            if not isinstance(value, list):
                raise self.error(k, f"must be a list, not {_plain(value)!r}")
        elif kind is bool:
            if not isinstance(value, bool):
                raise self.error(k, f"must be true or false, not {value!r}")
        elif kind == "number":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self.error(k, f"must be a number, not {value!r}")
        return value


def _plain(value):
    if isinstance(value, Node):
        return _plain(value.value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, (_, v) in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


# -- the scenario -------------------------------------------------------------------

TOP_KEYS = ("name", "description", "model", "filesystem", "file", "threads", "fixes",
            "invariants", "bounds", "reduction", "expect", "params", "where", "crash")
FILE_KEYS = ("size", "max_size", "block_size", "unit_size", "page_size", "blocks", "spare_blocks")
BOUND_KEYS = ("max_preemptions", "max_executions", "max_steps", "timeout")
EXPECT_KEYS = ("verdict", "invariant")
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
    crash: bool = False  # explore a power failure after every step (racecheck/crash.py)


def models_digest(extra_files=()):
    """A digest of the racecheck code a counterexample depends on."""
    root = Path(__file__).parent
    h = hashlib.sha256()
    files = sorted(root.glob("*.py")) + sorted((root / "models").glob("*.py"))
    for p in list(files) + [Path(f) for f in extra_files]:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def load(path):
    """Read and check a scenario file. Raises :class:`ScenarioError`."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ScenarioError(path, None, None, f"cannot read the file: {exc.strerror}") from None
    root = Section(path, parse_yaml(text, path), "", TOP_KEYS)
    name = root.get("name", str, required=True)
    model_ref = root.get("model", str, "dax")
    extra = []
    if model_ref == "dax":
        model = _build_dax_model(root, path, name)
    else:
        model_file = (path.parent / model_ref).resolve()
        extra.append(model_file)
        model = _load_user_model(root, path, model_file)
    from . import ranges
    space = ranges.load_space(root, path, model)  # None unless arguments are ranges or sets
    names = _select_invariants(root, path, model)
    crash = root.get("crash", bool, False)
    from .crash import configure
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
        if invariant is not None and invariant not in inv.REGISTRY:
            raise ex.error("invariant", f"unknown invariant {invariant!r}" + did_you_mean(invariant, inv.REGISTRY))
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
    for key in ("max_preemptions", "max_executions", "max_steps"):
        value = sec.get(key, int)
        if value is not None:
            if value < 0:
                raise sec.error(key, f"must not be negative, not {value}")
            setattr(b, key, value)
    timeout = sec.get("timeout", "number")
    if timeout is not None:
        if timeout <= 0:
            raise sec.error("timeout", f"must be positive, not {timeout}")
        b.timeout = float(timeout)
    return b


def _select_invariants(root, path, model):
    names = root.get("invariants", list, None)
    if names is None:
        if getattr(model, "invariants", None):
            return [i.name for i in model.invariants]
        raise ScenarioError(path, root.line, "invariants", "missing required key: list what to check")
    node = root.node("invariants")
    chosen = []
    for item in node.value:
        if not isinstance(item.value, str):
            raise ScenarioError(path, item.line, "invariants", f"must be invariant names, not {item.value!r}")
        if item.value not in inv.REGISTRY:
            raise ScenarioError(path, item.line, "invariants",
                                f"unknown invariant {item.value!r}" + did_you_mean(item.value, inv.REGISTRY))
        chosen.append(item.value)
    model.invariants = [i for i in inv.select(chosen)]
    return chosen


def _load_user_model(root, path, model_file):
    if not model_file.exists():
        raise root.error("model", f"no such model file {model_file} (a path relative to the scenario, or 'dax')")
    spec = importlib.util.spec_from_file_location(f"racecheck_user_model_{model_file.stem}", model_file)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's file itself is broken
        raise root.error("model", f"{model_file} raised {type(exc).__name__}: {exc}") from None
    build = getattr(module, "build", None)
    if build is None:
        raise root.error("model", f"{model_file} must define build(params) returning a racecheck Model")
    params = _plain(root.node("params")) if root.has("params") else {}
    try:
        model = build(params)
    except Exception as exc:
        raise root.error("params", f"build() in {model_file} raised {type(exc).__name__}: {exc}") from None
    if not isinstance(model, Model):
        raise root.error("model", f"build() in {model_file} returned {type(model).__name__}, not a Model")
    model.fixes = getattr(model, "fixes", [])
    return model


def _build_dax_model(root, path, name):
    from .models import catalogue
    return catalogue.build_scenario_model(root, path, name)
