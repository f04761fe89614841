"""The ``oncograph`` command as a person meets it, without a database: a fast ``--help`` that imports no
heavy module, the lazy command table in step with the commands, and user text printed as itself."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from oncograph_cli.main import COMMANDS, app, load_command
from oncograph_cli.output import safe

HEAVY = ("sqlalchemy", "pandas", "pyarrow", "prefect", "fastapi", "oncograph.db", "oncograph.cohorts")


def test_help_imports_no_heavy_module() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from oncograph_cli.main import app\n"
        "result = CliRunner().invoke(app, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert time.perf_counter() - started < 20  # a generous sanity bound (it is well under a second)


def test_help_lists_every_command_on_stdout() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for name, entry in COMMANDS.items():
        assert name in result.stdout and entry.help in result.stdout, name


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_lazy_help_is_the_commands_own(name: str) -> None:
    command = load_command(name)
    own = (command.help or "").strip().split("\n\n")[0].replace("\n", " ")
    assert own.startswith(COMMANDS[name].help), (name, own)


def test_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["no-such-command"])
    assert result.exit_code == 2 and "No such command" in result.output


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("[bold red]x[/]", "\\[bold red]x\\[/]"),
        ("a\x1b[2Jb", "a\\x1b[2Jb"),
        ("line\nbreak\r", "line\\x0abreak\\x0d"),
        ("evil\u202etxt", "evil\\u202etxt"),
        (None, ""),
    ],
)
def test_safe_escapes_markup_and_control_characters(text: str | None, shown: str) -> None:
    assert safe(text) == shown


def test_safe_keeps_lines_when_asked() -> None:
    assert safe("a\n\tb\x1b", lines=True) == "a\n\tb\\x1b"
