"""A symbol's status `reason` is shown to any API user: it names the symbol or file, never a server path."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from symbol_pipeline.services.symbols import public_reason, symbol_status_document
from symbol_pipeline.sources.csv_dir import CsvDirectorySource
from symbol_pipeline.storage.database import ensure_schema
from symbol_pipeline.storage.dialect import make_engine
from symbol_pipeline.storage.universe import set_status
from symbol_pipeline_tests.portfolio_data import seed_symbols

D = dt.date


def test_csv_source_failures_name_the_file_not_the_directory(tmp_path: Path) -> None:
    prices = tmp_path / "secret-server-dir" / "prices"
    prices.mkdir(parents=True)
    (prices / "BAD.csv").write_text("Date,Adj Close\n2024-01-02,abc\n")
    result = CsvDirectorySource(prices).fetch(["MISSING", "BAD"], D(2024, 1, 1), D(2024, 1, 31))
    assert result.failures["MISSING"] == "no data file MISSING.csv"
    assert result.failures["BAD"].startswith("malformed data file BAD.csv: non-numeric")
    for reason in result.failures.values():
        assert str(tmp_path) not in reason and "secret-server-dir" not in reason and "/" not in reason


@pytest.mark.parametrize(("reason", "shown"), [
    ("no data file /srv/data/prices/X.csv", "no data file X.csv"),
    ("[Errno 13] Permission denied: '/var/lib/sp/X.csv'", "[Errno 13] Permission denied: 'X.csv'"),
    ("cannot open C:\\data\\prices\\X.csv", "cannot open X.csv"),
    ("directory /srv/data/ is gone", "directory <path> is gone"),
    ("too little history: 223 sessions of prices, at least 31 needed", None),
    ("HTTP 503 from https://query1.example.com/v8/chart", None),
    ("ratio 1/2 is not a path", None),
])
def test_public_reason_keeps_no_server_path(reason, shown) -> None:
    assert public_reason(reason) == (shown or reason)


def test_the_status_document_reason_has_no_path(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    ensure_schema(engine)
    seed_symbols(engine, {"OLDX": {}}, {})
    with engine.begin() as conn:
        set_status(conn, "OLDX", "error", "malformed data file /home/ops/prices/OLDX.csv: duplicate date 2024-01-02")
    document = symbol_status_document(engine, "OLDX")
    assert document["status"] == "error"
    assert document["reason"] == "malformed data file OLDX.csv: duplicate date 2024-01-02"
    engine.dispose()
