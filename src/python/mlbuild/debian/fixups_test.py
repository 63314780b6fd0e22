from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from mlbuild.debian.errors import RootfsError
from mlbuild.debian.fixups import apply_fixups, check_no_opt_ml, write_ca_bundle, write_dpkg_status


def _cert(name: str) -> str:
    return f"-----BEGIN CERTIFICATE-----\n{name}\n-----END CERTIFICATE-----"


def test_ca_bundle_concatenates_sorted_with_newlines(tmp_path: Path) -> None:
    mozilla = tmp_path / "usr/share/ca-certificates/mozilla"
    mozilla.mkdir(parents=True)
    (mozilla / "b_Root.crt").write_text(_cert("B"))  # no trailing newline
    (mozilla / "A_Root.crt").write_text(_cert("A") + "\n")
    (mozilla / "README").write_text("not a cert")
    bundle = write_ca_bundle(tmp_path)
    assert bundle == tmp_path / "etc/ssl/certs/ca-certificates.crt"
    assert bundle.read_text() == _cert("A") + "\n" + _cert("B") + "\n"
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o644


def test_ca_bundle_skipped_without_ca_certificates(tmp_path: Path) -> None:
    assert write_ca_bundle(tmp_path) is None
    assert not (tmp_path / "etc").exists()


def test_apply_fixups(tmp_path: Path) -> None:
    (tmp_path / "usr/bin").mkdir(parents=True)
    (tmp_path / "usr/bin/python3.11").write_text("elf")
    (tmp_path / "usr/share/zoneinfo/Etc").mkdir(parents=True)
    (tmp_path / "usr/share/zoneinfo/Etc/UTC").write_text("TZif")
    controls = ["Package: zz\nVersion: 1\n", "Package: aa\nVersion: 2\nDescription: x\n more\n"]
    apply_fixups(tmp_path, controls)
    assert os.readlink(tmp_path / "usr/bin/python3") == "python3.11"
    assert stat.S_IMODE((tmp_path / "tmp").stat().st_mode) == 0o1777
    assert (tmp_path / "etc/passwd").read_text().startswith("root:x:0:0:")
    assert "nogroup:x:65534:" in (tmp_path / "etc/group").read_text()
    assert os.readlink(tmp_path / "etc/localtime") == "/usr/share/zoneinfo/Etc/UTC"
    assert (tmp_path / "var/lib/dpkg/status").read_text() == (
        "Package: aa\nStatus: install ok installed\nVersion: 2\nDescription: x\n more\n\n"
        "Package: zz\nStatus: install ok installed\nVersion: 1\n"
    )
    assert not (tmp_path / "opt").exists()


def test_existing_python3_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "usr/bin").mkdir(parents=True)
    (tmp_path / "usr/bin/python3.11").write_text("elf")
    os.symlink("python3.11-custom", tmp_path / "usr/bin/python3")
    apply_fixups(tmp_path, [])
    assert os.readlink(tmp_path / "usr/bin/python3") == "python3.11-custom"


def test_opt_ml_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "opt/ml").mkdir(parents=True)
    with pytest.raises(RootfsError, match="SageMaker mounts /opt/ml"):
        check_no_opt_ml(tmp_path)


def test_dpkg_status_replaces_existing_status_field(tmp_path: Path) -> None:
    write_dpkg_status(tmp_path, ["Package: a\nStatus: deinstall ok config-files\nVersion: 1\n"])
    assert (tmp_path / "var/lib/dpkg/status").read_text() == "Package: a\nStatus: install ok installed\nVersion: 1\n"
