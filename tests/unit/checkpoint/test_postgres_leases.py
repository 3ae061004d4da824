"""The leases a Postgres store handle writes under: a run's thread is fenced by that run until
it is unbound, and a thread's next run keeps it when the last one goes."""

from __future__ import annotations

from tether.checkpoint.postgres.leases import Leases


def test_unbinding_a_run_frees_its_thread_and_only_its_own() -> None:
    leases = Leases()
    leases.bind("r1", 1, "t1")
    leases.bind("r2", 4, "t2")
    assert leases.of_thread("t1") == ("r1", 1)
    leases.unbind("r1")
    assert leases.of_thread("t1") == (None, None)
    assert leases.of_thread("t2") == ("r2", 4)
    assert leases.epoch("r1") is None


def test_a_threads_next_run_keeps_the_thread_when_the_last_one_is_unbound() -> None:
    leases = Leases()
    leases.bind("r1", 1, "t")
    leases.bind("r2", 1, "t")  # the thread's next run, bound before the last one is let go
    leases.unbind("r1")
    assert leases.of_thread("t") == ("r2", 1)
    leases.unbind("r2")
    assert leases.of_thread("t") == (None, None)


def test_a_run_bound_without_a_thread_unbinds_cleanly() -> None:
    leases = Leases()
    leases.bind("r", 2, None)
    leases.unbind("r")
    leases.unbind("r")  # twice: nothing left to let go
    assert leases.epoch("r") is None
