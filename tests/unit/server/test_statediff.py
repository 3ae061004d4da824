"""What the page shows between two steps: `tether.server.statediff.diff`."""

from __future__ import annotations

from tether.server.statediff import MAX_DEPTH, Change, diff


def test_equal_states_have_no_changes() -> None:
    assert diff({"a": 1, "b": [1, 2]}, {"a": 1, "b": [1, 2]}) == []


def test_keys_added_removed_and_changed_are_named_by_path() -> None:
    found = diff({"a": 1, "gone": "x", "same": 0}, {"a": 2, "same": 0, "new": [1]})
    assert found == [Change(("a",), "changed", 1, 2), Change(("gone",), "removed", before="x"),
                     Change(("new",), "added", after=[1])]


def test_a_list_that_only_grew_shows_the_items_appended() -> None:
    before = {"messages": [{"type": "human", "content": "hi"}]}
    after = {"messages": [*before["messages"], {"type": "ai", "content": "hello"}]}
    assert diff(before, after) == [Change(("messages",), "appended",
                                          after=[{"type": "ai", "content": "hello"}])]


def test_a_list_rewritten_is_changed_whole() -> None:
    assert diff({"xs": [1, 2]}, {"xs": [2, 1, 3]}) == [
        Change(("xs",), "changed", [1, 2], [2, 1, 3])]


def test_nested_objects_are_compared_key_by_key_down_to_the_depth_limit() -> None:
    before = {"profile": {"name": "Ada", "langs": {"py": 1}}}
    after = {"profile": {"name": "Ada L.", "langs": {"py": 2}}}
    assert diff(before, after) == [Change(("profile", "name"), "changed", "Ada", "Ada L."),
                                   Change(("profile", "langs", "py"), "changed", 1, 2)]
    deep_before: dict[str, object] = {"v": 1}
    deep_after: dict[str, object] = {"v": 2}
    for _ in range(MAX_DEPTH + 2):
        deep_before, deep_after = {"k": deep_before}, {"k": deep_after}
    (only,) = diff(deep_before, deep_after)
    assert only.op == "changed" and len(only.path) == MAX_DEPTH


def test_json_form_carries_before_and_after_only_where_they_mean_something() -> None:
    assert Change(("a",), "added", after=1).to_json() == {"path": ["a"], "op": "added", "after": 1}
    assert Change(("a",), "removed", before=1).to_json() == {"path": ["a"], "op": "removed",
                                                             "before": 1}
    assert Change(("a",), "changed", 1, 2).to_json() == {"path": ["a"], "op": "changed",
                                                         "before": 1, "after": 2}
