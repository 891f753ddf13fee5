"""Kernel primitives and the filesystem/DAX path models: the kernel library.

Importing the package registers what it adds to the engine: the filesystem
invariants (invariants.py) and crash consistency (crash.py)."""

from . import crash, invariants  # noqa: F401  (they register their invariants)
