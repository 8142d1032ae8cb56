"""Integrations of ctxbudget with the tools people already run (optional extras)."""
