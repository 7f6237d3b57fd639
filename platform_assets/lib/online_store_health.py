"""Is the online store there, whole and filled? The probes the feature stage, the watch sensor and the scoring
service share.

Nothing fails by itself when the online store is lost. Feast's registry still says every view was materialized
up to the newest day, so the next incremental run loads nothing and reports success; a reader that opens the
path gets a fresh, empty SQLite database and answers None for every feature. A file overwritten or cut short
fails every read ("file is not a database", "database disk image is malformed") and nothing rebuilds it. So the
store is probed, never assumed, at three depths:

- `sqlite_problem(path, project)`: the file exists, has an SQLite header, is not shorter than its header says,
  opens, and some table of the project holds a row: a few small reads, cheap enough for a sensor tick and for
  every `/readyz`;
- `integrity_problem(path)`: `PRAGMA quick_check`, one pass over the file: before a materialization trusts it;
- `entity_counts(store, views)`: entity keys per view (SQLite: a count per table; Redis: a SCAN of the project's
  keys), which the feature stage compares with the offline source.

A corrupt file is moved aside (`move_aside`), never deleted: it is the evidence of what happened, and the
rollback journal next to it must not be replayed into the rebuilt file.
"""

from __future__ import annotations

import itertools
import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MISSING = "missing"
CORRUPT = "corrupt"
EMPTY = "empty"
INCOMPLETE = "incomplete"
UNREACHABLE = "unreachable"

SQLITE_MAGIC = b"SQLite format 3\x00"
# Files SQLite keeps beside a database: a journal of the corrupt file must never be applied to the rebuilt one.
SIDECARS = ("-journal", "-wal", "-shm")


@dataclass(frozen=True)
class Problem:
    status: str  # MISSING, CORRUPT, EMPTY, INCOMPLETE, UNREACHABLE
    reason: str

    def __str__(self) -> str:
        return f"{self.status}: {self.reason}"


def is_sqlite(online_config: Any) -> bool:
    """Feast's SQLite store or one of ours derived from it (a config object or the rendered yaml mapping)."""
    kind = online_config.get("type", "") if isinstance(online_config, dict) else getattr(online_config, "type", "")
    return kind == "sqlite" or str(kind).endswith("SqliteOnlineStore")


def is_redis(online_config: Any) -> bool:
    kind = online_config.get("type", "") if isinstance(online_config, dict) else getattr(online_config, "type", "")
    return kind == "redis" or str(kind).endswith("RedisOnlineStore")


def file_problem(path: str | Path) -> Problem | None:
    """What is wrong with the file itself, from its first 100 bytes and its size (no SQLite connection)."""
    path = Path(path)
    if not path.exists():
        return Problem(MISSING, f"{path} does not exist")
    if not path.is_file():
        return Problem(CORRUPT, f"{path} is not a regular file")
    size = path.stat().st_size
    if size == 0:
        return Problem(EMPTY, f"{path} is empty (0 bytes)")
    with open(path, "rb") as handle:
        header = handle.read(100)
    if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
        return Problem(CORRUPT, f"{path} is not an SQLite database (no SQLite header)")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65_536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    # The page count in the header is only valid when its "version-valid-for" equals the change counter.
    if pages and header[24:28] == header[92:96] and size < pages * page_size:
        return Problem(CORRUPT, f"{path} is truncated: {size:,} bytes, its header says {pages * page_size:,}")
    return None


def _read_only(path: Path) -> sqlite3.Connection:
    # mode=ro: a probe must never create the file or change it.
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


def sqlite_problem(path: str | Path, project: str) -> Problem | None:
    """The cheap probe: `file_problem`, then the schema opens and some table of `project` holds a row."""
    path = Path(path)
    problem = file_problem(path)
    if problem is not None:
        return problem
    try:
        con = _read_only(path)
        try:
            tables = [t for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                      if t.startswith(f"{project}_")]
            filled = any(con.execute(f'SELECT 1 FROM "{t.replace(chr(34), chr(34) * 2)}" LIMIT 1').fetchone()
                         for t in tables)
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        return Problem(CORRUPT, f"{path}: {exc}")
    if not filled:
        return Problem(EMPTY, f"{path} holds no feature rows of project {project}")
    return None


def integrity_problem(path: str | Path) -> Problem | None:
    """`PRAGMA quick_check` (a full read of the file; not the slower index cross-check of integrity_check)."""
    path = Path(path)
    try:
        con = _read_only(path)
        try:
            rows = con.execute("PRAGMA quick_check").fetchall()
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        return Problem(CORRUPT, f"{path}: {exc}")
    if rows != [("ok",)]:
        return Problem(CORRUPT, f"{path}: quick_check: " + "; ".join(str(r[0]) for r in rows[:5]))
    return None


def move_aside(path: str | Path, now: datetime | None = None) -> Path:
    """Rename `path` (and its journal) to `<name>.corrupt-<UTC time>`; returns the new path of the file."""
    path = Path(path)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    path.rename(target)
    for suffix in SIDECARS:
        sidecar = path.with_name(path.name + suffix)
        if sidecar.exists():
            sidecar.rename(target.with_name(target.name + suffix))
    return target


def sqlite_table_name(online_store, config, view) -> str:
    """The table of `view`: our wide store names its own, Feast's stock store uses `compute_table_id`."""
    named = getattr(online_store, "table_name", None)
    if named is not None:
        return named(config, view)
    from feast.infra.online_stores.helpers import compute_table_id

    return compute_table_id(config.project, view, config.registry.enable_online_feature_view_versioning)


def entity_counts(store, views) -> dict[str, int]:
    """Entity keys the online store of `store` (a Feast FeatureStore) holds per view in `views`.

    SQLite: `count(DISTINCT entity_key)` of each view's table (0 when the table or the file is missing). Redis:
    one SCAN over the project's keys per entity-key set, counting the hashes that carry the view's timestamp
    field (the same walk Feast's `delete_table` does): O(keys), run once per materialization, not per read."""
    from feast.infra.online_stores.helpers import get_online_store_from_config

    config = store.config
    online = get_online_store_from_config(config.online_store)
    if is_sqlite(config.online_store):
        return _sqlite_counts(Path(config.online_store.path), online, config, views)
    if is_redis(config.online_store):
        return _redis_counts(online, config, views)
    raise NotImplementedError(f"no entity count for online store {config.online_store.type}")


def _sqlite_counts(path: Path, online, config, views) -> dict[str, int]:
    counts = {v.name: 0 for v in views}
    if not path.exists():
        return counts
    con = _read_only(path)
    try:
        tables = {t for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for view in views:
            table = sqlite_table_name(online, config, view)
            if table in tables:
                quoted = '"' + table.replace('"', '""') + '"'
                counts[view.name] = con.execute(f"SELECT count(DISTINCT entity_key) FROM {quoted}").fetchone()[0]
    finally:
        con.close()
    return counts


def _glob_escape(raw: bytes) -> bytes:
    """Redis MATCH patterns treat * ? [ ] \\ specially; serialized entity-key prefixes are binary and may hold them."""
    return re.sub(rb"([*?\[\]\\])", rb"\\\1", raw)


def _redis_counts(online, config, views) -> dict[str, int]:
    from feast.infra.key_encoding_utils import serialize_entity_key_prefix
    from feast.infra.online_stores.helpers import compute_versioned_name

    client = online._get_client(config.online_store)  # Feast's own client construction (connection string)
    project = config.project.encode("utf8")
    counts: dict[str, int] = {}
    by_keys: dict[tuple[str, ...], list] = {}
    for view in views:
        by_keys.setdefault(tuple(sorted(view.join_keys)), []).append(view)
    for join_keys, group in by_keys.items():
        prefix = serialize_entity_key_prefix(list(join_keys), config.entity_key_serialization_version)
        fields = [f"_ts:{compute_versioned_name(v, config.registry.enable_online_feature_view_versioning)}".encode()
                  for v in group]
        found = [0] * len(group)
        batch: list[bytes] = []
        scan = client.scan_iter(match=_glob_escape(prefix) + b"*" + _glob_escape(project), count=10_000)
        for key in itertools.chain(scan, [None]):  # None: the end, flush what is left
            if key is not None:
                if _project_of(key, len(prefix), len(join_keys)) != project:
                    continue  # another project whose name ends in ours
                batch.append(key)
                if len(batch) < 10_000:
                    continue
            _count_fields(client, batch, fields, found)
            batch = []
        counts.update({v.name: n for v, n in zip(group, found, strict=True)})
    return counts


def _count_fields(client, keys: list[bytes], fields: list[bytes], found: list[int]) -> None:
    """Add to found[i] how many of `keys` hold fields[i] (one pipelined round trip)."""
    if not keys:
        return
    with client.pipeline(transaction=False) as pipe:
        for key in keys:
            for field_name in fields:
                pipe.hexists(key, field_name)
        answers = pipe.execute()
    for i, answer in enumerate(answers):
        found[i % len(fields)] += bool(answer)


def _project_of(key: bytes, start: int, n_values: int) -> bytes:
    """What follows the entity values of a Redis key (serialize_entity_key v3: type, length, bytes per value)."""
    for _ in range(n_values):
        start += 8 + int.from_bytes(key[start + 4:start + 8], "little")
    return key[start:]


def redis_problem(online, config) -> Problem | None:
    """The cheap probe for Redis: reachable, and holding at least one key of the project."""
    try:
        client = online._get_client(config.online_store)
        client.ping()
        pattern = b"*" + _glob_escape(config.project.encode("utf8"))
        if next(iter(client.scan_iter(match=pattern, count=10_000)), None) is None:
            return Problem(EMPTY, f"Redis holds no key of project {config.project}")
    except Exception as exc:  # noqa: BLE001 (redis-py raises many kinds: all mean the store cannot be read)
        return Problem(UNREACHABLE, f"Redis: {exc}")
    return None
