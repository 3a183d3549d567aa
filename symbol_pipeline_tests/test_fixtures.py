"""The suite's own fixtures: one meaning per name, and one PostgreSQL stack that skips without
the server on a development machine but fails under CI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from symbol_pipeline_tests import databases

TESTS = Path(__file__).resolve().parent


def _fixtures(path: Path) -> set[str]:
    """The names of the fixtures a module defines."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef) and any("fixture" in ast.unparse(d) for d in node.decorator_list):
            names.add(node.name)
    return names


def _shared(module: Path) -> dict[str, Path]:
    """The fixtures shared with `module`: the plugin databases.py, and the conftest.py of its
    folder and of every folder above it up to the suite's root."""
    shared = dict.fromkeys(_fixtures(TESTS / "databases.py"), TESTS / "databases.py")
    folder = module.parent
    while folder.is_relative_to(TESTS):
        conftest = folder / "conftest.py"
        if conftest.is_file() and conftest != module:
            shared.update(dict.fromkeys(_fixtures(conftest), conftest))
        folder = folder.parent
    return shared


def test_no_module_redefines_a_shared_fixture():
    """A fixture redefined below its conftest means two things under one name (`engine` was once
    the environment's database in ops tests and an empty database per backend in others)."""
    redefined = {}
    for module in sorted(TESTS.rglob("*.py")):
        if module.name == "databases.py" and module.parent == TESTS:
            continue
        shared = _shared(module)
        for name in sorted(_fixtures(module) & set(shared)):
            redefined[f"{module.relative_to(TESTS)}::{name}"] = str(shared[name].relative_to(TESTS))
    assert redefined == {}, f"rename these, or use the shared fixture: {redefined}"


def test_without_the_server_a_postgres_test_skips_but_fails_under_ci(monkeypatch):
    monkeypatch.setattr(databases, "PG_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:1/postgres")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not reachable at 127.0.0.1:1"):
        databases.require_pg()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must test against it"):
        databases.require_pg()
