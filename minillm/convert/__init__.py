"""Explicit weight-name and config maps between our families and transformers' (unknown keys raise)."""
