"""The names a scenario can use: operations, get_block flavours and fixes.
Each model module registers its own; :mod:`.catalogue` imports them all."""

from __future__ import annotations

from dataclasses import dataclass

# What the byte arguments of an operation mean, for what checks them before
# a model runs (the limits of ranges of values: racecheck/ranges.py): an
# operation's OFFSET and LENGTH arguments are a byte range of the file, which
# starts below the file's limit (max_size) and ends within it.
OFFSET = "offset"
LENGTH = "len"


@dataclass(frozen=True)
class Param:
    name: str
    kind: str = "bytes"  # bytes (an offset, length or size) | int | choice | bool
    required: bool = True
    default: object = None
    choices: tuple = ()
    help: str = ""
    align: str | None = None  # "unit", "block" or "page": the value must be a multiple


@dataclass(frozen=True)
class Operation:
    name: str
    fn: object
    description: str
    params: tuple = ()
    # the get_block flavours it is modelled on: a tuple, a function giving one, or None (all)
    flavours_given: object = None

    @property
    def flavours(self):
        """The flavours it is modelled on (None: all)."""
        given = self.flavours_given
        return tuple(given()) if callable(given) else given

    @property
    def byte_range(self):
        """The names of its OFFSET and LENGTH arguments, each None when it
        has no such argument."""
        names = {p.name for p in self.params}
        return (OFFSET if OFFSET in names else None, LENGTH if LENGTH in names else None)


OPERATIONS: dict[str, Operation] = {}
FLAVOURS: dict[str, tuple] = {}  # name -> (get_block generator, description)
FILESYSTEMS: dict[str, str] = {}  # flavour name -> the filesystem it is a flavour of: ext2, ext3, ext4, xfs
FIXES: dict[str, str] = {}  # name -> what the remedy is and where it comes from
# fix name -> the edits it stands for (racecheck/models/edits.py), for the
# fixes that are a placement of a lock, a wait or a call
PRESETS: dict[str, dict] = {}

# What a path the scenario's kernel: key picks does not model, refused by
# name when the scenario is loaded: functions (operation name, flavour,
# file spec, {function: KernelFunction picked}) -> the reason, or None.
REFUSALS: list = []

# State that some filesystems add to models/fs.py's (the journal of ext3 and
# ext4: models/journal.py): functions fs -> None, run on every new FileSystem.
FS_SETUP: list = []


def operation(name, description, *params, flavours=None):
    """Decorator: make a step generator ``fn(fs, ctx, **args)`` a scenario
    operation; ``flavours`` limits it to the filesystems it is modelled on
    (a function giving them: asked when a scenario is loaded)."""
    def register(fn):
        OPERATIONS[name] = Operation(name, fn, description, tuple(params),
                                     flavours if callable(flavours) or not flavours else tuple(flavours))
        return fn
    return register


def flavour(name, description, filesystem=None):
    """Decorator: make a ``get_block(fs, block, create)`` generator a flavour
    of ``filesystem`` (default: the flavour's name, as for ``ext2``)."""
    def register(fn):
        FLAVOURS[name] = (fn, description)
        FILESYSTEMS[name] = filesystem or name
        return fn
    return register


def fix(name, description, edits=None):
    """Declare a fix; returns its name, for ``if NAME in fs.fixes``. A fix
    that is a placement gives its ``edits`` (the YAML shape of a scenario's
    ``edits``) instead of a switch in the code."""
    FIXES[name] = description
    if edits is not None:
        PRESETS[name] = edits
    return name
