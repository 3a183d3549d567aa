"""The frame a price source returns, as a typed, constraint-checked dagster-pandas type.

`PriceFrame` declares the columns of `sources.base.PRICE_COLUMNS` with their dtypes and nulls,
and three data rules: dates unique per symbol, dates sorted per symbol, closes positive and
finite. The rules are our own `DataFrameConstraint`s computed over whole columns: dagster-pandas'
row-wise constraints call `.apply` per row, minutes at the millions of rows of a backfill.

`price_frame_check_result` reports every rule at once as an asset check that warns and never
blocks: a bad row is already dropped or flagged downstream, the check says how many there were.
"""

from __future__ import annotations

import warnings

import dagster as dg
import numpy as np
import pandas as pd
from dagster_pandas import PandasColumn, create_dagster_pandas_dataframe_type
from dagster_pandas.constraints import (
    ConstraintViolationException,
    DataFrameConstraint,
    DataFrameConstraintViolationException,
)

from symbol_pipeline.sources.base import PRICE_COLUMNS

PRICE_FRAME_CHECK_NAME = "price_frame_valid"
EXAMPLE_SYMBOLS = 5  # symbols named per violated rule in the check's metadata


def _example_symbols(frame: pd.DataFrame, rows: np.ndarray) -> list[str]:
    return sorted(map(str, pd.unique(frame["symbol"].to_numpy()[rows])))[:EXAMPLE_SYMBOLS]


class VectorisedRowConstraint(DataFrameConstraint):
    """A rule over whole columns: `offending` marks the rows that break it, in one pass.

    key: the rule's name in check metadata; columns: what it reads (skipped when one is absent,
    which the column schema reports).
    """

    key = "rows"
    columns: tuple[str, ...] = ()

    def __init__(self, description: str) -> None:
        super().__init__(error_description=description, markdown_description=description)

    def offending(self, frame: pd.DataFrame) -> np.ndarray:
        """Boolean mask, shape (len(frame),): True where the row breaks the rule."""
        raise NotImplementedError

    def validate(self, dataframe: pd.DataFrame) -> None:
        bad = self.offending(dataframe)
        if bad.any():
            raise DataFrameConstraintViolationException(
                constraint_name=self.name,
                constraint_description=(
                    f"{self.error_description} {int(bad.sum())} rows break it, "
                    f"symbols {', '.join(_example_symbols(dataframe, bad))}"
                ),
            )


def _symbol_date_codes(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, int]:
    """Integer codes of each row's symbol and date (dates coded in date order), and the number of
    distinct dates; -1 for a missing value. Factorising codes a few hundred distinct dates once
    instead of comparing millions of date objects."""
    symbols, _ = pd.factorize(frame["symbol"])
    dates, uniques = pd.factorize(frame["date"], sort=True)
    return np.asarray(symbols, dtype=np.int64), np.asarray(dates, dtype=np.int64), len(uniques)


class UniqueDatesPerSymbol(VectorisedRowConstraint):
    key = "duplicate_dates"
    columns = ("symbol", "date")

    def offending(self, frame: pd.DataFrame) -> np.ndarray:
        """Rows repeating the (symbol, date) of an earlier row."""
        symbols, dates, n_dates = _symbol_date_codes(frame)
        known = (symbols >= 0) & (dates >= 0)
        pair = pd.Series(np.where(known, symbols * (n_dates + 1) + dates, -1 - np.arange(len(frame))))
        return pair.duplicated(keep="first").to_numpy() & known


class SortedDatesPerSymbol(VectorisedRowConstraint):
    key = "unsorted_dates"
    columns = ("symbol", "date")

    def offending(self, frame: pd.DataFrame) -> np.ndarray:
        """Rows dated before the previous row of the same symbol (the symbol's rows need not be adjacent)."""
        symbols, dates, _ = _symbol_date_codes(frame)
        known = np.flatnonzero((symbols >= 0) & (dates >= 0))
        order = known[np.argsort(symbols[known], kind="stable")]  # by symbol, frame order within one
        earlier = (symbols[order[1:]] == symbols[order[:-1]]) & (dates[order[1:]] < dates[order[:-1]])
        bad = np.zeros(len(frame), dtype=bool)
        bad[order[1:][earlier]] = True
        return bad


class PositiveFiniteCloses(VectorisedRowConstraint):
    key = "bad_closes"
    columns = ("symbol", "close")

    def offending(self, frame: pd.DataFrame) -> np.ndarray:
        """Rows whose close is missing, infinite, zero or negative."""
        close = pd.to_numeric(frame["close"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        return ~(np.isfinite(close) & (close > 0))


PRICE_FRAME_CONSTRAINTS: list[VectorisedRowConstraint] = [
    UniqueDatesPerSymbol("At most one row per (symbol, date)."),
    SortedDatesPerSymbol("Each symbol's rows in increasing date order."),
    PositiveFiniteCloses("Every close positive and finite."),
]

with warnings.catch_warnings():
    # dagster-pandas marks its whole API beta; built once, here, the type need not say so per column.
    warnings.simplefilter("ignore", dg.BetaWarning)
    PRICE_FRAME_COLUMNS = [
        PandasColumn.string_column("symbol", non_nullable=True),
        PandasColumn.exists("date", non_nullable=True),
        # NaN is allowed in the other floats (adj_close of a raw-close source, a missing open).
        *[PandasColumn.float_column(name, ignore_missing_vals=True) for name in PRICE_COLUMNS[2:]],
    ]
    PriceFrame = create_dagster_pandas_dataframe_type(
        name="PriceFrame",
        description="Daily prices as a price source returns them, one row per (symbol, date).",
        columns=PRICE_FRAME_COLUMNS,
        dataframe_constraints=PRICE_FRAME_CONSTRAINTS,
    )


def price_frame_check_spec(asset_key: dg.CoercibleToAssetKey) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        PRICE_FRAME_CHECK_NAME,
        asset=asset_key,
        description="The fetched prices are a PriceFrame: columns and dtypes as sources return them, "
        "dates unique and sorted per symbol, closes positive and finite.",
    )


def price_frame_check_result(frames: pd.DataFrame, asset_key: dg.CoercibleToAssetKey) -> dg.AssetCheckResult:
    """The PriceFrame rules over `frames` (what the sources returned), all evaluated, as a warning.

    Metadata: the row count, schema problems (missing columns, dtypes, nulls), and per rule the
    number of offending rows and a few of their symbols.
    """
    schema_errors = []
    for column in PRICE_FRAME_COLUMNS:
        try:
            column.validate(frames)
        except ConstraintViolationException as exc:
            schema_errors.append(str(exc)[:300])
    metadata: dict[str, object] = {"rows": len(frames), "schema_errors": len(schema_errors)}
    if schema_errors:
        metadata["schema"] = "\n".join(schema_errors)
    violated = bool(schema_errors)
    for constraint in PRICE_FRAME_CONSTRAINTS:
        if not set(constraint.columns) <= set(frames.columns):
            continue
        bad = constraint.offending(frames)
        count = int(bad.sum())
        metadata[constraint.key] = count
        if count:
            metadata[f"{constraint.key}_symbols"] = ", ".join(_example_symbols(frames, bad))
            violated = True
    return dg.AssetCheckResult(
        check_name=PRICE_FRAME_CHECK_NAME,
        asset_key=asset_key,
        passed=not violated,
        severity=dg.AssetCheckSeverity.WARN,
        metadata=metadata,
    )
