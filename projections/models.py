"""Projection (read-model) tables. They share the write side's metadata: one Alembic history."""

from shared.db import Base

__all__ = ["Base"]
