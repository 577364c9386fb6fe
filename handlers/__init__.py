"""Thin Telegram adapters, one module per audience."""
