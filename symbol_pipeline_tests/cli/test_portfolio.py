"""The portfolio sub-commands through the CLI's entry point, on SQLite."""

from __future__ import annotations

import json

from symbol_pipeline.cli.main import main


def _run(argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_users_portfolios_positions(tmp_path, capsys):
    db = ["--database-url", f"sqlite:///{tmp_path / 'cli.sqlite'}"]
    assert _run(["users", "add", "zoe", *db], capsys)[0] == 0
    code, key, err = _run(["users", "issue-key", "zoe", *db], capsys)
    assert code == 0 and key.strip().startswith("sp_") and "shown once" in err
    code, out, _ = _run(["portfolios", "create", "--user", "zoe", "--name", "p", "--equity", "1000", *db], capsys)
    pid = json.loads(out)["id"]
    code, _, err = _run(["portfolios", "create", "--user", "zoe", "--name", "p", "--equity", "-1", *db], capsys)
    assert code == 1 and "equity" in err
    code, out, err = _run(["positions", "add", pid, "newco", "-5", "--entry-price", "3", *db], capsys)
    assert code == 0 and "NEWCO" in err
    code, _, err = _run(["positions", "add", pid, "A|B", "1", *db], capsys)
    assert code == 1 and "error:" in err
    csv = tmp_path / "p.csv"
    csv.write_text("symbol,quantity\nAAA,3\n")
    assert _run(["positions", "import", pid, str(csv), *db], capsys)[0] == 0
    code, out, _ = _run(["positions", "list", pid, *db], capsys)
    rows = json.loads(out)
    assert [r["symbol"] for r in rows] == ["NEWCO", "AAA"]
    assert _run(["positions", "close", str(rows[0]["id"]), *db], capsys)[0] == 0
    assert _run(["users", "revoke-key", key.strip()[:11], *db], capsys)[0] == 0
    assert _run(["users", "revoke-key", key.strip()[:11], *db], capsys)[0] == 1
