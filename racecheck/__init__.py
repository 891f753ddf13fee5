"""racecheck: a model checker for kernel concurrency races."""

__version__ = "0.1.0"
