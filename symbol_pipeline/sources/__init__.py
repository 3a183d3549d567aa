"""Where prices come from: one interface (`PriceSource`), several implementations."""
