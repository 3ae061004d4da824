"""Where a finished task's answer sends the graph: its state writes, its edges, its
conditional edges and its gotos, as trigger writes for the next superstep."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from tether import node_context
from tether.constants import END, TASKS
from tether.engine.spec import BranchSpec, NodeSpec, Write
from tether.engine.task import Task
from tether.errors import InvalidRouteError, InvalidUpdateError, ParentCommand
from tether.types import Command, Send


class Router:
    """Turns node answers into writes.

    Args:
        nodes: the graph's nodes (to check that routes name one).
        preview: the state with only some writes applied (what a conditional edge sees).
    """

    __slots__ = ("nodes", "preview")

    def __init__(self, nodes: Mapping[str, NodeSpec],
                 preview: Callable[[list[Write]], dict[str, Any]]) -> None:
        self.nodes = nodes
        self.preview = preview

    async def writes_for(self, task: Task, result: Any) -> list[Write]:
        """The writes a task's return value makes: state updates, edges, branches, gotos.

        Cancellation:
            A conditional edge may await; cancelled there, no write is made.
        """
        node = task.node
        updates = node.updates
        writes: list[Write]
        gotos: tuple[Send | str, ...] = ()
        # A dict is a plain update (the usual answer: no Command to look for in it).
        if result.__class__ is dict or (commands := _commands(result)) is None:
            writes = updates(result) if updates is not None else []
            task.update = result
        else:
            writes = []
            for command in commands:
                if command.graph == Command.PARENT:
                    raise ParentCommand(command)
                if command.update is not None and updates is not None:
                    writes.extend(updates(command.update))
                gotos += command.goto_targets()
            task.update = commands[0].update if len(commands) == 1 else [
                c.update for c in commands]
        # The state writes lead the list: what the task's `updates` chunk shows of it.
        task.state_writes = len(writes)
        if node.edges:
            writes.extend(node.edges)
        if node.branches:
            state = self.preview(writes)
            for branch in node.branches:
                writes.extend(await self.branch_writes(branch, state, node.name))
        for target in gotos:
            if target != END:
                writes.append(self.goto_write(target, node.name))
        return writes

    def goto_write(self, target: Send | str, source: str) -> Write:
        """The trigger write that routes to `target` (a node name or a `Send`)."""
        if isinstance(target, Send):
            if target.node not in self.nodes:
                raise InvalidUpdateError(f"Node '{source}' sent to unknown node {target.node!r}")
            return (TASKS, target)
        if target not in self.nodes:
            raise InvalidUpdateError(f"Node '{source}' returned goto to unknown node {target!r}")
        return (f"branch:to:{target}", None)

    async def branch_writes(self, branch: BranchSpec, state: dict[str, Any],
                            source: str) -> list[Write]:
        """Evaluate a conditional edge on `state` and turn its answer into trigger writes.

        Cancellation:
            The path function may await; cancelled there, no write is made.
        """
        arg = branch.reader(state) if branch.reader is not None else state
        kwargs: dict[str, Any] = {}
        if "config" in branch.kwargs:
            ctx = node_context.current()
            kwargs["config"] = ctx.config if ctx is not None else {}
        answer = branch.path(arg, **kwargs)
        if inspect.isawaitable(answer):
            answer = await answer
        answers = answer if isinstance(answer, (list, tuple)) else [answer]
        out: list[Write] = []
        for item in answers:
            if isinstance(item, Send):
                out.append(self.goto_write(item, source))
                continue
            dest = item
            if branch.path_map is not None:
                if item not in branch.path_map:
                    raise InvalidRouteError(
                        f"Branch '{branch.name}' from node '{source}' returned {item!r}, "
                        f"which is not in its path_map {sorted(map(str, branch.path_map))}"
                    )
                dest = branch.path_map[item]
            if dest == END or dest is None:
                continue
            if dest not in self.nodes:
                raise InvalidUpdateError(
                    f"Branch '{branch.name}' from node '{source}' returned unknown node {dest!r}"
                )
            out.append((f"branch:to:{dest}", None))
        return out


def _commands(result: Any) -> list[Command[Any]] | None:
    """A node's answer as Commands, when it has any: a Command, or a list of Commands and
    updates (what a ToolNode returns when some tools answered with a Command), as LangGraph
    reads it. None for a plain update."""
    if isinstance(result, Command):
        return [result]
    if isinstance(result, (list, tuple)) and any(isinstance(r, Command) for r in result):
        return [r if isinstance(r, Command) else Command(update=r) for r in result]
    return None


