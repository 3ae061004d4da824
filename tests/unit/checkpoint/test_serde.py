"""Which stored classes the serializer rebuilds: exactly the allowed ones, in every process that
reads a thread, and nothing else; and every value carries a checksum."""

from __future__ import annotations

import dataclasses
import enum
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Annotated, Any, TypedDict

import ormsgpack
import pydantic
import pytest

from tether.checkpoint import registry
from tether.checkpoint.serde import Serializer, UnresolvedValue, frame
from tether.errors import CorruptStoreError


def stored_class(code: int, path: str, payload: Any) -> bytes:
    return frame(ormsgpack.packb(ormsgpack.Ext(code, ormsgpack.packb([path, payload]))))


@dataclasses.dataclass
class Never:
    """A class no test stores: only what allows it explicitly rebuilds it."""

    x: int


def test_a_class_is_rebuilt_only_by_a_serializer_that_allows_it() -> None:
    data = stored_class(21, registry.path_of(Never), {"x": 3})
    assert isinstance(Serializer().loads(data), UnresolvedValue)
    assert Serializer(allowed_types=[Never]).loads(data) == Never(3)


class Shade(enum.Enum):
    DARK = "dark"


@dataclasses.dataclass
class Leaf:
    shade: Shade


class Branch(pydantic.BaseModel):
    leaves: list[Leaf]


class Tree(TypedDict):
    branches: dict[str, Annotated[Branch | None, "kept"]]


def test_allow_annotation_finds_the_classes_nested_in_a_type() -> None:
    # Nothing of them was stored here: only the annotation allows them.
    assert all(registry.resolve(registry.path_of(c), {}) is None for c in (Shade, Leaf, Branch))
    registry.allow_annotation(Tree)
    for cls in (Shade, Leaf, Branch):
        assert registry.resolve(registry.path_of(cls), {}) is cls, cls
    assert registry.resolve(registry.path_of(Tree), {}) is None  # a TypedDict is a plain dict


def test_a_value_without_its_frame_or_with_a_wrong_checksum_is_corrupt() -> None:
    good = Serializer().dumps({"a": 1})
    assert Serializer().loads(good) == {"a": 1}
    for bad in (good[6:], good[:-1] + b"\x00", b"\x05", b"", good[:5]):
        with pytest.raises(CorruptStoreError, match="in the place"):
            Serializer().loads(bad, "in the place")


MODULE = textwrap.dedent("""
    import dataclasses
    from typing import Any, TypedDict
    from tether.graph import END, START, StateGraph

    @dataclasses.dataclass
    class Point:
        x: int

    @dataclasses.dataclass
    class Other:
        y: int

    class State(TypedDict, total=False):
        point: Point
        anything: Any

    def build(store):
        builder = StateGraph(State).add_node(
            "make", lambda s: {"point": Point(1), "anything": Other(2)})
        return builder.add_edge(START, "make").add_edge("make", END).compile(checkpointer=store)
""")
WRITE = "import sys, app; from tether.checkpoint.sqlite import SqliteSaver; " \
        "app.build(SqliteSaver(sys.argv[1])).invoke({}, {'configurable': {'thread_id': 't'}})"
READ = textwrap.dedent("""
    import sys, app
    from tether.checkpoint.sqlite import SqliteSaver
    values = app.build(SqliteSaver(sys.argv[1])).get_state(
        {"configurable": {"thread_id": "t"}}).values
    print(type(values["point"]).__name__, type(values["anything"]).__name__)
""")


def test_a_process_that_only_reads_rebuilds_the_classes_its_state_schema_names(
        tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(MODULE)
    db = str(tmp_path / "runs.db")
    for program in (WRITE, READ):
        done = subprocess.run([sys.executable, "-c", program, db], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
    # `Point` is named by the schema; `Other`, held in an `Any` key, was never allowed there.
    assert done.stdout.split() == ["Point", "UnresolvedValue"]


def test_every_class_of_tethers_own_is_rebuilt_by_a_process_that_never_stored_it() -> None:
    # A fresh process has stored nothing: each of tether's value classes must be rebuilt from
    # where it is defined today (RunStatus moved to `tether.status`), and from the public
    # module's name that values stored before a move still carry.
    program = textwrap.dedent("""
        import sys
        from tether import messages, types
        from tether.checkpoint import registry
        from tether.checkpoint.serde import Serializer
        wrong = []
        for module, names in ((types, registry._OWN_TYPES), (messages, registry._OWN_MESSAGES)):
            for name in names:
                cls = getattr(module, name)
                for path in (registry.path_of(cls), f"{module.__name__}:{name}"):
                    if registry.resolve(path, {}) is not cls:
                        wrong.append(path)
        print(repr(Serializer().loads(bytes.fromhex(sys.argv[1]))), wrong)
    """)
    from tether.types import RunStatus
    data = Serializer().dumps(RunStatus.CANCELLED).hex()
    done = subprocess.run([sys.executable, "-c", program, data], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "<RunStatus.CANCELLED: 'cancelled'> []"
