"""The triggers of deferred nodes: kept through steps, fired by `finish()`, consumed once."""

from tether.channels import MISSING, LastValueAfterFinish, NamedBarrierValueAfterFinish


def test_a_deferred_trigger_waits_for_finish_and_fires_once() -> None:
    trigger = LastValueAfterFinish("branch:to:end")
    assert not trigger.finish()
    assert trigger.update([None])
    # Steps that write nothing leave it waiting (unlike an ephemeral trigger).
    assert not trigger.update([]) and not trigger.is_available()
    assert trigger.finish() and trigger.is_available()
    assert not trigger.finish()
    assert trigger.consume() and not trigger.is_available()
    assert trigger.checkpoint() is MISSING


def test_a_new_write_makes_a_finished_trigger_wait_again() -> None:
    trigger = LastValueAfterFinish("t")
    trigger.update([None])
    trigger.finish()
    trigger.update([None])
    assert not trigger.is_available()
    assert not trigger.consume()


def test_a_deferred_trigger_round_trips_through_a_checkpoint() -> None:
    trigger = LastValueAfterFinish("t")
    trigger.update(["x"])
    trigger.finish()
    copy = trigger.fresh()
    copy.restore(trigger.checkpoint())
    assert copy.is_available() and copy.get() == "x"


def test_a_deferred_join_needs_every_source_and_the_finish() -> None:
    barrier = NamedBarrierValueAfterFinish(frozenset({"a", "b"}), "join:a+b:j")
    barrier.update(["a"])
    assert not barrier.finish()
    barrier.update(["b"])
    assert not barrier.is_available()
    assert barrier.finish() and barrier.is_available()
    copy = barrier.fresh()
    copy.restore(barrier.checkpoint())
    assert copy.is_available()
    assert barrier.consume() and not barrier.is_available()
    assert barrier.checkpoint() is MISSING
