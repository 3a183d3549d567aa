"""Portfolio sub-commands of `symbol-pipeline`: users, portfolios, positions and the API server.

`register(subparsers)` adds them to the main parser; every command sets `func(args) -> int`.
Errors are reported by `cli.main` in the one error style.
"""

from __future__ import annotations

import argparse
import json
import sys

from symbol_pipeline.api.app import api_settings, create_app
from symbol_pipeline.api.server import serve
from symbol_pipeline.cli.errors import CliError
from symbol_pipeline.config import IMPORT_MAX_BYTES_ENV, IMPORT_MAX_ROWS_ENV, normalise_database_url, parse_date
from symbol_pipeline.services import portfolio as service
from symbol_pipeline.storage.database import get_engine


def _engine(args: argparse.Namespace):
    return get_engine(normalise_database_url(args.database_url or args.settings.database_url))


def _print(doc) -> None:
    print(json.dumps(doc, indent=2, default=str))


def _users_add(args) -> int:
    user = service.create_user(_engine(args), args.name, is_admin=args.admin)
    print(f"user {user.name} (id {user.id}{', admin' if user.is_admin else ''}) created")
    if args.issue_key:
        print(service.issue_api_key(_engine(args), user.name))
    return 0


def _users_issue_key(args) -> int:
    key = service.issue_api_key(_engine(args), args.name)
    print("API key (shown once, store it now):", file=sys.stderr)
    print(key)
    return 0


def _users_revoke_key(args) -> int:
    full = args.key if args.key and len(args.key) > 11 else None
    prefix = args.key if args.key and len(args.key) <= 11 else None
    count = service.revoke_api_key(_engine(args), full, prefix=prefix, user_name=args.user)
    print(f"{count} key(s) revoked")
    return 0


def _owner_id(args) -> int | None:
    return service.get_user(_engine(args), args.user).id if getattr(args, "user", None) else None


def _portfolios_create(args) -> int:
    owner = service.get_user(_engine(args), args.user)
    _print(service.create_portfolio(_engine(args), owner.id, args.name, args.equity, args.currency))
    return 0


def _portfolios_list(args) -> int:
    _print(service.list_portfolios(_engine(args), _owner_id(args)))
    return 0


def _portfolios_history(args) -> int:
    """The table the history endpoint serves as text/csv: one line per session."""
    doc = service.exposure_history(_engine(args), args.portfolio, args.start, args.end, owner_id=_owner_id(args))
    sys.stdout.write(service.exposure_history_csv(doc))
    return 0


def _portfolios_equity(args) -> int:
    _print(service.set_equity(_engine(args), args.portfolio, args.equity, owner_id=_owner_id(args),
                              effective_date=args.effective_date))
    return 0


def _portfolios_delete(args) -> int:
    service.delete_portfolio(_engine(args), args.portfolio, owner_id=_owner_id(args))
    print(f"portfolio {args.portfolio} deleted")
    return 0


def _report_pending(result: dict) -> None:
    if result["pending_symbols"]:
        print("pending (queued for onboarding): " + ", ".join(result["pending_symbols"]), file=sys.stderr)


def _positions_add(args) -> int:
    result = service.add_position(
        _engine(args), args.portfolio, args.symbol, args.quantity, entry_price=args.entry_price,
        entry_date=args.entry_date, investment_class=args.investment_class, owner_id=_owner_id(args),
        requested_by="cli",
    )
    _print(result["position"])
    _report_pending(result)
    return 0


def _positions_update(args) -> int:
    _print(service.update_position(_engine(args), args.position_id, owner_id=_owner_id(args),
                                   effective_date=args.effective_date, quantity=args.quantity,
                                   entry_price=args.entry_price))
    return 0


def _positions_close(args) -> int:
    _print(service.close_position(_engine(args), args.position_id, exit_date=args.exit_date,
                                  exit_price=args.exit_price, owner_id=_owner_id(args)))
    return 0


def _read_import(source: str, limit: int) -> bytes:
    """At most `limit` bytes of a file or of stdin (`-`): more is an error, not a read until memory runs out."""
    if source == "-":
        data = sys.stdin.buffer.read(limit + 1)
    else:
        with open(source, "rb") as stream:
            data = stream.read(limit + 1)
    if len(data) > limit:
        raise CliError(f"{'stdin' if source == '-' else source} holds more than {limit} bytes, the import limit "
                       f"({IMPORT_MAX_BYTES_ENV})")
    return data


def _positions_import(args) -> int:
    settings = args.settings
    data = _read_import(args.csv, settings.import_max_bytes)
    as_json = args.format == "json" or (args.format is None and args.csv.lower().endswith(".json"))
    try:
        rows = service.parse_rows("json" if as_json else "csv", data, settings.import_max_rows)
    except service.TooManyRowsError as exc:
        raise CliError(f"{exc}, the import limit ({IMPORT_MAX_ROWS_ENV})") from None
    result = service.add_positions(_engine(args), args.portfolio, rows, owner_id=_owner_id(args),
                                   requested_by="cli-import")
    print(f"{len(result['positions'])} position(s) imported")
    _report_pending(result)
    return 0


def _positions_list(args) -> int:
    if args.all:
        _print(service.list_positions(_engine(args), args.portfolio, include_closed=True, owner_id=_owner_id(args)))
    else:
        _print(service.page_of_positions(_engine(args), args.portfolio, args.as_of, owner_id=_owner_id(args))[0])
    return 0


def _serve(args) -> int:
    settings = api_settings(args.database_url, args.settings)
    serve(create_app(settings, freeze_heap=True), args.host, args.port, args.log_level, settings.header_timeout_seconds)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `users`, `portfolios`, `positions` and `serve` to the main parser's sub-commands."""
    # Numbers are passed on as text: the service reads them with the rules every input obeys
    # (lib/rules.number), which refuse what float() accepts and they must not ("١٢٣", "nan", "1_000").
    db = argparse.ArgumentParser(add_help=False)
    db.add_argument("--database-url", help="default: SYMBOL_PIPELINE_DATABASE_URL or the local SQLite file")

    users = subparsers.add_parser("users", help="API users and their keys")
    u = users.add_subparsers(dest="users_command", required=True)
    p = u.add_parser("add", parents=[db], help="create a user")
    p.add_argument("name")
    p.add_argument("--admin", action="store_true", help="may call the admin endpoints")
    p.add_argument("--issue-key", action="store_true", help="also issue and print an API key")
    p.set_defaults(func=_users_add)
    p = u.add_parser("issue-key", parents=[db], help="issue a new API key (printed once)")
    p.add_argument("name")
    p.set_defaults(func=_users_issue_key)
    p = u.add_parser("revoke-key", parents=[db], help="revoke a key (whole or its first 11 characters) or all of a user's")
    p.add_argument("key", nargs="?")
    p.add_argument("--user", help="revoke every key of this user")
    p.set_defaults(func=_users_revoke_key)

    portfolios = subparsers.add_parser("portfolios", help="create and list portfolios")
    pf = portfolios.add_subparsers(dest="portfolios_command", required=True)
    p = pf.add_parser("create", parents=[db])
    p.add_argument("--user", required=True, help="owner")
    p.add_argument("--name", required=True)
    p.add_argument("--equity", required=True, help="cash equity in USD (> 0)")
    p.add_argument("--currency", default="USD", help="only USD is supported")
    p.set_defaults(func=_portfolios_create)
    p = pf.add_parser("list", parents=[db])
    p.add_argument("--user", help="only this user's")
    p.set_defaults(func=_portfolios_list)
    p = pf.add_parser("history", parents=[db], help="exposures on every session of a range, as CSV")
    p.add_argument("portfolio")
    p.add_argument("--start", type=parse_date, help="default: 252 sessions before end, from the first date")
    p.add_argument("--end", type=parse_date, help="default: today")
    p.add_argument("--user", help="act as this user (ownership checked)")
    p.set_defaults(func=_portfolios_history)
    p = pf.add_parser("equity", parents=[db], help="record the equity from a date on")
    p.add_argument("portfolio")
    p.add_argument("equity")
    p.add_argument("--effective-date", type=parse_date, help="default: today")
    p.add_argument("--user")
    p.set_defaults(func=_portfolios_equity)
    p = pf.add_parser("delete", parents=[db], help="delete a portfolio and its history")
    p.add_argument("portfolio")
    p.add_argument("--user")
    p.set_defaults(func=_portfolios_delete)

    positions = subparsers.add_parser("positions", help="add, close, import and list positions")
    ps = positions.add_subparsers(dest="positions_command", required=True)
    p = ps.add_parser("add", parents=[db])
    p.add_argument("portfolio")
    p.add_argument("symbol")
    p.add_argument("quantity", help="signed; shorts negative")
    p.add_argument("--entry-price")
    p.add_argument("--entry-date")
    p.add_argument("--investment-class", default="equity")
    p.add_argument("--user", help="act as this user (ownership checked)")
    p.set_defaults(func=_positions_add)
    p = ps.add_parser("update", parents=[db], help="a new quantity from a date on, or a corrected entry price")
    p.add_argument("position_id", type=int)
    p.add_argument("--quantity", help="in shares of the effective date")
    p.add_argument("--effective-date", type=parse_date, help="default: today")
    p.add_argument("--entry-price")
    p.add_argument("--user")
    p.set_defaults(func=_positions_update)
    p = ps.add_parser("close", parents=[db])
    p.add_argument("position_id", type=int)
    p.add_argument("--exit-date")
    p.add_argument("--exit-price")
    p.add_argument("--user")
    p.set_defaults(func=_positions_close)
    p = ps.add_parser("import", parents=[db], help="CSV with header symbol,quantity[,entry_price,entry_date,"
                      "investment_class], or a JSON list of such objects")
    p.add_argument("portfolio")
    p.add_argument("csv", help="file path (.json: JSON), or - for stdin")
    p.add_argument("--format", choices=["csv", "json"], help="default: from the file name, else csv")
    p.add_argument("--user")
    p.set_defaults(func=_positions_import)
    p = ps.add_parser("list", parents=[db])
    p.add_argument("portfolio")
    p.add_argument("--all", action="store_true", help="every position ever, as recorded (ignores --as-of)")
    p.add_argument("--as-of", type=parse_date, help="positions open on this date, quantities in its shares "
                   "(default: today)")
    p.add_argument("--user")
    p.set_defaults(func=_positions_list)

    p = subparsers.add_parser("serve", parents=[db], help="run the HTTP API")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--log-level", default="info")
    p.set_defaults(func=_serve)
