"""Provider adapters: one module per aggregator (wire models, pure mapping, thin client)."""
