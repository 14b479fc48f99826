"""`BlobStore`: slugs and other large files, kept by key in a local directory."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


class BlobStore:
    """A directory of immutable files. (An S3-compatible store can take its place later.)

    Example::

        blobs = BlobStore(data_dir / "blobs")
        blobs.put("slugs/123.tgz", built_path)
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"blob key {key!r} leaves the store")
        return path

    def put(self, key: str, source: Path) -> Path:
        """Move `source` in under `key`; readers never see a half-written blob."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        shutil.move(source, partial)
        os.replace(partial, target)
        return target

    def exists(self, key: str) -> bool:
        return self.path(key).exists()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)
