"""What a run's policies decide once (`PolicyPlan`): shared by the runs whose config overrides
nothing, never by a run whose config brings its own limits."""

from __future__ import annotations

from typing import Any

import pytest

from tether.config import parse_config
from tether.runs.policies import Budget, PolicyDefaults
from tether.types import CancelReason


def _stop(reason: CancelReason) -> None:
    del reason


def test_runs_that_override_nothing_share_one_parse_of_the_graphs_defaults(
        monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[Any] = []
    real = Budget.parse.__func__  # type: ignore[attr-defined]

    def counting(cls: type[Budget], *layers: Any) -> Budget:
        parsed.append(layers)
        return real(cls, *layers)  # type: ignore[no-any-return]

    monkeypatch.setattr(Budget, "parse", classmethod(counting))
    defaults = PolicyDefaults({"steps": 5}, {"max_repeats": 3})
    bare = parse_config({})
    first, second = defaults.for_run(bare, _stop), defaults.for_run(bare, _stop)
    assert len(parsed) == 1
    assert first.budget.steps == second.budget.steps == 5
    assert first.tally is not second.tally and first.detector is not second.detector


def test_a_run_with_its_own_limits_is_not_given_the_cached_plan() -> None:
    defaults = PolicyDefaults({"steps": 5}, {"max_repeats": 3}, ())
    defaults.for_run(parse_config({}), _stop)  # the bare plan is cached now
    own = defaults.for_run(parse_config({"budget": {"steps": 2, "tokens": 10},
                                         "loop_detection": False}), _stop)
    assert own.budget.steps == 2 and own.budget.tokens == 10
    assert own.detector is None
    again = defaults.for_run(parse_config({}), _stop)
    assert again.budget.steps == 5 and again.budget.tokens is None
    assert again.detector is not None


def test_the_cached_plan_is_not_part_of_the_defaults_value() -> None:
    used, fresh = PolicyDefaults({"steps": 5}), PolicyDefaults({"steps": 5})
    used.for_run(parse_config({}), _stop)
    assert used == fresh and repr(used) == repr(fresh)


def test_a_plan_keeps_the_meaning_of_the_settings_it_was_made_from() -> None:
    limits = {"node_calls": {"a": 2}, "cost": 1.5, "tool_calls_per_minute": 4}
    policies = PolicyDefaults(limits).for_run(parse_config({}), _stop)
    assert policies.budget == Budget.parse(limits)
    assert policies.watches_progress  # no-progress detection is on by default
    stopped: list[CancelReason] = []
    policies.stop = stopped.append
    policies.charge(0, 2.0, 0)
    assert [reason.kind for reason in stopped] == ["budget"]
