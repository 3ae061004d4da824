"""A run's counters give its last audit event (and a budget's evidence) their usage as a dict
straight from the tally: the same dict as `snapshot().to_dict()`, a copy the tally does not
change afterwards."""

from __future__ import annotations

from tether.runs.policies.budget import Tally


def test_the_tallys_dict_is_its_snapshots_dict() -> None:
    tally = Tally(steps=3, node_calls={"a": 2}, tokens=10, cost=0.5, tool_calls=1)
    direct, through = tally.to_dict(), tally.snapshot().to_dict()
    assert direct.keys() == through.keys()
    assert {k: v for k, v in direct.items() if k != "wall_time"} == \
        {k: v for k, v in through.items() if k != "wall_time"}
    assert 0.0 <= direct["wall_time"] <= through["wall_time"]
    tally.node_calls["a"] += 1
    assert direct["node_calls"] == {"a": 2}
