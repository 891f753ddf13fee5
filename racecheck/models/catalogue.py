"""What a scenario can name: operations, ``get_block`` flavours, fixes; and
the model a scenario file builds from them: the kernel library's model
builder, ``kernel`` in racecheck.model.BUILDERS (``dax``, its first name, is
an alias)."""

from __future__ import annotations

from ..model import Unknown, builder
from . import (  # noqa: F401  (they register names)
    buffered,
    dax,
    dax_entry,
    dio,
    ext4_fault,
    extents,
    fallocate,
    fault_exclusion,
    filemap_read,
    get_block,
    iomap_dio,
    journal,
    operations,
    page_mkwrite,
    truncate,
    writeback,
    xfs_writeback,
    xip_fault_retry,  # noqa: F401  (the old XIP fault, for --strategy bfs)
    xip_io,
)
from .edits import read_edits, read_kernel
from .fs import BLOCK_STATES, HOLE, WRITTEN, Geometry
from .kernel import FUNCTIONS, RELEASES, all_locks_of, calls_of, pointer_calls_of, release_key
from .operations import FileSpec, FsModel
from .registry import FIXES, FLAVOURS, OPERATIONS, PRESETS, REFUSALS  # noqa: F401 (racecheck list)

# The keys of a scenario's file and of each thread, with what each says
# (racecheck/schema.py shows the text in an editor).
FILE_KEYS = {
    "size": "i_size in bytes.",
    "max_size": "The largest the file may grow to, in bytes: a multiple of block_size (default: the larger of "
                "size and the blocks listed).",
    "block_size": "Bytes a block (default 4096).",
    "unit_size": "Bytes a unit, the grain of the data tags; divides block_size (default 512).",
    "page_size": "Bytes a page; equal to block_size in this version (default 4096).",
    "blocks": "The extent state of each block from the first: hole, unwritten or written (default: written "
              "up to size).",
    "spare_blocks": "Free device blocks beyond the file's, for allocation (default 2).",
    "dax": "true (default): DAX, loads and stores reach the device; false: buffered I/O through the page cache.",
}
THREAD_KEYS = {
    "name": "The thread's name: it heads its column and names its arguments in where.",
    "ops": "The operations the thread runs, in order: each a mapping with op and its arguments.",
}


@builder("kernel", "dax")
def build_scenario_model(root, path, name, parse_values):
    """The model of a scenario file's ``filesystem``, ``file``, ``threads``
    and ``fixes`` (``root`` reads them; ``parse_values`` reads an argument
    given as a range or a set of values)."""
    did_you_mean = root.did_you_mean
    flavour = root.get("filesystem", str, "ext2")
    if flavour not in FLAVOURS:
        raise root.error("filesystem", f"unknown get_block flavour {flavour!r}" + did_you_mean(flavour, FLAVOURS))
    spec = _file_spec(root)
    fixes = _fixes(root)
    kernel, releases = read_kernel(root)
    edits = read_edits(root, releases)
    threads = _threads(root, spec, flavour, parse_values, releases)
    model = FsModel(name=name, file=spec, flavour=flavour, fixes=fixes, threads_spec=threads, edits=edits)
    model.kernel = kernel
    return model


def _file_spec(root):
    if not root.has("file"):
        raise root.error("file", "missing required key: the file's size and blocks")
    sec = root.section("file", FILE_KEYS)
    bs = sec.get("block_size", int, 4096)
    us = sec.get("unit_size", int, 512)
    ps = sec.get("page_size", int, 4096)
    for key, value in (("block_size", bs), ("unit_size", us), ("page_size", ps)):
        if value <= 0:
            raise sec.error(key, f"must be positive, not {value}")
    if bs % us:
        raise sec.error("unit_size", f"must divide block_size ({bs}), not {us}")
    if ps != bs:
        raise sec.error("page_size", f"must equal block_size ({bs}) in this version, not {ps}")
    size = sec.get("size", int, required=True)
    if size < 0:
        raise sec.error("size", f"must not be negative, not {size}")
    nblocks = -(-size // bs)
    if sec.has("blocks"):
        blocks = []
        for item in sec.node("blocks").value:
            if item.value not in BLOCK_STATES:
                raise root.error_at(item.line, "file.blocks", f"unknown extent state {item.value!r}"
                                    + root.did_you_mean(item.value, BLOCK_STATES))
            blocks.append(item.value)
    else:
        blocks = [WRITTEN] * nblocks
    max_size = sec.get("max_size", int, max(size, len(blocks) * bs, bs))
    if max_size < size or max_size % bs:
        raise sec.error("max_size", f"must be a multiple of block_size ({bs}) and at least size ({size})")
    file_blocks = max_size // bs
    if len(blocks) > file_blocks:
        raise sec.error("blocks", f"lists {len(blocks)} blocks but max_size holds {file_blocks}")
    blocks += [HOLE] * (file_blocks - len(blocks))
    spare = sec.get("spare_blocks", int, 2)
    if spare < 0:
        raise sec.error("spare_blocks", f"must not be negative, not {spare}")
    geo = Geometry(block_size=bs, unit_size=us, page_size=ps, file_blocks=file_blocks, spare_blocks=spare)
    is_dax = sec.get("dax", bool, True)  # false: buffered I/O through the page cache
    return FileSpec(size=size, blocks=blocks, geometry=geo, dax=is_dax)


def _fixes(root):
    names = root.get("fixes", list, [])
    out = []
    for item in names:
        if item.value not in FIXES:
            raise root.error_at(item.line, "fixes",
                                f"unknown fix {item.value!r}" + root.did_you_mean(item.value, FIXES))
        out.append(item.value)
    return out


def _threads(root, spec, flavour, parse_values, releases=None):
    items = root.get("threads", list, required=True)
    if not items:
        raise root.error("threads", "a scenario needs at least one thread")
    threads, seen = [], set()
    for n, node in enumerate(items):
        sec = root.item(node, f"threads[{n}]", THREAD_KEYS)
        tname = sec.get("name", str, required=True)
        if tname in seen:
            raise sec.error("name", f"two threads are named {tname!r}")
        seen.add(tname)
        ops = sec.get("ops", list, required=True)
        if not ops:
            raise sec.error("ops", "a thread needs at least one operation")
        threads.append((tname, [_op(root, op, f"threads[{n}].ops[{i}]", spec, flavour, parse_values, releases)
                                for i, op in enumerate(ops)]))
    return threads


def _op(root, node, where, spec, flavour, parse_values, releases=None):
    if not isinstance(node.value, dict) or "op" not in node.value:
        raise root.error_at(node.line, where, "each operation is a mapping with an 'op' key")
    opname = node.value["op"][1].value
    if opname not in OPERATIONS:
        raise root.error_at(node.value["op"][0], f"{where}.op",
                            f"unknown operation {opname!r}" + root.did_you_mean(opname, OPERATIONS))
    op = OPERATIONS[opname]
    if op.flavours is not None and flavour not in op.flavours:
        raise root.error_at(node.value["op"][0], f"{where}.op",
                            f"{opname} is not modelled on {flavour} "
                            + (f"(it is on: {', '.join(op.flavours)})" if op.flavours else "(on no filesystem yet)"))
    for refuse in REFUSALS:  # what a path of the releases picked does not model
        reason = refuse(opname, flavour, spec, releases or {})
        if reason:
            raise root.error_at(node.value["op"][0], f"{where}.op", reason)
    sec = root.item(node, where, ("op",) + tuple(p.name for p in op.params))
    args = {}
    geo = spec.geometry
    for p in op.params:
        if not sec.has(p.name):
            if p.required:
                raise sec.error(p.name, f"missing required key for {opname}")
            continue
        if p.kind == "choice":
            value = sec.get(p.name, str)
            if value not in p.choices:
                raise sec.error(p.name, f"must be one of {', '.join(p.choices)}, not {value!r}")
        elif p.kind == "bool":
            value = sec.get(p.name, bool)
        elif isinstance(sec.node(p.name).value, dict):
            # {range: [low, high], align: n} or {one_of: [...]}: racecheck/ranges.py
            align = {"unit": geo.unit_size, "block": geo.block_size, "page": geo.page_size}.get(p.align, 1)
            value = parse_values(sec, p, opname, align, geo.max_size)
        else:
            value = sec.get(p.name, int)
            if value < 0:
                raise sec.error(p.name, f"must not be negative, not {value}")
            if p.kind == "bytes" and value > geo.max_size:
                raise sec.error(p.name, f"{value} is beyond the file's limit (max_size {geo.max_size})")
            if p.align:
                unit = {"unit": geo.unit_size, "block": geo.block_size, "page": geo.page_size}[p.align]
                if value % unit:
                    raise sec.error(p.name, f"{opname} needs {p.name} aligned to the {p.align} size "
                                            f"({unit} bytes), not {value}")
        args[p.name] = value
    if any(isinstance(a, Unknown) for a in args.values()):
        return opname, args  # the space holds the limits below as constraints (ranges.py)
    offset, length = op.byte_range
    if offset in args and args[offset] >= geo.max_size:
        raise sec.error(offset, f"{args[offset]} is beyond the file's limit (max_size {geo.max_size})")
    if offset in args and length in args and args[offset] + args[length] > geo.max_size:
        raise sec.error(length, f"{offset} + {length} = {args[offset] + args[length]} runs past max_size "
                                f"{geo.max_size}")
    return opname, args


def function_rows():
    """Every kernel function the library models, by name: the kernel file and
    release it mirrors, what it calls (by name, and through function
    pointers), and the lock classes it and its callees take (lock -> the
    function that takes it)."""
    return [{"name": name, "file": f.file, "version": f.version, "steps": f.steps,
             "calls": calls_of(name), "pointers": pointer_calls_of(name), "locks": all_locks_of(name),
             "releases": [(r, kf.file, kf.version) for r, kf in sorted(RELEASES.get(name, {}).items(),
                                                                      key=lambda item: release_key(item[0]))
                          if kf is not f]}
            for name, f in sorted(FUNCTIONS.items())]
