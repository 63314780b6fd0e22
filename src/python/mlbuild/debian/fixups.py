"""The fix-ups a distroless base needs after unpacking .debs without maintainer scripts.

Each function does what some package's postinst (or debootstrap) would have done, and
only that, deterministically: same input tree -> same output tree.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from mlbuild.debian.errors import RootfsError

CA_BUNDLE = "etc/ssl/certs/ca-certificates.crt"
MOZILLA_CERTS = "usr/share/ca-certificates/mozilla"

PASSWD = "root:x:0:0:root:/root:/usr/sbin/nologin\n" "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"
NSSWITCH = (
    "passwd:         files\n"
    "group:          files\n"
    "shadow:         files\n"
    "hosts:          files dns\n"
    "networks:       files\n"
    "protocols:      files\n"
    "services:       files\n"
    "ethers:         files\n"
    "rpc:            files\n"
)


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    os.chmod(path, mode)


def write_ca_bundle(root: Path) -> Path | None:
    """/etc/ssl/certs/ca-certificates.crt from the Mozilla certs, as update-ca-certificates does.

    (ca-certificates' postinst enables every shipped cert and concatenates them in sorted
    order; OpenSSL's default CA file /usr/lib/ssl/cert.pem is a symlink to this bundle.)
    """
    src = root / MOZILLA_CERTS
    if not src.is_dir():
        return None
    certs = sorted(p for p in src.iterdir() if p.name.endswith(".crt") and p.is_file())
    if not certs:
        raise RootfsError(f"{src}: no .crt files; the ca-certificates package looks empty")
    parts = []
    for cert in certs:
        text = cert.read_text(encoding="ascii")
        parts.append(text if text.endswith("\n") else text + "\n")
    bundle = root / CA_BUNDLE
    _write(bundle, "".join(parts))
    return bundle


def ensure_python3_symlink(root: Path) -> None:
    bindir = root / "usr/bin"
    if (bindir / "python3.11").exists() and not os.path.lexists(bindir / "python3"):
        os.symlink("python3.11", bindir / "python3")


def ensure_tmp(root: Path) -> None:
    for rel in ("tmp", "var/tmp"):
        p = root / rel
        if not os.path.lexists(p):
            p.mkdir(parents=True)
        if p.is_dir() and not p.is_symlink():
            os.chmod(p, 0o1777)


def write_users(root: Path) -> None:
    """root and nobody, like distroless; no shell exists, so no login shell either."""
    for rel, text in (("etc/passwd", PASSWD), ("etc/group", GROUP), ("etc/nsswitch.conf", NSSWITCH)):
        if not os.path.lexists(root / rel):
            _write(root / rel, text)


def ensure_utc_localtime(root: Path) -> None:
    """tzdata's postinst would set these from debconf; a base defaults to UTC."""
    if (root / "usr/share/zoneinfo/Etc/UTC").exists():
        if not os.path.lexists(root / "etc/localtime"):
            os.symlink("/usr/share/zoneinfo/Etc/UTC", root / "etc/localtime")
        if not os.path.lexists(root / "etc/timezone"):
            _write(root / "etc/timezone", "Etc/UTC\n")


def write_dpkg_status(root: Path, controls: Sequence[str]) -> None:
    """/var/lib/dpkg/status from the packages' control paragraphs, sorted by name.

    So vulnerability scanners (ECR, trivy, grype, syft) can see which packages are in the
    image. Marked installed although no maintainer script ran: that is the base's design.
    """
    paragraphs = []
    for text in controls:
        lines = [line for line in text.strip("\n").splitlines()]
        out, inserted = [], False
        for line in lines:
            if line.startswith("Status:"):
                continue
            out.append(line)
            if line.startswith("Package:") and not inserted:
                out.append("Status: install ok installed")
                inserted = True
        name = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("Package:")), "")
        paragraphs.append((name, "\n".join(out) + "\n"))
    paragraphs.sort()
    _write(root / "var/lib/dpkg/status", "\n".join(p for _, p in paragraphs))


def check_no_opt_ml(root: Path) -> None:
    """SageMaker mounts /opt/ml; the base must not ship anything there."""
    if os.path.lexists(root / "opt/ml"):
        raise RootfsError(f"{root / 'opt/ml'} exists; a package put files where SageMaker mounts /opt/ml")


def apply_fixups(root: Path, controls: Sequence[str]) -> None:
    root = Path(root)
    write_ca_bundle(root)
    ensure_python3_symlink(root)
    ensure_tmp(root)
    write_users(root)
    ensure_utc_localtime(root)
    write_dpkg_status(root, controls)
    check_no_opt_ml(root)
