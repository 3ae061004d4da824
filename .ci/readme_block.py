"""Print the shell block number N (1-based) under the README's "## Two commands" heading, exactly
as written, so CI can run it in a brand-new venv."""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def blocks() -> list[str]:
    """The shell blocks of the section, in order."""
    text = README.read_text(encoding="utf-8")
    section = re.search(r"^## Two commands\n(.*?)(?=^## )", text, re.S | re.M)
    if section is None:
        raise SystemExit("README.md has no '## Two commands' section")
    found = re.findall(r"^```(?:console|bash|sh|shell)?\n(.*?)^```", section.group(1),
                       re.S | re.M)
    return [b.strip() for b in found]


if __name__ == "__main__":
    print(blocks()[int(sys.argv[1]) - 1])
