"""`list_namespaces` on every backend."""

from __future__ import annotations

import pytest

from tether.store.base import ListNamespacesOp, MatchCondition

from .conftest import Api

SPACES = [("a", "b", "c"), ("a", "b", "d", "e"), ("a", "b", "d", "i"), ("a", "b", "f"),
          ("a", "c", "f"), ("x", "y")]


@pytest.fixture
def spaces(api: Api) -> Api:
    for ns in reversed(SPACES):
        api.put(ns, "k", {"v": 1})
    return api


def test_every_namespace_with_items_sorted(spaces: Api) -> None:
    assert spaces.list_namespaces() == sorted(SPACES)


def test_max_depth_cuts_and_merges(spaces: Api) -> None:
    assert spaces.list_namespaces(prefix=("a", "b"), max_depth=3) == [
        ("a", "b", "c"), ("a", "b", "d"), ("a", "b", "f")]
    assert spaces.list_namespaces(max_depth=1) == [("a",), ("x",)]
    with pytest.raises(ValueError, match="max_depth"):
        spaces.list_namespaces(max_depth=0)


def test_prefix_and_suffix_with_wildcards(spaces: Api) -> None:
    assert spaces.list_namespaces(prefix=("a", "*", "f")) == [("a", "b", "f"), ("a", "c", "f")]
    assert spaces.list_namespaces(suffix=("f",)) == [("a", "b", "f"), ("a", "c", "f")]
    assert spaces.list_namespaces(suffix=("d", "*")) == [("a", "b", "d", "e"),
                                                         ("a", "b", "d", "i")]
    assert spaces.list_namespaces(prefix=("a",), suffix=("e",)) == [("a", "b", "d", "e")]
    assert spaces.list_namespaces(prefix=("a", "b", "c", "z")) == []


def test_limit_and_offset(spaces: Api) -> None:
    assert spaces.list_namespaces(limit=2) == sorted(SPACES)[:2]
    assert spaces.list_namespaces(limit=2, offset=4) == sorted(SPACES)[4:6]


def test_a_namespace_whose_last_item_is_deleted_is_not_listed(spaces: Api) -> None:
    spaces.delete(("x", "y"), "k")
    assert ("x", "y") not in spaces.list_namespaces()


def test_list_namespaces_as_an_op(spaces: Api) -> None:
    op = ListNamespacesOp((MatchCondition("prefix", ("a", "c")),))
    assert spaces.batch([op]) == [[("a", "c", "f")]]
