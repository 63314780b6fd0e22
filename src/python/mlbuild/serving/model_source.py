"""A model to serve: a folder (a run's `model/`), or a job's `model.tar.gz` unpacked as SageMaker does.

SageMaker hosting and batch transform unpack the model's `model.tar.gz` into /opt/ml/model
before `serve` starts; `model_folder` does the same into a temporary folder for the local
transform and the sandbox. Only regular files and folders are unpacked, under the folder: an
absolute path, a `..`, a link or a device in the archive is refused (and Python 3.11.2,
Debian 12's, has no tarfile extraction filter to lean on).
https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-inference-code.html
"""

from __future__ import annotations

import posixpath
import shutil
import tarfile
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from mlbuild.runtime.errors import UserError


class ModelSourceError(UserError):
    """The model path is neither a folder nor a usable model.tar.gz."""


def unpack_model_archive(archive: Path, dest: Path) -> Path:
    """Unpack `archive` (gzip'd tar) into `dest`, refusing anything that is not a plain file or folder."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                name = posixpath.normpath(member.name)
                if name in (".", ""):
                    continue
                if name.startswith(("/", "../")) or name == ".." or not (member.isfile() or member.isdir()):
                    kind = (
                        "link"
                        if member.issym() or member.islnk()
                        else "path outside the model folder" if member.isfile() or member.isdir() else "special file"
                    )
                    raise ModelSourceError(
                        f"{archive}: {member.name!r} is a {kind}; a model archive holds only files and folders. Fix: archive the model folder again."
                    )
                target = dest / name
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None
                with source, open(target, "wb") as out:
                    shutil.copyfileobj(source, out)
                target.chmod(0o755 if member.mode & 0o111 else 0o644)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise ModelSourceError(
            f"{archive}: not a readable model.tar.gz ({e}). Fix: point at a training job's output/model.tar.gz."
        ) from None
    return dest


@contextmanager
def model_folder(path: Path) -> Iterator[Path]:
    """`path` itself when it is a folder; an archive unpacked into a temporary folder (removed after)."""
    path = Path(path)
    if path.is_dir():
        yield path
        return
    if not path.is_file():
        raise ModelSourceError(
            f"{path}: no such model folder or model.tar.gz. Fix: name a run's model/ folder or a job's output/model.tar.gz."
        )
    with tempfile.TemporaryDirectory(prefix="mlbuild-model-") as work:
        yield unpack_model_archive(path, Path(work) / "model")
