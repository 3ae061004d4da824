"""The web console, driven by clicks in Chromium on a real server (SQLite and Postgres modes),
each feature checked against the store: the runs list (filters, search, pages, threads, live),
a stopped run and what it kept, a failed run, answering an interrupt, edit and continue,
resume refused, the timeline and state, usage against a budget, the chat view — and the
hygiene: the key, no polling, plurals, two screen sizes, accessibility.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tether.types import RunStatus

from .console_page import Console, Tab, sqlite_console

pytestmark = pytest.mark.browser
LONG = {"count": 0, "limit": 100_000}


def _row(run_id: str, status: str | None = None) -> str:
    found = f'#runs tr[data-run-id="{run_id}"]'
    return f'{found}[data-status="{status}"]' if status else found


def _range(first: int, last: int, total: int) -> str:
    return f"#page-range:text-is('{first}\u2013{last} of {total}')"


def _rows(page: Any) -> list[str]:
    return [str(r) for r in page.eval_on_selector_all(
        "#runs tr[data-run-id]", "rows => rows.map(r => r.dataset.runId)")]


# -- the runs list ------------------------------------------------------------------------------


def test_the_list_filters_searches_pages_and_groups_runs(console: Console, tab: Tab) -> None:
    batch = uuid.uuid4().hex[:10]
    shared = console.http.post("/threads", json={}).json()["thread_id"]
    done = [console.start("counter", {"count": 0, "limit": 0}, metadata={"batch": batch},
                          thread_id=shared if i < 2 else None) for i in range(4)]
    failed = console.start("failing", {"value": 1}, metadata={"batch": batch})
    for run in done:
        console.settled(run["run_id"], RunStatus.SUCCESS)
    console.settled(failed["run_id"], RunStatus.ERROR)
    ours = {r["run_id"] for r in [*done, failed]}

    page = tab.open()
    page.fill("#filter-q", batch)
    page.wait_for_selector("#runs-count:text-is('5 runs')")
    assert set(_rows(page)) == ours
    page.select_option("#filter-status", "error")
    page.wait_for_selector("#runs-count:text-is('1 run')")
    assert _rows(page) == [failed["run_id"]]
    stored = [r.run_id for r in console.store.list_runs(status=RunStatus.ERROR)
              if r.metadata.get("batch") == batch]
    assert stored == [failed["run_id"]]
    page.select_option("#filter-status", "")
    page.select_option("#filter-graph", "counter")
    page.wait_for_selector("#runs-count:text-is('4 runs')")
    page.select_option("#filter-graph", "")
    page.select_option("#filter-time", "3600")
    page.wait_for_selector("#runs-count:text-is('5 runs')")
    assert "since=" in page.evaluate("location.hash") or "time=" in page.evaluate(
        "location.hash")
    page.select_option("#filter-kind", "user")
    page.wait_for_selector("#runs-count:text-is('0 runs')")
    assert page.inner_text("#no-runs") == "No runs match these filters."
    page.select_option("#filter-kind", "")
    page.select_option("#filter-time", "")

    page.select_option("#page-size", "10")
    page.wait_for_selector(_range(1, 5, 5))
    page.check("#filter-group")
    page.wait_for_selector("#runs tr.group")
    heads = page.locator("#runs tr.group").all_inner_texts()
    assert any(shared in h and "2 runs" in h for h in heads)
    page.locator(f'#runs tbody.thread:has(tr[data-run-id="{done[0]["run_id"]}"]) '
                 "button:text('only this thread')").click()
    page.wait_for_selector("#runs-count:text-is('2 runs')")
    assert set(_rows(page)) == {done[0]["run_id"], done[1]["run_id"]}
    assert "thread=" in page.evaluate("location.hash")


def test_the_list_pages_with_newer_and_older(console: Console, tab: Tab) -> None:
    batch = uuid.uuid4().hex[:10]
    runs = [console.start("counter", {"count": 0, "limit": 0}, metadata={"batch": batch})
            for _ in range(12)]
    for run in runs:
        console.settled(run["run_id"], RunStatus.SUCCESS)
    page = tab.open(f"/?q={batch}&limit=10")
    page.wait_for_selector(_range(1, 10, 12))
    first = _rows(page)
    page.click("#page-older")
    page.wait_for_selector(_range(11, 12, 12))
    assert first + _rows(page) == [r["run_id"] for r in reversed(runs)]
    assert page.is_disabled("#page-older")
    page.click("#page-newer")
    page.wait_for_selector(_range(1, 10, 12))


def test_the_list_updates_live_without_polling(console: Console, tab: Tab) -> None:
    batch = uuid.uuid4().hex[:10]
    page = tab.open(f"/?q={batch}")
    page.wait_for_selector("#no-runs:visible")
    page.wait_for_timeout(300)
    before = len(tab.requests)
    page.wait_for_timeout(1500)
    assert tab.requests[before:] == []  # idle: no request at all (the board streams)
    run = console.start("counter", LONG, metadata={"batch": batch})
    page.wait_for_selector(_row(run["run_id"], "running"))
    console.http.post(f"/threads/{run['thread_id']}/runs/{run['run_id']}/cancel",
                      params={"wait": 1}, json={"reason": "seen from afar"})
    page.wait_for_selector(_row(run["run_id"], "cancelled"))
    assert "seen from afar" in page.inner_text(_row(run["run_id"]))
    assert console.settled(run["run_id"], RunStatus.CANCELLED).reason is not None


# -- a stopped run --------------------------------------------------------------------------------


def test_stop_shows_who_why_when_and_what_was_kept_then_resume(console: Console,
                                                                tab: Tab) -> None:
    run = console.start("counter", LONG)
    console.settled(run["run_id"], RunStatus.RUNNING)
    page = tab.open()
    tab.run(run["run_id"])
    page.wait_for_selector('#graph g[data-node="tick"].running')
    page.fill("#stop-reason", "stopped from the page")
    clicked = time.monotonic()
    page.click("#stop-button")
    page.wait_for_selector('#run-status[data-status="cancelled"]', timeout=2000)
    assert time.monotonic() - clicked < 2.0
    page.wait_for_selector(_row(run["run_id"], "cancelled"))
    info = console.settled(run["run_id"], RunStatus.CANCELLED)
    kept = console.store.load(run["run_id"])
    banner = page.inner_text("#run-banner")
    assert "stopped from the page" in banner and "api:tenant-a" in banner
    assert "Stopped" in banner and "after the request" in banner
    assert info.reason is not None and info.reason.message == "stopped from the page"
    page.wait_for_selector("#kept")
    assert page.input_value("#stop-reason") == ""
    values = page.inner_text("#kept table.kv")
    assert f"count\n{kept.values['count']}" in values.replace("\t", "\n")
    # `tick` was cancelled while it ran, or the stop came at a step boundary: as the store says.
    chips = page.locator("#kept .chip.cancelled").all_inner_texts()
    assert chips == list(kept.cancelled_tasks) and set(chips) <= {"tick"}
    assert kept.next == ("tick",) and "A resume runs: tick" in page.inner_text("#kept")
    assert kept.checkpoint_id is not None and kept.checkpoint_id[-8:] in page.inner_text("#kept")
    if kept.cancelled_tasks:
        page.wait_for_selector('#graph g[data-node="tick"].cancelled')

    page.click("#tab-audit")
    expected = [e.phase for e in console.store.events(run["run_id"])]
    # The audit table is fetched when its tab opens: wait for it to be drawn.
    page.wait_for_function("n => document.querySelectorAll('#panel-audit tr[data-phase]')"
                           ".length >= n", arg=len(expected))
    phases = page.eval_on_selector_all("#panel-audit tr[data-phase]", "r => r.map(x => "
                                       "x.dataset.phase)")
    assert phases == expected
    assert page.locator("#panel-audit tr[data-phase=request] dd").first.inner_text() == "user"

    page.wait_for_selector("#resume-button:visible")
    assert page.is_enabled("#resume-button"), page.inner_text("#resume-why")
    page.click("#resume-button")
    page.wait_for_selector(f'#run-id:not(:text-is("{run["run_id"]}"))')
    resumed = page.inner_text("#run-id")
    console.settled(resumed, RunStatus.RUNNING)
    page.wait_for_selector('#run-status[data-status="running"]')
    assert page.input_value("#stop-reason") == ""
    lineage = page.inner_text("#lineage")
    assert "Resumed from" in lineage and run["run_id"][-8:] in lineage
    again = console.store.get_run(resumed)
    assert again is not None and again.thread_id == run["thread_id"]
    assert again.metadata.get("resumed_from") == run["run_id"]
    page.click("#stop-button")
    console.settled(resumed, RunStatus.CANCELLED)


def test_a_stop_mid_step_shows_the_finished_tasks_writes_and_the_cancelled_one(
        console: Console, tab: Tab) -> None:
    run = console.start("fanout", {"log": [], "pause": 60})
    console.settled(run["run_id"], RunStatus.RUNNING)
    page = tab.open()
    tab.run(run["run_id"])
    page.wait_for_timeout(500)  # `quick` takes 30 ms; `slow` a minute
    page.fill("#stop-reason", "the slow search is not needed")
    page.click("#stop-button")
    page.wait_for_selector('#run-status[data-status="cancelled"]')
    console.settled(run["run_id"], RunStatus.CANCELLED)
    kept = console.store.load(run["run_id"])
    assert kept.cancelled_tasks == ("slow",)
    assert [tuple(w) for w in kept.pending_writes] == [("quick", "log", ["quick"])]
    page.wait_for_selector("#kept table.writes")
    assert page.inner_text("#kept table.writes tbody").split() == ["quick", "log", "[",
                                                                   '"quick"', "]"]
    assert page.inner_text("#kept .chip.cancelled") == "slow"
    page.wait_for_selector('#graph g[data-node="quick"].done')
    page.wait_for_selector('#graph g[data-node="slow"].cancelled')
    console.shoot(page, "cancelled")
    page.click("#tab-timeline")
    page.wait_for_selector('#panel-timeline rect.bar[data-node="slow"][data-status="cancelled"]')
    page.wait_for_selector('#panel-timeline rect.bar[data-node="quick"][data-status="kept"]')


def test_what_a_stop_kept_is_shown_after_a_restart(browser: Any, tmp_path: Path) -> None:
    db = tmp_path / "restart.db"
    with sqlite_console(db) as first:
        run = first.start("counter", LONG)
        first.settled(run["run_id"], RunStatus.RUNNING)
        time.sleep(0.1)
        first.http.post(f"/threads/{run['thread_id']}/runs/{run['run_id']}/cancel",
                        params={"wait": 1}, json={"reason": "before the restart"})
        count = first.store.load(run["run_id"]).values["count"]
    with sqlite_console(db) as second:
        tab = Tab(browser, second, {"width": 1280, "height": 800})
        try:
            page = tab.open()
            tab.run(run["run_id"])
            page.wait_for_selector("#kept table.kv")
            assert f"count\n{count}" in page.inner_text("#kept table.kv").replace("\t", "\n")
            assert "before the restart" in page.inner_text("#run-banner")
            page.click("#tab-audit")
            page.wait_for_selector("#panel-audit tr[data-phase=terminate]")
            assert tab.errors == []
        finally:
            tab.close()


def test_a_failed_run_shows_its_node_and_error(console: Console, tab: Tab) -> None:
    run = console.start("failing", {"value": 42})
    info = console.settled(run["run_id"], RunStatus.ERROR)
    page = tab.open()
    tab.run(run["run_id"])
    page.wait_for_selector('#run-status[data-status="error"]')
    banner = page.inner_text("#run-banner")
    assert "Failed in node boom" in banner and "ValueError: boom at 42" in banner
    assert info.error == "ValueError: boom at 42" and info.error_node == "boom"
    page.click("#run-banner .traceback summary")
    assert info.error_traceback is not None
    assert page.inner_text("#run-banner .traceback pre") == info.error_traceback
    assert "raise ValueError" in info.error_traceback
    page.wait_for_selector('#graph g[data-node="boom"].failed')
    console.shoot(page, "failed")
    page.click("#tab-timeline")
    page.wait_for_selector('#panel-timeline rect.bar[data-node="boom"][data-status="failed"]')


def test_resume_is_not_offered_where_it_would_rewind_the_thread(console: Console,
                                                                 tab: Tab) -> None:
    first = console.start("counter", LONG)
    console.checkpointed(first["run_id"])  # else it has nothing to resume from at all
    second = console.start("counter", {"count": 0, "limit": 1}, thread_id=first["thread_id"],
                           multitask_strategy="interrupt")
    console.settled(first["run_id"], RunStatus.CANCELLED)
    console.settled(second["run_id"], RunStatus.SUCCESS)
    page = tab.open()
    tab.run(first["run_id"])
    page.wait_for_selector("#resume-why:visible")
    assert page.is_disabled("#resume-button")
    why = page.inner_text("#resume-why")
    assert f"run {second['run_id']} superseded" in why and "Edit and continue" in why
    assert second["run_id"][-8:] in page.inner_text("#lineage")
    assert len(console.store.list_runs(thread_id=first["thread_id"])) == 2


# -- acting on a run --------------------------------------------------------------------------


def test_answering_an_interrupt_resumes_the_run_with_the_answer(console: Console,
                                                                tab: Tab) -> None:
    run = console.start("approval", {"question": "Ship release 1.4?", "answer": ""})
    console.settled(run["run_id"], RunStatus.INTERRUPTED)
    page = tab.open()
    tab.run(run["run_id"])
    page.wait_for_selector("#answer-form:visible")
    assert page.inner_text("#answer-question .question-text") == "Ship release 1.4?"
    assert "waiting for input since" in page.inner_text("#run-meta")
    page.fill("#answer-input", "yes, ship it")
    console.shoot(page, "interrupt")
    page.click("#answer-form button[type=submit]")
    page.wait_for_selector(f'#run-id:not(:text-is("{run["run_id"]}"))')
    answered = page.inner_text("#run-id")
    console.settled(answered, RunStatus.SUCCESS)
    page.wait_for_selector('#run-status[data-status="success"]')
    state = console.http.get(f"/threads/{run['thread_id']}/state").json()
    assert state["values"] == {"question": "Ship release 1.4?", "answer": "yes, ship it"}


def test_edit_and_continue_forks_the_run_with_the_edited_value(console: Console,
                                                                tab: Tab) -> None:
    run = console.start("counter", LONG)
    console.settled(run["run_id"], RunStatus.RUNNING)
    page = tab.open()
    tab.run(run["run_id"])
    page.wait_for_selector("#edit-button:text-is('Stop and edit')")
    page.click("#edit-button")
    page.wait_for_selector("#fork-form:visible")
    kept = console.store.load(run["run_id"])
    assert console.settled(run["run_id"], RunStatus.CANCELLED).reason is not None
    assert json.loads(page.input_value("#fork-count")) == kept.values["count"]
    target = kept.values["count"] + 3
    page.fill("#fork-limit", str(target))
    console.shoot(page, "fork")
    page.click("#fork-form button[type=submit]")
    page.wait_for_selector(f'#run-id:not(:text-is("{run["run_id"]}"))')
    forked = page.inner_text("#run-id")
    console.settled(forked, RunStatus.SUCCESS)
    page.wait_for_selector('#run-status[data-status="success"]')
    assert "Forked from" in page.inner_text("#lineage")
    info = console.store.get_run(forked)
    assert info is not None and info.metadata["forked_from"] == run["run_id"]
    assert console.store.load(forked).values == {"count": target, "limit": target}
    original = console.store.get_checkpoint(run["thread_id"], "", kept.checkpoint_id)
    assert original is not None and original.values["limit"] == LONG["limit"]


# -- views --------------------------------------------------------------------------------------


def test_the_timeline_and_state_show_tasks_and_changes(console: Console, tab: Tab) -> None:
    run = console.start("fanout", {"log": []})
    console.settled(run["run_id"], RunStatus.SUCCESS)
    page = tab.open()
    tab.run(run["run_id"], "timeline")
    page.wait_for_selector("#panel-timeline svg.gantt")
    bars = page.eval_on_selector_all("#panel-timeline rect.bar", "b => b.map(x => "
                                     "[x.dataset.node, x.dataset.status, x.dataset.step])")
    assert sorted(bars) == [["merge", "done", "2"], ["quick", "done", "1"],
                            ["slow", "done", "1"]]
    checkpoints = [c for c in console.store.list_checkpoints(run["thread_id"])
                   if c.metadata.get("tasks")]
    assert sorted(tuple(c.metadata["tasks"]) for c in checkpoints) == [("merge",),
                                                                       ("quick", "slow")]
    console.shoot(page, "timeline")
    page.click("#tab-state")
    page.wait_for_selector("#panel-state li.change")
    merged = page.locator('#panel-state li.step-card[data-step="2"] li.change')
    assert merged.get_attribute("data-op") == "appended"
    assert '"merged"' in merged.inner_text()
    page.locator('#panel-state li.step-card[data-step="2"] button').click()
    page.wait_for_selector('#panel-state li.step-card[data-step="2"] .full-state pre')
    full = page.inner_text('#panel-state li.step-card[data-step="2"] .full-state pre')
    assert json.loads(full) == console.store.load(run["run_id"]).values


def test_usage_is_shown_against_the_budget(console: Console, tab: Tab) -> None:
    run = console.start("counter", LONG, config={"budget": {"steps": 4}})
    info = console.settled(run["run_id"], RunStatus.CANCELLED)
    assert info.reason is not None and info.reason.kind == "budget"
    page = tab.open()
    tab.run(run["run_id"])
    page.wait_for_selector("#usage .meter")
    steps = page.inner_text('#usage .meter[data-name="steps"]')
    assert "of 4" in steps
    assert "budget" in page.inner_text("#run-banner").lower()


def test_the_chat_view_shows_tool_calls_and_stops_generating(console: Console,
                                                            tab: Tab) -> None:
    run = console.start("chat", {"messages": [{"role": "user",
                                               "content": "Weather in Paris?"}]})
    console.settled(run["run_id"], RunStatus.SUCCESS)
    page = tab.open()
    tab.run(run["run_id"], "chat")
    page.wait_for_selector("#chat-messages li.msg")
    roles = page.eval_on_selector_all("#chat-messages li.msg", "m => m.map(x => x.dataset.role)")
    assert roles == ["human", "ai", "ai"]
    weather = page.locator('li.tool-call[data-tool-call-id="call_weather"]')
    assert "weather(city: \"Paris\")" in weather.inner_text()
    assert "18 °C, sunny" in weather.inner_text()
    search = page.locator('li.tool-call[data-tool-call-id="call_search"]')
    assert search.locator(".chip.cancelled").inner_text() == "cancelled"
    console.shoot(page, "chat")

    page.fill("#chat-input", "Think slowly about it")
    page.click(".chat-composer button[type=submit]")
    page.wait_for_selector(f'#run-id:not(:text-is("{run["run_id"]}"))')
    slow = page.inner_text("#run-id")
    page.wait_for_selector("#stop-generating")
    console.settled(slow, RunStatus.RUNNING)
    page.click("#stop-generating")
    info = console.settled(slow, RunStatus.CANCELLED)
    assert info.reason is not None and info.reason.message == "stopped generating from the chat"
    page.wait_for_selector('#run-status[data-status="cancelled"]')
    page.wait_for_selector(".chat-composer")


def test_chat_tokens_stream_in_from_messages_events(console: Console, tab: Tab) -> None:
    run = console.start("chat", {"messages": [{"role": "user", "content": "slowly, please"}]})
    console.settled(run["run_id"], RunStatus.RUNNING)
    chunk = {"type": "AIMessageChunk", "content": "", "id": "stream-1"}
    events = [("messages", [{**chunk, "content": "Thinking"}, {"langgraph_node": "model"}]),
              ("messages", [{**chunk, "content": " it over"}, {"langgraph_node": "model"}])]
    body = "".join(f"event: {e}\r\ndata: {json.dumps(d)}\r\nid: {i}\r\n\r\n"
                   for i, (e, d) in enumerate(events, start=10_000))
    # The run's stream as the Agent Server sends `messages` (tokens): what the page must show.
    tab.page.route(f"**/tether/runs/{run['run_id']}/stream*", lambda route: route.fulfill(
        status=200, content_type="text/event-stream", body=body))
    page = tab.open()
    tab.run(run["run_id"], "chat")
    page.wait_for_selector('#chat-messages li.msg.streaming[data-id="stream-1"]')
    assert page.inner_text('li.msg.streaming[data-id="stream-1"] .content') == "Thinking it over"
    page.click("#stop-generating")
    console.settled(run["run_id"], RunStatus.CANCELLED)


# -- hygiene --------------------------------------------------------------------------------------


def test_the_key_lives_in_session_storage_and_a_wrong_key_is_told_apart(
        console: Console, tab: Tab) -> None:
    page = tab.page
    page.goto(console.url + "/")
    page.wait_for_selector("#connection:text('needs an API key')")
    page.fill("#api-key", "not-a-key")
    page.click("#key-form button")
    page.wait_for_selector("#connection:text('was not accepted')")
    assert page.locator("#runs tr[data-run-id]").count() == 0
    page.fill("#api-key", console.key)
    page.click("#key-form button")
    page.wait_for_selector("#connection:text('connected')")
    assert page.evaluate("sessionStorage.getItem('tether.apiKey')") == console.key
    assert page.evaluate("localStorage.length") == 0


def test_the_layout_holds_on_a_laptop_and_a_phone(console: Console, tab: Tab,
                                                  phone_tab: Tab) -> None:
    run = console.start("counter", LONG, metadata={"note": "x" * 300})
    console.settled(run["run_id"], RunStatus.RUNNING)
    console.http.post(f"/threads/{run['thread_id']}/runs/{run['run_id']}/cancel",
                      params={"wait": 1}, json={"reason": "a rather long reason " * 8})
    for each in (tab, phone_tab):
        page = each.open()
        page.wait_for_selector(_row(run["run_id"]))
        assert each.overflow() <= 0
        each.run(run["run_id"], "audit")
        page.wait_for_selector("#panel-audit tr[data-phase=terminate]")
        assert each.overflow() <= 0
    phone = phone_tab.page
    assert phone.is_visible("#back") and not phone.is_visible("#runs-pane")
    console.shoot(phone, "phone")
    phone.click("#back")
    phone.wait_for_selector("#runs-pane:visible")
    assert not phone.is_visible("#run-view")


def test_the_console_has_no_serious_accessibility_violations(console: Console,
                                                             tab: Tab) -> None:
    stopped = console.start("counter", LONG)
    console.settled(stopped["run_id"], RunStatus.RUNNING)
    console.http.post(f"/threads/{stopped['thread_id']}/runs/{stopped['run_id']}/cancel",
                      params={"wait": 1})
    chat = console.start("chat", {"messages": [{"role": "user", "content": "Weather?"}]})
    asked = console.start("approval", {"question": "Proceed?", "answer": ""})
    failed = console.start("failing", {"value": 1})
    for run_id, status in ((chat["run_id"], RunStatus.SUCCESS),
                           (asked["run_id"], RunStatus.INTERRUPTED),
                           (failed["run_id"], RunStatus.ERROR)):
        console.settled(run_id, status)
    tab.serve_axe()
    page = tab.open()
    page.wait_for_selector(_row(failed["run_id"]))
    console.shoot(page, "runs")
    assert tab.axe() == []
    for run_id, view in ((stopped["run_id"], "overview"), (stopped["run_id"], "timeline"),
                         (stopped["run_id"], "state"), (stopped["run_id"], "audit"),
                         (chat["run_id"], "chat"), (asked["run_id"], "overview"),
                         (failed["run_id"], "overview")):
        tab.run(run_id, view)
        page.wait_for_selector(f"#panel-{view} .card")
        assert tab.axe() == [], (run_id, view)
