"""Bad input: every mistake names the file, the line and the key, exits 2,
and never shows a traceback, never hangs and never changes the meaning of a
scenario silently."""

import json
import os
import signal
import subprocess
import sys
from contextlib import contextmanager

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

# GOOD on the code patch 01 of seed 002 patches (mm/filemap_xip.c before it):
# the race happens, so a run saves a trace
VIOLATING = GOOD.replace("filesystem: ext2\n", "filesystem: ext2-filemap-xip\n").replace(
    "{op: mmap_load, offset: 4096}", "{op: xip_file_load, offset: 4096}")

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
    # YAML: a repeated key would let the last one win; tags, merge keys, keys that are
    # lists, values nested without end and aliases that expand without end are refused
    ("duplicate key", ("fixes: []\n", "fixes: []\nfixes: [recheck_isize_under_i_mmap_mutex]\n"), 14, "fixes",
     ("duplicate key", "line 13")),
    ("duplicate nested key", ("  size: 8192\n", "  size: 8192\n  size: 4096\n"), 5, "file.size",
     ("duplicate key", "line 4")),
    ("duplicate operation argument", ("{op: truncate, size: 0}", "{op: truncate, size: 0, size: 4096}"), 12,
     "threads[1].ops[0].size", "duplicate key"),
    ("python tag", ("name: t", "name: !!python/object:os.system t"), 1, "name", "!!python/object:os.system"),
    ("custom tag", ("name: t", "name: !foo t"), 1, "name", "the tag !foo is not allowed"),
    ("merge key", ("expect:\n", "expect:\n  <<: {verdict: clean}\n"), 16, "expect", "merge keys (<<)"),
    ("key that is a list", ("  size: 8192\n", "  size: 8192\n  [a, b]: 1\n"), 5, "file", "a key must be"),
    ("nested 1,000 levels deep", ("fixes: []", "fixes: " + "[" * 1000 + "]" * 1000), 13, "fixes", "levels deep"),
    ("mappings nested 1,000 levels deep", ("fixes: []", "fixes: " + "{a: " * 1000 + "1" + "}" * 1000), 13,
     "fixes.a.a", "levels deep"),
    ("alias bomb", ("fixes: []\n", "fixes: []\nlol0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"lol{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 10))), None, "lol",
     "aliases expanded"),
    ("alias inside its own anchor", ("fixes: []", "fixes: &a [*a]"), 13, "fixes", "contains itself"),
    ("lone surrogate", ("name: t", 'name: "\\ud800"'), 1, "name", "surrogate"),
    ("5,000-digit integer", ("size: 8192", "size: " + "9" * 5000), 4, "file.size", "5000 digits"),
    ("date that is not one", ("name: t", "name: 2024-13-45"), 1, "name", "month must be in 1..12"),
    ("YAML value key '='", ("fixes: []", "fixes: ="), 13, "fixes", "must be a list"),
    ("a list where a string goes", ("name: t", "name: [t, {u: 1}]"), 1, "name", "not ['t', {'u': 1}]"),
    ("a list where a condition goes", (("offset: 4096}", "offset: {one_of: [0, 4096]}}"),
                                       ("fixes: []", "fixes: []\nwhere: [[a]]")), 14, "where", "not ['a']"),
    # the built-in model's keys: no value may read as "nothing" by accident
    ("blocks an empty string", ("blocks: [written, written]", 'blocks: ""'), 5, "file.blocks", "must be a list"),
    ("blocks an empty mapping", ("blocks: [written, written]", "blocks: {}"), 5, "file.blocks", "must be a list"),
    ("blocks a string", ("blocks: [written, written]", "blocks: written"), 5, "file.blocks", "must be a list"),
    ("op is a list", ("op: mmap_load", "op: [mmap_load]"), 9, "threads[0].ops[0].op", "must be an operation name"),
    ("op is a mapping", ("op: mmap_load", "op: {name: mmap_load}"), 9, "threads[0].ops[0].op",
     "must be an operation name"),
    ("fix is a list", ("fixes: []", "fixes: [[recheck_isize_under_i_mmap_mutex]]"), 13, "fixes", "must be fix names"),
    ("fix is a mapping", ("fixes: []", "fixes: [{recheck_isize_under_i_mmap_mutex: true}]"), 13, "fixes",
     "must be fix names"),
    ("params to the built-in model", ("fixes: []", "fixes: []\nparams: {threads: 3}"), 14, "params",
     "a model of your own"),
    # limits: nothing a scenario says may make racecheck allocate gigabytes
    ("size 10**30", ("size: 8192", f"size: {10 ** 30}"), 4, "file.size", "at most 1024 blocks"),
    ("max_size 2**40", ("size: 8192", f"size: 8192\n  max_size: {2 ** 40}"), 5, "file.max_size",
     "at most 1024 blocks"),
    ("blocks beyond the limit", ("blocks: [written, written]", "blocks: [" + ", ".join(["hole"] * 1025) + "]"), 5,
     "file.blocks", "at most 1024 blocks"),
    ("spare_blocks huge", ("size: 8192", "size: 8192\n  spare_blocks: 1000000000"), 5, "file.spare_blocks",
     "at most 1024"),
    ("block_size huge", ("size: 8192", f"size: 8192\n  block_size: {2 ** 30}\n  page_size: {2 ** 30}"), 5,
     "file.block_size", "at most 1048576"),
    ("device units", ("size: 8192", "size: 8192\n  unit_size: 1\n  spare_blocks: 100"), 3, "file",
     "at most 65536 units"),
    ("too many threads", ("threads:\n", "threads:\n" + "".join(
        f"  - name: x{i}\n    ops:\n      - {{op: truncate, size: 0}}\n" for i in range(63))), 199, "threads[64]",
     "at most 64 threads"),
    ("too many operations", ("      - {op: truncate, size: 0}\n", "      - {op: truncate, size: 0}\n" * 1001), 1011,
     "threads[1].ops[999]", "at most 1000 operations"),
    ("range of too many values", (("size: 8192", "size: 8192\n  max_size: 4194304"),
                                  ("{op: truncate, size: 0}", "{op: truncate, size: {range: [0, 4194304]}}")), 13,
     "threads[1].ops[0].size.range", "at most 65536 values"),
    ("where of 5,000 terms", (("offset: 4096}", "offset: {one_of: [0, 4096]}}"),
                              ("fixes: []", 'fixes: []\nwhere: "' + " + ".join(["fault.offset"] * 5000) + ' >= 0"')),
     14, "where", "at most 1000 characters"),
    ("where of 5,000 conditions", (("offset: 4096}", "offset: {one_of: [0, 4096]}}"),
                                   ("fixes: []", "fixes: []\nwhere: [" + ", ".join(['"fault.offset >= 0"'] * 5000)
                                    + "]")), 14, "where", "at most 64 conditions"),
    ("where nested too deeply", (("offset: 4096}", "offset: {one_of: [0, 4096]}}"),
                                 ("fixes: []", 'fixes: []\nwhere: "' + "-" * 400 + 'fault.offset >= 0"')),
     14, "where", "nests"),
    # names: the trace file is traces/NAME.json
    ("name with NUL", ("name: t", 'name: "t\\0u"'), 1, "name", "control character"),
    ("name with a slash", ("name: t", "name: ../../x"), 1, "name", "'/'"),
    ("name ..", ("name: t", "name: .."), 1, "name", "must not begin with '.'"),
    ("name of 256 characters", ("name: t", "name: " + "n" * 256), 1, "name", "at most 200 characters"),
    ("empty name", ("name: t", 'name: ""'), 1, "name", "empty"),
    ("empty thread name", ("name: fault", 'name: ""'), 7, "threads[0].name", "empty"),
    ("thread name with a newline", ("name: fault", 'name: "fa\\nult"'), 7, "threads[0].name", "control character"),
    # bounds: what the command line refuses, a file refuses too
    ("max_executions 0", ("fixes: []", "fixes: []\nbounds: {max_executions: 0}"), 14, "bounds.max_executions",
     "at least 1"),
    ("max_steps 0", ("fixes: []", "fixes: []\nbounds: {max_steps: 0}"), 14, "bounds.max_steps", "at least 1"),
    ("timeout nan", ("fixes: []", "fixes: []\nbounds: {timeout: .nan}"), 14, "bounds.timeout",
     "a positive number of seconds"),
    ("timeout inf", ("fixes: []", "fixes: []\nbounds: {timeout: .inf}"), 14, "bounds.timeout",
     "a positive number of seconds"),
    ("timeout negative", ("fixes: []", "fixes: []\nbounds: {timeout: -1}"), 14, "bounds.timeout", "positive"),
    # edits: every name is checked against the library, with a did-you-mean
    ("kernel: not a release", ("fixes: []", "fixes: []\nkernel: latest"), 14, "kernel", "not a kernel release"),
    ("kernel: a list", ("fixes: []", "fixes: []\nkernel: [4.5]"), 14, "kernel", "must be a release"),
    ("kernel: unknown function", ("fixes: []", "fixes: []\nkernel:\n  do_xip_falt: '4.5'"), 15, "kernel.do_xip_falt",
     "did you mean do_xip_fault"),
    ("kernel: a release not modelled", ("fixes: []", "fixes: []\nkernel:\n  do_xip_fault: '9.9'"), 15,
     "kernel.do_xip_fault", "not modelled at release '9.9'"),
    ('edits: unknown key', ("fixes: []", "fixes: []\nedits:\n  dorp: []"), 15, 'edits.dorp', 'did you mean drop'),
    ('edits: unknown function', ("fixes: []", "fixes: []\nedits:\n  drop:\n    - {in: do_xip_falt, lock: i_mmap_mutex}"), 16, 'edits.drop[0].in', 'did you mean do_xip_fault'),
    ('edits: a lock the function does not take', ("fixes: []", "fixes: []\nedits:\n  drop:\n    - {in: ext2_setsize, lock: i_mutex}"), 16, 'edits.drop[0].lock', "ext2_setsize takes no lock 'i_mutex'"),
    ('edits: a call the function does not make', ("fixes: []", "fixes: []\nedits:\n  drop:\n    - {in: ext2_setsize, call: ext4_truncate}"), 16, 'edits.drop[0].call', 'ext2_setsize does not call ext4_truncate'),
    ('edits: drop with call and lock', ("fixes: []", "fixes: []\nedits:\n  drop:\n    - {in: ext2_setsize, call: inode_dio_wait, lock: i_mutex}"), 16, 'edits.drop[0]', 'give one of call'),
    ('edits: a shared mutex', ("fixes: []", "fixes: []\nedits:\n  add_lock:\n    - {lock: m, kind: mutex, shared: [do_xip_fault]}"), 16, 'edits.add_lock[0].shared', 'no shared mode'),
    ("edits: the models' mutex as an rwsem", ("fixes: []", "fixes: []\nedits:\n  add_lock:\n    - {lock: i_mutex, kind: rwsem, exclusive: [do_xip_fault]}"), 16, 'edits.add_lock[0].kind', "is the models' own mutex"),
    ('edits: a new lock without its kind', ("fixes: []", "fixes: []\nedits:\n  add_lock:\n    - {lock: m, exclusive: [do_xip_fault]}"), 16, 'edits.add_lock[0].kind', 'say its kind'),
    ('edits: a lock per page', ("fixes: []", "fixes: []\nedits:\n  add_lock:\n    - {lock: page_lock, kind: mutex, exclusive: [do_xip_fault]}"), 16, 'edits.add_lock[0].lock', 'one lock per page'),
    ('edits: a lock around a function without steps', ("fixes: []", "fixes: []\nedits:\n  add_lock:\n    - {lock: m, kind: mutex, exclusive: [copy_user_bh]}"), 16, 'edits.add_lock[0].exclusive[0]', "runs inside its caller's step"),
    ('edits: a lock around nothing', ("fixes: []", "fixes: []\nedits:\n  add_lock:\n    - {lock: m, kind: mutex}"), 16, 'edits.add_lock[0]', 'names no function'),
    ('edits: a replacement file that is not there', ("fixes: []", "fixes: []\nedits:\n  replace:\n    - {function: do_xip_fault, with: ./nowhere.py:do_xip_fault}"), 16, 'edits.replace[0].with', 'no Python file'),
    ('edits: a replacement without a name', ("fixes: []", "fixes: []\nedits:\n  replace:\n    - {function: do_xip_fault, with: ./mine.py}"), 16, 'edits.replace[0].with', 'FILE.py:NAME'),
]


@contextmanager
def deadline(seconds):
    """Fail instead of hanging: a bad input must be refused at once."""
    def expired(signum, frame):
        raise TimeoutError(f"no answer within {seconds} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def run_cli(*args):
    with deadline(30):
        out = CliRunner().invoke(main, list(args))
    assert out.exception is None or isinstance(out.exception, SystemExit), repr(out.exception)
    return out


def assert_refused(out, path, line, key, words):
    message = out.output
    assert out.exit_code == 2, message
    assert "Traceback" not in message
    assert str(path) in message
    if line is not None:
        assert f"{path}:{line}:" in message
    if key is not None:
        assert key in message
    for w in (words,) if isinstance(words, str) else words:
        assert w in message


@pytest.mark.parametrize("case,change,line,key,words", CASES, ids=[c[0] for c in CASES])
def test_bad_scenario(tmp_path, case, change, line, key, words):
    text = GOOD
    for old, new in (change,) if isinstance(change[0], str) else change:
        assert old in text
        text = text.replace(old, new, 1)
    path = tmp_path / "s.yaml"
    path.write_text(text)
    assert_refused(run_cli("run", str(path)), path, line, key, words)


# (case, the file's bytes, line expected, words expected)
ENCODINGS = [
    ("UTF-16 with its BOM", GOOD.encode("utf-16"), 1, "UTF-16"),
    ("UTF-16 without a BOM", GOOD.encode("utf-16-le"), 1, "UTF-16"),
    ("Latin-1", GOOD.replace("name: fault", "name: fa\u00efle").encode("latin-1"), 7, "not UTF-8"),
    ("a NUL byte", GOOD.replace("fixes: []", "fixes: []\0").encode(), 13, "NUL"),
    ("a control character", GOOD.replace("fixes: []", "fixes: []\x01").encode(), 13, "'\\x01'"),
    ("larger than 1 MiB", (GOOD + "#" * (1 << 20)).encode(), None, "larger than 1 MiB"),
]


@pytest.mark.parametrize("case,data,line,words", ENCODINGS, ids=[c[0] for c in ENCODINGS])
def test_bad_bytes(tmp_path, case, data, line, words):
    path = tmp_path / "s.yaml"
    path.write_bytes(data)
    assert_refused(run_cli("run", str(path)), path, line, None, words)


MODEL = """\
from types import SimpleNamespace
from racecheck.invariants import FinalState
from racecheck.model import Program

def init(rt):
    return SimpleNamespace(x=rt.var("x", 0))

def bump(st):
    yield "load x"
    v = st.x.get()
    yield "store x"
    st.x.set(v + 1)

def build(params):
    return Program("bump", init, [("a", bump), ("b", bump)],
                   [FinalState("x_counts_both", lambda st: st.x.value == 2, "an increment was lost")])
"""
USER = "name: u\nmodel: ./m.py\ninvariants: [deadlock_free]\n"

# (case, the model file's text (None: no file), the scenario, line, key, words)
MODEL_CASES = [
    ("model not a .py file", None, USER.replace("./m.py", "./m.txt"), 2, "model", "a .py file"),
    ("model an empty string", None, USER.replace("./m.py", '""'), 2, "model", "a .py file"),
    ("model /dev/null", None, USER.replace("./m.py", "/dev/null"), 2, "model", "a .py file"),
    ("model a directory", "<dir>", USER, 2, "model", "not a regular file"),
    ("sys.exit at import", "import sys\nsys.exit(0)\n", USER, 2, "model", "SystemExit"),
    ("BaseException at import", "class Stop(BaseException):\n    pass\nraise Stop('no')\n", USER, 2, "model",
     "Stop: no"),
    ("sys.exit in build", "import sys\ndef build(params):\n    sys.exit(0)\n", USER, 2, "model", "SystemExit"),
    ("threads to a user model", MODEL, USER + "threads: [{name: a, ops: [{op: fsync}]}]\n", 4, "threads",
     "the built-in model"),
    ("file to a user model", MODEL, USER + "file: {size: 4096}\n", 4, "file", "the built-in model"),
    ("filesystem to a user model", MODEL, USER + "filesystem: ext4\n", 4, "filesystem", "the built-in model"),
    ("fixes to a user model", MODEL, USER + "fixes: []\n", 4, "fixes", "the built-in model"),
    ("params not a mapping", MODEL, USER + "params: 3\n", 4, "params", "a mapping"),
]


@pytest.mark.parametrize("case,model,text,line,key,words", MODEL_CASES, ids=[c[0] for c in MODEL_CASES])
def test_bad_user_model(tmp_path, case, model, text, line, key, words):
    if model == "<dir>":
        (tmp_path / "m.py").mkdir()
    elif model is not None:
        (tmp_path / "m.py").write_text(model)
    path = tmp_path / "s.yaml"
    path.write_text(text)
    assert_refused(run_cli("run", str(path)), path, line, key, words)


def _fifo(tmp_path):
    path = tmp_path / "s.yaml"
    os.mkfifo(path)
    return path


# Files that never end or block on open: run in a child with a time limit, so
# that the suite can never hang on them.
HAZARDS = [
    ("a FIFO", _fifo, "not a regular file"),
    ("/dev/zero", lambda tmp_path: "/dev/zero", "not a regular file"),
]


@pytest.mark.parametrize("case,make,words", HAZARDS, ids=[c[0] for c in HAZARDS])
def test_scenario_file_that_never_ends(tmp_path, case, make, words):
    path = make(tmp_path)
    out = subprocess.run([sys.executable, "-m", "racecheck.cli", "run", str(path)], capture_output=True,
                         text=True, timeout=60, cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    assert str(path) in out.stderr and words in out.stderr


def test_good_scenario_is_accepted(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(VIOLATING)
    out = CliRunner().invoke(main, ["run", str(path), "--trace-out", str(tmp_path / "t.json")])
    assert out.exit_code == 1


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
    path.write_text(VIOLATING)
    trace = tmp_path / "t.json"
    assert CliRunner().invoke(main, ["run", "--trace-out", str(trace), str(path)]).exit_code == 1
    return path, trace


def test_trace_from_a_changed_scenario(tmp_path):
    path, trace = _saved_trace(tmp_path)
    path.write_text(VIOLATING.replace("fixes: []", "fixes: [recheck_isize_under_i_mmap_mutex]"))
    out = CliRunner().invoke(main, ["replay", str(trace)])
    assert out.exit_code == 2 and "another version of" in out.output


def test_trace_from_another_scenario(tmp_path):
    path, trace = _saved_trace(tmp_path)
    path.write_text(VIOLATING.replace("name: t", "name: u"))
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
