"""SQLAlchemy Core tables of the portfolio layer, on the symbol layer's `metadata`.

Imported by `storage.database`, so `get_engine(url)` creates them and the DDL
generated into sql/ includes them.
"""

from __future__ import annotations

import sqlalchemy as sa

from symbol_pipeline.lib.factors import FACTOR_NAMES
from symbol_pipeline.storage.schema import Double, metadata, symbol_factor_exposures, symbol_prices_daily

# Portfolio ids are UUIDs: native `uuid` on PostgreSQL, CHAR(32) on SQLite; Python sees str.
PortfolioId = sa.Uuid(as_uuid=False)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("is_admin", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

# Keys are random 256-bit tokens shown once; only their SHA-256 is stored (a slow hash adds
# nothing for a high-entropy secret and would cost every request).
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    # The first characters of the key, to name it when revoking without storing the key.
    sa.Column("key_prefix", sa.String(16), nullable=False, index=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
)

portfolios = sa.Table(
    "portfolios",
    metadata,
    sa.Column("id", PortfolioId, primary_key=True),
    sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("name", sa.String(128), nullable=False),
    # Equity may fall to zero or below through losses; exposures then report an error for it.
    sa.Column("equity", Double, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False, server_default="USD"),
    # Bumped in the transaction of every change to the portfolio or its positions: the exposures
    # cache key names the version it was computed from, so a hit is one indexed lookup.
    sa.Column("version", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint("currency IN ('USD')", name="ck_portfolios_currency"),
)

positions = sa.Table(
    "positions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("portfolio_id", PortfolioId, sa.ForeignKey("portfolios.id", ondelete="CASCADE"), nullable=False),
    sa.Column("symbol", sa.String(20), nullable=False),
    # Signed: shorts are negative.
    sa.Column("quantity", Double, nullable=False),
    sa.Column("entry_price", Double),
    sa.Column("entry_date", sa.Date),
    # NULL while the position is open.
    sa.Column("exit_date", sa.Date),
    sa.Column("exit_price", Double),
    sa.Column("investment_class", sa.String(32), nullable=False, server_default="equity"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint("quantity <> 0", name="ck_positions_quantity_nonzero"),
    sa.Index("ix_positions_portfolio_open", "portfolio_id", "exit_date"),
    sa.Index("ix_positions_symbol", "symbol"),
)

# Holdings at a date (docs/methodology.md, "Holdings at a date"): every quantity and equity a position or
# portfolio has had, with the date from which it applies; rows are appended, never overwritten, so any
# past date can be reconstructed. A position is open from its first row's date until its exit_date
# (exclusive); on a date D its quantity is its latest row on or before D (the highest id among rows
# of one date), in shares of that row's date. `positions.quantity` and `portfolios.equity` hold the
# values in force today, for display.
position_quantities = sa.Table(
    "position_quantities",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("position_id", sa.Integer, sa.ForeignKey("positions.id", ondelete="CASCADE"), nullable=False),
    sa.Column("effective_date", sa.Date, nullable=False),
    # Signed, in shares of effective_date: later splits multiply it (closes are raw).
    sa.Column("quantity", Double, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint("quantity <> 0", name="ck_position_quantities_nonzero"),
    sa.Index("ix_position_quantities_position_date", "position_id", "effective_date"),
)

# The first row of a portfolio applies from its first date (the earliest of its creation and its
# positions' and equity's dates), whatever that row's own date.
portfolio_equity = sa.Table(
    "portfolio_equity",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("portfolio_id", PortfolioId, sa.ForeignKey("portfolios.id", ondelete="CASCADE"), nullable=False),
    sa.Column("effective_date", sa.Date, nullable=False),
    sa.Column("equity", Double, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Index("ix_portfolio_equity_portfolio_date", "portfolio_id", "effective_date"),
)

# Splits are rare rows of the price table: holdings read them for many symbols at once, so a
# partial index holds just them (a scan of every price row otherwise).
sa.Index("ix_symbol_prices_daily_splits", symbol_prices_daily.c.symbol, symbol_prices_daily.c.date,
         postgresql_where=symbol_prices_daily.c.split_ratio != 1.0,
         sqlite_where=symbol_prices_daily.c.split_ratio != 1.0)

# The exposure history reads every beta of a portfolio's symbols over a year (S × 252 × 12 rows):
# an index holding the beta itself answers it from the index alone, where the table, written one
# date at a time, has each symbol's rows on a different page per date.
sa.Index("ix_symbol_factor_exposures_history", symbol_factor_exposures.c.symbol, symbol_factor_exposures.c.date,
         symbol_factor_exposures.c.factor, symbol_factor_exposures.c.beta)

# The same betas one row per symbol and session (storage/session_betas.py): what the history reads on
# PostgreSQL, 12 times fewer entries than the index above. Kept by triggers on the long table, so on
# PostgreSQL only (`info["dialects"]`: migration 0009 creates it nowhere else).
symbol_session_betas = sa.Table(
    "symbol_session_betas",
    metadata,
    sa.Column("symbol", sa.String(20), nullable=False),
    sa.Column("date", sa.Date, nullable=False),
    # float8 × 12 in FACTOR_NAMES order, big-endian, NaN for none (session_betas.py says why).
    sa.Column("betas", sa.LargeBinary, nullable=False),
    sa.CheckConstraint(f"octet_length(betas) = {8 * len(FACTOR_NAMES)}", name="ck_symbol_session_betas_width"),
    # The betas in the key's index: a symbol's year is read from a few adjacent index pages
    # (an index-only scan) instead of one table page per session.
    sa.PrimaryKeyConstraint("symbol", "date", postgresql_include=["betas"]),
    info={"dialects": ("postgresql",)},
)

# Append-only: the position-change sensor's cursor is the last id it has seen.
portfolio_changes = sa.Table(
    "portfolio_changes",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("portfolio_id", PortfolioId, nullable=False, index=True),
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

# Derived data: rows are deleted to invalidate. `data` is the JSON document served as is.
# The exposures key is "v<portfolio version>|<prices date>|<betas date>|<as-of or latest>": it
# changes with any position or equity change (the version) and with new closes or betas (the
# dates); closes or betas rewritten for an existing date reach the cache through the daily
# symbol run, which drops every entry.
portfolio_analytics_cache = sa.Table(
    "portfolio_analytics_cache",
    metadata,
    sa.Column("portfolio_id", PortfolioId, primary_key=True),
    sa.Column("cache_type", sa.String(32), primary_key=True),
    sa.Column("cache_key", sa.String(64), primary_key=True),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

# The latest computed exposures, one row per portfolio with three columns per factor
# (beta_<factor>, dollar_exposure_<factor>, coverage_<factor>): one snapshot, replaced each time.
# Wide rather than one row per factor: the batch writes 10,000 rows, not 120,000.
portfolio_factor_exposures = sa.Table(
    "portfolio_factor_exposures",
    metadata,
    sa.Column("portfolio_id", PortfolioId, primary_key=True),
    sa.Column("as_of", sa.Date),
    sa.Column("betas_date", sa.Date),
    *[sa.Column(f"{measure}_{factor}", Double) for factor in FACTOR_NAMES
      for measure in ("beta", "dollar_exposure", "coverage")],
    sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

# One row per portfolio per computation: the portfolio-level figures, or the reason there are none.
portfolio_exposure_summary = sa.Table(
    "portfolio_exposure_summary",
    metadata,
    sa.Column("portfolio_id", PortfolioId, primary_key=True),
    sa.Column("as_of", sa.Date),
    sa.Column("betas_date", sa.Date),
    sa.Column("prices_date", sa.Date),
    sa.Column("equity", Double),
    sa.Column("gross_exposure", Double),
    sa.Column("net_exposure", Double),
    sa.Column("positions", sa.Integer, nullable=False, server_default="0"),
    # JSON lists of symbols: without any beta, with betas older than betas_date, without a close.
    sa.Column("missing_symbols", sa.Text, nullable=False, server_default="[]"),
    sa.Column("stale_symbols", sa.Text, nullable=False, server_default="[]"),
    sa.Column("unpriced_symbols", sa.Text, nullable=False, server_default="[]"),
    sa.Column("error", sa.Text),
    sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)
