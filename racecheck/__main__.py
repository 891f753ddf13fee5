"""``python -m racecheck``: the same command line as ``racecheck``."""

from racecheck.cli import main

main(prog_name="racecheck")
