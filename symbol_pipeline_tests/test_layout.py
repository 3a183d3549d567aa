"""The package's shape: layers (import-linter), file size, function-local imports, one Alembic head."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from symbol_pipeline.storage.migrate import alembic_config

PACKAGE = Path(__file__).resolve().parents[1] / "symbol_pipeline"
MAX_LINES = 400


def _modules() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts]


def test_no_module_over_the_size_limit():
    long = {str(p.relative_to(PACKAGE)): n for p in _modules() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}, f"split these modules by responsibility (≤ {MAX_LINES} lines): {long}"


def _local_project_imports(path: Path) -> list[int]:
    """Line numbers of project imports inside a function without a comment on that line or above."""
    source = path.read_text()
    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for inner in ast.walk(node):
            module = getattr(inner, "module", None) if isinstance(inner, ast.ImportFrom) else None
            names = [a.name for a in inner.names] if isinstance(inner, ast.Import) else [module or ""]
            if not isinstance(inner, (ast.Import, ast.ImportFrom)):
                continue
            if not any(n.startswith("symbol_pipeline") for n in names):
                continue
            here, above = lines[inner.lineno - 1], lines[inner.lineno - 2] if inner.lineno > 1 else ""
            if "#" not in here and not above.strip().startswith("#"):
                found.append(inner.lineno)
    return found


def test_function_local_project_imports_say_why():
    offenders = {str(p.relative_to(PACKAGE)): lines for p in _modules() if (lines := _local_project_imports(p))}
    assert offenders == {}, f"import at module top, or say why in a comment: {offenders}"


def test_alembic_has_a_single_head():
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1, script.get_heads()


def test_import_contracts_hold():
    """The layers of STYLE.md, as the import-linter contracts in pyproject.toml (CI runs them too)."""
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("import-linter is not installed in this environment")
    result = subprocess.run([exe], cwd=PACKAGE.parent, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:]
