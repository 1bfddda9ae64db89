"""Meta-tests: the docs cover every hook, CLI command, config key, profile field,
control route and metric; every hook is tested; every page is linked.

Modelled on datasette's ``tests/test_docs.py``: adding a hook spec or a command
without documenting (and, for hooks, testing) it fails the suite.
"""

from __future__ import annotations

import inspect
import json
import re
import typing
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import attrs
import pytest

from kernel import cli, config, control, hookspecs, metrics, profile

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


# ---- configuration keys ---------------------------------------------------------------------

CONFIG_DOC = DOCS / "config.md"


def _attrs_keys(cls: type, prefix: str = "") -> list[tuple[str, Any]]:
    """``(dotted key, attrs.Attribute)`` for every field of ``cls``, nested classes included."""
    hints = typing.get_type_hints(cls)
    keys: list[tuple[str, Any]] = []
    for a in attrs.fields(cls):
        name = prefix + a.metadata.get("alias", a.name)
        keys.append((name, a))
        hint = hints.get(a.name)
        in_list = typing.get_origin(hint) is list
        for sub in (hint, *typing.get_args(hint)):
            if isinstance(sub, type) and attrs.has(sub):
                keys.extend(_attrs_keys(sub, name + ("[]." if in_list else ".")))
    return keys


def kernel_config_keys() -> list[str]:
    keys = []
    for a in attrs.fields(config.Config):
        if a.name in config.SECTIONS or a.name == "plugins":
            keys.extend(
                f"{a.name}.{k}"
                for k, _ in _attrs_keys(a.type if isinstance(a.type, type) else a.default.factory)
            )
    return keys


def plugin_sections() -> dict[str, type]:
    """``{section name: config class}`` of every installed plugin, via ``noslate_config_section``."""
    sections = {}
    for ep in entry_points(group="noslate.plugins"):
        hook = getattr(ep.load(), "noslate_config_section", None)
        if hook is not None:
            spec = hook()
            sections[spec.name] = spec.cls
    return sections


def config_doc_pages() -> dict[str, Path]:
    """The plugin-section table of docs/config.md: ``| `[plugins.NAME]` | [page](page) |``."""
    pages = {}
    for name, link in re.findall(
        r"^\| `\[plugins\.([a-z0-9_]+)\]` \| \[[^\]]*\]\(([^)#]+)", CONFIG_DOC.read_text(), re.M
    ):
        pages[name] = (DOCS / link).resolve()
    return pages


@pytest.mark.parametrize("key", kernel_config_keys())
def test_kernel_config_key_is_documented(key: str) -> None:
    section, _, name = key.partition(".")
    text = CONFIG_DOC.read_text()
    body = text.split(f"## `[{section}]`", 1)
    rows = body[1].split("\n## ", 1)[0] if len(body) == 2 else ""
    assert f"| `{name}` |" in rows or f"| `{key}` |" in text, (
        f"docs/config.md documents no `{name}` in a `## `[{section}]`` table (or a `{key}` row)"
    )


def test_every_plugin_section_has_a_doc_page() -> None:
    sections, pages = plugin_sections(), config_doc_pages()
    assert {"outbound_http", "scaler_reactive", "kv_lru"} <= set(sections)
    missing = sorted(set(sections) - set(pages))
    assert not missing, f"docs/config.md's plugin table lists no page for [plugins.{missing[0]}]"
    for name, page in pages.items():
        assert page.is_file(), f"docs/config.md links [plugins.{name}] to a missing page {page}"


@pytest.mark.parametrize(
    "key", [f"{name}.{key}" for name, cls in sorted(plugin_sections().items()) for key, _ in _attrs_keys(cls)]
)
def test_plugin_config_key_is_documented(key: str) -> None:
    section, _, dotted = key.partition(".")
    page = config_doc_pages().get(section)
    assert page is not None, f"docs/config.md has no page for [plugins.{section}]"
    text = page.read_text()
    leaf = dotted.rsplit(".", 1)[-1]
    in_toml = re.search(rf"^\s*#?\s*{re.escape(leaf)}\s*=", text, re.M)  # a commented TOML example
    assert f"`{dotted}`" in text or f"`{leaf}`" in text or in_toml, (
        f"{page.relative_to(ROOT)} does not document `{dotted}` of [plugins.{section}]"
    )


# ---- profile fields -------------------------------------------------------------------------


def _default_text(a: Any) -> str | None:
    """How a default is written in docs/profiles.md, or None for a required field."""
    if a.default is attrs.NOTHING:
        return None
    if isinstance(a.default, attrs.Factory):  # type: ignore[arg-type]
        value = a.default.factory()
        if attrs.has(type(value)):
            return "(object)"
    else:
        value = a.default
    return "none" if value is None else json.dumps(value)


def profile_fields() -> list[tuple[str, str | None]]:
    return [(key, _default_text(a)) for key, a in _attrs_keys(profile.FunctionProfile)]


@pytest.mark.parametrize("field,default", profile_fields())
def test_profile_field_is_documented_with_default(field: str, default: str | None) -> None:
    if default == "(object)":
        return  # a nested object (resourceLimit, worker): its fields have their own rows
    rows = [r for r in (DOCS / "profiles.md").read_text().splitlines() if r.startswith("| ")]
    row = next((r for r in rows if f"`{field}`" in r.split(" | ")[0]), None)
    assert row is not None, f"docs/profiles.md has no table row for `{field}`"
    if default is None:
        return  # required: any text in the default column
    cell = row.split(" | ")[1]
    assert f"`{default}`" in cell or (default == "none" and cell.strip() == "none"), (
        f"docs/profiles.md: `{field}` should show its default `{default}`, the row says {cell!r}"
    )


# ---- control API routes and metrics ---------------------------------------------------------


@pytest.mark.parametrize("method,path", [(m, p) for m, p, _ in control.ROUTES])
def test_control_route_is_documented(method: str, path: str) -> None:
    assert f"| {method} | `{path}` |" in (DOCS / "control-api.md").read_text(), (
        f"docs/control-api.md has no '| {method} | `{path}` |' row"
    )


def metric_names() -> list[str]:
    names = []
    for family in metrics.Metrics().registry.collect():
        names.append(family.name + "_total" if family.type == "counter" else family.name)
    return sorted(names)


def test_metrics_found() -> None:
    assert "noslate_requests_total" in metric_names()


@pytest.mark.parametrize("name", metric_names())
def test_metric_is_documented(name: str) -> None:
    assert f"`{name}`" in (DOCS / "operations.md").read_text(), f"docs/operations.md does not list {name}"


# ---- every page is reachable ----------------------------------------------------------------


def doc_pages() -> list[str]:
    return sorted(p.name for p in DOCS.glob("*.md"))


@pytest.mark.parametrize("page", [p for p in doc_pages() if p != "index.md"])
def test_page_is_linked_from_index(page: str) -> None:
    assert f"]({page})" in (DOCS / "index.md").read_text(), f"docs/index.md does not link {page}"


@pytest.mark.parametrize("page", doc_pages())
def test_page_is_linked_from_readme(page: str) -> None:
    assert f"](docs/{page})" in (ROOT / "README.md").read_text(), f"README.md does not link docs/{page}"


def test_relative_links_resolve() -> None:
    """Every relative link in README.md, docs/*.md and examples/README.md points at a file."""
    broken = []
    for page in [ROOT / "README.md", ROOT / "examples" / "README.md", *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue
            if not (page.parent / target.split("#", 1)[0]).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, "broken links: " + ", ".join(broken)


# ---- examples in the docs are valid ---------------------------------------------------------


def toml_examples() -> list[tuple[str, int, str]]:
    """Every ```toml block of docs/*.md that is a noslate config (not a pyproject.toml)."""
    found = []
    for page in sorted(DOCS.glob("*.md")):
        for i, block in enumerate(re.findall(r"```toml\n(.*?)```", page.read_text(), re.S)):
            if not re.search(r"^\[(project|build-system|tool)", block, re.M):
                found.append((page.name, i, block))
    return found


@pytest.mark.parametrize(
    "page,index,block", toml_examples(), ids=lambda v: v if isinstance(v, str) and len(v) < 40 else ""
)
def test_config_example_validates(page: str, index: int, block: str) -> None:
    import tomllib

    try:
        config.build_config(tomllib.loads(block), f"{page} example {index}")
    except Exception as exc:
        pytest.fail(f"docs/{page}: TOML example {index} is not a valid config: {getattr(exc, 'errors', exc)}")


def test_profile_examples_parse() -> None:
    """The example of docs/profiles.md and every examples/*/profile.json are valid profiles."""
    text = (DOCS / "profiles.md").read_text().split("## Example", 1)[1]
    block = re.search(r"```json\n(.*?)```", text, re.S)
    assert block, "docs/profiles.md has no JSON example"
    profile.parse_profile({"name": "shop", **json.loads(block.group(1))})
    folders = sorted(p for p in (ROOT / "examples").iterdir() if (p / "profile.json").is_file())
    assert len(folders) >= 4
    for folder in folders:
        profile.parse_profile({"name": folder.name, **json.loads((folder / "profile.json").read_text())})
