"""The JSON schema of scenario files (racecheck/schema.py) agrees with the
loader: the copy the package ships is the one the tables make, every good
file of the corpus passes both, and every bad file of tests/test_bad_input.py
that a schema can judge is refused by both."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner
from test_bad_input import CASES, GOOD, MODEL, MODEL_CASES

from racecheck import schema
from racecheck.cli import main
from racecheck.scenario import ScenarioError, load

ROOT = Path(__file__).resolve().parent.parent
CORPUS = sorted(p for d in ("scenarios", "examples", "docs/examples", "bench") for p in (ROOT / d).glob("*.yaml"))

# The bad files of tests/test_bad_input.py that no schema over the file's
# values can refuse, and why; the loader refuses each of them.
NOT_SCHEMA = {
    # what a YAML parser settles before a schema sees the values
    "yaml does not parse": "not YAML",
    "duplicate key": "a YAML parser keeps the last one",
    "duplicate nested key": "a YAML parser keeps the last one",
    "duplicate operation argument": "a YAML parser keeps the last one",
    "python tag": "a tag", "custom tag": "a tag", "YAML value key '='": "a tag",
    "merge key": "a YAML parser merges the keys",
    "key that is a list": "not a JSON object",
    "nested 1,000 levels deep": "the parser's own depth", "mappings nested 1,000 levels deep": "the parser's own depth",
    "5,000-digit integer": "the parser's own limit", "date that is not one": "a timestamp",
    "lone surrogate": "not a character",
    "timeout nan": "JSON has no NaN", "timeout inf": "JSON has no infinity",
    # what depends on two values at once, or on the files around the scenario
    "offset beyond the file": "depends on max_size",
    "device units": "a product of three keys",
    "range of too many values": "depends on align",
    "where nested too deeply": "the condition's syntax tree",
    "duplicate thread names": "names of two items",
    "edits: a lock the function does not take": "the locks of a function's source",
    "edits: a call the function does not make": "the calls of a function's source",
    "edits: a replacement file that is not there": "a file",
}
NOT_SCHEMA_MODEL = {
    "model a directory": "a file", "sys.exit at import": "the model's code",
    "BaseException at import": "the model's code", "sys.exit in build": "the model's code",
}


@pytest.fixture(scope="module")
def validator():
    return jsonschema.Draft202012Validator(schema.scenario_schema())


def test_the_shipped_schema_is_the_one_the_tables_make():
    # In a process of its own: tests earlier in this one register models'
    # invariants of their own (examples/), which the library's schema has not.
    made = subprocess.run([sys.executable, "-m", "racecheck", "schema"], capture_output=True, text=True,
                          check=True).stdout
    assert schema.SCHEMA_FILE.read_text(encoding="utf-8") == made, (
        "racecheck/scenario.schema.json is out of date: python3 -m racecheck schema -o racecheck/scenario.schema.json")


def test_it_is_a_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(schema.scenario_schema())


def test_every_key_and_argument_says_what_it_is():
    doc = schema.scenario_schema()
    blank = [k for k, v in doc["properties"].items() if not v.get("description")]
    for check in doc["$defs"]["op"]["allOf"]:
        op = check["if"]["properties"]["op"]["const"]
        blank += [f"{op}.{k}" for k, v in check["then"]["properties"].items() if k != "op" and not v.get("description")]
    assert not blank
    names = doc["$defs"]["op"]["properties"]["op"]
    assert len(names["enum"]) == len(names["enumDescriptions"]) and all(names["enumDescriptions"])


@pytest.mark.parametrize("path", CORPUS, ids=[str(p.relative_to(ROOT)) for p in CORPUS])
def test_every_good_file_passes_both(validator, path):
    load(path)
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
              for e in validator.iter_errors(yaml.safe_load(path.read_text()))]
    assert not errors


def test_the_corpus_names_the_schema():
    unstamped = []
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        first = path.read_text().split("\n", 1)[0]
        if not first.startswith(schema.MARK) or \
                (path.parent / first[len(schema.MARK):]).resolve() != schema.SCHEMA_FILE.resolve():
            unstamped.append(path.name)
    assert not unstamped, f"python3 -m racecheck schema --stamp scenarios/*.yaml: {unstamped}"


def _bad(change):
    text = GOOD
    for old, new in (change,) if isinstance(change[0], str) else change:
        text = text.replace(old, new, 1)
    return text


JUDGED = [c for c in CASES if c[0] not in NOT_SCHEMA]


@pytest.mark.parametrize("case,change", [c[:2] for c in JUDGED], ids=[c[0] for c in JUDGED])
def test_a_bad_file_the_schema_can_judge_is_refused_by_both(validator, case, change):
    # (tests/test_bad_input.py checks the loader's refusal: file, line, key, exit 2)
    assert next(validator.iter_errors(yaml.safe_load(_bad(change))), None) is not None


MODEL_JUDGED = [c for c in MODEL_CASES if c[0] not in NOT_SCHEMA_MODEL]


@pytest.mark.parametrize("case,text", [(c[0], c[2]) for c in MODEL_JUDGED], ids=[c[0] for c in MODEL_JUDGED])
def test_a_bad_file_of_a_model_of_your_own_is_refused_by_both(validator, case, text):
    assert next(validator.iter_errors(yaml.safe_load(text)), None) is not None


def test_the_good_files_of_the_bad_input_table_pass(validator, tmp_path):
    assert validator.is_valid(yaml.safe_load(GOOD))
    (tmp_path / "m.py").write_text(MODEL)
    user = "name: u\nmodel: ./m.py\nparams: {n: 2}\nexpect: {verdict: violation, invariant: x_counts_both}\n"
    (tmp_path / "u.yaml").write_text(user)
    load(tmp_path / "u.yaml")
    assert validator.is_valid(yaml.safe_load(user))


def test_what_the_schema_leaves_to_the_loader_is_still_in_the_table():
    assert set(NOT_SCHEMA) <= {c[0] for c in CASES}
    assert set(NOT_SCHEMA_MODEL) <= {c[0] for c in MODEL_CASES}


def test_racecheck_schema_prints_it_and_says_where_it_is():
    out = CliRunner().invoke(main, ["schema"])
    assert out.exit_code == 0 and json.loads(out.output) == schema.scenario_schema()
    out = CliRunner().invoke(main, ["schema", "--path"])
    assert out.exit_code == 0 and Path(out.output.strip()) == schema.SCHEMA_FILE


def test_stamp_names_the_schema_relative_to_the_file(tmp_path):
    path = tmp_path / "deep" / "s.yaml"
    path.parent.mkdir()
    path.write_text(GOOD)
    out = CliRunner().invoke(main, ["schema", "--stamp", str(path)])
    assert out.exit_code == 0 and "stamped" in out.output
    first, rest = path.read_text().split("\n", 1)
    assert rest == GOOD and first.startswith(schema.MARK)
    assert os.path.samefile(path.parent / first[len(schema.MARK):], schema.SCHEMA_FILE)
    assert not schema.stamp(path)  # a second time: nothing to do
    load(path)  # the loader reads the line as the comment it is


def test_files_without_stamp_are_a_usage_error(tmp_path):
    (tmp_path / "s.yaml").write_text(GOOD)
    out = CliRunner().invoke(main, ["schema", str(tmp_path / "s.yaml")])
    assert out.exit_code == 2


# Every key of a file, given a value of each kind: what the schema refuses,
# the loader refuses too (an editor never marks a file racecheck runs).
EVERY_KEY = yaml.safe_load(GOOD) | {
    "description": "d", "reduction": "dpor", "crash": False, "fixes": [],
    "bounds": {"max_preemptions": 2, "max_executions": 100, "max_steps": 100, "timeout": 60},
    "kernel": "4.5", "edits": {"drop": [{"in": "ext2_setsize", "call": "inode_dio_wait"}]},
}
EVERY_KEY["file"] |= {"max_size": 8192, "block_size": 4096, "unit_size": 512, "page_size": 4096,
                      "spare_blocks": 2, "dax": True}
KINDS = [["x"], {"a": 1}, "text", 7, True, 2.5, None, 0, -1, ""]


def _key_paths(doc, prefix=()):
    for k, value in doc.items():
        yield prefix + (k,)
        if isinstance(value, dict):
            yield from _key_paths(value, prefix + (k,))
    if not prefix:
        yield ("threads", 0, "name")
        yield ("threads", 0, "ops", 0, "op")
        yield ("threads", 0, "ops", 0, "offset")
        yield ("threads", 1, "ops", 0, "size")


def test_what_the_schema_refuses_the_loader_refuses(validator, tmp_path):
    path = tmp_path / "s.yaml"

    def loads(doc):
        path.write_text(yaml.safe_dump(doc))
        try:
            load(path)
            return True
        except ScenarioError:
            return False

    assert loads(EVERY_KEY) and validator.is_valid(EVERY_KEY)
    wrong = []
    for keys in _key_paths(EVERY_KEY):
        for value in KINDS:
            doc = copy.deepcopy(EVERY_KEY)
            holder = doc
            for k in keys[:-1]:
                holder = holder[k]
            holder[keys[-1]] = value
            if not validator.is_valid(doc) and loads(doc):
                wrong.append(f"{'.'.join(map(str, keys))}: {value!r}")
    assert not wrong, f"the schema refuses what the loader runs: {wrong}"
