"""The API's settings: what `create_app` is given, read from the environment in one way.

`api_settings()` is the only reader, and it reads through `config.get_settings()` like the other
entry points; nothing else in `api/` looks at the environment. Routes receive these settings typed
(`deps.Settings`), not by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from symbol_pipeline.config import (
    DEFAULT_AUTH_CACHE_SECONDS,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_IMPORT_MAX_BYTES,
    DEFAULT_IMPORT_MAX_ROWS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_ONBOARDING_DAILY_CAP,
    Settings,
    get_settings,
    normalise_database_url,
)
from symbol_pipeline.services.window import WindowRule


@dataclass(frozen=True)
class ApiSettings:
    """What the API process is given: its database, the Dagster data folder the admin endpoints
    launch runs in, how long an accepted key is remembered, an extra stress scenarios file, the
    largest request body accepted (413 beyond it, before anything is parsed), an import's largest
    body and most rows, how long a connection may take to send a request's headers, the new symbols
    one user may queue in 24 hours, and the date window's rule (the admin run's date check)."""

    database_url: str
    data_dir: Path
    auth_cache_seconds: float = DEFAULT_AUTH_CACHE_SECONDS
    scenarios_file: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_import_bytes: int = DEFAULT_IMPORT_MAX_BYTES
    max_import_rows: int = DEFAULT_IMPORT_MAX_ROWS
    header_timeout_seconds: float = DEFAULT_HEADER_TIMEOUT
    onboarding_daily_cap: int = DEFAULT_ONBOARDING_DAILY_CAP
    window_rule: WindowRule = field(default_factory=WindowRule)


def api_settings(database_url: str | None = None, settings: Settings | None = None) -> ApiSettings:
    """The API's settings from `settings` (default: the environment's, read here), `database_url`
    overriding the configured one."""
    settings = settings or get_settings()
    return ApiSettings(
        database_url=normalise_database_url(database_url or settings.database_url),
        data_dir=settings.data_dir,
        auth_cache_seconds=settings.auth_cache_seconds,
        scenarios_file=settings.scenarios_file,
        max_body_bytes=settings.api_max_body_bytes,
        max_import_bytes=settings.import_max_bytes,
        max_import_rows=settings.import_max_rows,
        header_timeout_seconds=settings.api_header_timeout_seconds,
        onboarding_daily_cap=settings.onboarding_daily_cap,
        window_rule=settings.window_rule,
    )
