"""Optional dependencies stay optional: without an extra, tether imports, and every command
that needs one says in one line which to install (exit code 2), never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tether.cli.extras import PROVIDERS

ROOT = Path(__file__).resolve().parents[2]
EXTRAS_MODULES = sorted(m for modules in PROVIDERS.values() for m in modules if "." not in m)


def _python(code: str, *args: str, blocked: list[str]) -> subprocess.CompletedProcess[str]:
    # `sys.modules[name] = None` makes `import name` fail as if it were not installed.
    prelude = (f"import sys\nfor m in {blocked!r}:\n    sys.modules[m] = None\n"
               f"sys.argv = {['x', *args]!r}\n")
    return subprocess.run([sys.executable, "-c", prelude + code], capture_output=True,
                          text=True, timeout=60, check=False, cwd=ROOT)


def test_every_module_needing_no_extra_imports_without_any() -> None:
    result = _python("import runpy; runpy.run_path('tests/no_extras.py', run_name='__main__')",
                     blocked=EXTRAS_MODULES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no-extras check: ok" in result.stdout


@pytest.mark.parametrize(("args", "missing", "extra"), [
    (("--help",), ["typer", "rich", "click"], "cli"),
    (("serve", "x:y"), ["fastapi", "uvicorn"], "server"),
    (("worker", "x:y", "--db", "postgresql://h/d"), ["psycopg", "psycopg_pool"], "postgres"),
], ids=["cli", "serve", "worker"])
def test_a_command_without_its_extra_names_it_in_one_line(
        args: tuple[str, ...], missing: list[str], extra: str) -> None:
    result = _python("from tether.cli import main\nmain()", *args, blocked=missing)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert f"pip install 'tether[{extra}]'" in lines[0]  # the brackets survive


def test_python_dash_m_tether_without_the_cli_extra_names_it() -> None:
    result = _python("import runpy; runpy.run_module('tether', run_name='__main__')", "--help",
                     blocked=["typer", "rich"])
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: the tether command line needs the cli extra: "
                                     "pip install 'tether[cli]'")
