"""SQLAlchemy Core tables of the symbol layer. The PostgreSQL DDL in sql/ is generated from here.

Prices are float64 (`Double`): rounding closes to 4 decimals moves betas by about 1e-5.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

Double = sa.Double

symbol_universe = sa.Table(
    "symbol_universe",
    metadata,
    sa.Column("symbol", sa.String(20), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("is_regressor", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("first_price_date", sa.Date),
    sa.Column("last_price_date", sa.Date),
    sa.Column("last_factor_date", sa.Date),
    sa.Column("error_message", sa.Text),
    # Failed fetches since the symbol last had prices, and when the next automatic retry is due
    # (NULL: none, e.g. attempts exhausted or rejected by an operator).
    sa.Column("retry_attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_retry_at", sa.DateTime(timezone=True)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint("status IN ('pending', 'active', 'delisted', 'error')", name="ck_symbol_universe_status"),
    sa.Index("ix_symbol_universe_next_retry_at", "next_retry_at"),
)

symbol_prices_daily = sa.Table(
    "symbol_prices_daily",
    metadata,
    sa.Column("symbol", sa.String(20), primary_key=True),
    sa.Column("date", sa.Date, primary_key=True),
    sa.Column("open", Double),
    sa.Column("high", Double),
    sa.Column("low", Double),
    # Raw close, or the adjusted close where a source only has adjusted closes (then
    # dividend = 0 and split_ratio = 1, and the return formula reduces to their ratio).
    sa.Column("close", Double, nullable=False),
    sa.Column("adj_close", Double),
    sa.Column("volume", Double),
    sa.Column("dividend", Double, nullable=False, server_default="0"),
    sa.Column("split_ratio", Double, nullable=False, server_default="1"),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Index("ix_symbol_prices_daily_date", "date"),
)

symbol_factor_exposures = sa.Table(
    "symbol_factor_exposures",
    metadata,
    sa.Column("symbol", sa.String(20), primary_key=True),
    sa.Column("date", sa.Date, primary_key=True),
    sa.Column("factor", sa.String(32), primary_key=True),
    sa.Column("beta", Double),
    sa.Column("beta_uncapped", Double),
    sa.Column("capped", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("alpha", Double),
    sa.Column("r_squared", Double),
    sa.Column("std_error", Double),
    sa.Column("observations", sa.Integer, nullable=False),
    sa.Column("method", sa.String(16), nullable=False),
    sa.Column("window", sa.Integer, nullable=False),
    sa.Column("min_observations", sa.Integer, nullable=False),
    sa.Column("ridge_alpha", Double),
    sa.Column("beta_cap", Double, nullable=False),
    sa.Column("quality", sa.String(24), nullable=False),
    sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    # RSS / (n − p − 1) of the regression the beta comes from (the risk model's specific variance);
    # NULL on rows computed before it was stored (migration 0005) or without an estimate.
    sa.Column("residual_variance", Double),
    sa.Index("ix_symbol_factor_exposures_date", "date"),
)

factor_definitions = sa.Table(
    "factor_definitions",
    metadata,
    sa.Column("factor", sa.String(32), primary_key=True),
    sa.Column("family", sa.String(16), nullable=False),
    sa.Column("method", sa.String(16), nullable=False),
    # Comma-separated tickers: (etf) for OLS and ridge, (long,short) for a spread.
    sa.Column("regressors", sa.String(64), nullable=False),
    sa.Column("window", sa.Integer, nullable=False),
    sa.Column("min_observations", sa.Integer, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
)

symbol_daily_metrics = sa.Table(
    "symbol_daily_metrics",
    metadata,
    sa.Column("symbol", sa.String(20), primary_key=True),
    sa.Column("date", sa.Date, primary_key=True),
    sa.Column("last_close", Double),
    sa.Column("return_1d", Double),
    sa.Column("return_5d", Double),
    sa.Column("return_21d", Double),
    sa.Column("return_63d", Double),
    sa.Column("return_252d", Double),
    sa.Column("volatility_21d", Double),
    sa.Column("volatility_63d", Double),
    sa.Column("market_beta", Double),
    sa.Column("ir_beta", Double),
    sa.Column("ridge_value", Double),
    sa.Column("ridge_growth", Double),
    sa.Column("ridge_momentum", Double),
    sa.Column("ridge_quality", Double),
    sa.Column("ridge_size", Double),
    sa.Column("ridge_low_volatility", Double),
    sa.Column("spread_growth_value", Double),
    sa.Column("spread_momentum", Double),
    sa.Column("spread_size", Double),
    sa.Column("spread_quality", Double),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

symbol_fetch_failures = sa.Table(
    "symbol_fetch_failures",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("symbol", sa.String(20), nullable=False, index=True),
    sa.Column("requested_start", sa.Date, nullable=False),
    sa.Column("requested_end", sa.Date, nullable=False),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

symbol_onboarding_queue = sa.Table(
    "symbol_onboarding_queue",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("symbol", sa.String(20), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("requested_by", sa.String(64), nullable=False, server_default="system"),
    sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
    sa.Column("error_message", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("completed_at", sa.DateTime(timezone=True)),
    sa.CheckConstraint(
        "status IN ('pending', 'processing', 'completed', 'failed')", name="ck_symbol_onboarding_queue_status"
    ),
    # The per-requester daily cap counts a requester's rows of the last day.
    sa.Index("ix_symbol_onboarding_queue_requested_by", "requested_by", "created_at"),
)

pipeline_alerts = sa.Table(
    "pipeline_alerts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("job_name", sa.String(128), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("webhook_status", sa.String(32)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

# A run asked for by the CLI or the HTTP API; run_request_sensor turns it into Dagster runs.
pipeline_run_requests = sa.Table(
    "pipeline_run_requests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("first_date", sa.Date, nullable=False),
    sa.Column("last_date", sa.Date, nullable=False),
    # Comma-separated tickers; NULL: every key of the `symbol` partition.
    sa.Column("symbols", sa.Text),
    sa.Column("requested_by", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="requested"),
    sa.Column("run_ids", sa.Text, nullable=False, server_default=""),
    sa.Column("message", sa.Text),
    # "daily:<date>" while a daily request is open, NULL once it ended: the unique index lets
    # one open request per date in, whichever process inserts first.
    sa.Column("active_key", sa.String(40)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint("kind IN ('daily', 'backfill', 'onboard')", name="ck_pipeline_run_requests_kind"),
    sa.CheckConstraint(
        "status IN ('requested', 'running', 'succeeded', 'failed')", name="ck_pipeline_run_requests_status"
    ),
    sa.Index("ux_pipeline_run_requests_active_key", "active_key", unique=True),
)

# A session on which a symbol has no price although its fetch succeeded: not listed yet, stopped
# trading, or a hole. Recorded so that the (date, symbol) partition counts as done in Dagster's
# status (a backfill of it succeeds instead of staying missing); deleted when a price arrives.
symbol_session_gaps = sa.Table(
    "symbol_session_gaps",
    metadata,
    sa.Column("symbol", sa.String(20), primary_key=True),
    sa.Column("date", sa.Date, primary_key=True),
    sa.Column("reason", sa.String(16), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint("reason IN ('not_listed', 'no_price', 'gap')", name="ck_symbol_session_gaps_reason"),
    sa.Index("ix_symbol_session_gaps_date", "date"),
)

# The first date partition every process builds its definitions with (issue 17): stored, not
# computed from each process's clock, so that a code server, a daemon and a run worker started on
# different days agree. One row; only the window move (services.window) changes it.
partition_window = sa.Table(
    "partition_window",
    metadata,
    sa.Column("id", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("first_date", sa.Date, nullable=False),
    sa.Column("moved_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("moved_by", sa.String(64), nullable=False),
    sa.CheckConstraint("id = 1", name="ck_partition_window_one_row"),
)
