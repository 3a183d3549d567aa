"""The portfolio tables' reads and writes. Every function takes a Connection and runs in its transaction.

accounts: users and API keys; book: portfolios and positions; changes: the change log the
position-change sensor reads; cache: the analytics cache; exposures: computed exposures.
"""

from __future__ import annotations

import datetime as dt


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
