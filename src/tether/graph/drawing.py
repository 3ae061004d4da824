"""`get_graph()`: a compiled graph's nodes and edges, drawable as Mermaid text."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from tether.constants import END, START
from tether.graph.nodes import Wiring, inspect_callable


class Node(NamedTuple):
    """A vertex of the drawing."""

    id: str
    name: str
    data: Any = None
    metadata: dict[str, Any] | None = None


class Edge(NamedTuple):
    """An edge of the drawing; `conditional` ones are drawn dotted, with their label."""

    source: str
    target: str
    data: str | None = None
    conditional: bool = False


@dataclass
class DrawableGraph:
    """Nodes and edges, with Mermaid output."""

    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)

    def draw_mermaid(self) -> str:
        """The graph as a Mermaid flowchart."""
        lines = ["---", "config:", "  flowchart:", "    curve: linear", "---", "graph TD;"]
        for node in self.nodes.values():
            if node.id == START:
                lines.append(f"\t{node.id}([<p>{node.name}</p>]):::first")
            elif node.id == END:
                lines.append(f"\t{node.id}([<p>{node.name}</p>]):::last")
            else:
                lines.append(f"\t{_mermaid_id(node.id)}({node.name})")
        for edge in self.edges:
            arrow = "-.->" if edge.conditional else "-->"
            label = f"&nbsp;{edge.data}&nbsp;" if edge.data and edge.data != edge.target else None
            source, target = _mermaid_id(edge.source), _mermaid_id(edge.target)
            if label:
                dotted = "-." if edge.conditional else "--"
                lines.append(f"\t{source} {dotted} {label} {arrow[-3:]} {target};")
            else:
                lines.append(f"\t{source} {arrow} {target};")
        lines += ["\tclassDef default fill:#f2f0ff,line-height:1.2",
                  "\tclassDef first fill-opacity:0", "\tclassDef last fill:#bfb6fc", ""]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """Nodes and edges as plain data (for the web page)."""
        return {
            "nodes": [{"id": n.id, "name": n.name} for n in self.nodes.values()],
            "edges": [{"source": e.source, "target": e.target, "label": e.data,
                       "conditional": e.conditional} for e in self.edges],
        }


def _mermaid_id(name: str) -> str:
    return name.replace(" ", "_").replace("-", "_")


def draw(builder: Wiring, *, xray: bool = False) -> DrawableGraph:
    """The drawing of a graph, from what its builder recorded."""
    del xray
    out = DrawableGraph()
    out.nodes[START] = Node(START, START)
    for name in builder.nodes:
        out.nodes[name] = Node(name, name, metadata=builder.nodes[name].metadata or None)
    ends = False
    for source, target in builder.edges:
        out.edges.append(Edge(source, target))
        ends = ends or target == END
    for sources, target in builder.waiting_edges:
        for source in sources:
            out.edges.append(Edge(source, target))
    for edge in _conditional_edges(builder):
        out.edges.append(edge)
        ends = ends or edge.target == END
    terminal = [n for n in builder.nodes
                if not any(e.source == n for e in out.edges)]
    for name in terminal:
        out.edges.append(Edge(name, END))
        ends = True
    if ends:
        out.nodes[END] = Node(END, END)
    return out


def _conditional_edges(builder: Wiring) -> list[Edge]:
    out: list[Edge] = []
    every = [*builder.nodes, END]
    for source, branches in builder.branches.items():
        for branch in branches.values():
            if branch.path_map is not None:
                targets = [(str(label), dest) for label, dest in branch.path_map.items()]
            else:
                found = inspect_callable(branch.path).destinations
                targets = [(d, d) for d in (found if found is not None else every)]
            out.extend(Edge(source, dest, label, conditional=True) for label, dest in targets)
    for name, node in builder.nodes.items():
        out.extend(Edge(name, dest, conditional=True) for dest in node.destinations or ())
    return out
