"""The CLI under the one set of input rules (issue 18): the portfolio commands refuse what the API
refuses, in one line and exit 1 (before, bad import contents printed 19–26-line tracebacks), user
names hold no control characters, and `symbols queue` prints stored text one line per symbol."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from symbol_pipeline.cli.main import main
from symbol_pipeline.storage.database import get_engine
from symbol_pipeline.storage.schema import symbol_onboarding_queue, symbol_universe


@pytest.fixture
def db(tmp_path, capsys):
    """A SQLite database with user zoe and one portfolio: (the --database-url option, portfolio id)."""
    option = ["--database-url", f"sqlite:///{tmp_path / 'cli.sqlite'}"]
    assert main(["users", "add", "zoe", *option]) == 0
    capsys.readouterr()
    assert main(["portfolios", "create", "--user", "zoe", "--name", "p", "--equity", "1000", *option]) == 0
    pid = json.loads(capsys.readouterr().out)["id"]
    return option, pid


def _one_line_error(capsys, *words: str) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert all(w in lines[0] for w in words), err
    return lines[0]


IMPORTS = {  # file name: (contents, words of the error)
    "huge.csv": ("symbol,quantity\nAAA,1e300\n", ["quantity", "within"]),
    "bool.json": ('[{"symbol": "AAA", "quantity": true}]', ["quantity", "boolean"]),
    "digits.csv": ("symbol,quantity\nAAA,١٢٣\n", ["quantity", "ASCII digits"]),
    "year1.json": ('[{"symbol": "AAA", "quantity": 1, "entry_date": "0001-01-01"}]', ["entry_date", "1995-01-03"]),
    "bigint.json": ('[{"symbol": "AAA", "quantity": ' + "9" * 400 + "}]", ["quantity", "within"]),
    "deep.json": ("[" * 50_000 + "]" * 50_000, ["nested too deeply"]),
    "field.csv": ("symbol,quantity\nAAA," + "1" * 140_000 + "\n", ["field larger than field limit"]),
    "folded.csv": ("symbol,quantity\nſpy,1\n", ["symbol", "non-ASCII"]),
}


@pytest.mark.parametrize("name", list(IMPORTS))
def test_bad_import_contents_are_one_line_and_write_nothing(db, tmp_path, capsys, name):
    option, pid = db
    contents, words = IMPORTS[name]
    path = tmp_path / name
    path.write_text(contents, encoding="utf-8")
    assert main(["positions", "import", pid, str(path), *option]) == 1
    _one_line_error(capsys, *words)
    assert main(["positions", "list", pid, *option]) == 0
    assert json.loads(capsys.readouterr().out) == []


@pytest.mark.parametrize(("args", "words"), [
    (["positions", "add", "{pid}", "AAA", "١٢٣"], ["quantity", "ASCII digits"]),
    (["positions", "add", "{pid}", "AAA", "nan"], ["quantity", "ASCII digits"]),
    (["positions", "add", "{pid}", "AAA", "5", "--entry-price", "1e300"], ["entry_price", "within"]),
    (["positions", "add", "{pid}", "AAA", "5", "--entry-date", "1990-01-01"], ["entry_date", "1995-01-03"]),
    (["positions", "add", "{pid}", "=CMD", "5"], ["symbol", "starting with a letter"]),
    (["portfolios", "equity", "{pid}", "1e300"], ["equity", "within"]),
    (["portfolios", "equity", "{pid}", "5", "--effective-date", "1900-01-01"], ["effective_date", "1995-01-03"]),
    (["positions", "list", "{pid}", "--as-of", "1970-01-01"], ["as_of", "1995-01-03"]),
    (["portfolios", "history", "{pid}", "--end", "1990-01-01"], ["end", "1995-01-03"]),
    (["users", "add", "evil\nSPY\tactive"], ["user name", "control characters"]),
    (["users", "add", "\x1b[2Jroot"], ["user name", "control characters"]),
])
def test_the_portfolio_commands_apply_the_rules(db, capsys, args, words):
    option, pid = db
    assert main([a.replace("{pid}", pid) for a in args] + option) == 1
    _one_line_error(capsys, *words)


def test_symbols_queue_prints_stored_text_one_line_per_symbol(pipeline_env, capsys):
    """A requester's name or a reason stored with a newline or an escape sequence (before user names
    were checked) cannot forge a line of `symbols queue`."""
    engine = get_engine(f"sqlite:///{pipeline_env / 'symbol_pipeline.sqlite'}")
    with engine.begin() as conn:
        conn.execute(symbol_universe.insert(), [
            {"symbol": "NEWCO", "status": "pending", "error_message": None},
            {"symbol": "OLDCO", "status": "error", "error_message": "HTTP 503\nSPY\terror\tforged"}])
        conn.execute(symbol_onboarding_queue.insert(), [
            {"symbol": "NEWCO", "status": "pending", "requested_by": "api:evil\nAAPL\tpending\x1b[2J", "priority": 1}])
        assert conn.execute(sa.select(sa.func.count()).select_from(symbol_onboarding_queue)).scalar() == 1
    assert main(["symbols", "queue"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["NEWCO", "OLDCO"], lines
    assert "api:evil\\nAAPL\\tpending\\x1b[2J" in lines[0] and "HTTP 503\\nSPY\\terror\\tforged" in lines[1]
