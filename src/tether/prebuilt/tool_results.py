"""What a tool's answer becomes: a checked `ToolMessage` or `Command` per call, and the node's
update for all its calls together, in LangGraph's shapes."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import Any, Literal, cast

from langchain_core.messages import RemoveMessage, ToolCall, ToolMessage, convert_to_messages
from langchain_core.tools.base import TOOL_MESSAGE_BLOCK_TYPES

from tether.graph.message import REMOVE_ALL_MESSAGES
from tether.types import Command, Send

InputKind = Literal["list", "dict", "tool_calls"]
"""How the node was given its calls: a list of messages, a state, or bare tool calls."""

CallOutput = ToolMessage | Command[Any] | list[ToolMessage | Command[Any]]



def msg_content_output(output: Any) -> str | list[str | dict[Any, Any]]:
    """A tool's output as `ToolMessage` content: text and content blocks as they are, anything
    else as JSON (or its `str` when it is not JSON-able)."""
    if isinstance(output, str):
        return output
    if isinstance(output, list) and all(
        isinstance(x, dict) and x.get("type") in TOOL_MESSAGE_BLOCK_TYPES for x in output
    ):
        return list(output)
    try:
        return json.dumps(output, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(output)


class ToolAnswers:
    """Checks each call's answer and puts the calls' answers together.

    Args:
        messages_key: the state key the node reads and writes messages under.
    """

    __slots__ = ("messages_key",)

    def __init__(self, messages_key: str) -> None:
        self.messages_key = messages_key

    def normalize(self, response: Any, call: ToolCall, kind: InputKind) -> CallOutput:
        """Check a tool's raw answer to `call`.

        Raises:
            TypeError: an answer that is neither a message nor a `Command` (or list of them).
            ValueError: a `Command` that does not answer the call.
        """
        if isinstance(response, Command):
            return self._command(response, call, kind, require_answer=True)
        if isinstance(response, ToolMessage):
            response.content = msg_content_output(response.content)
            return response
        if isinstance(response, list):
            if all(isinstance(r, (Command, ToolMessage)) for r in response):
                return self._several(response, call, kind)
            raise TypeError(f"Tool {call['name']} returned a list with invalid element types: "
                            "expected all Command or ToolMessage")
        raise TypeError(f"Tool {call['name']} returned unexpected type: {type(response)}")

    def _several(self, response: list[ToolMessage | Command[Any]], call: ToolCall,
                 kind: InputKind) -> list[ToolMessage | Command[Any]]:
        answers = 0
        for item in response:
            if isinstance(item, ToolMessage):
                answers += item.tool_call_id == call["id"]
            elif isinstance(item.update, dict):
                answers += sum(isinstance(m, ToolMessage) and m.tool_call_id == call["id"]
                               for m in item.update.get(self.messages_key, []))
        if answers != 1:
            raise ValueError(f"Tool {call['name']} returned a list with {answers} messages "
                             f"bound to tool_call_id {call['id']!r}; expected exactly one "
                             "terminating ToolMessage.")
        checked: list[ToolMessage | Command[Any]] = []
        for item in response:
            if isinstance(item, Command):
                checked.append(self._command(item, call, kind, require_answer=False))
            else:
                item.content = msg_content_output(item.content)
                checked.append(item)
        return checked

    def _command(self, command: Command[Any], call: ToolCall, kind: InputKind, *,
                 require_answer: bool) -> Command[Any]:
        if isinstance(command.update, dict):
            if kind not in ("dict", "tool_calls"):
                raise ValueError(
                    "Tools can provide a dict in Command.update only when using dict with "
                    f"'{self.messages_key}' key as ToolNode input, got: {command.update} for "
                    f"tool '{call['name']}'")
            checked = copy.deepcopy(command)
            update = checked.update or {}
            # Message objects are named after the call in place; dicts stay as given.
            messages = convert_to_messages(update.get(self.messages_key, []))
        elif isinstance(command.update, list):
            if kind != "list":
                raise ValueError(
                    "Tools can provide a list of messages in Command.update only when using "
                    f"list of messages as ToolNode input, got: {command.update} for tool "
                    f"'{call['name']}'")
            checked = copy.deepcopy(command)
            messages = convert_to_messages(cast("list[Any]", checked.update))
        else:
            return command
        if [(type(m), m.id) for m in messages] == [(RemoveMessage, REMOVE_ALL_MESSAGES)]:
            return checked
        answered = False
        for message in messages:
            if isinstance(message, ToolMessage) and message.tool_call_id == call["id"]:
                message.name = call["name"]
                answered = True
        if require_answer and checked.graph is None and not answered:
            example = ('`Command(update={"messages": [ToolMessage("Success", '
                       'tool_call_id=tool_call_id), ...]}, ...)`' if kind == "dict" else
                       '`Command(update=[ToolMessage("Success", tool_call_id=tool_call_id), '
                       '...], ...)`')
            raise ValueError(
                f"Expected to have a matching ToolMessage in Command.update for tool "
                f"'{call['name']}', got: {messages}. Every tool call (LLM requesting to call a "
                "tool) in the message history MUST have a corresponding ToolMessage. You can "
                f"fix it by modifying the tool to return {example}.")
        return checked

    def combine(self, outputs: Sequence[CallOutput], kind: InputKind) -> Any:
        """The node's update for all its calls: `{key: messages}` (or the list of messages for
        list input), or, when a tool answered with a `Command`, a list of `Command`s and
        updates, the parent-graph `Send`s merged into one `Command`."""
        flat: list[ToolMessage | Command[Any]] = []
        for output in outputs:
            flat.extend(output if isinstance(output, list) else (output,))
        if not any(isinstance(o, Command) for o in flat):
            return flat if kind == "list" else {self.messages_key: flat}
        combined: list[Any] = []
        parent_sends: list[Send] = []
        for output in flat:
            if not isinstance(output, Command):
                combined.append([output] if kind == "list" else {self.messages_key: [output]})
            elif (output.graph == Command.PARENT and isinstance(output.goto, list)
                  and all(isinstance(s, Send) for s in output.goto)):
                parent_sends.extend(output.goto)
            else:
                combined.append(output)
        if parent_sends:
            combined.append(Command(graph=Command.PARENT, goto=parent_sends))
        return combined


__all__ = ["CallOutput", "InputKind", "ToolAnswers", "msg_content_output"]
