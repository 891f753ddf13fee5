"""Kernel primitives and the filesystem/DAX path models: the kernel library.

Importing the package registers what it adds to the engine: the filesystem
invariants (invariants.py), crash consistency (crash.py), and the model
builder of scenario files (catalogue.py: ``kernel`` in racecheck.model.BUILDERS,
``dax`` its alias) with the operations, flavours and fixes it names."""

from . import invariants, crash, catalogue  # noqa: F401, I001  (they register themselves)
