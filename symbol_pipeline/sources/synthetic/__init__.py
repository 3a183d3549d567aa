"""A deterministic, offline synthetic market whose true factor betas are known.

Eight factor ETFs (SPY TLT VTV VUG MTUM QUAL IWM USMV) move with a fixed, realistic daily
covariance (`market`); every stock's daily total return is a fixed linear mix of those eight
returns plus independent idiosyncratic noise (`parameters`, drawn by the counter-based
`generator`), so its population betas follow from the covariance alone (`truth`). `source` serves
it as a `PriceSource` of raw closes, dividends and splits.
"""

from symbol_pipeline.sources.synthetic.market import CATALOGUE, ETF_DAILY_COVARIANCE, ETFS, UNIVERSE_PREFIX
from symbol_pipeline.sources.synthetic.source import SyntheticMarket
from symbol_pipeline.sources.synthetic.truth import ListingInfo, population_betas

__all__ = [
    "CATALOGUE",
    "ETFS",
    "ETF_DAILY_COVARIANCE",
    "UNIVERSE_PREFIX",
    "ListingInfo",
    "SyntheticMarket",
    "population_betas",
]
