"""The JSON schema (draft 2020-12) of scenario files, made from the tables
the loader reads: the keys and what each says (racecheck/scenario.py,
models/catalogue.py, models/edits.py, ranges.py), the operations and their
arguments, the get_block flavours and the fixes (models/registry.py), the
kernel functions and their releases (models/kernel.py), the invariants, and
the limits of a scenario file (scenario_file.py).

An editor with a YAML language server completes keys and names from it,
shows each key's text on hover, and marks what the schema can say is wrong.
The loader stays the judge: what depends on two values at once (an offset
against max_size, a lock a function takes, two threads of one name) only it
checks (docs/scenarios.md, "In an editor").

The package ships the schema as racecheck/scenario.schema.json, so that a
scenario file can name it by path; ``racecheck schema`` prints it from the
tables, and tests/test_schema.py checks that the two are the same.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from . import invariants as inv
from . import ranges
from . import scenario as sc
from . import scenario_file as limits
from .model import BUILDERS
from .models import catalogue, edits
from .models.fs import BLOCK_STATES
from .models.kernel import FUNCTIONS, RELEASE, RELEASES, lock_kinds, release_key
from .scheduler import REDUCTIONS

# The copy the package ships: what a scenario file's
# ``# yaml-language-server: $schema=`` line names.
SCHEMA_FILE = Path(__file__).with_name("scenario.schema.json")

DRAFT = "https://json-schema.org/draft/2020-12/schema"

# The largest byte value any operation argument can take: the file's limit
# (max_size) is at most MAX_FILE_BLOCKS blocks of at most MAX_BLOCK_SIZE.
MAX_BYTES = limits.MAX_FILE_BLOCKS * limits.MAX_BLOCK_SIZE

# A name: no control characters, not blank (scenario_file.name_problem).
_CONTROL = "\\u0000-\\u001f\\u007f-\\u009f"
THREAD_NAME = f"^(?=.*\\S)[^{_CONTROL}]*$"
# and, for a scenario's (the trace file's name), no '/' or '\\', no leading '.'
SCENARIO_NAME = f"^(?!\\.)(?=.*\\S)[^/\\\\{_CONTROL}]*$"


def _names(names, descriptions, what):
    """One of ``names`` (sorted), each with its text for completion."""
    names = sorted(names)
    return {"type": "string", "enum": names, "enumDescriptions": [descriptions(n) for n in names],
            "description": what}


def _integer(least=0, most=None):
    out = {"type": "integer", "minimum": least}
    if most is not None:
        out["maximum"] = most
    return out


def _described(table, shapes):
    """The properties of a mapping whose keys are ``table`` (key -> text):
    each key's shape from ``shapes`` (a key without one is a KeyError, so
    that a key added to a table cannot be left out here)."""
    return {key: {**shapes[key], "description": text} for key, text in table.items()}


def _mapping(table, shapes, required=()):
    out = {"type": "object", "properties": _described(table, shapes), "additionalProperties": False}
    if required:
        out["required"] = list(required)
    return out


# -- operations and their arguments ----------------------------------------------------


def _values():
    """An argument given as a range or a set of values (racecheck/ranges.py)."""
    shapes = {
        "range": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2},
        "align": {"type": "integer", "exclusiveMinimum": 0},
        "one_of": {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1,
                   "maxItems": ranges.MAX_VALUES},
    }
    out = _mapping(ranges.ARG_KEYS, shapes)
    out["oneOf"] = [{"required": ["range"], "not": {"required": ["one_of"]}},
                    {"required": ["one_of"], "not": {"anyOf": [{"required": ["range"]}, {"required": ["align"]}]}}]
    return out


def _param(p):
    text = p.help or p.name
    if p.align:
        text += f"; a multiple of the {p.align} size"
    if not p.required:
        text += f" (optional, default {json.dumps(p.default)})"
    if p.kind == "choice":
        return {"enum": list(p.choices), "description": text}
    if p.kind == "bool":
        return {"type": "boolean", "description": text}
    number = _integer(0, MAX_BYTES if p.kind == "bytes" else None)
    return {"anyOf": [number, {"$ref": "#/$defs/values"}],
            "description": text + ", or {range: [low, high], align: N} or {one_of: [...]} to explore each"}


def _operation():
    """An item of a thread's ``ops``: ``op`` names the operation, whose
    arguments decide the other keys."""
    ops = catalogue.OPERATIONS
    out = {"type": "object", "required": ["op"],
           "properties": {"op": _names(ops, lambda n: ops[n].description,
                                       "The operation (racecheck list operations).")},
           "allOf": []}
    for name in sorted(ops):
        params = ops[name].params
        then = {"properties": {"op": True, **{p.name: _param(p) for p in params}}, "additionalProperties": False}
        needed = [p.name for p in params if p.required]
        if needed:
            then["required"] = needed
        out["allOf"].append({"if": {"properties": {"op": {"const": name}}, "required": ["op"]}, "then": then})
    return out


# -- kernel functions, releases and edits -------------------------------------------------


def _releases(name):
    """The releases a ``kernel:`` mapping can give ``name``: as strings, and
    as the YAML numbers that read back as the same string (4.5, not 4.10)."""
    out = []
    for r in sorted(RELEASES[name], key=release_key):
        out.append(r)
        number = int(r) if r.isdigit() else float(r) if r.replace(".", "", 1).isdigit() else None
        if number is not None and str(number) == r:
            out.append(number)
    return out


def _kernel():
    release = {"type": "string", "pattern": f"^{RELEASE.pattern}$"}
    per_function = {name: {"enum": _releases(name), "description": f"{FUNCTIONS[name].file}: the releases modelled"}
                    for name in sorted(RELEASES)}
    return {"anyOf": [release, {"type": "number", "minimum": 0},
                      {"type": "object", "properties": per_function, "additionalProperties": False}]}


def _functions(steps_only=False):
    names = [n for n, f in FUNCTIONS.items() if f.steps or not steps_only]
    what = ("A kernel function that takes steps (racecheck list functions)" if steps_only
            else "A kernel function (racecheck list functions).")
    return _names(names, lambda n: f"{FUNCTIONS[n].file}, {FUNCTIONS[n].version}", what)


def _add_lock():
    kinds = lock_kinds()
    one_or_more = {"anyOf": [{"$ref": "#/$defs/step_function"},
                             {"type": "array", "items": {"$ref": "#/$defs/step_function"}}]}
    shapes = {
        "lock": {"type": "string", "pattern": edits.NAME.pattern,
                 "not": {"enum": sorted(k for k, kind in kinds.items() if kind not in edits.KINDS)}},
        "kind": {"enum": list(edits.KINDS)},
        "shared": one_or_more,
        "exclusive": one_or_more,
    }
    out = _mapping(edits.ADD_LOCK_KEYS, shapes, required=("lock",))
    names_some = {"anyOf": [{"type": "string"}, {"type": "array", "minItems": 1}]}
    out["anyOf"] = [{"required": ["shared"], "properties": {"shared": names_some}},
                    {"required": ["exclusive"], "properties": {"exclusive": names_some}}]
    existing = sorted(k for k, kind in kinds.items() if kind in edits.KINDS)
    rules = [{"if": {"properties": {"lock": {"enum": existing}}, "required": ["lock"]},
              "else": {"required": ["kind"]}}]
    for kind in edits.KINDS:  # a lock the models take keeps its kind
        mine = sorted(k for k in existing if kinds[k] == kind)
        rules.append({"if": {"properties": {"lock": {"enum": mine}}, "required": ["lock"]},
                      "then": {"properties": {"kind": {"const": kind}}}})
    no_shared = {"properties": {"shared": {"type": "array", "maxItems": 0}}}
    rules.append({"if": {"properties": {"kind": {"const": "mutex"}}, "required": ["kind"]}, "then": no_shared})
    rules.append({"if": {"properties": {"lock": {"enum": sorted(k for k in existing if kinds[k] == "mutex")}},
                         "required": ["lock"]}, "then": no_shared})
    out["allOf"] = rules
    return out


def _edits():
    function = {"$ref": "#/$defs/function"}
    drop = _mapping(edits.DROP_KEYS, {"in": function, "call": function, "lock": {"type": "string"}},
                    required=("in",))
    drop["oneOf"] = [{"required": ["call"]}, {"required": ["lock"]}]
    replacement = {"anyOf": [function, {"type": "string", "pattern": "^.*\\.py:[^:]+$"}]}
    replace = _mapping(edits.REPLACE_KEYS, {"function": function, "with": replacement},
                       required=("function", "with"))
    shapes = {"add_lock": {"type": "array", "items": _add_lock()},
              "drop": {"type": "array", "items": drop},
              "replace": {"type": "array", "items": replace}}
    return _mapping(edits.EDIT_KEYS, shapes)


# -- the file -------------------------------------------------------------------------------


def _top_shapes():
    string = {"type": "string"}
    file = _mapping(catalogue.FILE_KEYS, {
        "size": _integer(0, MAX_BYTES),
        "max_size": _integer(0, MAX_BYTES),
        "block_size": _integer(1, limits.MAX_BLOCK_SIZE),
        "unit_size": _integer(1, limits.MAX_BLOCK_SIZE),
        "page_size": _integer(1, limits.MAX_BLOCK_SIZE),
        "blocks": {"type": "array", "maxItems": limits.MAX_FILE_BLOCKS, "items": {"enum": list(BLOCK_STATES)}},
        "spare_blocks": _integer(0, limits.MAX_SPARE_BLOCKS),
        "dax": {"type": "boolean"},
    }, required=("size",))
    thread = _mapping(catalogue.THREAD_KEYS, {
        "name": {"type": "string", "maxLength": limits.MAX_THREAD_NAME, "pattern": THREAD_NAME},
        "ops": {"type": "array", "minItems": 1, "maxItems": limits.MAX_OPS, "items": {"$ref": "#/$defs/op"}},
    }, required=("name", "ops"))
    bounds = _mapping(sc.BOUND_KEYS, {
        "max_preemptions": _integer(0), "max_executions": _integer(1), "max_steps": _integer(1),
        "timeout": {"type": "number", "exclusiveMinimum": 0},
    })
    expect = _mapping(sc.EXPECT_KEYS, {"verdict": {"enum": list(sc.VERDICTS)}, "invariant": string},
                      required=("verdict",))
    expect["if"] = {"properties": {"verdict": {"const": "violation"}}, "required": ["verdict"]}
    expect["then"] = {"required": ["invariant"]}
    condition = {"type": "string", "maxLength": ranges.MAX_CONDITION_CHARS}
    return {
        "name": {"type": "string", "maxLength": limits.MAX_NAME, "pattern": SCENARIO_NAME},
        "description": string,
        "model": {"anyOf": [{"enum": sorted(BUILDERS)}, {"type": "string", "pattern": "\\.py$"}]},
        "filesystem": _names(catalogue.FLAVOURS, lambda n: catalogue.FLAVOURS[n][1], sc.TOP_KEYS["filesystem"]),
        "file": file,
        "threads": {"type": "array", "minItems": 1, "maxItems": limits.MAX_THREADS, "items": thread},
        "fixes": {"type": "array",
                  "items": _names(catalogue.FIXES, catalogue.FIXES.get, "A fix (racecheck list fixes).")},
        "invariants": {"type": "array", "items": string},
        "bounds": bounds,
        "reduction": {"enum": list(REDUCTIONS)},
        "expect": expect,
        "params": {"type": "object"},
        "where": {"anyOf": [condition, {"type": "array", "maxItems": ranges.MAX_CONDITIONS, "items": condition}]},
        "crash": {"type": "boolean"},
        "edits": _edits(),
        "kernel": _kernel(),
    }


def _rules():
    """What holds between the top-level keys: a model of your own takes
    params and none of the built-in model's keys; the built-in model takes
    no params, needs a file, threads and invariants, and knows its
    invariants by name; crash_consistent needs crash: true."""
    library = inv.library()
    invariant = _names(library, lambda n: library[n].description, "An invariant (racecheck list invariants).")
    own_model = {"properties": {"model": {"type": "string", "pattern": "\\.py$"}}, "required": ["model"]}
    builtin = {"required": ["file", "threads", "invariants"],
               "properties": {"params": False, "invariants": {"items": invariant},
                              "expect": {"properties": {"invariant": invariant}}}}
    crash = {"if": {"properties": {"invariants": {"contains": {"const": "crash_consistent"}}},
                    "required": ["invariants"]},
             "then": {"properties": {"crash": {"const": True}}, "required": ["crash"]}}
    return [{"if": own_model, "then": {"properties": {k: False for k in sc.BUILTIN_KEYS}}, "else": builtin},
            crash]


def scenario_schema():
    """The schema, as a dict."""
    out = {
        "$schema": DRAFT,
        "title": "racecheck scenario",
        "description": "A racecheck scenario: a model, the threads and their operations, the fixes, the "
                       "invariants to check, the bounds and what is expected (docs/scenarios.md).",
        "type": "object",
        "required": ["name"],
        "properties": _described(sc.TOP_KEYS, _top_shapes()),
        "additionalProperties": False,
        "allOf": _rules(),
        "$defs": {"op": _operation(), "values": _values(), "function": _functions(),
                  "step_function": _functions(steps_only=True)},
    }
    return out


def schema_text():
    """The schema as the package ships it: JSON, two spaces an indent."""
    return json.dumps(scenario_schema(), indent=2, ensure_ascii=False) + "\n"


# -- naming it in a scenario file ---------------------------------------------------------

MARK = "# yaml-language-server: $schema="


def stamp(path, schema=SCHEMA_FILE):
    """Give the scenario file ``path`` a first line that names ``schema``
    for a YAML language server, by a path relative to the file (a line
    already there is brought up to date). Returns True when the file changed."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    target = Path(os.path.relpath(Path(schema).resolve(), path.resolve().parent)).as_posix()
    line = f"{MARK}{target}\n"
    first, rest = text.split("\n", 1) if "\n" in text else (text, "")
    new = line + rest if first.startswith(MARK) else line + text
    if new == text:
        return False
    path.write_text(new, encoding="utf-8")
    return True
