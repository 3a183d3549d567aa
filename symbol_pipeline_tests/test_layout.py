"""The package's shape: layers (import-linter), file size, function-local imports, one Alembic head,
and tests that mirror the package."""

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
TESTS = Path(__file__).resolve().parent
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


# --- tests mirror the package: symbol_pipeline/X/Y.py is tested in symbol_pipeline_tests/X/test_Y.py
MIRROR_EXEMPTIONS = TESTS / "MIRROR_EXEMPTIONS"
EXEMPT_BY_RULE = {"__init__.py", "__main__.py"}


def _mirror(module: str) -> Path:
    """The test file of `module` (a path under the package)."""
    path = Path(module)
    return TESTS / path.parent / f"test_{path.name}"


def _exemptions() -> dict[str, list[str]]:
    """module (or folder ending in "/") → the test files or folders it names as covering it."""
    entries = {}
    for number, line in enumerate(MIRROR_EXEMPTIONS.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        module, sep, rest = line.partition(": ")
        where, dash, why = rest.partition(" - ")
        assert sep and dash and why.strip(), f"MIRROR_EXEMPTIONS:{number}: want `module: test files - why`"
        assert module not in entries, f"MIRROR_EXEMPTIONS:{number}: {module} twice"
        entries[module] = [w.strip() for w in where.split(",")]
    return entries


def _unmirrored() -> list[str]:
    return sorted(
        str(p.relative_to(PACKAGE)) for p in _modules()
        if p.name not in EXEMPT_BY_RULE and not _mirror(str(p.relative_to(PACKAGE))).is_file()
    )


def test_every_module_has_its_test_file_or_says_where_it_is_tested():
    exempt = _exemptions()
    folders = tuple(m for m in exempt if m.endswith("/"))
    missing = [m for m in _unmirrored() if m not in exempt and not m.startswith(folders)]
    assert missing == [], (
        f"write symbol_pipeline_tests/<folder>/test_<module>.py for these, or name the tests that "
        f"cover them in {MIRROR_EXEMPTIONS.name}: {missing}"
    )


def test_each_exemption_names_an_unmirrored_module_and_existing_tests():
    unmirrored = _unmirrored()
    stale, absent = [], []
    for module, where in _exemptions().items():
        covered = [m for m in unmirrored if m == module or (module.endswith("/") and m.startswith(module))]
        if not covered:
            stale.append(module)  # gone, or it has its own test file now
        absent += [f"{module}: {w}" for w in where if not (TESTS / w).exists()]
    assert stale == [], f"remove from {MIRROR_EXEMPTIONS.name} (no such module, or it has its test file): {stale}"
    assert absent == [], f"{MIRROR_EXEMPTIONS.name} names test files that do not exist: {absent}"
