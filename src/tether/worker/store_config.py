"""The `store` key of a LangGraph project's `langgraph.json`: the semantic search (`index`) and
time-to-live (`ttl`) settings of the long-term store that `tether serve` and `tether worker`
give the project's graphs.

```text
"store": {"index": {"embed": "./embeddings.py:embed", "dims": 1536, "fields": ["$"]},
          "ttl": {"default_ttl": 10080, "refresh_on_read": true, "sweep_interval_minutes": 60}}
```

`embed` is a function in the project (`path/file.py:attr`, called with a list of texts, or a
LangChain `Embeddings` object), or LangChain's `provider:model` (which needs the `langchain`
package, as LangGraph's server does).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from tether.store.base import IndexConfig, TTLConfig

_INDEX_KEYS = frozenset({"embed", "dims", "fields"})
_TTL_KEYS = frozenset({"default_ttl", "refresh_on_read", "sweep_interval_minutes"})


class StoreConfigError(ValueError):
    """A `store` key tether cannot use; the message names the key."""


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """The long-term store settings of a project (none: a plain store).

    Attributes:
        index: `dims`, `fields` and the `embed` reference as written (resolved by `resolve`).
        ttl: the time-to-live settings.
    """

    index: Mapping[str, Any] | None = None
    ttl: TTLConfig | None = None

    @classmethod
    def parse(cls, value: Any, where: str) -> StoreConfig:
        """Check a `store` value's shape (nothing is imported yet).

        Raises:
            StoreConfigError: not an object, an unknown key, or a value of the wrong type.
        """
        if value is None:
            return cls()
        if not isinstance(value, Mapping):
            raise StoreConfigError(f"{where}: 'store' must be an object")
        _only(value, {"index", "ttl"}, f"{where}: 'store'")
        return cls(_index(value.get("index"), where), _ttl(value.get("ttl"), where))

    def resolve(self, load: Callable[[str], Any]) -> IndexConfig | None:
        """The index settings with `embed` turned into what a store calls.

        Args:
            load: imports a project reference (`path/file.py:attr`) and returns the attribute.

        Raises:
            StoreConfigError: `embed` cannot be loaded.
        """
        if self.index is None:
            return None
        embed = self.index["embed"]
        source = embed.rpartition(":")[0]
        in_project = source.endswith(".py") or "/" in source
        settings = {**self.index, "embed": load(embed) if in_project else _provider(embed)}
        return cast(IndexConfig, settings)


def _provider(embed: str) -> Any:
    try:
        from langchain.embeddings import init_embeddings  # type: ignore[import-not-found]
    except ImportError:
        raise StoreConfigError(
            f"store.index.embed {embed!r} names a LangChain provider, which needs the "
            "`langchain` package (pip install langchain and the provider's package); or give "
            "a function of the project, e.g. './embeddings.py:embed'") from None
    return init_embeddings(embed)


def _only(value: Mapping[str, Any], allowed: frozenset[str] | set[str], where: str) -> None:
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise StoreConfigError(f"{where}: unknown key(s) {', '.join(unknown)} (expected "
                               f"{', '.join(sorted(allowed))})")


def _index(value: Any, where: str) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise StoreConfigError(f"{where}: 'store.index' must be an object")
    _only(value, _INDEX_KEYS, f"{where}: 'store.index'")
    dims, embed, fields = value.get("dims"), value.get("embed"), value.get("fields")
    if not isinstance(dims, int) or isinstance(dims, bool) or dims < 1:
        raise StoreConfigError(f"{where}: 'store.index.dims' must be a positive integer")
    if not isinstance(embed, str) or ":" not in embed:
        raise StoreConfigError(f"{where}: 'store.index.embed' must be 'path/file.py:function' "
                               "or 'provider:model'")
    if fields is not None and not (isinstance(fields, list)
                                   and all(isinstance(f, str) for f in fields)):
        raise StoreConfigError(f"{where}: 'store.index.fields' must be a list of paths")
    return dict(value)


def _ttl(value: Any, where: str) -> TTLConfig | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise StoreConfigError(f"{where}: 'store.ttl' must be an object")
    _only(value, _TTL_KEYS, f"{where}: 'store.ttl'")
    for key in ("default_ttl", "sweep_interval_minutes"):
        number = value.get(key)
        if number is not None and (isinstance(number, bool)
                                   or not isinstance(number, int | float) or number <= 0):
            raise StoreConfigError(f"{where}: 'store.ttl.{key}' must be a positive number "
                                   "of minutes")
    if not isinstance(value.get("refresh_on_read", True), bool):
        raise StoreConfigError(f"{where}: 'store.ttl.refresh_on_read' must be true or false")
    return cast(TTLConfig, dict(value))


__all__ = ["StoreConfig", "StoreConfigError"]
