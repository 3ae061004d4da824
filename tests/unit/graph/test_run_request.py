"""What `CompiledStateGraph` works out once per graph rather than once per run."""

from __future__ import annotations

from typing import Any, TypedDict

import pytest

from tether.config import parse_config
from tether.graph import compiled
from tether.graph.state import StateGraph


class Counter(TypedDict):
    count: int


def _graph() -> Any:
    def bump(state: Counter) -> dict[str, int]:
        return {"count": state["count"] + 1}

    builder = StateGraph(Counter)
    builder.add_node("bump", bump)
    builder.set_entry_point("bump")
    return builder.compile()


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    seen: list[Any] = []

    def counted(config: Any) -> Any:
        seen.append(config)
        return parse_config(config)

    monkeypatch.setattr(compiled, "parse_config", counted)
    return seen


def test_runs_without_a_config_parse_the_graphs_config_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = _counting(monkeypatch)
    graph = _graph().with_config(recursion_limit=7)
    for _ in range(3):
        assert graph.invoke({"count": 0}) == {"count": 1}
    assert len(seen) == 1
    request, _run_id = graph._request({"count": 0}, None)
    assert request.config.recursion_limit == 7


def test_a_config_given_to_a_run_is_still_parsed_and_validated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = _counting(monkeypatch)
    graph = _graph()
    graph.invoke({"count": 0})
    graph.invoke({"count": 0}, {"recursion_limit": 3})
    graph.invoke({"count": 0}, durability="exit")
    assert len(seen) == 3
    with pytest.raises(Exception, match="unknown config key"):
        graph.invoke({"count": 0}, {"bogus": 1})


def test_with_config_gives_a_copy_its_own_parsed_config() -> None:
    graph = _graph()
    graph.invoke({"count": 0})
    limited = graph.with_config(recursion_limit=2)
    assert limited._request({"count": 0}, None)[0].config.recursion_limit == 2
    assert graph._request({"count": 0}, None)[0].config.recursion_limit != 2


def test_runs_without_a_config_share_their_metadata_and_stream_format() -> None:
    graph = _graph()
    first, _ = graph._request({"count": 0}, None, stream_mode="values")
    second, _ = graph._request({"count": 0}, None, stream_mode="values")
    assert first.metadata == {"graph": graph.name} and first.metadata is second.metadata
    assert first.stream is second.stream
    other, _ = graph._request({"count": 0}, {"metadata": {"user": "u"}}, stream_mode="updates")
    assert other.metadata == {"user": "u", "graph": graph.name}
    assert other.stream.modes == ("updates",) and other.stream is not first.stream


@pytest.mark.parametrize("durable", [False, True])
def test_run_metadata_a_store_cannot_keep_is_refused_at_the_call_naming_the_key(
        durable: bool, tmp_path: Any) -> None:
    from tether.checkpoint.sqlite import SqliteSaver
    from tether.errors import ConfigError

    builder = StateGraph(Counter)
    builder.add_node("bump", lambda s: {"count": s["count"] + 1})
    builder.set_entry_point("bump")
    saver = SqliteSaver(str(tmp_path / "runs.db")) if durable else None
    graph = builder.compile(checkpointer=saver)
    config: dict[str, Any] = {"configurable": {"thread_id": "t"},
                              "metadata": {"score": float("nan")}}
    if durable:
        with pytest.raises(ConfigError, match=r"config\['metadata'\] cannot be stored: "
                                              r"a number that is not finite \(nan\) at \.score"):
            graph.invoke({"count": 0}, config)
        assert saver is not None and saver.list_runs() == []
        saver.close()
    else:  # nothing is stored: kept as given, as LangGraph does
        assert graph.invoke({"count": 0}, config) == {"count": 1}
