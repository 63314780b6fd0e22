"""A model folder, or a model.tar.gz unpacked as SageMaker unpacks it, and hostile archives refused."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from mlbuild.serving.model_source import ModelSourceError, model_folder, unpack_model_archive


def archive(path: Path, members: list) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def file_member(name: str, data: bytes, mode: int = 0o644) -> tuple:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    return info, data


def _member(name: str, **attrs: object) -> tarfile.TarInfo:
    """A header-only member (a link, a fifo) with `attrs` set on its TarInfo."""
    info = tarfile.TarInfo(name)
    for key, value in attrs.items():
        setattr(info, key, value)
    return info


def test_a_folder_is_served_as_it_is(tmp_path: Path) -> None:
    with model_folder(tmp_path) as folder:
        assert folder == tmp_path


def test_an_archive_is_unpacked_into_a_temporary_folder_removed_after(tmp_path: Path) -> None:
    path = archive(
        tmp_path / "model.tar.gz",
        [
            file_member("model.pkl", b"pickle"),
            file_member("sub/features.json", b"[]"),
            file_member("./run.sh", b"x", 0o755),
        ],
    )
    with model_folder(path) as folder:
        assert (folder / "model.pkl").read_bytes() == b"pickle"
        assert (folder / "sub" / "features.json").read_bytes() == b"[]"
        assert (folder / "run.sh").stat().st_mode & 0o777 == 0o755
    assert not folder.exists()


@pytest.mark.parametrize(
    "member, message",
    [
        (file_member("../evil", b"x"), "outside the model folder"),
        (file_member("/etc/evil", b"x"), "outside the model folder"),
        (_member("link", type=tarfile.SYMTYPE, linkname="/etc/passwd"), "is a link"),
        (_member("fifo", type=tarfile.FIFOTYPE), "special file"),
    ],
)
def test_hostile_members_are_refused(tmp_path: Path, member: object, message: str) -> None:
    entry = member if isinstance(member, tuple) else (member, None)
    path = archive(tmp_path / "model.tar.gz", [entry])
    with pytest.raises(ModelSourceError, match=message):
        unpack_model_archive(path, tmp_path / "out")
    assert not (tmp_path / "evil").exists()


def test_not_an_archive_and_a_missing_path_say_what_to_point_at(tmp_path: Path) -> None:
    (tmp_path / "model.tar.gz").write_bytes(b"not a tar")
    with pytest.raises(ModelSourceError, match="not a readable model.tar.gz.*Fix"):
        with model_folder(tmp_path / "model.tar.gz"):
            pass
    with pytest.raises(ModelSourceError, match="no such model folder or model.tar.gz"):
        with model_folder(tmp_path / "nope"):
            pass
