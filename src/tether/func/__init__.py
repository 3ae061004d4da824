"""The Functional API (LangGraph's `langgraph.func`): `@entrypoint` and `@task`."""

from tether.func.entrypoint import entrypoint
from tether.func.task import task

__all__ = ["entrypoint", "task"]
