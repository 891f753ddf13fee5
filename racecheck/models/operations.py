"""The operations a scenario's threads run, and the model a scenario builds.

Each operation is a step generator ``op(fs, ctx, **args)`` over the paths in
this package; its return value is the operation's result (the data a read or
a load saw, or an error code), which ``on_return`` invariants check.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model import Model, Unknown
from .edits import Edits, preset
from .fs import FileSystem, Geometry
from .kernel import kernel_function
from .registry import FLAVOURS, FS_SETUP, OPERATIONS, Param, operation
from .truncate import setattr_size


@dataclass(frozen=True)
class Context:
    """Who runs an operation: the thread's name and the operation's number."""

    thread: str
    seq: int


MAPPING = Param("mapping", "choice", False, "shared", ("shared", "shared2", "private"),
                "which user mapping of the file: two shared ones (two processes) and a private one")

# mmap_load and mmap_store (loads and stores through MAPPING) live in dax.py.


@operation("truncate", "truncate(2): i_mutex, then the filesystem's setsize path",
           Param("size", help="the new file size"))
@kernel_function("fs/open.c", "3.13", name="do_truncate")
def truncate(fs, ctx, size):
    yield fs.i_mutex.lock()
    ret = yield from setattr_size(fs, size)  # ->setattr(ATTR_SIZE) of the flavour
    fs.i_mutex.unlock()
    return ret


def thread_body(fs, name, ops):
    """Run a thread's operations in order, noting each begin and return."""
    for seq, (opname, args) in enumerate(ops, 1):
        op = OPERATIONS[opname]
        ctx = Context(name, seq)
        fs.rt.note("begin", op=opname, args=args, seq=seq)
        result = yield from op.fn(fs, ctx, **args)
        fs.rt.note("return", op=opname, args=args, seq=seq, result=result)


@dataclass
class FileSpec:
    size: int
    blocks: list
    geometry: Geometry
    dax: bool = True  # IS_DAX; false: a page-cache file (models/buffered.py)


class FsModel(Model):
    """The model a scenario file describes."""

    mappings = ("shared", "shared2", "private")

    def __init__(self, name, file, flavour, fixes, threads_spec, edits=None):
        self.name = name
        self.file = file
        self.flavour = flavour
        self.fixes = list(fixes)
        self.threads_spec = threads_spec  # [(name, [(op, args), ...]), ...]
        self.invariants = []
        # The scenario's edits and those of its fixes that are presets
        # (models/edits.py), and the kernel table they make.
        self.own_edits = edits if edits is not None else Edits()  # (releases alone are edits too)
        self.kernel = None  # the scenario's kernel: key, as given (models/edits.py read_kernel)
        self._made = None
        self.source_files = self.own_edits.source_files()

    def _make(self):
        key = (tuple(self.fixes), id(self.own_edits))
        if self._made is None or self._made[0] != key:
            edits = preset(self.fixes).merged(self.own_edits)
            self._made = (key, edits, edits.table())
        return self._made

    @property
    def edits(self):
        """The scenario's own edits with those of its fixes that are presets."""
        return self._make()[1]

    @property
    def table(self):
        """The kernel table the edits make (worked out again when the fixes change)."""
        return self._make()[2]

    def init(self, rt):
        fs = FileSystem(rt, self.file.geometry, self.file.size, self.file.blocks,
                        FLAVOURS[self.flavour][0], self.fixes, self.mappings,
                        dax=self.file.dax)
        for setup in FS_SETUP:
            setup(fs)
        fs.kernel = self.table
        if self.edits:
            self.edits.install(fs, self.table)
        return fs

    def threads(self, fs):
        return [(name, thread_body(fs, name, ops)) for name, ops in self.threads_spec]

    def with_values(self, env, symbolic_values=True):
        """A copy whose arguments given as ranges or sets take the values of
        ``env`` (racecheck.model.instantiate)."""
        import copy

        from ..symbolic import variable

        out = copy.copy(self)
        spec = []
        for tname, ops in self.threads_spec:
            new_ops = []
            for opname, args in ops:
                new = {}
                for k, a in args.items():
                    if isinstance(a, Unknown):
                        v = env[a.name]
                        a = variable(a.name, v) if symbolic_values else v
                    new[k] = a
                new_ops.append((opname, new))
            spec.append((tname, new_ops))
        out.threads_spec = spec
        return out
