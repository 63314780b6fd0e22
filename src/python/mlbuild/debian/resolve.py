"""Refresh a package lock: resolve the closure of the requested packages with apt.

Debian mirrors drop superseded versions (security updates replace old .debs), so a lock
stops being fetchable some weeks after it is made; re-running this is how it is updated.

Two apt views of the same resolution are cross-checked: `apt-get -s install` gives
name/version/architecture, `apt-get --print-uris install` (SHA256 forced) gives URL, size
and sha256, and `apt-cache show NAME=VERSION` must agree with both on Filename, Size and
SHA256 before anything is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence
from urllib.parse import unquote

from mlbuild.debian.apt import AptEnvironment, PlannedInstall, PrintedUri
from mlbuild.debian.errors import ResolveError
from mlbuild.debian.lock import (
    DEFAULT_MIRRORS,
    AptSource,
    LockedPackage,
    LockInputs,
    PackageLock,
    default_sources,
)


def _deb_name(name: str, version: str, arch: str) -> str:
    # Pool filenames drop the epoch: zlib1g 1:1.2.13.dfsg-1 -> zlib1g_1.2.13.dfsg-1_amd64.deb
    return f"{name}_{version.split(':', 1)[-1]}_{arch}.deb"


def _split_mirror(url: str, mirrors: Mapping[str, str]) -> tuple[str, str]:
    url = unquote(url)
    # Longest base first: "…/debian-security" must not match as "…/debian" + "-security/…".
    for key, base in sorted(mirrors.items(), key=lambda kv: -len(kv[1])):
        prefix = base.rstrip("/") + "/"
        if url.startswith(prefix):
            return key, url[len(prefix) :]
    raise ResolveError(f"apt gave URL {url} that is under none of the mirrors {dict(mirrors)}")


def build_lock(
    requested: Sequence[str],
    planned: Sequence[PlannedInstall],
    uris: Sequence[PrintedUri],
    shown: Sequence[Mapping[str, str]],
    *,
    sources: Sequence[AptSource],
    mirrors: Mapping[str, str],
    architecture: str,
) -> PackageLock:
    """Join and cross-check apt's three outputs into a lock (pure; unit-testable)."""
    # Key by the URL's basename: the pool name has no epoch (apt's local name does, as %3a).
    by_deb = {unquote(u.url).rsplit("/", 1)[-1]: u for u in uris}
    by_name_version = {(f["Package"], f["Version"]): f for f in shown}
    packages = []
    for p in planned:
        deb = _deb_name(p.name, p.version, p.architecture)
        uri = by_deb.pop(deb, None)
        if uri is None:
            raise ResolveError(f"apt-get --print-uris did not list {deb} for {p.name} {p.version}")
        mirror, filename = _split_mirror(uri.url, mirrors)
        fields = by_name_version.get((p.name, p.version))
        if fields is None:
            raise ResolveError(f"apt-cache show did not describe {p.name} {p.version}")
        checks = {
            "Filename": (fields.get("Filename"), filename),
            "Size": (fields.get("Size"), str(uri.size)),
            "SHA256": (fields.get("SHA256"), uri.sha256),
            "Architecture": (fields.get("Architecture"), p.architecture),
        }
        for field, (from_index, from_apt_get) in checks.items():
            if from_index != from_apt_get:
                raise ResolveError(
                    f"{p.name} {p.version}: {field} disagrees between apt-cache show ({from_index!r}) "
                    f"and apt-get ({from_apt_get!r}); re-run the refresh (the mirror may be mid-sync)"
                )
        packages.append(
            LockedPackage(
                name=p.name,
                version=p.version,
                architecture=p.architecture,
                mirror=mirror,
                filename=filename,
                size=uri.size,
                sha256=uri.sha256,
            )
        )
    if by_deb:
        raise ResolveError(f"apt-get --print-uris listed files apt-get -s did not plan: {sorted(by_deb)}")
    return PackageLock(
        inputs=LockInputs(tuple(sorted(set(requested))), architecture, tuple(sources)),
        mirrors=dict(mirrors),
        packages=tuple(packages),
    )


def resolve_lock(
    packages: Sequence[str],
    *,
    sources: Sequence[AptSource] | None = None,
    mirrors: Mapping[str, str] | None = None,
    architecture: str = "amd64",
    keyring: Path | None = None,
) -> PackageLock:
    """Resolve `packages` and their dependency closure into a lock, using a private apt."""
    if not packages:
        raise ResolveError("no packages requested; pass e.g. --packages python3.11 ca-certificates")
    sources = tuple(sources or default_sources())
    mirrors = dict(mirrors or DEFAULT_MIRRORS)
    kwargs = {} if keyring is None else {"keyring": keyring}
    with AptEnvironment(sources, mirrors, architecture, **kwargs) as apt:
        apt.update()
        planned = apt.simulate_install(packages)
        if not planned:
            raise ResolveError(f"apt planned no packages for {list(packages)}")
        uris = apt.print_uris(packages)
        shown = apt.show(planned)
    return build_lock(packages, planned, uris, shown, sources=sources, mirrors=mirrors, architecture=architecture)
