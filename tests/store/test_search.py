"""Search without a query on every backend: prefixes, order, pages and filters."""

from __future__ import annotations

import pytest

from .conftest import Api


def keys(items: list) -> list[str]:
    return [item.key for item in items]


def test_search_finds_items_in_the_prefix_and_below_it_not_in_siblings(api: Api) -> None:
    api.put(("docs",), "root", {})
    api.put(("docs", "a"), "one", {})
    api.put(("docs", "a", "deep"), "two", {})
    api.put(("docsx",), "sibling", {})
    api.put(("other",), "else", {})
    assert keys(api.search(("docs",))) == ["root", "one", "two"]
    assert keys(api.search(("docs", "a"))) == ["one", "two"]
    assert keys(api.search(())) == ["root", "one", "two", "sibling", "else"]
    assert api.search(("nothing",)) == []


def test_labels_with_pattern_characters_match_only_themselves(api: Api) -> None:
    api.put(("a_b",), "under", {})
    api.put(("axb",), "x", {})
    api.put(("a%b",), "percent", {})
    api.put(("a*",), "star", {})
    api.put(("ab",), "plain", {})
    assert keys(api.search(("a_b",))) == ["under"]
    assert keys(api.search(("a%b",))) == ["percent"]
    assert keys(api.search(("a*",))) == ["star"]


def test_results_come_in_creation_order_a_put_keeps_the_place_a_recreate_moves_it(
        api: Api) -> None:
    for key in ("a", "b", "c"):
        api.put(("ns",), key, {"key": key})
    api.put(("ns",), "a", {"key": "a", "again": True})
    assert keys(api.search(("ns",))) == ["a", "b", "c"]
    api.delete(("ns",), "b")
    api.put(("ns",), "b", {"key": "b"})
    assert keys(api.search(("ns",))) == ["a", "c", "b"]


def test_limit_and_offset_page_through_results(api: Api) -> None:
    for i in range(7):
        api.put(("ns",), f"k{i}", {"i": i})
    assert keys(api.search(("ns",), limit=3)) == ["k0", "k1", "k2"]
    assert keys(api.search(("ns",), limit=3, offset=3)) == ["k3", "k4", "k5"]
    assert keys(api.search(("ns",), limit=3, offset=6)) == ["k6"]
    assert api.search(("ns",), limit=0) == []
    assert len(api.search(("ns",))) == 7  # default limit 10
    with pytest.raises(ValueError, match="offset"):
        api.search(("ns",), offset=-1)


@pytest.fixture
def catalog(api: Api) -> Api:
    rows = [
        ("a", {"kind": "book", "price": 10, "title": "Alpha", "tags": ["x", "y"],
               "meta": {"lang": "en", "pages": 100}, "ok": True}),
        ("b", {"kind": "book", "price": 25.5, "title": "beta", "tags": ["y"],
               "meta": {"lang": "fr", "pages": 50}, "ok": False}),
        ("c", {"kind": "film", "price": 7, "title": "Gamma", "meta": {"lang": "en"}}),
        ("d", {"kind": "film", "price": "free", "title": "delta", "note": None}),
    ]
    for key, value in rows:
        api.put(("shop",), key, value)
    for key, value in [("t", True), ("one", 1), ("onef", 1.0), ("s1", "1"), ("obj", {"a": 1}),
                       ("text", '{"a":1}'), ("three", 3)]:
        api.put(("mixed",), key, {"v": value, "odd.key": value, 'q"uote': value})
    return api


@pytest.mark.parametrize(("filter", "expected"), [
    ({"kind": "book"}, ["a", "b"]),
    ({"kind": "book", "price": 10}, ["a"]),
    ({"price": 25.5}, ["b"]),
    ({"kind": {"$eq": "film"}}, ["c", "d"]),
    ({"kind": {"$ne": "film"}}, ["a", "b"]),
    ({"price": {"$gt": 10}}, ["b"]),
    ({"price": {"$gte": 10}}, ["a", "b"]),
    ({"price": {"$lt": 10}}, ["c"]),
    ({"price": {"$lte": 10}}, ["a", "c"]),
    ({"price": {"$gt": 5, "$lt": 20}}, ["a", "c"]),
    ({"title": {"$gte": "a"}}, ["b", "d"]),
    ({"title": {"$lt": "Beta"}}, ["a"]),
    ({"missing": {"$gt": 0}}, []),
    ({"missing": None}, ["a", "b", "c", "d"]),
    ({"note": None}, ["a", "b", "c", "d"]),
    ({"missing": {"$ne": 1}}, ["a", "b", "c", "d"]),
    ({"meta": {"lang": "en"}}, ["a", "c"]),
    ({"tags": ["y"]}, ["b"]),
    ({"tags": ["x", "y"]}, ["a"]),
    ({"ok": True}, ["a"]),
    ({"ok": False}, ["b"]),
    ({"kind": "nothing"}, []),
])
def test_filters_mean_the_same_on_every_backend(catalog: Api, filter: dict,
                                                 expected: list[str]) -> None:
    assert keys(catalog.search(("shop",), filter=filter)) == expected


@pytest.mark.parametrize(("filter", "expected"), [
    ({"v": 1}, ["t", "one", "onef"]),
    ({"v": True}, ["t", "one", "onef"]),
    ({"v": 1.0}, ["t", "one", "onef"]),
    ({"v": "1"}, ["s1"]),
    ({"v": '{"a":1}'}, ["text"]),
    ({"v": {"a": 1}}, ["obj"]),
    ({"v": "3"}, []),
    ({"v": 3}, ["three"]),
    ({"odd.key": 3}, ["three"]),
    ({'q"uote': "1"}, ["s1"]),
])
def test_equality_across_json_types_is_pythons(catalog: Api, filter: dict,
                                               expected: list[str]) -> None:
    assert keys(catalog.search(("mixed",), filter=filter)) == expected


def test_a_filter_applies_before_limit_and_offset(catalog: Api) -> None:
    assert keys(catalog.search(("shop",), filter={"kind": "film"}, limit=1, offset=1)) == ["d"]


def test_an_unknown_filter_operator_is_refused_by_name(catalog: Api) -> None:
    with pytest.raises(ValueError, match=r"\$like"):
        catalog.search(("shop",), filter={"title": {"$like": "a%"}})


def test_a_prefix_matches_whole_labels_whatever_characters_sort_next_to_the_period(
        api: Api) -> None:
    # '-' sorts just before '.', '/' just after it; 'é' and '😀' are beyond ASCII.
    for namespace in [("a",), ("a", "b"), ("a-b",), ("a/",), ("a,b",), ("aé",), ("a", "😀"),
                      ("a", "b", "c"), ("a", "b-c"), ("a", "b/")]:
        api.put(namespace, "k", {"at": ".".join(namespace)})
    found = [item.value["at"] for item in api.search(("a",), limit=20)]
    assert found == ["a", "a.b", "a.😀", "a.b.c", "a.b-c", "a.b/"]
    assert [item.value["at"] for item in api.search(("a", "b"))] == ["a.b", "a.b.c"]
    assert [item.value["at"] for item in api.search(("a", "😀"))] == ["a.😀"]


@pytest.mark.parametrize("text", ['q"uote', "back\\slash", "new\nline", "tab\t", "é",
                                  "😀", "\u2028", "", " spaced ", "a", "b"])
def test_a_string_filter_finds_values_with_any_characters(api: Api, text: str) -> None:
    api.put(("ns",), "other", {"kind": text + "x", "deep": {"kind": text}})
    api.put(("ns",), "it", {"kind": text})
    api.put(("ns",), "list", {"kind": [text]})
    assert keys(api.search(("ns",), filter={"kind": text})) == ["it"]


def test_a_page_is_right_when_the_filter_drops_an_item_the_database_kept(api: Api) -> None:
    # The stored JSON of the first value has the member "1" twice (from the keys 1 and "1");
    # SQLite's JSON functions see the first, Python (and Postgres) the last: the database
    # keeps the item for {"1": "a"}, the filter does not. (And SQLite alone misses it for
    # {"1": "b"}: the narrowing is not a superset there, an older limit left as it is.)
    api.put(("ns",), "twice", {1: "a", "1": "b"})
    api.put(("ns",), "once", {"1": "a"})
    api.put(("ns",), "again", {"1": "a"})
    assert keys(api.search(("ns",), filter={"1": "a"}, limit=1)) == ["once"]
    assert keys(api.search(("ns",), filter={"1": "a"}, limit=1, offset=1)) == ["again"]
