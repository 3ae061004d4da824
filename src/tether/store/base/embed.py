"""Embeddings for semantic search: what a store accepts as `index["embed"]`, and the paths that
pick the text of an item to embed (`"a.b"`, `"list[0]"`, `"list[*].text"`, `"{a,b}"`, `"$"`)."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

EmbeddingsFunc = Callable[[Sequence[str]], list[list[float]]]
"""A function from texts to their vectors."""

AEmbeddingsFunc = Callable[[Sequence[str]], Awaitable[list[list[float]]]]
"""An async function from texts to their vectors."""


@runtime_checkable
class Embeddings(Protocol):
    """What a store calls to embed texts: LangChain's `Embeddings` interface (any LangChain
    embeddings object is one)."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]: ...

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """The vectors of `texts`.

        Cancellation:
            The embedding is abandoned; the store stores nothing for it.
        """

    async def aembed_query(self, text: str) -> list[float]:
        """The vector of one query text.

        Cancellation:
            As `aembed_documents`.
        """


class EmbeddingsLambda:
    """An embedding function (sync or async) seen as an `Embeddings`.

    A sync function serves async calls from a worker thread (the event loop never waits on
    it); an async function serves sync calls on a private event loop, when the calling thread
    runs none.
    """

    def __init__(self, func: EmbeddingsFunc | AEmbeddingsFunc) -> None:
        if not callable(func):
            raise TypeError(f"embed must be callable or an Embeddings, not {type(func).__name__}")
        self.func = func
        self.is_async = _is_async_callable(func)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """The vectors of `texts`.

        Raises:
            RuntimeError: the function is async and this thread runs an event loop (use the
                store's async methods there).
        """
        if not self.is_async:
            return list(self.func(texts))  # type: ignore[arg-type]
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self._acall(texts))
        raise RuntimeError(
            "the store's embed function is async and this thread runs an event loop: call the "
            "store's async methods (aput, asearch...) here")

    def embed_query(self, text: str) -> list[float]:
        """The vector of one query text."""
        return self.embed_documents([text])[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """The vectors of `texts`.

        Cancellation:
            A sync function's worker thread is abandoned (its result is dropped); an async
            function is cancelled. Nothing is stored either way.
        """
        if self.is_async:
            return await self._acall(texts)
        import anyio.to_thread

        func: Any = self.func
        return list(await anyio.to_thread.run_sync(func, texts, abandon_on_cancel=True))

    async def aembed_query(self, text: str) -> list[float]:
        """The vector of one query text.

        Cancellation:
            As `aembed_documents`.
        """
        return (await self.aembed_documents([text]))[0]

    async def _acall(self, texts: list[str]) -> list[list[float]]:
        result: Any = self.func(texts)
        return list(await result)


def ensure_embeddings(embed: Embeddings | EmbeddingsFunc | AEmbeddingsFunc | str | None
                      ) -> Embeddings:
    """`embed` as an `Embeddings`: returned as is, wrapped (a function), or loaded (a
    `"provider:model"` string, with LangChain's `init_embeddings`).

    Raises:
        ValueError: `embed` is missing, or a string LangChain cannot load.
        TypeError: `embed` is none of the above.
    """
    if embed is None:
        raise ValueError("index['embed'] is required: an Embeddings or an embedding function")
    if isinstance(embed, str):
        try:
            from langchain.embeddings import init_embeddings  # type: ignore[import-not-found]
        except ImportError:
            raise ValueError(
                f"index['embed'] = {embed!r}: loading embeddings by name needs the `langchain` "
                "package (and the provider's); or pass an Embeddings or a function") from None
        loaded: Embeddings = init_embeddings(embed)
        return loaded
    if isinstance(embed, Embeddings):
        return embed
    return EmbeddingsLambda(embed)


def _is_async_callable(func: Any) -> bool:
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None))  # noqa: B004 - an object with an async __call__


# -- paths ----------------------------------------------------------------------------------

_OPENERS = {"[": "]", "{": "}"}


def tokenize_path(path: str) -> list[str]:
    """Split a path into tokens: field names, `[i]`/`[*]` indexes and `{a,b}` groups.

    `"a.b[0].c"` → `["a", "b", "[0]", "c"]`.
    """
    tokens: list[str] = []
    name: list[str] = []
    i = 0
    while i < len(path):
        char = path[i]
        if char in _OPENERS:
            if name:
                tokens.append("".join(name))
                name = []
            end = _closing(path, i)
            tokens.append(path[i:end])
            i = end
            continue
        if char == ".":
            if name:
                tokens.append("".join(name))
                name = []
        else:
            name.append(char)
        i += 1
    if name:
        tokens.append("".join(name))
    return tokens


def _closing(path: str, start: int) -> int:
    """The index just past the bracket that closes the one at `start` (or the end)."""
    opener, closer = path[start], _OPENERS[path[start]]
    depth, i = 0, start
    while i < len(path):
        depth += (path[i] == opener) - (path[i] == closer)
        i += 1
        if depth == 0:
            break
    return i


def _text(value: Any) -> list[str]:
    """The text a value found at the end of a path contributes."""
    if isinstance(value, (str, int, float, bool)):
        return [str(value)]
    if isinstance(value, (list, dict)):
        return [json.dumps(value, sort_keys=True, ensure_ascii=False)]
    return []


def get_text_at_path(obj: Any, path: str | list[str]) -> list[str]:
    """The texts found at `path` in `obj` (several for `[*]`, `*` or `{a,b}`), in order.

    `"$"` (or an empty path) is the whole object as JSON. Missing fields give no text.
    """
    if isinstance(obj, Mapping) and not isinstance(obj, dict):
        obj = dict(obj)
    if not path or path == "$":
        return [json.dumps(obj, sort_keys=True, ensure_ascii=False)]
    tokens = tokenize_path(path) if isinstance(path, str) else path
    return _walk(obj, tokens, 0)


def _walk(obj: Any, tokens: list[str], pos: int) -> list[str]:
    if pos == len(tokens):
        return _text(obj)
    token = tokens[pos]
    if token.startswith("[") and token.endswith("]"):
        return _walk_index(obj, token[1:-1], tokens, pos)
    if token.startswith("{") and token.endswith("}"):
        return _walk_group(obj, token[1:-1]) if isinstance(obj, dict) else []
    if token == "*":
        children = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, list) else ()
        return [text for child in children for text in _walk(child, tokens, pos + 1)]
    if isinstance(obj, dict) and token in obj:
        return _walk(obj[token], tokens, pos + 1)
    return []


def _walk_index(obj: Any, index: str, tokens: list[str], pos: int) -> list[str]:
    if not isinstance(obj, list):
        return []
    if index == "*":
        return [text for item in obj for text in _walk(item, tokens, pos + 1)]
    try:
        at = int(index)
    except ValueError:
        return []
    at = at + len(obj) if at < 0 else at
    return _walk(obj[at], tokens, pos + 1) if 0 <= at < len(obj) else []


def _walk_group(obj: dict[str, Any], fields: str) -> list[str]:
    """`{a,b.c}`: the text of each named (dotted) field that is present."""
    texts: list[str] = []
    for field in (f.strip() for f in fields.split(",")):
        if not field:
            continue
        value: Any = obj
        for name in tokenize_path(field):
            value = value.get(name) if isinstance(value, dict) else None
        if value is not None:
            texts.extend(_text(value))
    return texts


__all__ = ["AEmbeddingsFunc", "Embeddings", "EmbeddingsFunc", "EmbeddingsLambda",
           "ensure_embeddings", "get_text_at_path", "tokenize_path"]
