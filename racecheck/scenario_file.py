"""Reading a scenario file: YAML with the line of every value, within the
limits a scenario file has, and :class:`Section`, which reads the keys of one
mapping. Every mistake is a :class:`ScenarioError` that names the file, the
line and the key. racecheck/scenario.py makes a scenario of what is read; a
model builder (racecheck.model.BUILDERS) reads its own keys through the
sections it is given.
"""

from __future__ import annotations

import os
import stat

import yaml

from .model import did_you_mean


class ScenarioError(Exception):
    def __init__(self, path, line, key, message):
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {key}: {message}" if key else f"{where}: {message}")
        self.path, self.line, self.key, self.message = path, line, key, message


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

    def error_at(self, line, key, message):
        """A ScenarioError at ``line`` of this file, for ``key`` (a dotted key)."""
        return ScenarioError(self.path, line, key, message)

    def section(self, k, allowed):
        """The mapping under key ``k``, read as a Section of its own."""
        return Section(self.path, self.node(k), self.key(k), allowed, self.line_of(k))

    def item(self, node, where, allowed):
        """A mapping that is an item of a list (``where``: ``threads[0]``)."""
        return Section(self.path, node, where, allowed)

    # " (did you mean ...?)" for a name not among ``options``
    did_you_mean = staticmethod(did_you_mean)

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
