"""A model bfs cannot take: thread T keeps a random.Random in a local
variable, whose state racecheck cannot see into, so it cannot tell two of
T's states apart (docs/exploration.md, Fingerprints)."""

import random
from types import SimpleNamespace

from racecheck.model import Program


def init(rt):
    return SimpleNamespace(x=rt.var("x", 0))


def body(st):
    rng = random.Random(0)
    yield "draw"
    st.x.set(rng.randrange(2))


def build(params):
    return Program("opaque", init, [("T", body)])
