"""Symbolic offsets, lengths and sizes (racecheck/symbolic.py, ranges.py).

The claim to test: a class of parameters (the values that make every
decision of a search come out the same way) gets one verdict, so exploring
one value per class covers the space. The tests hold it against brute force:
every value of small spaces is run concretely, and its outcome must be the
one of the class that contains it, execution for execution. A recorder that
misses a kind of decision must fail that check (the mutants below).
"""

import itertools
import json
import operator
from pathlib import Path

import pytest
import yaml
import z3
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_vocabulary import scenarios as composed_scenarios

from racecheck import symbolic as S
from racecheck.cli import main
from racecheck.models.registry import OPERATIONS
from racecheck.ranges import instantiate
from racecheck.scenario import ScenarioError, load
from racecheck.scheduler import Bounds, Explorer

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
# The races of the corpus whose operations take offsets, lengths and sizes (a
# fixed list: the suite's time does not grow with every scenario added).
CONCRETE = [SCENARIOS / f"{name}.yaml" for name in (
    "buffered_short_copy", "cow_fault_vs_truncate", "cow_fault_vs_truncate_fixed",
    "ext4_convert_zeroes_data", "ext4_convert_zeroes_data_fixed", "fault_alloc_stale", "fault_alloc_stale_fixed",
    "fault_vs_truncate", "fault_vs_truncate_fixed", "hole_page_vs_write_fault",
    "mapwrite_unwritten_extent", "mapwrite_unwritten_extent_fixed", "punch_hole_vs_fault",
    "unaligned_dio_subblock", "unaligned_dio_subblock_fixed", "unaligned_dio_sync", "unaligned_dio_zeroing",
    "unaligned_dio_zeroing_fixed", "unaligned_dio_zeroing_tracking", "xip_io_hole_size", "xip_io_hole_size_fixed",
    "xip_io_new_block_edges", "xip_io_new_block_edges_fixed", "xip_io_read_past_eof", "xip_io_read_past_eof_fixed",
    "xip_read_vs_truncate", "xip_read_vs_truncate_fixed")]

# -- SymInt: the same values as ints, terms that z3 reads the same way ----------------------

OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "//": operator.floordiv,
       "%": operator.mod}
small = st.integers(-5000, 5000)


def z3_value(term, env):
    ctx = S.z3_context()
    subs = [(z3.Int(k, ctx), z3.IntVal(v, ctx)) for k, v in env.items()]
    return z3.simplify(z3.substitute(S.to_z3(term), *subs)).as_long()


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(small, small, st.sampled_from(sorted(OPS)), st.sampled_from(["sym-int", "int-sym", "sym-sym"]))
def test_arithmetic_is_pythons_in_values_terms_and_z3(a, b, op, shape):
    if op in ("//", "%") and b == 0:
        b = 7
    x, y = S.variable("x", a), S.variable("y", b)
    left, right = {"sym-int": (x, b), "int-sym": (a, y), "sym-sym": (x, y)}[shape]
    with S.recording(S.Recorder()):
        got = OPS[op](left, right)
    want = OPS[op](a, b)
    env = {"x": a, "y": b}
    assert S.plain(got) == want
    if S.is_symbolic(got):
        assert S.evaluate(got.term, env) == want
        assert z3_value(got.term, env) == want


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(small, small, st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), st.lists(small, min_size=2, max_size=2))
def test_a_recorded_decision_holds_exactly_where_the_comparison_does(a, b, op, other):
    x, y = S.variable("x", a), S.variable("y", b)
    rec = S.Recorder()
    with S.recording(rec):
        outcome = S.COMPARE[op](x // 3 + 2 * y, y % 5 - 7)
    assert outcome == S.COMPARE[op](a // 3 + 2 * b, b % 5 - 7)
    lits = rec.literals()
    assert len(lits) == 1 and S.holds(lits, {"x": a, "y": b})
    # Elsewhere the literal holds iff the comparison there comes out the same.
    u, v = other
    same = S.COMPARE[op](u // 3 + 2 * v, v % 5 - 7) == outcome
    assert S.holds(lits, {"x": u, "y": v}) == same
    ctx = S.z3_context()
    solver = z3.Solver(ctx=ctx)
    solver.add(z3.Int("x", ctx) == u, z3.Int("y", ctx) == v, S.literal_z3(lits[0]))
    assert (solver.check() == z3.sat) == same


def test_uses_that_need_a_plain_value_record_an_equality_and_arithmetic_records_nothing():
    x = S.variable("x", 3)
    rec = S.Recorder()
    with S.recording(rec):
        y = (x + 5) * 2 - x // 2  # arithmetic: nothing recorded
        assert rec.decisions == {}
        assert [10, 11, 12, 13][x] == 13  # __index__
        assert len(range(x)) == 3 and hash(x) == hash(3) and int(x) == 3
        assert f"unit {x}" == "unit 3" and str(y) == "15"
        assert x & 1 == 1 and x >> 1 == 1 and x << 2 == 12  # a mask is %, shifts are * and //
        assert bool(x - 3) is False
    texts = {S.literal_text(lit) for lit in rec.literals()}
    assert {"x == 3", "2 * x - (x // 2) == 5", "x % 2 == 1", "x // 2 == 1"} <= texts
    assert not isinstance(x, int)  # an int subclass would be indexed without asking


def test_decisions_are_normalised_so_one_question_is_one_decision():
    x, n = S.variable("x", 1024), S.variable("n", 512)
    rec = S.Recorder()
    with S.recording(rec):
        assert (x + n) - x == n  # terms cancel: no parameter involved
        assert x + n <= 2048 and not (x + n > 2048) and 2048 >= n + x
        assert (4096 * (x // 4096)) // 4096 == x // 4096
    assert [S.literal_text(lit) for lit in rec.literals()] == ["x + n <= 2048"]


# -- the concrete scenarios run unchanged with symbolic values ----------------------------------


def symbolise(model):
    """``model`` with every integer argument a parameter at its own value."""
    env, spec = {}, []
    for tname, ops in model.threads_spec:
        new = []
        for i, (op, args) in enumerate(ops):
            a = {}
            for k, v in args.items():
                if isinstance(v, int) and not isinstance(v, bool):
                    name = f"{tname}.op{i + 1}.{k}"
                    env[name] = v
                    v = S.variable(name, v)
                a[k] = v
            new.append((op, a))
        spec.append((tname, new))
    out = instantiate(model, {})
    out.threads_spec = spec
    return out, env


def facts(outcome):
    v = outcome.violation
    return (outcome.verdict, v and v.invariant, v and v.schedule, outcome.stats.executions,
            outcome.stats.steps, outcome.stats.blocked)


@pytest.mark.parametrize("path", CONCRETE, ids=[p.stem for p in CONCRETE])
def test_symbolic_values_explore_exactly_as_the_plain_ones(path):
    sc = load(path)
    plain = Explorer(sc.model, sc.reduction, sc.bounds).run()
    model, env = symbolise(sc.model)
    rec = S.Recorder()
    with S.recording(rec):
        sym = Explorer(model, sc.reduction, sc.bounds).run()
    assert facts(sym) == facts(plain)
    assert S.holds(rec.literals(), env)


# -- classes against brute force ------------------------------------------------------------------


def cross_check(sc, max_values=400, cap=None):
    """Run every value of the space of ``sc`` concretely, then explore its
    classes: each value is in exactly one class, and its search is the
    class's, verdict, invariant, schedule and counts. Returns (classes,
    values), or None when a value needs more than ``cap`` executions or
    makes the model raise (tests/test_vocabulary.py's business)."""
    space = sc.space
    values = list(space.assignments())
    assert 0 < len(values) <= max_values
    bounds = sc.bounds if cap is None else Bounds(max_executions=cap, max_steps=sc.bounds.max_steps)
    concrete = []
    for env in values:
        outcome = Explorer(instantiate(sc.model, env, symbolic_values=False), sc.reduction, bounds).run()
        if cap is not None and outcome.verdict in ("incomplete", "error"):
            return None  # too big for a quick test, or a model error
        concrete.append(facts(outcome))
    out = S.explore_classes(space, sc.model, sc.reduction, sc.bounds, stop_on_violation=False)
    assert out.covered and out.verdict in ("clean", "violation")
    for env, seen in zip(values, concrete):
        home = [c for c in out.classes if c.contains(env)]
        assert len(home) == 1, (env, [c.values for c in home])
        assert seen == facts(home[0].outcome), (env, home[0].values)
    return out, values


def scenario(tmp_path, text, name="s"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return load(path)


TRUNCATE_VS_FAULT = """\
name: truncate_sizes
filesystem: ext2-filemap-xip
file: {size: 8192, blocks: [written, written]}
threads:
  - name: fault
    ops: [{op: xip_file_load, offset: {range: [0, 8191], align: 4096}}]
  - name: truncate
    ops: [{op: truncate, size: {range: [0, 8192], align: 1024}}]
fixes: FIXES
invariants: [no_freed_block_mapped, no_mapping_beyond_eof]
"""


@pytest.mark.parametrize("fixes", ["[]", "[recheck_isize_under_i_mmap_mutex]"])
def test_truncate_sizes_fall_in_fewer_classes_than_values(tmp_path, fixes):
    sc = scenario(tmp_path, TRUNCATE_VS_FAULT.replace("FIXES", fixes))
    out, values = cross_check(sc)
    assert len(out.classes) < len(values)  # fewer interleaving searches than brute force
    verdicts = {c.verdict for c in out.classes}
    assert verdicts == ({"clean"} if "recheck" in fixes else {"clean", "violation"})


def test_the_xip_corpus_space_agrees_with_brute_force():
    out, values = cross_check(load(SCENARIOS / "xip_io_new_block_edges_symbolic.yaml"))
    # Every offset and length reaches a per-unit index of the device: one class each.
    assert len(out.classes) == len(values) == 36
    # Patch 22 as posted breaks exactly the writes that end inside the block.
    for c in out.classes:
        tail = (c.values["writer.offset"] + c.values["writer.len"]) % 4096
        assert (c.verdict == "violation") == (tail != 0), c.values


DIO_PAIR = """\
name: dio_pair
filesystem: ext4
file: {size: 2048, block_size: 2048, page_size: 2048, blocks: [hole], dax: false}
threads:
  - name: aio1
    ops: [{op: dio_write, offset: 0, len: 512, aio: true}]
  - name: aio2
    ops: [{op: dio_write, offset: {range: [0, 2047], align: 512}, len: {range: [512, 2048], align: 512}, aio: true}]
fixes: FIXES
invariants: [no_zero_overwrite]
"""


@pytest.mark.parametrize("fixes", ["[]", "[ext4_serialize_unaligned_aio]"])
def test_dio_spaces_agree_with_brute_force(tmp_path, fixes):
    out, values = cross_check(scenario(tmp_path, DIO_PAIR.replace("FIXES", fixes)))
    assert len(values) == 10
    bad = sorted((c.values["aio2.offset"], c.values["aio2.len"]) for c in out.classes if c.verdict == "violation")
    if fixes == "[]":  # every second write leaves part of the block to zero, except one that rewrites [0, 512)
        assert (0, 512) not in bad and len(bad) == 9
    else:  # serialised, only the aligned write over the whole block still zeroes the first one's data
        assert bad == [(0, 2048)]


# Reads against truncates: whether a read starts below i_size, and whether a
# truncate changes it, are comparisons no index repeats later.
READ_VS_TRUNCATE = """\
name: reads
filesystem: FS
file: {size: 4096, max_size: 8192, blocks: [written, written]}
threads:
  - name: reader
    ops: [{op: read, offset: {range: [0, 8191], align: ALIGN}, len: ALIGN}]
  - name: truncate
    ops: [{op: truncate, size: {range: [0, 8192], align: 2048}}]
invariants: [read_within_eof, no_stale_data, no_lost_write]
"""


def read_vs_truncate(tmp_path, fs, align):
    return scenario(tmp_path, READ_VS_TRUNCATE.replace("FS", fs).replace("ALIGN", str(align)), f"{fs}{align}")


@pytest.mark.parametrize("fs,align", [("ext2", 1024), ("ext4", 2048)])
def test_reads_past_a_truncate_fall_in_fewer_classes_than_values(tmp_path, fs, align):
    out, values = cross_check(read_vs_truncate(tmp_path, fs, align))
    assert len(out.classes) < len(values)
    assert {c.verdict for c in out.classes} == {"clean", "violation"}


def unrecorded(name):
    """A SymInt method that answers from the plain value and records nothing."""
    plain_op = getattr(int, name)
    if name in ("__bool__", "__index__"):
        return lambda self: plain_op(self.value)
    return lambda self, other: plain_op(self.value, S.plain(other)) if isinstance(S.plain(other), int) \
        else NotImplemented


MUTANTS = [
    ("truth tests", ["__bool__"], lambda tmp: read_vs_truncate(tmp, "ext2", 1024)),
    ("order comparisons", ["__lt__", "__le__", "__gt__", "__ge__"], lambda tmp: read_vs_truncate(tmp, "ext4", 2048)),
    ("equality tests", ["__eq__", "__ne__"], lambda tmp: read_vs_truncate(tmp, "ext4", 2048)),
    ("indexing", ["__index__"], lambda tmp: load(SCENARIOS / "xip_io_new_block_edges_symbolic.yaml")),
]


@pytest.mark.parametrize("what,methods,space", MUTANTS, ids=[m[0] for m in MUTANTS])
def test_a_recorder_that_misses_decisions_fails_the_cross_check(tmp_path, monkeypatch, what, methods, space):
    sc = space(tmp_path)
    for name in methods:
        monkeypatch.setattr(S.SymInt, name, unrecorded(name))
    with pytest.raises(AssertionError):
        cross_check(sc)


# Scenarios composed at random from the operation vocabulary (tests/test_vocabulary.py),
# with up to two of their integer arguments turned into small ranges.

@st.composite
def composed_spaces(draw):
    spec = draw(composed_scenarios())
    slots = [(t, i, k) for t, th in enumerate(spec["threads"]) for i, op in enumerate(th["ops"])
             for k, v in op.items() if k in ("offset", "len", "size")]
    for t, i, k in draw(st.lists(st.sampled_from(slots), min_size=1, max_size=2, unique=True)) if slots else []:
        op = spec["threads"][t]["ops"][i]
        v = op[k]
        # a range keeps the argument's own alignment (collapse_range's are whole blocks)
        param = next(p for p in OPERATIONS[op["op"]].params if p.name == k)
        step = 4096 if param.align in ("block", "page") else 512
        lo = max(v - step, step if k == "len" else 0)
        op[k] = {"range": [lo, v + step], "align": step}
    spec["fixes"] = spec["fixes"][:0] if draw(st.booleans()) else spec["fixes"]
    return spec


@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(composed_spaces())
def test_composed_spaces_agree_with_brute_force(tmp_path, spec):
    text = yaml.safe_dump(spec, sort_keys=False)
    try:
        sc = scenario(tmp_path, text)
    except ScenarioError as exc:  # a range reaching past max_size, or a path its release does not model
        assert "max_size" in str(exc) or "beyond" in str(exc) or "is not modelled at kernel" in str(exc), exc
        return
    if sc.space is None or sc.space.size() == 0:
        return
    cross_check(sc, cap=400)


# -- scenario files: what is accepted, what is refused ------------------------------------------

GOOD = """\
name: s
filesystem: ext4
file: {size: 4096, blocks: [hole], dax: false}
threads:
  - name: w1
    ops:
      - {op: dio_write, offset: {range: [0, 4095], align: 512}, len: {one_of: [512, 1024]}, aio: true}
  - name: w2
    ops:
      - {op: dio_write, offset: 2048, len: 512, aio: true}
where: "w1.offset + w1.len <= 2048"
invariants: [no_zero_overwrite]
"""

BAD = [
    ("low above high", ("[0, 4095]", "[4095, 0]"), 7, "range", "low 4095 is above high 0"),
    ("no aligned value", ("{range: [0, 4095], align: 512}", "{range: [1, 100], align: 512}"), 7, "range",
     "holds no multiple of 512"),
    ("align not a multiple of the unit", ("align: 512", "align: 100"), 7, "align",
     "needs offset aligned to the unit size (512 bytes): give align: 512"),
    ("no align for an aligned argument", (", align: 512}", "}"), 7, "offset", "give align: 512"),
    ("past max_size", ("[0, 4095]", "[0, 9000]"), 7, "range", "beyond the file's limit"),
    ("one_of with a string", ("[512, 1024]", "[512, big]"), 7, "one_of", "must be integers"),
    ("one_of misaligned", ("[512, 1024]", "[512, 1000]"), 7, "one_of", "aligned to the unit size"),
    ("range and one_of", ("{one_of: [512, 1024]}", "{one_of: [512], range: [0, 512]}"), 7, "len",
     "give a value"),
    ("unknown key", ("align: 512", "alignment: 512"), 7, "alignment", "did you mean align"),
    ("unknown name in where", ("w1.offset + w1.len", "w1.ofset + w1.len"), 11, "where",
     "no parameter named w1.ofset (did you mean w1.offset"),
    ("true division in where", ("w1.offset + w1.len <= 2048", "w1.offset / 2 <= 2048"), 11, "where",
     "use //"),
    ("where is not a condition", ("w1.offset + w1.len <= 2048", "w1.offset + w1.len"), 11, "where",
     "must be a condition"),
    ("where does not parse", ("w1.offset + w1.len <= 2048", "w1.offset <= <= 2"), 11, "where", "does not parse"),
    ("where without ranges", ("offset: {range: [0, 4095], align: 512}, len: {one_of: [512, 1024]}",
                              "offset: 0, len: 512"), 11, "where", "gives none"),
    ("division by a parameter", ("w1.offset + w1.len <= 2048", "w1.offset // w1.len <= 2"), 11, "where",
     "non-zero integer constant"),
    ("no value satisfies where", ("w1.offset + w1.len <= 2048", "w1.offset + w1.len <= 0"), 11, "where",
     "no assignment of values satisfies"),
]


@pytest.mark.parametrize("case,change,line,key,words", BAD, ids=[b[0] for b in BAD])
def test_bad_ranges_and_where_name_file_line_and_key(tmp_path, case, change, line, key, words):
    old, new = change
    assert old in GOOD
    path = tmp_path / "s.yaml"
    path.write_text(GOOD.replace(old, new, 1))
    out = CliRunner().invoke(main, ["run", str(path)])
    assert out.exit_code == 2, out.output
    assert "Traceback" not in out.output
    assert f"{path}:{line}:" in out.output and key in out.output and words in out.output, out.output


def test_an_argument_taken_twice_by_a_thread_is_named_by_its_operation(tmp_path):
    text = GOOD.replace("      - {op: dio_write, offset: 2048, len: 512, aio: true}",
                        "      - {op: dio_write, offset: {one_of: [0, 2048]}, len: 512}\n"
                        "      - {op: dio_write, offset: {one_of: [0, 2048]}, len: 512}").replace(
        'where: "w1.offset + w1.len <= 2048"', 'where: "w2.op1.offset < w2.op2.offset"')
    sc = scenario(tmp_path, text)
    assert sc.space.names == ["w1.offset", "w1.len", "w2.op1.offset", "w2.op2.offset"]
    assert {(e["w2.op1.offset"], e["w2.op2.offset"]) for e in sc.space.assignments()} == {(0, 2048)}


def test_good_space_and_its_implied_limits(tmp_path):
    sc = scenario(tmp_path, GOOD)
    assert sc.space.names == ["w1.offset", "w1.len"]
    assert [c.text for c in sc.space.constraints] == ["w1.offset + w1.len <= 4096", "w1.offset + w1.len <= 2048"]
    assert sc.space.size() == len([1 for o, n in itertools.product(range(0, 4096, 512), (512, 1024))
                                   if o + n <= 2048])


# -- the command line ----------------------------------------------------------------------------


def run(*args, cwd):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_run_names_the_values_and_replay_uses_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = SCENARIOS / "xip_io_new_block_edges_symbolic.yaml"
    out = run("run", str(path), cwd=tmp_path)
    assert out.exit_code == 1, out.output
    assert "VIOLATION of no_stale_data" in out.output
    assert "parameter class" in out.output and "z3:" in out.output
    doc = json.loads((tmp_path / "traces" / "xip_io_new_block_edges_symbolic.json").read_text())
    values = doc["params"]
    assert f"values: writer.offset = {values['writer.offset']}, writer.len = {values['writer.len']}" in out.output
    assert (values["writer.offset"] + values["writer.len"]) % 4096  # the tail is unaligned
    trace = "traces/xip_io_new_block_edges_symbolic.json"
    again = run("replay", trace, cwd=tmp_path)
    assert again.exit_code == 1 and "the same violation as saved" in again.output
    assert "values: writer.offset" in run("show", trace, cwd=tmp_path).output
    doc["params"]["writer.offset"] = 100
    Path(trace).write_text(json.dumps(doc))
    bad = run("replay", trace, cwd=tmp_path)
    assert bad.exit_code == 2 and "writer.offset = 100 is not in the scenario's range" in bad.output


def test_json_clean_and_incomplete(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "offsets.yaml"
    path.write_text((SCENARIOS / "xip_io_new_block_edges_symbolic_fixed.yaml").read_text()
                    .replace("len: {range: [512, 4096], align: 512}", "len: 512"))
    out = run("run", "--json", str(path), cwd=tmp_path)
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)["symbolic"]
    assert doc["covered"] and doc["classes"] == doc["values_in_space"] == 8
    assert doc["z3_queries"] == 9 and doc["values"] is None
    for budget in (["--max-executions", "50"], ["--timeout", "0.01"]):
        cut = run("run", "--json", *budget, str(path), cwd=tmp_path)
        assert cut.exit_code == 3  # a budget that ends before the space is covered: never clean
        doc = json.loads(cut.output)
        assert doc["verdict"] == "incomplete" and not doc["symbolic"]["covered"]


def test_same_scenario_same_report(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = str(SCENARIOS / "unaligned_dio_zeroing_symbolic.yaml")
    first, second = (json.loads(run("run", "--json", path, cwd=tmp_path).output) for _ in range(2))
    for doc in (first, second):
        doc.pop("elapsed_s")
        doc["symbolic"].pop("z3_s")
    assert first == second


def test_a_read_wholly_past_eof_returns_nothing_beyond_it(tmp_path):
    # Found by exploring reads over a range of offsets: read_within_eof took
    # the zero-byte read at an offset past i_size for bytes returned past it.
    text = READ_VS_TRUNCATE.replace("FS", "ext4").replace("ALIGN", "1024").replace(
        "{range: [0, 8191], align: 1024}", "{range: [4096, 8191], align: 1024}")
    sc = scenario(tmp_path, text)
    out = S.explore_classes(sc.space, sc.model)
    assert out.verdict == "clean" and out.covered
