"""Scenario files: YAML in, a checked :class:`Scenario` out.

Every mistake in a file is a :class:`ScenarioError` that names the file, the
line and the key, and says what to do; nothing here lets a traceback through.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import invariants as inv
from . import lockorder, models  # noqa: F401  (they register lock_order and the filesystem invariants)
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


# -- limits -------------------------------------------------------------------------
#
# A scenario is a handful of threads on a file of a few blocks; these bound
# what a file can make racecheck read or allocate, far above what any
# scenario needs (README.md, "Limits of scenario files").

MAX_FILE_BYTES = 1 << 20  # a scenario file is at most 1 MiB
MAX_VALUES = 100_000  # values in the file (mappings, lists, scalars), aliases expanded
MAX_DEPTH = 64  # lists and mappings nested in each other
MAX_INT_DIGITS = 64  # an integer literal (sizes have their own limits below)
MAX_NAME = 200  # characters of a scenario's name: the trace file is traces/NAME.json
MAX_THREAD_NAME = 64
MAX_THREADS = 64
MAX_OPS = 1000  # operations of all threads together
MAX_BLOCK_SIZE = 1 << 20  # bytes
MAX_FILE_BLOCKS = 1024  # blocks the file can have (max_size / block_size)
MAX_SPARE_BLOCKS = 1024
MAX_DEVICE_UNITS = 1 << 16  # (file blocks + spare blocks) x units a block


# -- reading the file -----------------------------------------------------------------


def read_scenario_text(path):
    """The file's text: at most :data:`MAX_FILE_BYTES` of UTF-8 from a
    regular file (a FIFO or a device would never end, or never open)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO must not block the open
    except OSError as exc:
        raise ScenarioError(path, None, None, f"cannot read the file: {exc.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                    else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket")
            raise ScenarioError(path, None, None, f"is {kind}, not a regular file: give a scenario file (.yaml)")
        chunks, left = [], MAX_FILE_BYTES + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
    except OSError as exc:
        raise ScenarioError(path, None, None, f"cannot read the file: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise ScenarioError(path, None, None, f"is larger than 1 MiB ({MAX_FILE_BYTES} bytes), the limit of a "
                                              f"scenario file: is this the scenario you meant?")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ScenarioError(path, 1, None, "is UTF-16 text: save it as UTF-8")
    if b"\0" in data:
        line = data.count(b"\n", 0, data.index(b"\0")) + 1
        raise ScenarioError(path, line, None, "holds a NUL byte (is it UTF-16 text?): save it as UTF-8 text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ScenarioError(path, line, None, f"is not UTF-8 text (byte 0x{data[exc.start]:02x} {exc.reason}): "
                                              f"save it as UTF-8") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")  # as text mode reads it


# -- YAML with line numbers -----------------------------------------------------


class Node:
    """A parsed YAML value with the line it came from (1-based)."""

    __slots__ = ("value", "line")

    def __init__(self, value, line):
        self.value = value
        self.line = line


class _Refused(Exception):
    """A limit or a construct refused while reading the YAML."""

    def __init__(self, line, key, message):
        super().__init__(message)
        self.line, self.key, self.message = line, key, message


def _join(path):
    """``threads[0].ops[1].op`` from the keys and indexes leading to a value."""
    out = ""
    for part in path:
        if part is None:  # the root, or a key being read
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return (out if len(out) <= 60 else out[:60] + "...") or None


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, composing at most :data:`MAX_VALUES` values
    nested at most :data:`MAX_DEPTH` deep (its composer recurses)."""

    def __init__(self, text):
        super().__init__(text)
        self.values = 0
        self.path = []  # keys and indexes from the root to the value being composed

    def compose_node(self, parent, index):
        if isinstance(index, int):
            self.path.append(index)
        elif isinstance(index, yaml.ScalarNode):
            self.path.append(index.value)
        else:  # the root, a key, or the value of a key that is not a scalar
            self.path.append(None)
        try:
            self.values += 1
            line = self.peek_event().start_mark.line + 1
            if self.values > MAX_VALUES:
                raise _Refused(line, _join(self.path), f"the file holds more than {MAX_VALUES} values, the "
                                                       f"limit of a scenario file")
            if len(self.path) > MAX_DEPTH:
                raise _Refused(line, _join(self.path), f"lists and mappings nest more than {MAX_DEPTH} levels "
                                                       f"deep, the limit of a scenario file")
            return super().compose_node(parent, index)
        finally:
            self.path.pop()


_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_TAG + t for t in ("str", "int", "float", "bool", "null", "timestamp")}
_KIND = {yaml.ScalarNode: "a value", yaml.SequenceNode: "a list", yaml.MappingNode: "a mapping"}


class _Converter:
    """Composed YAML nodes to :class:`Node` values, aliases expanded (at most
    :data:`MAX_VALUES` values, :data:`MAX_DEPTH` deep), refusing what a
    scenario file has no use for and what would change its meaning
    silently: duplicate keys, merge keys, keys that are lists or mappings,
    tags beyond plain strings, numbers, booleans, lists and mappings."""

    def __init__(self):
        self.values = 0
        self.open = set()  # ids of the lists and mappings being converted (an alias inside its own anchor)
        self.loader = yaml.SafeLoader("")

    def convert(self, node, path):
        line = node.start_mark.line + 1
        self.values += 1
        if self.values > MAX_VALUES:
            raise _Refused(line, _join(path), f"the file holds more than {MAX_VALUES} values with its aliases "
                                              f"expanded, the limit of a scenario file: write fewer aliases (*name)")
        if len(path) >= MAX_DEPTH:
            raise _Refused(line, _join(path), f"lists and mappings nest more than {MAX_DEPTH} levels deep with "
                                              f"aliases expanded, the limit of a scenario file")
        self._check_tag(node, line, path)
        if isinstance(node, yaml.ScalarNode):
            return Node(self._scalar(node, line, path), line)
        if id(node) in self.open:
            raise _Refused(line, _join(path), "an alias (*name) refers to a value that contains itself: "
                                              "it would never end")
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return Node([self.convert(v, path + [i]) for i, v in enumerate(node.value)], line)
            return Node(self._mapping(node, path), line)
        finally:
            self.open.discard(id(node))

    def _mapping(self, node, path):
        out = {}
        for k, v in node.value:
            kline = k.start_mark.line + 1
            if k.tag == _TAG + "merge":
                raise _Refused(kline, _join(path), "merge keys (<<) are not supported: write the keys out")
            if not isinstance(k, yaml.ScalarNode):
                raise _Refused(kline, _join(path), f"a key must be a name (a string or a number), "
                                                   f"not {_KIND[type(k)]}")
            key = self.convert(k, path)
            try:
                hash(key.value)
            except TypeError:
                raise _Refused(kline, _join(path), f"a key must be a name (a string or a number), "
                                                   f"not {key.value!r}") from None
            if key.value in out:
                raise _Refused(kline, _join(path + [key.value]),
                               f"duplicate key: also on line {out[key.value][0]}; YAML would keep the last "
                               f"one silently: keep one")
            out[key.value] = (key.line, self.convert(v, path + [key.value]))
        return out

    def _check_tag(self, node, line, path):
        tag = node.tag
        if isinstance(node, yaml.ScalarNode):
            ok = tag in _SCALAR_TAGS or tag == _TAG + "value"
        else:
            ok = tag == _TAG + ("seq" if isinstance(node, yaml.SequenceNode) else "map")
        if not ok:
            shown = "!!" + tag[len(_TAG):] if tag.startswith(_TAG) else tag
            raise _Refused(line, _join(path), f"the tag {shown} is not allowed on {_KIND[type(node)]}: a scenario "
                                              f"file holds plain strings, numbers, true/false, lists and mappings")

    def _scalar(self, node, line, path):
        if node.tag == _TAG + "value":  # a lone '=' (YAML 1.1's value key): a string here
            return node.value
        if node.tag == _TAG + "int":
            digits = len(node.value.lstrip("+-").replace("_", ""))
            if digits > MAX_INT_DIGITS:
                raise _Refused(line, _join(path), f"an integer of {digits} digits is beyond every limit of a "
                                                  f"scenario file")
        try:
            value = self.loader.construct_object(node)
        except (ValueError, OverflowError, TypeError, yaml.YAMLError) as exc:
            what = node.tag[len(_TAG):]
            raise _Refused(line, _join(path), f"{node.value!r} does not read as a {what}: {exc} "
                                              f"(put it in quotes for a string)") from None
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise _Refused(line, _join(path), f"holds a lone surrogate ({value[exc.start]!r}), which is not "
                                                  f"a character: write the character itself") from None
        return value


def parse_yaml(text, path):
    loader = None
    try:
        loader = _Loader(text)  # (its reader refuses characters YAML does not allow here)
        root = loader.get_single_node()
        if root is None:
            raise ScenarioError(path, 1, None, "the file is empty")
        return _Converter().convert(root, [])
    except _Refused as exc:
        raise ScenarioError(path, exc.line, exc.key, exc.message) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1 if isinstance(exc.position, int) else None
        char = chr(exc.character) if isinstance(exc.character, int) else exc.character
        raise ScenarioError(path, line, None, f"holds the character {char!r}, which YAML does not "
                                              f"allow: remove it") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError(path, line, None, f"YAML does not parse: {problem}") from None
    finally:
        if loader is not None:
            loader.dispose()


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
                raise self.error(k, f"must be an integer, not {_plain(value)!r}")
        elif kind is str:
            if not isinstance(value, str):
                raise self.error(k, f"must be a string, not {_plain(value)!r}")
        elif kind is list:
            if not isinstance(value, list):
                raise self.error(k, f"must be a list, not {_plain(value)!r}")
        elif kind is bool:
            if not isinstance(value, bool):
                raise self.error(k, f"must be true or false, not {_plain(value)!r}")
        elif kind == "number":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self.error(k, f"must be a number, not {_plain(value)!r}")
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
    crash: bool = False  # explore a power failure after every step (racecheck/models/crash.py)


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
    model_ref = root.get("model", str, "dax")
    extra = []
    if model_ref == "dax":
        _check_builtin(root, path)
        model = _build_dax_model(root, path, name)
    else:
        model_file = _user_model_file(root, path, model_ref)
        extra.append(model_file)
        model = _load_user_model(root, path, model_file)
    from . import ranges
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


BUILTIN_KEYS = ("filesystem", "file", "threads", "fixes")


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
        raise root.error("model", f"must be dax (the built-in model) or a .py file of your own, relative to "
                                  f"the scenario (./my_model.py), not {model_ref!r}")
    for key in BUILTIN_KEYS:
        if root.has(key):
            raise root.error(key, f"is for the built-in model (model: dax); {model_ref} builds its own threads "
                                  f"and state: give it settings through params")
    if root.has("params") and not isinstance(root.node("params").value, dict):
        raise root.error("params", f"must be a mapping (build(params) gets it as a dict), "
                                   f"not {_plain(root.node('params'))!r}")
    model_file = (path.parent / model_ref).resolve()
    if not model_file.exists():
        raise root.error("model", f"no such model file {model_file} (a path relative to the scenario, or 'dax')")
    if not model_file.is_file():
        raise root.error("model", f"{model_file} is not a regular file: give the model's .py file")
    return model_file


def _load_user_model(root, path, model_file):
    if not model_file.exists():
        raise root.error("model", f"no such model file {model_file} (a path relative to the scenario, or 'dax')")
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


def _build_dax_model(root, path, name):
    from .models import catalogue
    return catalogue.build_scenario_model(root, path, name)
