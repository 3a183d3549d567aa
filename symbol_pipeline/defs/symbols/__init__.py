"""The symbol layer: prices, factor returns, betas and daily metrics per trading date × symbol."""
