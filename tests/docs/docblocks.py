"""The fenced code blocks of a markdown file, with their line numbers and harness directives.

A block's kind comes from its info string: `python` runs as Python; `console`, `bash`, `sh`,
`shell` and no language at all run as shell commands; `text` is shown, not run. Anything else is
an error of the document. A `console` block may be written as a terminal session: lines starting
with `$ ` are its commands, the lines after them their output (shown, not run or compared).
An HTML comment on the line right before the opening fence may carry a directive for the
harness, `<!-- test: exit N -->`: the block's last command exits N.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PYTHON = "python"
SHELL = "shell"
TEXT = "text"

KINDS = {"python": PYTHON, "py": PYTHON, "console": SHELL, "bash": SHELL, "sh": SHELL,
         "shell": SHELL, "": SHELL, "text": TEXT}
"""Info string (its first word) → what the harness does with the block."""

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*?)\s*$")
_DIRECTIVE = re.compile(r"^\s*<!--\s*test:\s*(?P<body>.*?)\s*-->\s*$")
_EXIT = re.compile(r"^exit\s+(?P<code>\d+)$")


class DocError(Exception):
    """The document breaks the harness's rules (not a failing example): names file and line."""


@dataclass(frozen=True)
class Block:
    """One fenced block.

    Attributes:
        kind: `python`, `shell` or `text`.
        line: the line of the first line of the block's content (1-based), which is also the
            line every error in it is reported against.
        source: the content, dedented by the fence's indentation.
        expect_exit: for a shell block, the exit status of its last command (0 unless a
            directive says otherwise).
    """

    kind: str
    line: int
    source: str
    language: str
    expect_exit: int = 0


def parse(text: str, label: str) -> list[Block]:
    """Every fenced block of `text` (the file called `label` in messages), in order.

    Raises:
        DocError: a block in an unknown language, an unclosed fence, or a bad directive.
    """
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        end = _closing(lines, i, opening)
        if end is None:
            raise DocError(f"{label}:{i + 1}: a code fence is never closed")
        language = opening["info"].split()[0].lower() if opening["info"] else ""
        kind = KINDS.get(language)
        if kind is None:
            raise DocError(f"{label}:{i + 1}: a ```{language} block: use python, a shell block "
                           "(console, bash, sh, shell, or no language), or text")
        indent = len(opening["indent"])
        body = "\n".join(_dedent(line, indent) for line in lines[i + 1:end])
        if language == "console":
            body = _session(body)
        expect = _directive(lines[i - 1] if i > 0 else "", kind, f"{label}:{i}")
        blocks.append(Block(kind, i + 2, body + "\n" if body else "", language, expect))
        i = end + 1
    return blocks


def _session(body: str) -> str:
    """A console block written as a terminal session (`$ command`, then its output): only the
    commands, each on its own line (`> ` continuation prompts too); output lines become blank,
    so that line numbers stay the file's. A block without prompts is returned as it is."""
    lines = body.split("\n")
    if not any(line == "$" or line.startswith("$ ") for line in lines):
        return body
    out: list[str] = []
    continued = heredoc = False
    for line in lines:
        prompted = line == "$" or line.startswith("$ ")
        if prompted or (continued and (line == ">" or line.startswith("> "))):
            command = line[2:]
        elif continued and not heredoc:  # a backslash continuation written without a prompt
            command = line
        else:
            out.append("")
            continued = heredoc = False
            continue
        out.append(command)
        heredoc = heredoc or "<<" in command
        continued = heredoc or command.endswith("\\")
    return "\n".join(out)


def _dedent(line: str, indent: int) -> str:
    """A line of a block whose fence is indented by `indent` spaces (in a list item)."""
    cut = len(line) - len(line.lstrip(" "))
    return line[min(cut, indent):]


def _closing(lines: list[str], start: int, opening: re.Match[str]) -> int | None:
    fence = opening["fence"]
    for j in range(start + 1, len(lines)):
        stripped = lines[j].strip()
        if stripped.startswith(fence[0] * len(fence)) and set(stripped) == {fence[0]}:
            return j
    return None


def _directive(line: str, kind: str, where: str) -> int:
    found = _DIRECTIVE.match(line)
    if found is None:
        return 0
    exit_code = _EXIT.match(found["body"])
    if exit_code is None:
        raise DocError(f"{where}: unknown directive {found['body']!r} (the harness knows "
                       "`<!-- test: exit N -->`)")
    if kind != SHELL:
        raise DocError(f"{where}: `exit N` applies to shell blocks only")
    return int(exit_code["code"])


__all__ = ["KINDS", "PYTHON", "SHELL", "TEXT", "Block", "DocError", "parse"]
