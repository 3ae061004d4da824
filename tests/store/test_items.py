"""Put, get and delete on every backend: values, timestamps, namespaces, batches."""

from __future__ import annotations

import copy
import datetime as dt
import json
import pickle

import pytest

from tether.store.base import GetOp, InvalidNamespaceError, Item, PutOp, SearchOp
from tether.store.values import loads

from .conftest import Api, FakeClock


def test_put_then_get_returns_the_value_with_its_place_and_utc_timestamps(
        api: Api, clock: FakeClock) -> None:
    api.put(("users", "u1"), "prefs", {"theme": "dark", "size": 3, "tags": ["a", "b"]})
    item = api.get(("users", "u1"), "prefs")
    assert isinstance(item, Item)
    assert item.value == {"theme": "dark", "size": 3, "tags": ["a", "b"]}
    assert (item.namespace, item.key) == (("users", "u1"), "prefs")
    expected = dt.datetime.fromtimestamp(clock.now, dt.UTC)
    assert item.created_at == item.updated_at == expected
    assert item.created_at.tzinfo is not None


def test_a_put_over_an_item_replaces_its_value_and_keeps_its_creation_time(
        api: Api, clock: FakeClock) -> None:
    api.put(("ns",), "k", {"v": 1})
    created = api.get(("ns",), "k").created_at
    clock.advance(60)
    api.put(("ns",), "k", {"w": 2})
    item = api.get(("ns",), "k")
    assert item.value == {"w": 2}
    assert item.created_at == created
    assert item.updated_at == created + dt.timedelta(seconds=60)


def test_get_of_a_missing_item_is_none_and_delete_removes_one(api: Api) -> None:
    assert api.get(("ns",), "nothing") is None
    api.put(("ns",), "k", {"v": 1})
    api.delete(("ns",), "k")
    assert api.get(("ns",), "k") is None
    api.delete(("ns",), "k")  # deleting what is gone is not an error
    api.delete(("never",), "k")


def test_values_are_copies_changing_them_changes_nothing_stored(api: Api) -> None:
    value = {"nested": {"list": [1, 2]}}
    api.put(("ns",), "k", value)
    value["nested"]["list"].append(3)
    got = api.get(("ns",), "k")
    assert got.value == {"nested": {"list": [1, 2]}}
    got.value["nested"]["list"].append(4)
    assert api.get(("ns",), "k").value == {"nested": {"list": [1, 2]}}


def test_keys_are_case_sensitive_and_namespaces_are_label_exact(api: Api) -> None:
    api.put(("a", "b"), "K", {"v": 1})
    api.put(("a", "b"), "k", {"v": 2})
    api.put(("ab",), "k", {"v": 3})
    assert api.get(("a", "b"), "K").value == {"v": 1}
    assert api.get(("a", "b"), "k").value == {"v": 2}
    assert api.get(("a",), "k") is None
    assert api.get(("A", "b"), "k") is None


@pytest.mark.parametrize(("namespace", "words"), [
    ((), "non-empty"),
    (("langgraph", "x"), "reserved"),
    (("a.b",), "period"),
    (("a", ""), "empty"),
    (("a", 1), "strings"),
    (("nul\x00",), "NUL"),
])
def test_a_bad_namespace_is_refused_by_name_and_nothing_is_stored(
        api: Api, namespace: tuple, words: str) -> None:
    api.put(("ok",), "k", {"v": 1})
    with pytest.raises(InvalidNamespaceError, match=words):
        api.put(namespace, "k", {"v": 2})
    assert api.search(()) and [i.key for i in api.search(())] == ["k"]


def test_a_value_that_is_not_a_mapping_is_refused(api: Api) -> None:
    with pytest.raises(TypeError, match="must be a dict"):
        api.put(("ns",), "k", ["not", "a", "dict"])
    assert api.get(("ns",), "k") is None


def test_a_key_is_stored_as_a_string(api: Api) -> None:
    api.put(("ns",), 7, {"v": 1})  # type: ignore[arg-type]
    assert api.get(("ns",), "7").key == "7"


def test_a_batch_returns_a_result_per_op_and_its_reads_do_not_see_its_writes(api: Api) -> None:
    api.put(("ns",), "old", {"v": 0})
    results = api.batch([
        PutOp(("ns",), "new", {"v": 1}),
        GetOp(("ns",), "new"),
        GetOp(("ns",), "old"),
        SearchOp(("ns",)),
        PutOp(("ns",), "old", None),
    ])
    assert results[0] is None and results[4] is None
    assert results[1] is None
    assert results[2].value == {"v": 0}
    assert [i.key for i in results[3]] == ["old"]
    assert api.get(("ns",), "old") is None
    assert api.get(("ns",), "new").value == {"v": 1}


def test_in_a_batch_the_last_write_to_a_key_wins(api: Api) -> None:
    api.batch([PutOp(("ns",), "k", {"v": 1}), PutOp(("ns",), "k", None),
               PutOp(("ns",), "k", {"v": 3})])
    assert api.get(("ns",), "k").value == {"v": 3}
    api.batch([PutOp(("ns",), "k", {"v": 4}), PutOp(("ns",), "k", None)])
    assert api.get(("ns",), "k") is None


def test_a_malformed_op_in_a_batch_fails_it_before_anything_is_written(api: Api) -> None:
    with pytest.raises(ValueError, match="limit"):
        api.batch([PutOp(("ns",), "k", {"v": 1}), SearchOp(("ns",), limit=-1)])
    with pytest.raises(TypeError, match="not a store op"):
        api.batch([PutOp(("ns",), "k", {"v": 1}), ("ns", "k")])
    assert api.get(("ns",), "k") is None


def test_item_equality_hash_and_dict_follow_langgraph(api: Api) -> None:
    api.put(("ns",), "k", {"v": 1})
    a, b = api.get(("ns",), "k"), api.get(("ns",), "k", refresh_ttl=False)
    assert a == b and hash(a) == hash(b)
    data = a.dict()
    assert data["namespace"] == ["ns"] and data["key"] == "k" and data["value"] == {"v": 1}
    assert Item(**{**data, "namespace": tuple(data["namespace"])}) == a


def test_timestamps_given_in_microseconds_read_as_the_same_utc_datetimes() -> None:
    micros = 1_800_000_000_123_456
    moment = dt.datetime(2027, 1, 15, 8, 0, 0, 123_456, tzinfo=dt.UTC)
    lazy = Item(value={}, key="k", namespace=("ns",), created_at=micros, updated_at=micros + 1)
    eager = Item(value={}, key="k", namespace=("ns",), created_at=moment,
                 updated_at=moment + dt.timedelta(microseconds=1))
    assert lazy == eager and eager == lazy
    assert lazy.created_at == moment and lazy.created_at.tzinfo is not None
    assert lazy.updated_at - lazy.created_at == dt.timedelta(microseconds=1)
    assert lazy.dict() == eager.dict() and repr(lazy) == repr(eager)
    lazy.updated_at = "2030-01-01T00:00:00+00:00"  # type: ignore[assignment]  # as LangGraph's
    assert lazy.updated_at == dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    assert copy.deepcopy(lazy) == lazy and pickle.loads(pickle.dumps(eager)) == eager


def test_stored_json_is_read_whatever_surrounds_it_and_bad_json_is_refused() -> None:
    assert loads('{"a":[1,{"b":null}]}') == {"a": [1, {"b": None}]}
    assert loads(' {"a": 1}\n') == {"a": 1}
    assert loads(b'{"a":1}') == {"a": 1}
    with pytest.raises(json.JSONDecodeError):
        loads('{"a":1} trailing')
    with pytest.raises(json.JSONDecodeError):
        loads('{"a":')
