"""The portfolio service: the one package the CLI, the HTTP API and the Dagster assets call.

errors: what the service raises on purpose; accounts: users, API keys and the memory of
accepted keys; book: portfolios and positions, changed with effective dates; holdings: the
holdings of a portfolio at a date (`holdings_as_of`) or at many dates (`read_book`); imports:
positions from CSV or JSON; history: exposures over a range of sessions; exposures: factor exposures, one portfolio
through the cache or all in a batch; cache: cache keys, lookup and invalidation; stress:
scenarios, the ETF covariance and stress tests; risk: the risk decomposition per factor model.
"""

from symbol_pipeline.services.portfolio.accounts import (
    DEFAULT_AUTH_CACHE_SECONDS,
    User,
    authenticate,
    clear_auth_cache,
    create_user,
    forget_key,
    get_user,
    issue_api_key,
    key_hash,
    remembered_user,
    revoke_api_key,
)
from symbol_pipeline.services.portfolio.book import (
    add_position,
    add_positions,
    changes_after,
    close_position,
    create_portfolio,
    delete_portfolio,
    get_portfolio,
    list_portfolios,
    list_positions,
    page_of_portfolios,
    portfolios_holding,
    quantity_history,
    set_equity,
    update_position,
)
from symbol_pipeline.services.portfolio.cache import (
    CACHE_EXPOSURES,
    CACHE_STRESS,
    DEFAULT_CACHE_TTL,
    invalidate_all_caches,
    invalidate_portfolio_cache,
)
from symbol_pipeline.services.portfolio.errors import (
    ConflictError,
    DateOutOfRangeError,
    KeyRevokedError,
    NonPositiveEquityError,
    NotFoundError,
    ServiceError,
    StressDataError,
    TooManyRowsError,
    ValidationError,
)
from symbol_pipeline.services.portfolio.exposures import (
    ExposureBatch,
    compute_portfolio_exposures,
    get_portfolio_factor_exposures,
    portfolio_factor_exposures_json,
)
from symbol_pipeline.services.portfolio.history import (
    CACHE_EXPOSURE_HISTORY,
    exposure_history,
    exposure_history_csv,
    exposure_history_json,
)
from symbol_pipeline.services.portfolio.holdings import Book, holdings_as_of, page_of_positions, read_book
from symbol_pipeline.services.portfolio.imports import import_positions_csv, import_positions_json, parse_rows
from symbol_pipeline.services.portfolio.risk import CACHE_RISK, RiskDataError, get_portfolio_risk, portfolio_risk_json
from symbol_pipeline.services.portfolio.stress import (
    FACTOR_LEGS,
    StressBatch,
    compute_portfolio_stress_tests,
    etf_covariance,
    load_scenarios,
    run_stress_test,
    stress_test_json,
)

__all__ = [
    "portfolios_holding", "Book", "CACHE_EXPOSURE_HISTORY", "DateOutOfRangeError", "delete_portfolio",
    "exposure_history", "exposure_history_csv", "exposure_history_json", "get_portfolio", "holdings_as_of",
    "import_positions_json", "page_of_portfolios", "page_of_positions", "quantity_history", "read_book",
    "CACHE_EXPOSURES", "CACHE_STRESS", "DEFAULT_AUTH_CACHE_SECONDS", "DEFAULT_CACHE_TTL", "FACTOR_LEGS",
    "ExposureBatch", "NonPositiveEquityError", "NotFoundError", "ServiceError", "StressBatch", "StressDataError",
    "User", "ValidationError", "add_position", "add_positions", "authenticate", "changes_after", "clear_auth_cache",
    "close_position", "compute_portfolio_exposures", "compute_portfolio_stress_tests", "create_portfolio",
    "create_user", "etf_covariance", "get_portfolio_factor_exposures", "get_user", "import_positions_csv",
    "invalidate_all_caches", "invalidate_portfolio_cache", "issue_api_key", "list_portfolios", "list_positions",
    "load_scenarios", "portfolio_factor_exposures_json", "remembered_user", "revoke_api_key", "run_stress_test",
    "set_equity", "stress_test_json", "update_position",
    "CACHE_RISK", "RiskDataError", "get_portfolio_risk", "portfolio_risk_json", "ConflictError",
    "TooManyRowsError", "parse_rows", "KeyRevokedError", "forget_key", "key_hash",
]
