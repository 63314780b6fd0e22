"""oci-archive: an OCI image layout packed into one uncompressed, deterministic tar.

This is what `skopeo copy oci-archive:FILE ...` and `podman load` read.
https://github.com/containers/image/blob/main/docs/containers-transports.5.md#oci-archivepathreference
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

from mlbuild.oci.determinism import DIR_MODE, FILE_MODE, TAR_ENCODING, TAR_FORMAT, tar_info
from mlbuild.oci.blob_store import INDEX_DIR


def write_oci_archive(layout_dir: Path, archive_path: Path) -> None:
    """Tar `layout_dir` (sorted, normalised; never holding a blob in memory) into `archive_path`."""
    layout_dir = Path(layout_dir)
    paths = sorted(
        p
        for p in layout_dir.rglob("*")
        if INDEX_DIR not in p.relative_to(layout_dir).parts and not p.name.startswith(".")
    )
    temp = Path(archive_path).with_name(f".{Path(archive_path).name}.tmp")
    with open(temp, "wb") as f, tarfile.open(fileobj=f, mode="w|", format=TAR_FORMAT, encoding=TAR_ENCODING) as tar:
        for path in paths:
            name = path.relative_to(layout_dir).as_posix()
            if path.is_dir():
                tar.addfile(tar_info(name, tarfile.DIRTYPE, mode=DIR_MODE))
            else:
                with open(path, "rb") as blob:
                    size = os.fstat(blob.fileno()).st_size
                    tar.addfile(tar_info(name, tarfile.REGTYPE, mode=FILE_MODE, size=size), blob)
    os.replace(temp, archive_path)
