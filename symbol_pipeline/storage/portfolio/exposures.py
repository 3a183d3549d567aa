"""The stored snapshot of computed portfolio exposures: one wide row per portfolio, and a summary row."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from sqlalchemy.engine import Connection

from symbol_pipeline.storage.dialect import bulk_insert, chunks
from symbol_pipeline.storage.portfolio_schema import portfolio_exposure_summary, portfolio_factor_exposures


def write_exposures(conn: Connection, portfolio_ids: Sequence[str] | None, factor_rows: pd.DataFrame,
                    summary_rows: pd.DataFrame) -> None:
    """Replace the stored snapshot of these portfolios (all when portfolio_ids is None)."""
    for table in (portfolio_factor_exposures, portfolio_exposure_summary):
        if portfolio_ids is None:
            conn.execute(table.delete())
        else:
            for chunk in chunks(list(portfolio_ids)):
                conn.execute(table.delete().where(table.c.portfolio_id.in_(chunk)))
    bulk_insert(conn, portfolio_factor_exposures, factor_rows)
    bulk_insert(conn, portfolio_exposure_summary, summary_rows)
