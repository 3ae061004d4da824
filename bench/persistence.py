"""Cost per superstep with a checkpointer (DESIGN.md §7, second line).

The engine workloads `loop` and `widestate` again, now saving a checkpoint every superstep: in
memory, and in a SQLite file (tether's `SqliteSaver(path)` against LangGraph's `SqliteSaver` over
`sqlite3` for `invoke` and `AsyncSqliteSaver` over `aiosqlite` for `ainvoke`). Each library runs
with its default durability (LangGraph's is `async`, tether's `sync`) and, unless `--sqlite-sync`
says otherwise, its default `PRAGMA synchronous` (LangGraph's connection: FULL, an fsync per
commit; tether: NORMAL, durable against a process crash). SQLite runs are shorter.
"""

from __future__ import annotations

from bench.engine import build_loop, build_wide
from bench.workload import both_modes

ORDER = 20
FAMILY = "persistence"

_LOOP_DOC = "One node looping through a conditional edge, a checkpoint saved every step"
_WIDE_DOC = "The 40-key wide state looped through one node, a checkpoint saved every step"

WORKLOADS = [
    *both_modes(
        name="loop1000+memory",
        family=FAMILY,
        doc=f"{_LOOP_DOC} (InMemorySaver).",
        build=build_loop,
        size=1000,
        quick_size=20,
        saver="memory",
    ),
    *both_modes(
        name="widestate+memory",
        family=FAMILY,
        doc=f"{_WIDE_DOC} (InMemorySaver).",
        build=build_wide,
        size=300,
        quick_size=20,
        saver="memory",
    ),
    *both_modes(
        name="loop200+sqlite",
        family=FAMILY,
        doc=f"{_LOOP_DOC} (SQLite file).",
        build=build_loop,
        size=200,
        quick_size=10,
        saver="sqlite",
    ),
    *both_modes(
        name="widestate200+sqlite",
        family=FAMILY,
        doc=f"{_WIDE_DOC} (SQLite file).",
        build=build_wide,
        size=200,
        quick_size=10,
        saver="sqlite",
    ),
]
