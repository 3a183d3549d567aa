"""`symbol-pipeline positions import` reads at most the API's import limit, and bad contents are one
line on stderr, not a traceback (issue 18 item 4: /dev/zero read 2.5 GB, then a MemoryError)."""

from __future__ import annotations

import io
import json

import pytest

from symbol_pipeline.cli.main import main
from symbol_pipeline.services import portfolio as svc
from symbol_pipeline.storage.database import get_engine


@pytest.fixture
def portfolio(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    engine = get_engine(url)
    user = svc.create_user(engine, "importer")
    return svc.create_portfolio(engine, user.id, "p", 1000)["id"], ["--database-url", url], engine


def _one_line_error(argv, capsys) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1 and err.startswith("error: "), err[-2000:]
    return err


def test_dev_zero_as_a_file_or_on_stdin_is_one_line_naming_the_limit(portfolio, capsys, monkeypatch):
    pid, db, engine = portfolio
    err = _one_line_error(["positions", "import", pid, "/dev/zero", *db], capsys)
    assert "more than 16777216 bytes" in err and "SYMBOL_PIPELINE_API_MAX_IMPORT_BYTES" in err
    monkeypatch.setenv("SYMBOL_PIPELINE_API_MAX_IMPORT_BYTES", "1000")
    with open("/dev/zero", "rb") as zeros:
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(zeros))
        err = _one_line_error(["positions", "import", pid, "-", *db], capsys)
    assert "stdin holds more than 1000 bytes" in err
    assert svc.list_positions(engine, pid) == []


@pytest.mark.parametrize("name, contents, message", [
    ("deep.json", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("huge.json", '[{"symbol": "AAA", "quantity": 1' + "0" * 400 + "}]", "quantity must be within"),
    ("field.csv", "symbol,quantity\nAAA," + "1" * 200_000 + "\n", "field larger than field limit"),
    ("binary.csv", b"symbol,quantity\n\xff\xfe,1\n", "not UTF-8"),
    ("rows.csv", "symbol,quantity\n" + "AAA,1\n" * 10_001, "more than 10000 rows"),
])
def test_bad_import_contents_are_one_line(portfolio, capsys, tmp_path, name, contents, message):
    pid, db, engine = portfolio
    path = tmp_path / name
    path.write_bytes(contents if isinstance(contents, bytes) else contents.encode())
    assert message in _one_line_error(["positions", "import", pid, str(path), *db], capsys)
    assert svc.list_positions(engine, pid) == []


def test_an_import_within_the_limits_still_goes_through(portfolio, capsys, tmp_path):
    pid, db, engine = portfolio
    path = tmp_path / "ok.json"
    path.write_text(json.dumps([{"symbol": "AAA", "quantity": 2}, {"symbol": "BBB", "quantity": -1}]))
    assert main(["positions", "import", pid, str(path), *db]) == 0
    assert "2 position(s) imported" in capsys.readouterr().out
    assert [p["symbol"] for p in svc.list_positions(engine, pid)] == ["AAA", "BBB"]
