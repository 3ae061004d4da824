"""The server keeps the promises of its OpenAPI document: schemathesis sends a bounded number of
generated requests, valid and invalid, to every operation, on each backend, and checks every
answer: never a server error, every status documented, every body of the declared shape, and
every request the document forbids refused."""

from __future__ import annotations

import operator
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation.modes import GenerationMode
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from conformance.conftest import fresh_schema
from tether.graph import END, START, StateGraph
from tether.server import create_app

from .server_graphs import KEYS

EXAMPLES = 10
"""Generated requests per operation (and per phase), on each backend."""
KEY = {"x-api-key": "key-a"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, negative_data_rejection]


class Notes(TypedDict, total=False):
    notes: Annotated[list[Any], operator.add]
    value: Any


def note(state: Notes) -> dict[str, Any]:
    return {"notes": ["seen"]}


def graphs() -> dict[str, Any]:
    """A graph that ends at once whatever it is given: generated inputs never make a run
    that waits long."""
    builder = StateGraph(Notes).add_node("note", note)
    builder.add_edge(START, "note").add_edge("note", END)
    return {"notes": builder.compile()}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def api_schema(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """The OpenAPI document of a server on each backend, bound to the app (requests go to it
    in-process)."""
    if request.param == "sqlite":
        from tether.checkpoint.sqlite import SqliteSaver

        store: Any = SqliteSaver(str(tmp_path / "openapi.db"))
        yield from _schema(store)
        return
    from tether.checkpoint.postgres import PostgresSaver

    with fresh_schema() as (dsn, name):
        yield from _schema(PostgresSaver(dsn, schema=name))


def _schema(store: Any) -> Iterator[Any]:
    app = create_app(graphs(), store, api_keys=KEYS)
    try:
        yield schemathesis.openapi.from_asgi("/openapi.json", app, headers=KEY)
    finally:
        asgi.shutdown_lifespans()  # the app's shutdown: its runs are cancelled
        store.close()


def failures_of(operation: Any, mode: GenerationMode) -> str | None:
    """The first answer of `operation` that breaks a check, over `EXAMPLES` generated requests
    (with how to send it again), or None."""
    found: list[str] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    def exercise(case: Any) -> None:
        try:
            case.call_and_validate(headers=KEY, checks=CHECKS)
        except (Exception, FailureGroup) as exc:
            found.append(f"{exc}\n    {case.as_curl_command(headers=KEY)}")
            raise

    try:
        exercise()
    except Unsatisfiable:
        return None  # nothing the document forbids fits in this operation (a bare GET)
    except (Exception, FailureGroup) as exc:  # noqa: BLE001 - reported with its request
        return found[-1] if found else repr(exc)
    return None


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_every_operation_answers_as_its_document_says(api_schema: Any) -> None:
    broken = []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failure = failures_of(operation, mode)
            if failure is not None:
                broken.append(f"{operation.method.upper()} {operation.path} ({mode}): {failure}")
    assert not broken, "\n\n".join(broken)
