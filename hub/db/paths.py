"""SQL over org paths (``d01.s03.c12.g045``)."""

from __future__ import annotations

from sqlalchemy import SQLColumnExpression, or_
from sqlalchemy.sql.elements import ColumnElement


def in_subtree(column: SQLColumnExpression[str], root: str) -> ColumnElement[bool]:
    """``column`` is ``root`` or lies below it (LIKE wildcards in ``root`` are literal)."""
    return or_(column == root, column.startswith(root + ".", autoescape=True))
