"""Removing what a production-profile test made on the shared servers: its Redis keys and its databases."""

from __future__ import annotations

from collections.abc import Callable, Iterable


def delete_keys(client, patterns: Iterable[str]) -> None:
    """Every Redis key matching one of `patterns` (SCAN, never KEYS: the server is shared)."""
    for pattern in patterns:
        keys = list(client.scan_iter(match=pattern.encode(), count=1000))
        if keys:
            client.delete(*keys)


def drop_databases(connect: Callable, names: Iterable[str]) -> None:
    """DROP DATABASE ... WITH (FORCE) of each name, on an autocommit connection from `connect(autocommit=True)`."""
    with connect(autocommit=True) as con:
        for name in names:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
