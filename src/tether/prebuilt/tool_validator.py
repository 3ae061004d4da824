"""`ValidationNode`: checks the model's tool calls against schemas without running anything,
answering each call with the validated arguments or the validation error (so the model can be
asked to try again)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

from langchain_core.messages import AIMessage, ToolCall, ToolMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import BaseTool, create_schema_from_function
from pydantic import BaseModel, ValidationError

FormatError = Callable[[BaseException, ToolCall, type[BaseModel]], str]


def _default_format_error(error: BaseException, call: ToolCall,
                          schema: type[BaseModel]) -> str:
    del call, schema
    return f"{error!r}\n\nRespond after fixing all validation errors."


class ValidationNode(Runnable[Any, Any]):
    """Answers each tool call of the last `AIMessage` with its arguments validated by the
    schema of the same name: `model_dump_json()` of the result, or the error (with
    `additional_kwargs={"is_error": True}`).

    Args:
        schemas: pydantic models, tools with a pydantic `args_schema`, or functions.
        format_error: `(error, call, schema) -> text` for invalid calls.
        name: the node's name in a graph.
        tags: tags for the node's runs.

    Raises:
        ValueError: a tool without a pydantic schema, or a schema of another kind.
    """

    def __init__(self, schemas: Sequence[BaseTool | type[BaseModel] | Callable[..., Any]], *,
                 format_error: FormatError | None = None, name: str = "validation",
                 tags: list[str] | None = None) -> None:
        self.name = name
        self.tags = tags
        self._format_error = format_error or _default_format_error
        self.schemas_by_name: dict[str, type[BaseModel]] = {}
        for schema in schemas:
            if isinstance(schema, BaseTool):
                args = schema.args_schema
                if args is None:
                    raise ValueError(f"Tool {schema.name} does not have an args_schema defined.")
                if not (isinstance(args, type) and issubclass(args, BaseModel)):
                    raise ValueError(  # noqa: TRY004 - LangGraph's exception type
                        "Validation node only works with tools that have a pydantic "
                                     f"BaseModel args_schema. Got {schema.name} with "
                                     f"args_schema: {args}.")
                self.schemas_by_name[schema.name] = args
            elif isinstance(schema, type) and issubclass(schema, BaseModel):
                self.schemas_by_name[schema.__name__] = schema
            elif callable(schema):
                made = create_schema_from_function("Validation", schema)
                self.schemas_by_name[schema.__name__] = cast("type[BaseModel]", made)
            else:
                raise ValueError(  # noqa: TRY004 - LangGraph's exception type
                    "Unsupported input to ValidationNode. Expected BaseModel, tool "
                                 f"or function. Got: {type(schema)}.")

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        """Validate every call of the last message; `{"messages": [...]}` (a list for list
        input).

        Raises:
            ValueError: no messages, or the last one is not an `AIMessage`.
        """
        del config, kwargs
        if isinstance(input, list):
            messages: Any = input
        else:
            messages = input.get("messages", []) if isinstance(input, dict) else []
            if not messages:
                raise ValueError("No message found in input")
        last = messages[-1]
        if not isinstance(last, AIMessage):
            raise ValueError("Last message is not an AIMessage")  # noqa: TRY004 - as LangGraph
        answers = [self._check(call) for call in last.tool_calls]
        return answers if isinstance(input, list) else {"messages": answers}

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None,
                      **kwargs: Any) -> Any:
        """`invoke` (validation does no I/O).

        Cancellation:
            Nothing to cancel: it returns without awaiting.
        """
        return self.invoke(input, config, **kwargs)

    def _check(self, call: ToolCall) -> ToolMessage:
        schema = self.schemas_by_name[call["name"]]
        try:
            content = schema.model_validate(call["args"]).model_dump_json()
        except ValidationError as error:
            return ToolMessage(content=self._format_error(error, call, schema),
                               name=call["name"], tool_call_id=str(call["id"]),
                               additional_kwargs={"is_error": True})
        return ToolMessage(content=content, name=call["name"], tool_call_id=str(call["id"]))


__all__ = ["ValidationNode"]
