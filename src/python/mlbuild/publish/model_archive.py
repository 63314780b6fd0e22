"""A deterministic `model.tar.gz`, the way SageMaker archives `/opt/ml/model`."""

from __future__ import annotations

import gzip
import os
import tarfile
from pathlib import Path

from mlbuild.lineage.digests import file_sha256
from mlbuild.oci.determinism import EPOCH


def write_model_archive(model_dir: Path, archive: Path) -> str:
    """Archive every file under `model_dir` (sorted, fixed owners and times); return its sha256."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    tmp = archive.with_name(f".{archive.name}.{os.getpid()}")
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path in sorted(p for p in model_dir.rglob("*") if p.is_file() or p.is_symlink()):
                info = tar.gettarinfo(str(path), arcname=str(path.relative_to(model_dir)))
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mtime = EPOCH
                info.mode = 0o755 if info.mode & 0o111 else 0o644
                if info.isfile():
                    with open(path, "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
    os.replace(tmp, archive)
    return file_sha256(archive)
