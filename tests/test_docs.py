"""Meta-tests: the docs cover every hook and CLI command, and every hook is tested.

Modelled on datasette's ``tests/test_docs.py``: adding a hook spec or a command
without documenting (and, for hooks, testing) it fails the suite.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from kernel import cli, hookspecs

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
TESTS = ROOT / "tests"


def hook_names() -> list[str]:
    return sorted(
        name
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if name.startswith(f"{hookspecs.PROJECT}_") and hasattr(fn, f"{hookspecs.PROJECT}_spec")
    )


def test_hookspecs_found() -> None:
    names = hook_names()
    assert "noslate_route" in names and "noslate_runtimes" in names
    assert len(names) >= 19


@pytest.fixture(scope="module")
def hooks_doc() -> str:
    return (DOCS / "hooks.md").read_text()


@pytest.mark.parametrize("hook", hook_names())
def test_hook_is_documented(hook: str, hooks_doc: str) -> None:
    assert re.search(rf"^### {hook}$", hooks_doc, re.M), f"docs/hooks.md has no '### {hook}' section"
    section = hooks_doc.split(f"### {hook}\n", 1)[1].split("\n### ", 1)[0]
    assert f"def {hook}(" in section, f"docs/hooks.md: the {hook} section shows no signature"
    assert "**Returns:**" in section and "**When:**" in section, (
        f"{hook}: say when it runs and what it returns"
    )


@pytest.fixture(scope="module")
def test_sources() -> str:
    me = Path(__file__).resolve()
    return "\n".join(p.read_text(errors="replace") for p in TESTS.rglob("*.py") if p.resolve() != me)


@pytest.mark.parametrize("hook", hook_names())
def test_hook_has_a_test(hook: str, test_sources: str) -> None:
    assert re.search(rf"\b{hook}\b", test_sources), (
        f"no test under tests/ implements or calls {hook}; add one (name the hook in it)"
    )


@pytest.fixture(scope="module")
def cli_doc() -> str:
    return (DOCS / "cli.md").read_text()


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_cli_command_is_documented(command: str, cli_doc: str) -> None:
    assert re.search(rf"^## noslate {command}\b", cli_doc, re.M), f"docs/cli.md has no '## noslate {command}'"


def test_cli_commands_match_parser() -> None:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == set(cli.COMMANDS)
