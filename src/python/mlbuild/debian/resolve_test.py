from __future__ import annotations

import pytest

from mlbuild.debian.apt import PlannedInstall, parse_control_paragraphs, parse_print_uris, parse_simulated_install
from mlbuild.debian.errors import ResolveError
from mlbuild.debian.lock import DEFAULT_MIRRORS, default_sources
from mlbuild.debian.resolve import build_lock

SIM = """\
NOTE: This is only a simulation!
Inst libc6 (2.36-9+deb12u14 Debian:12.15/oldstable [amd64]) []
Inst zlib1g (1:1.2.13.dfsg-1 Debian:12.15/oldstable [amd64])
Inst libkrb5-3 (1.20.1-2+deb12u5 Debian:12.15/oldstable, Debian-Security:12/oldstable-security [amd64])
Inst ca-certificates (20250419~deb12u2 Debian-Security:12/oldstable-security [all])
Conf libc6 (2.36-9+deb12u14 Debian:12.15/oldstable [amd64])
"""
C = "c" * 64
URIS = f"""\
'http://deb.debian.org/debian/pool/main/g/glibc/libc6_2.36-9%2bdeb12u14_amd64.deb' libc6_2.36-9+deb12u14_amd64.deb 2759320 SHA256:{"1" * 64}
'http://deb.debian.org/debian/pool/main/z/zlib/zlib1g_1.2.13.dfsg-1_amd64.deb' zlib1g_1%3a1.2.13.dfsg-1_amd64.deb 86684 SHA256:{"2" * 64}
'http://deb.debian.org/debian/pool/main/k/krb5/libkrb5-3_1.20.1-2%2bdeb12u5_amd64.deb' libkrb5-3_1.20.1-2+deb12u5_amd64.deb 332280 SHA256:{"3" * 64}
'http://deb.debian.org/debian-security/pool/updates/main/c/ca-certificates/ca-certificates_20250419%7edeb12u2_all.deb' ca-certificates_20250419~deb12u2_all.deb 160948 SHA256:{"4" * 64}
"""
SHOW = f"""\
Package: libc6
Version: 2.36-9+deb12u14
Architecture: amd64
Description: GNU C Library
 multi-line continuation
Filename: pool/main/g/glibc/libc6_2.36-9+deb12u14_amd64.deb
Size: 2759320
SHA256: {"1" * 64}

Package: zlib1g
Version: 1:1.2.13.dfsg-1
Architecture: amd64
Filename: pool/main/z/zlib/zlib1g_1.2.13.dfsg-1_amd64.deb
Size: 86684
SHA256: {"2" * 64}

Package: libkrb5-3
Version: 1.20.1-2+deb12u5
Architecture: amd64
Filename: pool/main/k/krb5/libkrb5-3_1.20.1-2+deb12u5_amd64.deb
Size: 332280
SHA256: {"3" * 64}

Package: ca-certificates
Version: 20250419~deb12u2
Architecture: all
Filename: pool/updates/main/c/ca-certificates/ca-certificates_20250419~deb12u2_all.deb
Size: 160948
SHA256: {"4" * 64}
"""


def test_parse_simulated_install() -> None:
    assert parse_simulated_install(SIM) == [
        PlannedInstall("libc6", "2.36-9+deb12u14", "amd64"),
        PlannedInstall("zlib1g", "1:1.2.13.dfsg-1", "amd64"),
        PlannedInstall("libkrb5-3", "1.20.1-2+deb12u5", "amd64"),
        PlannedInstall("ca-certificates", "20250419~deb12u2", "all"),
    ]


def test_parse_print_uris_requires_sha256() -> None:
    uris = parse_print_uris(URIS)
    assert uris[1].deb_name == "zlib1g_1:1.2.13.dfsg-1_amd64.deb" and uris[1].size == 86684
    with pytest.raises(ResolveError, match="no SHA256"):
        parse_print_uris("'http://x/pool/a.deb' a.deb 10 MD5Sum:abc\n")


def test_parse_control_paragraphs_joins_continuations() -> None:
    paras = list(parse_control_paragraphs(SHOW))
    assert len(paras) == 4
    assert paras[0]["Description"] == "GNU C Library\n multi-line continuation"


def _build(show: str = SHOW):
    return build_lock(
        ["python3.11"],
        parse_simulated_install(SIM),
        parse_print_uris(URIS),
        list(parse_control_paragraphs(show)),
        sources=default_sources(),
        mirrors=DEFAULT_MIRRORS,
        architecture="amd64",
    )


def test_build_lock_splits_mirror_and_filename() -> None:
    lock = _build()
    by_name = {p.name: p for p in lock.packages}
    assert [p.name for p in lock.packages] == ["ca-certificates", "libc6", "libkrb5-3", "zlib1g"]
    ca = by_name["ca-certificates"]
    assert ca.mirror == "debian-security" and ca.architecture == "all"
    assert ca.filename == "pool/updates/main/c/ca-certificates/ca-certificates_20250419~deb12u2_all.deb"
    assert by_name["zlib1g"].version == "1:1.2.13.dfsg-1"
    assert by_name["zlib1g"].filename == "pool/main/z/zlib/zlib1g_1.2.13.dfsg-1_amd64.deb"
    assert ca.url(lock.mirrors) == (
        "http://deb.debian.org/debian-security/pool/updates/main/c/ca-certificates/"
        "ca-certificates_20250419~deb12u2_all.deb"
    )


def test_build_lock_rejects_disagreeing_index() -> None:
    with pytest.raises(ResolveError, match="libc6 2.36-9\\+deb12u14: SHA256 disagrees"):
        _build(SHOW.replace("SHA256: " + "1" * 64, "SHA256: " + "9" * 64))
