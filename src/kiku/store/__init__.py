"""The state store: SQLAlchemy models and the `Store` that owns the engine and migrations."""

from kiku.store.db import Store

__all__ = ["Store"]
