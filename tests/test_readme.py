"""The README's examples run as written: the Python API block, and every command's sub-command and
flags exist (so the README cannot drift from the CLI)."""

from __future__ import annotations

import re
import shlex

import pytest

from optimizer.cli import build_parser
from tests.conftest import REPO

README = (REPO / "README.md").read_text()


def test_python_example_runs(monkeypatch, capsys):
    (block,) = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    monkeypatch.chdir(REPO)
    exec(compile(block, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert out.startswith("optimal ") and "best rule" in out


def _commands() -> list[list[str]]:
    out = []
    for block in re.findall(r"```sh\n(.*?)```", README, flags=re.S):
        for line in block.splitlines():
            line = line.split("  #")[0].split(" > ")[0].strip()
            for part in re.split(r"&&|;", line):
                part = part.strip()
                if part.startswith("qfreight "):
                    out.append(shlex.split(part.replace("<run-id>", "RUN")))
    return out


@pytest.mark.parametrize("argv", _commands(), ids=lambda a: " ".join(a[1:3]))
def test_every_readme_command_parses(argv):
    parser = build_parser()
    if argv[1:] == ["--version"]:
        return
    args = parser.parse_args(argv[1:])
    assert args.command == argv[1]


def test_readme_examples_point_inside_the_repository():
    for argv in _commands():
        for token in argv:
            assert "shared/" not in token and not token.startswith("../"), argv
