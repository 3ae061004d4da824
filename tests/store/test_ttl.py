"""Time to live on every backend, with a fake clock: expiry, refresh on read, defaults,
sweeping."""

from __future__ import annotations

import time

import pytest

from tether.store.base import TTLConfig

from .conftest import Api, FakeClock, Stores

MINUTE = 60.0


def test_an_item_with_a_ttl_is_gone_once_it_expires_swept_or_not(
        api: Api, clock: FakeClock) -> None:
    api.put(("ns",), "short", {"v": 1}, ttl=1)
    api.put(("ns",), "forever", {"v": 2})
    clock.advance(59)
    assert api.get(("ns",), "short", refresh_ttl=False) is not None
    clock.advance(1)
    assert api.get(("ns",), "short") is None
    assert [i.key for i in api.search(("ns",))] == ["forever"]
    api.delete(("ns",), "forever")
    assert api.list_namespaces() == []


def test_a_read_refreshes_the_ttl_unless_told_not_to(api: Api, clock: FakeClock) -> None:
    api.put(("ns",), "k", {"v": 1}, ttl=1)
    clock.advance(50)
    assert api.get(("ns",), "k") is not None       # refreshed: lives until 50 + 60
    clock.advance(50)
    assert api.get(("ns",), "k", refresh_ttl=False) is not None
    clock.advance(50)
    assert api.get(("ns",), "k") is None


def test_a_search_refreshes_the_items_it_returns(api: Api, clock: FakeClock) -> None:
    api.put(("ns",), "a", {"v": 1}, ttl=1)
    api.put(("ns",), "b", {"v": 2}, ttl=1)
    clock.advance(50)
    assert [i.key for i in api.search(("ns",), filter={"v": 1})] == ["a"]
    clock.advance(50)
    assert [i.key for i in api.search(("ns",), refresh_ttl=False)] == ["a"]


def test_a_put_rewrites_the_ttl(api: Api, clock: FakeClock) -> None:
    api.put(("ns",), "k", {"v": 1}, ttl=1)
    api.put(("ns",), "k", {"v": 2}, ttl=None)
    clock.advance(10 * MINUTE)
    assert api.get(("ns",), "k").value == {"v": 2}


def test_a_put_over_an_expired_item_makes_a_new_one(api: Api, clock: FakeClock) -> None:
    api.put(("ns",), "old", {"v": 1}, ttl=1)
    api.put(("ns",), "other", {"v": 2})
    clock.advance(2 * MINUTE)
    api.put(("ns",), "old", {"v": 3})
    item = api.get(("ns",), "old")
    assert item.created_at == item.updated_at
    assert [i.key for i in api.search(("ns",))] == ["other", "old"]


def test_ttl_config_default_ttl_and_refresh_on_read(stores: Stores, clock: FakeClock) -> None:
    config: TTLConfig = {"default_ttl": 1, "refresh_on_read": False}
    api = stores.open(ttl=config)
    api.put(("ns",), "k", {"v": 1})
    api.put(("ns",), "kept", {"v": 1}, ttl=None)
    clock.advance(50)
    assert api.get(("ns",), "k") is not None       # not refreshed by default
    clock.advance(20)
    assert api.get(("ns",), "k") is None
    assert api.get(("ns",), "kept") is not None


def test_sweep_ttl_deletes_expired_items_and_counts_them(stores: Stores,
                                                         clock: FakeClock) -> None:
    api = stores.open()
    api.put(("ns",), "a", {"v": 1}, ttl=1)
    api.put(("ns",), "b", {"v": 1}, ttl=5)
    api.put(("ns",), "c", {"v": 1})
    clock.advance(2 * MINUTE)
    assert stores.opened[-1].sweep_ttl() == 1
    assert stores.opened[-1].sweep_ttl() == 0
    assert [i.key for i in api.search(("ns",))] == ["b", "c"]


def test_the_sweeper_thread_sweeps_until_stopped(stores: Stores, clock: FakeClock) -> None:
    api = stores.open()
    store = stores.opened[-1]
    api.put(("ns",), "a", {"v": 1}, ttl=1)
    clock.advance(2 * MINUTE)
    done = store.start_ttl_sweeper(sweep_interval_minutes=0.001)
    assert store.start_ttl_sweeper(sweep_interval_minutes=0.001) is done
    deadline = time.monotonic() + 10
    while store.sweep_ttl() != 0 or _count(store) != 0:
        assert time.monotonic() < deadline, "the sweeper did not sweep"
        time.sleep(0.01)
    assert store.stop_ttl_sweeper(timeout=5)
    assert done.result(timeout=5) is None


def _count(store: object) -> int:
    return len(store.search((), refresh_ttl=False))  # type: ignore[attr-defined]


def test_a_ttl_must_be_positive(api: Api) -> None:
    with pytest.raises(ValueError, match="ttl"):
        api.put(("ns",), "k", {"v": 1}, ttl=0)
