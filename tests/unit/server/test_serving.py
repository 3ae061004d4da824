"""How `serve` runs uvicorn: the fastest event loop and HTTP parser installed, not a fixed one,
writing each response's head and body in one write."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from uvicorn.config import Config

from tether.graph import StateGraph
from tether.server import serve


def test_serve_lets_uvicorn_pick_uvloop_and_httptools(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Config] = []

    def run(self: uvicorn.Server, sockets: Any = None) -> None:
        seen.append(self.config)
        self.started = True

    monkeypatch.setattr(uvicorn.Server, "run", run)
    builder = StateGraph(dict).add_node("n", lambda s: s)
    builder.set_entry_point("n")
    serve({"g": builder.compile()}, db=str(tmp_path / "runs.db"), no_auth=True, port=0)
    (config,) = seen
    assert config.loop == "auto"
    config.load()  # what uvicorn resolves "auto" to, on this machine
    if importlib.util.find_spec("httptools") is not None:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        assert issubclass(config.http_protocol_class, HttpToolsProtocol)
    assert config.http_protocol_class.__module__ == "tether.server.onewrite"
    if importlib.util.find_spec("uvloop") is not None:
        factory = config.get_loop_factory()
        assert factory is not None
        loop = factory()
        try:
            assert type(loop).__module__.startswith("uvloop")
        finally:
            loop.close()
