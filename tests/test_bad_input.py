"""Bad input: every mistake names the file, the line and the key, exits 2,
and never shows a traceback."""

import json

import pytest
from click.testing import CliRunner

from racecheck.cli import main

GOOD = """\
name: t
filesystem: ext2
file:
  size: 8192
  blocks: [written, written]
threads:
  - name: fault
    ops:
      - {op: mmap_load, offset: 4096}
  - name: truncate
    ops:
      - {op: truncate, size: 0}
fixes: []
invariants: [no_freed_block_mapped]
expect:
  verdict: violation
  invariant: no_freed_block_mapped
"""

# (case, text replacement (old, new), line expected, key expected, words expected)
CASES = [
    ("yaml does not parse", ("threads:\n", "threads: [\n"), None, None, "YAML does not parse"),
    ("missing required key", ("name: t\n", ""), 1, "name", "missing required key"),
    ("unknown key", ("fixes: []", "fixess: []"), 13, "fixess", "did you mean fixes"),
    ("wrong type", ("size: 8192", "size: big"), 4, "file.size", "must be an integer"),
    ("unknown operation", ("op: mmap_load", "op: mmap_lod"), 9, "threads[0].ops[0].op", "did you mean mmap_load"),
    ("unknown filesystem", ("filesystem: ext2", "filesystem: ext5"), 2, "filesystem", "(did you mean ext4 or ext3 or ext2?)"),
    ("unknown fix", ("fixes: []", "fixes: [recheck_isize]"), 13, "fixes", "did you mean recheck_isize_under_i_mmap_mutex"),
    ("unknown invariant", ("invariants: [no_freed_block_mapped]", "invariants: [no_freed_blocks_mapped]"),
     14, "invariants", "did you mean no_freed_block_mapped"),
    ("negative size", ("{op: truncate, size: 0}", "{op: truncate, size: -1}"), 12, "size", "must not be negative"),
    ("offset beyond the file", ("offset: 4096", "offset: 8192"), 9, "offset", "beyond the file's limit"),
    ("no threads", ("threads:\n  - name: fault\n    ops:\n      - {op: mmap_load, offset: 4096}\n"
                    "  - name: truncate\n    ops:\n      - {op: truncate, size: 0}\n", "threads: []\n"),
     6, "threads", "at least one thread"),
    ("unknown extent state", ("blocks: [written, written]", "blocks: [written, writen]"), 5, "file.blocks",
     "did you mean written"),
    ("unknown verdict", ("verdict: violation", "verdict: violated"), 16, "expect.verdict", "did you mean violation"),
    ("violation without invariant", ("  invariant: no_freed_block_mapped\n", ""), 15, "expect.invariant",
     "say of which invariant"),
    ("unknown operation argument", ("offset: 4096}", "offset: 4096, lenght: 3}"), 9, "lenght", "unknown key"),
    ("duplicate thread names", ("name: truncate", "name: fault"), 10, "name", "two threads"),
]


@pytest.mark.parametrize("case,change,line,key,words", CASES, ids=[c[0] for c in CASES])
def test_bad_scenario(tmp_path, case, change, line, key, words):
    old, new = change
    assert old in GOOD
    path = tmp_path / "s.yaml"
    path.write_text(GOOD.replace(old, new, 1))
    out = CliRunner().invoke(main, ["run", str(path)])
    assert out.exit_code == 2, out.output
    assert "Traceback" not in out.output
    message = out.output
    assert str(path) in message
    if line is not None:
        assert f"{path}:{line}:" in message
    if key is not None:
        assert key in message
    assert words in message


def test_good_scenario_is_accepted(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(GOOD)
    assert CliRunner().invoke(main, ["run", str(path)]).exit_code == 1


def test_check_without_expect(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(GOOD[:GOOD.index("expect:")])
    out = CliRunner().invoke(main, ["check", str(path)])
    assert out.exit_code == 2
    assert "expect" in out.output and str(path) in out.output


def test_trace_that_is_not_racecheck_s(tmp_path):
    bogus = tmp_path / "t.json"
    bogus.write_text(json.dumps({"hello": 1}))
    out = CliRunner().invoke(main, ["replay", str(bogus)])
    assert out.exit_code == 2 and "not a racecheck trace" in out.output
    bogus.write_text("{not json")
    out = CliRunner().invoke(main, ["show", str(bogus)])
    assert out.exit_code == 2 and "not a racecheck trace" in out.output


def _saved_trace(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(GOOD)
    trace = tmp_path / "t.json"
    assert CliRunner().invoke(main, ["run", "--trace-out", str(trace), str(path)]).exit_code == 1
    return path, trace


def test_trace_from_a_changed_scenario(tmp_path):
    path, trace = _saved_trace(tmp_path)
    path.write_text(GOOD.replace("fixes: []", "fixes: [recheck_isize_under_i_mmap_mutex]"))
    out = CliRunner().invoke(main, ["replay", str(trace)])
    assert out.exit_code == 2 and "another version of" in out.output


def test_trace_from_another_scenario(tmp_path):
    path, trace = _saved_trace(tmp_path)
    path.write_text(GOOD.replace("name: t", "name: u"))
    out = CliRunner().invoke(main, ["replay", str(trace)])
    assert out.exit_code == 2 and "saved from scenario 't'" in out.output


def test_trace_from_other_models_is_noted_and_replayed(tmp_path):
    path, trace = _saved_trace(tmp_path)
    doc = json.loads(trace.read_text())
    doc["models_digest"] = "0" * 16
    trace.write_text(json.dumps(doc))
    out = CliRunner().invoke(main, ["replay", str(trace)])
    assert out.exit_code == 1
    assert "another version of the models" in out.output


def test_trace_that_no_longer_fits(tmp_path):
    path, trace = _saved_trace(tmp_path)
    doc = json.loads(trace.read_text())
    doc["schedule"] = doc["schedule"] + ["fault", "fault"]
    trace.write_text(json.dumps(doc))
    out = CliRunner().invoke(main, ["replay", str(trace)])
    assert out.exit_code == 2
    assert "no longer fits" in out.output
