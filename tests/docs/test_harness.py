"""The docs harness itself: what runs, what carries over, and failures that name file and line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .docblocks import PYTHON, SHELL, TEXT, DocError, parse
from .test_docs import failure_report, run_document


def run_md(tmp_path: Path, text: str) -> tuple[int, str]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    doc = tmp_path / "sample.md"
    doc.write_text(text, encoding="utf-8")
    return run_document(doc, tmp_path, timeout=60)


def failure(tmp_path: Path, text: str) -> str:
    code, output = run_md(tmp_path, text)
    assert code != 0, output
    return failure_report(output)


def test_blocks_have_kinds_lines_and_directives() -> None:
    text = ("# T\n\n```python\nx = 1\n```\n\n<!-- test: exit 3 -->\n```console\nfalse\n```\n\n"
            "1. a list item:\n\n   ```bash\n   echo indented\n   ```\n\n```\nls\n```\n\n"
            "```text\noutput\n```\n")
    blocks = parse(text, "t.md")
    assert [(b.kind, b.line, b.expect_exit) for b in blocks] == [
        (PYTHON, 4, 0), (SHELL, 9, 3), (SHELL, 15, 0), (SHELL, 19, 0), (TEXT, 23, 0)]
    assert blocks[2].source == "echo indented\n"


def test_a_console_block_may_be_a_terminal_session() -> None:
    text = ("```console\n$ echo one \\\n    two\none two\n$ cat <<EOF\n> hi\n> EOF\nhi\n"
            "```\n```bash\n$ not a prompt here\n```\n")
    session, script = parse(text, "t.md")
    assert session.source.split("\n") == ["echo one \\", "    two", "", "cat <<EOF", "hi", "EOF",
                                          "", ""]
    assert script.source == "$ not a prompt here\n"


@pytest.mark.parametrize(("text", "message"), [
    ("\n```js\nx\n```\n", "t.md:2: a ```js block: use python, a shell block"),
    ("```python\nx = 1\n", "t.md:1: a code fence is never closed"),
    ("<!-- test: skip -->\n```console\nls\n```\n", "t.md:1: unknown directive 'skip'"),
    ("<!-- test: exit 2 -->\n```python\nx = 1\n```\n", "t.md:1: `exit N` applies to shell"),
])
def test_documents_that_break_the_rules_are_refused(text: str, message: str) -> None:
    with pytest.raises(DocError, match=re.escape(message)):
        parse(text, "t.md")


def test_a_file_is_one_session_python_and_shell_in_order(tmp_path: Path) -> None:
    code, output = run_md(tmp_path, '''# Session

```python
import asyncio
total = 40
```

```python
async def plus(n):
    await asyncio.sleep(0)
    return total + n
total = await plus(2)
with open("total.txt", "w") as out:
    print(total, file=out)
```

```console
NAME=shell
export FROM_SHELL=yes
cat total.txt
pip install -e ".[cli]" && echo installed-nothing
```

```bash
echo "$NAME $FROM_SHELL"
python -m pytest -x
```

<!-- test: exit 3 -->
```sh
sh -c 'exit 3'
```

```text
this is not run
```
''')
    assert code == 0, output
    assert "42\n" in output and "shell yes\n" in output
    assert "skipped: pip install -e .[cli]" in output and "installed-nothing" in output
    assert "skipped: python -m pytest -x" in output


def test_failing_python_names_the_line_and_the_exception(tmp_path: Path) -> None:
    report = failure(tmp_path, "# P\n\n```python\nx = 1\n\ny = x / 0\n```\n")
    assert report.startswith("sample.md:6: ZeroDivisionError: division by zero (python block at "
                             "line 4)"), report
    assert "y = x / 0" in report


def test_failing_shell_command_names_the_line_and_the_command(tmp_path: Path) -> None:
    report = failure(tmp_path, "# S\n\n```console\necho one\nls no-such-file\necho two\n```\n")
    assert report.startswith("sample.md:5: `ls no-such-file` — exit 2"), report
    assert "\ntwo" not in report


def test_exit_directive_is_checked(tmp_path: Path) -> None:
    report = failure(tmp_path, "# E\n\n<!-- test: exit 4 -->\n```console\necho fine\ntrue\n```\n")
    assert report.startswith("sample.md:6: `true` — exit 0, the doc says 4"), report


def test_an_error_beside_the_code_fails_its_block(tmp_path: Path) -> None:
    report = failure(tmp_path, "# C\n\n```python\nimport asyncio\n"
                               "asyncio.get_running_loop().call_soon(lambda: 1 / 0)\n"
                               "await asyncio.sleep(0.01)\n```\n")
    assert report.startswith("sample.md:4: the python block caused an error outside its own "
                             "code"), report
    assert "ZeroDivisionError" in report


def test_a_warning_from_tether_fails_its_block(tmp_path: Path) -> None:
    report = failure(tmp_path, """# W

```python
from typing import TypedDict

from tether.graph import START, StateGraph


class State(TypedDict):
    n: int

graph = StateGraph(State).add_node("typo", lambda s: {"m": 1}).add_edge(START, "typo").compile()
graph.invoke({"n": 0})
```
""")
    assert report.startswith("sample.md:4: the python block caused an error outside"), report
    assert "StrictnessWarning" in report


def test_documented_ports_stand_for_free_ones(tmp_path: Path) -> None:
    code, output = run_md(tmp_path, "# P\n\n```console\necho --port 2024 localhost:2024\n```\n")
    assert code == 0, output
    port = re.search(r"^--port (\d+) localhost:(\d+)$", output, re.M)
    assert port and port.group(1) == port.group(2) != "2024", output


def test_background_commands_run_until_the_end_and_must_stop_cleanly(tmp_path: Path) -> None:
    script = tmp_path / "scratch_tool.py"
    script.write_text("import pathlib, signal, sys, time\n"
                      "signal.signal(signal.SIGINT, lambda *a: sys.exit(int(sys.argv[1])))\n"
                      "pathlib.Path('up').touch()\ntime.sleep(30)\n")
    wait = "until [ -f up ]; do sleep 0.05; done"  # its SIGINT handler is in place
    code, output = run_md(tmp_path / "clean",
                          f"```console\npython {script} 0 &\n{wait}\necho next\n```\n")
    assert code == 0, output
    assert "running in the background" in output and "next" in output
    report = failure(tmp_path / "dirty", f"```console\npython {script} 3 &\n{wait}\n```\n")
    assert "did not stop cleanly (exit 3)" in report, report
