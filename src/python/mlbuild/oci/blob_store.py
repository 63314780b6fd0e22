"""A content-addressed blob directory plus the layer cache (DiffID + compressor -> digest).

Blobs live at `<root>/sha256/<hex>`, exactly like an OCI layout's `blobs/` directory, so
layouts can hard-link from it. The cache index is one small file per key, at
`<root>/mlbuild-layer-index/<compressor id>/<diffid hex>`, holding the compressed digest.
NB: one file per key (not one JSON map) so concurrent builds never lose each other's
updates; every write is a rename, so readers never see half a file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from mlbuild.oci import digest as digests

INDEX_DIR = "mlbuild-layer-index"


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        (self.root / digests.ALGORITHM).mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        return self.root / digests.ALGORITHM / digests.hex_of(digest)

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def temp_file(self) -> Path:
        """A fresh file on the store's filesystem, so `put` is an atomic rename."""
        fd, name = tempfile.mkstemp(prefix=".tmp-", dir=self.root)
        os.close(fd)
        return Path(name)

    def put(self, temp_path: Path, digest: str) -> Path:
        final = self.path(digest)
        os.chmod(temp_path, 0o644)
        os.replace(temp_path, final)
        return final

    def put_bytes(self, data: bytes) -> str:
        digest = digests.digest_of(data)
        if not self.has(digest):
            temp = self.temp_file()
            temp.write_bytes(data)
            self.put(temp, digest)
        return digest

    def link_into(self, digest: str, source: Path) -> None:
        """Place an existing blob file into this store: hard link if possible, else copy."""
        if self.has(digest):
            return
        temp = self.temp_file()
        temp.unlink()
        try:
            os.link(source, temp)
        except OSError:
            shutil.copyfile(source, temp)
        self.put(temp, digest)

    def _index_path(self, diff_id: str, compressor_id: str) -> Path:
        safe = compressor_id.replace("/", "_")
        return self.root / INDEX_DIR / safe / digests.hex_of(diff_id)

    def cached_layer_digest(self, diff_id: str, compressor_id: str) -> str | None:
        try:
            digest = self._index_path(diff_id, compressor_id).read_text().strip()
        except FileNotFoundError:
            return None
        return digest if self.has(digest) else None

    def remember_layer(self, diff_id: str, compressor_id: str, digest: str) -> None:
        index = self._index_path(diff_id, compressor_id)
        index.parent.mkdir(parents=True, exist_ok=True)
        temp = self.temp_file()
        temp.write_text(digest + "\n")
        os.replace(temp, index)
