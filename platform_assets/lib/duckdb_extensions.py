"""DuckDB extensions from site-packages, never from the network.

`LOAD ducklake` looks for `<extension_directory>/v<version>/<platform>/<name>.duckdb_extension` and, when it is
missing, downloads it from extensions.duckdb.org: that fails on a machine without internet and is a supply-chain
step nobody pinned. The `duckdb-extension-<name>` packages (locked in uv.lock, the same version as duckdb) ship
the binaries; `load` links them into a private extension directory under the expected names (postgres is
`postgres_scanner` inside) and loads them with auto-install off, so a missing package is an error that names it.
"""

from __future__ import annotations

import importlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

PACKAGED = {"ducklake": "ducklake", "postgres": "postgres_scanner", "httpfs": "httpfs", "aws": "aws"}


def _platform(con: duckdb.DuckDBPyConnection) -> str:
    return con.execute("PRAGMA platform").fetchone()[0]


def extension_directory(con: duckdb.DuckDBPyConnection) -> Path:
    """A per-user folder holding links to the packaged binaries, under DuckDB's own layout."""
    import duckdb

    version = duckdb.__version__
    root = Path(os.environ.get("PLATFORM_DUCKDB_EXTENSION_DIR")
                or Path(tempfile.gettempdir()) / f"platform-duckdb-extensions-{os.getuid()}")
    folder = root / f"v{version}" / _platform(con)
    folder.mkdir(parents=True, exist_ok=True)
    for package, name in PACKAGED.items():
        link = folder / f"{name}.duckdb_extension"
        if link.exists():
            continue
        try:
            module = importlib.import_module(f"duckdb_extension_{package}")
        except ImportError:
            raise RuntimeError(f"the DuckDB extension package duckdb-extension-{package}=={version} is not "
                               "installed (make install)") from None
        binary = Path(module.__file__).parent / "extensions" / f"v{version}" / f"{package}.duckdb_extension"
        if not binary.is_file():
            raise RuntimeError(f"duckdb-extension-{package} holds no extension for DuckDB v{version} ({binary}): "
                               "its version must equal duckdb's")
        tmp = folder / f".{name}.{os.getpid()}.tmp"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(binary)
        tmp.replace(link)  # atomic: concurrent processes never see a half-made link
    return root


def load(con: duckdb.DuckDBPyConnection, *names: str) -> None:
    """LOAD the named packaged extensions (ducklake, postgres, httpfs) into `con`."""
    unknown = set(names) - set(PACKAGED)
    if unknown:
        raise ValueError(f"no packaged DuckDB extension {sorted(unknown)}; packaged: {sorted(PACKAGED)}")
    root = extension_directory(con)
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("SET extension_directory = ?", [str(root)])
    for name in names:
        con.execute(f"LOAD {PACKAGED[name]}")


__all__ = ["PACKAGED", "extension_directory", "load"]
