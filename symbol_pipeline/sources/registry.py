"""Pick a price source from a spec string such as `synthetic`, `synthetic:42`, `csv:DIR`, `yfinance`."""

from __future__ import annotations

from pathlib import Path

from symbol_pipeline.sources.base import PriceSource

VALID_SPECS = ("synthetic", "synthetic:SEED", "csv:DIR", "yfinance")


def get_price_source(spec: str | None = None, **kw) -> PriceSource:
    """The source named by `spec`, or by SYMBOL_PIPELINE_PRICE_SOURCE when spec is None.

    Extra keyword arguments go to the source's constructor (e.g. n_symbols=, download=).
    """
    from symbol_pipeline.config import get_settings

    settings = get_settings()
    text = (settings.price_source if spec is None else spec).strip()
    kind, _, arg = text.partition(":")
    kind = kind.strip().lower()
    if kind == "synthetic":
        from symbol_pipeline.sources.synthetic import SyntheticMarket

        seed = settings.synthetic_seed
        if arg.strip():
            try:
                seed = int(arg)
            except ValueError:
                raise ValueError(f"price source {text!r}: SEED must be an integer") from None
        kw.setdefault("seed", seed)
        kw.setdefault("n_symbols", settings.synthetic_universe_size)
        return SyntheticMarket(**kw)
    if kind == "csv" and arg.strip():
        from symbol_pipeline.sources.csv_dir import CsvDirectorySource

        return CsvDirectorySource(Path(arg.strip()).expanduser(), **kw)
    if kind == "yfinance" and not arg:
        from symbol_pipeline.sources.yfinance_source import YFinanceSource

        return YFinanceSource(**kw)
    raise ValueError(f"unknown price source {text!r}; valid forms: {', '.join(VALID_SPECS)}")
