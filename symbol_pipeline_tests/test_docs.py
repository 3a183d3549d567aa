"""The documents stay true to the code: every setting the code reads is in the README's settings
table and every one documented there is read; the private-API inventory of docs/architecture.md
names the Dagster release that is installed."""

from __future__ import annotations

import re
from pathlib import Path

import dagster

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "symbol_pipeline"
SETTING = re.compile(r"\bSYMBOL_PIPELINE_[A-Z0-9_]*[A-Z0-9]\b")


def settings_in_code() -> set[str]:
    """Every full `SYMBOL_PIPELINE_*` name in the package's source: the variables it reads."""
    names: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        names |= set(SETTING.findall(path.read_text(encoding="utf-8")))
    return names


def readme_settings_table(text: str) -> list[list[str]]:
    """The rows of the table under "## Settings": the first table after that heading, read up
    to its first line that is not a table row, so a paragraph that breaks it ends it."""
    section = text.split("\n## Settings\n", 1)[1]
    lines = section.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def test_every_setting_the_code_reads_is_in_the_readme_table_and_every_documented_one_is_read():
    rows = readme_settings_table((REPO / "README.md").read_text(encoding="utf-8"))
    header, rule, *body = rows
    assert header[0] == "variable" and set(rule[0]) <= set("-: ")
    documented = [row[0].strip("`") for row in body]
    assert all(len(row) == len(header) for row in body), "a row has the wrong number of cells"
    named = [n for n in documented if n.startswith("SYMBOL_PIPELINE_")]
    assert len(named) == len(set(named)), "a variable is listed twice"
    read = settings_in_code()
    assert sorted(read - set(named)) == [], "read by the code, missing from the README's settings table"
    assert sorted(set(named) - read) == [], "in the README's settings table, read nowhere in the code"


def test_the_private_api_inventory_was_checked_against_the_installed_dagster():
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    found = re.search(r"Checked against \*\*dagster ([0-9][0-9A-Za-z.+-]*)\*\*", text)
    assert found, 'docs/architecture.md names no "Checked against **dagster X.Y.Z**"'
    assert found.group(1) == dagster.__version__, (
        f"dagster {dagster.__version__} is installed, but the private-API inventory in "
        f"docs/architecture.md was checked against {found.group(1)}: review every entry against "
        f"the new release, then change the version named there"
    )
