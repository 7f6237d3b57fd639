"""Validation of the few things that must be spliced into SQL as text: identifiers and partition keys.

Values always travel as query parameters. Identifiers cannot, so they are checked against a strict pattern
(and, where the set is known, an allowlist) before they are formatted into a statement.
"""

from __future__ import annotations

import re
from datetime import date

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def sql_identifier(name: str, allowed: set[str] | frozenset[str] | None = None) -> str:
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"{name!r} is not a valid SQL identifier")
    if allowed is not None and name not in allowed:
        raise ValueError(f"{name!r} is not one of {sorted(allowed)}")
    return name


def partition_date(key: str) -> date:
    """A daily partition key (YYYY-MM-DD) as a date; anything else is refused."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", key):
        raise ValueError(f"partition key {key!r} is not a YYYY-MM-DD day")
    return date.fromisoformat(key)
