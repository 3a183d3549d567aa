"""The one set of input rules (lib/rules.py, lib/symbols.py, lib/text.py), value by value. The API's
field types and the services are built on these functions; the HTTP and CLI tests hold them there."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import TypeAdapter, ValidationError

from symbol_pipeline.api import fields
from symbol_pipeline.lib import rules
from symbol_pipeline.lib.sessions import FIRST_SESSION, OutsideCalendarError, sessions_between, sessions_ending
from symbol_pipeline.lib.symbols import InvalidSymbolError, validate_symbol
from symbol_pipeline.lib.text import printable, quote


@pytest.mark.parametrize(("raw", "symbol"), [("^IRX", "^IRX"), ("CL=F", "CL=F"), ("BRK-B", "BRK-B"),
                                             ("brk.b", "BRK.B"), (" aapl ", "AAPL"), ("9984", "9984")])
def test_valid_symbols_are_upper_cased_ascii(raw, symbol):
    assert validate_symbol(raw) == symbol


@pytest.mark.parametrize(("raw", "rule"), [
    ("ſpy", "non-ASCII"), ("ß", "non-ASCII"), ("ＡＡＰＬ", "non-ASCII"),  # Unicode case folding is not applied
    ("\x1fAAA", "control character"), ("AA\tA", "control character"), ("AAA\n", "control character"),
    ("=CMD", "starting with a letter, a digit or"), ("....", "starting with a letter"), ("-A", "starting with"),
    ("^", "at least one letter or digit"), ("^=", "at least one letter or digit"),
    ("A|B", "may only hold"), ("", "empty"), ("A" * 21, "longer than 20"),
])
def test_symbols_that_break_a_rule_are_refused_not_folded_nor_stripped(raw, rule):
    with pytest.raises(InvalidSymbolError, match=rule):
        validate_symbol(raw)


def test_a_long_input_is_quoted_short():
    with pytest.raises(InvalidSymbolError) as caught:
        validate_symbol("x" * 60_000)
    assert len(str(caught.value)) < 200
    assert quote("y" * 60_000).endswith("…") and len(quote("y" * 60_000)) < 50


@pytest.mark.parametrize(("value", "rule"), [
    (True, "not a boolean"), (False, "not a boolean"), ("١٢٣", "ASCII digits"), ("1_000", "ASCII digits"),
    ("nan", "ASCII digits"), (float("nan"), "finite"), (float("inf"), "finite"), ("9" * 400, "finite"),
    (10 ** 400, "within"), (-(10 ** 400), "within"), (1.5e12, "within"), (0, "zero"), ("0.0", "zero"),
    ([1], "must be a number"), (None, "must be a number"),
])
def test_quantities_that_break_a_rule(value, rule):
    with pytest.raises(rules.RuleError, match=rule):
        rules.quantity(value)


@pytest.mark.parametrize(("value", "expected"), [(1, 1.0), (-2.5, -2.5), ("12", 12.0), (" -1e3 ", -1000.0),
                                                 (10 ** 12, 1e12), (".5", 0.5)])
def test_quantities_within_the_rules(value, expected):
    assert rules.quantity(value) == expected


def test_prices_are_positive_and_bounded():
    assert rules.price("190.5") == 190.5
    for bad in (0, -1, 1e14, True, "١"):
        with pytest.raises(rules.RuleError):
            rules.price(bad)


@pytest.mark.parametrize(("value", "rule"), [
    ("0", "YYYY-MM-DD"), (0, "YYYY-MM-DD"), ("20240103", "YYYY-MM-DD"), ("2024-1-3", "YYYY-MM-DD"),
    ("２０２４-01-03", "YYYY-MM-DD"), ("2024-02-30", "calendar date"), ("2024-01-03T00:00", "YYYY-MM-DD"),
    ("0001-01-01", "1995-01-03"), ("1995-01-02", "1995-01-03"), ("9999-12-31", "after today"),
])
def test_dates_that_break_a_rule(value, rule):
    with pytest.raises(rules.RuleError, match=rule):
        rules.date(value)


def test_the_earliest_date_is_the_calendars_first_session():
    assert rules.EARLIEST_DATE == FIRST_SESSION == dt.date(1995, 1, 3)
    assert rules.date("1995-01-03") == FIRST_SESSION
    assert fields.EARLIEST_DATE == rules.EARLIEST_DATE  # the API documents the same date


def test_user_names_hold_no_control_characters():
    assert rules.user_name(" alice ") == "alice"
    assert rules.user_name("x" * 60) == "x" * 60
    for bad in ("evil\nroot requested", "\x1b[2Jroot", "a\u2028b", "", "x" * 61, 7):
        with pytest.raises(rules.RuleError):
            rules.user_name(bad)


def test_printable_keeps_a_stored_string_on_one_line():
    assert printable("api:evil\nSPY\tactive\x1b[31m") == "api:evil\\nSPY\\tactive\\x1b[31m"
    assert "\n" not in printable("a\u2028b\x85") and printable(None) == ""


def test_the_api_types_apply_the_same_rules():
    """api/fields.py wraps these functions: a value refused here is refused there, and the reverse."""
    quantity, as_of, symbol = TypeAdapter(fields.Quantity), TypeAdapter(fields.AsOfDate), TypeAdapter(fields.Symbol)
    for bad in (10 ** 400, 0, 2e12):
        with pytest.raises(ValidationError):
            quantity.validate_python(bad)
    for bad in ("0", 0, "1994-12-30"):
        with pytest.raises(ValidationError):
            as_of.validate_python(bad)
    for bad in ("ſpy", "=CMD", "^"):
        with pytest.raises(ValidationError):
            symbol.validate_python(bad)
    assert symbol.validate_python("brk-b") == "BRK-B"


def test_the_calendar_says_what_it_cannot_serve():
    with pytest.raises(OutsideCalendarError, match="1995-01-03"):
        sessions_ending("1995-02-01", 253)
    with pytest.raises(OutsideCalendarError, match="1995-01-03"):
        sessions_between("1900-01-01", "1995-02-01")
    partial = sessions_ending("1995-01-10", 253, partial=True)
    assert partial[0].date() == FIRST_SESSION and len(partial) == 6


@pytest.mark.parametrize("value", ["", "   ", "x" * 129, "a\nb", "tab\there", 7])
def test_a_portfolio_name_is_refused_alike_by_the_api_and_the_service(value):
    """One rule (rules.portfolio_name): the API's field refuses what the service refuses."""
    with pytest.raises(rules.RuleError):
        rules.portfolio_name(value)
    with pytest.raises(ValidationError):
        TypeAdapter(fields.PortfolioName).validate_python(value)


def test_portfolio_names_and_currencies_the_rules_accept():
    for text in (" main ", "x" * 128, "Ünïcode book"):
        assert rules.portfolio_name(text) == TypeAdapter(fields.PortfolioName).validate_python(text) == text.strip()
    assert rules.currency("USD") == TypeAdapter(fields.Currency).validate_python("USD") == "USD"
    for bad in ("EUR", "usd", ""):
        with pytest.raises(rules.RuleError, match="only USD"):
            rules.currency(bad)
        with pytest.raises(ValidationError, match="only USD"):
            TypeAdapter(fields.Currency).validate_python(bad)
