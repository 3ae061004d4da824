"""Rules of how the code of `src/tether` reads, checked on its syntax trees: no module reaches
into another module's `_private` names, and every public async call says what a cancel does
to it."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import tether

SRC = Path(tether.__file__).parent

STDLIB_UNDERSCORE = frozenset({"_exit", "_replace", "_asdict", "_fields", "_make", "_getframe"})
"""Names the standard library made public with a leading underscore (`os._exit`, the methods
of named tuples)."""

FOREIGN = frozenset({
    # LangChain's BaseTool: `_run`/`_arun` are the methods a tool implements; ToolNode calls
    # them (with the injected arguments) as LangGraph's does.
    ("prebuilt/invocation.py", "tool._run"),
    ("prebuilt/invocation.py", "tool._arun"),
})
"""Private names of other libraries that tether must reach, by module and expression."""


def modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(SRC.rglob("*.py")):
        yield str(path.relative_to(SRC)), ast.parse(path.read_text(), str(path))


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def own_names(tree: ast.Module) -> set[str]:
    """Private names a module defines: functions, classes, variables, attributes it assigns
    (on any object of its own classes) and `__slots__` entries."""
    own: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            own.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            own.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            own.add(node.id)
        elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__slots__" for t in node.targets):
            own.update(c.value for c in ast.walk(node.value)
                       if isinstance(c, ast.Constant) and isinstance(c.value, str))
    return {name for name in own if _private(name)}


def foreign_private_uses(where: str, tree: ast.Module) -> list[str]:
    """`x._name` where `_name` is not this module's (`self._name` is the object's own, even if a
    base class in another module defines it), and `from tether.m import _name` of another
    module's private name (a private module of the importer's own package is its package's)."""
    own = own_names(tree)
    package = where.rpartition("/")[0].replace("/", ".")
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            text = ast.unparse(node)
            if (node.attr in own or node.attr in STDLIB_UNDERSCORE or (where, text) in FOREIGN
                    or (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
                continue
            found.append(f"{where}:{node.lineno} {text}")
        elif (isinstance(node, ast.ImportFrom) and node.module is not None
              and node.module.startswith("tether")):
            for alias in node.names:
                if not _private(alias.name):
                    continue
                if node.module == f"tether.{package}".rstrip("."):
                    continue  # a private module of the importer's own package
                found.append(f"{where}:{node.lineno} from {node.module} import {alias.name}")
    return found


def test_no_module_reaches_into_another_modules_private_names() -> None:
    found = [use for where, tree in modules() for use in foreign_private_uses(where, tree)]
    assert found == []


def test_the_rule_sees_a_foreign_private_access() -> None:
    tree = ast.parse("import other\n\ndef f(x):\n    return other._secret + x._hidden\n")
    assert foreign_private_uses("m.py", tree) == ["m.py:4 other._secret", "m.py:4 x._hidden"]
    own = ast.parse("class A:\n    def f(self, o):\n        self._n = 1\n        return o._n\n")
    assert foreign_private_uses("m.py", own) == []
    imports = ast.parse("from tether.engine.to_thread import _Job\n"
                        "from tether.checkpoint.sqlite import _sql\n")
    assert foreign_private_uses("checkpoint/sqlite/runs.py", imports) == [
        "checkpoint/sqlite/runs.py:1 from tether.engine.to_thread import _Job"]


def async_calls_without_cancellation(tree: ast.Module) -> list[str]:
    """Public async functions and methods (of public classes) whose docstring has no
    `Cancellation:` section."""
    missing: list[str] = []

    def visit(node: ast.AST, prefix: str, public: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.", public and not _private(child.name))
            elif (isinstance(child, ast.AsyncFunctionDef) and public
                  and not child.name.startswith("_")
                  and "Cancellation:" not in (ast.get_docstring(child) or "")):
                missing.append(f"{prefix}{child.name}")

    visit(tree, "", True)
    return missing


def test_every_public_async_call_documents_its_cancellation() -> None:
    missing = [f"{where}: {name}" for where, tree in modules()
               for name in async_calls_without_cancellation(tree)]
    assert missing == []


def test_the_cancellation_rule_sees_a_missing_section() -> None:
    tree = ast.parse('async def f():\n    """Does f."""\n\n'
                     'async def g():\n'
                     '    """Does g.\n\n    Cancellation:\n        Safe.\n    """\n\n'
                     'class _Hidden:\n    async def h(self):\n        """No section."""\n')
    assert async_calls_without_cancellation(tree) == ["f"]
