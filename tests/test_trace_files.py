"""Trace files: a corrupted trace is refused by `replay`, `show` and `view`
with exit status 2 and a message naming the file and the field, never a
traceback; a replay that does not reproduce what the trace reports is a
mismatch; a model that raises is saved as a trace like a violation; and every
trace racecheck saves replays to the violation it reports."""

import copy
import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from racecheck import runner
from racecheck.cli import main
from racecheck.scenario import load
from racecheck.scheduler import Counterexample

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "fault_vs_truncate.yaml"
COMMANDS = ("replay", "show", "view")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """fault_vs_truncate's trace, saved by `racecheck run --trace-out`:
    (its path, its text, its document)."""
    path = tmp_path_factory.mktemp("trace") / "fault_vs_truncate.json"
    out = CliRunner().invoke(main, ["run", str(SCENARIO), "--trace-out", str(path)])
    assert out.exit_code == 1, out.output
    text = path.read_text()
    return path, text, json.loads(text)


def invoke(command, trace, tmp_path):
    args = [command, str(trace)]
    if command == "view":
        args += ["-o", str(tmp_path / "page.html")]
    return CliRunner().invoke(main, args)


def no_traceback(result, model_traceback=False):
    """Neither an exception escaped (click's runner catches it) nor a
    traceback was printed (but the model's own, from a trace of a model that
    raised, when ``model_traceback``)."""
    escaped = result.exception is not None and not isinstance(result.exception, SystemExit)
    assert not escaped, f"{type(result.exception).__name__}: {result.exception}\n{result.output}"
    if not model_traceback:
        assert "Traceback" not in result.output, result.output


# -- the table: one corruption per row, each tried with replay, show and view ---------------------


def put(path, value):
    """Set the entry at ``path`` (keys and indices) to ``value``."""
    def mutate(doc):
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return doc
    return mutate


def drop(path):
    def mutate(doc):
        node = doc
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
        return doc
    return mutate


class Raw:
    """A corruption of the file's text: the new text (str or bytes), or a
    function of the saved text giving it."""

    def __init__(self, make):
        self.make = make

    def __call__(self, saved_text):
        return self.make(saved_text) if callable(self.make) else self.make


text = Raw


def rename_thread(doc):
    """Every mention of thread fault spelt faulter: a self-consistent trace
    of a model without that thread."""
    def swap(v):
        return "faulter" if v == "fault" else v
    doc["threads"] = [swap(t) for t in doc["threads"]]
    doc["schedule"] = [swap(t) for t in doc["schedule"]]
    doc["race_reversed_schedule"] = [swap(t) for t in doc["race_reversed_schedule"]]
    for s in doc["steps"]:
        s["thread"] = swap(s["thread"])
        for w in s["waiting"]:
            w["thread"] = swap(w["thread"])
            w["held_by"] = [swap(h) for h in w["held_by"]]
    rev = doc["race_reversed"]
    rev["schedule"] = [swap(t) for t in rev["schedule"]]
    for s in rev["steps"]:
        s["thread"] = swap(s["thread"])
        for w in s["waiting"]:
            w["thread"] = swap(w["thread"])
    for t in doc["final_threads"]:
        t["thread"] = swap(t["thread"])
        if t["waits_for"]:
            t["waits_for"]["on"] = [swap(h) for h in t["waits_for"]["on"]]
    return doc


def steps_changed(i):
    """Index of the ``i``-th step (0-based) that changes something."""
    def find(doc):
        return [k for k, s in enumerate(doc["steps"]) if s["changes"]][i]
    return find


def on_changes(mutation):
    def mutate(doc):
        k = steps_changed(0)(doc)
        return mutation(doc["steps"][k]["changes"], k, doc)
    return mutate


# (id, mutation, words the message must hold). A mutation takes the document
# (a copy) and returns it, or is a Raw change of the file's text.
# Words may name ``{k}``, filled with the index of the first step with changes.
FIELD_ERRORS = [
    # not JSON
    ("not_json", text("{not json"), "not JSON"),
    ("half_the_file", text(lambda t: t[:len(t) // 2]), "not JSON"),
    ("empty_file", text(""), "not JSON"),
    ("not_utf8", text(b"\xff\xfe{\x00\x81"), "UTF-8"),
    ("nested_too_deep", text("[" * 100_000 + "]" * 100_000), "not JSON"),
    ("number_of_5000_digits", text(lambda t: t.replace('"preemptions": 1', '"preemptions": ' + "9" * 5000)),
     "not JSON"),
    ("nan", text(lambda t: t.replace('"preemptions": 1', '"preemptions": NaN')), "not JSON"),
    # JSON, not an object
    ("json_list", text("[1, 2]"), "not an object"),
    ("json_null", text("null"), "not an object"),
    ("json_string", text('"trace"'), "not an object"),
    ("json_number", text("12"), "not an object"),
    # format
    ("format_missing", drop(["format"]), "format"),
    ("format_other", put(["format"], "something-else"), "format"),
    ("format_version_2", put(["format_version"], 2), "format_version"),
    ("format_version_string", put(["format_version"], "1"), "format_version"),
    ("format_version_huge", put(["format_version"], 10 ** 30), "format_version"),
    # scenario
    ("scenario_missing", drop(["scenario"]), "scenario"),
    ("scenario_string", put(["scenario"], "fault_vs_truncate.yaml"), "scenario"),
    ("scenario_list", put(["scenario"], []), "scenario"),
    ("scenario_null", put(["scenario"], None), "scenario"),
    ("scenario_without_path", drop(["scenario", "path"]), "scenario.path"),
    ("scenario_path_number", put(["scenario", "path"], 5), "scenario.path"),
    ("scenario_path_empty", put(["scenario", "path"], ""), "scenario.path"),
    ("scenario_path_nul", put(["scenario", "path"], "a\x00b.yaml"), "scenario.path"),
    ("scenario_without_name", drop(["scenario", "name"]), "scenario.name"),
    ("scenario_name_list", put(["scenario", "name"], ["x"]), "scenario.name"),
    ("scenario_digest_number", put(["scenario", "digest"], 7), "scenario.digest"),
    # schedule
    ("schedule_missing", drop(["schedule"]), "schedule"),
    ("schedule_string", put(["schedule"], "fault"), "schedule"),
    ("schedule_of_numbers", put(["schedule"], [0, 0, 0, 1]), "schedule[0]"),
    ("schedule_unknown_thread", put(["schedule", 0], "nobody"), "schedule[0]"),
    # threads
    ("threads_missing", drop(["threads"]), "threads"),
    ("threads_string", put(["threads"], "fault"), "threads"),
    ("threads_empty", put(["threads"], []), "threads"),
    ("threads_number", put(["threads", 0], 0), "threads[0]"),
    ("threads_twice", put(["threads", 1], "fault"), "threads[1]"),
    ("thread_renamed_in_threads_only", put(["threads", 0], "faulter"), "schedule[0]"),
    # steps
    ("steps_missing", drop(["steps"]), "steps"),
    ("steps_object", put(["steps"], {}), "steps"),
    ("steps_null", put(["steps"], None), "steps"),
    ("step_number", put(["steps", 2], 5), "steps[2]"),
    ("step_list", put(["steps", 2], []), "steps[2]"),
    ("step_without_thread", drop(["steps", 2, "thread"]), "steps[2].thread"),
    ("step_thread_unknown", put(["steps", 2, "thread"], "nobody"), "steps[2].thread"),
    ("step_thread_number", put(["steps", 2, "thread"], 0), "steps[2].thread"),
    ("step_without_number", drop(["steps", 2, "step"]), "steps[2].step"),
    ("step_number_string", put(["steps", 2, "step"], "3"), "steps[2].step"),
    ("step_number_negative", put(["steps", 2, "step"], -3), "steps[2].step"),
    ("step_number_huge", put(["steps", 2, "step"], 10 ** 30), "steps[2].step"),
    ("step_number_float", put(["steps", 2, "step"], 3.0), "steps[2].step"),
    ("step_number_bool", put(["steps", 0, "step"], True), "steps[0].step"),
    ("step_without_changes", drop(["steps", 2, "changes"]), "steps[2].changes"),
    ("step_changes_object", put(["steps", 2, "changes"], {}), "steps[2].changes"),
    ("step_change_short", on_changes(lambda c, k, d: (c.__setitem__(0, ["i_size", 1]), d)[1]),
     "steps[{k}].changes[0]"),
    ("step_change_name_number", on_changes(lambda c, k, d: (c.__setitem__(0, [5, 1, 2]), d)[1]),
     "steps[{k}].changes[0]"),
    ("step_change_string", on_changes(lambda c, k, d: (c.__setitem__(0, "i_size: 1 -> 2"), d)[1]),
     "steps[{k}].changes[0]"),
    ("step_label_list", put(["steps", 2, "label"], ["x"]), "steps[2].label"),
    ("step_without_label", drop(["steps", 2, "label"]), "steps[2].label"),
    ("step_without_op", drop(["steps", 2, "op"]), "steps[2].op"),
    ("step_without_line", drop(["steps", 2, "line"]), "steps[2].line"),
    ("step_op_number", put(["steps", 2, "op"], 3), "steps[2].op"),
    ("step_line_number", put(["steps", 2, "line"], 35), "steps[2].line"),
    ("step_reads_string", put(["steps", 2, "reads"], "i_size"), "steps[2].reads"),
    ("step_writes_of_lists", put(["steps", 2, "writes"], [["i_size"]]), "steps[2].writes[0]"),
    ("step_waiting_object", put(["steps", 2, "waiting"], {}), "steps[2].waiting"),
    ("step_waiting_without_for", put(["steps", 2, "waiting"], [{"thread": "fault"}]), "steps[2].waiting[0].for"),
    ("step_waiting_unknown_thread", put(["steps", 2, "waiting"], [{"thread": "x", "for": "i_mutex"}]),
     "steps[2].waiting[0].thread"),
    ("step_waiting_held_by_string",
     put(["steps", 2, "waiting"], [{"thread": "fault", "for": "i_mutex", "held_by": "truncate"}]),
     "steps[2].waiting[0].held_by"),
    ("step_finished_string", put(["steps", 2, "finished"], "no"), "steps[2].finished"),
    ("step_stack_string", put(["steps", 2, "stack"], "truncate"), "steps[2].stack"),
    # race
    ("race_string", put(["race"], "9,11"), "race"),
    ("race_one_step", put(["race"], [9]), "race"),
    ("race_three_steps", put(["race"], [1, 9, 11]), "race"),
    ("race_strings", put(["race"], ["9", "11"]), "race[0]"),
    ("race_zero", put(["race", 0], 0), "race[0]"),
    ("race_negative", put(["race", 0], -1), "race[0]"),
    ("race_huge", put(["race", 1], 10 ** 30), "race[1]"),
    ("race_float", put(["race", 0], 9.0), "race[0]"),
    ("race_backwards", put(["race"], [11, 9]), "race"),
    ("race_reversed_schedule_string", put(["race_reversed_schedule"], "fault"), "race_reversed_schedule"),
    ("race_reversed_schedule_unknown", put(["race_reversed_schedule", 0], "nobody"),
     "race_reversed_schedule[0]"),
    ("race_reversed_string", put(["race_reversed"], "fault"), "race_reversed"),
    ("race_reversed_without_steps", drop(["race_reversed", "steps"]), "race_reversed.steps"),
    ("race_reversed_step_misnumbered", put(["race_reversed", "steps", 0, "step"], 2),
     "race_reversed.steps[0].step"),
    ("race_reversed_outcome_unknown", put(["race_reversed", "outcome"], "fine"), "race_reversed.outcome"),
    ("race_reversed_schedule_unknown_thread", put(["race_reversed", "schedule", 0], "nobody"),
     "race_reversed.schedule[0]"),
    # final_threads
    ("final_threads_object", put(["final_threads"], {}), "final_threads"),
    ("final_threads_unknown_thread", put(["final_threads", 0, "thread"], "nobody"), "final_threads[0].thread"),
    ("final_threads_holds_string", put(["final_threads", 0, "holds"], "i_mutex"), "final_threads[0].holds"),
    ("final_threads_waits_for_string", put(["final_threads", 0, "waits_for"], "i_mutex"),
     "final_threads[0].waits_for"),
    ("final_threads_waits_for_kind", put(["final_threads", 0, "waits_for"], {"kind": "x", "name": "m", "on": []}),
     "final_threads[0].waits_for.kind"),
    ("final_threads_waits_on_unknown",
     put(["final_threads", 0, "waits_for"], {"kind": "lock", "name": "m", "on": ["nobody"]}),
     "final_threads[0].waits_for.on[0]"),
    # happens_before
    ("happens_before_object", put(["happens_before"], {}), "happens_before"),
    ("happens_before_number", put(["happens_before", 0], 5), "happens_before[0]"),
    ("happens_before_without_from", drop(["happens_before", 0, "from"]), "happens_before[0].from"),
    ("happens_before_to_string", put(["happens_before", 0, "to"], "6"), "happens_before[0].to"),
    ("happens_before_to_huge", put(["happens_before", 0, "to"], 10 ** 30), "happens_before[0].to"),
    ("happens_before_from_negative", put(["happens_before", 0, "from"], -1), "happens_before[0].from"),
    ("happens_before_objects_string", put(["happens_before", 0, "objects"], "i_size"),
     "happens_before[0].objects"),
    ("happens_before_objects_numbers", put(["happens_before", 0, "objects"], [1]),
     "happens_before[0].objects[0]"),
    # geometry
    ("geometry_list", put(["geometry"], [4096, 512, 8]), "geometry"),
    ("geometry_string", put(["geometry"], "4k"), "geometry"),
    ("geometry_without_units_per_block", drop(["geometry", "units_per_block"]), "geometry.units_per_block"),
    ("geometry_units_per_block_zero", put(["geometry", "units_per_block"], 0), "geometry.units_per_block"),
    ("geometry_units_per_block_negative", put(["geometry", "units_per_block"], -8),
     "geometry.units_per_block"),
    ("geometry_units_per_block_string", put(["geometry", "units_per_block"], "8"), "geometry.units_per_block"),
    ("geometry_block_size_huge", put(["geometry", "block_size"], 10 ** 30), "geometry.block_size"),
    # the rest
    ("invariant_missing", drop(["invariant"]), "invariant"),
    ("invariant_number", put(["invariant"], 3), "invariant"),
    ("message_missing", drop(["message"]), "message"),
    ("message_list", put(["message"], ["x"]), "message"),
    ("invariant_description_number", put(["invariant_description"], 1), "invariant_description"),
    ("preemptions_negative", put(["preemptions"], -1), "preemptions"),
    ("preemptions_string", put(["preemptions"], "one"), "preemptions"),
    ("preemptions_huge", put(["preemptions"], 10 ** 30), "preemptions"),
    ("fixes_string", put(["fixes"], "recheck_isize_under_i_mmap_mutex"), "fixes"),
    ("fixes_numbers", put(["fixes"], [1]), "fixes[0]"),
    ("params_list", put(["params"], [1, 2]), "params"),
    ("models_digest_number", put(["models_digest"], 1), "models_digest"),
    ("reduction_number", put(["reduction"], 0), "reduction"),
    ("initial_list", put(["initial"], []), "initial"),
    ("objects_list", put(["objects"], []), "objects"),
    ("object_without_kind", put(["objects", "i_size"], {}), "objects.i_size.kind"),
    ("object_kind_unknown", put(["objects", "i_size", "kind"], "blob"), "objects.i_size.kind"),
    ("object_length_huge", put(["objects", "dev", "length"], 10 ** 12), "objects.dev.length"),
    ("object_length_negative", put(["objects", "dev", "length"], -1), "objects.dev.length"),
    ("verdict_unknown", put(["verdict"], "maybe"), "verdict"),
    ("error_not_an_object", lambda d: (d.update(verdict="error", error="boom"), d)[1], "error"),
]

# Corruptions show and view need not care about (they do not read the
# scenario or run the model), and replay must refuse.
REPLAY_ERRORS = [
    ("scenario_file_missing", put(["scenario", "path"], "/nonexistent/fault_vs_truncate.yaml"),
     "scenario.path", 0),
    ("scenario_path_a_directory", put(["scenario", "path"], str(ROOT / "scenarios")), "scenario.path", 0),
    ("scenario_of_another_name", put(["scenario", "name"], "other"), "saved from scenario 'other'", 0),
    ("scenario_changed_since", put(["scenario", "digest"], "0" * 16), "another version of", 0),
    ("thread_renamed", rename_thread, "no thread named 'faulter'", 0),
    ("schedule_truncated", put(["schedule"], ["fault", "fault", "fault", "truncate", "truncate"]),
     "does not reproduce", 0),
    ("schedule_empty", put(["schedule"], []), "does not reproduce", 0),
    ("schedule_too_long", lambda d: (d["schedule"].extend(["fault"] * 3), d)[1], "no longer fits", 0),
    ("schedule_huge", put(["schedule"], ["fault"] * 100_000), "no longer fits", 0),
    ("another_invariant", put(["invariant"], "no_mapping_beyond_eof"), "does not reproduce", 0),
]

TABLE = ([(case, mutate, words, 2, 2, 2) for case, mutate, words in FIELD_ERRORS]
         + [(case, mutate, words, 2, ok, ok) for case, mutate, words, ok in REPLAY_ERRORS])


def corrupt(saved, mutate, tmp_path):
    """Write the saved trace, corrupted by ``mutate``, in tmp_path."""
    _, saved_text, doc = saved
    doc = copy.deepcopy(doc)
    out = mutate(saved_text) if isinstance(mutate, Raw) else mutate(doc)
    path = tmp_path / "corrupt.json"
    if isinstance(out, bytes):
        path.write_bytes(out)
    elif isinstance(out, str):
        path.write_text(out)
    else:
        path.write_text(json.dumps(out, indent=1))
    return path, doc


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case,mutate,words,replay_status,show_status,view_status", TABLE,
                         ids=[row[0] for row in TABLE])
def test_corrupted_trace(saved, tmp_path, command, case, mutate, words, replay_status, show_status,
                         view_status):
    path, _ = corrupt(saved, mutate, tmp_path)
    result = invoke(command, path, tmp_path)
    no_traceback(result)
    status = {"replay": replay_status, "show": show_status, "view": view_status}[command]
    assert result.exit_code == status, result.output
    if status == 2:
        assert str(path) in result.output, result.output
        k = steps_changed(0)(saved[2])
        assert words.format(k=k) in result.output, result.output
        assert "racecheck: " in result.output
        if command == "view":
            assert not (tmp_path / "page.html").exists()


def test_the_table_covers_every_class():
    """At least one row per field a command reads, and per kind of damage."""
    cases = {row[0] for row in TABLE}
    assert len(cases) == len(TABLE)
    for field in ("not_json", "json_list", "scenario_string", "scenario_without_path", "scenario_file_missing",
                  "steps_object", "step_list", "step_without_thread", "threads_string", "race_string",
                  "happens_before_object", "geometry_list", "thread_renamed", "step_number_huge",
                  "race_negative", "preemptions_string"):
        assert field in cases


def test_the_saved_trace_itself_is_accepted(saved, tmp_path):
    path, _, _ = saved
    for command, status in (("replay", 1), ("show", 0), ("view", 0)):
        result = invoke(command, path, tmp_path)
        no_traceback(result)
        assert result.exit_code == status, result.output


def test_a_trace_saved_before_the_viewer_still_shows(saved, tmp_path):
    """The fields added since the first traces stay optional for show."""
    _, _, doc = saved
    old = {k: v for k, v in doc.items()
           if k not in ("initial", "objects", "geometry", "race", "race_reversed_schedule", "happens_before",
                        "invariant_description", "verdict")}
    for s in old["steps"]:
        for k in ("reads", "writes", "waiting", "stack", "function", "finished"):
            s.pop(k, None)
    p = tmp_path / "old.json"
    p.write_text(json.dumps(old))
    assert CliRunner().invoke(main, ["show", str(p)]).exit_code == 0
    assert CliRunner().invoke(main, ["replay", str(p)]).exit_code == 1


# -- fuzz: random damage anywhere -----------------------------------------------------------------


VALUES = [None, True, False, 0, 1, -1, 2 ** 31, 10 ** 30, -(10 ** 30), 1.5, "", "x", "fault", "truncate",
          [], [1], ["fault"], [[]], {}, {"a": 1}, {"thread": "fault", "for": "x"}, [0, 1], [11, 9]]


def _nodes(doc, path=()):
    """Every (container path) in the document, with its container."""
    yield path, doc
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in items:
        if isinstance(value, (dict, list)):
            yield from _nodes(value, path + (key,))


def _damage(doc, rng):
    """One random change: replace, delete or add an entry, or shorten a list."""
    nodes = [n for n in _nodes(doc) if n[1]]
    path, node = rng.choice(nodes)
    key = rng.choice(list(node) if isinstance(node, dict) else range(len(node)))
    action = rng.random()
    if action < 0.6:
        node[key] = copy.deepcopy(rng.choice(VALUES))
    elif action < 0.8:
        del node[key]
    elif action < 0.9 and isinstance(node, list):
        del node[rng.randrange(len(node)):]
    elif isinstance(node, dict):
        node[rng.choice(["x", "verdict", "error", "params", "race"])] = copy.deepcopy(rng.choice(VALUES))
    else:
        node.append(copy.deepcopy(rng.choice(VALUES)))
    return path + (key,)


FUZZ_RUNS = 300


@pytest.fixture(scope="module")
def error_saved(tmp_path_factory):
    """The trace of a model that raised (BROKEN below): (path, text, document)."""
    where = tmp_path_factory.mktemp("error")
    (where / "broken.py").write_text(BROKEN)
    sc = where / "broken.yaml"
    sc.write_text("name: broken\nmodel: ./broken.py\ninvariants: [assertion]\n")
    path = where / "broken.json"
    out = CliRunner().invoke(main, ["run", str(sc), "--trace-out", str(path)])
    assert out.exit_code == 4, out.output
    return path, path.read_text(), json.loads(path.read_text())


def _fuzz(doc, command, tmp_path, seed, runs, model_traceback=False):
    rng = random.Random(seed)
    allowed = {0, 1, 2, 3, 4} if command == "replay" else {0, 2}
    codes = []
    for _ in range(runs):
        damaged = copy.deepcopy(doc)
        where = [_damage(damaged, rng) for _ in range(rng.choice([1, 1, 2, 3]))]
        path = tmp_path / "fuzz.json"
        path.write_text(json.dumps(damaged, allow_nan=False))
        result = invoke(command, path, tmp_path)
        no_traceback(result, model_traceback)
        assert result.exit_code in allowed, (where, result.output)
        if result.exit_code == 2:
            assert str(path) in result.output, (where, result.output)
        codes.append(result.exit_code)
    return codes


@pytest.mark.parametrize("command", COMMANDS)
def test_random_damage_never_a_traceback(saved, tmp_path, command):
    """Many random corruptions (seeded): never a traceback; replay exits
    with a verdict or 2, show and view with 0 or 2."""
    codes = _fuzz(saved[2], command, tmp_path, 20240 + COMMANDS.index(command), FUZZ_RUNS)
    assert 0 < codes.count(2) < FUZZ_RUNS


@pytest.mark.parametrize("command", COMMANDS)
def test_random_damage_to_an_error_trace(error_saved, tmp_path, command):
    codes = _fuzz(error_saved[2], command, tmp_path, 7 + COMMANDS.index(command), FUZZ_RUNS // 2,
                  model_traceback=True)
    assert 0 < codes.count(2) < FUZZ_RUNS // 2
    if command == "replay":
        assert 4 in codes


@pytest.mark.parametrize("command", COMMANDS)
def test_random_damage_to_the_text(saved, tmp_path, command):
    """Characters deleted, changed or inserted anywhere in the file."""
    _, saved_text, _ = saved
    rng = random.Random(11 + COMMANDS.index(command))
    for _ in range(100):
        chars = list(saved_text)
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(chars))
            action = rng.random()
            if action < 0.4:
                del chars[i]
            elif action < 0.8:
                chars[i] = rng.choice('{}[]",:0123456789-eE.ntfalsux \\')
            else:
                chars.insert(i, rng.choice('{}[]",:0-'))
        path = tmp_path / "fuzz.json"
        path.write_text("".join(chars))
        result = invoke(command, path, tmp_path)
        no_traceback(result)
        assert result.exit_code in ({0, 1, 2, 3, 4} if command == "replay" else {0, 2}), result.output


# -- replay: what the trace reports, or a mismatch -----------------------------------------------


USER_MODEL = """\
from types import SimpleNamespace
from racecheck.model import Program
from racecheck.invariants import Invariant, register

def init(rt):
    return SimpleNamespace(x=rt.var('x', 0))

def incr(st):
    yield 'load x'
    v = st.x.get()
    yield 'store x'
    st.x.set(v + 1)

@register
class CountsAll(Invariant):
    name = 'trace_test_counts_all'
    description = 'at the end, x counts every increment'

    def at_end(self, st, execution):
        return None if st.x.value == 2 else f'x is {st.x.value}'

def build(params):
    return Program('counter', init, [('a', incr), ('b', incr)])
"""


def _counter(tmp_path):
    (tmp_path / "counter.py").write_text(USER_MODEL)
    sc = tmp_path / "counter.yaml"
    sc.write_text("name: counter\nmodel: ./counter.py\ninvariants: [trace_test_counts_all]\n")
    trace = tmp_path / "counter.json"
    out = CliRunner().invoke(main, ["run", str(sc), "--trace-out", str(trace)])
    assert out.exit_code == 1, out.output
    return trace


def test_replay_of_a_shorter_schedule_is_a_mismatch_not_clean(saved, tmp_path):
    _, _, doc = saved
    for schedule in (doc["schedule"][:-1], doc["schedule"][:3], []):
        d = dict(doc, schedule=schedule)
        p = tmp_path / "short.json"
        p.write_text(json.dumps(d))
        out = CliRunner().invoke(main, ["replay", str(p)])
        assert out.exit_code == 2, out.output
        assert "CLEAN" not in out.output
        assert "does not reproduce" in out.output
        assert "no_freed_block_mapped at step 11" in out.output  # what the trace says
        assert f"the {len(schedule)} steps of its schedule" in out.output  # and what the replay did


def test_replay_to_another_invariant_is_a_mismatch(saved, tmp_path):
    _, _, doc = saved
    p = tmp_path / "other.json"
    p.write_text(json.dumps(dict(doc, invariant="no_mapping_beyond_eof")))
    out = CliRunner().invoke(main, ["replay", str(p)])
    assert out.exit_code == 2, out.output
    assert "a violation of no_mapping_beyond_eof" in out.output
    assert "a violation of no_freed_block_mapped at step 11" in out.output


def test_replay_against_models_that_fixed_the_bug_is_clean(tmp_path):
    """The trace unchanged, the model's code fixed since (the increment is
    one read-modify-write at the store): the replay's own verdict, clean."""
    trace = _counter(tmp_path)
    (tmp_path / "counter.py").write_text(USER_MODEL.replace("st.x.set(v + 1)", "st.x.set(st.x.get() + 1)"))
    out = CliRunner().invoke(main, ["replay", str(trace)])
    assert out.exit_code == 0, out.output
    assert "another version of the models" in out.output
    assert "CLEAN" in out.output and "no longer happens" in out.output


def test_replay_against_changed_models_reports_the_new_verdict(tmp_path):
    trace = _counter(tmp_path)
    (tmp_path / "counter.py").write_text(USER_MODEL.replace("st.x.set(v + 1)", "st.x.set(v + 1)  # same"))
    out = CliRunner().invoke(main, ["replay", str(trace)])
    assert out.exit_code == 1, out.output
    assert "the same violation as saved" in out.output
    assert "another version of the models" in out.output


def test_replay_against_changed_models_that_now_raise_is_a_mismatch(tmp_path):
    """Changed models make the saved schedule end otherwise than in the
    violation or in nothing at all: the trace does not fit them."""
    trace = _counter(tmp_path)
    (tmp_path / "counter.py").write_text(USER_MODEL.replace("st.x.set(v + 1)", "st.x.set(v + 1 // (v - v))"))
    out = CliRunner().invoke(main, ["replay", str(trace)])
    assert out.exit_code == 2, out.output
    assert "does not reproduce" in out.output and "the model raising ZeroDivisionError" in out.output
    assert "the models changed since it was saved" in out.output


def test_replay_of_a_shorter_schedule_is_a_mismatch_even_with_changed_models(tmp_path):
    trace = _counter(tmp_path)
    (tmp_path / "counter.py").write_text(USER_MODEL.replace("st.x.set(v + 1)", "st.x.set(st.x.get() + 1)"))
    doc = json.loads(trace.read_text())
    doc["schedule"] = doc["schedule"][:2]
    trace.write_text(json.dumps(doc))
    out = CliRunner().invoke(main, ["replay", str(trace)])
    assert out.exit_code == 2, out.output
    assert "does not reproduce" in out.output


# -- a model that raises is saved as a trace --------------------------------------------------------


BROKEN = """\
from types import SimpleNamespace
from racecheck.model import Program

def init(rt):
    return SimpleNamespace(x=rt.var('x', 1))

def zero(st):
    yield 'zero x'
    st.x.set(0)

def divide(st):
    yield 'load x'
    v = st.x.get()
    yield 'divide'
    st.x.set(10 // v)

def build(params):
    return Program('broken', init, [('divider', divide), ('zeroer', zero)])
"""


@pytest.fixture()
def broken(tmp_path):
    (tmp_path / "broken.py").write_text(BROKEN)
    sc = tmp_path / "broken.yaml"
    sc.write_text("name: broken\nmodel: ./broken.py\ninvariants: [assertion]\n")
    return sc


def test_model_error_is_saved_as_a_trace(broken, tmp_path):
    trace = tmp_path / "broken.json"
    out = CliRunner().invoke(main, ["run", str(broken), "--trace-out", str(trace)])
    assert out.exit_code == 4, out.output
    assert "ZeroDivisionError" in out.output
    assert "schedule: zeroer, divider x2" in out.output or "schedule: divider, zeroer, divider" in out.output
    assert f"trace saved to {trace}" in out.output
    doc = json.loads(trace.read_text())
    assert doc["verdict"] == "error" and doc["invariant"] is None
    assert doc["error"]["thread"] == "divider"
    assert doc["error"]["exception"].startswith("ZeroDivisionError")
    assert "Traceback" in doc["error"]["traceback"] and "10 // v" in doc["error"]["traceback"]
    assert set(doc["schedule"]) == {"divider", "zeroer"} and doc["schedule"][-1] == "divider"
    assert [s["thread"] for s in doc["steps"]] == doc["schedule"]

    shown = CliRunner().invoke(main, ["show", str(trace)])
    assert shown.exit_code == 0, shown.output
    assert "the model raised in thread divider: ZeroDivisionError" in shown.output
    assert "10 // v" in shown.output

    viewed = CliRunner().invoke(main, ["view", str(trace), "-o", str(tmp_path / "b.html")])
    assert viewed.exit_code == 0, viewed.output
    assert "ZeroDivisionError" in (tmp_path / "b.html").read_text()

    replayed = CliRunner().invoke(main, ["replay", str(trace)])
    assert replayed.exit_code == 4, replayed.output
    assert "ERROR" in replayed.output and "the same error as saved" in replayed.output


def test_model_error_json_names_the_trace(broken, tmp_path):
    trace = tmp_path / "b.json"
    out = CliRunner().invoke(main, ["run", "--json", str(broken), "--trace-out", str(trace)])
    assert out.exit_code == 4
    doc = json.loads(out.output)
    assert doc["verdict"] == "error" and doc["trace_file"] == str(trace)
    assert doc["trace"]["error"]["exception"].startswith("ZeroDivisionError")
    assert all(isinstance(t, str) for t in doc["error"]["schedule"])


def test_replay_of_an_error_trace_that_no_longer_raises_is_a_mismatch(broken, tmp_path):
    trace = tmp_path / "b.json"
    CliRunner().invoke(main, ["run", str(broken), "--trace-out", str(trace)])
    doc = json.loads(trace.read_text())
    doc["schedule"] = doc["schedule"][:-1]
    trace.write_text(json.dumps(doc))
    out = CliRunner().invoke(main, ["replay", str(trace)])
    assert out.exit_code == 2, out.output
    assert "ZeroDivisionError" in out.output and "does not reproduce" in out.output


# -- a saved trace replays to the violation it reports -------------------------------------------


def _expecting_violation():
    out = []
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        sc = load(path)
        if sc.expect and sc.expect["verdict"] == "violation":
            out.append(path)
    return out


@pytest.mark.parametrize("path", _expecting_violation(), ids=lambda p: p.stem)
def test_every_saved_trace_replays_to_its_violation(path, tmp_path):
    trace = tmp_path / "t.json"
    out = CliRunner().invoke(main, ["run", str(path), "--trace-out", str(trace)])
    assert out.exit_code == 1, out.output
    doc = json.loads(trace.read_text())
    expected = load(path).expect["invariant"]
    assert doc["invariant"] == expected
    assert len(doc["steps"]) == len(doc["schedule"])
    replayed = CliRunner().invoke(main, ["replay", "--json", str(trace)])
    assert replayed.exit_code == 1, replayed.output
    got = json.loads(replayed.output)
    assert got["invariant"] == expected and got["same_as_saved"]


def test_a_minimised_schedule_that_does_not_replay_falls_back_to_the_one_found(monkeypatch, tmp_path):
    """When minimisation returns a schedule that stops at an earlier
    violation (or none), the trace is the counterexample as found."""
    def bad_minimise(model, cex, bounds=None, **kw):
        # The first step alone: no violation of anything at its end.
        return Counterexample(cex.schedule[:1], cex.invariant, cex.message, 0)

    monkeypatch.setattr(runner, "minimise", bad_minimise)
    sc = load(SCENARIO)
    rep = runner.check(sc, trace_out=tmp_path / "t.json")
    assert rep.verdict == "violation"
    assert rep.outcome.violation.schedule == rep.found.schedule
    assert rep.trace["schedule"] == [rep.trace["threads"][t] for t in rep.found.schedule]
    assert any("did not replay" in n for n in rep.notes)
    out = CliRunner().invoke(main, ["replay", str(tmp_path / "t.json")])
    assert out.exit_code == 1 and "the same violation as saved" in out.output


def test_a_counterexample_that_never_replays_is_reported_not_saved(monkeypatch, tmp_path):
    def bad_minimise(model, cex, bounds=None, **kw):
        return Counterexample(cex.schedule[:1], cex.invariant, cex.message, 0)

    monkeypatch.setattr(runner, "minimise", bad_minimise)
    sc = load(SCENARIO)
    real = runner.strategies.search

    def search(*args, **kw):
        outcome, used, why = real(*args, **kw)
        outcome.violation.schedule = outcome.violation.schedule[:2]  # no longer breaks anything
        return outcome, used, why

    monkeypatch.setattr(runner.strategies, "search", search)
    trace = tmp_path / "t.json"
    rep = runner.check(sc, trace_out=trace)
    assert rep.verdict == "violation" and rep.trace is None and not trace.exists()
    assert any("does not replay" in n for n in rep.notes)
    out = CliRunner().invoke(main, ["run", str(SCENARIO), "--trace-out", str(trace)])
    assert out.exit_code == 1, out.output
    assert "note: the counterexample found does not replay to no_freed_block_mapped" in out.output
    assert "trace saved to" not in out.output and not trace.exists()



def test_nan_never_reaches_a_page(saved, tmp_path):
    _, saved_text, _ = saved
    p = tmp_path / "nan.json"
    p.write_text(saved_text.replace('"i_size": 8192', '"i_size": NaN', 1))
    out = CliRunner().invoke(main, ["view", str(p), "-o", str(tmp_path / "p.html")])
    assert out.exit_code == 2 and "NaN" in out.output
