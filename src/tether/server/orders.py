"""From a run request to a `RunOrder`: the assistant, the thread (created when asked), the
config the run gets, its input or command, and the facts its record shows."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException

from tether.checkpoint.ids import uuid7
from tether.config import merge_configs, parse_config
from tether.server.auth import Principal
from tether.server.context import ServerState
from tether.server.errors import invalid, not_found
from tether.server.graphs import Assistant
from tether.server.launcher import RunOrder
from tether.server.message_events import run_modes
from tether.server.models import CommandIn, RunCreate
from tether.server.wire import RunFacts
from tether.types import Command, Send

SERVER_STRATEGY = "enqueue"
"""The Agent Server's default `multitask_strategy` (the library's own default is `reject`)."""


def assistant_for(server: ServerState, body: RunCreate) -> Assistant:
    """The assistant the request names.

    Raises:
        HTTPException: 404 for an unknown assistant or graph.
    """
    assistant = server.assistants.get(body.assistant_id)
    if assistant is None:
        raise not_found("assistant", body.assistant_id)
    return assistant


async def prepare_thread(server: ServerState, caller: Principal, thread_id: str,
                         assistant: Assistant, if_not_exists: str | None) -> str:
    """Make sure the caller's thread exists (creating it if asked) and records its graph; the
    id it is stored under (what its runs are queued on). The write goes through the store's
    async API (never blocking the loop): one write, whether the thread is created or only gets
    its graph recorded.

    Raises:
        HTTPException: 404 for a missing thread (unless `if_not_exists="create"`) or another
            tenant's.

    Cancellation:
        As `CheckpointStore.aput_thread`: the write is whole or not made; no run is started.
    """
    graph = {"graph_id": assistant.graph_id, "assistant_id": assistant.assistant_id}
    try:
        record = await server.thread(caller, thread_id)
    except HTTPException:
        if if_not_exists != "create":
            raise
        record, created = await server.create_thread(caller, thread_id, graph,
                                                     if_exists="do_nothing")
        if created:
            return record.thread_id
    stored = record.thread_id
    await server.store.aput_thread(stored, graph)
    return stored


def command_of(command: CommandIn) -> Command[str]:
    """The `Command` a request's `command` object stands for."""
    goto: Any = command.goto
    if goto is None:
        targets: Any = ()
    elif isinstance(goto, list):
        targets = [_target(g) for g in goto]
    else:
        targets = _target(goto)
    return Command(resume=command.resume, update=command.update, goto=targets)


def _target(goto: Any) -> Any:
    return goto if isinstance(goto, str) else Send(goto.node, goto.input)


def order_for(assistant: Assistant, thread_id: str, body: RunCreate, caller: Principal, *,
              temporary: bool = False, resume_of: str | None = None) -> RunOrder:
    """The order for a run of `assistant` on `thread_id`.

    Raises:
        HTTPException: 422 for both `context` and `config.configurable` (the Agent Server's
            rule: context replaces configurable), or an interrupt on a node the graph lacks.
        ConfigError: a config a run would refuse (422).
    """
    _check_interrupts(assistant, body)
    config = checked_config(assistant, body.config)
    configurable = dict(config.get("configurable") or {})
    if body.context and configurable:
        raise invalid("give either context or config['configurable'], not both",
                      "body", "context")
    checkpoint = body.checkpoint
    checkpoint_id = body.checkpoint_id or (checkpoint.checkpoint_id if checkpoint else None)
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    if configurable:
        config["configurable"] = configurable
    durability = body.durability or ("exit" if body.checkpoint_during is False else None)
    if durability is not None:
        config["durability"] = durability
    strategy = body.multitask_strategy or SERVER_STRATEGY
    graph_input = command_of(body.command) if body.command is not None else body.input
    return RunOrder(
        assistant=assistant, thread_id=thread_id, run_id=uuid7(), input=graph_input,
        config=config, context=body.context or None, stream_modes=run_modes(body.modes),
        subgraphs=body.stream_subgraphs, interrupt_before=body.interrupt_before,
        interrupt_after=body.interrupt_after, multitask_strategy=strategy,
        facts=RunFacts(assistant.assistant_id, dict(body.metadata or {}), strategy,
                       _kwargs(body, config)),
        resume_of=resume_of, temporary=temporary, tenant=caller.tenant,
    )


def checked_config(assistant: Assistant, config: dict[str, Any] | None) -> dict[str, Any]:
    """A copy of the client's config, once it is one a run of `assistant` accepts.

    Checked here, before the run is started or queued, with the validator runs use
    (`parse_config`), so that a run queued for a worker is refused as a local one would be
    rather than failing in every worker that claims it.

    Raises:
        ConfigError: naming the key (answered 422).
    """
    parse_config(merge_configs(assistant.graph.config, config))
    return dict(config or {})


def _check_interrupts(assistant: Assistant, body: RunCreate) -> None:
    nodes = set(assistant.graph.nodes)
    for field, names in (("interrupt_before", body.interrupt_before),
                         ("interrupt_after", body.interrupt_after)):
        unknown = sorted(set(names) - nodes) if isinstance(names, list) else []
        if unknown:
            raise invalid(f"{field} names nodes graph {assistant.graph_id!r} does not have: "
                          f"{', '.join(unknown)} (it has {', '.join(sorted(nodes))})",
                          "body", field)


def _kwargs(body: RunCreate, config: dict[str, Any]) -> dict[str, Any]:
    """The Agent Server's `Run.kwargs`: what the run was asked to do."""
    return {
        "input": body.input,
        "command": body.command.model_dump() if body.command is not None else None,
        "config": config,
        "context": body.context or {},
        "stream_mode": list(body.modes),
        "subgraphs": body.stream_subgraphs,
        "resumable": body.stream_resumable,
        "interrupt_before": body.interrupt_before,
        "interrupt_after": body.interrupt_after,
        "on_disconnect": body.on_disconnect or "continue",
    }


def new_thread_id() -> str:
    """A fresh thread id (time-ordered, as the Agent Server's)."""
    return uuid7()


__all__ = ["SERVER_STRATEGY", "assistant_for", "checked_config", "command_of", "new_thread_id",
           "order_for", "prepare_thread"]
