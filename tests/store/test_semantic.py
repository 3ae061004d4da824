"""Semantic search on every backend: an `index` with an embedding function ranks items by
cosine similarity to the query."""

from __future__ import annotations

import pytest

from .conftest import DIMS, Api, Stores, aembed, embed


@pytest.fixture
def indexed(stores: Stores) -> Api:
    return stores.open(index={"dims": DIMS, "embed": embed, "fields": ["text"]})


def keys(items: list) -> list[str]:
    return [item.key for item in items]


def test_a_query_ranks_items_by_similarity_with_scores(indexed: Api) -> None:
    indexed.put(("docs",), "pets", {"text": "a cat and a dog"})
    indexed.put(("docs",), "drinks", {"text": "tea or coffee"})
    indexed.put(("docs",), "code", {"text": "python and rust and sql"})
    found = indexed.search(("docs",), query="my cat")
    assert keys(found) == ["pets", "drinks", "code"]
    assert [item.score for item in found] == pytest.approx([0.7089, 0.0071, 0.0058], abs=1e-3)
    assert all(-1.0 <= item.score <= 1.0 for item in found)
    assert keys(indexed.search(("docs",), query="coffee", limit=1)) == ["drinks"]
    assert keys(indexed.search(("docs",), query="coffee", limit=1, offset=1))[0] != "drinks"


def test_items_without_vectors_come_after_ranked_ones_without_a_score(indexed: Api) -> None:
    indexed.put(("docs",), "plain", {"text": "python"}, index=False)
    indexed.put(("docs",), "notext", {"other": "python"})
    indexed.put(("docs",), "ranked", {"text": "python"})
    found = indexed.search(("docs",), query="python")
    assert keys(found) == ["ranked", "plain", "notext"]
    assert found[0].score == pytest.approx(1.0, abs=0.01)
    assert found[1].score is None and found[2].score is None


def test_a_put_can_name_its_own_fields_and_an_item_scores_as_its_best_text(
        indexed: Api) -> None:
    indexed.put(("docs",), "two", {"title": "cat", "body": "sql sql"}, index=["title", "body"])
    indexed.put(("docs",), "list", {"parts": [{"t": "dog"}, {"t": "rust"}]},
                index=["parts[*].t"])
    assert keys(indexed.search(("docs",), query="sql"))[0] == "two"
    assert keys(indexed.search(("docs",), query="cat"))[0] == "two"
    assert keys(indexed.search(("docs",), query="rust"))[0] == "list"


def test_a_query_combines_with_a_filter_and_a_prefix(indexed: Api) -> None:
    indexed.put(("docs", "a"), "x", {"text": "cat", "lang": "en"})
    indexed.put(("docs", "a"), "y", {"text": "cat cat", "lang": "fr"})
    indexed.put(("docs", "b"), "z", {"text": "cat"})
    assert keys(indexed.search(("docs",), query="cat", filter={"lang": "fr"})) == ["y"]
    assert sorted(keys(indexed.search(("docs", "a"), query="cat"))) == ["x", "y"]


def test_a_rewrite_replaces_an_items_vectors(indexed: Api) -> None:
    indexed.put(("docs",), "k", {"text": "cat"})
    indexed.put(("docs",), "other", {"text": "dog"})
    indexed.put(("docs",), "k", {"text": "coffee"})
    found = indexed.search(("docs",), query="coffee")
    assert keys(found)[0] == "k" and found[0].score == pytest.approx(1.0, abs=0.01)


def test_the_whole_value_is_embedded_by_default(stores: Stores) -> None:
    api = stores.open(index={"dims": DIMS, "embed": embed})
    api.put(("docs",), "k", {"a": "tea", "b": {"c": "tea"}})
    api.put(("docs",), "j", {"a": "dog"})
    assert keys(api.search(("docs",), query="tea")) == ["k", "j"]


def test_an_async_embed_function_serves_sync_and_async_calls(stores: Stores) -> None:
    api = stores.open(index={"dims": DIMS, "embed": aembed, "fields": ["text"]})
    api.put(("docs",), "a", {"text": "fish"})
    api.put(("docs",), "b", {"text": "rust"})
    assert keys(api.search(("docs",), query="rust")) == ["b", "a"]


def test_vectors_of_the_wrong_length_are_refused_and_nothing_is_stored(stores: Stores) -> None:
    api = stores.open(index={"dims": DIMS + 1, "embed": embed, "fields": ["text"]})
    with pytest.raises(ValueError, match="dimensions"):
        api.put(("docs",), "k", {"text": "cat"})
    assert api.get(("docs",), "k") is None


def test_without_an_index_a_query_is_ignored(api: Api) -> None:
    api.put(("docs",), "a", {"text": "cat"})
    api.put(("docs",), "b", {"text": "dog"})
    found = api.search(("docs",), query="dog")
    assert keys(found) == ["a", "b"] and found[0].score is None


@pytest.mark.parametrize("config", [{"dims": 0, "embed": embed}, {"dims": 3},
                                    {"dims": 3, "embed": 42}])
def test_a_bad_index_config_is_refused_at_open(stores: Stores, config: dict) -> None:
    with pytest.raises((ValueError, TypeError), match=r"dims|embed"):
        stores.open(index=config)
