"""Files replaced whole: a reader (Dagit, the scoring service, the Evidently UI, the next run) sees the old file or
the new one, never half of one, and a process killed while writing leaves only a temporary file that no reader
looks for and the next write replaces.

On the shared store (an s3:// path, lib/object_store.py) there is no rename: the content is written to a local
temporary file and uploaded as one object, which S3 makes visible whole, old or new."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing(path: Path, staging: Path | None = None) -> Iterator[Path]:
    """A fresh temporary path to write `path`'s new content to; moved over `path` when the block ends, removed if
    it raises. The name is unique to the call, so concurrent writers never share one. `staging` (same file system)
    keeps the temporary file out of a folder something else scans. A remote `path` gets a local temporary file,
    uploaded whole when the block ends (`staging` is then ignored)."""
    from platform_assets.lib import object_store

    if object_store.is_remote(path):
        fd, name = tempfile.mkstemp(prefix=".upload-", suffix=f"-{Path(str(path)).name}")
        os.close(fd)
        tmp = Path(name)
        try:
            yield tmp
            object_store.publish_file(tmp, str(path))
        finally:
            tmp.unlink(missing_ok=True)
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(staging) if staging is not None else path.parent
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the file from a reader running as another user
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: str | bytes, staging: Path | None = None) -> Path:
    with replacing(path, staging) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    return path
