"""The graph builder (LangGraph's `StateGraph` API) and the compiled graph."""

from tether.constants import END, START
from tether.graph.compiled import CompiledStateGraph
from tether.graph.message import MessagesState, add_messages
from tether.graph.state import StateGraph

CompiledGraph = CompiledStateGraph

__all__ = ["END", "START", "CompiledGraph", "CompiledStateGraph", "MessagesState", "StateGraph",
           "add_messages"]
