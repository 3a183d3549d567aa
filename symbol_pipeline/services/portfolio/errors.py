"""The errors the portfolio service raises on purpose; their messages are meant for the user."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of the errors the service raises on purpose; the message is meant for the user."""


class NotFoundError(ServiceError, LookupError):
    """No such portfolio, position or user (or it belongs to someone else)."""


class KeyRevokedError(ServiceError):
    """The request's API key was revoked (or never existed) when its read ran: answered like a missing key."""


class ValidationError(ServiceError, ValueError):
    """Bad input; nothing was written."""


class TooManyRowsError(ValidationError):
    """An import holds more rows than its limit; it was not read further and nothing was written."""

    def __init__(self, limit: int):
        self.limit = limit
        super().__init__(f"the import holds more than {limit} rows")

    def __reduce__(self):  # rebuilt from the limit, not the message (it crosses process boundaries)
        return type(self), (self.limit,)


class ConflictError(ServiceError):
    """The change does not apply to the current state (a position closed meanwhile); nothing was written."""


class NonPositiveEquityError(ValidationError):
    """Weights are market value / equity: undefined when equity is zero or negative."""


class DateOutOfRangeError(ValidationError):
    """A date in the future, or before a portfolio's first date: no holdings exist for it."""


class StressDataError(ServiceError, ValueError):
    """Not enough ETF history for the covariance."""
