"""deploy/compose.yaml, the scale-out topology for Docker (not run here: no Docker): official
images only, Postgres and Redis healthy before tether starts, every worker and server on the
same database and the same Redis bus, the servers on the ports docs/scale-out.md uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "deploy" / "compose.yaml"


def _compose() -> dict[str, Any]:
    found: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return found


def test_the_compose_file_uses_official_images_only() -> None:
    images = {name: service["image"] for name, service in _compose()["services"].items()}
    assert images["postgres"].startswith("postgres:") and images["redis"].startswith("redis:")
    assert all(image.split(":")[0] in ("postgres", "redis", "python")
               for image in images.values())


def test_every_tether_service_names_the_same_database_and_bus() -> None:
    services = _compose()["services"]
    tether = {name: s for name, s in services.items() if name not in ("postgres", "redis")}
    assert set(tether) == {"worker", "api-a", "api-b"}
    for name, service in tether.items():
        command = " ".join(service["command"].split())
        assert "--db $$DATABASE_URL --redis $$REDIS_URL" in command, name
        assert service["depends_on"] == {"postgres": {"condition": "service_healthy"},
                                         "redis": {"condition": "service_healthy"}}
        assert service["environment"]["REDIS_URL"].startswith("redis://redis:")
    assert "tether worker" in tether["worker"]["command"]
    assert [s["ports"] for n, s in sorted(tether.items()) if n != "worker"] == [
        ["2024:2024"], ["2025:2025"]]
