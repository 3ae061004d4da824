"""A store's semantic-search setup, resolved once from its `IndexConfig`: the embeddings, the
dimensions, and the paths whose text is embedded; and which texts of an item it embeds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tether.store.base.embed import Embeddings, ensure_embeddings, get_text_at_path, tokenize_path
from tether.store.base.ops import PutOp
from tether.store.base.settings import IndexConfig

WHOLE = "$"
"""The path of a whole value."""

Path = tuple[str, list[str] | str]
"""A path as written, and its tokens (`"$"` for the whole value)."""


@dataclass(frozen=True, slots=True)
class Index:
    """What a store with an `index` embeds, and with what."""

    dims: int
    embeddings: Embeddings
    paths: tuple[Path, ...]

    @classmethod
    def of(cls, config: IndexConfig | Mapping[str, Any] | None) -> Index | None:
        """The index of a store configured with `config` (None: no semantic search).

        Raises:
            ValueError: `dims` is missing or not a positive int, or `embed` is missing.
            TypeError: `embed` is neither an Embeddings nor a function.
        """
        if not config:
            return None
        dims = config.get("dims")
        if not isinstance(dims, int) or isinstance(dims, bool) or dims <= 0:
            raise ValueError(f"index['dims'] must be a positive int, not {dims!r}")
        fields = config.get("fields") or [WHOLE]
        return cls(dims, ensure_embeddings(config.get("embed")),
                   tuple(parse_path(field) for field in fields))

    def texts(self, op: PutOp) -> list[tuple[str, str]]:
        """(field name, text) for each text of the value `op` stores that gets a vector.

        A path that yields several texts names them `path.0`, `path.1`...
        """
        if op.value is None or op.index is False:
            return []
        paths = self.paths if op.index is None else tuple(parse_path(p) for p in op.index)
        found: list[tuple[str, str]] = []
        for name, tokens in paths:
            texts = get_text_at_path(op.value, tokens)
            if len(texts) == 1:
                found.append((name, texts[0]))
            else:
                found.extend((f"{name}.{i}", text) for i, text in enumerate(texts))
        return found


def parse_path(path: str) -> Path:
    """A path with its tokens."""
    if not isinstance(path, str):
        raise TypeError(f"an index path is a string such as 'text' or 'items[*].body', "
                        f"not {path!r}")
    return (path, WHOLE if path == WHOLE else tokenize_path(path))


__all__ = ["WHOLE", "Index", "parse_path"]
