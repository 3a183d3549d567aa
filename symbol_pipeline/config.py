"""Settings read from the environment, in one place.

Every setting has a default that works offline on a fresh clone: SQLite in ./data and the
synthetic market. Production overrides them with environment variables (README, "Settings").
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from symbol_pipeline.lib import rules
from symbol_pipeline.lib.text import quote
from symbol_pipeline.services.window import (
    DEFAULT_PARTITION_SESSIONS,
    PARTITION_SESSIONS_ENV,
    PARTITIONS_START_ENV,
    WindowRule,
)

# Re-exported: the entry points normalise URLs they read; the rule lives with the other dialect code.
from symbol_pipeline.storage.dialect import normalise_database_url

DATABASE_URL_ENV = "SYMBOL_PIPELINE_DATABASE_URL"
ALERT_WEBHOOK_ENV = "SYMBOL_PIPELINE_ALERT_WEBHOOK_URL"
# An import's bounds, the API's and the CLI's alike: bytes of the file or body, and rows.
IMPORT_MAX_BYTES_ENV = "SYMBOL_PIPELINE_API_MAX_IMPORT_BYTES"
IMPORT_MAX_ROWS_ENV = "SYMBOL_PIPELINE_API_MAX_IMPORT_ROWS"
DEFAULT_IMPORT_MAX_BYTES = 16 * 1024 * 1024
DEFAULT_IMPORT_MAX_ROWS = 10_000
DEFAULT_ONBOARDING_DAILY_CAP = 100
# The HTTP API's own bounds: any request body (413 beyond it, before anything is parsed), how long a
# connection may take to send its headers, and how long an accepted key is remembered.
MAX_BODY_ENV = "SYMBOL_PIPELINE_API_MAX_BODY_BYTES"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
HEADER_TIMEOUT_ENV = "SYMBOL_PIPELINE_API_HEADER_TIMEOUT_SECONDS"
DEFAULT_HEADER_TIMEOUT = 10.0
AUTH_CACHE_ENV = "SYMBOL_PIPELINE_AUTH_CACHE_SECONDS"
# services.portfolio.accounts' own default, not imported: that package costs the CLI's early check
# a second of imports (symbol_pipeline_tests/api/test_settings.py holds the two equal).
DEFAULT_AUTH_CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    price_source: str
    # The window's rule (services.window): a pinned first date, or the sessions it keeps. The first
    # date itself is stored in the database, so that every process agrees whatever its clock.
    partitions_start: str | None
    synthetic_seed: int
    synthetic_universe_size: int
    schedule_cron: str
    schedule_timezone: str
    alert_webhook_url: str | None
    scenarios_file: str | None
    # Symbols recover (docs/operations.md, "Symbols"): automatic retries of a failed fetch, the first
    # delay in hours (doubled for each later retry), sessions without a price before `delisted`,
    # and new symbols one API user may queue in 24 hours.
    symbol_retry_attempts: int = 4
    symbol_retry_delay_hours: float = 6.0
    delisted_after_sessions: int = 10
    onboarding_daily_cap: int = DEFAULT_ONBOARDING_DAILY_CAP
    import_max_bytes: int = DEFAULT_IMPORT_MAX_BYTES
    import_max_rows: int = DEFAULT_IMPORT_MAX_ROWS
    partition_sessions: int = DEFAULT_PARTITION_SESSIONS
    api_max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    api_header_timeout_seconds: float = DEFAULT_HEADER_TIMEOUT
    auth_cache_seconds: float = DEFAULT_AUTH_CACHE_SECONDS

    @property
    def window_rule(self) -> WindowRule:
        pinned = dt.date.fromisoformat(self.partitions_start) if self.partitions_start else None
        return WindowRule(pinned_start=pinned, sessions=self.partition_sessions)

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")


def _data_dir() -> Path:
    return Path(os.environ.get("SYMBOL_PIPELINE_DATA_DIR", "data")).resolve()


def _pinned_start() -> str | None:
    text = os.environ.get(PARTITIONS_START_ENV) or None
    if text is not None:
        try:
            dt.date.fromisoformat(text)
        except ValueError:
            raise rules.SettingError(f"{PARTITIONS_START_ENV} must be a date in YYYY-MM-DD form, got {text!r}") from None
    return text


def get_settings() -> Settings:
    data_dir = _data_dir()
    url = os.environ.get(DATABASE_URL_ENV) or f"sqlite:///{data_dir / 'symbol_pipeline.sqlite'}"
    return Settings(
        data_dir=data_dir,
        database_url=normalise_database_url(url),
        price_source=os.environ.get("SYMBOL_PIPELINE_PRICE_SOURCE", "synthetic"),
        partitions_start=_pinned_start(),
        synthetic_seed=int(os.environ.get("SYMBOL_PIPELINE_SYNTHETIC_SEED", "7")),
        synthetic_universe_size=int(os.environ.get("SYMBOL_PIPELINE_SYNTHETIC_SYMBOLS", "350")),
        schedule_cron=os.environ.get("SYMBOL_PIPELINE_SCHEDULE_CRON", "0 21 * * 1-5"),
        schedule_timezone=os.environ.get("SYMBOL_PIPELINE_SCHEDULE_TIMEZONE", "America/New_York"),
        alert_webhook_url=os.environ.get(ALERT_WEBHOOK_ENV) or None,
        scenarios_file=os.environ.get("SYMBOL_PIPELINE_SCENARIOS_FILE") or None,
        symbol_retry_attempts=_int_setting("SYMBOL_PIPELINE_SYMBOL_RETRY_ATTEMPTS", 4, 0),
        symbol_retry_delay_hours=_float_setting("SYMBOL_PIPELINE_SYMBOL_RETRY_DELAY_HOURS", 6.0),
        delisted_after_sessions=_int_setting("SYMBOL_PIPELINE_DELISTED_AFTER_SESSIONS", 10, 1),
        onboarding_daily_cap=_int_setting("SYMBOL_PIPELINE_ONBOARDING_DAILY_CAP", DEFAULT_ONBOARDING_DAILY_CAP, 0),
        import_max_bytes=_int_setting(IMPORT_MAX_BYTES_ENV, DEFAULT_IMPORT_MAX_BYTES, 1),
        import_max_rows=_int_setting(IMPORT_MAX_ROWS_ENV, DEFAULT_IMPORT_MAX_ROWS, 1),
        partition_sessions=_int_setting(PARTITION_SESSIONS_ENV, DEFAULT_PARTITION_SESSIONS, 1),
        api_max_body_bytes=_int_setting(MAX_BODY_ENV, DEFAULT_MAX_BODY_BYTES, 0),
        # Checked where it is used (api/server.header_timeout_protocol: positive), as before.
        api_header_timeout_seconds=_number(HEADER_TIMEOUT_ENV, DEFAULT_HEADER_TIMEOUT),
        auth_cache_seconds=_number(AUTH_CACHE_ENV, DEFAULT_AUTH_CACHE_SECONDS),
    )


def _int_setting(name: str, default: int, minimum: int) -> int:
    text = os.environ.get(name) or str(default)
    try:
        value = int(text)
    except ValueError:
        raise rules.SettingError(f"{name} must be an integer, got {text!r}") from None
    if value < minimum:
        raise rules.SettingError(f"{name} must be at least {minimum}, got {value}")
    return value


def _number(name: str, default: float) -> float:
    text = os.environ.get(name) or str(default)
    try:
        return float(text)
    except ValueError:
        raise rules.SettingError(f"{name} must be a number, got {text!r}") from None


def _float_setting(name: str, default: float) -> float:
    text = os.environ.get(name) or str(default)
    value = _number(name, default)
    if not 0 < value < 24 * 365:
        raise rules.SettingError(f"{name} must be a number of hours in (0, 8760), got {text!r}")
    return value


# Dagster writes one event per partition, each in its own transaction. These two settings batch
# them (docs/architecture.md): a 2,000-symbol run on PostgreSQL goes from 154 s to 2.5 s. The second
# one also stops the partitions of a failed run from being marked failed individually: the run
# failure, the alert row and the stale flag say what failed instead. deploy/dagster.env sets the
# same values for the webserver and the daemon.
DAGSTER_EVENT_SETTINGS = {
    "DAGSTER_EVENT_BATCH_SIZE": "1000",
    "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true",
}


def apply_dagster_event_settings() -> None:
    """Give this process the batching settings unless the environment already chose.

    Called by the entry points only: definitions.py (imported by every run worker and the code
    server) and the CLI. The event-log storages below read no environment of their own."""
    for name, value in DAGSTER_EVENT_SETTINGS.items():
        os.environ.setdefault(name, value)


def parse_date(text: str) -> dt.date:
    """A date the way every input writes it (lib/rules.parse_date: YYYY-MM-DD, ASCII digits)."""
    try:
        return rules.parse_date(text)
    except ValueError as exc:
        raise rules.RuleError(f"not a date in YYYY-MM-DD form: {quote(text)}") from exc
