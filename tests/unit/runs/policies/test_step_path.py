"""The per-step path of a run's policies: what each step pays for, and that the cheaper forms
(fingerprints, seen inputs, rate windows, node-call counting) keep their meaning."""

from __future__ import annotations

import operator
import threading
from collections import UserDict
from typing import Annotated, Any, TypedDict

import pytest

from tether import RunCancelled
from tether.channels import Overwrite
from tether.engine.spec import NodeSpec
from tether.engine.task import PULL, PUSH, Task
from tether.graph import END, START, StateGraph
from tether.runs.policies import Budget, LoopSettings, Policies
from tether.runs.policies.loops import Fingerprints, LoopDetector, digest
from tether.runs.policies.rates import Marks, Rate
from tether.types import CancelReason

NODE = NodeSpec("step", lambda state: state, False)
OTHER = NodeSpec("other", lambda state: state, False)


def _task(value: Any, node: NodeSpec = NODE, step: int = 1, push: int | None = None) -> Task:
    path: tuple[str, str | int] = (PULL, node.name) if push is None else (PUSH, push)
    return Task(node, value, path, step)


def _policies(budget: dict[str, Any] | None = None,
              loops: dict[str, Any] | bool | None = False) -> tuple[Policies, list[CancelReason]]:
    stopped: list[CancelReason] = []
    return Policies(Budget.parse(budget), LoopSettings.parse(loops), (), stopped.append), stopped


# -- fingerprints -----------------------------------------------------------------------------

def test_equal_states_made_of_new_objects_have_one_fingerprint() -> None:
    prints = Fingerprints(None)
    first = prints.of({"n": 1000, "text": "x" * 100, "items": [1, 2, 3], "name": "ab"})
    again = prints.of({"n": 1000, "text": "x" * 100, "items": [1, 2, 3], "name": "ab"})
    assert first == again


@pytest.mark.parametrize("other", [True, 1.0, "1", b"1", [1], None])
def test_values_of_different_types_never_share_a_fingerprint(other: Any) -> None:
    prints = Fingerprints(None)
    assert prints.of({"n": 1}) != prints.of({"n": other})


def test_a_field_name_is_part_of_the_fingerprint() -> None:
    prints = Fingerprints(None)
    assert prints.of({"a": 1, "b": 2}) != prints.of({"b": 1, "a": 2})
    assert prints.of({"a": "x" * 40}) != prints.of({"b": "x" * 40})


def test_a_changed_value_is_hashed_again_even_in_the_same_key() -> None:
    prints = Fingerprints(None)
    long_a, long_b = "a" * 40, "b" * 40
    assert prints.of({"k": long_a}) != prints.of({"k": long_b})
    assert prints.of({"k": [1]}) != prints.of({"k": [2]})


def test_chosen_fields_and_other_mappings_read_like_a_dict() -> None:
    assert Fingerprints(("a",)).of({"a": 1, "b": 2}) == Fingerprints(("a",)).of({"a": 1, "b": 3})
    assert Fingerprints(None).of(UserDict({"a": [1]})) == Fingerprints(None).of({"a": [1]})
    assert Fingerprints(None).of([1, 2]) == digest([1, 2])


def test_short_values_are_their_own_digest_and_long_ones_a_hash_of_another_length() -> None:
    assert len(digest(5)) < 16
    assert len(digest("x" * 100)) == 16
    assert digest("x" * 100) == digest("x" * 100)


# -- the loop detector ------------------------------------------------------------------------

def test_an_input_seen_once_costs_no_list_and_a_repeat_keeps_every_step() -> None:
    detector = LoopDetector(LoopSettings(max_repeats=2, no_progress_steps=None))
    assert detector.before_step(1, [_task({"n": 1})]) is None
    assert list(detector.seen.values()) == [1]
    assert detector.before_step(2, [_task({"n": 1})]) is None
    reason = detector.before_step(5, [_task({"n": 1})])
    assert reason is not None
    assert reason.evidence["steps"] == [1, 2, 5]


def test_a_small_input_of_ints_only_has_the_key_that_of_dict_makes() -> None:
    """Inputs of at most two ints are keyed in C: the key is the one `of_dict` makes, so a step
    of one task and a step of several (which goes through `of_dict`) meet on the same input,
    and `True`, `1.0` or a short str never pass for the int 1."""
    for value in ({"n": 7}, {"n": 7, "m": -3}, {"n": 2**70}):
        detector = LoopDetector(LoopSettings(max_repeats=5, no_progress_steps=None))
        assert detector.before_step(1, [_task(value)]) is None
        assert list(detector.seen) == [Fingerprints(None).of_dict(value, "step")]
    detector = LoopDetector(LoopSettings(max_repeats=1, no_progress_steps=None))
    assert detector.before_step(1, [_task({"n": 1})]) is None
    for step, other in enumerate(({"n": True}, {"n": 1.0}, {"n": "1"}, {"n": 1, "m": 1}), 2):
        assert detector.before_step(step, [_task(other)]) is None, other
    reason = detector.before_step(9, [_task({"n": 1}), _task({"n": 2}, OTHER)])
    assert reason is not None and reason.evidence["steps"] == [1, 9]


def test_a_dict_and_another_mapping_with_the_same_fields_are_the_same_input() -> None:
    detector = LoopDetector(LoopSettings(max_repeats=1, no_progress_steps=None))
    assert detector.before_step(1, [_task({"n": 1, "log": [1, 2]})]) is None
    reason = detector.before_step(2, [_task(UserDict({"n": 1, "log": [1, 2]}))])
    assert reason is not None and reason.evidence["steps"] == [1, 2]
    # Another node's equal input is its own.
    assert detector.before_step(3, [_task({"n": 1, "log": [1, 2]}, OTHER)]) is None


def test_a_repeat_is_found_in_a_step_of_one_task_as_in_a_step_of_many() -> None:
    for extra in ([], [_task({"n": 2}, OTHER)]):
        detector = LoopDetector(LoopSettings(max_repeats=1, no_progress_steps=None))
        assert detector.before_step(1, [_task({"n": 1}), *extra]) is None
        reason = detector.before_step(2, [_task({"n": 1}), *extra])
        assert reason is not None
        assert reason.evidence == {"node": "step", "repeats": 2, "steps": [1, 2], "limit": 1}


def test_send_inputs_and_pull_inputs_are_counted_apart() -> None:
    detector = LoopDetector(LoopSettings(max_repeats=1, no_progress_steps=None))
    assert detector.before_step(1, [_task({"n": 1}), _task({"n": 1}, push=0)]) is None


# -- rate windows -----------------------------------------------------------------------------

def test_a_report_of_many_events_counts_them_all_in_one_entry() -> None:
    rate = Rate(window=60.0)
    assert rate.add(5, now=0.0) == 5
    assert rate.add(1, now=30.0) == 6


def test_events_leave_the_window_once_older_than_it() -> None:
    rate = Rate(window=60.0)
    rate.add(3, now=0.0)
    rate.add(2, now=10.0)
    assert rate.add(1, now=60.0) == 6  # the first three are exactly a window old: still in
    assert rate.add(1, now=60.5) == 4
    assert rate.add(0, now=200.0) == 0


def test_tool_calls_within_the_rate_limit_in_all_never_stop_the_run() -> None:
    policies, stopped = _policies({"tool_calls_per_minute": 10})
    for _ in range(5):
        policies.charge(0, 0.0, 2)
    assert stopped == []
    policies.charge(0, 0.0, 1)  # the 11th call in the same minute
    assert [(r.evidence["limit"], r.evidence["rate"]) for r in stopped] == [
        ("tool_calls_per_minute", 11)]


# -- the policies' step hooks -----------------------------------------------------------------

def test_only_the_no_progress_detector_makes_the_loop_compare_values() -> None:
    assert not _policies(loops=False)[0].watches_progress
    assert not _policies(loops={"no_progress_steps": None, "max_repeats": 3})[0].watches_progress
    assert _policies(loops=None)[0].watches_progress  # on by default
    assert _policies(loops={"no_progress_steps": 5})[0].watches_progress


def test_node_calls_are_counted_per_node_in_a_step_of_many_tasks() -> None:
    policies, _ = _policies()
    tasks = [_task({}), _task({}, push=0), _task({}, OTHER)]
    assert policies.before_step(1, tasks, None) is None
    assert policies.before_step(2, [_task({})], None) is None
    assert policies.usage().node_calls == {"step": 3, "other": 1}
    assert policies.usage().steps == 2


@pytest.mark.parametrize("limit", [2, {"step": 2}])
def test_a_step_that_would_pass_a_node_call_limit_counts_nothing(limit: Any) -> None:
    policies, _ = _policies({"node_calls": limit})
    assert policies.before_step(1, [_task({})], None) is None
    reason = policies.before_step(2, [_task({}), _task({}, push=0)], None)
    assert reason is not None
    assert reason.evidence["node"] == "step"
    assert policies.usage().node_calls == {"step": 1}
    assert policies.usage().steps == 1


@pytest.mark.parametrize("limits", [{"other": 1}, {"step": None, "other": 1}])
def test_a_node_without_a_limit_of_its_own_is_not_limited(limits: dict[str, Any]) -> None:
    policies, _ = _policies({"node_calls": limits})
    for step in range(1, 5):
        assert policies.before_step(step, [_task({})], None) is None
        assert policies.before_step(step, [_task({}), _task({}, push=0)], None) is None
    reason = policies.before_step(5, [_task({}, OTHER), _task({}, OTHER, push=0)], None)
    assert reason is not None and reason.evidence["node"] == "other"


@pytest.mark.parametrize("limit", [0, {"step": 0}])
def test_a_node_call_limit_of_zero_lets_the_node_run_never(limit: Any) -> None:
    for tasks in ([_task({})], [_task({}), _task({}, OTHER)]):
        policies, _ = _policies({"node_calls": limit})
        reason = policies.before_step(1, tasks, None)
        assert reason is not None
        assert (reason.evidence["node"], reason.evidence["value"]) == ("step", 0)
        assert policies.usage().steps == 0


def test_a_step_limit_is_the_first_step_not_taken_and_no_limit_counts_on() -> None:
    policies, _ = _policies({"steps": 2})
    assert [policies.before_step(step, [_task({})], None) is None
            for step in (1, 2, 3)] == [True, True, False]
    unlimited, _ = _policies({"node_calls": {"other": 1}})
    for step in range(1, 50):
        assert unlimited.before_step(step, [_task({})], None) is None
    assert unlimited.usage().steps == 49


def test_charges_from_many_threads_all_count_and_one_past_the_total_stops_the_run() -> None:
    policies, stopped = _policies({"tokens": 8 * 500 - 1, "tool_calls_per_minute": 10**6})

    def report() -> None:
        for _ in range(500):
            policies.charge(1, 0.5, 1)

    threads = [threading.Thread(target=report) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    usage = policies.usage()
    assert (usage.tokens, usage.cost, usage.tool_calls) == (4000, 2000.0, 4000)
    assert [r.evidence["limit"] for r in stopped] == ["tokens"]  # the last charge only


@pytest.mark.parametrize(("report", "kind"), [
    ({"tokens": 11}, "tokens"), ({"cost": 1.5}, "cost"), ({"tool_calls": 4}, "tool_calls"),
])
def test_charge_past_a_total_stops_the_run(report: dict[str, Any], kind: str) -> None:
    policies, stopped = _policies({"tokens": 10, "cost": 1.0, "tool_calls": 3})
    policies.charge(report.get("tokens", 0), report.get("cost", 0.0),
                    report.get("tool_calls", 0))
    assert [r.evidence["limit"] for r in stopped] == [kind]


def test_charge_up_to_a_total_is_within_it_and_one_more_is_not() -> None:
    policies, stopped = _policies({"tokens": 10, "cost": 0.25})
    for _ in range(3):
        policies.charge(3, 0.1, 0)  # 9 tokens (within 10), then 0.3 of cost (past 0.25)
    assert [r.evidence["limit"] for r in stopped] == ["cost"]
    policies, stopped = _policies({"tokens": 10})
    policies.charge(10, 0.0, 0)
    assert stopped == []
    policies.charge(1, 0.0, 0)
    assert [(r.evidence["limit"], r.evidence["value"]) for r in stopped] == [("tokens", 10)]


def test_charge_past_the_tool_call_rate_stops_the_run() -> None:
    policies, stopped = _policies({"tool_calls_per_minute": 3})
    policies.charge(0, 0.0, 2)
    assert stopped == []
    policies.charge(0, 0.0, 2)
    assert [r.evidence["limit"] for r in stopped] == ["tool_calls_per_minute"]


def test_a_step_that_changes_something_starts_the_no_progress_count_again() -> None:
    policies, _ = _policies(loops={"no_progress_steps": 3})
    assert [policies.after_commit(step, progressed, {}) for step, progressed in
            [(1, False), (2, False), (3, True), (4, False), (5, False)]] == [None] * 5
    reason = policies.after_commit(6, False, {})
    assert reason is not None and reason.evidence["steps"] == [4, 5, 6]


# -- the loop: values are compared only for the no-progress detector --------------------------

class Counted:
    """A state value that counts how often it is compared."""

    compared = 0

    def __init__(self, n: int) -> None:
        self.n = n

    def __eq__(self, other: object) -> bool:
        Counted.compared += 1
        return isinstance(other, Counted) and other.n == self.n

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]


class S(TypedDict):
    value: Counted
    n: int


def _graph(**compile_kw: Any) -> Any:
    def step(state: S) -> dict[str, Any]:
        return {"value": Counted(state["n"] // 2), "n": state["n"] + 1}

    b = StateGraph(S).add_node("step", step).add_edge(START, "step")
    b.add_conditional_edges("step", lambda s: "step" if s["n"] < 10 else END)
    return b.compile(**compile_kw)


def test_without_the_no_progress_detector_the_loop_compares_no_state_values() -> None:
    Counted.compared = 0
    _graph(loop_detection=False).invoke({"value": Counted(0), "n": 0})
    assert Counted.compared == 0


def test_the_no_progress_detector_compares_the_values_a_step_wrote() -> None:
    Counted.compared = 0
    _graph().invoke({"value": Counted(0), "n": 0})
    assert Counted.compared > 0


class Two(TypedDict):
    a: Counted
    b: Counted
    n: int


def test_the_no_progress_detector_stops_comparing_at_the_first_changed_value() -> None:
    def step(state: Two) -> dict[str, Any]:
        n = state["n"] + 1
        return {"a": Counted(n), "b": Counted(n), "n": n}

    b = StateGraph(Two).add_node("step", step).add_edge(START, "step")
    b.add_conditional_edges("step", lambda s: "step" if s["n"] < 10 else END)
    Counted.compared = 0
    b.compile().invoke({"a": Counted(0), "b": Counted(0), "n": 0})
    assert Counted.compared == 10  # `a` differs at every step: `b` is never compared


class Sparse(TypedDict, total=False):
    n: int
    extra: int


@pytest.mark.parametrize(("writes", "stopped"), [
    # Equal values written again are no progress: the third such step stops the run.
    ([{"n": 0}] * 5, True),
    # A key written for the first time is progress; so is a changed value.
    ([{"n": 0}, {"n": 0}, {"extra": 1}, {"n": 0}, {"n": 0}], False),
    ([{"n": 0}, {"n": 0}, {"n": 1}, {"n": 1}, {"n": 1}], False),
])
def test_no_progress_counts_steps_whose_writes_change_no_state_value(
        writes: list[dict[str, int]], stopped: bool) -> None:
    done: list[int] = []

    def step(state: Sparse) -> dict[str, int]:
        done.append(len(done))
        return writes[len(done) - 1]

    b = StateGraph(Sparse).add_node("step", step).add_edge(START, "step")
    b.add_conditional_edges("step", lambda s: "step" if len(done) < len(writes) else END)
    graph = b.compile(loop_detection={"no_progress_steps": 3})
    if stopped:
        with pytest.raises(RunCancelled) as caught:
            graph.invoke({"n": 0})
        assert caught.value.reason.evidence["steps"] == [1, 2, 3]
    else:
        graph.invoke({"n": 0})
        assert len(done) == len(writes)


def test_a_grown_list_has_the_fingerprint_of_the_same_list_built_afresh() -> None:
    grown = Fingerprints(None)
    items: list[Any] = []
    for i in range(40):
        items = [*items, {"i": i, "text": f"message {i}"}]
        assert grown.of({"log": items}) == Fingerprints(None).of({"log": list(items)})


def test_lists_grown_by_none_one_or_many_items_match_the_same_lists_built_afresh() -> None:
    grown = Fingerprints(None)
    items: list[Any] = [0]
    for extra in [[], [1], [2, 3, 4], [], [{"k": 5}], ["x" * 40, None]]:
        items = [*items, *extra]
        assert grown.of({"log": items}) == Fingerprints(None).of({"log": list(items)})
    # The last list's hash was extended in place: a list that is only its start is not.
    start = items[:3]
    assert grown.of({"log": start}) == Fingerprints(None).of({"log": list(start)})


def test_a_list_that_does_not_start_with_the_last_one_is_hashed_afresh() -> None:
    prints = Fingerprints(None)
    prints.of({"log": [1, 2, 3]})
    assert prints.of({"log": [9, 2, 3, 4]}) == Fingerprints(None).of({"log": [9, 2, 3, 4]})
    assert prints.of({"log": [9]}) == Fingerprints(None).of({"log": [9]})


def test_lists_never_share_a_fingerprint_with_other_values() -> None:
    prints = Fingerprints(None)
    assert prints.of({"k": [1, 2]}) != Fingerprints(None).of({"k": (1, 2)})
    assert prints.of({"k": []}) != Fingerprints(None).of({"k": None})


def test_lists_whose_items_cannot_be_compared_are_hashed_afresh() -> None:
    class Odd:
        def __eq__(self, other: object) -> bool:
            raise ValueError("no")

        __hash__ = None  # type: ignore[assignment]

        def __repr__(self) -> str:
            return "Odd()"

    prints = Fingerprints(None)
    prints.of({"k": [Odd()]})
    assert prints.of({"k": [Odd(), 1]}) == Fingerprints(None).of({"k": [Odd(), 1]})


def test_a_list_grown_in_place_after_it_was_hashed_is_hashed_afresh() -> None:
    prints = Fingerprints(None)
    log = [1, 2]
    prints.of({"log": log})
    log.append(3)  # a node appending to the state's own list, then a reducer's append
    grown = [*log, 4]
    assert prints.of({"log": grown}) == Fingerprints(None).of({"log": [1, 2, 3, 4]})


def test_a_loop_is_found_in_a_state_whose_list_keeps_growing_then_is_reset() -> None:
    detector = LoopDetector(LoopSettings(max_repeats=2, no_progress_steps=None))
    log: list[int] = []
    steps = []
    for step in range(1, 20):
        log = [] if len(log) == 3 else [*log, len(log)]  # [0], [0, 1], [0, 1, 2], [], ...
        reason = detector.before_step(step, [_task({"n": 1, "log": log})])
        if reason is not None:
            steps = reason.evidence["steps"]
            break
    assert steps == [1, 5, 9]


class _Appended:
    """A state view whose last commit appended `count` items to `start` to make `value`."""

    def __init__(self, start: list[Any], value: list[Any], count: int) -> None:
        self.values = {"log": value}
        self.written: set[str] | None = {"log"}
        self._made = (value, (id(start), count))

    def appended(self, key: str, value: Any) -> tuple[int, int] | None:
        made, answer = self._made
        return answer if key == "log" and value is made else None


def test_a_list_its_commit_appended_to_is_extended_without_comparing_it() -> None:
    prints = Fingerprints(None)
    log = [{"i": i} for i in range(5)]
    prints.of_dict({"log": log})
    grown = [*log, {"i": 5}]
    made = prints.of_dict({"log": grown}, state=_Appended(log, grown, 1))
    assert made == Fingerprints(None).of({"log": list(grown)})
    # The state's word is taken, the lists are not compared: told (wrongly) that a list
    # of other items was made from the last one, the hash of the last one is extended.
    told = [{"i": 9}] * 6 + [{"i": 6}]
    believed = prints.of_dict({"log": told}, state=_Appended(grown, told, 1))
    assert believed == Fingerprints(None).of({"log": [*grown, {"i": 6}]})
    assert believed != Fingerprints(None).of({"log": list(told)})


def test_an_append_to_another_list_or_to_one_grown_in_place_is_compared() -> None:
    prints = Fingerprints(None)
    log = [1, 2]
    prints.of_dict({"log": log})
    other = [9, 9]
    grown = [*other, 3]  # the commit appended to a list this fingerprint never hashed
    assert prints.of_dict({"log": grown}, state=_Appended(other, grown, 1)) == \
        Fingerprints(None).of({"log": [9, 9, 3]})
    grown.append(4)  # grown in place since hashed, then appended to
    longer = [*grown, 5]
    assert prints.of_dict({"log": longer}, state=_Appended(grown, longer, 1)) == \
        Fingerprints(None).of({"log": [9, 9, 3, 4, 5]})


class Logged(TypedDict):
    log: Annotated[list[int], operator.add]


def test_a_state_whose_list_grows_then_is_reset_is_found_looping() -> None:
    def step(state: Logged) -> dict[str, Any]:
        log = state["log"]
        return {"log": Overwrite([])} if len(log) == 3 else {"log": [len(log)]}

    b = StateGraph(Logged).add_node("step", step).add_edge(START, "step")
    b.add_edge("step", "step")
    graph = b.compile(loop_detection={"max_repeats": 2, "no_progress_steps": None})
    with pytest.raises(RunCancelled) as caught:
        graph.invoke({"log": []})
    # [] at steps 1, 5 and 9: the lists in between grew by appends, hashed as they grew.
    assert caught.value.reason.evidence["steps"] == [1, 5, 9]


# -- per-run objects --------------------------------------------------------------------------

def test_runs_without_limits_share_one_budget_and_one_loop_settings() -> None:
    from tether.config import parse_config
    from tether.runs.policies import PolicyDefaults
    from tether.runs.policies.budget import UNLIMITED

    defaults = PolicyDefaults()
    first = defaults.for_run(parse_config(None), lambda reason: None)
    second = defaults.for_run(parse_config(None), lambda reason: None)
    assert first.budget is second.budget is UNLIMITED
    assert first.detector is not None and second.detector is not None
    assert first.detector.settings is second.detector.settings
    assert first.detector.settings == LoopSettings()
    # What a run spends is still its own.
    assert first.tally is not second.tally
    # A limit, or a setting, is a value of its own; the shared ones stay unchanged.
    assert Budget.parse({"steps": 3}).steps == 3 and UNLIMITED.steps is None
    assert LoopSettings.parse({"max_repeats": 2}) == LoopSettings(max_repeats=2)
    assert LoopSettings.parse({"enabled": False}) is None


def test_an_unlimited_run_reports_its_usage_and_no_budget() -> None:
    from tether.runs.finalize import spent

    policies, _ = _policies()
    policies.charge(5, 0.5, 1)
    shown = spent(policies)
    assert set(shown) == {"usage"}
    assert shown["usage"]["tokens"] == 5 and shown["usage"]["tool_calls"] == 1
    limited, _ = _policies({"tokens": 100})
    assert spent(limited)["budget"] == {"tokens": 100}


# -- what a guard sees of a task ------------------------------------------------------------

def test_a_tasks_update_shows_its_state_writes_only() -> None:
    task = _task({})
    task.writes = [("n", 1), ("branch:to:step", None), ("join:a+b:c", None), ("__pregel_tasks", 0),
                   ("", 5), ("log", [1])]
    assert task.state_update() == {"n": 1, "log": [1]}
    assert task.state_update() == {"n": 1, "log": [1]}  # asked again: the same answer
    task.writes = [("branch:to:step", None)]
    assert task.state_update() is None


def test_running_total_marks_count_the_window_as_a_rate_does() -> None:
    marks, rate = Marks(window=60.0), Rate(window=60.0)
    total = 0
    for when, count in [(0.0, 3), (10.0, 2), (50.0, 1), (61.0, 4)]:
        total += count
        marks.marks.append((when, total))
        rate.add(count, now=when)
    for when in (61.0, 70.5, 111.0, 200.0):
        assert marks.count(total, now=when) == rate.add(0, now=when)


def test_pruned_marks_keep_only_the_window() -> None:
    marks = Marks(window=60.0)
    for second in range(1000):
        marks.marks.append((float(second), 2 * (second + 1)))
        if len(marks.marks) >= marks.prune_at:
            marks.prune(now=float(second))
    assert len(marks.marks) <= 2 * 61 + 64
    assert marks.count(2000, now=999.0) == 2 * 61
